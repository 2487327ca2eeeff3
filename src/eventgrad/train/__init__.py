"""Training: the trainer loop, regularisation of spike counts, callbacks and checkpoints."""

from eventgrad.train.callbacks import Checkpoint, CSVLogger, EarlyStopping, JSONLogger, ProgressBar, Recorder
from eventgrad.train.checkpoint import load_checkpoint, save_checkpoint
from eventgrad.train.regularizer import SpikeCountRegularizer, silent_counts
from eventgrad.train.trainer import Trainer, TrainingError

__all__ = [
    "CSVLogger", "Checkpoint", "EarlyStopping", "JSONLogger", "ProgressBar", "Recorder", "SpikeCountRegularizer",
    "Trainer", "TrainingError", "load_checkpoint", "save_checkpoint", "silent_counts",
]
