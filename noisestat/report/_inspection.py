"""What was measured: label images, objects outside the noise band, segmentation sanity warnings.

An assessment is only as good as the segmentation it measures. This module gives the user the
means to check it:

* :func:`write_label_image` writes a segmentation as a label image (TIFF) whose ids are the
  ``object`` ids of ``objects.csv`` (raw image) or its ``codec_object`` ids (a decoded image), so
  tables and images join in Fiji or napari;
* :func:`codec_status` says, per raw object, what the codec's segmentation made of it
  (matched, lost, split, merged);
* :func:`outside_band` lists, per codec, the raw objects outside the noise band, worst first;
* :func:`segmentation_warnings` flags segmentations that are fragmented or hold giant objects,
  whose numbers a verdict should not be read without.
"""

from __future__ import annotations

import csv
import io
import math

import numpy as np

from ..io._hyperstacks import write_float_map, write_label_image
from ..measure._morphometry import PARAMETERS
from ..measure._volume import parameters_for, size_column
from ..score._eps import floored

__all__ = ["write_label_image", "codec_status", "outside_band", "outside_band_csv", "segmentation_warnings",
           "OUTSIDE_BAND_COLUMNS", "GIANT_IMAGE_FRACTION", "GIANT_MEDIAN_RATIO", "TINY_AREA_PX",
           "TINY_FRACTION", "TINY_MEDIAN_PX", "COUNT_RATIO"]


def _is_volume(assessment) -> bool:
    """Whether the assessment is of a 3D volume: its image, else its raw label image, else the shape
    the pipeline recorded."""
    for name in ("image", "raw_labels"):
        value = getattr(assessment, name, None)
        if value is not None:
            return np.ndim(value) == 3
    shape = (getattr(assessment, "provenance", None) or {}).get("image_shape")
    return bool(shape) and len(shape) == 3


def _measured_parameters(assessment) -> tuple:
    """The per-object columns: :data:`PARAMETERS` for an image, :data:`~noisestat.measure.VOLUME_PARAMETERS`
    for a volume (the raw objects' own ``names`` where they have them)."""
    names = getattr(getattr(assessment, "raw", None), "names", None)
    return tuple(names) if names is not None else parameters_for(3 if _is_volume(assessment) else 2)


def _size_index(assessment) -> int:
    """The column of an object's size in pixels (``Area``) or voxels (``Voxels``)."""
    return _measured_parameters(assessment).index(size_column(3 if _is_volume(assessment) else 2))

# Label images and value maps are written by noisestat.io (calibrated ImageJ hyperstacks); the report
# names them here, where it always has.


# --------------------------------------------------------------------------------------------------
# What the codec's segmentation made of each raw object
# --------------------------------------------------------------------------------------------------

def codec_status(assessment, codec) -> np.ndarray | None:
    """What the codec's segmentation made of each raw object (matched, lost, split, merged:
    :func:`noisestat.measure.classify_objects`): the status the pipeline recorded, else classified
    from the two label images; None when the assessment has neither."""
    recorded = getattr(codec.objects, "status", None)
    if recorded is not None and len(recorded) == len(assessment.raw):
        return np.asarray(recorded).astype(str)
    raw_labels = getattr(assessment, "raw_labels", None)
    codec_labels = getattr(codec.objects, "labels", None)
    if raw_labels is None or codec_labels is None or np.shape(raw_labels) != np.shape(codec_labels):
        return None
    from ..measure._matching import classify_objects

    # classify_objects reads whether a partner exists (>= 0, -1 for none) and whether two raw objects share
    # one: the partners' label ids (distinct per codec object) tell both.
    partner = np.asarray(codec.objects.partner)
    return classify_objects(np.asarray(raw_labels), np.asarray(codec_labels), np.where(partner > 0, partner, -1))


# --------------------------------------------------------------------------------------------------
# Objects outside the noise band
# --------------------------------------------------------------------------------------------------

