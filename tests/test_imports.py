"""Every module imports on its own in a fresh interpreter (no import cycle hidden by import
order), and the layers hold: the library never imports the service or the training code, and
the two never import each other."""
import ast
import subprocess
from concurrent.futures import ThreadPoolExecutor
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("triage", "training", "api")


def _modules() -> list[str]:
    out = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out


def _import_alone(name: str) -> str | None:
    r = subprocess.run([sys.executable, "-c", f"import {name}"], cwd=ROOT, capture_output=True, text=True)
    return None if r.returncode == 0 else f"{name}: {r.stderr.strip().splitlines()[-1:]}"


def test_every_module_imports_alone_in_a_fresh_interpreter():
    with ThreadPoolExecutor(max_workers=4) as pool:
        failures = [f for f in pool.map(_import_alone, _modules()) if f]
    assert not failures, failures


def _imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("pkg, forbidden", [("triage", {"api", "training", "benchmarks"}),
                                            ("training", {"api"}), ("api", {"training", "benchmarks"})])
def test_layers(pkg, forbidden):
    for path in (ROOT / pkg).rglob("*.py"):
        assert not _imported(path) & forbidden, f"{path.relative_to(ROOT)} imports {_imported(path) & forbidden}"
