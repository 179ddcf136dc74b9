"""Round two of the reliability campaign (issue 13): each class of failure
found by attacking the library, as tests. Loaders that could allocate run in
a subprocess under a memory limit and a timeout, so a regression fails
instead of swapping."""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import struct
import subprocess
import sys
import textwrap
import zipfile
import zlib

import numpy as np
import pytest

from nnscratch import Activation, Adam, Dense, NeuralNetwork
from nnscratch.engine.callbacks import (
    Callback,
    LearningRateScheduler,
    ModelCheckpoint,
)
from nnscratch.engine.training import Interrupts, TrainingDivergedWarning
from nnscratch.optimizers.schedules import StepDecay
from nnscratch.utils.data import get_toy_data
from nnscratch.utils.files import read_csv

HOSTILE: list[str] = []
"""Every hostile input below registers itself; see test_hostile_count."""


def hostile(name: str) -> str:
    HOSTILE.append(name)
    return name


def mlp(learning_rate=0.01, seed=0):
    model = NeuralNetwork("bce", Adam(learning_rate), seed=seed)
    model.add(Dense(2, 16))
    model.add(Activation("relu"))
    model.add(Dense(16, 1))
    model.add(Activation("sigmoid"))
    return model


@pytest.fixture(scope="module")
def toy():
    return get_toy_data(n_samples=200)


# ------------------------------------------------------- 1. divergence
def test_a_diverging_update_is_undone_and_reported(toy):
    # Adam's first step is about lr * sign(g): 1e39 leaves float32's range.
    hostile("Adam(1e39) on the seed MLP")
    X, y, _, _ = toy
    model = mlp(1e39)
    before = model.get_weights()
    with pytest.warns(TrainingDivergedWarning, match="last good step"):
        model.train(X, y, epochs=3, verbose=0)
    for array in model.get_weights():
        assert np.isfinite(array).all()
    # The very first update overflowed: the model is as before it.
    for now, then in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(now, then)
    assert model.optimizer.iterations == 0 and model.optimizer.state is None


def test_a_later_diverging_update_restores_the_step_before(toy):
    hostile("learning rate raised to 1e39 mid-run (overflows float32)")
    X, y, _, _ = toy
    model = mlp(0.01)
    model.train(X, y, epochs=1, verbose=0)
    kept = model.get_weights()
    moments = [dict((k, v.copy()) for k, v in s.items()) for s in model.optimizer.state]
    steps = model.optimizer.iterations
    model.optimizer.learning_rate = 1e39
    with pytest.warns(TrainingDivergedWarning, match="update made a weight"):
        model.train(X, y, epochs=1, verbose=0)
    for now, then in zip(model.get_weights(), kept, strict=True):
        np.testing.assert_array_equal(now, then)
    assert model.optimizer.iterations == steps
    for state, saved in zip(model.optimizer.state, moments, strict=True):
        for key in saved:
            np.testing.assert_array_equal(state[key], saved[key])


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_save_refuses_a_non_finite_model_and_keeps_the_old_file(tmp_path, bad):
    hostile(f"save of a model holding {bad}")
    model = mlp()
    path = tmp_path / "good.npz"
    model.save(path)
    good = path.read_bytes()
    model.layers[0].params["W"][0, 0] = bad
    with pytest.raises(ValueError, match="NaN or infinity"):
        model.save(path)
    assert path.read_bytes() == good
    checkpoint = ModelCheckpoint(path, monitor="loss")
    checkpoint.model = model
    with pytest.raises(ValueError, match="NaN or infinity"):
        checkpoint.on_epoch_end(0, {"loss": 0.1})
    assert path.read_bytes() == good
    assert sorted(os.listdir(tmp_path)) == ["good.npz"]  # no stray temp file


# ------------------------------------------ 2. sizes the file does not hold
def _local(name: bytes, crc: int, size: int) -> bytes:
    return struct.pack(
        "<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0x21, crc, size, size, len(name), 0
    )


def _central(name: bytes, crc: int, size: int, offset: int) -> bytes:
    return struct.pack(
        "<IHHHHHHIIIHHHHHII",
        0x02014B50, 20, 20, 0, 0, 0, 0x21, crc, size, size, len(name),
        0, 0, 0, 0, 0, offset,
    )  # fmt: skip


