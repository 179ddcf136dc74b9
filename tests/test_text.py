"""CharTokenizer, load_text, next_token_windows and generate (cached = uncached)."""

from __future__ import annotations

import numpy as np
import pytest

from nnscratch import Activation, Dense, NeuralNetwork
from nnscratch.layers.attention import MultiHeadAttention
from nnscratch.layers.embedding import Embedding
from nnscratch.layers.layernorm import LayerNorm
from nnscratch.layers.lstm import LSTM
from nnscratch.layers.positional_embedding import PositionalEmbedding
from nnscratch.layers.transformer import TransformerBlock
from nnscratch.utils.text import (
    CharTokenizer,
    generate,
    load_text,
    next_token_windows,
)


def tiny_gpt(vocab=7, context=6, width=8, dtype="float64", softmax=True, seed=0):
    model = NeuralNetwork(loss_name="cce", seed=seed, dtype=dtype)
    for layer in (
        Embedding(vocab, width),
        PositionalEmbedding(context, width),
        TransformerBlock(width, 2, mlp_ratio=2),
        TransformerBlock(width, 2, mlp_ratio=2),
        LayerNorm(width),
        Dense(width, vocab),
    ):
        model.add(layer)
    if softmax:
        model.add(Activation("softmax"))
    return model


# ----------------------------------------------------------------- tokenizer
def test_tokenizer_round_trip_and_config():
    text = "To be, or not to be:\nthat is the question."
    tokenizer = CharTokenizer().fit(text)
    assert tokenizer.vocab_size == len(set(text))
    assert tokenizer.chars == "".join(sorted(set(text)))
    ids = tokenizer.encode(text)
    assert ids.dtype == np.int64 and ids.shape == (len(text),)
    assert tokenizer.decode(ids) == text
    again = CharTokenizer.from_config(tokenizer.get_config())
    np.testing.assert_array_equal(again.encode(text), ids)


def test_tokenizer_bad_input_by_message():
    tokenizer = CharTokenizer().fit("abc")
    with pytest.raises(ValueError, match=r"fitted vocabulary. Received \['z'\]"):
        tokenizer.encode("abz")
    with pytest.raises(ValueError, match=r"expected ids in \[0, 3\)"):
        tokenizer.decode([0, 3])
    with pytest.raises(ValueError, match="expected fit"):
        CharTokenizer().encode("a")
    with pytest.raises(ValueError, match="distinct characters"):
        CharTokenizer("aa")
    with pytest.raises(ValueError, match="expected a config"):
        CharTokenizer.from_config({"vocab": "ab"})


# -------------------------------------------------------------------- corpus
def test_default_corpus_is_the_standard_library_repeatably():
    text = load_text(max_chars=20_000)
    assert len(text) == 20_000 and text == load_text(max_chars=20_000)
    assert "Abstract Base Classes" in text[:200]  # abc.py comes first
    assert set(text) <= {"\n"} | {chr(c) for c in range(32, 127)}
    assert "def " in text and "\t" not in text


def test_user_file_and_missing_file(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_bytes("héllo\r\nworld\t!".encode())
    assert load_text(path) == "héllo\nworld    !"
    assert load_text(path, max_chars=3) == "hél"
    with pytest.raises(ValueError, match="expected a text file"):
        load_text(tmp_path / "missing.txt")


def test_next_token_windows():
    X, y = next_token_windows(np.arange(10), 4, stride=3)
    assert X.tolist() == [[0, 1, 2, 3], [3, 4, 5, 6]]
    np.testing.assert_array_equal(y, X + 1)
    with pytest.raises(ValueError, match="at least length"):
        next_token_windows(np.arange(3), 3)


# ----------------------------------------------------------------- generation
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize(("prompt", "new"), [(1, 4), (3, 9)])  # 3 + 9 > context 6
def test_cached_generation_gives_the_uncached_ids(dtype, prompt, new):
    model = tiny_gpt(dtype=dtype)
    prompt_ids = np.random.default_rng(1).integers(0, 7, size=(3, prompt))
    kwargs = {"max_new_tokens": new, "temperature": 1.0, "seed": 5}
    cached = generate(model, prompt_ids, **kwargs)
    uncached = generate(model, prompt_ids, use_cache=False, **kwargs)
    assert cached.shape == (3, prompt + new)
    np.testing.assert_array_equal(cached, uncached)
    np.testing.assert_array_equal(cached[:, :prompt], prompt_ids)
    # top-k and greedy decoding agree as well.
    for extra in ({"top_k": 2}, {"temperature": 0.0}):
        args = {**kwargs, **extra}
        np.testing.assert_array_equal(
            generate(model, prompt_ids, **args),
            generate(model, prompt_ids, use_cache=False, **args),
        )


def test_each_new_token_costs_one_position(monkeypatch):
    model = tiny_gpt(context=16)
    widths = []
    original = MultiHeadAttention.forward_step

    def spy(self, x, cache):
        widths.append(x.shape[1])
        return original(self, x, cache)

    monkeypatch.setattr(MultiHeadAttention, "forward_step", spy)
    generate(model, np.array([1, 2, 3, 4]), max_new_tokens=5, seed=0)
    # Two blocks: the prompt once (4 positions), then one position per token.
    assert widths == [4, 4] + [1, 1] * 4


def test_greedy_generation_is_the_argmax_and_seed_repeats():
    model = tiny_gpt(softmax=False)
    ids = generate(model, np.array([0, 1]), max_new_tokens=3, temperature=0.0)
    assert ids.shape == (5,)
    probabilities = model.predict(ids[None, :4])
    assert ids[4] == np.argmax(probabilities[0, -1])
    first = generate(model, np.array([0]), 6, seed=3)
    np.testing.assert_array_equal(first, generate(model, np.array([0]), 6, seed=3))
    top1 = generate(model, np.array([0]), 6, top_k=1, seed=9)
    np.testing.assert_array_equal(top1, generate(model, np.array([0]), 6, 0.0))


def test_generation_without_attention_takes_the_uncached_path():
    model = NeuralNetwork(loss_name="cce", seed=0, dtype="float64")
    for layer in (Embedding(5, 4), LSTM(4, 6, return_sequences=True), Dense(6, 5)):
        model.add(layer)
    ids = generate(model, np.array([[1, 2]]), max_new_tokens=3, seed=0)
    assert ids.shape == (1, 5)
    np.testing.assert_array_equal(
        ids, generate(model, np.array([[1, 2]]), 3, seed=0, use_cache=False)
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prompt_ids": np.zeros((1, 0), int)}, "T >= 1"),
        ({"prompt_ids": np.array([0.5])}, "expected integer token ids"),
        ({"prompt_ids": np.array([9])}, r"expected ids in \[0, 7\)"),
        ({"max_new_tokens": -1}, "max_new_tokens: expected >= 0"),
        ({"temperature": -1.0}, "temperature: expected a number"),
        ({"top_k": 0}, "top_k: expected a positive integer"),
    ],
)
def test_generate_bad_input_by_message(kwargs, message):
    model = tiny_gpt()
    args = {"prompt_ids": np.array([0]), "max_new_tokens": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        generate(model, **args)
