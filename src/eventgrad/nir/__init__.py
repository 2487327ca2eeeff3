"""NIR (Neuromorphic Intermediate Representation) export and import: ``pip install "eventgrad[nir]"``.

``to_nir(sim)`` / ``write(path, sim)``: a trained network as a ``nir.NIRGraph`` (for Lava/Loihi, SpiNNaker2,
Xylo, Speck, snnTorch, Norse...); ``from_nir(graph_or_path)`` / ``read(path)``: a NIR graph as a
``Network``. The parameter conventions, with their sources, are in ``eventgrad.nir.conventions``.
"""

from .conventions import NIRConversionError
from .export import to_nir, write
from .importer import from_nir


def read(path, dt: float | None = None, time_unit: str | None = None):
    """The NIR file at ``path`` as a ``Network`` (``from_nir`` on a path)."""
    return from_nir(path, dt=dt, time_unit=time_unit)


__all__ = ["NIRConversionError", "from_nir", "read", "to_nir", "write"]
