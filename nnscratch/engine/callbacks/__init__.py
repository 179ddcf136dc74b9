"""Callbacks: code that runs at fixed points of ``NeuralNetwork.train``."""

from nnscratch.engine.callbacks.base import Callback, MonitorCallback, monitored_value
from nnscratch.engine.callbacks.csv_logger import CSVLogger
from nnscratch.engine.callbacks.early_stopping import EarlyStopping
from nnscratch.engine.callbacks.lr_scheduler import LearningRateScheduler
from nnscratch.engine.callbacks.model_checkpoint import ModelCheckpoint
from nnscratch.engine.callbacks.reduce_lr import ReduceLROnPlateau

__all__ = [
    "CSVLogger",
    "Callback",
    "EarlyStopping",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "MonitorCallback",
    "ReduceLROnPlateau",
    "monitored_value",
]
