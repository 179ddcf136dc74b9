"""The folders are the architecture: every import points down.

Each module of the package gets a level from its path (the longest prefix
below wins); an import, anywhere in a module (lazy ones inside functions
included), may only reach a module of the same or a lower level.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import nnscratch

PACKAGE = Path(nnscratch.__file__).parent

LEVELS = {
    # the protocol, the walker, the registry, validation
    "nnscratch.core": 0,
    # the pieces
    "nnscratch.layers": 1,
    "nnscratch.losses": 1,
    "nnscratch.optimizers": 1,
    "nnscratch.utils.metrics": 1,
    "nnscratch.utils.io": 1,
    "nnscratch.utils.threads": 1,
    "nnscratch.utils.text": 1,  # the tokenizer, windows and generation
    # files: talk to a model through its public methods, import no engine
    "nnscratch.saving": 2,
    # the model, data adapters, the training loop, callbacks
    "nnscratch.engine": 3,
    # applications, imported by nothing below
    "nnscratch.apps": 4,
    "nnscratch.cli": 4,
    "nnscratch.utils": 4,
    "nnscratch.interop": 4,
    "nnscratch.sklearn": 4,
    "nnscratch.distributed": 4,  # data-parallel training over MPI
    "nnscratch.__main__": 5,
    "nnscratch": 5,  # the package's __init__ re-exports the public names
}


def level(module: str) -> int:
    prefixes = [p for p in LEVELS if module == p or module.startswith(p + ".")]
    return LEVELS[max(prefixes, key=len)]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
    return [name for name in found if name.split(".")[0] == "nnscratch"]


def test_no_import_points_up():
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = module_name(path)
        for target in imports(path):
            if level(target) > level(source):
                upward.append(f"{source} (level {level(source)}) -> {target}")
    assert upward == []


def test_import_nnscratch_loads_no_plotting_or_optional_library():
    code = (
        "import sys, nnscratch; heavy = ('matplotlib', 'tqdm', 'torch', 'onnx', "
        "'sklearn', 'tensorboardX', 'mpi4py'); "
        "print([m for m in heavy if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "[]", result.stderr
