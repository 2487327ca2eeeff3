"""Surrogate derivatives of the spike function for BPTT.

The forward pass of surrogate-gradient BPTT fires s = H(g) (Heaviside of the threshold expression g);
the backward pass replaces dH/dg, zero almost everywhere, by a smooth bump sigma'(g) so that gradients
reach the weights upstream of a spike. Each surrogate here is a small object with ``scale`` (its
steepness), ``derivative(g)`` (what the backward pass uses) and ``primitive(g)`` (a function whose
derivative is ``derivative``, so tests can check one against the other; the absolute level does not
matter for gradients).
"""

from __future__ import annotations

import numpy as np


class Surrogate:
    """Base: ``derivative`` replaces dH/dg in the backward pass; ``scale`` sets how narrow it is."""

    name = "surrogate"

    def __init__(self, scale: float = 1.0):
        if isinstance(scale, bool) or not (np.isfinite(scale) and scale > 0):
            raise ValueError(f"the scale of the {self.name} surrogate must be positive and finite, got {scale!r}")
        self.scale = float(scale)

    def derivative(self, g: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def primitive(self, g: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(scale={self.scale})"


class FastSigmoid(Surrogate):
    """SuperSpike (Zenke & Ganguli 2018), snnTorch's fast_sigmoid: 1 / (1 + beta |g|)^2, beta = scale.

    Its primitive is g / (1 + beta |g|) (a "fast sigmoid" from -1/beta to 1/beta); area 2 / beta.
    """

    name = "fast_sigmoid"

    def __init__(self, scale: float = 10.0):
        super().__init__(scale)

    def derivative(self, g):
        return 1.0 / (1.0 + self.scale * np.abs(g)) ** 2

    def primitive(self, g):
        return g / (1.0 + self.scale * np.abs(g))


class ArcTan(Surrogate):
    """snnTorch's atan: (alpha / 2) / (1 + (pi alpha g / 2)^2), alpha = scale (snnTorch's default 2).

    The derivative of 1/2 + arctan(pi alpha g / 2) / pi, which runs from 0 to 1: area 1.
    """

    name = "arctan"

    def __init__(self, scale: float = 2.0):
        super().__init__(scale)

    def derivative(self, g):
        a = self.scale
        return (a / 2.0) / (1.0 + (np.pi / 2.0 * a * g) ** 2)

    def primitive(self, g):
        return 0.5 + np.arctan(np.pi / 2.0 * self.scale * g) / np.pi


class Triangle(Surrogate):
    """max(0, 1 - beta |g|), beta = scale: a tent of half-width 1 / beta and area 1 / beta (Bellec et al. 2018).

    Primitive: the piecewise quadratic that rises from 0 (g <= -1/beta) to 1/beta (g >= 1/beta).
    """

    name = "triangle"

    def __init__(self, scale: float = 1.0):
        super().__init__(scale)

    def derivative(self, g):
        return np.maximum(0.0, 1.0 - self.scale * np.abs(g))

    def primitive(self, g):
        b = self.scale
        u = np.clip(g, -1.0 / b, 1.0 / b)  # the tent is zero outside [-1/b, 1/b]
        return u - b * u * np.abs(u) / 2.0 + 1.0 / (2.0 * b)


class Heaviside(Surrogate):
    """The exact derivative of the spike function: 0 (except at g = 0, a set of measure zero).

    With it BPTT gives zero gradient to everything upstream of a spike; useful as a control in tests.
    """

    name = "heaviside"

    def derivative(self, g):
        return np.zeros_like(g)

    def primitive(self, g):
        return (np.asarray(g) > 0).astype(np.result_type(g, np.float32))


SURROGATES = {"fast_sigmoid": FastSigmoid, "superspike": FastSigmoid, "arctan": ArcTan, "triangle": Triangle,
              "heaviside": Heaviside}


def get_surrogate(spec) -> Surrogate:
    """A surrogate from its name (with its default scale) or a Surrogate object (returned as is)."""
    if isinstance(spec, Surrogate):
        return spec
    if isinstance(spec, str) and spec in SURROGATES:
        return SURROGATES[spec]()
    raise ValueError(f"unknown surrogate {spec!r}; known: {sorted(SURROGATES)} "
                     f"or an object such as eventgrad.bptt.FastSigmoid(scale=10.0)")
