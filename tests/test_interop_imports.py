"""The interop extras stay optional: nothing heavy at import, clear errors without."""

from __future__ import annotations

import subprocess
import sys

import pytest

from nnscratch import Dense, NeuralNetwork
from nnscratch.interop import from_torch, to_onnx, to_torch

OPTIONAL = ["onnx", "onnxruntime", "torch", "sklearn", "tensorboardX", "tensorboard"]


def test_importing_nnscratch_and_interop_imports_no_optional_library():
    code = (
        "import sys, nnscratch, nnscratch.interop, nnscratch.cli.export\n"
        f"print([m for m in {OPTIONAL!r} if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def small_model():
    model = NeuralNetwork(loss_name="mse")
    model.add(Dense(2, 1))
    return model


def test_without_onnx_an_import_error_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install 'nnscratch\[onnx\]'"):
        to_onnx(small_model(), tmp_path / "model.onnx", (2,))
    assert not (tmp_path / "model.onnx").exists()


def test_without_torch_an_import_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"pip install 'nnscratch\[torch\]'"):
        to_torch(small_model())
    with pytest.raises(ImportError, match=r"pip install 'nnscratch\[torch\]'"):
        from_torch(object())
