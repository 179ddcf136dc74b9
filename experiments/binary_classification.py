"""Train the seed's network on noisy concentric circles and plot the result.

Run ``python experiments/binary_classification.py [--output-dir DIR]``. It
prints the final metrics and writes ``history.png`` and
``decision_boundary.png`` into the output folder (``outputs/`` by default).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from nnscratch import Activation, Adam, Dense, Dropout, NeuralNetwork
from nnscratch.utils.data import get_toy_data
from nnscratch.utils.visualization import plot_decision_boundary, plot_history


def build_model(seed: int = 0) -> NeuralNetwork:
    """The seed's 2-16-8-1 network: He/Xavier, L2 0.01, Dropout 0.2, Adam 0.01."""
    model = NeuralNetwork(
        loss_name="bce", optimizer=Adam(learning_rate=0.01), seed=seed
    )
    model.add(Dense(input_size=2, output_size=16, initialization="he", l2_lambda=0.01))
    model.add(Activation("relu"))
    model.add(Dropout(0.2))
    model.add(Dense(input_size=16, output_size=8, initialization="he", l2_lambda=0.01))
    model.add(Activation("relu"))
    model.add(Dense(input_size=8, output_size=1, initialization="xavier"))
    model.add(Activation("sigmoid"))
    return model


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=Path("outputs"))
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    X_train, y_train, X_val, y_val = get_toy_data(
        n_samples=1000, noise=0.1, seed=args.seed
    )
    model = build_model(seed=args.seed)
    start = time.perf_counter()
    history = model.train(
        X_train,
        y_train,
        epochs=args.epochs,
        batch_size=32,
        X_val=X_val,
        y_val=y_val,
        early_stopping_patience=20,
        verbose=0,
    )
    seconds = time.perf_counter() - start

    print(f"Trained {len(history['loss'])} epochs in {seconds:.2f} s")
    scores = {"train": model.evaluate(X_train, y_train)}
    scores["val"] = model.evaluate(X_val, y_val)
    for split, score in scores.items():
        print(
            f"{split:<5} loss {score['loss']:.4f}  {split} accuracy "
            f"{score['accuracy']:.4f}"
        )

    args.output_dir.mkdir(parents=True, exist_ok=True)
    history_path = args.output_dir / "history.png"
    boundary_path = args.output_dir / "decision_boundary.png"
    plot_history(history, history_path)
    plot_decision_boundary(model, X_val, y_val, boundary_path)
    print(f"wrote {history_path} and {boundary_path}")
    return scores["val"]


if __name__ == "__main__":
    main()
