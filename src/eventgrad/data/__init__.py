"""Data: spike batches and their validation, encoders, spike data sets, augmentation, the audio front end, and the
Yin-Yang, SHD/SSC, FSDD and MNIST sets."""

from eventgrad.data.audio import audio_to_spikes
from eventgrad.data.augment import (
    Augment,
    blend,
    choose_speakers,
    delay_lines,
    jitter_times,
    shift_channels,
    split_by_speaker,
    stretch_times,
)
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
from eventgrad.data.shd import load_shd, save_shd
from eventgrad.data.spikes import SpikeBatch, SpikeDataError
from eventgrad.data.spoken_digits import fsdd, fsdd_to_shd
from eventgrad.data.yinyang import yinyang

__all__ = [
    "Augment",
    "audio_to_spikes",
    "blend",
    "choose_speakers",
    "delay_lines",
    "fsdd",
    "fsdd_to_shd",
    "jitter_times",
    "save_shd",
    "shift_channels",
    "split_by_speaker",
    "stretch_times",
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
