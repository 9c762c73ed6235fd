"""The image a predictor sees through a reconstruction: a projection stack (the raw one, a replica drawn
on it, or a decoded one) and the settings that turn it into the volume the labels and models live in.

The camera noise is in the projections and the codecs code the projections, so both act there; every
image is reconstructed before the predictor. :class:`Reconstructed` stands for the reconstructed volume
wherever the pipeline's tasks take an image: it has the volume's ``shape`` and slices to it, computing
the reconstruction once, when first sliced, in the worker that needs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ._fbp import describe_fbp, fbp

__all__ = ["Reconstructed", "RECONSTRUCTIONS", "parse_reconstruction", "check_projections"]

RECONSTRUCTIONS = ("fbp",)
"""The reconstructions ``--reconstruct`` offers: filtered back-projection."""


def check_projections(stack, *, name: str = "projections", integers: bool = True) -> None:
    """Raise InputError unless ``stack`` is a projection stack as a camera writes it: 3D ``(angles, rows,
    width)`` of integers (or, without ``integers``, of any real numbers), at least 2 angles, 1 row and
    8 columns, not all zero."""
    shape = tuple(getattr(stack, "shape", ()))
    if len(shape) != 3:
        raise InputError(f"{name}: a projection stack is 3D (angles, rows, width); got shape {shape}")
    if integers and not np.issubdtype(stack.dtype, np.integer):
        raise InputError(f"{name}: expected integer pixel values (raw camera counts); got dtype {stack.dtype}")
    if shape[0] < 2 or shape[1] < 1 or shape[2] < 8:
        raise InputError(f"{name}: the projection stack of shape {shape} is too small (at least 2 angles, 1 row "
                         f"and 8 columns)")
    if not np.any(stack):
        raise InputError(f"{name}: every pixel is zero; that is not a camera image")


def parse_reconstruction(method, *, angles=None, center=None, filter: str = "ramp",
                         interpolation: str = "linear") -> dict:
    """``--reconstruct``'s settings as one dict (``method``, ``angles``, ``center``, ``filter``,
    ``interpolation``), checked."""
    if method not in RECONSTRUCTIONS:
        raise InputError(f"--reconstruct takes one of {', '.join(RECONSTRUCTIONS)}; got {method!r}")
    return {"method": method, "angles": None if angles is None else [float(a) for a in np.ravel(angles)],
            "center": None if center is None else float(center), "filter": filter, "interpolation": interpolation}


@dataclass(frozen=True, eq=False)
class Reconstructed:
    """A projection stack ``(angles, rows, width)`` seen as its reconstruction ``(rows, width, width)``,
    in electrons above the camera's offset when a ``profile`` is given.

    ``shape``, ``ndim``, ``size`` and ``dtype`` are the volume's; ``volume[region]`` reconstructs (once)
    and slices. :meth:`of` gives the same settings over other projections (a replica, a decoded stack).
    """

    projections: np.ndarray
    settings: dict
    profile: object = None
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        p = self.projections
        if getattr(p, "ndim", 0) != 3:
            raise InputError(f"a projection stack must be 3D (angles, rows, width); got shape {tuple(p.shape)}")
        # the geometry is checked here, before any work (angles against the stack, the centre in the width)
        describe_fbp(p.shape, self.settings.get("angles"), self.settings.get("center"),
                     self.settings.get("filter", "ramp"), self.settings.get("interpolation", "linear"))

    def __getstate__(self):
        # a worker receives the projections and reconstructs on its own: the volume does not travel
        state = dict(self.__dict__)
        state["_cache"] = {}
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    @property
    def shape(self) -> tuple:
        _, rows, width = self.projections.shape
        return (rows, width, width)

    @property
    def ndim(self) -> int:
        return 3

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def dtype(self):
        return np.dtype(np.float32)

    def of(self, projections) -> "Reconstructed":
        """The same reconstruction of other projections of the same geometry."""
        return Reconstructed(projections, self.settings, self.profile)

    def volume(self) -> np.ndarray:
        """The reconstructed volume (computed once)."""
        if "volume" not in self._cache:
            s = self.settings
            self._cache["volume"] = fbp(self.projections, s.get("angles"), s.get("center"), s.get("filter", "ramp"),
                                        s.get("interpolation", "linear"), profile=self.profile)
        return self._cache["volume"]

    def __getitem__(self, region):
        return self.volume()[region]

    def __array__(self, dtype=None, copy=None):
        v = self.volume()
        return v if dtype is None else v.astype(dtype)

    def describe(self) -> dict:
        """The settings and the geometry, for the provenance."""
        s = self.settings
        return {"method": s.get("method", "fbp"),
                **describe_fbp(self.projections.shape, s.get("angles"), s.get("center"), s.get("filter", "ramp"),
                               s.get("interpolation", "linear"))}
