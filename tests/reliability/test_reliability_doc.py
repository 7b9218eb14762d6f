"""docs/reliability.md cannot drift from the tests: every test its fault table names exists,
every data fault the matrix injects has its row, and the counts it states are the tests'."""

import ast
import importlib.util
import os
import re

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DOC = os.path.join(ROOT, "docs", "reliability.md")


def _module(rel):
    spec = importlib.util.spec_from_file_location(
        "_doc_" + os.path.basename(rel)[:-3], os.path.join(ROOT, rel)
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _section(text, title):
    body = text.split(f"## {title}\n", 1)[1]
    return body.split("\n## ", 1)[0]


def _rows(section):
    rows = [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("|")
    ]
    return rows[2:]  # header and separator


def _defined(path, name):
    """Whether ``path`` defines the test ``name`` (or ``Class::name``)."""
    tree = ast.parse(open(path).read())
    *outer, leaf = name.split("::")
    scopes = [tree]
    for cls in outer:
        scopes = [
            n for s in scopes for n in s.body if isinstance(n, ast.ClassDef) and n.name == cls
        ]
    return any(isinstance(n, ast.FunctionDef) and n.name == leaf for s in scopes for n in s.body)


def test_every_named_test_exists():
    rows = _rows(_section(open(DOC).read(), "Fault table"))
    assert len(rows) >= 20
    for row in rows:
        assert len(row) == 5 and all(row), f"a row needs all five columns: {row}"
        refs = re.findall(r"`([^`]+\.py)::([^`]+)`", row[4])
        assert refs, f"no file::name in {row[4]!r}"
        for path, name in refs:
            assert os.path.isfile(os.path.join(ROOT, path)), path
            assert _defined(os.path.join(ROOT, path), name), f"{path}::{name} does not exist"


def test_every_injected_data_fault_has_a_row():
    faults = _module("tests/reliability/test_data_faults.py")
    named = set(re.findall(r"test_data_faults\.py::(\w+)", open(DOC).read()))
    assert {f"test_{f}" for f in faults.CASES} <= named


def test_counts_are_those_the_tests_run():
    counts = _section(open(DOC).read(), "Counts")
    faults = _module("tests/reliability/test_data_faults.py")
    fuzz = _module("tests/reliability/test_fuzz_readers.py")
    n_faults, n_cases = map(
        int, re.search(r"(\d+) faults in (\d+) \(fault, reader\) cases", counts).groups()
    )
    assert (n_faults, n_cases) == (len(faults.CASES), sum(map(len, faults.CASES.values())))
    assert int(re.search(r"\| fuzzed readers \| (\d+) \|", counts).group(1)) == len(fuzz.READERS)
    per_reader, per_test = map(
        int,
        re.search(
            r"in CI \| (\d+) \(a structured and a byte-edit test of (\d+) inputs", counts
        ).groups(),
    )
    assert (per_reader, per_test) == (2 * fuzz.CI_EXAMPLES, fuzz.CI_EXAMPLES)
    per_reader, per_test = map(int, re.search(r"soak \| (\d+) \(2 x (\d+)", counts).groups())
    assert (per_reader, per_test) == (2 * fuzz.SOAK_EXAMPLES, fuzz.SOAK_EXAMPLES)
