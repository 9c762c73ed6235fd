"""The predictor protocol: what a model must offer to be assessed by noisestat.

A predictor maps an image (2D, or a 3D volume) to its objects or to a value per pixel. noisestat
runs it on the raw image, on every replica and on every decoded image; objects are then labelled,
measured and matched, values compared pixel by pixel. Three shapes of predictor plug in:

* :class:`MaskPredictor`: a per-pixel foreground decision that needs only a bounded neighbourhood
  (the forest on its features, a threshold, any filter-then-classify model). noisestat runs it per
  tile with a halo of ``halo(ndim)`` pixels a side, keeps the tile's core, and labels the assembled
  mask itself (8-connected in 2D, 26-connected in 3D). The mask is then the same for any tile size.
* :class:`LabelPredictor`: anything that returns a label image for the whole image at once (an
  instance segmenter, an external tool). It runs on whole images only, one task per image.
* :class:`ValuePredictor`: a value per pixel (a probability map, a denoised or restored image, a
  regression) that needs only a bounded neighbourhood, run per tile like a mask. Its assessment is
  per pixel (:func:`noisestat.assess_values`): sigma_raw and eps maps instead of objects.

A value predictor that must see the whole image at once (a network with pooling, an external tool)
sets the attribute ``whole_image = True`` and ``halo`` of zeros: it then runs as one tile, whatever
``tile`` says.

A predictor is a plain object with these methods; it need not inherit from anything. It must be
deterministic (the same input gives the same output) and picklable (it travels to workers). The
built-in :class:`noisestat.predict.PixelClassifier` is a :class:`MaskPredictor`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from ..errors import ModelError

__all__ = ["MaskPredictor", "LabelPredictor", "ValuePredictor", "predictor_kind", "check_predictor_output"]


@runtime_checkable
class MaskPredictor(Protocol):
    """A per-pixel foreground decision with a bounded neighbourhood."""

    def halo(self, ndim: int) -> tuple[int, ...]:
        """Pixels of context needed on each side, per axis, for the decision at a pixel to equal the
        whole-image one (0 for a pointwise decision)."""

    def predict_mask(self, region: np.ndarray) -> np.ndarray:
        """Boolean foreground mask of ``region``, same shape. Values within ``halo`` of a cut edge
        are discarded by the caller; edges of the image itself are real edges."""

    def describe(self) -> dict:
        """Parameters worth recording in an output's provenance (JSON-serialisable)."""


@runtime_checkable
class LabelPredictor(Protocol):
    """A whole-image segmenter: image in, label image (0 background, 1..n objects) out."""

    def segment(self, image: np.ndarray) -> np.ndarray:
        """Label image of ``image``, same shape, integer ids, 0 background."""

    def describe(self) -> dict:
        """Parameters worth recording in an output's provenance (JSON-serialisable)."""


@runtime_checkable
class ValuePredictor(Protocol):
    """A value per pixel with a bounded neighbourhood."""

    def halo(self, ndim: int) -> tuple[int, ...]:
        """Pixels of context needed on each side, per axis, for the value at a pixel to equal the
        whole-image one (0 for a pointwise map)."""

    def predict_values(self, region: np.ndarray) -> np.ndarray:
        """Real, finite values for every pixel of ``region``, same shape. Values within ``halo`` of
        a cut edge are discarded by the caller; edges of the image itself are real edges."""

    def describe(self) -> dict:
        """Parameters worth recording in an output's provenance (JSON-serialisable)."""


def predictor_kind(model) -> str:
    """``"mask"`` for a :class:`MaskPredictor` (tiled), ``"labels"`` for a :class:`LabelPredictor`,
    ``"values"`` for a :class:`ValuePredictor` (tiled); a :class:`~noisestat.errors.ModelError`
    naming what is missing otherwise."""
    name = type(model).__name__
    tiled = callable(getattr(model, "halo", None))
    if callable(getattr(model, "predict_mask", None)) and tiled:
        kind = "mask"
    elif callable(getattr(model, "segment", None)):
        kind = "labels"
    elif callable(getattr(model, "predict_values", None)) and tiled:
        kind = "values"
    else:
        raise ModelError(f"{name} is not a predictor: it needs predict_mask(region) and halo(ndim) (a per-pixel "
                         f"decision), segment(image) (a whole-image segmenter) or predict_values(region) and "
                         f"halo(ndim) (a value per pixel)")
    if not callable(getattr(model, "describe", None)):
        raise ModelError(f"{name} is not a predictor: it needs describe() (its parameters, for the provenance)")
    return kind


def predictor_name(model) -> str:
    """What messages call a predictor: the name it gives itself (``shown``: a command, a Python spec,
    the label-free model) or its class's name."""
    shown = getattr(model, "shown", None)
    return shown if isinstance(shown, str) and shown else type(model).__name__


def check_predictor_output(model, result, shape: tuple, kind: str, *, name: str | None = None) -> np.ndarray:
    """The predictor's answer, checked: a boolean mask (``kind="mask"``), an integer label image
    (``kind="labels"``) or real, finite values (``kind="values"``, returned as float32 when they are
    float32 or narrower integers, float64 otherwise) of ``shape``; a one-line
    :class:`~noisestat.errors.ModelError` otherwise. ``name``: what the messages call the one that
    answered (default: the model's class and its method, ``FloatMask.predict_mask``)."""
    method = {"mask": "predict_mask", "values": "predict_values"}.get(kind, "segment")
    shown = getattr(model, "shown", None)
    who = name or (shown if isinstance(shown, str) and shown else f"{type(model).__name__}.{method}")
    name = name or predictor_name(model)
    result = np.asarray(result)
    if result.shape != tuple(shape):
        raise ModelError(f"{name} returned an array of shape {result.shape} for an input of shape {tuple(shape)}")
    if kind == "mask":
        if result.dtype != bool:
            raise ModelError(f"{who} must return a boolean mask; got dtype {result.dtype}")
        return result
    if kind == "values":
        if result.dtype == bool or not (np.issubdtype(result.dtype, np.floating)
                                        or np.issubdtype(result.dtype, np.integer)):
            raise ModelError(f"{who} must return real numbers; got dtype {result.dtype}")
        narrow = result.dtype == np.float32 or (np.issubdtype(result.dtype, np.integer) and result.dtype.itemsize <= 2)
        result = result.astype(np.float32 if narrow else np.float64, copy=False)
        bad = ~np.isfinite(result)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ModelError(f"{who} returned {int(bad.sum())} non-finite values (NaN or inf; the "
                             f"first at {where} of its region)")
        return result
    if not np.issubdtype(result.dtype, np.integer):
        raise ModelError(f"{who} must return integer labels; got dtype {result.dtype}")
    if result.size and result.min() < 0:
        raise ModelError(f"{who} returned negative label ids (min {result.min()})")
    return result
