"""Resuming exactly, data larger than memory, batch streams, interruption."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from nnscratch import SGD, Activation, Adam, Callback, Dense, Dropout, NeuralNetwork
from nnscratch.layers.batchnorm import BatchNorm
from nnscratch.utils.data import get_toy_data

ROOT = Path(__file__).resolve().parent.parent

RUN_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from nnscratch.apps.demos import DEMOS
    from nnscratch.utils.data import get_toy_data

    mode, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
    X, y, X_val, y_val = get_toy_data(n_samples=400)
    model = DEMOS["circles"].build_model(seed=7)  # the seed's network
    kwargs = dict(batch_size=16, X_val=X_val, y_val=y_val,
                  early_stopping_patience=20, verbose=0)
    if mode == "first":
        model.train(X, y, epochs=3, **kwargs)
        model.save(path)
        history = model.history
    elif mode == "resume":
        history = model.train(X, y, epochs=6, resume_from=path, **kwargs)
    else:
        history = model.train(X, y, epochs=6, **kwargs)
    arrays = {f"w{i}": w for i, w in enumerate(model.get_weights())}
    arrays.update({f"h_{k}": np.array(v) for k, v in history.items()})
    np.savez(out, **arrays)
    """
)


def run(script_path, *args):
    subprocess.run(
        [sys.executable, str(script_path), *map(str, args)], check=True, timeout=300
    )