OUTSIDE_BAND_COLUMNS = ("codec", "rank", "object", "codec_object", "status", "worst_parameter", "eps",
                        "sigma_raw", "sigma_used", "chi_raw", "chi_codec", "n_parameters_outside", "n_replicas_matched",
                        "match_rate", "area_raw")
"""Columns of ``outside_band.csv``, explained in the report under its table."""


def outside_band(assessment) -> dict:
    """The raw objects outside the noise band, per codec, worst first.

    An object is outside when |eps| >= 1 for at least one of its parameters (±inf included). Its
    worst parameter is the one of largest |eps| (ties: first in column order). Rows are
    sorted by that |eps|, largest first (ties by object id). Then come the raw objects the codec
    lost (no partner, so no eps) that at least 2 replicas found (so sigma_raw exists: a change
    the noise does not explain), largest raw area first; their eps columns are empty.

    Returns
    -------
    dict
        Codec spec -> list of row dicts with the keys of :data:`OUTSIDE_BAND_COLUMNS`.
    """
    n_replicas = int(len(assessment.replica_globals))
    names = _measured_parameters(assessment)
    size = _size_index(assessment)
    raw_values = np.asarray(assessment.raw.values, dtype=float).reshape(-1, len(names))
    sigma = np.asarray(assessment.sigma_raw, dtype=float).reshape(raw_values.shape)
    n_matched = np.asarray(assessment.n_replicas_matched, dtype=np.int64)
    ids = np.asarray(assessment.raw.labels, dtype=np.int64)
    # eps divides by the floored sigma where the pipeline floors sigma_raw (a floor per parameter).
    floor = getattr(assessment, "sigma_floor", None)
    used = sigma if floor is None else floored(sigma, np.asarray(floor, dtype=float).reshape(1, -1))
    out = {}
    for c in assessment.codecs:
        eps = np.asarray(c.eps, dtype=float).reshape(raw_values.shape)
        chi = np.asarray(c.objects.values, dtype=float).reshape(raw_values.shape)
        partner = np.asarray(c.objects.partner, dtype=np.int64)
        status = codec_status(assessment, c)
        magnitude = np.where(np.isnan(eps), -1.0, np.abs(eps))
        worst = np.argmax(magnitude, axis=1) if len(ids) else np.empty(0, dtype=np.int64)
        worst_abs = magnitude[np.arange(len(ids)), worst] if len(ids) else np.empty(0)
        outside = np.flatnonzero(worst_abs >= 1)
        outside = outside[np.lexsort((ids[outside], -worst_abs[outside]))]
        lost = np.flatnonzero((partner <= 0) & (n_matched >= 2))
        lost = lost[np.lexsort((ids[lost], -raw_values[lost, size]))]
        rows = []
        for i in outside:
            j = int(worst[i])
            rows.append({"object": int(ids[i]), "codec_object": int(partner[i]), "worst_parameter": names[j],
                         "eps": float(eps[i, j]), "sigma_raw": float(sigma[i, j]),
                         "sigma_used": float(used[i, j]), "chi_raw": float(raw_values[i, j]),
                         "chi_codec": float(chi[i, j]), "n_parameters_outside": int((magnitude[i] >= 1).sum())})
        for i in lost:
            rows.append({"object": int(ids[i]), "codec_object": 0, "worst_parameter": "", "eps": math.nan,
                         "sigma_raw": math.nan, "sigma_used": math.nan, "chi_raw": math.nan, "chi_codec": math.nan,
                         "n_parameters_outside": 0})
        index = np.concatenate([outside, lost]).astype(np.int64)
        for rank, (row, i) in enumerate(zip(rows, index), 1):
            row.update({"codec": c.spec, "rank": rank,
                        "status": str(status[i]) if status is not None else
                        ("matched" if partner[i] > 0 else "unmatched"),  # no label images to tell
                        "n_replicas_matched": int(n_matched[i]),
                        "match_rate": float(n_matched[i] / n_replicas) if n_replicas else math.nan,
                        "area_raw": float(raw_values[i, size])})
        out[c.spec] = [{k: row[k] for k in OUTSIDE_BAND_COLUMNS} for row in rows]
    return out


