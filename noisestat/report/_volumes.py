"""The figures of a volume's assessment after Fig. 3 and Table 2 of Pomarico et al. (2022), drawn
from plain arrays:

``volume_scatter_figure``
    Single-object volume in the raw volume against that in a codec's decoded volume: a 2D histogram
    with a logarithmic colour scale and the identity line (Fig. 3d,e).
``volume_difference_figure`` and ``volume_difference_table``
    Histograms of the single-object volume difference (raw − other) for the replicas and for each
    codec, with mean and sd per source (Fig. 3 and Table 2).
``globals_figure_3d``
    The global parameters (N_tot, V_tot, SA_tot and any others given) of each codec relative to raw,
    with ±σ_raw / raw bars (Fig. 3f); the same drawing as the report's globals figure.
``orthogonal_views_figure``
    xy, xz and yz slices through the raw volume at their physical aspect, with the outlines of the
    segmentation on each slice: the check that the objects are what was meant to be measured.

Each function returns a :class:`~noisestat.report._draw.ReportFigure` (PNG, SVG and PDF bytes, a
title and a caption); :func:`write_figures` writes them as ``<name>.png``, ``.svg`` and ``.pdf``.
Input with nothing to show (no objects, only NaN) gives a figure that says so.

A volume's report (:func:`noisestat.report.figure_names`) draws them from its assessment: the
volumes are the objects' voxel counts (the ``Voxels`` column), the replicas' differences those of
simulated second acquisitions (:func:`volume_differences`: one replica minus the other of each
disjoint pair), the orthogonal views cross at the centroid of the largest raw object, at the voxel
size the pipeline recorded and in the file's unit; the globals are the report's own globals figure.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..errors import InputError
from ..io._files import atomic_file
from ._draw import (Drawing, ReportFigure, _FONT_PT, _OUTLINE_COLOUR, _REFERENCE_COLOUR, _WIDTH_IN, _colour,
                    _display, _finish, _new_figure, _no_data, _render, _short, _text)
from ._figures import _SECOND as SECOND_ACQUISITION, _globals_drawing
from ._inspection import _measured_parameters, _size_index
from ._reading import _fmt, _mean_sd, _optional_array, _spacing as _assessment_spacing

__all__ = ["volume_scatter_figure", "volume_difference_figure", "volume_difference_table", "globals_figure_3d",
           "orthogonal_views_figure", "write_figures", "volume_differences", "VOLUME_FIGURE_NAMES",
           "SECOND_ACQUISITION"]

VOLUME_FIGURE_NAMES = ("volume_scatter", "volume_difference", "globals_3d", "orthogonal_views")
"""Default file stems of the figures (a scatter per codec takes ``name=`` to tell them apart)."""

_FORMATS = ("png", "svg", "pdf")
# Bins of the 2D histogram along each axis, and at most this many bins in a difference histogram.
_SCATTER_BINS = 60
_MAX_DIFF_BINS = 80

_CAPTIONS = {
    "volume_scatter": (
        "Volume of each object in the raw volume (x) against the volume of its partner in the volume decoded "
        "from {codec} (y), as a 2D histogram (Fig. 3d,e of Pomarico et al. 2022): the colour is the number of "
        "objects in each bin, on a logarithmic scale. On the dashed identity line the codec left the volume "
        "unchanged; below it the codec shrank the object. {n} objects with a volume in both, in {unit}.{axes}"
        "{left_out}"),
    "volume_difference": (
        "Histograms of the single-object volume difference, the volume in the raw volume minus that in the "
        "other (Fig. 3 and Table 2 of Pomarico et al. 2022): in grey {reference}; in colour each codec's "
        "decoded volume. Each histogram is normalised to its own number of objects. The legend gives per "
        "source the number of objects n and the mean ± sd (ddof 1) of the difference in {unit}; objects "
        "without a partner, or with a NaN difference, are left out.{notes}"),
    "globals_3d": (
        "Global parameters normalised to the raw volume (Fig. 3f of Pomarico et al. 2022): {names} of each "
        "replica (grey points; black square = mean ± sd) and of each codec's decoded volume (coloured points), "
        "divided by the raw value. Codec error bars and the grey band are σ_raw / raw, σ_raw being the sd over "
        "the replicas (ddof 1).{notes}"),
    "orthogonal_views": (
        "Orthogonal slices through the raw volume at voxel (z, y, x) = ({z}, {y}, {x}){where}: xy (top left), "
        "xz (below it) and yz (right of it), in grey (0.5–99.5 % percentile stretch over the three slices), "
        "with the outline of every object of the segmentation cut by the slice in yellow. The axes are in "
        "{unit} from the voxel spacing (z, y, x) = ({dz:g}, {dy:g}, {dx:g}), so objects show their physical "
        "shape; the dashed lines mark where the other slices cut. Objects that look joined, broken or spread "
        "over background here are measured as such.{notes}"),
}


# --------------------------------------------------------------------------------------------------
# Input checks: one line naming the argument, what it must be and what it was
# --------------------------------------------------------------------------------------------------

def _values(name: str, values) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name} must be numbers, one per object; got {type(values).__name__}: {exc}") from None
    if array.ndim > 1:
        raise InputError(f"{name} must be one value per object (1-D); got an array of shape {array.shape}")
    return array.ravel()


def _spacing(spacing) -> tuple[float, float, float]:
    try:
        values = tuple(float(s) for s in np.asarray(spacing, dtype=float).ravel())
    except (TypeError, ValueError):
        raise InputError(f"spacing must be three numbers (z, y, x); got {spacing!r}") from None
    if len(values) != 3 or not all(math.isfinite(s) and s > 0 for s in values):
        raise InputError(f"spacing must be three positive finite numbers (z, y, x); got {spacing!r}")
    return values


# --------------------------------------------------------------------------------------------------
# Fig. 3d,e: volume in raw against volume in the codec
# --------------------------------------------------------------------------------------------------

def _volume_scatter(v_raw, v_codec, codec_name: str, unit: str, name: str) -> Drawing:
    v_raw, v_codec = _values("v_raw", v_raw), _values("v_codec", v_codec)
    if len(v_raw) != len(v_codec):
        raise InputError(f"v_raw and v_codec must hold one volume per raw object each; got {len(v_raw)} and "
                         f"{len(v_codec)} values")
    both = np.isfinite(v_raw) & np.isfinite(v_codec)
    x, y = v_raw[both], v_codec[both]
    fig = _new_figure(_WIDTH_IN * 0.62, _WIDTH_IN * 0.55)
    ax = fig.add_subplot()
    positive = bool(len(x)) and bool((x > 0).all() and (y > 0).all())
    lo = float(min(x.min(), y.min())) if len(x) else 0.0
    hi = float(max(x.max(), y.max())) if len(x) else 1.0
    # Object volumes span decades (specks to giant cells): log axes then, so the small ones are seen.
    log_axes = positive and hi / lo > 20
    axes_note = ""
    if not len(x):
        _no_data(ax, "no object has a volume in both the raw\nand the decoded volume")
    else:
        if log_axes:
            edges = np.geomspace(lo / 1.05, hi * 1.05, _SCATTER_BINS + 1)
            ax.set_xscale("log")
            ax.set_yscale("log")
            axes_note = " Both axes are logarithmic."
        else:
            pad = 0.5 if hi - lo < 1 else 0.02 * (hi - lo)
            edges = np.linspace(lo - pad, hi + pad, _SCATTER_BINS + 1)
        counts, _, _ = np.histogram2d(x, y, bins=(edges, edges))
        counts = np.ma.masked_equal(counts, 0)
        mesh = ax.pcolormesh(edges, edges, counts.T, norm=LogNorm(vmin=1, vmax=max(float(counts.max()), 1.0)),
                             cmap="viridis", rasterized=True)
        colorbar = fig.colorbar(mesh, ax=ax)
        colorbar.set_label("objects per bin (log scale)")
        colorbar.ax.tick_params(labelsize=_FONT_PT)
        ax.plot([edges[0], edges[-1]], [edges[0], edges[-1]], "--", color="0.3", linewidth=0.9,
                label="identity: volume unchanged")
        ax.set_xlim(edges[0], edges[-1])
        ax.set_ylim(edges[0], edges[-1])
        ax.set_aspect("equal")
        ax.legend(loc="upper left", frameon=False, fontsize=_FONT_PT)
    ax.set_xlabel(_text(f"volume in the raw volume ({unit})"))
    ax.set_ylabel(_text(f"volume in the decoded volume ({unit})"))
    ax.set_title(_text(f"Single-object volume,\nraw against {_short(codec_name, 30)}"))
    n_left = int((~both).sum())
    left_out = (f" {n_left} raw objects without a partner in the decoded volume (or with a NaN volume) are left "
                "out." if n_left else "")
    caption = _CAPTIONS["volume_scatter"].format(codec=codec_name, n=int(both.sum()), unit=unit, axes=axes_note,
                                                 left_out=left_out)
    return _finish(name, f"Single-object volume, raw against {codec_name}", caption, fig)


def volume_scatter_figure(v_raw, v_codec, codec_name: str, unit: str = "voxels", *, name: str = "volume_scatter",
                          vector: bool = True) -> ReportFigure:
    """The single-object volume in the raw volume against that in one codec's decoded volume.

    A 2D histogram of the (raw, decoded) pairs with the count per bin on a logarithmic colour scale and
    the identity line (Fig. 3d,e of Pomarico et al. 2022). The axes are logarithmic when the volumes
    are positive and span more than a factor 20.

    Parameters
    ----------
    v_raw, v_codec : array_like, shape (n_objects,)
        Volume of each raw object, and of its partner in the decoded volume (NaN: no partner; such
        objects are left out and counted in the caption).
    codec_name : str
        The codec spec, as the title and caption name it.
    unit : str
        The unit of the volumes ("voxels", "µm³").
    name : str
        File stem of the figure; give each codec's its own (e.g. ``"volume_scatter_01"``).
    vector : bool
        Also render SVG and PDF (else those bytes are empty).

    Returns
    -------
    ReportFigure

    Raises
    ------
    InputError
        ``v_raw`` and ``v_codec`` differ in length, or are not 1-D numbers.

    Examples
    --------
    >>> f = volume_scatter_figure([10, 20, 40], [11, 19, float("nan")], "jpeg:quality=60", "voxels")
    >>> f.png[:4], f.pdf[:5]
    (b'\\x89PNG', b'%PDF-')
    """
    return _render(_volume_scatter(v_raw, v_codec, codec_name, unit, name), vector=vector)


# --------------------------------------------------------------------------------------------------
# Fig. 3 and Table 2: single-object volume differences
# --------------------------------------------------------------------------------------------------

def _sources(diffs_by_source: Mapping) -> dict[str, np.ndarray]:
    if not isinstance(diffs_by_source, Mapping):
        raise InputError("diffs_by_source must map each source (replicas, a codec spec) to its volume differences; "
                         f"got {type(diffs_by_source).__name__}")
    return {str(k): _values(f"diffs_by_source[{k!r}]", v) for k, v in diffs_by_source.items()}


def volume_difference_table(diffs_by_source: Mapping[str, Sequence[float]]) -> list[tuple[str, int, float, float]]:
    """Number, mean and sd of the single-object volume differences per source (Table 2 of Pomarico et al. 2022).

    Parameters
    ----------
    diffs_by_source : mapping of str to array_like
        Per source (the replicas, each codec spec), the volume of each object in the raw volume minus
        that in the source's volume. Non-finite values (objects without a partner) are left out.

    Returns
    -------
    list of (source, n, mean, sd)
        In the order of ``diffs_by_source``: ``n`` finite differences, their mean and their sample
        sd (ddof 1); NaN where undefined (no value; one value for the sd).

    Examples
    --------
    >>> volume_difference_table({"replicas": [1, -1, 0, 2], "8bit": [30, 34, float("nan")]})
    [('replicas', 4, 0.5, 1.2909944487358056), ('8bit', 2, 32.0, 2.8284271247461903)]
    """
    rows = []
    for source, d in _sources(diffs_by_source).items():
        mean, sd, n = _mean_sd(d)
        rows.append((source, n, mean, sd))
    return rows


def _difference_edges(values: np.ndarray) -> np.ndarray:
    """Common bin edges: one bin per whole voxel for integer differences over a short range, else at
    most :data:`_MAX_DIFF_BINS` bins."""
    lo, hi = float(values.min()), float(values.max())
    if np.all(values == np.round(values)) and hi - lo <= _MAX_DIFF_BINS:
        return np.arange(lo - 0.5, hi + 1.5)
    if hi == lo:
        return np.array([lo - 0.5, hi + 0.5])
    edges = np.histogram_bin_edges(values, bins="auto")
    return edges if len(edges) <= _MAX_DIFF_BINS + 1 else np.linspace(lo, hi, _MAX_DIFF_BINS + 1)


def _volume_difference(diffs_by_source, unit: str, reference: str, name: str, pairs: bool = False) -> Drawing:
    sources = _sources(diffs_by_source)
    # The reference (the replicas) first and in grey; the codecs in the report's colours, in order.
    order = ([reference] if reference in sources else []) + [s for s in sources if s != reference]
    finite = {s: sources[s][np.isfinite(sources[s])] for s in order}
    rows = {s: (n, mean, sd) for s, n, mean, sd in volume_difference_table({s: sources[s] for s in order})}
    fig = _new_figure(_WIDTH_IN, 3.2 + 0.18 * len(order))
    ax = fig.add_subplot()
    pooled = np.concatenate([finite[s] for s in order]) if order else np.empty(0)
    handles = []
    if not len(pooled):
        _no_data(ax, "no object has a finite volume difference\nin any source" if order else "no source given")
    else:
        edges = _difference_edges(pooled)
        for k, s in enumerate(order):
            d = finite[s]
            n, mean, sd = rows[s]
            is_reference = s == reference
            colour = _REFERENCE_COLOUR if is_reference else _colour(k - (1 if reference in sources else 0))
            label = _text(f"{_short(s, 34)}: {_fmt(mean, '+.2f')} ± {_fmt(sd)} {unit}, n = {n}")
            if n:
                weights = np.full(n, 1.0 / n)
                if is_reference:
                    ax.hist(d, bins=edges, weights=weights, color="0.8", edgecolor=colour, linewidth=0.8)
                else:
                    ax.hist(d, bins=edges, weights=weights, histtype="step", color=colour, linewidth=1.4)
            handles.append(Patch(facecolor="0.8", edgecolor=colour, label=label) if is_reference else
                           Line2D([], [], color=colour, linewidth=1.4,
                                  label=label if n else _text(f"{_short(s, 34)}: no object, n = 0")))
        ax.axvline(0, color="0.4", linewidth=0.8, linestyle="--", zorder=0)
        ax.set_ylabel("objects per bin\n(fraction of the source's objects)")
    if pairs:
        ax.set_xlabel(_text(f"volume in the first − volume in the second ({unit})"))
        ax.set_title("Single-object volume difference: raw − decoded, and between simulated acquisitions")
    else:
        ax.set_xlabel(_text(f"volume in raw − volume in the other ({unit})"))
        ax.set_title("Single-object volume difference: raw − replica, raw − decoded")
    if handles:
        # Two columns while the entries are short enough to sit side by side on the page's width.
        ncols = 2 if max(len(h.get_label()) for h in handles) <= 48 else 1
        fig.legend(handles=handles, loc="outside lower center", ncols=ncols, frameon=False, fontsize=_FONT_PT)
    notes = ""
    empty = [s for s in order if not len(finite[s])]
    if empty:
        notes = " No finite difference (not drawn): " + "; ".join(empty) + "."
    if reference not in sources:
        ref_text = "(none given) the replicas"
    elif pairs:
        ref_text = (f"“{reference}”: one replica minus the other of each disjoint pair of replicas (raw-equivalent "
                    "Monte-Carlo volumes drawn from the camera noise model), what re-imaging the sample changes; "
                    "a replica minus the raw volume would be biased, the replicas being drawn around it")
    else:
        ref_text = (f"“{reference}”: the raw volume against each replica, a raw-equivalent Monte-Carlo volume "
                    "drawn from the camera noise model, what camera noise alone changes")
    caption = _CAPTIONS["volume_difference"].format(reference=ref_text, unit=unit, notes=notes)
    return _finish(name, "Single-object volume difference", caption, fig)


def volume_difference_figure(diffs_by_source: Mapping[str, Sequence[float]], unit: str = "voxels", *,
                             reference: str = "replicas", pairs: bool = False, name: str = "volume_difference",
                             vector: bool = True) -> ReportFigure:
    """Histograms of single-object volume differences (raw − other), one per source.

    The source named ``reference`` (the replicas: what camera noise alone changes) is drawn filled in
    grey, each other source (a codec) as a coloured outline; each histogram is normalised to its own
    number of objects, on common bins. The legend gives per source n and mean ± sd (ddof 1), the
    numbers of :func:`volume_difference_table`.

    Parameters
    ----------
    diffs_by_source : mapping of str to array_like
        Per source, the volume of each object in raw minus that in the source (non-finite: left out).
    unit : str
        The unit of the differences ("voxels", "µm³").
    reference : str
        The key of the replicas' differences, drawn first and in grey.
    pairs : bool
        The reference holds simulated second acquisitions, one replica minus the other of disjoint
        pairs (what the report draws), rather than the raw volume minus each replica; the caption
        says which.
    name : str
        File stem of the figure.
    vector : bool
        Also render SVG and PDF.

    Returns
    -------
    ReportFigure

    Examples
    --------
    >>> f = volume_difference_figure({"replicas": [1, -1, 0, 2], "8bit": [30, 34, 31]}, "voxels")
    >>> "mean ± sd" in f.caption
    True
    """
    return _render(_volume_difference(diffs_by_source, unit, reference, name, pairs), vector=vector)


# --------------------------------------------------------------------------------------------------
# Fig. 3f: global parameters relative to raw
# --------------------------------------------------------------------------------------------------

def globals_figure_3d(raw: Mapping[str, float], codecs: Mapping[str, Mapping[str, float]],
                      replicas: Mapping[str, Sequence[float]] | None = None, *, name: str = "globals_3d",
                      vector: bool = True) -> ReportFigure:
    """The global parameters of each codec's decoded volume relative to raw, with ±σ_raw / raw bars (Fig. 3f).

    The drawing is the report's globals figure (:func:`noisestat.report._figures._globals_drawing`)
    over the names given: one panel per global, in the order of ``raw`` (N_tot, V_tot, SA_tot and
    any others).

    Parameters
    ----------
    raw : mapping of str to float
        Each global's value on the raw volume, e.g. ``{"N_tot": 412, "V_tot": 1.3e6, "SA_tot": 2.1e5}``.
    codecs : mapping of str to mapping of str to float
        Per codec spec, its globals (a global it lacks is not drawn).
    replicas : mapping of str to array_like, optional
        Per global, its value on each replica; σ_raw is their sd (ddof 1). Without it (or with fewer
        than 2 replicas) no band or bars are drawn, and the caption says so.
    name : str
        File stem of the figure.
    vector : bool
        Also render SVG and PDF.

    Returns
    -------
    ReportFigure

    Examples
    --------
    >>> f = globals_figure_3d({"N_tot": 100, "V_tot": 5e4, "SA_tot": 9e3},
    ...                       {"8bit": {"N_tot": 85, "V_tot": 4.1e4, "SA_tot": 8e3}},
    ...                       {"N_tot": [99, 101, 100], "V_tot": [5.01e4, 4.99e4, 5e4], "SA_tot": [9e3, 9.1e3, 8.9e3]})
    >>> f.name, f.png[:4]
    ('globals_3d', b'\\x89PNG')
    """
    if not isinstance(raw, Mapping) or not isinstance(codecs, Mapping):
        raise InputError("raw must map each global's name to its value, and codecs each codec spec to such a "
                         f"mapping; got {type(raw).__name__} and {type(codecs).__name__}")
    names = [str(k) for k in raw]
    notes = []
    if not names:
        fig = _new_figure(_WIDTH_IN, 2.0)
        _no_data(fig.add_subplot(), "no global parameter given")
        fig.axes[0].set_axis_off()
        notes.append("no global parameter was given")
    else:
        raw_values = np.array([_values(f"raw[{k!r}]", raw[k]).reshape(-1)[:1].tolist() or [math.nan]
                               for k in names], dtype=float).ravel()
        replicas = replicas or {}
        per_global = [_values(f"replicas[{k!r}]", replicas.get(k, [])) for k in names]
        n_rep = max((len(v) for v in per_global), default=0)
        if any(len(v) not in (0, n_rep) for v in per_global):
            raise InputError("replicas must give each global one value per replica; got "
                             + ", ".join(f"{k}: {len(v)}" for k, v in zip(names, per_global)))
        replica_array = np.column_stack([v if len(v) else np.full(n_rep, np.nan) for v in per_global]) \
            if n_rep else np.empty((0, len(names)))
        codec_values = [np.array([float(codecs[c].get(k, math.nan)) for k in names]) for c in codecs]
        fig = _globals_drawing(names, raw_values, replica_array, list(codecs), codec_values)
        if n_rep < 2:
            notes.append("fewer than 2 replicas were given, so σ_raw is undefined and no band or bars are drawn")
    text = ", ".join(names) if names else "the global parameters"
    caption = _CAPTIONS["globals_3d"].format(names=text, notes="".join(f" Note: {n}." for n in notes))
    return _render(_finish(name, "Global parameters relative to raw", caption, fig), vector=vector)


# --------------------------------------------------------------------------------------------------
# Orthogonal views of the raw volume with the segmentation's outlines
# --------------------------------------------------------------------------------------------------

def _stretch(planes) -> tuple[float, float] | None:
    """0.5 and 99.5 percentiles of the finite values of the planes together (None: there are none)."""
    values = np.concatenate([np.asarray(p, dtype=float).ravel() for p in planes])
    values = values[np.isfinite(values)]
    if not len(values):
        return None
    lo, hi = np.percentile(values, [0.5, 99.5])
    return float(lo), (float(hi) if hi > lo else float(lo) + 1.0)


def _outlined(plane: np.ndarray, labels: np.ndarray, stretch) -> np.ndarray:
    """RGB of a grey ``plane`` (NaN black) with the outlines of ``labels`` in the outline colour."""
    from skimage.segmentation import find_boundaries

    lo, hi = stretch if stretch else (0.0, 1.0)
    grey = np.clip((np.nan_to_num(np.asarray(plane, dtype=float), nan=lo) - lo) / (hi - lo), 0, 1)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    if labels.any():
        rgb[find_boundaries(labels, mode="inner")] = _OUTLINE_COLOUR
    return rgb


def _orthogonal_views(volume, labels, spacing, position, name: str, unit: str = "µm",
                      where: str | None = None) -> Drawing:
    """The orthogonal views' drawing; ``where``: the caption's words on the crossing voxel (after its
    indices, e.g. " (the centre of the largest object)"), by default its own."""
    # Only the three slices are read: a light-sheet volume (a memory map, a zarr or dask array) stays on disk.
    where_given = where
    if not hasattr(volume, "shape"):
        volume = np.asarray(volume)
    if not hasattr(labels, "shape"):
        labels = np.asarray(labels)
    shape, label_shape = tuple(int(n) for n in volume.shape), tuple(int(n) for n in labels.shape)
    if len(shape) != 3:
        raise InputError(f"volume must be 3-D (z, y, x); got an array of shape {shape}")
    if label_shape != shape:
        raise InputError(f"labels must have the volume's shape {shape}; got {label_shape}")
    label_dtype = np.dtype(getattr(labels, "dtype", np.int64))
    if math.prod(shape) and not (np.issubdtype(label_dtype, np.integer) or label_dtype == np.bool_):
        raise InputError(f"labels must be integer object ids (0 = background); got dtype {label_dtype}")
    dz, dy, dx = _spacing(spacing)
    nz, ny, nx = shape
    fig = _new_figure(_WIDTH_IN, 2.5)
    if math.prod(shape) == 0:
        ax = fig.add_subplot()
        ax.set_axis_off()
        _no_data(ax, f"the volume is empty: shape (z, y, x) = {shape}")
        caption = _CAPTIONS["orthogonal_views"].format(z="–", y="–", x="–", where="", unit=unit, dz=dz, dy=dy,
                                                       dx=dx, notes=" Note: the volume is empty; nothing to show.")
        return _finish(name, "Orthogonal views of the raw volume", caption, fig)
    if position is None:
        z0, y0, x0 = nz // 2, ny // 2, nx // 2
        where = " (its centre)"
    else:
        try:
            z0, y0, x0 = (int(p) for p in position)
        except (TypeError, ValueError):
            raise InputError(f"position must be three voxel indices (z, y, x); got {position!r}") from None
        if not (0 <= z0 < nz and 0 <= y0 < ny and 0 <= x0 < nx):
            raise InputError(f"position (z, y, x) = ({z0}, {y0}, {x0}) is outside the volume of shape {shape}")
        where = ""
    if where_given is not None:
        where = where_given
    planes = {"xy": np.asarray(volume[z0]), "xz": np.asarray(volume[:, y0, :]), "yz": np.asarray(volume[:, :, x0]).T}
    cuts = {"xy": np.asarray(labels[z0]), "xz": np.asarray(labels[:, y0, :]), "yz": np.asarray(labels[:, :, x0]).T}
    stretch = _stretch(planes.values())
    # Physical sizes: x across xy and xz, y down xy and yz, z down xz and across yz.
    width_x, height_y, depth_z = nx * dx, ny * dy, nz * dz
    # The page's height follows the panels' physical proportions (about an inch for titles and labels).
    height = (_WIDTH_IN - 1.0) * (height_y + depth_z) / (width_x + depth_z) + 1.0
    fig.set_size_inches(_WIDTH_IN, min(max(height, 2.5), 9.0))
    grid = fig.add_gridspec(2, 2, width_ratios=[width_x, depth_z], height_ratios=[height_y, depth_z])
    ax_xy = fig.add_subplot(grid[0, 0])
    ax_xz = fig.add_subplot(grid[1, 0], sharex=ax_xy)
    ax_yz = fig.add_subplot(grid[0, 1], sharey=ax_xy)
    extents = {"xy": (0, width_x, height_y, 0), "xz": (0, width_x, depth_z, 0), "yz": (0, depth_z, height_y, 0)}
    for key, ax in (("xy", ax_xy), ("xz", ax_xz), ("yz", ax_yz)):
        # Every k-th pixel of a large slice (a figure is a few inches wide); the extent stays physical.
        canvas = _outlined(_display(planes[key]), _display(cuts[key]), stretch)
        ax.imshow(canvas, extent=extents[key], interpolation="nearest", aspect="equal")
    ax_xy.axhline((y0 + 0.5) * dy, color="0.9", linestyle="--", linewidth=0.6)
    ax_xy.axvline((x0 + 0.5) * dx, color="0.9", linestyle="--", linewidth=0.6)
    ax_xz.axhline((z0 + 0.5) * dz, color="0.9", linestyle="--", linewidth=0.6)
    ax_yz.axvline((z0 + 0.5) * dz, color="0.9", linestyle="--", linewidth=0.6)
    ax_xy.set_title(f"xy at z = {z0}")
    ax_xz.set_title(f"xz at y = {y0}")
    ax_yz.set_title(f"yz at x = {x0}")
    ax_xy.set_ylabel(_text(f"y ({unit})"))
    ax_xz.set_xlabel(_text(f"x ({unit})"))
    ax_xz.set_ylabel(_text(f"z ({unit})"))
    ax_yz.set_xlabel(_text(f"z ({unit})"))
    ax_xy.tick_params(labelbottom=False)
    ax_yz.tick_params(labelleft=False)
    notes = []
    if stretch is None:
        _no_data(ax_xy, "no finite intensity in these slices")
        notes.append("the slices hold no finite intensity (NaN shown black)")
    elif any(not np.isfinite(np.asarray(p, dtype=float)).all() for p in planes.values()):
        notes.append("NaN voxels are shown black")
    if not any(c.any() for c in cuts.values()):
        # Says which of the two only when the slices show none: reading every label is then worth it.
        anywhere = bool(np.asarray(labels).any())
        notes.append("the segmentation has no object in these slices" if anywhere else "the segmentation has no object")
        ax_xy.text(0.02, 0.98, "no object in these slices" if anywhere else "no object in the segmentation",
                   transform=ax_xy.transAxes, ha="left", va="top", fontsize=_FONT_PT, color=_OUTLINE_COLOUR)
    caption = _CAPTIONS["orthogonal_views"].format(
        z=z0, y=y0, x=x0, where=where, unit=unit, dz=dz, dy=dy, dx=dx,
        notes="".join(f" Note: {n}." for n in notes))
    return _finish(name, "Orthogonal views of the raw volume", caption, fig)


def orthogonal_views_figure(volume, labels, spacing, position=None, *, unit: str = "µm",
                            name: str = "orthogonal_views", vector: bool = True) -> ReportFigure:
    """xy, xz and yz slices through the raw volume with the segmentation's outlines drawn on each.

    The slices cross at ``position`` (the centre voxel by default). Each is shown at its physical
    aspect: its extent is its number of voxels times the voxel spacing along each of its axes, so an
    anisotropic volume (z steps larger than the pixel size) is not stretched. The outlines are those
    of the objects of ``labels`` cut by the slice (:func:`skimage.segmentation.find_boundaries`,
    inner mode, on each slice).

    Parameters
    ----------
    volume : array_like, shape (z, y, x)
        The raw volume (NaN voxels are shown black). Only the three slices are read from an array
        that slices itself (a NumPy memory map, a zarr or dask array).
    labels : array_like of int, shape (z, y, x)
        The segmentation: 0 background, each object its own id; read like ``volume``.
    spacing : sequence of 3 floats
        Voxel size along z, y and x, in ``unit``.
    position : sequence of 3 ints, optional
        The voxel (z, y, x) where the slices cross.
    unit : str
        The unit of ``spacing``, written on the axes.
    name : str
        File stem of the figure.
    vector : bool
        Also render SVG and PDF.

    Returns
    -------
    ReportFigure

    Raises
    ------
    InputError
        ``volume`` is not 3-D, ``labels`` differ in shape or are not integers, ``spacing`` is not three
        positive numbers, or ``position`` is outside the volume.

    Examples
    --------
    >>> volume = np.zeros((4, 8, 8)); labels = np.zeros((4, 8, 8), dtype=int); labels[1:3, 2:6, 2:6] = 1
    >>> orthogonal_views_figure(volume, labels, (2.0, 0.5, 0.5)).svg[:5]
    b'<?xml'
    """
    return _render(_orthogonal_views(volume, labels, spacing, position, name, unit), vector=vector)


# --------------------------------------------------------------------------------------------------
# A volume's assessment: what the report draws from it
# --------------------------------------------------------------------------------------------------

def _voxels(a, values) -> np.ndarray:
    """The Voxels column of a table of object values aligned to the raw objects (NaN: no partner)."""
    values = np.asarray(values, dtype=float).reshape(len(a.raw), len(_measured_parameters(a)))
    return values[:, _size_index(a)]


def volume_differences(assessment) -> dict[str, np.ndarray]:
    """The single-object volume differences of a volume's assessment, in voxels, per source (Table 2).

    What the report's volume-difference figure and table show: the ``Voxels`` column (the object's
    voxel count) of each raw object.

    Parameters
    ----------
    assessment : noisestat.Assessment
        The assessment of a 3D volume (its objects measured with
        :data:`~noisestat.measure.VOLUME_PARAMETERS`).

    Returns
    -------
    dict of str to ndarray
        First, under :data:`SECOND_ACQUISITION`, the simulated second acquisitions: for each disjoint
        pair of replicas (1st and 2nd, 3rd and 4th, ...), each raw object's voxel count in the first
        minus that in the second, all pairs in one flat array (absent when the assessment holds no
        replica values or fewer than 2 replicas). Then per codec spec, each raw object's voxel count
        in the raw volume minus that of its partner in the decoded volume (NaN: no partner), the sign
        of ε.
    """
    a = assessment
    out = {}
    replica_values = _optional_array(a, "replica_values")
    if replica_values is not None and replica_values.ndim == 3 and len(replica_values) >= 2:
        voxels = replica_values[:, :, _size_index(a)].astype(float)
        half = len(voxels) // 2
        out[SECOND_ACQUISITION] = (voxels[0:2 * half:2] - voxels[1:2 * half:2]).ravel()
    raw = _voxels(a, a.raw.values)
    for c in a.codecs:
        out[c.spec] = raw - _voxels(a, c.objects.values)
    return out


_VOXEL_NOTE = (" Volumes here are voxel counts (the Voxels column of objects.csv), whatever the voxel size: a codec's "
               "change is read in whole voxels.")


def _report_scatter(a, index: int) -> Drawing:
    """Fig. 3d,e for the codec ``a.codecs[index]``: ``volume_scatter_NN``, NN its number in labels/."""
    c = a.codecs[index]
    drawing = _volume_scatter(_voxels(a, a.raw.values), _voxels(a, c.objects.values), c.spec, "voxels",
                              f"volume_scatter_{index + 1:02d}")
    return drawing._replace(title=f"Single-object volume, raw against {c.spec}", caption=drawing.caption + _VOXEL_NOTE)


def _report_difference(a) -> Drawing:
    """Fig. 3 and Table 2: the volume differences of the replica pairs and of each codec."""
    diffs = volume_differences(a)
    drawing = _volume_difference(diffs, "voxels", SECOND_ACQUISITION, "volume_difference", pairs=True)
    caption = drawing.caption + _VOXEL_NOTE + " The table under the figure gives the same numbers."
    if SECOND_ACQUISITION not in diffs:
        caption += (" Note: the replicas' single-object values are not in this assessment (or there are fewer than "
                    "2 replicas), so only the codecs are shown.")
    return drawing._replace(caption=caption)


def _spacing_unit(a) -> str:
    """The unit of a volume's voxel size: the file's, else "voxels" for the unit spacing the pipeline
    records when it was given none."""
    prov = getattr(a, "provenance", None) or {}
    size = prov.get("pixel_size")
    if isinstance(size, Mapping) and size.get("unit"):
        return str(size["unit"])
    spacing = prov.get("spacing")
    return "voxels" if not spacing or all(float(v) == 1.0 for v in spacing) else "units of the voxel size"


def _crossing(a, shape) -> tuple[tuple[int, int, int] | None, str | None]:
    """The voxel where the orthogonal views cross: the centroid of the largest raw object (so the views
    show objects), else None (the volume's centre)."""
    if not len(a.raw):
        return None, None
    try:
        centres = np.column_stack([np.asarray(a.raw.column(f"Centroid.{axis}"), dtype=float) for axis in "ZYX"])
    except (KeyError, ValueError):
        return None, None
    voxels = _voxels(a, a.raw.values)
    ok = np.isfinite(centres).all(axis=1) & np.isfinite(voxels)
    if not ok.any():
        return None, None
    largest = int(np.flatnonzero(ok)[np.argmax(voxels[ok])])
    # The centroid is in physical units, voxel i's centre at i times the spacing.
    position = tuple(int(min(max(round(v / s), 0), n - 1))
                     for v, s, n in zip(centres[largest], _assessment_spacing(a), shape))
    return position, " (the centroid of the largest raw object)"


def _report_orthogonal_views(a) -> Drawing:
    """The orthogonal views of the raw volume with the raw segmentation, at the voxel size recorded."""
    image, labels = getattr(a, "image", None), getattr(a, "raw_labels", None)
    if image is None or labels is None or np.ndim(image) != 3:
        fig = _new_figure(_WIDTH_IN, 2.0)
        ax = fig.add_subplot()
        ax.set_axis_off()
        _no_data(ax, "the raw volume or its label volume\nis not in this assessment")
        caption = ("Orthogonal slices (xy, xz, yz) through the raw volume with the outlines of the raw segmentation: "
                   "not drawn, as the raw volume or its label volume is not in this assessment; labels/00_raw.tif "
                   "holds the label volume.")
        return _finish("orthogonal_views", "Orthogonal views of the raw volume", caption, fig)
    position, where = _crossing(a, np.shape(image))
    return _orthogonal_views(image, labels, _assessment_spacing(a), position, "orthogonal_views", _spacing_unit(a),
                             where)


def write_figures(figures: Sequence[ReportFigure], folder: str | os.PathLike) -> list[Path]:
    """Write each figure as ``<name>.png``, ``<name>.svg`` and ``<name>.pdf`` into ``folder``.

    Each file is written to a temporary name and renamed into place (a reader never sees half a
    file); a figure rendered with ``vector=False`` gets its PNG only.

    Parameters
    ----------
    figures : sequence of ReportFigure
    folder : path-like
        Created if missing (with its parents).

    Returns
    -------
    list of Path
        The PNG files in the order of ``figures``, then the SVG files, then the PDF files.
    """
    folder = Path(folder)
    paths = []
    for fmt in _FORMATS:
        for f in figures:
            data = getattr(f, fmt)
            if not data:
                continue
            path = folder / f"{f.name}.{fmt}"
            with atomic_file(path) as handle:
                handle.write(data)
            paths.append(path)
    return paths