def write_zip(path, entries, holes=None):
    """A stored zip of ``entries`` (name -> bytes); ``holes`` (name ->
    (header bytes, data bytes)) are entries whose data is a hole: seeked
    over, never written, so the file is sparse."""
    holes = holes or {}
    central, position = b"", 0
    with open(path, "wb") as handle:
        for name, data in list(entries.items()) + list(holes.items()):
            key = name.encode()
            if isinstance(data, tuple):
                header, length = data
                size, crc = len(header) + length, 0
            else:
                size, crc = len(data), zlib.crc32(data)
            central += _central(key, crc, size, position) + key
            handle.write(_local(key, crc, size) + key)
            if isinstance(data, tuple):
                handle.write(data[0])
                handle.seek(data[1], os.SEEK_CUR)
            else:
                handle.write(data)
            position = handle.tell()
        handle.write(central)
        count = len(entries) + len(holes)
        handle.write(
            struct.pack(
                "<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), position, 0
            )
        )


def npy_header(descr, shape):
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return buffer.getvalue()


def config_entry(config):
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.array(json.dumps(config)))
    return buffer.getvalue()


def huge_dense_config(units):
    model = NeuralNetwork("mse", Adam(), seed=0)
    model.add(Dense(2, 2))
    config = {"format": "nnscratch-model", "version": 1, **model.get_config()}
    config["layers"][0]["config"]["output_size"] = units
    return config


LIMITED_LOAD = textwrap.dedent(
    """
    import resource, sys, time
    limit = 1536 * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from nnscratch import NeuralNetwork
    start = time.perf_counter()
    try:
        NeuralNetwork.load(sys.argv[1])
    except ValueError as error:
        # VmHWM belongs to this process's own memory map: ru_maxrss would
        # also count the pytest process this one was forked from.
        status = open("/proc/self/status").read().split("VmHWM:")[1]
        peak = int(status.split()[0])
        print("REFUSED", time.perf_counter() - start, peak, error)
    else:
        print("LOADED")
    """
)


def limited_load(path):
    result = subprocess.run(
        [sys.executable, "-c", LIMITED_LOAD, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.stdout + result.stderr


def test_a_sparse_file_declaring_a_huge_layer_is_refused_cheaply(tmp_path):
    hostile("sparse file declaring Dense(2, 2**27)")
    units = 2**27
    path = tmp_path / "sparse.npz"
    write_zip(
        path,
        {"__config__.npy": config_entry(huge_dense_config(units))},
        {
            "layers.0.params.W.npy": (npy_header("<f4", (2, units)), 8 * units),
            "layers.0.params.b.npy": (npy_header("<f4", (units,)), 4 * units),
        },
    )
    assert os.stat(path).st_blocks * 512 < 1 << 20  # really sparse
    out = limited_load(path)
    assert out.startswith("REFUSED"), out
    assert "sparse" in out
    seconds, peak_kib = out.split()[1:3]
    assert float(seconds) < 5 and int(peak_kib) < 400 * 1024


def test_entries_sharing_their_data_are_refused(tmp_path):
    hostile("two entries pointing at the same bytes")
    path = tmp_path / "shared.npz"
    model = mlp()
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
    raw = bytearray(path.read_bytes())
    # Point the second central-directory record at the first entry's data.
    first = raw.index(b"PK\x01\x02")
    second = raw.index(b"PK\x01\x02", first + 1)
    struct.pack_into("<I", raw, second + 42, infos[0].header_offset)
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="cannot load model"):
        NeuralNetwork.load(path)


def test_a_deflated_entry_claiming_more_than_deflate_can_hold(tmp_path):
    hostile("deflated entry declaring 2000x its stored size")
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("__config__.npy", config_entry(huge_dense_config(2)))
    raw = bytearray(path.read_bytes())
    central = raw.index(b"PK\x01\x02")
    (compressed,) = struct.unpack_from("<I", raw, central + 20)
    struct.pack_into("<I", raw, central + 24, compressed * 2000)
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="more than its compression can hold"):
        NeuralNetwork.load(path)


# ---------------------------------------------- 3. not a regular file
def test_load_refuses_special_files(tmp_path):
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    for path, kind in (("/dev/zero", "character device"), (fifo, "FIFO")):
        hostile(f"load of {kind}")
        out = limited_load(path)
        assert out.startswith("REFUSED") and kind in out, out
    hostile("load of a directory")
    with pytest.raises(ValueError, match="directory"):
        NeuralNetwork.load(tmp_path)


