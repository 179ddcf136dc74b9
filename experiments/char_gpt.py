"""A small causal transformer (a character-level GPT) trained on Python source.

Run ``python experiments/char_gpt.py [--seconds S] [--output-dir DIR]
[--text FILE]``. The corpus is :func:`nnscratch.utils.text.load_text`: the
Python standard library's own ``.py`` files, on every machine, no download
(or any text file with ``--text``). 90% of it trains and the last 10%
validates; each epoch reads non-overlapping 64-character windows, and
training stops after the epoch that would pass ``--seconds`` (default 110:
about two minutes on 2 cores). It prints the validation loss per epoch and a
generated sample (which by then writes indented ``def``/``return`` lines,
comments and docstrings), and writes ``history.png`` and ``attention.png``
(the first block's attention weights on the sample's start) into the output
folder (``outputs/char_gpt`` by default).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from nnscratch import Activation, AdamW, Callback, Dense, NeuralNetwork
from nnscratch.layers.embedding import Embedding, PositionalEmbedding
from nnscratch.layers.layernorm import LayerNorm
from nnscratch.layers.transformer import TransformerBlock
from nnscratch.utils.text import CharTokenizer, generate, load_text, next_token_windows


def build_char_gpt(
    vocab_size: int,
    context: int = 64,
    width: int = 128,
    num_heads: int = 4,
    num_blocks: int = 2,
    dropout: float = 0.0,
    learning_rate: float = 3e-3,
    seed: int = 0,
) -> NeuralNetwork:
    """Token + position embeddings, ``num_blocks`` pre-norm blocks, a final
    LayerNorm and a Dense softmax over the vocabulary (GPT-2's layout)."""
    model = NeuralNetwork(
        loss_name="cce",
        optimizer=AdamW(learning_rate=learning_rate, weight_decay=0.01, clipnorm=1.0),
        seed=seed,
    )
    model.add(Embedding(vocab_size, width))
    model.add(PositionalEmbedding(context, width))
    for _ in range(num_blocks):
        model.add(TransformerBlock(width, num_heads, dropout=dropout))
    model.add(LayerNorm(width))
    model.add(Dense(width, vocab_size, initialization="xavier"))
    model.add(Activation("softmax"))
    return model


class TimeBudget(Callback):
    """Stop after the epoch that the next one would carry past ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_train_begin(self, logs=None) -> None:
        self.start = self.last = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None) -> None:
        now = time.perf_counter()
        if now + (now - self.last) > self.start + self.seconds:
            self.model.stop_training = True
        self.last = now


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=110.0)
    parser.add_argument("--text", default=None, help="a UTF-8 text file")
    parser.add_argument("--max-chars", type=int, default=300_000)
    parser.add_argument("--output-dir", default="outputs/char_gpt")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=None, help="BLAS threads (1 on a busy machine)"
    )
    args = parser.parse_args(argv)
    if args.threads is not None:
        from nnscratch.utils.threads import set_num_threads

        set_num_threads(args.threads)

    text = load_text(args.text, max_chars=args.max_chars)
    tokenizer = CharTokenizer().fit(text)
    ids = tokenizer.encode(text)
    split = int(0.9 * len(ids))
    context = 64
    X, y = next_token_windows(ids[:split], context)
    X_val, y_val = next_token_windows(ids[split:], context)
    model = build_char_gpt(tokenizer.vocab_size, context=context, seed=args.seed)
    print(
        f"{len(text):,} characters, vocabulary {tokenizer.vocab_size}, "
        f"{len(X):,} training windows of {context}"
    )
    start = time.perf_counter()
    history = model.train(
        X,
        y,
        epochs=100,
        batch_size=32,
        X_val=X_val,
        y_val=y_val,
        verbose=0,
        callbacks=[TimeBudget(args.seconds)],
    )
    seconds = time.perf_counter() - start
    for epoch, loss in enumerate(history["val_loss"], start=1):
        print(f"epoch {epoch}: validation loss {loss:.4f}")
    prompt = tokenizer.encode("def ")
    sample_ids = generate(model, prompt, 400, temperature=0.8, top_k=20, seed=args.seed)
    sample = tokenizer.decode(sample_ids)
    print(f"trained {seconds:.0f} s; validation loss {history['val_loss'][-1]:.4f}")
    print("--- sample ---")
    print(sample)

    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    from nnscratch.utils.attention_plot import plot_attention
    from nnscratch.utils.visualization import plot_history

    plot_history(history, output / "history.png")
    window = sample_ids[None, :32]
    model.forward(window)
    attention = model.layers[2].attention.attention_weights[0]  # (h, T, T)
    plot_attention(
        attention, list(tokenizer.decode(window[0])), output / "attention.png"
    )
    return {
        "val_loss": history["val_loss"][-1],
        "seconds": seconds,
        "sample": sample,
        "tokenizer": tokenizer.get_config(),
    }


if __name__ == "__main__":
    main()