def _csv_value(key: str, value) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if key == "codec_object" and value == 0:
        return ""
    return str(value)


def outside_band_csv(assessment, table: dict | None = None) -> str:
    """``outside_band.csv``: every row of :func:`outside_band`, codecs in assessment order."""
    table = outside_band(assessment) if table is None else table
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(OUTSIDE_BAND_COLUMNS)
    for rows in table.values():
        for row in rows:
            writer.writerow([_csv_value(k, row[k]) for k in OUTSIDE_BAND_COLUMNS])
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------------
# Segmentation sanity warnings
# --------------------------------------------------------------------------------------------------

GIANT_IMAGE_FRACTION = 0.05
"""A single object covering more than this fraction of the image is giant."""
GIANT_MEDIAN_RATIO = 20.0
"""... as is one larger than this many times the median area of the objects over
:data:`TINY_AREA_PX` (with >= 5 of them)."""
TINY_AREA_PX = 3
"""Objects of 1 to this many pixels are specks: noise, not cells, at any usual magnification."""
TINY_FRACTION = 0.2
"""More than this fraction of specks (and at least 5 of them) means a fragmented segmentation."""
TINY_MEDIAN_PX = 9.0
"""A median object area below this (a 3 x 3 square) means a fragmented segmentation."""
COUNT_RATIO = 1.5
"""A decoded image's segmentation with more than this many times the raw object count (and at
least 10 more objects) is fragmented by the codec; with fewer than 1 / this, merged or lost."""


def _area_warnings(areas: np.ndarray, n_pixels: int, what: str, volume: bool = False) -> list[tuple[str, str]]:
    """(kind, text) of the giant-object and fragmentation checks on one segmentation's areas (voxel
    counts of a volume's objects when ``volume``: the texts then say voxels and volume)."""
    areas = np.asarray(areas, dtype=float)
    if not len(areas):
        return []
    unit, whole, size = ("voxels", "volume", "volume") if volume else ("px", "image", "area")
    out = []
    largest = float(areas.max())
    median = float(np.median(areas))
    # Giant against the other objects, specks left out: hundreds of specks would make every cell "giant".
    cells = areas[areas > TINY_AREA_PX]
    cell_median = float(np.median(cells)) if len(cells) else math.nan
    giant_fraction = largest / n_pixels > GIANT_IMAGE_FRACTION
    giant_ratio = len(cells) >= 5 and largest > GIANT_MEDIAN_RATIO * cell_median
    if giant_fraction or giant_ratio:
        out.append(("giant", f"{what}: giant object: the largest of {len(areas)} objects has {largest:.0f} {unit}, "
                   f"{largest / n_pixels:.1%} of the {whole} (limit {GIANT_IMAGE_FRACTION:.0%}) and "
                   f"{largest / cell_median:.0f}x the median {size} {cell_median:.0f} {unit} of the objects over "
                   f"{TINY_AREA_PX} {unit} (limit {GIANT_MEDIAN_RATIO:g}x): "
                   "touching cells or background taken as object; check labels/ before trusting the verdict"))
    specks = int((areas <= TINY_AREA_PX).sum())
    small_median = median < TINY_MEDIAN_PX
    many_specks = specks >= 5 and specks / len(areas) > TINY_FRACTION
    if small_median or many_specks:
        # the reason first (what broke its limit), then the other number for context
        median_text = f"median object {size} {median:.1f} {unit} (fragmented below {TINY_MEDIAN_PX:g})"
        specks_text = (f"{specks} of {len(areas)} objects ({specks / len(areas):.0%}) have 1-{TINY_AREA_PX} {unit} "
                       f"(fragmented above {TINY_FRACTION:.0%})")
        parts = ([median_text] if small_median else []) + ([specks_text] if many_specks else [])
        parts += [t for t, shown in ((median_text, small_median), (specks_text, many_specks)) if not shown]
        out.append(("fragmented", f"{what}: fragmented: {parts[0]}"
                    + (f" and {parts[1]}" if small_median and many_specks else f"; {parts[1]}")
                    + f": noise segmented as objects; check labels/, or use --min-area"))
    return out


