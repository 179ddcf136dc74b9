"""The layer protocol and the helpers every piece shares."""

from nnscratch.core.layer import Layer

__all__ = ["Layer"]
