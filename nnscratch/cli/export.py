"""``nnscratch export MODEL.npz MODEL.onnx``: a saved model as an ONNX file.

:func:`add_export_parser` adds the command to the ``nnscratch`` parser's
subcommands; :func:`run_export` runs it.

Examples
--------
>>> import argparse, os, tempfile
>>> from nnscratch import NeuralNetwork, Dense
>>> folder = tempfile.mkdtemp()
>>> model = NeuralNetwork(loss_name="mse", seed=0)
>>> model.add(Dense(3, 1))
>>> model.save(os.path.join(folder, "model.npz"))
>>> parser = argparse.ArgumentParser(prog="nnscratch")
>>> add_export_parser(parser.add_subparsers(dest="command"))
>>> args = parser.parse_args(
...     ["export", os.path.join(folder, "model.npz"), os.path.join(folder, "m.onnx")])
>>> args.handler(args)  # doctest: +ELLIPSIS
wrote ... (input: batch x 3, opset 17)
0
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from nnscratch.cli.common import add_command, import_builtins

EPILOG = """\
examples:
  nnscratch export model.npz model.onnx
  nnscratch export cnn.npz cnn.onnx --input-shape 1,28,28

The ONNX graph takes 'input' of shape (batch, *INPUT_SHAPE), float32, with a
dynamic batch, and returns 'output'; onnxruntime gives model.predict's values
to 1e-5. Needs the onnx extra: pip install 'nnscratch[onnx]'.
"""


def input_shape(text: str) -> tuple[int | None, ...]:
    """Parse ``'1,28,28'`` (``'?'`` or ``'None'`` for a dynamic axis)."""
    dims = []
    for part in text.split(","):
        part = part.strip()
        if part in ("?", "None"):
            dims.append(None)
            continue
        if not part.isdigit() or int(part) < 1:
            raise argparse.ArgumentTypeError(
                f"expected positive sizes separated by commas, e.g. 1,28,28. "
                f"Received {text!r}"
            )
        dims.append(int(part))
    return tuple(dims)


def run_export(args: argparse.Namespace) -> int:
    """Export a saved model to ONNX.

    Loads MODEL (a .npz written by NeuralNetwork.save or 'nnscratch train')
    and writes it to OUTPUT as an ONNX file that onnxruntime runs.
    """
    from nnscratch.engine.model import NeuralNetwork
    from nnscratch.interop.onnx_export import OPSET, infer_input_shape, to_onnx

    model_path, output = Path(args.model), Path(args.output)
    if model_path.suffix != ".npz":
        raise ValueError(f"{model_path}: expected a .npz model file")
    if output.suffix != ".onnx":
        raise ValueError(f"{output}: expected a .onnx output file")
    import_builtins()
    model = NeuralNetwork.load(model_path)
    shape = args.input_shape or infer_input_shape(model)
    if shape is None:
        raise ValueError(
            f"{model_path}: the first layer does not imply the input shape; "
            "give it with --input-shape, e.g. --input-shape 1,28,28"
        )
    to_onnx(model, output, shape)
    dims = " x ".join("?" if dim is None else str(dim) for dim in shape)
    print(f"wrote {output} (input: batch x {dims}, opset {OPSET})")
    return 0


def add_export_parser(commands: Any) -> None:
    """Add ``export`` to the ``nnscratch`` subcommands."""
    parser = add_command(commands, "export", run_export, EPILOG)
    parser.add_argument("model", metavar="MODEL", help="a saved .npz model")
    parser.add_argument("output", metavar="OUTPUT", help="the .onnx file to write")
    parser.add_argument(
        "--input-shape",
        type=input_shape,
        metavar="SHAPE",
        help="one sample's shape, comma-separated, without the batch (needed "
        "when the first layer does not imply it, e.g. a Conv2D); '?' for an "
        "axis of any size",
    )
