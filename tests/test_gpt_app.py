"""The char-GPT application: a transformer model saved with its tokenizer,
loaded and resumed exactly; the tokenizer in a file is untrusted input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import load_script

from nnscratch import CharTokenizer, NeuralNetwork, generate
from nnscratch.apps.gpt import build_char_gpt, cosine_decay, train_for
from nnscratch.utils.text import next_token_windows

TEXT = "def add(a, b):\n    return a + b\n\n" * 20


def tiny_gpt(tokenizer: CharTokenizer) -> NeuralNetwork:
    model = build_char_gpt(
        tokenizer.vocab_size, context=8, width=16, num_heads=2, num_blocks=1,
        dropout=0.1, seed=0,
    )  # fmt: skip
    model.tokenizer = tokenizer
    return model


@pytest.fixture
def windows():
    tokenizer = CharTokenizer().fit(TEXT)
    X, y = next_token_windows(tokenizer.encode(TEXT), 8, stride=4)
    return tokenizer, X, y


def test_a_transformer_saves_and_loads_with_its_tokenizer(tmp_path, windows):
    tokenizer, X, y = windows
    model = tiny_gpt(tokenizer)
    model.train(X, y, epochs=1, batch_size=16, verbose=0)
    model.save(tmp_path / "gpt.npz")
    loaded = NeuralNetwork.load(tmp_path / "gpt.npz")
    assert loaded.tokenizer.get_config() == tokenizer.get_config()
    assert np.array_equal(loaded.predict(X), model.predict(X))
    prompt = loaded.tokenizer.encode("def ")
    same = [generate(m, prompt, 12, seed=3) for m in (model, loaded)]
    assert np.array_equal(*same)


def test_a_transformer_resumes_exactly_with_its_tokenizer(tmp_path, windows):
    tokenizer, X, y = windows
    whole = tiny_gpt(tokenizer)
    whole.train(X, y, epochs=4, batch_size=16, verbose=0)
    half = tiny_gpt(tokenizer)
    half.train(X, y, epochs=2, batch_size=16, verbose=0)
    half.save(tmp_path / "half.npz")
    resumed = tiny_gpt(tokenizer)
    resumed.train(
        X, y, epochs=4, batch_size=16, verbose=0, resume_from=tmp_path / "half.npz"
    )
    for a, b in zip(whole.get_weights(), resumed.get_weights(), strict=True):
        assert np.array_equal(a, b)
    assert NeuralNetwork.load(tmp_path / "half.npz").tokenizer.vocab_size == (
        tokenizer.vocab_size
    )


@pytest.mark.parametrize(
    ("tokenizer", "message"),
    [
        ({"type": "Pickle", "config": {}}, r"expected tokenizer null or"),
        ({"type": "CharTokenizer", "config": {"chars": 5}}, r"expected a string"),
        ({"type": "CharTokenizer", "config": {"chars": "aa"}}, r"distinct characters"),
        ({"type": "CharTokenizer", "config": {}}, r"CharTokenizer: expected a config"),
    ],
)
def test_a_hostile_tokenizer_in_a_file_is_refused(
    tmp_path, windows, tokenizer, message
):
    model = tiny_gpt(windows[0])
    path = tmp_path / "gpt.npz"
    model.save(path)
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    config = json.loads(str(arrays["__config__"]))
    config["tokenizer"] = tokenizer
    arrays["__config__"] = np.array(json.dumps(config))
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=message):
        NeuralNetwork.load(tmp_path / "bad.npz")


def test_training_rounds_stop_at_the_round_limit_or_the_time(windows):
    tokenizer, X, y = windows
    options = {"steps_per_round": 2, "batch_size": 8}
    history = train_for(tiny_gpt(tokenizer), (X, y), (X, y), 1e6, rounds=3, **options)
    assert len(history["val_loss"]) == 3
    # No time at all: the first round ends the run.
    history = train_for(tiny_gpt(tokenizer), (X, y), (X, y), 0.0, **options)
    assert len(history["val_loss"]) == 1


def test_the_cosine_decay_runs_from_one_to_the_final_fraction():
    factors = [cosine_decay(p, 0.1) for p in np.linspace(-0.5, 1.5, 41)]
    assert factors[:11] == [1.0] * 11 and factors[-11:] == [0.1] * 11
    assert cosine_decay(0.5, 0.1) == pytest.approx(0.55, abs=1e-15)
    assert all(np.diff(factors) <= 0.0)


def test_each_round_takes_the_decayed_learning_rate(windows):
    tokenizer, X, y = windows
    options = {"steps_per_round": 2, "batch_size": 8, "rounds": 3}
    model = tiny_gpt(tokenizer)
    first = model.optimizer.learning_rate
    rates = []

    def record(*args, **kwargs):
        rates.append(model.optimizer.learning_rate)
        return train(*args, **kwargs)

    train, model.train = model.train, record
    train_for(model, (X, y), (X, y), 1e6, final_lr_fraction=0.2, **options)
    # With all the time in the world the rounds say how far the run is.
    assert rates == [first * cosine_decay(r / 3, 0.2) for r in range(3)]
    constant = tiny_gpt(tokenizer)
    train_for(constant, (X, y), (X, y), 1e6, final_lr_fraction=1.0, **options)
    assert constant.optimizer.learning_rate == first


@pytest.mark.parametrize("fraction", [-0.1, 1.5, float("nan"), "0.1"])
def test_a_bad_final_learning_rate_fraction_is_refused_before_training(
    windows, fraction
):
    tokenizer, X, y = windows
    model = tiny_gpt(tokenizer)
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"final_lr_fraction: expected a number in"):
        train_for(model, (X, y), (X, y), 1e6, rounds=1, final_lr_fraction=fraction)
    assert all(
        np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True)
    )


def load_char_gpt_script():
    """``experiments/char_gpt.py`` as a module (experiments is no package)."""
    return load_script("experiments/char_gpt.py", "char_gpt_script")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], 300_000),
        (["--distributed"], 1_000_000),  # more steps in the time: more text
        (["--distributed", "--max-chars", "5000"], 5000),
        (["--max-chars", "5000"], 5000),
    ],
)
def test_the_script_reads_more_text_when_distributed(monkeypatch, argv, expected):
    import nnscratch.distributed

    script = load_char_gpt_script()
    calls = []
    monkeypatch.setattr(script, "run_char_gpt", lambda *args, **kw: calls.append(args))
    monkeypatch.setattr(nnscratch.distributed, "DataParallel", lambda: "mpi")
    script.main(argv)
    (args,) = calls
    assert args[2] == expected  # run_char_gpt(seconds, text_path, max_chars, ...)
