"""The sandbox generator's fixed vocabulary (directory names, token scopes, detectors, people's
names, repositories, file paths, authors) and its seeded helpers (a fast `random.Random`,
weighted choices, times).
"""
from __future__ import annotations

import bisect
import itertools
import random
import unicodedata
from datetime import UTC, datetime
from typing import Any

BASE_DN = "dc=corp,dc=example"
PEOPLE_OU = f"ou=people,{BASE_DN}"
LEAVERS_OU = f"ou=leavers,{BASE_DN}"
EMAIL_DOMAIN = "corp.example"
LEAVER_MARKERS = ("leavers_ou", "employee_type", "disabled_bit", "locked")
# The one committer of every exported commit: authors vary, the committer never does.
COMMITTER_NAME = "Sandbox Generator"
COMMITTER_EMAIL = "sandbox-generator@corp.example"

ALL_SCOPES = [
    "scan", "incidents:read", "incidents:write", "incidents:share", "members:read",
    "members:write", "audit_logs:read", "teams:read", "teams:write", "api_tokens:read",
    "sources:read", "sources:write",
]
READ_SCOPES = ["incidents:read", "members:read", "audit_logs:read", "teams:read",
               "api_tokens:read", "sources:read"]

DETECTORS: list[dict[str, str]] = [
    {"name": n, "display_name": d, "nature": "specific", "family": f, "category": c,
     "detector_group_name": g, "detector_group_display_name": d}
    for n, d, f, c, g in [
        ("aws_iam", "AWS IAM Keys", "credentials", "cloud_provider", "aws_iam"),
        ("private_key_rsa", "RSA Private Key", "cryptographic_key", "private_key",
         "private_key_rsa"),
        ("private_key_openssh", "OpenSSH Private Key", "cryptographic_key", "private_key",
         "private_key_openssh"),
        ("private_key_dsa", "DSA Private Key", "cryptographic_key", "private_key",
         "private_key_dsa"),
        ("slackusertoken", "Slack User Token", "token", "messaging_system", "slack_user_token"),
        ("slack_bot_token", "Slack Bot Token", "token", "messaging_system", "slack_bot_token"),
        ("github_access_token", "GitHub Access Token", "token", "version_control_platform",
         "github_access_token"),
        ("gitlab_personal_access_token", "GitLab Personal Access Token", "token",
         "version_control_platform", "gitlab_personal_access_token"),
        ("salesforce_oauth2", "Salesforce Oauth2 Keys", "credentials", "crm",
         "salesforce_oauth2_keys"),
        ("newrelic_apm_license_key", "New Relic APM License Key", "token", "monitoring",
         "newrelic_apm_license_key"),
        ("newrelic_insights_query_key", "New Relic Insights Query Key", "token", "monitoring",
         "newrelic_insights_query_key"),
        ("mailgun_basic_auth", "Mailgun Primary Key", "token", "messaging_system",
         "mailgun_primary_key"),
        ("stripe_api_key", "Stripe Keys", "token", "payment_system", "stripe_keys"),
        ("postgres_assignment", "PostgreSQL Credentials", "credentials", "data_storage",
         "postgres_credentials"),
        ("generic_password", "Generic Password", "credentials", "other", "generic_password"),
        ("generic_high_entropy_secret", "Generic High Entropy Secret", "token", "other",
         "generic_high_entropy_secret"),
    ]
]
_DETECTOR_WEIGHTS = [10, 6, 3, 1, 5, 3, 7, 3, 2, 2, 1, 2, 4, 5, 14, 18]

FIRST_NAMES = [
    "Alice", "Bruno", "Chloe", "David", "Emma", "Farid", "Grace", "Hugo", "Ines", "Jamal", "Kenji",
    "Laura", "Mehdi", "Nina", "Oscar", "Priya", "Quentin", "Rosa", "Samir", "Tara", "Ugo",
    "Vera", "Wei", "Xavier", "Yasmin", "Zoe", "Zoë", "José", "Łukasz", "Søren", "Anaïs",
    "Björn", "Çağla", "Dmitri", "Élodie", "Ngọc", "Siobhán", "Mateus", "Aiko", "Olumide",
]
LAST_NAMES = [
    "Martin", "Bernard", "Dubois", "Smith", "Johnson", "Garcia", "Müller", "Schmidt", "Rossi",
    "Kowalski", "Nguyễn", "Tanaka", "Okafor", "Silva", "Ångström", "O'Brien", "Da Costa",
    "Lefèvre", "Novak", "Fischer", "Patel", "Khan", "Kim", "Ivanova", "Haddad", "Moreau",
    "Jensen", "Costa", "Weber", "Yilmaz", "Brown", "Lopez", "Santos", "Wong", "Cohen",
]
REPO_NAMES = [
    "payments-api", "billing-service", "web-frontend", "mobile-app", "infra-terraform",
    "data-pipeline", "auth-service", "notifications", "search-indexer", "admin-console",
    "ml-platform", "reporting", "gateway", "inventory", "checkout", "user-profile", "ledger",
    "ci-templates", "helm-charts", "docs-site", "analytics-etl", "fraud-detection",
    "partner-sync", "legacy-monolith", "sdk-python", "sdk-go", "sdk-js", "mail-relay",
    "feature-flags", "scheduler", "kafka-connectors", "pricing-engine", "crm-bridge",
    "support-tools", "status-page", "backoffice", "warehouse", "media-service", "geo-service",
    "chat-bot", "load-tests", "security-scanners", "vault-config", "observability",
    "edge-proxy", "identity-broker", "tax-service", "shipping", "returns", "loyalty",
    "recommendations", "catalog", "cms", "onboarding", "compliance", "audit-trail",
    "rate-limiter", "secrets-rotation", "design-system", "playground",
]
MODULES = ["core", "billing", "auth", "users", "orders", "api", "db", "cache", "queue", "mailer",
           "reports", "admin", "search", "payments", "sync", "export"]
