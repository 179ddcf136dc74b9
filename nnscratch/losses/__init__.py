"""Loss functions."""

from nnscratch.losses.losses import BCE, CCE, LOSSES, MSE, Loss, get_loss

__all__ = ["BCE", "CCE", "LOSSES", "MSE", "Loss", "get_loss"]
