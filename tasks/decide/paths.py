"""Test-path globs matched by path segments, never by substring. Pure.

A path and a glob are both split on "/" (backslashes in paths count as "/", a leading "/" or
"./" is dropped). Then, segment by segment:
- `**` matches zero or more whole segments; a trailing `**` matches one or more, so
  `**/test/**` needs a segment equal to "test" *followed by* something: the file `a/test` is not
  inside a test directory, `a/test/x.py` is.
- any other glob segment matches exactly one path segment with `fnmatch.fnmatchcase`
  (`*`, `?`, `[abc]`, `[!abc]`), which never crosses a "/".
Matching is case-sensitive, like Git on Linux: `Tests/x.py` is not under `tests/`. List the
other spelling in the policy's globs when a repository needs it.
"""
from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase
from functools import lru_cache

DEFAULT_TEST_GLOBS: tuple[str, ...] = (
    "**/test/**",
    "**/tests/**",
    "**/__tests__/**",
    "**/spec/**",
    "**/testdata/**",
    "**/fixtures/**",
    "**/*_test.go",
    "**/test_*.py",
    "**/*.spec.ts",
)

# Paths that any repository has outside its tests. A glob set that matches every one of them
# matches everything, whatever its spelling ("**/*", or "*", "*/*", "*/*/*", ...): the
# auto-ignore refuses it as test globs and bulk needs confirm_all for it (`matches_everything`).
PRODUCTION_LOOKING_PATHS: tuple[str, ...] = (
    "src/app/main.py",
    "config/settings.yaml",
    ".env",
    "deploy/prod.tf",
    "README.md",
    "Dockerfile",
    "Makefile",
    "cmd/server/main.go",
    "src/main/resources/application.properties",
    "web/src/index.js",
    "scripts/deploy.sh",
    "k8s/production/secrets.yml",
    "lib/payments/client.rb",
)

_ANY = "**"


def path_segments(path: str | None) -> tuple[str, ...]:
    """The segments of a repository path: separators unified, "", "." and leading "/" dropped."""
    if not path:
        return ()
    return tuple(s for s in path.replace("\\", "/").split("/") if s not in ("", "."))


@lru_cache(maxsize=256)
def _compiled(glob: str) -> tuple[str, ...]:
    segments = [s for s in glob.split("/") if s not in ("", ".")]
    collapsed: list[str] = []
    for segment in segments:
        if segment == _ANY and collapsed and collapsed[-1] == _ANY:
            continue  # "**/**" means the same as "**"
        collapsed.append(segment)
    return tuple(collapsed)


def validate_glob(glob: str) -> str:
    """The glob, stripped, or ValueError when it could never match anything useful."""
    value = glob.strip()
    if not _compiled(value):
        raise ValueError(f"empty test-path glob: {glob!r}")
    if _compiled(value) == (_ANY,):
        raise ValueError("the glob '**' would call every path a test path")
    return value


def _match(pattern: tuple[str, ...], segments: tuple[str, ...]) -> bool:
    # Iterative over (pattern index, segment index) states: at most len(p) * len(s) states,
    # so a hostile path with many segments cannot make this exponential.
    states = {(0, 0)}
    seen: set[tuple[int, int]] = set()
    last = len(pattern) - 1
    while states:
        pi, si = states.pop()
        if (pi, si) in seen:
            continue
        seen.add((pi, si))
        if pi == len(pattern):
            if si == len(segments):
                return True
            continue
        token = pattern[pi]
        if token == _ANY:
            # A trailing "**" needs at least one segment: "dir/**" is what is inside dir.
            first = si + 1 if pi == last else si
            states.update((pi + 1, k) for k in range(first, len(segments) + 1))
        elif si < len(segments) and fnmatchcase(segments[si], token):
            states.add((pi + 1, si + 1))
    return False


def matching_glob(path: str | None, globs: Iterable[str] = DEFAULT_TEST_GLOBS) -> str | None:
    """The first glob that matches the path, or None (always None for a null or empty path,
    or one with a ".." segment)."""
    segments = path_segments(path)
    if not segments or ".." in segments:
        # A ".." segment never names a file inside a repository, and "tests/../prod.py" is not
        # in tests/: such a path is unknown, never evidence of a test path.
        return None
    for glob in globs:
        pattern = _compiled(glob)
        if pattern and _match(pattern, segments):
            return glob
    return None


def matches_everything(globs: Iterable[str]) -> bool:
    """True when the globs match every production-looking path: decided by what they match,
    not by how they are spelt."""
    globs = tuple(globs)
    return bool(globs) and all(
        matching_glob(path, globs) is not None for path in PRODUCTION_LOOKING_PATHS
    )


def is_test_path(path: str | None, globs: Sequence[str] = DEFAULT_TEST_GLOBS) -> bool:
    return matching_glob(path, globs) is not None


def printable(value: str | None, limit: int = 200) -> str:
    """Untrusted text (paths, commit e-mails) made safe for evidence and notes: control and
    format characters escaped (no terminal tricks, no hidden right-to-left marks), length capped.
    """
    if value is None:
        return "(none)"
    out = []
    for char in value[:limit]:
        if unicodedata.category(char)[0] == "C":
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out) + ("…" if len(value) > limit else "")
