"""Bridges to other tools, each behind an optional extra.

- :func:`to_onnx` (extra ``[onnx]``): an ONNX file that onnxruntime runs.
- :func:`from_torch` / :func:`to_torch` (extra ``[torch]``): PyTorch twins.
- :class:`TensorBoard` (extra ``[tensorboard]``): a training callback.
- ``nnscratch.sklearn`` (extra ``[sklearn]``): scikit-learn estimators.

Importing this package imports none of those libraries; each is imported by
the function that needs it, and a missing one is an ``ImportError`` naming
the extra to install.
"""

from nnscratch.interop.onnx_export import to_onnx
from nnscratch.interop.tensorboard import TensorBoard
from nnscratch.interop.torch_convert import from_torch, to_torch

__all__ = ["TensorBoard", "from_torch", "to_onnx", "to_torch"]
