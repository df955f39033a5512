"""Snakemake `script:` entry points are thin: they read `snakemake.*` and call src/, nothing else."""

import ast
import re

import pytest

from tests.conftest import REPO

SCRIPTS = sorted((REPO / "scripts").glob("*.py"))
RULE_FILES = sorted((REPO / "workflow" / "rules").glob("*.smk"))
MAX_STATEMENTS = 12


def test_there_are_scripts():
    assert SCRIPTS, "no scripts/ found"


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_script_is_thin(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    body = [n for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    assert len(body) <= MAX_STATEMENTS, f"{path.name}: {len(body)} statements; move logic into src/"
    for node in ast.walk(tree):
        assert not isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.For, ast.While, ast.With,
                                     ast.AsyncFunctionDef, ast.Lambda)), \
            f"{path.name}:{node.lineno}: {type(node).__name__} belongs in src/ysocensus"
        if isinstance(node, ast.ImportFrom):
            assert (node.module or "").startswith("ysocensus"), \
                f"{path.name}:{node.lineno}: imports {node.module}; scripts import only ysocensus"
        if isinstance(node, ast.Import):
            assert all(a.name.startswith("ysocensus") for a in node.names), \
                f"{path.name}:{node.lineno}: scripts import only ysocensus"
    assert "snakemake." in path.read_text(), f"{path.name} does not read the snakemake object"


def test_every_script_belongs_to_a_rule_and_every_rule_has_one():
    rules_text = "\n".join(p.read_text() for p in RULE_FILES)
    used = set(re.findall(r'script:\s*\n?\s*"\.\./\.\./scripts/([\w]+)\.py"', rules_text))
    on_disk = {p.stem for p in SCRIPTS}
    assert used == on_disk, f"scripts without rule: {on_disk - used}; rules with missing script: {used - on_disk}"
