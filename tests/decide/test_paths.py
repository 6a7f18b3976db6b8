"""Test-path matching: a table of real-looking paths with their verdicts, and properties."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks.decide.paths import (
    DEFAULT_TEST_GLOBS,
    is_test_path,
    matching_glob,
    path_segments,
    validate_glob,
)

# (path, is a test path under the default globs)
TABLE = [
    # test directories, anywhere in the path
    ("tests/test_config.py", True),
    ("test/config.py", True),
    ("test/deep/nested/key.pem", True),
    ("src/tests/settings.py", True),
    ("app/src/test/java/AppTest.java", True),
    ("a/b/__tests__/c.js", True),
    ("__tests__/api.js", True),
    ("spec/models/user_spec.rb", True),
    ("lib/spec/helper.rb", True),
    ("pkg/testdata/creds.json", True),
    ("internal/parser/testdata/golden/x.txt", True),
    ("fixtures/aws.yml", True),
    ("tests/fixtures/db.json", True),
    # file-name globs
    ("pkg/foo_test.go", True),
    ("foo_test.go", True),
    ("src/test_settings.py", True),
    ("test_main.py", True),
    ("web/src/x.spec.ts", True),
    ("x.spec.ts", True),
    # normalisation
    ("/tests/x.py", True),
    ("./tests/x.py", True),
    ("src//tests///x.py", True),
    ("src\\tests\\x.py", True),  # Windows separators
    ("C:\\repo\\test\\x.cfg", True),
    # odd but test: names are data, not markup
    ("tests/<script>alert(1)</script>.py", True),
    ("tests/données/clé.json", True),
    ("テスト/tests/鍵.txt", True),
    # production look-alikes
    ("latest/config.py", False),
    ("contest/app.py", False),
    ("attestation/key.pem", False),
    ("src/test_utils_prod/config.py", False),  # test_*.py is a file-name glob, this is a directory
    ("src/testing/x.py", False),
    ("tests.py", False),
    ("mytests/x", False),
    ("tests_old/x.py", False),
    ("src/contests/x.py", False),
    ("test", False),  # a file named test is not inside a test directory
    ("src/spec", False),
    ("tests/", False),  # only the directory itself, nothing in it
    ("foo_test.go.bak", False),
    ("pkg/foo_test.go/", True),  # a trailing "/" is dropped: the file pkg/foo_test.go
    ("x.spec.tsx", False),
    ("spec.ts", False),
    ("x.spec.js", False),
    ("src/main/java/TestUtils.java", False),
    ("Tests/x.py", False),  # case-sensitive
    ("TEST/x.py", False),
    ("src/Test_x.py", False),
    ("src\\latest\\x.py", False),
    ("prod/<script>.py", False),
    ("prod/tést/x.py", False),
    ("config/production.yml", False),
    (".env", False),
    ("", False),
    (None, False),
    ("/", False),
    ("./", False),
]


def test_table_is_large_enough():
    assert len(TABLE) >= 40


@pytest.mark.parametrize(("path", "verdict"), TABLE, ids=[repr(p) for p, _ in TABLE])
def test_default_globs_verdict(path, verdict):
    assert is_test_path(path, DEFAULT_TEST_GLOBS) is verdict


def test_trailing_separator_is_dropped():
    assert path_segments("pkg/foo_test.go/") == ("pkg", "foo_test.go")


def test_matching_glob_names_the_rule():
    assert matching_glob("a/__tests__/b.js") == "**/__tests__/**"
    assert matching_glob("pkg/x_test.go") == "**/*_test.go"
    assert matching_glob("latest/x.py") is None


def test_custom_globs_replace_the_defaults():
    globs = ("**/Tests/**", "e2e/**")
    assert is_test_path("src/Tests/x.cs", globs)
    assert is_test_path("e2e/login.ts", globs)
    assert not is_test_path("src/e2e/login.ts", globs)  # anchored at the repository root
    assert not is_test_path("tests/x.py", globs)


def test_glob_classes_and_question_mark_stay_in_one_segment():
    assert is_test_path("a/test1/x", ("**/test?/**",))
    assert not is_test_path("a/test/1/x", ("**/test?/**",))
    assert is_test_path("a/itest/x", ("**/[ei]test/**",))
    assert not is_test_path("a/utest/x", ("**/[!u]test/**",))
    assert not is_test_path("a/b/c.py", ("a*c.py",))  # * never crosses "/"


def test_middle_double_star_matches_zero_segments():
    assert is_test_path("src/tests/x", ("src/**/tests/**",))
    assert is_test_path("src/a/b/tests/x", ("src/**/tests/**",))
    assert is_test_path("src/tests/x", ("src/**/**/tests/**",))


def test_pathological_path_is_fast_enough_to_not_hang():
    # Many "**" against many segments would be exponential with naive backtracking.
    path = "/".join(["a"] * 300) + "/b"
    assert not is_test_path(path, ("**/a/**/a/**/a/**/a/**/c",))


@pytest.mark.parametrize("glob", ["", "  ", "/", "**", "**/**"])
def test_useless_globs_are_rejected(glob):
    with pytest.raises(ValueError):
        validate_glob(glob)


def test_validate_glob_strips():
    assert validate_glob(" **/tests/** ") == "**/tests/**"


# -- properties -------------------------------------------------------------------------------
TEST_DIRS = ("test", "tests", "__tests__", "spec", "testdata", "fixtures")
FILE_GLOBS = ("*_test.go", "test_*.py", "*.spec.ts")

segment = st.text(
    alphabet=st.characters(blacklist_characters="/\\", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=12,
).filter(lambda s: s != ".")
production_segment = segment.filter(lambda s: s not in TEST_DIRS)


@settings(max_examples=200, deadline=None)
@given(
    prefix=st.lists(production_segment, max_size=6),
    test_dir=st.sampled_from(TEST_DIRS),
    rest=st.lists(segment, min_size=1, max_size=4),
)
def test_production_segments_before_a_test_dir_keep_it_a_test_path(prefix, test_dir, rest):
    path = "/".join([*prefix, test_dir, *rest])
    assert is_test_path(path)
    assert is_test_path("/".join(["prod", "src", path]))


@settings(max_examples=200, deadline=None)
@given(segments=st.lists(production_segment, min_size=1, max_size=8))
def test_no_test_dir_and_no_file_glob_is_never_a_test_path(segments):
    from fnmatch import fnmatchcase

    if any(fnmatchcase(segments[-1], g) for g in FILE_GLOBS):
        segments = [*segments[:-1], segments[-1] + ".orig"]
    assert not is_test_path("/".join(segments))
    assert not is_test_path("\\".join(segments))


@settings(max_examples=200, deadline=None)
@given(segments=st.lists(segment, min_size=1, max_size=8))
def test_separators_and_leading_markers_do_not_change_the_verdict(segments):
    plain = "/".join(segments)
    verdict = is_test_path(plain)
    assert is_test_path("\\".join(segments)) is verdict
    assert is_test_path("./" + plain) is verdict
    assert is_test_path("/" + plain) is verdict
