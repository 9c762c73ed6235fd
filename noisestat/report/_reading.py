"""What the report reads from an assessment: counts, summaries of eps, the null of a second raw
acquisition as :mod:`noisestat.score` defines it, and numbers written as text.

Fields an assessment may lack (``image``, ``raw_labels``, ``replica_values``, ``null_eps``,
``sigma_model``, ``statistics``, ``warnings``, ``objects.labels``: added to the pipeline later than
the rest) are read with ``getattr``.
"""

from __future__ import annotations

import math

import numpy as np

from ..measure._morphometry import PARAMETERS
from ..results import globals_for
from ..score._eps import null_median_abs, null_reference
from ..score._tests import FAMILIES
from ._inspection import _is_volume, _measured_parameters, _size_index

FAMILY = FAMILIES["AR"][1]
"""The members of the AR family, parameters that are functions of one another: Round = 4 Area /
(pi Major^2) and AR = Major / Minor are tied by the fitted ellipse (Round = 1 / AR), and Compact =
sqrt(Round); one degree of freedom. The same tuple as ``FAMILIES["AR"]`` of :mod:`noisestat.score`
(the definition); the report itself reads every family from ``FAMILIES``."""


def _finite(values) -> np.ndarray:
    values = np.asarray(values, dtype=float).ravel()
    return values[np.isfinite(values)]


def _mean_sd(values) -> tuple[float, float, int]:
    """Mean, sd (ddof 1) and count of the finite values; NaN where undefined (never a warning)."""
    v = _finite(values)
    mean = float(v.mean()) if len(v) else math.nan
    sd = float(v.std(ddof=1)) if len(v) > 1 else math.nan
    return mean, sd, len(v)


def _median_abs(values) -> float:
    """Median |value| over the non-NaN values (infinite ones count as large)."""
    v = np.abs(np.asarray(values, dtype=float).ravel())
    v = v[~np.isnan(v)]
    return float(np.median(v)) if len(v) else math.nan


def _fraction_outside(values) -> float:
    v = np.asarray(values, dtype=float).ravel()
    v = v[~np.isnan(v)]
    return float((np.abs(v) >= 1).mean()) if len(v) else math.nan


def _optional_array(obj, name: str) -> np.ndarray | None:
    value = getattr(obj, name, None)
    return None if value is None else np.asarray(value)


def _n_replicas(a) -> int:
    return int(len(np.asarray(a.replica_globals)))


def _null_theory(n_replicas: int) -> dict:
    """eps of a second raw acquisition in theory, as :func:`noisestat.score.null_reference` gives it
    (the one definition of that distribution), in the form the figures show."""
    if n_replicas < 2:  # no degrees of freedom: nothing to show
        return {"sd": math.nan, "median_abs": math.nan, "frac_outside": math.nan, "label": "n/a"}
    ref = null_reference(n_replicas)
    return {"sd": ref["sd"],
            "median_abs": null_median_abs(n_replicas),
            "frac_outside": 1.0 - ref["frac_abs_eps_lt_1"],
            # "sqrt(2) * t(9)" written as in the figures' other labels
            "label": ref["distribution"].replace("sqrt(2) * ", "√2·")}


def _and(names) -> str:
    """"A", "A and B", "A, B and C"."""
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _family_members() -> dict:
    """Parameter -> name of its family, for the members a family is not tested through."""
    return {m: name for name, (rep, members) in FAMILIES.items() for m in members if m != rep}


def _codec_ratio(c) -> float | None:
    r = getattr(c, "compression_ratio", None)
    if r is None:
        return None
    r = float(r)
    return r if math.isfinite(r) and r > 0 else None


def _matched(c) -> np.ndarray:
    partner = getattr(c.objects, "partner", None)
    if partner is not None:
        return np.asarray(partner) > 0
    return np.isfinite(np.asarray(c.objects.values, dtype=float)).any(axis=1)


def _project(array) -> np.ndarray:
    """A volume's maximum along z (the first axis); a 2D array as it is. On an image, the
    maximum-intensity projection; on a label volume, the largest object id along each z line."""
    array = np.asarray(array)
    return array.max(axis=0) if array.ndim == 3 else array


def _global_names(a) -> tuple:
    """The assessment's global parameters: N_tot, A_tot for an image; N_tot, V_tot, SA_tot for a volume."""
    names = getattr(a, "global_names", None)
    if names is None or getattr(a, "raw_objects", None) is None:
        return globals_for(_measured_parameters(a))
    return tuple(names)


def _spacing(a) -> tuple:
    """A volume's voxel size (z, y, x) as the pipeline recorded it (1 per axis when it did not)."""
    spacing = ((getattr(a, "provenance", None) or {}).get("spacing")) or (1.0, 1.0, 1.0)
    return tuple(float(v) for v in spacing)


def _centres_px(a) -> tuple[np.ndarray, np.ndarray]:
    """The raw objects' centres (x, y) in pixels, ImageJ's convention (a pixel's centre at +0.5): an
    image's XM, YM; a volume's Centroid.X, .Y divided by the voxel size."""
    if not _is_volume(a):
        return np.asarray(a.raw.column("XM"), float), np.asarray(a.raw.column("YM"), float)
    _, sy, sx = _spacing(a)
    return (np.asarray(a.raw.column("Centroid.X"), float) / sx + 0.5,
            np.asarray(a.raw.column("Centroid.Y"), float) / sy + 0.5)


def _n_measured(a) -> str:
    """"26" for an image, "33" for a volume: the parameters a figure or table is over."""
    return str(len(_measured_parameters(a)))


def _size_unit(a) -> str:
    return "voxels" if _is_volume(a) else "px"


def _fmt(value, spec: str = ".2f") -> str:
    if value is None:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(v):
        return "n/a"
    if math.isinf(v):
        return "+∞" if v > 0 else "−∞"
    return format(v, spec)