def test_save_refuses_special_files_and_directories(tmp_path):
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    for path, kind in ((fifo, "FIFO"), (tmp_path, "directory"), ("/dev/null", "")):
        hostile(f"save onto {path}")
        with pytest.raises(ValueError, match=f"regular file.*{kind}"):
            mlp().save(path)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_missing_file_says_so(tmp_path):
    hostile("load of a missing file")
    for kind in (FileNotFoundError, ValueError):
        with pytest.raises(kind, match="no such file"):
            NeuralNetwork.load(tmp_path / "missing.npz")


# ------------------------------------------------- 4. a second Ctrl-C
def test_a_second_ctrl_c_inside_a_step_waits_for_the_step():
    hostile("second Ctrl-C inside an optimizer step")
    interrupts = Interrupts()
    interrupts.handle(signal.SIGINT, None)  # first: a request
    assert interrupts.pressed()
    done = []
    with pytest.raises(KeyboardInterrupt, match="whole step"):
        with interrupts.atomic():
            interrupts.handle(signal.SIGINT, None)
            done.append("rest of the step")
    assert done == ["rest of the step"]
    with pytest.raises(KeyboardInterrupt):  # outside a step: at once
        interrupts.handle(signal.SIGINT, None)


def test_a_second_ctrl_c_during_training_is_raised_after_a_whole_step(toy):
    hostile("two SIGINTs, the second during Adam's update")
    X, y, _, _ = toy
    model, reference = mlp(), mlp()
    calls = []
    update = model.optimizer.update

    def update_with_sigint(param, grad, state, next_state, out):
        # One update per step over the flat buffer: both presses inside
        # step 1, the first before the update, the second after.
        calls.append(1)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)
        update(param, grad, state, next_state, out)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGINT)

    model.optimizer.update = update_with_sigint
    with pytest.raises(KeyboardInterrupt):
        model.train(X, y, epochs=1, batch_size=32, verbose=0)
    steps = len(calls)  # whole steps only: every update ran to its end
    assert steps == 1
    reference.train(X[:32], y[:32], epochs=steps, batch_size=32, verbose=0)
    assert model.optimizer.iterations == steps


# ----------------------------------------- 5. values that overflow the dtype
@pytest.mark.parametrize("value", [1e300, -1e300, 3.5e38])
def test_values_that_overflow_float32_are_refused(toy, value):
    hostile(f"X holding {value} for a float32 model")
    X, y, _, _ = toy
    model = mlp()
    before = model.get_weights()
    bad = X.astype(np.float64).copy()
    bad[5, 1] = value
    match = "fit the model's dtype float32"
    with pytest.raises(ValueError, match=match):
        model.predict(bad)
    with pytest.raises(ValueError, match=match):
        model.train(bad, y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=match):
        model.evaluate(bad, y)
    with pytest.raises(ValueError, match=match):
        model.train(lambda: [(bad, y)], epochs=1, verbose=0)
    for now, then in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(now, then)


# ----------------------------------- 6. a refused call changes nothing
def test_refused_calls_change_nothing(toy, tmp_path):
    X, y, X_val, y_val = toy
    model = mlp()
    model.train(X, y, epochs=2, verbose=0)
    ckpt = tmp_path / "run.npz"
    model.save(ckpt)
    fresh = mlp(seed=1)
    weights, history = fresh.get_weights(), dict(fresh.history)
    attempts = {
        "resume with a one-pass generator": dict(
            X=(b for b in [(X, y)]), epochs=5, resume_from=ckpt
        ),
        "resume with a non-callback": dict(
            X=X, y=y, epochs=5, resume_from=ckpt, callbacks=["nope"]
        ),
        "checkpoint naming val_loss without validation data": dict(
            X=X, y=y, epochs=5, resume_from=ckpt,
            callbacks=[ModelCheckpoint(tmp_path / "m-{val_loss:.3f}.npz")],
        ),
        "checkpoint with a bad format": dict(
            X=X, y=y, epochs=5, callbacks=[ModelCheckpoint(tmp_path / "m-{loss:q}")]
        ),
    }  # fmt: skip
    for name, options in attempts.items():
        hostile(name)
        options.setdefault("verbose", 0)
        data = options.pop("X"), options.pop("y", None)
        with pytest.raises(ValueError):
            fresh.train(*data, **options)
        for now, then in zip(fresh.get_weights(), weights, strict=True):
            np.testing.assert_array_equal(now, then)
        assert fresh.history == history and fresh.optimizer.iterations == 0
    trained = mlp()
    trained.train(X, y, epochs=1, verbose=0)
    kept = dict(trained.history)
    hostile("invalid callback after training")
    with pytest.raises(ValueError, match="callbacks\\[0\\]"):
        trained.train(X, y, epochs=1, verbose=0, callbacks=[object()])
    assert trained.history == kept
    assert not list(tmp_path.glob("m-*"))


