"""Optional dependencies: imported where they are used, named when missing."""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str) -> ModuleType:
    """Import ``module``, or raise an ``ImportError`` naming the extra to install.

    Examples
    --------
    >>> require("json", "none").__name__
    'json'
    >>> require("no_such_module_here", "onnx")
    Traceback (most recent call last):
    ...
    ImportError: this needs no_such_module_here: pip install 'nnscratch[onnx]'
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"this needs {module.split('.')[0]}: pip install 'nnscratch[{extra}]'"
        ) from error