def test_resume_in_a_new_process_is_bitwise_identical(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(RUN_SCRIPT)
    run(script, "first", tmp_path / "checkpoint.npz", tmp_path / "first.npz")
    run(script, "resume", tmp_path / "checkpoint.npz", tmp_path / "resumed.npz")
    run(script, "straight", tmp_path / "unused.npz", tmp_path / "straight.npz")
    with (
        np.load(tmp_path / "resumed.npz") as resumed,
        np.load(tmp_path / "straight.npz") as straight,
    ):
        assert resumed.files == straight.files
        assert len(straight["h_loss"]) == 6
        for name in straight.files:
            assert resumed[name].tobytes() == straight[name].tobytes(), name


def small_model(loss_name="bce", seed=0):
    model = NeuralNetwork(loss_name=loss_name, optimizer=Adam(0.01), seed=seed)
    model.add(Dense(2, 8))
    model.add(Activation("relu"))
    model.add(Dropout(0.1))
    model.add(Dense(8, 1))
    model.add(Activation("sigmoid"))
    return model


def test_resume_refuses_a_file_from_another_network(tmp_path):
    X, y, _, _ = get_toy_data(n_samples=64)
    model = small_model()
    model.train(X, y, epochs=1, verbose=0)
    model.save(tmp_path / "a.npz")
    other = NeuralNetwork(loss_name="bce", optimizer=Adam(0.01))
    other.add(Dense(2, 1))
    other.add(Activation("sigmoid"))
    before = other.get_weights()
    with pytest.raises(
        ValueError, match=r"resume_from: expected a file saved from this network"
    ):
        other.train(X, y, epochs=2, verbose=0, resume_from=tmp_path / "a.npz")
    np.testing.assert_array_equal(before[0], other.get_weights()[0])
    fresh = small_model()
    fresh.save(tmp_path / "untrained.npz")
    with pytest.raises(ValueError, match=r"expected a file saved after training"):
        fresh.train(X, y, epochs=2, verbose=0, resume_from=tmp_path / "untrained.npz")


def test_loaded_model_keeps_its_optimizer_state(tmp_path):
    X, y, _, _ = get_toy_data(n_samples=64)
    model = small_model()
    model.train(X, y, epochs=2, batch_size=16, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = NeuralNetwork.load(tmp_path / "m.npz")
    assert loaded.optimizer.iterations == model.optimizer.iterations == 8
    for mine, theirs in zip(model.optimizer.state, loaded.optimizer.state, strict=True):
        for key in mine:
            np.testing.assert_array_equal(mine[key], theirs[key])
    assert loaded.history == model.history and loaded.epochs_done == 2


def test_trains_on_a_memory_mapped_file(tmp_path):
    X, y, X_val, y_val = get_toy_data(n_samples=600)
    np.save(tmp_path / "X.npy", X.astype(np.float32))
    X_mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    model = small_model(seed=1)
    history = model.train(X_mapped, y, epochs=3, verbose=0, X_val=X_val, y_val=y_val)
    reference = small_model(seed=1)
    expected = reference.train(
        X.astype(np.float32), y, epochs=3, verbose=0, X_val=X_val, y_val=y_val
    )
    assert history == expected
    np.testing.assert_array_equal(model.predict(X_mapped), reference.predict(X))


def test_trains_on_a_batch_generator_function():
    X, y, X_val, y_val = get_toy_data(n_samples=400)

    def batches():
        for start in range(0, len(X), 50):
            yield X[start : start + 50], y[start : start + 50]

    model = small_model()
    history = model.train(batches, epochs=30, X_val=X_val, y_val=y_val, verbose=0)
    assert len(history["loss"]) == 30
    assert history["val_accuracy"][-1] > 0.8
    assert model.evaluate(batches)["loss"] == pytest.approx(
        model.evaluate(X, y)["loss"], rel=1e-5
    )
    np.testing.assert_allclose(model.predict(batches()), model.predict(X), rtol=1e-6)
    with pytest.raises(
        ValueError, match=r"X: expected an iterable that can be read once per epoch"
    ):
        model.train(batches(), epochs=2, verbose=0)
    one_pass = model.train(batches(), epochs=1, verbose=0)
    assert len(one_pass["loss"]) == 1


def test_bad_batch_in_a_stream_is_named():
    X, y, _, _ = get_toy_data(n_samples=40)
    model = small_model()
    with pytest.raises(
        ValueError, match=r"expected batches as \(x_batch, y_batch\) pairs"
    ):
        model.train(lambda: iter([X]), epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"X: expected finite values"):
        model.train(lambda: [(np.full((4, 2), np.nan), y[:4])], epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"y: expected None when X yields"):
        model.train(lambda: [(X, y)], y, epochs=1, verbose=0)


def test_ctrl_c_stops_after_the_batch_and_keeps_best_weights():
    X, y, X_val, y_val = get_toy_data(n_samples=320)

    class PressCtrlC(Callback):
        """Simulates Ctrl-C in the 3rd batch of the 4th epoch."""

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_batch_end(self, batch, logs=None):
            if self.epoch == 3 and batch == 2:
                raise KeyboardInterrupt

    model = small_model()
    model.optimizer.learning_rate = 0.2
    snapshots = []

    class Snapshot(Callback):
        def on_epoch_end(self, epoch, logs=None):
            snapshots.append(self.model.get_weights())

    history = model.train(
        X,
        y,
        epochs=10,
        X_val=X_val,
        y_val=y_val,
        early_stopping_patience=10,
        verbose=0,
        callbacks=[PressCtrlC(), Snapshot()],
    )
    assert len(history["loss"]) == 3
    best = int(np.argmin(history["val_loss"]))
    for restored, expected in zip(model.get_weights(), snapshots[best], strict=True):
        np.testing.assert_array_equal(restored, expected)


def test_real_sigint_stops_at_a_batch_boundary(tmp_path):
    script = tmp_path / "sigint.py"
    script.write_text(
        textwrap.dedent("""
        import os, signal
        import numpy as np
        from nnscratch import Callback, Dense, NeuralNetwork, SGD

        class SendSigint(Callback):
            def on_batch_end(self, batch, logs=None):
                if batch == 5:
                    os.kill(os.getpid(), signal.SIGINT)
                self.batches = batch + 1

        sender = SendSigint()
        model = NeuralNetwork(loss_name="mse", optimizer=SGD(0.01), seed=0)
        model.add(Dense(3, 1))
        X = np.ones((100, 3))
        history = model.train(X, X[:, :1], epochs=5, batch_size=10, verbose=0,
                              callbacks=[sender])
        print(sender.batches, model.optimizer.iterations, len(history))
    """)
    )
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    # Stopped right after the 6th batch finished: 6 steps, no epoch recorded.
    assert result.stdout.split() == ["6", "6", "0"]


def test_diverging_step_leaves_batchnorm_statistics_untouched():
    rng = np.random.default_rng(0)
    model = NeuralNetwork(loss_name="mse", optimizer=SGD(0.01), seed=0, dtype="float64")
    model.add(Dense(2, 3))
    model.add(BatchNorm(3))
    model.add(Dense(3, 1))
    X = rng.standard_normal((8, 2))
    model.train(X, X[:, :1], epochs=1, batch_size=4, verbose=0)
    before = model.get_weights()
    y_bad = np.full((8, 1), 1e300)  # finite targets whose squared error overflows
    with pytest.warns(RuntimeWarning, match=r"epoch 1, batch 1: the loss is inf"):
        model.train(X, y_bad, epochs=1, batch_size=4, verbose=0)
    for a, b in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_batch_split_leaving_one_sample_for_batchnorm_is_refused():
    model = NeuralNetwork(loss_name="mse", optimizer=SGD(0.01), seed=0)
    model.add(Dense(2, 3))
    model.add(BatchNorm(3))
    X = np.ones((9, 2))
    with pytest.raises(
        ValueError,
        match=r"BatchNorm needs at least 2 samples per training batch. "
        r"Received batch_size=4, which leaves a last batch of 1 of 9",
    ):
        model.train(X, np.ones((9, 3)), epochs=1, batch_size=4, verbose=0)
    model.train(X, np.ones((9, 3)), epochs=1, batch_size=3, verbose=0)
