"""Data: spike batches and their validation."""

from eventgrad.data.spikes import SpikeBatch, SpikeDataError

__all__ = ["SpikeBatch", "SpikeDataError"]