# ------------------------------------------------------ 8. exact resume
def test_a_fresh_scheduler_on_resume_continues_the_schedule(toy, tmp_path):
    hostile("resume with a fresh LearningRateScheduler")
    X, y, _, _ = toy
    schedule = StepDecay(step_size=1, gamma=0.5)
    whole = mlp(0.1)
    whole.train(X, y, epochs=4, verbose=0, callbacks=[LearningRateScheduler(schedule)])
    path = tmp_path / "ckpt-{epoch}.npz"

    class StopAfter2(Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.model.stop_training = True

    first = mlp(0.1)
    # The checkpoint runs before the scheduler: the file still holds the
    # rate of its epoch.
    first.train(
        X,
        y,
        epochs=4,
        verbose=0,
        callbacks=[
            ModelCheckpoint(path, monitor="loss"),
            LearningRateScheduler(schedule),
            StopAfter2(),
        ],
    )
    saved = NeuralNetwork.load(tmp_path / "ckpt-2.npz")
    assert saved.history["learning_rate"] == [0.1, 0.05]
    resumed = mlp(0.1)
    history = resumed.train(
        X,
        y,
        epochs=4,
        verbose=0,
        resume_from=tmp_path / "ckpt-2.npz",
        callbacks=[LearningRateScheduler(schedule)],
    )
    assert history["learning_rate"] == whole.history["learning_rate"]
    for a, b in zip(resumed.get_weights(), whole.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def dropout_mlp(seed=0):
    from nnscratch import Dropout

    model = NeuralNetwork("bce", Adam(0.01), seed=seed)
    for layer in (Dense(2, 16), Activation("relu"), Dropout(0.2), Dense(16, 1)):
        model.add(layer)
    model.add(Activation("sigmoid"))
    return model


@pytest.mark.parametrize("stop_at", [(0, 2), (1, 0), (1, 5)])
def test_saving_after_a_mid_epoch_ctrl_c_resumes_exactly(toy, tmp_path, stop_at):
    hostile(f"save after Ctrl-C at epoch {stop_at[0]}, batch {stop_at[1]}")
    X, y, _, _ = toy
    whole = dropout_mlp()
    whole.train(X, y, epochs=3, batch_size=16, verbose=0)

    class CtrlC(Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_batch_end(self, batch, logs=None):
            if (self.epoch, batch) == stop_at:
                raise KeyboardInterrupt

    cut = dropout_mlp()
    cut.train(X, y, epochs=3, batch_size=16, verbose=0, callbacks=[CtrlC()])
    path = tmp_path / "cut.npz"
    cut.save(path)
    resumed = dropout_mlp(seed=5)
    history = resumed.train(X, y, epochs=3, batch_size=16, verbose=0, resume_from=path)
    assert resumed.optimizer.iterations == whole.optimizer.iterations
    for a, b in zip(resumed.get_weights(), whole.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(history["loss"], whole.history["loss"], rtol=1e-12)


def test_a_forged_epoch_position_is_refused(toy, tmp_path):
    hostile("checkpoint with a forged epoch position")
    X, y, _, _ = toy
    model = dropout_mlp()

    class CtrlC(Callback):
        def on_batch_end(self, batch, logs=None):
            if batch == 3:
                raise KeyboardInterrupt

    model.train(X, y, epochs=2, batch_size=16, verbose=0, callbacks=[CtrlC()])
    path = tmp_path / "cut.npz"
    model.save(path)
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files}
    config = json.loads(str(arrays["__config__"]))
    config["training"]["epoch_position"]["batches_done"] = 2**1100
    arrays["__config__"] = np.array(json.dumps(config))
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="epoch_position"):
        NeuralNetwork.load(path)


# ------------------------------------------------ 9. absurd numbers in a file
@pytest.mark.parametrize(
    "edit",
    [
        ("optimizer", "iterations", 2**1100),
        ("history", "loss", [2**1100]),
        ("early_stopping", "best", 2**1100),
    ],
)
def test_absurd_training_numbers_are_refused_at_load(toy, tmp_path, edit):
    hostile(f"checkpoint with {edit[0]}.{edit[1]} = 2**1100")
    X, y, X_val, y_val = toy
    model = mlp()
    model.train(
        X, y, epochs=1, verbose=0, X_val=X_val, y_val=y_val, early_stopping_patience=3
    )
    path = tmp_path / "m.npz"
    model.save(path)
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files}
    config = json.loads(str(arrays["__config__"]))
    section, key, value = edit
    target = config["training"][section]
    (target[0] if isinstance(target, list) else target)[key] = value
    arrays["__config__"] = np.array(json.dumps(config))
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="cannot load model"):
        NeuralNetwork.load(path)