FILE_STEMS = ["config", "settings", "client", "handler", "service", "utils", "models", "db",
              "routes", "worker", "secrets", "credentials", "connector", "main", "helpers"]
ENVS = ["dev", "staging", "prod", "qa", "local"]

# Paths a reviewer would call test code under the playbook's default globs.
TEST_TEMPLATES = [
    "tests/{m}/test_{s}.py", "test/{s}.py", "src/{m}/__tests__/{s}.test.js",
    "spec/{m}/{s}_spec.rb", "internal/{m}/testdata/{s}.json", "tests/fixtures/{s}.yaml",
    "pkg/{m}/{s}_test.go", "src/{m}/test_{s}.py", "web/src/{m}/{s}.spec.ts",
    "fixtures/{e}.env", "src/test/java/com/corp/{m}/{S}Test.java",
    "services/{m}/tests/conftest.py", "e2e/spec/{m}.yaml", "tests/{m}/testdata/{e}.json",
]
# Production paths, including look-alikes that a substring match would wrongly call tests.
PROD_TEMPLATES = [
    "src/{m}/{s}.py", "app/{m}/settings.py", "config/{e}.yaml", "deploy/{e}/values.yaml",
    "cmd/{m}/main.go", "internal/{m}/{s}.go", "src/main/resources/application-{e}.properties",
    ".env.{e}", "docker-compose.{e}.yml", "scripts/{s}.sh", "lib/{m}/{s}.rb",
    "web/src/{m}/{s}.ts", "terraform/{e}/main.tf", "ansible/group_vars/{e}.yml",
]
LOOKALIKE_TEMPLATES = [
    "latest/{s}.py", "contest/{m}/{s}.py", "attestation/{m}/config.go",
    "src/test_utils_prod/config.py", "testing_tools/{s}.py", "src/{m}/{s}_test.py",
    "src/{m}/tests.py", "src/{m}/{s}.spec.js", "src/{m}/test_{s}.json", "protest/{e}.yaml",
    "src/{m}/contest_test.rb", "specs-archive/{s}.md", "src/latest_tests_prod/{s}.go",
]
HOSTILE_PATHS = [
    "src/<script>alert(1)</script>/config.py",
    "docs/naïve café/secrets.md",
    "config\\windows\\prod.ini",
    "deploy/" + "/".join(["very-long-directory-name-" + "x" * 40] * 6) + "/settings.yaml",
    "src/$(whoami)/`id`.sh",
    "-rf/--output=leak.txt",
]

MATCH_NAMES = ["apikey", "client_id", "client_secret", "password", "token", "host", "username"]
OCCURRENCE_TAGS = ["DEFAULT_BRANCH", "FROM_HISTORICAL_SCAN", "SENSITIVE_FILE", "TEST_FILE"]
CLOSED_REASONS = ["test_credential", "false_positive", "low_risk"]

BOT_AUTHORS = [
    ("dependabot[bot]", "dependabot[bot]@users.noreply.github.com"),
    ("CI Bot", "ci-bot@corp.example"),
    ("renovate[bot]", "renovate[bot]@users.noreply.github.com"),
    ("github-actions[bot]", "41898282+github-actions[bot]@users.noreply.github.com"),
]
NOREPLY_AUTHORS = [
    ("someone", "12345+someone@users.noreply.github.com"),
    ("Octo Dev", "98765+octodev@users.noreply.github.com"),
    ("No Reply", "noreply@corp.example"),
]
EXTERNAL_AUTHORS = [
    ("Freelance Dev", "freelance.dev@contractor.example"),
    ("Open Source Contributor", "oss.contributor@example.org"),
    ("Agency Partner", "dev@agency.example"),
    ("Former Vendor", "support@vendor.example"),
]
# Authors whose identity git can store (sha non-null) and ones it cannot (sha null).
HOSTILE_GIT_AUTHORS = [
    ("Evil Filter", "evil*)(uid=*@corp.example"),
    ("Back Slash", "back\\slash@corp.example"),
    ("Long " + "Name" * 60, "a" * 200 + "@corp.example"),
    ("李小龙", "li.xiaolong@corp.example"),
    ("Wildcard", "*@corp.example"),
]
HOSTILE_NONGIT_AUTHORS = [
    ("<script>alert('xss')</script>", "script.kiddie@corp.example"),
    ("Nul Byte", "nul\x00byte@corp.example"),
    ("Angle <brackets>", "angle>bracket@corp.example"),
]


def _iso(moment: datetime) -> str:
    # isoformat is several times faster than strftime; an aware time appends "+00:00" after 26
    return moment.isoformat(timespec="microseconds")[:26] + "Z"


class _Random(random.Random):
    """Mersenne Twister seeded as usual, with randint and choice built on one random() call:
    the standard ones cost several Python calls each, and they run millions of times."""

    def randint(self, a: int, b: int) -> int:
        return a + int(self.random() * (b - a + 1))

    def choice(self, seq: Any) -> Any:
        return seq[int(self.random() * len(seq))]


class _Weighted:
    """A weighted choice with its cumulative weights computed once (rng.choices recomputes)."""

    def __init__(self, items: list[Any], weights: list[float]) -> None:
        self.items = items
        self.cumulative = list(itertools.accumulate(weights))
        self.total = self.cumulative[-1]

    def pick(self, rng: random.Random) -> Any:
        return self.items[bisect.bisect(self.cumulative, rng.random() * self.total)]


def start_of_today() -> datetime:
    today = datetime.now(UTC)
    return today.replace(hour=0, minute=0, second=0, microsecond=0)


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum()) or "user"
