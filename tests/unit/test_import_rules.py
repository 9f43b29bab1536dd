"""DESIGN.md §3, enforced by reading the code: who may import whom.

- `recsys` imports nothing else from this repository, and no heavy runtime (CDK, Spark, torch, Glue)
  at module level.
- `lambdas`, `glue`, `training` import `recsys`, never each other, never `stacks`.
- `stacks` (and `app.py`) import `recsys.contracts` only, never runtime code.
- `local_mode` imports runtime code and `recsys`, never `stacks`.
- `awsglue` is imported by one module only: the Glue entry script under `glue/`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("recsys", "stacks", "lambdas", "glue", "training", "local_mode")
RUNTIME = ("lambdas", "glue", "training")
HEAVY_FOR_CORE = ("aws_cdk", "constructs", "cdk_nag", "pyspark", "torch", "awsglue")


def imports(source: str) -> Iterator[tuple[str, bool]]:
    """(dotted name imported, whether at module level) for every import statement."""
    tree = ast.parse(source)
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, id(node) in top_level
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:  # `from recsys import contracts` imports recsys.contracts
                yield f"{node.module}.{alias.name}", id(node) in top_level


def violations(owner: str, path: str, source: str) -> list[str]:
    """What a file under top-level folder `owner` imports against the rules."""
    found = []
    for module, top in imports(source):
        root = module.split(".")[0]
        bad = None
        if owner == "recsys":
            if root in PACKAGES and root != "recsys":
                bad = "recsys imports nothing else from the repository"
            elif root in HEAVY_FOR_CORE and top:
                bad = f"recsys must not import {root} at module level"
        elif owner in RUNTIME:
            if root in PACKAGES and root not in ("recsys", owner):
                bad = f"{owner} may import recsys, never {root}"
        elif owner in ("stacks", "app.py"):
            contracts = module == "recsys.contracts" or module.startswith("recsys.contracts.")
            if root in PACKAGES and root != "stacks" and not contracts:
                bad = "infrastructure imports recsys.contracts only"
        elif owner == "local_mode" and root == "stacks":
            bad = "local_mode never imports stacks"
        if root == "awsglue" and owner != "glue":
            bad = "only the Glue entry script imports awsglue"
        if bad:
            found.append(f"{path}: import {module}: {bad}")
    return found


def repo_sources() -> Iterator[tuple[str, Path]]:
    yield "app.py", REPO / "app.py"
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")) if (REPO / package).is_dir() else []:
            yield package, path


def test_the_repository_follows_the_import_rules() -> None:
    scanned: set[str] = set()
    problems: list[str] = []
    awsglue_importers: list[str] = []
    for owner, path in repo_sources():
        source = path.read_text(encoding="utf-8")
        relative = str(path.relative_to(REPO))
        scanned.add(owner)
        problems += violations(owner, relative, source)
        if any(module.split(".")[0] == "awsglue" for module, _ in imports(source)):
            awsglue_importers.append(relative)
    assert {"app.py", "recsys", "stacks"} <= scanned  # the rules are checked against real code
    assert len(awsglue_importers) <= 1, f"awsglue imported by several modules: {awsglue_importers}"
    assert not problems, "\n".join(problems)


def test_the_checker_catches_each_kind_of_violation() -> None:
    assert violations("recsys", "recsys/x.py", "import stacks.storage")
    assert violations("recsys", "recsys/x.py", "import torch")
    assert not violations("recsys", "recsys/x.py", "def f():\n    import torch\n")  # lazy import is fine
    assert violations("lambdas", "lambdas/a/h.py", "from training.fm import top_k")
    assert violations("glue", "glue/t.py", "from lambdas.ingest import handler")
    assert violations("training", "training/x.py", "import stacks")
    assert violations("stacks", "stacks/s.py", "from recsys.validation import validate_file")
    assert not violations("stacks", "stacks/s.py", "from recsys import contracts")  # module recsys
    assert violations("app.py", "app.py", "import lambdas.ingest.handler")
    assert violations("local_mode", "local_mode/run.py", "from stacks.storage import DataLake")
    assert violations("training", "training/x.py", "from awsglue.utils import getResolvedOptions")
    assert not violations("lambdas", "lambdas/a/h.py", "from recsys.validation import validate_file")
