"""Toy data sets, plots, and the main experiment end to end."""

from __future__ import annotations

import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnscratch.utils.data import get_moons_data, get_spirals_data, get_toy_data
from nnscratch.utils.visualization import plot_decision_boundary, plot_history

ROOT = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("loader", [get_toy_data, get_moons_data, get_spirals_data])
def test_toy_data_is_seeded_split_and_shaped(loader):
    X_train, y_train, X_val, y_val = loader(n_samples=300, val_fraction=0.2, seed=1)
    assert X_train.shape == (240, 2) and X_val.shape == (60, 2)
    assert len(y_train) == 240 and len(y_val) == 60
    again = loader(n_samples=300, val_fraction=0.2, seed=1)
    for a, b in zip((X_train, y_train, X_val, y_val), again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(loader(n_samples=300, seed=2)[0], X_train)


def test_circles_geometry():
    # With no noise every point lies on radius 1 (class 0) or 0.5 (class 1).
    X_train, y_train, X_val, y_val = get_toy_data(n_samples=400, noise=0.0)
    X, y = np.vstack([X_train, X_val]), np.vstack([y_train, y_val])
    assert y.shape == (400, 1) and y.sum() == 200
    radius = np.hypot(X[:, 0], X[:, 1])
    np.testing.assert_allclose(radius, np.where(y[:, 0] == 1, 0.5, 1.0))


def test_spirals_labels_are_integers_for_cce():
    _, y_train, _, _ = get_spirals_data(n_samples=90, n_classes=3)
    assert y_train.dtype.kind == "i" and set(y_train) == {0, 1, 2}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_samples": 1}, r"n_samples: expected at least 2. Received: 1"),
        ({"noise": -1.0}, r"noise: expected a number in \[0.0, inf\]"),
        ({"val_fraction": 1.0}, r"val_fraction: expected a number in \[0.0, 1.0\)"),
    ],
)
def test_toy_data_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        get_toy_data(**kwargs)


def test_plots_write_png_files(tmp_path):
    # The experiment's own network; run_path leaves its main() alone.
    script = ROOT / "experiments" / "binary_classification.py"
    build_model = runpy.run_path(str(script))["EXPERIMENT"].build_model
    X_train, y_train, X_val, y_val = get_toy_data(n_samples=100)
    model = build_model()
    history = model.train(
        X_train, y_train, epochs=2, X_val=X_val, y_val=y_val, verbose=0
    )
    figure = plot_history(history, tmp_path / "history.png")
    assert [axes.get_title() for axes in figure.axes] == ["loss", "accuracy"]
    plot_decision_boundary(
        model, X_val, y_val, tmp_path / "boundary.png", resolution=20
    )
    for name in ("history.png", "boundary.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG_SIGNATURE
    with pytest.raises(
        ValueError, match=r"history: expected the dict train\(\) returns"
    ):
        plot_history({})
    with pytest.raises(ValueError, match=r"X: expected 2 features"):
        plot_decision_boundary(model, np.zeros((3, 3)), np.zeros(3))


def test_main_experiment_prints_metrics_and_writes_plots(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "experiments" / "binary_classification.py"),
            "--output-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    val_line = next(
        line for line in result.stdout.splitlines() if line.startswith("val")
    )
    assert float(val_line.split()[-1]) >= 0.90
    for name in ("history.png", "decision_boundary.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG_SIGNATURE
