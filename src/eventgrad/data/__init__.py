"""Data: spike batches and their validation, encoders, spike data sets, and the Yin-Yang, SHD and MNIST sets."""

from eventgrad.data.dataset import SpikeDataset
from eventgrad.data.encoders import (
    current_encode,
    latency_encode,
    n_input_units,
    rate_encode,
    sigma_delta_encode,
    threshold_latency_encode,
)
from eventgrad.data.mnist import latency_dataset, load_mnist, mnist_latency
from eventgrad.data.shd import load_shd
from eventgrad.data.spikes import SpikeBatch, SpikeDataError
from eventgrad.data.yinyang import yinyang

__all__ = [
    "SpikeBatch",
    "SpikeDataError",
    "SpikeDataset",
    "current_encode",
    "latency_dataset",
    "latency_encode",
    "load_mnist",
    "load_shd",
    "mnist_latency",
    "n_input_units",
    "rate_encode",
    "sigma_delta_encode",
    "threshold_latency_encode",
    "yinyang",
]
