"""Data: spike batches and their validation, and the Yin-Yang data set with its latency code."""

from eventgrad.data.spikes import SpikeBatch, SpikeDataError
from eventgrad.data.yinyang import latency_encode, yinyang

__all__ = ["SpikeBatch", "SpikeDataError", "latency_encode", "yinyang"]