# ---------------------------------------------------------- 10. file modes
def test_save_never_touches_the_umask_and_keeps_modes(tmp_path, monkeypatch):
    hostile("re-save over a 0600 model")
    path = tmp_path / "m.npz"
    model = mlp()

    def forbidden(mask):
        raise AssertionError("save must not touch the umask")

    mask = os.umask(0o022)
    try:
        monkeypatch.setattr(os, "umask", forbidden)
        model.save(path)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
        os.chmod(path, 0o600)
        model.save(path)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    finally:
        monkeypatch.undo()
        os.umask(mask)


# ------------------------------------------------------------ 11. smaller
def test_a_250_character_name_saves_and_loads(tmp_path):
    hostile("250-character file name")
    path = tmp_path / ("m" * 246 + ".npz")
    mlp().save(path)
    assert isinstance(NeuralNetwork.load(path), NeuralNetwork)


def test_messages_stay_short_for_archives_of_many_long_names(tmp_path):
    hostile("archive of 2000 entries with 5000-character names")
    path = tmp_path / "many.npz"
    entries = {"__config__.npy": config_entry(huge_dense_config(2))}
    for name, shape in (("W", (2, 2)), ("b", (2,))):
        buffer = io.BytesIO()
        np.save(buffer, np.zeros(shape, np.float32))
        entries[f"layers.0.params.{name}.npy"] = buffer.getvalue()
    for i in range(2000):
        entries[f"{i}{'x' * 5000}.npy"] = npy_header("<f4", (0,))
    write_zip(path, entries)
    with pytest.raises(ValueError) as error:
        NeuralNetwork.load(path)
    assert "unexpected" in str(error.value)
    assert len(str(error.value)) < 2000


@pytest.mark.parametrize(
    "text, match",
    [
        ("a,b,y\n1_000,2,0\n", "expected a number. Received '1_000'"),
        ("a,a,y\n1,2,0\n", "each column name once"),
    ],
)
def test_csv_reader_refuses_digit_groups_and_duplicate_names(tmp_path, text, match):
    hostile(f"CSV {text.splitlines()[0]!r} / {text.splitlines()[1]!r}")
    path = tmp_path / "d.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=match):
        read_csv(path)


def test_csv_reader_memory_is_the_numbers_not_the_text(tmp_path):
    hostile("CSV of 200,000 rows")
    path = tmp_path / "big.csv"
    rows = "\n".join("0.5,1.25,0" for _ in range(200_000))
    path.write_text("a,b,y\n" + rows + "\n")
    import tracemalloc

    tracemalloc.start()
    header, values = read_csv(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert values.shape == (200_000, 3)
    assert peak < 40 * 2**20  # the text as Python strings took ~90 MB


def test_hostile_count():
    """The README's figure: hostile inputs the suite tries (all end as
    promised when this module passes)."""
    assert len(HOSTILE) >= 25, HOSTILE


def test_the_finiteness_check_is_exact_where_squares_overflow():
    hostile("finite float32 weights of 1e30, whose squares overflow")
    from nnscratch.engine.training import all_finite

    big = np.full(10, 1e30, dtype=np.float32)
    assert all_finite([big])  # the sum of squares is inf; each value is finite
    for bad in (np.nan, np.inf, -np.inf):
        spoiled = big.copy()
        spoiled[3] = bad
        assert not all_finite([spoiled])
    assert all_finite([np.zeros((0, 3))])