def segmentation_warnings(raw, image_shape, codecs=()) -> list[str]:
    """Warnings, with their numbers, about segmentations whose measurements should not be trusted.

    Raw image (every check on its objects' areas):

    * giant object: the largest object covers more than :data:`GIANT_IMAGE_FRACTION` (5 %) of the
      image, or is more than :data:`GIANT_MEDIAN_RATIO` (20) times the median area of the objects
      larger than :data:`TINY_AREA_PX` (with at least 5 of them: specks are judged apart);
    * fragmented: the median object area is below :data:`TINY_MEDIAN_PX` (9 px), or more than
      :data:`TINY_FRACTION` (20 %, at least 5 objects) of the objects have 1 to
      :data:`TINY_AREA_PX` (3) pixels.

    Each decoded image: the same two checks on its own objects when the raw image passes them, and
    its object count against the raw's: more than :data:`COUNT_RATIO` (1.5) times as many objects
    (and at least 10 more), or fewer than 1 / 1.5 as many (and at least 10 fewer).

    For a volume (``image_shape`` of 3 axes) an object's area is its voxel count (the ``Voxels`` of
    :func:`noisestat.measure.measure_volume_objects`) and the image is the volume: the same limits,
    counted in voxels, and the texts say so.

    Parameters
    ----------
    raw : ObjectMeasurements
        The raw image's objects.
    image_shape : tuple of int
        ``(rows, cols)``, or ``(z, rows, cols)`` for a volume.
    codecs : sequence of CodecScore
        Read: ``spec``, ``objects.n_objects`` and ``objects.table`` (the decoded image's objects).

    Returns
    -------
    list of str
        Empty when nothing looks wrong.

    Examples
    --------
    >>> from noisestat.measure import measure_objects
    >>> labels = np.zeros((100, 100), int); labels[:30, :30] = 1; labels[50:55, 50:55] = 2
    >>> [w.split(":")[1].strip() for w in segmentation_warnings(measure_objects(labels), labels.shape)]
    ['giant object']
    """
    n_pixels = int(np.prod(image_shape))
    volume = len(image_shape) == 3
    names = getattr(raw, "names", PARAMETERS)
    size = names.index(size_column(len(image_shape)))
    raw_areas = np.asarray(raw.values, dtype=float).reshape(-1, len(names))[:, size]
    raw_warnings = _area_warnings(raw_areas, n_pixels, "raw segmentation", volume)
    out = [text for _, text in raw_warnings]
    raw_kinds = {kind for kind, _ in raw_warnings}
    whole = "volume" if volume else "image"
    n_raw = len(raw_areas)
    for c in codecs:
        n = int(c.objects.n_objects)
        what = f"segmentation of {c.spec}"
        if n > COUNT_RATIO * n_raw and n - n_raw >= 10:
            out.append(f"{what}: {n} objects against {n_raw} in the raw {whole} ({n / max(n_raw, 1):.1f}x, limit "
                       f"{COUNT_RATIO:g}x): the codec fragments objects or turns its artefacts into objects")
        elif n * COUNT_RATIO < n_raw and n_raw - n >= 10:
            out.append(f"{what}: {n} objects against {n_raw} in the raw {whole} ({n / max(n_raw, 1):.2f}x, limit "
                       f"1/{COUNT_RATIO:g}): the codec merges or erases objects")
        table = getattr(c.objects, "table", None)
        if table is not None and len(table):
            areas = np.asarray(table, dtype=float).reshape(-1, len(names))[:, size]
            out += [text for kind, text in _area_warnings(areas, n_pixels, what, volume) if kind not in raw_kinds]
    return out
