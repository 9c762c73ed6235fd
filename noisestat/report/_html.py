"""A self-contained HTML report of an assessment, with the figures of Pomarico et al. (2022).

:func:`write_report` writes ``report.html`` (one file: CSS inline, figures embedded as base64 PNG,
no script and nothing fetched from anywhere, so it can be mailed or archived as it is) and the
same figures as PNG files under ``figures/``:

``segmentation.png``
    The raw image in grey with the outlines of the raw segmentation, giant objects and 1-3 px
    specks marked, beside the histogram of object areas (what :mod:`noisestat.report` warns on).
``area_difference.png``
    Single-object area difference chi - chi_raw of the replicas and of each codec (Fig. 2c).
``globals.png``
    N_tot and A_tot normalised to raw, with sigma_raw / raw error bars (Fig. 2d).
``eps_per_parameter.png``
    Mean and sd of eps per parameter and codec, the +-1 band and the null of a second raw
    acquisition (Fig. 2e).
``objects_eps.png``
    The raw image with every raw object coloured by |eps| of its Area, one panel per codec.
``outside_band.png``
    Per codec, the raw objects outside the noise band (|eps| >= 1 for some parameter) and those the
    codec lost, over the decoded image's own outlines, the worst numbered as in their table.
``ratio_distortion.png``
    Compression ratio against distortion (median |eps|, fraction outside the band).

Under the figures, the page lists the objects outside the band per codec (the top 20; all of them
are in ``outside_band.csv``), and explains every column of every table in a legend beneath it.

Figures are drawn on :class:`matplotlib.figure.Figure` with the Agg canvas, never through
pyplot, so the report can be built in a worker thread or a server without touching global
state, and the same assessment always gives the same bytes.

A volume (a 3D image, ``(z, rows, cols)``) is shown as the maximum-intensity projection along z of
the image and of the label volumes (each line along z shows its largest object id), and every
caption of such a figure says so; only the parameters measured for volumes
(:data:`~noisestat.measure.VOLUME_PARAMETERS`) enter the figures and tables of eps, and the page
says that the others are not measured.

Fields an assessment may lack (``image``, ``raw_labels``, ``replica_values``, ``null_eps``,
``sigma_model``, ``statistics``, ``warnings``, ``objects.labels``: added to the pipeline later than
the rest) are read with ``getattr``; each figure says in its caption what it had to leave out.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Ellipse, Patch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from . import _inspection as inspection
from ..io._files import atomic_file, write_text_atomic
from ..measure._morphometry import PARAMETERS
from ..measure._volume import VOLUME_PARAMETERS
from ._inspection import _is_volume, _measured_parameters
from ..results import GLOBAL_PARAMETERS
from ..score._eps import null_median_abs, null_reference
from ..score._tests import ALPHA, FAMILIES, KEEP, MARGIN, TRIM

__all__ = ["write_report", "render_figures", "report_html", "ReportFigure", "FIGURE_NAMES", "FAMILY"]

FIGURE_NAMES = ("segmentation", "area_difference", "globals", "eps_per_parameter", "objects_eps", "outside_band",
                "ratio_distortion")
"""File stems of the figures, in the order the page shows them."""

FAMILY = FAMILIES["AR"][1]
"""The members of the AR family, parameters that are functions of one another: Round = 4 Area /
(pi Major^2) and AR = Major / Minor are tied by the fitted ellipse (Round = 1 / AR), and Compact =
sqrt(Round); one degree of freedom. The same tuple as ``FAMILIES["AR"]`` of :mod:`noisestat.score`
(the definition); the report itself reads every family from ``FAMILIES``."""

_DPI = 100
_EPS_CLIP = 3.0
_AREA = PARAMETERS.index("Area")
# Grey for the replicas and the null, so the codecs keep the saturated colours.
_REFERENCE_COLOUR = "0.35"
_UNMATCHED_COLOUR = (0.90, 0.10, 0.30)
_NOT_ESTIMABLE_COLOUR = (0.30, 0.85, 1.00)
# Plain numbers ("20", "-100") on log and symlog axes instead of powers of ten.
_PLAIN = FuncFormatter(lambda v, _: f"{v:g}")
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22",
            "#17becf")


@dataclass(frozen=True)
class ReportFigure:
    """One rendered figure.

    Attributes
    ----------
    name : str
        File stem, one of :data:`FIGURE_NAMES`.
    title : str
        Short heading.
    caption : str
        What the figure shows, plain text (escaped when written to HTML).
    png : bytes
        The PNG file.
    """

    name: str
    title: str
    caption: str
    png: bytes


# --------------------------------------------------------------------------------------------------
# Reading the assessment
# --------------------------------------------------------------------------------------------------

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


def _n_measured(a) -> str:
    """"19" for an image, "3 measured" for a volume: the parameters a figure or table is over."""
    n = len(_measured_parameters(a))
    return str(n) if n == len(PARAMETERS) else f"{n} measured"


def _size_unit(a) -> str:
    return "voxels" if _is_volume(a) else "px"


def _projection_note(a) -> str:
    """The caption sentence of a figure that shows a volume as its projection ('' for an image)."""
    if not _is_volume(a):
        return ""
    shape = getattr(a, "image", None)
    shape = np.shape(shape) if shape is not None else tuple((a.provenance or {}).get("image_shape") or ())
    size = " × ".join(str(int(v)) for v in shape)
    return (f" This is a volume (z × rows × columns = {size}) shown as its maximum-intensity projection along "
            "z, the label volumes projected the same way (along each z line the largest object id): objects "
            "that overlap in z hide one another; labels/ holds the label volumes themselves.")


def _not_measured_note(a) -> str:
    """The sentence that says which parameters a volume's objects lack ('' for an image)."""
    measured = _measured_parameters(a)
    if len(measured) == len(PARAMETERS):
        return ""
    return (f"For a volume only {_and(measured)} are measured per object (Area in voxels); the other "
            f"{len(PARAMETERS) - len(measured)} of the {len(PARAMETERS)} parameters are 2D shape parameters, not "
            "measured for volumes yet, and are left out here.")


# --------------------------------------------------------------------------------------------------
# Matplotlib helpers
# --------------------------------------------------------------------------------------------------

def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    # No "Software" stamp: the bytes then depend on the drawing only.
    fig.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None}, facecolor="white")
    return buffer.getvalue()


def _text(s: str) -> str:
    """``s`` safe as matplotlib text: ``$`` would start mathtext, a leading ``_`` hides a legend entry."""
    s = str(s).replace("\\", "\\\\").replace("$", r"\$")
    return "\u200b" + s if s.startswith("_") else s


def _short(spec: str, width: int = 30) -> str:
    """A codec spec shortened in the middle (paths are long; their start and end tell them apart)."""
    spec = str(spec)
    if len(spec) <= width:
        return spec
    keep = width - 1
    return spec[: keep // 2] + "…" + spec[len(spec) - (keep - keep // 2):]


def _colour(i: int) -> str:
    return _PALETTE[i % len(_PALETTE)]


def _no_data(ax, message: str) -> None:
    ax.text(0.5, 0.5, _text(message), transform=ax.transAxes, ha="center", va="center", fontsize=10,
            color="0.3", wrap=True)


def _jitter(n: int, seed: int) -> np.ndarray:
    # A fixed seed per series: the strip plot is the same every time the report is built.
    return np.random.default_rng(seed).uniform(-0.22, 0.22, n)


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


# --------------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------------

def _figure_area_difference(a) -> ReportFigure:
    raw_area = np.asarray(a.raw.values, dtype=float)[:, _AREA] if len(a.raw) else np.empty(0)
    replica_values = _optional_array(a, "replica_values")
    series, notes = [], []
    if replica_values is not None and replica_values.size:
        series.append(("replicas", replica_values[:, :, _AREA] - raw_area[None, :], _REFERENCE_COLOUR))
    elif replica_values is None:
        notes.append("the replicas' single-object values are not in this assessment, so only the codecs are shown")
    for i, c in enumerate(a.codecs):
        codec_area = np.asarray(c.objects.values, dtype=float)[:, _AREA] if len(a.raw) else np.empty(0)
        series.append((c.spec, codec_area - raw_area, _colour(i)))

    unit = _size_unit(a)
    fig = _new_figure(9.5, 4.6)
    ax = fig.add_subplot()
    diffs = [_finite(d) for _, d, _ in series]
    reference = _finite(series[0][1]) if series and series[0][0] == "replicas" else np.empty(0)
    ref_sd = float(reference.std(ddof=1)) if len(reference) > 1 else 1.0
    handles = []
    for k, ((label, _, colour), d) in enumerate(zip(series, diffs)):
        mean, sd, n = _mean_sd(d)
        if n:
            ax.scatter(k + _jitter(n, k), d, s=12, color=colour, alpha=0.55, linewidths=0)
            ax.boxplot([d], positions=[k], widths=0.5, showfliers=False, manage_ticks=False,
                       medianprops={"color": colour}, boxprops={"color": "0.4"}, whiskerprops={"color": "0.4"},
                       capprops={"color": "0.4"})
            ax.errorbar([k + 0.32], [mean], yerr=[0 if math.isnan(sd) else sd], fmt="D", color="black",
                        markersize=5, capsize=3)
        else:
            ax.text(k, 0, "no matched\nobject", ha="center", va="center", fontsize=8, color="0.3")
        name = "replicas" if label == "replicas" else _short(label, 34)
        handles.append(Line2D([], [], marker="o", linestyle="", color=colour,
                              label=_text(f"{name}: mean {_fmt(mean, '+.2f')}, sd {_fmt(sd)} {unit} (n={n})")))
    handles.append(Line2D([], [], marker="D", linestyle="", color="black", label="mean ± sd"))
    ax.axhline(0, color="0.5", linewidth=0.8, zorder=0)
    ax.set_xticks(range(len(series)), [_text("replicas" if s[0] == "replicas" else _short(s[0], 22))
                                       for s in series], rotation=15, ha="right", fontsize=8)
    ax.set_xlim(-0.6, len(series) - 0.4)
    all_d = np.concatenate(diffs) if diffs else np.empty(0)
    scale = "linear"
    if len(all_d) and np.abs(all_d).max() > 40 * max(ref_sd, 1.0):
        # A codec that moves areas by hundreds of pixels would flatten the replicas to a line.
        ax.set_yscale("symlog", linthresh=max(ref_sd, 1.0))
        ax.yaxis.set_major_formatter(_PLAIN)
        scale = "symmetric-log"
    ax.set_ylabel(f"Area − Area_raw ({unit})" + (" [symlog]" if scale != "linear" else ""))
    ax.set_title("Single-object volume difference to the raw volume" if _is_volume(a)
                 else "Single-object area difference to the raw image")
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    if not len(a.raw):
        _no_data(ax, "the raw image has no objects")
    caption = ("Area of each object minus the area of the raw object it matches (Fig. 2c of Pomarico et al. "
               "2022): replicas (raw-equivalent Monte-Carlo images from the camera noise model) in grey, "
               "each codec in colour; points are objects, boxes the quartiles, black diamonds mean ± sd "
               f"(also in the legend). Unmatched objects are left out. The y axis is {scale}.")
    if _is_volume(a):
        caption += (" For this volume Area is the object's volume in voxels (its voxel count in the 26-connected "
                    "label volume), not the area of a projection.")
    if notes:
        caption += " Note: " + "; ".join(notes) + "."
    title = "Single-object volume difference" if _is_volume(a) else "Single-object area difference"
    return ReportFigure("area_difference", title, caption, _png(fig))


def _figure_globals(a) -> ReportFigure:
    raw = np.asarray(a.raw_objects.globals, dtype=float)
    n_globals = len(GLOBAL_PARAMETERS)
    replicas = np.asarray(a.replica_globals, dtype=float).reshape(-1, n_globals)
    sigma = replicas.std(axis=0, ddof=1) if len(replicas) > 1 else np.full(n_globals, np.nan)
    fig = _new_figure(9.5, 4.0)
    axes = fig.subplots(1, n_globals)
    labels = ["replicas"] + [_short(c.spec, 22) for c in a.codecs]
    for j, (ax, name) in enumerate(zip(axes, GLOBAL_PARAMETERS)):
        ax.set_title(f"{name} / {name} of raw")
        ax.set_xticks(range(len(labels)), [_text(s) for s in labels], rotation=15, ha="right", fontsize=8)
        ax.set_xlim(-0.6, len(labels) - 0.4)
        if not raw[j] > 0:
            _no_data(ax, f"{name} of the raw image is 0:\nno ratio to show")
            continue
        rel_sigma = sigma[j] / raw[j]
        if math.isfinite(rel_sigma):
            ax.axhspan(1 - rel_sigma, 1 + rel_sigma, color="0.88", zorder=0, label="1 ± σ_raw/raw")
        ax.axhline(1.0, color="0.5", linewidth=0.8, zorder=0)
        rep = replicas[:, j] / raw[j]
        ax.scatter(_jitter(len(rep), 100 + j), rep, s=12, color=_REFERENCE_COLOUR, alpha=0.5, linewidths=0)
        mean, sd, _ = _mean_sd(rep)
        ax.errorbar([0.3], [mean], yerr=[0 if math.isnan(sd) else sd], fmt="s", color="black", capsize=3,
                    label="replicas: mean ± sd")
        for i, c in enumerate(a.codecs):
            value = float(np.asarray(c.objects.globals, dtype=float)[j]) / raw[j]
            ax.errorbar([i + 1], [value], yerr=[0 if not math.isfinite(rel_sigma) else rel_sigma], fmt="o",
                        color=_colour(i), capsize=4, markersize=7)
        ax.set_ylabel(f"{name} relative to raw")
        ax.legend(fontsize=8, loc="best")
    caption = ("Global parameters normalised to the raw image (Fig. 2d): object count N_tot and total object "
               "area A_tot of each replica (grey points; black square = mean ± sd) and of each codec's decoded "
               "image (coloured points), divided by the raw value. Codec error bars and the grey band are "
               "σ_raw / raw, σ_raw being the sd over the replicas.")
    if _is_volume(a):
        caption += " For this volume A_tot is the total object volume in voxels."
    return ReportFigure("globals", "Global parameters relative to raw", caption, _png(fig))


def _parameter_order() -> list[str]:
    """PARAMETERS with each family's members moved right after the parameter it is tested through,
    so one bracket marks the family."""
    order = list(PARAMETERS)
    for rep, members in FAMILIES.values():
        others = [m for m in members if m != rep]
        order = [p for p in order if p not in others]
        at = order.index(rep) + 1
        order[at:at] = others
    return order


def _family_spans(order) -> list[tuple[float, float, tuple]]:
    """(left, right, members) of each family's block in ``order`` (x positions of the eps figure);
    a family not in ``order`` (not measured for a volume) has none."""
    spans = []
    for rep, members in FAMILIES.values():
        if not all(m in order for m in members):
            continue
        at = order.index(rep)
        spans.append((at - 0.45, at + len(members) - 1 + 0.45, members))
    return spans


def _figure_eps(a) -> ReportFigure:
    measured = _measured_parameters(a)
    order = [p for p in _parameter_order() if p in measured]
    columns = [PARAMETERS.index(p) for p in order]
    n_rep = _n_replicas(a)
    theory = _null_theory(n_rep)
    null_eps = _optional_array(a, "null_eps")
    sigma_model = _optional_array(a, "sigma_model")
    show_model = sigma_model is not None and sigma_model.shape == np.asarray(a.sigma_raw).shape
    fig = _new_figure(11.0, 6.8 if show_model else 4.9)
    if show_model:
        ax, ax_model = fig.subplots(2, 1, sharex=True, height_ratios=[2.3, 1])
    else:
        ax, ax_model = fig.add_subplot(), None

    series = []  # (label, colour, means, sds, n_infinite)
    if null_eps is not None and null_eps.ndim == 2:
        stats_ = [_mean_sd(null_eps[:, j]) for j in columns]
        series.append(("second raw acquisition (simulated)", _REFERENCE_COLOUR, [s[0] for s in stats_],
                       [s[1] for s in stats_], [int(np.isinf(null_eps[:, j]).sum()) for j in columns]))
        null_text = "the simulated second raw acquisition (grey)"
    else:
        sd = theory["sd"]
        series.append((f"second raw acquisition (theory, ε ~ {theory['label']})", _REFERENCE_COLOUR,
                       [0.0] * len(order), [sd if math.isfinite(sd) else math.nan] * len(order), [0] * len(order)))
        null_text = (f"the theoretical null of a second raw acquisition, ε ~ {theory['label']} (grey; its sd is "
                     f"{_fmt(theory['sd'])})")
    for i, c in enumerate(a.codecs):
        eps = np.asarray(c.eps, dtype=float).reshape(-1, len(PARAMETERS))
        stats_ = [_mean_sd(eps[:, j]) for j in columns]
        series.append((_short(c.spec, 40), _colour(i), [s[0] for s in stats_], [s[1] for s in stats_],
                       [int(np.isinf(eps[:, j]).sum()) for j in columns]))

    x = np.arange(len(order), dtype=float)
    width = 0.8 / len(series)
    ax.axhspan(-1, 1, color="#d9f0d3", zorder=0, label="|ε| < 1: inside the raw noise")
    ax.axhline(0, color="0.5", linewidth=0.8, zorder=0)
    spans = _family_spans(order)
    for lo, hi, _ in spans:
        ax.axvspan(lo, hi, color="#fff3c4", zorder=0)
    top = 1.0
    for k, (label, colour, means, sds, _) in enumerate(series):
        xs = x - 0.4 + width * (k + 0.5)
        m = np.array(means, dtype=float)
        s = np.nan_to_num(np.array(sds, dtype=float), nan=0.0)
        ok = np.isfinite(m)
        if ok.any():
            ax.errorbar(xs[ok], m[ok], yerr=s[ok], fmt="o", color=colour, markersize=4, capsize=2,
                        elinewidth=1, label=_text(label))
            top = max(top, float(np.max(np.abs(m[ok]) + s[ok])))
        else:
            ax.plot([], [], "o", color=colour, label=_text(label + " (no finite ε)"))
    if top > 12:
        # Band and null stay readable next to a codec whose eps reaches tens of sigma.
        ax.set_yscale("symlog", linthresh=2.0)
        ax.yaxis.set_major_formatter(_PLAIN)
        ax.set_ylabel("ε = (χ_raw − χ_codec) / σ_raw  [symlog]")
    else:
        ax.set_ylabel("ε = (χ_raw − χ_codec) / σ_raw")
    y_top = top * (1.6 if top > 12 else 1.15)
    ax.set_ylim(-y_top, y_top)
    any_inf = False
    for k, (_, colour, _, _, n_inf) in enumerate(series):
        xs = x - 0.4 + width * (k + 0.5)
        hit = np.array(n_inf) > 0
        if hit.any():
            any_inf = True
            ax.plot(xs[hit], np.full(hit.sum(), y_top), "^", color=colour, markersize=6, clip_on=False)
    if any_inf:
        ax.plot([], [], "^", color="0.3", label="some ε = ±∞ (σ_raw = 0), left out of mean/sd")
    for lo, hi, members in spans:
        ax.annotate("", xy=(lo, 1.03), xytext=(hi, 1.03), xycoords=("data", "axes fraction"),
                    arrowprops={"arrowstyle": "|-|", "color": "#b8860b", "linewidth": 1.2}, annotation_clip=False)
        ax.annotate(f"one family: {', '.join(members)} (1 degree of freedom)", xy=((lo + hi) / 2, 1.06),
                    xycoords=("data", "axes fraction"), ha="center", va="bottom", fontsize=8, color="#8b6508",
                    annotation_clip=False)
    ax.set_xlim(-0.6, len(order) - 0.4)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.set_title("Mean ± sd of ε per parameter", pad=26)
    if ax_model is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.asarray(sigma_model, dtype=float) / np.asarray(a.sigma_raw, dtype=float)
        med = np.array([np.median(_finite(ratio[:, j])) if len(_finite(ratio[:, j])) else math.nan
                        for j in columns])
        ok = np.isfinite(med)
        ax_model.bar(x[ok], med[ok], color="#9ecae1", width=0.6)
        ax_model.axhline(1.0, color="0.4", linestyle="--", linewidth=0.8)
        for lo, hi, _ in spans:
            ax_model.axvspan(lo, hi, color="#fff3c4", zorder=0)
        ax_model.set_ylabel("median σ_model / σ_raw", fontsize=9)
        ax_model.set_title("Spread when the forest is retrained with other seeds, relative to σ_raw", fontsize=9)
        target = ax_model
    else:
        target = ax
    target.set_xticks(x, order, rotation=45, ha="right", fontsize=9)
    caption = ("Mean ε with sd error bars, per parameter (Fig. 2e), one series per codec, beside " + null_text +
               ". The green band is |ε| < 1: a change inside the raw camera noise."
               + "".join(f" {_and(members)} (shaded yellow, bracketed) are functions of one another: they count "
                         "as one parameter family." for _, _, members in spans))
    if _not_measured_note(a):
        caption += " " + _not_measured_note(a)
    if any_inf:
        caption += (" Triangles on the top edge mark parameters where some ε is ±∞ (σ_raw = 0 and the codec "
                    "changed the value); those are left out of mean and sd and counted in the tables.")
    if show_model:
        caption += (" Lower panel: median over objects of the spread of each parameter when the pixel "
                    "classifier is retrained with other seeds, divided by σ_raw (reported beside σ_raw, "
                    "never added to it).")
    return ReportFigure("eps_per_parameter", "ε per parameter", caption, _png(fig))


def _object_colours(a, c) -> np.ndarray:
    """RGB per raw object: |eps| of Area on the clipped colour scale, or the unmatched / not-estimable colour."""
    cmap = _cmap()
    eps = np.asarray(c.eps, dtype=float).reshape(-1, len(PARAMETERS))[:, _AREA]
    matched = _matched(c)
    rgb = np.array(cmap(np.clip(np.nan_to_num(np.abs(eps), nan=0.0, posinf=_EPS_CLIP), 0, _EPS_CLIP)
                        / _EPS_CLIP))[:, :3]
    rgb[np.isnan(eps)] = _NOT_ESTIMABLE_COLOUR
    rgb[~matched] = _UNMATCHED_COLOUR
    return rgb


def _cmap():
    from matplotlib import colormaps

    return colormaps["viridis"]


def _grey(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, dtype=float)
    lo, hi = np.percentile(image, [0.5, 99.5])
    if not hi > lo:
        hi = lo + 1.0
    return np.clip((image - lo) / (hi - lo), 0, 1)


def _figure_objects(a) -> ReportFigure:
    from skimage.segmentation import find_boundaries

    pixels = _pixels(a)
    have_pixels = pixels is not None
    volume = _is_volume(a)
    # Without Major (a volume's objects), an object is drawn as the disc of its equal-volume ball.
    extent = (2 * np.cbrt(3 * np.asarray(a.raw.column("Area"), dtype=float) / (4 * math.pi)) if volume and len(a.raw)
              else None)
    if have_pixels:
        grey, labels = pixels
        rows, cols = labels.shape
    else:
        shape = (a.provenance or {}).get("image_shape") if hasattr(a, "provenance") else None
        if shape and len(shape) in (2, 3):
            rows, cols = int(shape[-2]), int(shape[-1])
        elif len(a.raw):
            size = extent if volume else a.raw.column("Major")
            rows = int(np.nanmax(a.raw.column("YM") + size)) + 1
            cols = int(np.nanmax(a.raw.column("XM") + size)) + 1
        else:
            rows = cols = 64
    n = len(a.codecs)
    ncols = min(n, 4)
    nrows = math.ceil(n / ncols)
    panel = 3.2
    aspect = rows / max(cols, 1)
    fig = _new_figure(panel * ncols + 1.2, min(panel * aspect, 6.0) * nrows + 1.1)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    ids = np.asarray(a.raw.labels, dtype=np.int64)
    boundaries = find_boundaries(labels, mode="inner") if have_pixels and len(ids) else None
    for ax, c in zip(axes, a.codecs):
        rgb_objects = _object_colours(a, c) if len(ids) else np.empty((0, 3))
        if have_pixels:
            canvas = np.repeat(grey[:, :, None], 3, axis=2)
            if len(ids):
                lut = np.zeros((int(max(ids.max(), labels.max())) + 1, 3))
                has = np.zeros(len(lut), dtype=bool)
                lut[ids] = rgb_objects
                has[ids] = True
                inside = has[labels]
                # Blend so the object's own texture stays visible; outlines in full colour.
                canvas[inside] = 0.3 * canvas[inside] + 0.7 * lut[labels[inside]]
                edge = boundaries & inside
                canvas[edge] = lut[labels[edge]]
            _show(ax, canvas, a, interpolation="nearest")
        else:
            ax.imshow(np.full((rows, cols, 3), 0.15), interpolation="nearest")
            for i in range(len(ids) if volume else 0):
                xm, ym = (float(a.raw.values[i, PARAMETERS.index(p)]) for p in ("XM", "YM"))
                if all(math.isfinite(v) for v in (xm, ym, extent[i])):
                    ax.add_patch(Ellipse((xm - 0.5, ym - 0.5), extent[i], extent[i], facecolor=rgb_objects[i],
                                         edgecolor="white", linewidth=0.4))
            for i in range(0 if volume else len(ids)):
                xm, ym, major, minor, angle = (float(a.raw.values[i, PARAMETERS.index(p)])
                                               for p in ("XM", "YM", "Major", "Minor", "Angle"))
                if all(math.isfinite(v) for v in (xm, ym, major, minor, angle)):
                    # ImageJ angles run counter-clockwise with y up; the image is shown with y down.
                    ax.add_patch(Ellipse((xm - 0.5, ym - 0.5), major, minor, angle=-angle,
                                         facecolor=rgb_objects[i], edgecolor="white", linewidth=0.4))
        n_unmatched = int((~_matched(c)).sum()) if len(ids) else 0
        ax.set_title(_text(f"{_short(c.spec, 36)}\n{len(ids) - n_unmatched}/{len(ids)} matched"), fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        if not len(ids):
            _no_data(ax, "no raw objects")
    for ax in axes[n:]:
        ax.set_axis_off()
    fig.colorbar(ScalarMappable(Normalize(0, _EPS_CLIP), _cmap()), ax=list(axes[:n]), extend="max",
                 label="|ε| of Area (clipped at 3)", shrink=0.9)
    fig.legend(handles=[Patch(color=_UNMATCHED_COLOUR, label="no matching object in the decoded image"),
                        Patch(color=_NOT_ESTIMABLE_COLOUR, label="ε not estimable (σ_raw undefined)")],
               loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    caption = ("The raw image in grey, each raw object coloured by |ε| of its Area for the codec named above "
               "the panel, on a colour scale clipped to 0–3 (|ε| ≥ 3 and ±∞ take the top colour; |ε| < 1 is "
               "inside the raw noise). Red objects have no matching object in the decoded image; cyan ones "
               "have no σ_raw (matched by fewer than 2 replicas).")
    if not have_pixels and volume:
        caption += (" The raw volume and label volume are not in this assessment, so each object is drawn as "
                    "the disc of a ball of its volume at its centre (XM, YM) on a dark background, seen along z.")
    elif not have_pixels:
        caption += (" The raw image and label image are not in this assessment, so each object is drawn as "
                    "its fitted ellipse (XM, YM, Major, Minor, Angle) on a dark background.")
    if have_pixels and volume:
        caption += _projection_note(a) + " Area is the object's volume in voxels."
    return ReportFigure("objects_eps", "Objects coloured by |ε| of Area", caption, _png(fig))


_OUTLINE_COLOUR = (1.0, 0.85, 0.0)
_GIANT_COLOUR = (0.95, 0.15, 0.15)
_SPECK_COLOUR = (1.0, 0.0, 1.0)
_CODEC_OUTLINE_COLOUR = (0.0, 0.9, 1.0)
_OUTSIDE_COLOUR = (1.0, 0.55, 0.0)
_FAR_OUTSIDE_COLOUR = (0.9, 0.0, 0.0)
_LOST_COLOUR = (1.0, 0.0, 1.0)
_NUMBERED = 10


def _pixels(a):
    """(grey image, raw label image) when the assessment carries both with one 2-D shape, else None.
    A volume's (both with one 3-D shape) are its maximum-intensity projection along z and its label
    volume's projection (:func:`_project`)."""
    image = _optional_array(a, "image")
    labels = _optional_array(a, "raw_labels")
    if image is None or labels is None or image.ndim not in (2, 3) or labels.shape != image.shape:
        return None
    return _grey(_display(_project(image))), _display(_project(labels))


# Images larger than this (pixels along a side) are shown every k-th pixel: a figure is a few inches
# wide, and full-resolution RGB canvases of a 2560 x 2560 image took over 1 GB while the report drew.
_DISPLAY_MAX = 1536


def _display(plane: np.ndarray) -> np.ndarray:
    """``plane`` for drawing: itself up to :data:`_DISPLAY_MAX` a side, else every k-th pixel."""
    step = -(-max(plane.shape) // _DISPLAY_MAX)
    return plane if step == 1 else plane[::step, ::step]


def _show(ax, canvas: np.ndarray, a, **kwargs) -> None:
    """imshow of a canvas drawn from :func:`_display` planes, in the full image's pixel coordinates."""
    shape = np.shape(getattr(a, "raw_labels", None))[-2:]
    if len(shape) == 2 and tuple(canvas.shape[:2]) != tuple(shape):
        rows, cols = shape
        kwargs["extent"] = (-0.5, cols - 0.5, rows - 0.5, -0.5)
    ax.imshow(canvas, **kwargs)


def _overlay_size(rows: int, cols: int, width: float) -> tuple[float, float]:
    return width, max(1.5, min(width * rows / max(cols, 1), 9.0))


def _figure_segmentation(a) -> ReportFigure:
    from skimage.segmentation import find_boundaries

    pixels = _pixels(a)
    volume = _is_volume(a)
    unit = _size_unit(a)
    areas = np.asarray(a.raw.values, dtype=float).reshape(-1, len(PARAMETERS))[:, _AREA]
    n = len(areas)
    fig = _new_figure(12.0, 6.0)
    ax_img, ax_hist = fig.subplots(1, 2, width_ratios=[2.2, 1])
    n_pixels = None
    if pixels is not None:
        grey, labels = pixels
        # A volume's objects are judged against its voxels, as segmentation_warnings does.
        n_pixels = int(np.asarray(a.raw_labels).size)
        canvas = np.repeat(grey[:, :, None].astype(np.float32), 3, axis=2)  # float32: half the memory
        if n:
            ids = np.asarray(a.raw.labels, dtype=np.int64)
            cells = areas[areas > inspection.TINY_AREA_PX]
            median = float(np.median(cells)) if len(cells) else math.inf
            huge = areas / n_pixels > inspection.GIANT_IMAGE_FRACTION
            large = (len(cells) >= 5) & (areas > inspection.GIANT_MEDIAN_RATIO * median)
            speck = areas <= inspection.TINY_AREA_PX
            lut = np.zeros((int(max(ids.max(), labels.max())) + 1, 3))
            # 0 background, 1 object, 2 giant against the others (red outline), 3 giant in the image
            # (red tint and outline), 4 speck
            kind = np.zeros(len(lut), dtype=np.int8)
            kind[ids] = np.where(speck, 4, np.where(huge, 3, np.where(large, 2, 1)))
            k = kind[labels]
            canvas[k == 3] = 0.55 * canvas[k == 3] + 0.45 * np.array(_GIANT_COLOUR)
            canvas[k == 4] = _SPECK_COLOUR
            boundary = find_boundaries(labels, mode="inner")
            canvas[boundary & (k == 1)] = _OUTLINE_COLOUR
            canvas[boundary & ((k == 2) | (k == 3))] = _GIANT_COLOUR
        _show(ax_img, canvas, a, interpolation="antialiased")
        ax_img.set_title(f"raw segmentation: {n} objects" + (" (maximum projection along z)" if volume else ""),
                         fontsize=10)
    else:
        _no_data(ax_img, "the raw image and its label image are not in this assessment")
    ax_img.set_xticks([])
    ax_img.set_yticks([])
    if n:
        positive = areas[areas > 0]
        bins = np.geomspace(1, max(float(positive.max()), 2.0) * 1.05, 40)
        ax_hist.hist(positive, bins=bins, color="0.45")
        ax_hist.set_xscale("log")
        ax_hist.xaxis.set_major_formatter(_PLAIN)
        cells = areas[areas > inspection.TINY_AREA_PX]
        median = float(np.median(areas))
        ax_hist.axvline(median, color="black", linestyle="--", linewidth=1, label=f"median {median:.0f} {unit}")
        if len(cells):
            cell_median = float(np.median(cells))
            ax_hist.axvline(inspection.GIANT_MEDIAN_RATIO * cell_median, color=_GIANT_COLOUR, linewidth=1,
                            label=f"{inspection.GIANT_MEDIAN_RATIO:g}x median of objects > "
                                  f"{inspection.TINY_AREA_PX} {unit}")
        if n_pixels:
            ax_hist.axvline(inspection.GIANT_IMAGE_FRACTION * n_pixels, color=_GIANT_COLOUR, linestyle=":",
                            linewidth=1.2, label=f"{inspection.GIANT_IMAGE_FRACTION:.0%} of the "
                                                 + ("volume" if volume else "image"))
        ax_hist.axvspan(0.9, inspection.TINY_AREA_PX + 0.5, color=_SPECK_COLOUR, alpha=0.2,
                        label=f"1-{inspection.TINY_AREA_PX} {unit} specks")
        ax_hist.set_xlabel("object volume (voxels, log scale)" if volume else "object area (px, log scale)")
        ax_hist.set_ylabel("raw objects")
        ax_hist.legend(fontsize=8, loc="best")
    else:
        _no_data(ax_hist, "the raw image has no objects")
    ax_hist.set_title("Object volumes" if volume else "Object areas", fontsize=10)
    caption = ("What was measured: the raw image in grey (0.5–99.5 % percentile stretch) with the outline of "
               f"every raw object in yellow; objects more than {inspection.GIANT_MEDIAN_RATIO:g} times the "
               f"median area of the objects over {inspection.TINY_AREA_PX} px outlined red, and tinted red too "
               f"when one covers more than {inspection.GIANT_IMAGE_FRACTION:.0%} of the image (the giant-object "
               f"warning); objects of 1–{inspection.TINY_AREA_PX} px (specks) in magenta. Right: histogram of "
               "the raw object areas with those limits. A segmentation that covers background, joins cells or "
               "breaks them into specks makes every number below about something else than cells; "
               "labels/00_raw.tif holds it as a label image (ids = the object column of objects.csv) to open in "
               "Fiji or napari.")
    if volume:
        caption = ("What was measured: the raw volume as its maximum-intensity projection along z, in grey "
                   "(0.5–99.5 % percentile stretch), with the outline of every raw object of the projected label "
                   "volume (along each z line the largest object id) in yellow; objects of more than "
                   f"{inspection.GIANT_MEDIAN_RATIO:g} times the median volume of the objects over "
                   f"{inspection.TINY_AREA_PX} voxels outlined red, and tinted red too when one fills more than "
                   f"{inspection.GIANT_IMAGE_FRACTION:.0%} of the volume (the giant-object warning); objects of "
                   f"1–{inspection.TINY_AREA_PX} voxels (specks) in magenta. Objects that overlap in z hide one "
                   "another in the projection. Right: histogram of the raw object volumes (voxel counts of the "
                   "26-connected objects) with those limits. labels/00_raw.tif holds the label volume (ids = the "
                   "object column of objects.csv) to open in Fiji or napari.")
    if pixels is None:
        caption += " The image and label image are not in this assessment, so only the histogram is drawn."
    return ReportFigure("segmentation", "Raw segmentation", caption, _png(fig))


def _figure_outside_band(a) -> ReportFigure:
    from skimage.segmentation import find_boundaries

    pixels = _pixels(a)
    table = inspection.outside_band(a)
    n = len(a.codecs)
    ncols = min(max(n, 1), 3)
    nrows = max(1, math.ceil(n / ncols))
    if pixels is not None:
        rows, cols = pixels[1].shape
    else:
        rows = cols = 1
    width, height = _overlay_size(rows, cols, 4.2)
    fig = _new_figure(width * ncols + 0.4, height * nrows + 1.5)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    ids = np.asarray(a.raw.labels, dtype=np.int64)
    xm, ym = (np.asarray(a.raw.column(p), dtype=float) if len(ids) else np.empty(0) for p in ("XM", "YM"))
    row_of = {int(i): k for k, i in enumerate(ids)}
    raw_edges = find_boundaries(pixels[1], mode="inner") if pixels is not None and len(ids) else None
    missing_codec_labels = []
    for ax, c in zip(axes, a.codecs):
        rows_c = table.get(c.spec, [])
        n_lost = sum(1 for r in rows_c if r["worst_parameter"] == "")
        ax.set_title(_text(f"{_short(c.spec, 40)}\n{len(rows_c) - n_lost} outside the band, {n_lost} lost "
                           f"of {len(ids)}"), fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        if pixels is None:
            _no_data(ax, "no image in this assessment:\nsee the table below")
            continue
        grey, labels = pixels
        canvas = np.repeat(grey[:, :, None].astype(np.float32), 3, axis=2)  # float32: half the memory
        if raw_edges is not None:
            canvas[raw_edges] = 0.6 * canvas[raw_edges] + 0.4
        if rows_c:
            lut = np.zeros((int(max(ids.max(), labels.max())) + 1, 3))
            has = np.zeros(len(lut), dtype=bool)
            for r in rows_c:
                e = abs(r["eps"])
                lut[r["object"]] = (_LOST_COLOUR if r["worst_parameter"] == "" else
                                    _FAR_OUTSIDE_COLOUR if not e < 3 else _OUTSIDE_COLOUR)
                has[r["object"]] = True
            inside = has[labels]
            canvas[inside] = 0.35 * canvas[inside] + 0.65 * lut[labels[inside]]
        # The decoded image's outlines last, over the fill: where a codec split or shrank an object shows.
        codec_labels = getattr(c.objects, "labels", None)
        if codec_labels is not None and np.shape(codec_labels) == np.shape(a.raw_labels):
            canvas[find_boundaries(_display(_project(codec_labels)), mode="inner")] = _CODEC_OUTLINE_COLOUR
        else:
            missing_codec_labels.append(c.spec)
        _show(ax, canvas, a, interpolation="antialiased")
        for r in rows_c[:_NUMBERED]:
            k = row_of.get(r["object"])
            if k is not None and math.isfinite(xm[k]) and math.isfinite(ym[k]):
                ax.annotate(str(r["rank"]), (xm[k] - 0.5, ym[k] - 0.5), fontsize=7, color="white",
                            ha="center", va="center", fontweight="bold",
                            bbox={"boxstyle": "round,pad=0.1", "facecolor": "black", "alpha": 0.6, "linewidth": 0})
    for ax in axes[n:]:
        ax.set_axis_off()
    fig.legend(handles=[Patch(color=_OUTSIDE_COLOUR, label="1 ≤ |ε| < 3 (worst parameter)"),
                        Patch(color=_FAR_OUTSIDE_COLOUR, label="|ε| ≥ 3 or ±∞"),
                        Patch(color=_LOST_COLOUR, label="lost: no partner in the decoded image"),
                        Patch(color=_CODEC_OUTLINE_COLOUR, label="decoded image's object outlines"),
                        Patch(color="0.8", label="raw object outlines")],
               loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    caption = ("Per codec, the raw objects outside the noise band: filled orange when the largest |ε| over "
               f"the {_n_measured(a)} parameters is between 1 and 3, red when it is 3 or more (or ±∞), magenta "
               "when the codec "
               "lost an object that at least 2 replicas found. Light outlines are the raw objects, cyan ones "
               f"the objects segmented in the decoded image. The {_NUMBERED} worst carry their rank in the "
               "table of objects outside the band below; labels/ holds both segmentations as label images.")
    if pixels is not None:
        caption += _projection_note(a)
    if missing_codec_labels:
        caption += (" The decoded image's label image is not in this assessment for: "
                    + "; ".join(missing_codec_labels) + " (no cyan outlines).")
    return ReportFigure("outside_band", "Objects outside the noise band", caption, _png(fig))



def _figure_ratio(a) -> ReportFigure:
    theory = _null_theory(_n_replicas(a))
    null_eps = _optional_array(a, "null_eps")
    if null_eps is not None and np.asarray(null_eps).size:
        null_median, null_out, null_kind = _median_abs(null_eps), _fraction_outside(null_eps), "simulated"
    else:
        null_median, null_out, null_kind = theory["median_abs"], theory["frac_outside"], "theory"
    fig = _new_figure(10.0, 4.2)
    axes = fig.subplots(1, 2)
    points, without, undefined = [], [], []
    for i, c in enumerate(a.codecs):
        ratio = _codec_ratio(c)
        eps = np.asarray(c.eps, dtype=float)
        med, out = _median_abs(eps), _fraction_outside(eps)
        if ratio is None:
            without.append(c.spec)
        elif math.isnan(med):
            undefined.append(c.spec)
        else:
            points.append((ratio, med, out, i, c))
    metrics = (("median |ε| over objects and parameters", 1, null_median),
               ("fraction of (object, parameter) with |ε| ≥ 1", 2, null_out))
    for ax, (ylabel, k, null_value) in zip(axes, metrics):
        ax.set_xlabel("compression ratio (raw bytes / compressed bytes)")
        ax.set_ylabel(ylabel, fontsize=9)
        if not points:
            _no_data(ax, "no codec with a compression ratio\nand an estimable ε")
            continue
        ax.set_xscale("log")
        # Plain numbers at 1, 2, 5, 10, ...: ratios read as "20", not as 2 x 10^1.
        ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(_PLAIN)
        ax.xaxis.set_minor_formatter(NullFormatter())
        for p in points:
            tolerable = bool(getattr(p[4], "tolerable", False))
            ax.scatter([p[0]], [p[k]], s=55, color=_colour(p[3]), marker="o" if tolerable else "X", zorder=3)
            ax.annotate(_text(_short(p[4].spec, 24)), (p[0], p[k]), xytext=(5, 4), textcoords="offset points",
                        fontsize=7)
        xs = np.array([p[0] for p in points])
        # Explicit limits: one codec (or equal ratios) would give matplotlib a zero-width log range.
        ax.set_xlim(xs.min() / 1.6, xs.max() * 2.2)
        ys = np.array([p[k] for p in points] + ([null_value] if math.isfinite(null_value) else []))
        ys = ys[np.isfinite(ys)]
        top = float(ys.max()) if len(ys) else 1.0
        if k == 2:
            ax.set_ylim(-0.03, 1.03)
        elif top > 20:
            ax.set_yscale("symlog", linthresh=1.0)
            ax.yaxis.set_major_formatter(_PLAIN)
            ax.set_ylim(-0.05, top * 2)
        else:
            ax.set_ylim(-0.04 * max(top, 1.0), max(top * 1.2, 1.2))
        if math.isfinite(null_value):
            ax.axhline(null_value, color=_REFERENCE_COLOUR, linestyle="--", linewidth=1,
                       label=f"second raw acquisition ({null_kind})")
        ax.plot([], [], "o", color="0.3", label="tolerable")
        ax.plot([], [], "X", color="0.3", label="not tolerable")
        ax.legend(fontsize=7, loc="best")
    fig.suptitle("Compression ratio against distortion", fontsize=11)
    caption = ("Compression ratio (log scale) against two measures of distortion over all raw objects and the "
               f"{_n_measured(a)} parameters: the median |ε| (left) and the fraction of (object, parameter) pairs "
               "outside the "
               "band |ε| < 1 (right); infinite ε count as outside. The dashed line is the same measure for a "
               f"second raw acquisition ({null_kind}). Circles: tolerable by the verdict rule; crosses: not.")
    if _not_measured_note(a):
        caption += " " + _not_measured_note(a)
    if without:
        caption += " Codecs without a compression ratio (not plotted): " + "; ".join(without) + "."
    if undefined:
        caption += " Codecs with no estimable ε (not plotted): " + "; ".join(undefined) + "."
    return ReportFigure("ratio_distortion", "Compression ratio against distortion", caption, _png(fig))


def render_figures(assessment) -> list[ReportFigure]:
    """Draw the report figures.

    Parameters
    ----------
    assessment : noisestat.pipeline.Assessment

    Returns
    -------
    list of ReportFigure
        In the order of :data:`FIGURE_NAMES`.
    """
    return [_figure_segmentation(assessment), _figure_area_difference(assessment), _figure_globals(assessment),
            _figure_eps(assessment), _figure_objects(assessment), _figure_outside_band(assessment),
            _figure_ratio(assessment)]


# --------------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------------

_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0 auto;max-width:1180px;
padding:18px 24px;color:#1d1d1f;background:#fff;line-height:1.4}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:3px}
h3{font-size:15px;margin:18px 0 6px}
.sub{color:#555;margin:0 0 14px}
table{border-collapse:collapse;font-size:13px;margin:6px 0 12px}
th,td{border:1px solid #d5d5d5;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f2f2f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
td.bad{color:#b00020;font-weight:600}
code{font-family:Menlo,Consolas,monospace;font-size:12px;word-break:break-all}
.ok{background:#1b7f3b;color:#fff;border-radius:4px;padding:1px 8px;font-weight:600;white-space:nowrap}
.no{background:#b00020;color:#fff;border-radius:4px;padding:1px 8px;font-weight:600;white-space:nowrap}
.rule{background:#f7f7f9;border-left:4px solid #888;padding:8px 12px;font-size:13px}
figure{margin:18px 0 26px}figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:13px;color:#333;max-width:1000px}
ul.reasons{margin:0;padding-left:18px;font-size:12px}details{font-size:12px;color:#555}
table.prov td:first-child{white-space:nowrap;color:#444}
.warn{background:#fff4e5;border-left:4px solid #e07b00;padding:8px 12px;font-size:13px;margin:10px 0 16px}
.warn ul{margin:4px 0 0;padding-left:18px}
dl.legend{font-size:12px;color:#333;margin:0 0 14px;max-width:1000px}
dl.legend dt{display:inline;font-weight:600}dl.legend dd{display:inline;margin:0}
dl.legend dd:after{content:"";display:block;margin-bottom:2px}
"""

_COLUMN_TITLES = {"n": "n", "n_infinite": "n ±∞", "mean_eps": "mean ε", "sd_eps": "sd ε",
                  "frac_abs_eps_lt_1": "fraction |ε|<1", "median_abs_eps": "median |ε|", "codec_value": "codec",
                  "n_replicas_matched": "replicas matched", "match_rate": "match rate",
                  "worst_parameter": "worst parameter", "n_parameters_outside": "parameters outside",
                  "eps": "ε", "sigma_raw": "σ_raw", "chi_raw": "χ_raw", "chi_codec": "χ_codec",
                  "sigma_used": "σ used"}


def _column_help() -> dict:
    """What each table column means, shown in a legend under every table that has it."""
    keep_text = f"{KEEP:g} × null_fraction"
    tested_through = "; ".join(
        f"“family {name}”: {_and(m for m in members if m != rep)} "
        f"{'are functions' if len(members) > 2 else 'is a function'} of {rep}, tested through {rep}"
        for name, (rep, members) in FAMILIES.items())
    families = "; ".join(f"{', '.join(members)}: one degree of freedom" for _, members in FAMILIES.values())

    return {
        # verdict table
        "codec": "the codec spec as given (name and settings).",
        "compression ratio": "raw image bytes / compressed bytes (– where the codec does not report a size).",
        "raw objects matched": "raw objects with a partner in the decoded image's segmentation (by the matching "
                               "rule, see provenance) / raw objects.",
        "verdict": "tolerable when every condition of the verdict rule below holds.",
        "reasons": "the conditions that failed, one per parameter family or global.",
        # parameter tables
        "parameter": f"one of the {len(PARAMETERS)} ImageJ parameters (Analyze Particles and Extended Particle "
                     f"Analyzer names); {tested_through}.",
        "n": "raw objects with an ε for this parameter: matched in the decoded image and by ≥ 2 replicas "
             "(so σ_raw exists); finite or infinite.",
        "n_infinite": "of those, objects with ε = ±∞: σ_raw = 0 (all replicas gave the same value) and the codec "
                      "changed the value; outside the band, left out of mean and sd.",
        "mean_eps": "mean of the finite ε = (χ_raw − χ_codec) / σ_raw; red when |mean| ≥ 1.",
        "sd_eps": "sample sd (ddof 1) of the finite ε; a second raw acquisition gives about √2.",
        "frac_abs_eps_lt_1": "fraction of the n objects inside the noise band |ε| < 1 (±∞ outside); a second raw "
                             "acquisition gives about 0.52.",
        "median_abs_eps": "median |ε| over the n objects (±∞ count as large).",
        "family": f"the parameter family tested as one ({families}).",
        "n_eps": "objects with an ε (±∞ included, as beyond any margin): what the location tests (trimmed "
                 "mean, p_zero, p_equivalent) use; the verdict needs at least 3.",
        "n_finite": "objects with a finite ε (where the statistics carry n_eps, the ±∞ ones are n_eps − "
                    "n_finite; otherwise n_finite is what the location tests use, at least 3 needed).",
        "trimmed_mean": f"{TRIM:.0%} trimmed mean of ε ({TRIM:.0%} cut from each end): the systematic "
                        "shift, robust to the heavy tails of ε where σ_raw is tiny.",
        "p_zero": "two-sided p of Yuen's t test that the trimmed mean is 0: small means a systematic shift was "
                  "detected (with many objects even a shift far inside the noise is; read with p_equivalent).",
        "p_zero_holm": "p_zero Holm-corrected over the parameter families (one test per family).",
        "p_equivalent": f"p of the equivalence test (TOST, two one-sided Yuen tests) that |trimmed mean| < "
                        f"{MARGIN:g}: below {ALPHA:g} shows the shift inside the raw noise.",
        "value": "the statistic as recorded.",
        "n_band": "objects with an ε (finite or ±∞): the denominator of the band fraction.",
        "n_inside": "of those, objects with |ε| < 1.",
        "frac_wilson95": "95 % Wilson score interval of the fraction |ε| < 1 (shown for reading; the verdict "
                         "uses p_band).",
        "null_fraction": "the fraction |ε| < 1 a simulated second raw acquisition gives for this parameter.",
        "band_threshold": f"the fraction |ε| < 1 the codec must be shown to exceed: {keep_text}.",
        "p_band": "one-sided p of the non-inferiority test (Agresti–Caffo adjusted z) that the fraction |ε| < 1 "
                  f"exceeds band_threshold: tolerable needs it below {ALPHA:g}.",
        "sigma_used": "the σ that ε divides by: σ_raw, or the parameter's floor where σ_raw is below it.",
        # matching and loss table
        "method": "matching rule: iou (one-to-one, IoU ≥ 0.5) or centroid (nearest centre within 3 px).",
        "n_reference": "raw objects.",
        "matched": "raw objects with a partner in the decoded image.",
        "unmatched_reference": "raw objects without a partner (lost, split or merged).",
        "unmatched_other": "decoded-image objects no raw object took (new objects or split-off fragments).",
        "shared": "decoded-image objects taken by two or more raw objects (centroid rule only).",
        "lost": "raw objects without a partner that are neither split nor merged (erased, or reshaped "
                "beyond the matching rule).",
        "split": "raw objects broken into two or more decoded-image objects (no one-to-one partner).",
        "merged": "raw objects joined with a neighbour into one decoded-image object.",
        "n_raw": "raw objects.",
        "n_unmatched": "raw objects left without a one-to-one partner (lost + split + merged).",
        "rate": "n_unmatched / n_raw.",
        "null_unmatched": "the same count for simulated second raw acquisitions (pooled pairs of replicas).",
        "null_n": "raw objects in those pooled second acquisitions.",
        "null_rate": "null_unmatched / null_n: how many objects camera noise alone leaves unmatched.",
        "p_excess": "one-sided Fisher exact p that the codec's unmatched rate exceeds null_rate.",
        "alpha": "the level p_excess is compared with.",
        "test": "the test behind p_excess.",
        "excess": "yes: the codec loses significantly more objects than camera noise (not tolerable).",
        # globals table
        "global": "N_tot: number of objects in the image; A_tot: their total area (px).",
        "raw": "the value on the raw image.",
        "codec_value": "the value on the decoded image.",
        "σ_raw": "sd over the replicas (ddof 1): the spread camera noise alone gives.",
        "ε": "(raw − codec) / σ_raw.",
        # outside-band table
        "rank": "1 = worst: largest |ε| first, then the lost objects by decreasing area.",
        "object": "raw object id: the object column of objects.csv and the value in labels/00_raw.tif.",
        "codec_object": "the partner's id in the decoded image's segmentation (labels/NN_codec.tif; empty: none).",
        "status": "what the decoded segmentation made of the object: matched (a partner by the matching "
                  "rule), merged (no partner; the object covering half of it also covers half of a "
                  "neighbour), split (no partner; two or more objects lie mostly inside it), lost (none of "
                  "these); unmatched: no partner, and no label images to tell which.",
        "worst_parameter": "the parameter of largest |ε| for this object.",
        "eps": "ε of the worst parameter (empty for lost objects).",
        "sigma_raw": "σ_raw of the worst parameter: its sd over the replicas.",
        "sigma_used": "the σ that ε divides by: σ_raw, or the parameter's floor where σ_raw is below it.",
        "chi_raw": "the worst parameter measured on the raw image.",
        "chi_codec": "the worst parameter measured on the decoded image's partner object.",
        "n_parameters_outside": f"how many of the {len(PARAMETERS)} parameters have |ε| ≥ 1 for this object.",
        "n_replicas_matched": "replicas in which a partner of this raw object was found.",
        "match_rate": "n_replicas_matched / N replicas: below 1, the object itself is unstable under camera "
                      "noise, and its σ_raw rests on fewer replicas.",
        "area_raw": "the object's Area on the raw image (px).",
    }


def _volume_help() -> dict:
    """The legend texts that differ for a volume's tables."""
    others = [p for p in VOLUME_PARAMETERS if p != "Area"]
    return {
        "parameter": f"a parameter measured for volumes: Area (the object's volume in voxels) and {_and(others)} "
                     "(its centre of mass, pixels); the 2D shape parameters are not measured for volumes yet.",
        "global": "N_tot: number of objects in the volume (26-connected); A_tot: their total volume (voxels).",
        "n_parameters_outside": "how many of the parameters measured for volumes have |ε| ≥ 1 for this object.",
        "area_raw": "the object's Area on the raw volume: its volume in voxels.",
        "object": "raw object id: the object column of objects.csv and the value in the label volume "
                  "labels/00_raw.tif.",
    }


def _legend(columns, volume: bool = False) -> str:
    """A legend of ``columns`` (their keys) under a table; an unknown column says so rather than nothing.
    ``volume``: the texts of a volume's tables (voxels, measured parameters)."""
    help_ = _column_help()
    if volume:
        help_.update(_volume_help())
    items = []
    for k in dict.fromkeys(columns):
        text = help_.get(k, "a field recorded by this version of noisestat; see summary.json.")
        items.append(f"<dt>{_e(_COLUMN_TITLES.get(k, k))}</dt><dd>: {_e(text)}</dd>")
    return f'<dl class="legend">{"".join(items)}</dl>'


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _cell(value) -> str:
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float, np.number)) or v is None
                                                for v in value):
        return '<td class="n">[' + ", ".join(_e(_fmt(v, ".3g")) for v in value) + "]</td>"
    if isinstance(value, str):
        return f"<td>{_e(value)}</td>"
    if isinstance(value, dict):
        return "<td>" + _e(", ".join(f"{k}: {_fmt(v, '.3g')}" for k, v in value.items())) + "</td>"
    if isinstance(value, (float, np.floating)) and abs(float(value)) < 1e-3 and value != 0:
        return f'<td class="n">{_e(_fmt(value, ".2e"))}</td>'
    return f'<td class="n">{_e(_fmt(value, ".3g"))}</td>'


def _parameter_table(c, statistics: dict, parameters=PARAMETERS, volume: bool = False) -> str:
    """One row per parameter of ``parameters`` (the measured ones): the eps summaries, then whatever
    statistics the assessment carries."""
    summaries = getattr(c, "parameters", None) or {}
    family_of = _family_members()
    base = [k for k in _COLUMN_TITLES if any(k in (summaries.get(p) or {}) for p in parameters)]
    extra: list[str] = []
    for p in parameters:
        entry = statistics.get(p)
        if isinstance(entry, dict):
            extra += [k for k in entry if k not in extra and k not in base]
        elif entry is not None and "value" not in extra:
            extra.append("value")
    head = "".join(f"<th>{_e(_COLUMN_TITLES.get(k, k))}</th>" for k in base + extra)
    rows = []
    for p in parameters:
        s = summaries.get(p) or {}
        entry = statistics.get(p)
        entry = entry if isinstance(entry, dict) else ({"value": entry} if entry is not None else {})
        cells = []
        for k in base:
            v = s.get(k)
            bad = k == "mean_eps" and isinstance(v, (int, float)) and not abs(v) < 1
            cells.append(f'<td class="n{" bad" if bad else ""}">{_e(_fmt(v, ".3g"))}</td>')
        cells += [_cell(entry.get(k)) for k in extra]
        fam = f" <small>(family {_e(family_of[p])})</small>" if p in family_of else ""
        rows.append(f"<tr><td>{_e(p)}{fam}</td>{''.join(cells)}</tr>")
    return (f"<table><tr><th>parameter</th>{head}</tr>{''.join(rows)}</table>"
            + _legend(["parameter"] + base + extra, volume))


def _globals_table(c, volume: bool = False) -> str:
    scores = getattr(c, "global_scores", None) or {}
    if not scores:
        return ""
    keys = ["raw", "codec", "sigma_raw"]
    keys += [k for v in scores.values() if isinstance(v, dict) for k in v if k not in keys + ["eps"]]
    keys = list(dict.fromkeys(keys)) + ["eps"]
    titles = {"raw": "raw", "codec": "codec", "sigma_raw": "σ_raw", "eps": "ε"}
    legend_keys = {"codec": "codec_value", "sigma_raw": "σ_raw", "eps": "ε"}
    rows = "".join(f"<tr><td>{_e(name)}</td>" + "".join(_cell(v.get(k)) for k in keys)
                   + "</tr>" for name, v in scores.items() if isinstance(v, dict))
    head = "".join(f"<th>{_e(titles.get(k, _COLUMN_TITLES.get(k, k)))}</th>" for k in keys)
    return (f"<table><tr><th>global</th>{head}</tr>{rows}</table>"
            + _legend(["global"] + [legend_keys.get(k, k) for k in keys], volume))


def _matching_table(a) -> str:
    """One row per codec: the matching counts and, where the verdict records one, the loss test."""
    rows, keys = [], []
    for c in a.codecs:
        entry = {k: v for k, v in (getattr(c.objects, "matching", None) or {}).items()}
        loss = getattr(c, "loss", None)
        if isinstance(loss, dict):
            entry.update({k: v for k, v in loss.items() if k not in entry})
        keys += [k for k in entry if k not in keys]
        rows.append((c.spec, entry))
    if not keys:
        return ""
    head = "".join(f"<th>{_e(k)}</th>" for k in keys)
    body = "".join(f"<tr><td><code>{_e(spec)}</code></td>" + "".join(_cell(e.get(k)) for k in keys) + "</tr>"
                   for spec, e in rows)
    return ("<h3>Objects matched per codec</h3>"
            f"<table><tr><th>codec</th>{head}</tr>{body}</table>" + _legend(["codec"] + keys))


def _flatten(obj, prefix: str = "") -> list[tuple[str, object]]:
    if isinstance(obj, dict):
        out = []
        for k, v in obj.items():
            out += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(obj, (list, tuple)) and not any(isinstance(v, (dict, list, tuple)) for v in obj):
        return [(prefix, ", ".join(_fmt(v, "g") if not isinstance(v, str) else v for v in obj))]
    if isinstance(obj, (list, tuple)):
        out = []
        for i, v in enumerate(obj):
            out += _flatten(v, f"{prefix}[{i}]")
        return out
    return [(prefix, obj)]


def _kv_table(pairs, css: str = "prov") -> str:
    rows = "".join(f"<tr><td>{_e(k)}</td><td><code>{_e(_fmt(v, 'g') if not isinstance(v, str) else v)}</code></td></tr>"
                   for k, v in pairs)
    return f'<table class="{css}">{rows}</table>'


def _measured_only(obj, parameters):
    """``obj`` with every dict entry keyed by a parameter not in ``parameters`` left out, at any depth
    (a volume's summary carries NaN entries for the parameters it does not measure)."""
    if isinstance(obj, dict):
        return {k: _measured_only(v, parameters) for k, v in obj.items()
                if not (k in PARAMETERS and k not in parameters)}
    return obj


def _null_section(summary: dict, parameters=PARAMETERS) -> str:
    null = dict(_measured_only(summary.get("null_reference") or {}, parameters))
    simulated = null.pop("simulated", None)
    parts = ["<p>What ε looks like when the “codec” is a second, independent raw acquisition: the reference "
             "every codec is compared with.</p>", _kv_table(_flatten(null))]
    if isinstance(simulated, dict):
        params = simulated.get("parameters") or {}
        rest = {k: v for k, v in simulated.items() if k != "parameters"}
        parts.append("<h3>Simulated second acquisition</h3>" + _kv_table(_flatten(rest)))
        if params:
            keys: list[str] = []
            for entry in params.values():
                if isinstance(entry, dict):
                    keys += [k for k in entry if k not in keys]
            head = "".join(f"<th>{_e(_COLUMN_TITLES.get(k, k))}</th>" for k in keys)
            rows = "".join(f"<tr><td>{_e(p)}</td>" + "".join(_cell((entry or {}).get(k)) for k in keys) + "</tr>"
                           for p, entry in params.items())
            parts.append(f"<table><tr><th>parameter</th>{head}</tr>{rows}</table>" + _legend(["parameter"] + keys))
    return "".join(parts)


_OUTSIDE_SHOWN = 20
_OUTSIDE_TABLE = ("rank", "object", "codec_object", "status", "worst_parameter", "eps", "sigma_raw", "chi_raw",
                  "chi_codec", "n_parameters_outside", "match_rate", "area_raw")
# sigma_used joins the table when the pipeline floors sigma_raw (it then differs from sigma_raw).


def _outside_band_section(a, figures=()) -> str:
    """Per codec, the objects outside the noise band (worst first, the top ones) with a legend."""
    table = inspection.outside_band(a)
    n_rep = _n_replicas(a)
    volume = _is_volume(a)
    columns = list(_OUTSIDE_TABLE)
    if getattr(a, "sigma_floor", None) is not None:
        columns.insert(columns.index("sigma_raw") + 1, "sigma_used")
    parts = ['<h2 id="outside-band">Objects outside the noise band</h2>',
             f"<p>Raw objects with |ε| ≥ 1 for at least one parameter, worst first, then the objects the codec "
             f"lost although at least 2 of the {n_rep} replicas found them. The first {_OUTSIDE_SHOWN} per codec "
             "are shown; <code>outside_band.csv</code> lists all of them. Look them up in "
             "<code>labels/</code> (ids are the object and codec_object columns)"
             + "".join(f" and in Figure {k}" for k, f in enumerate(figures, 1) if f.name == "outside_band")
             + ".</p>"]
    for c in a.codecs:
        rows = table.get(c.spec, [])
        n_lost = sum(1 for r in rows if r["worst_parameter"] == "")
        parts.append(f"<h3><code>{_e(c.spec)}</code>: {len(rows) - n_lost} of {len(a.raw)} objects outside the "
                     f"band, {n_lost} lost</h3>")
        if not rows:
            parts.append("<p>None: every estimable ε of every object is inside the band.</p>")
            continue
        head = "".join(f"<th>{_e(_COLUMN_TITLES.get(k, k))}</th>" for k in columns)
        body = []
        for r in rows[:_OUTSIDE_SHOWN]:
            cells = []
            for k in columns:
                v = r[k]
                if k == "codec_object" and v == 0:
                    v = "–"
                elif k == "match_rate":
                    v = f"{r['n_replicas_matched']}/{n_rep}"
                elif k == "eps" and r["worst_parameter"] == "":
                    v = "–"
                if k == "status" and v != "matched":
                    cells.append(f'<td class="bad">{_e(v)}</td>')
                elif k in ("chi_raw", "chi_codec", "area_raw") and isinstance(v, float):
                    # Six digits: a centre moved by 0.06 px must not print as the same number twice.
                    cells.append(f'<td class="n">{_e(_fmt(v, ".6g"))}</td>')
                else:
                    cells.append(_cell(v))
            body.append("<tr>" + "".join(cells) + "</tr>")
        parts.append(f"<table><tr>{head}</tr>{''.join(body)}</table>")
        if len(rows) > _OUTSIDE_SHOWN:
            parts.append(f"<p>… and {len(rows) - _OUTSIDE_SHOWN} more in <code>outside_band.csv</code>.</p>")
        parts.append(_legend(columns, volume))
    return "".join(parts)


_SHOWN_REASONS = 4


def _reasons(reasons) -> str:
    """The first reasons as a list, the rest folded (``<details>`` needs no script) so a codec that fails
    on every parameter does not push the figures down by a screen."""
    reasons = [str(r) for r in reasons]
    if not reasons:
        return "–"
    items = "".join(f"<li>{_e(r)}</li>" for r in reasons[:_SHOWN_REASONS])
    text = f'<ul class="reasons">{items}</ul>'
    if len(reasons) > _SHOWN_REASONS:
        rest = "".join(f"<li>{_e(r)}</li>" for r in reasons[_SHOWN_REASONS:])
        text += (f"<details><summary>{len(reasons) - _SHOWN_REASONS} more</summary>"
                 f'<ul class="reasons">{rest}</ul></details>')
    return text


def report_html(assessment, figures: list[ReportFigure]) -> str:
    """The report page, with ``figures`` embedded.

    Parameters
    ----------
    assessment : noisestat.pipeline.Assessment
    figures : list of ReportFigure
        From :func:`render_figures`.

    Returns
    -------
    str
        A complete HTML document; every string from the assessment is escaped.
    """
    a = assessment
    # summary() divides sigma_model by sigma_raw, which is 0 for some objects: that is reported as
    # inf there, and must not turn into an error where warnings are errors.
    with np.errstate(divide="ignore", invalid="ignore"):
        s = a.summary()
    n_raw = s.get("n_objects_raw", len(a.raw))
    out = ['<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           "<title>noisestat report</title>", f"<style>{_CSS}</style></head><body>",
           "<h1>noisestat report: does compression change the measurements by more than camera noise?</h1>",
           f'<p class="sub">{_e(n_raw)} raw objects · {_e(s.get("replicas"))} replicas · seed {_e(s.get("seed"))} '
           f'· noisestat {_e(s.get("noisestat", ""))}</p>']
    volume = _is_volume(a)
    measured = _measured_parameters(a)
    if volume:
        out.append(f'<p class="rule" id="volume"><b>Volume.</b> {_e(_not_measured_note(a))} The figures show the '
                   "volume as its maximum-intensity projection along z; the tables list the measured parameters "
                   "only.</p>")
    warnings = [str(w) for w in s.get("warnings") or getattr(a, "warnings", ()) or ()]
    if warnings:
        out.append('<div class="warn" id="warnings"><b>Warnings: read these before the verdict.</b><ul>'
                   + "".join(f"<li>{_e(w)}</li>" for w in warnings) + "</ul></div>")

    out.append("<h2>Verdict per codec</h2><table><tr><th>codec</th><th>compression ratio</th>"
               "<th>raw objects matched</th><th>verdict</th><th>reasons</th></tr>")
    for c in a.codecs:
        matched = int(_matched(c).sum()) if len(a.raw) else 0
        ratio = _codec_ratio(c)
        badge = '<span class="ok">tolerable</span>' if c.tolerable else '<span class="no">NOT tolerable</span>'
        reasons = _reasons(c.reasons)
        out.append(f"<tr><td><code>{_e(c.spec)}</code></td><td class=\"n\">{_e(_fmt(ratio, '.1f'))}</td>"
                   f"<td class=\"n\">{matched} / {_e(n_raw)}</td><td>{badge}</td><td>{reasons}</td></tr>")
    out.append("</table>")
    out.append(_legend(["codec", "compression ratio", "raw objects matched", "verdict", "reasons"], volume))
    out.append(_matching_table(a))
    out.append(f'<p class="rule"><b>Verdict rule.</b> {_e(s.get("verdict_rule", getattr(a, "rule", "")))}</p>')

    out.append("<h2>Figures</h2>")
    for i, f in enumerate(figures, 1):
        data = base64.b64encode(f.png).decode("ascii")
        out.append(f'<figure id="{_e(f.name)}"><img src="data:image/png;base64,{data}" alt="{_e(f.title)}">'
                   f"<figcaption><b>Figure {i}. {_e(f.title)}.</b> {_e(f.caption)}</figcaption></figure>")

    out.append(_outside_band_section(a, figures))

    out.append("<h2>Scores per codec and parameter</h2>")
    for c in a.codecs:
        statistics = getattr(c, "statistics", None) or {}
        out.append(f"<h3><code>{_e(c.spec)}</code></h3>")
        out.append(_parameter_table(c, statistics if isinstance(statistics, dict) else {}, measured, volume))
        out.append(_globals_table(c, volume))

    out.append("<h2>Null reference</h2>" + _null_section(s, measured))
    model = s.get("sigma_model")
    if isinstance(model, dict):
        out.append("<h2>Classifier spread</h2>" + _kv_table(_flatten(model)))

    prov = dict(s.get("provenance") or {})
    # The summary's own headline fields first, then the pipeline's provenance as it recorded it.
    head = [("noisestat", s.get("noisestat", prov.get("noisestat"))), ("seed", s.get("seed")),
            ("replicas", s.get("replicas")), ("raw objects", n_raw)]
    out.append("<h2>Provenance</h2>" + _kv_table(head + [(k, v) for k, v in _flatten(prov) if k not in ("seed",)]))
    out.append("</body></html>\n")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------

def write_report(assessment, outdir: str | os.PathLike) -> list[Path]:
    """Write ``report.html`` and ``figures/*.png`` for an assessment.

    Parameters
    ----------
    assessment : noisestat.pipeline.Assessment
        The result of :func:`noisestat.assess`.
    outdir : path-like
        Folder to write into (created if missing). Each file is written to a temporary name and
        renamed into place, so a reader never sees half a file.

    Returns
    -------
    list of Path
        ``report.html`` first, then the PNG files in the order of :data:`FIGURE_NAMES`.

    Examples
    --------
    >>> import noisestat, tempfile
    >>> from noisestat.simulate import simulate_scene, acquire, sparse_labels
    >>> electrons, truth = simulate_scene((96, 96), rng=1)
    >>> camera = noisestat.CameraProfile(0.5, 100, 2, 16)
    >>> a = noisestat.assess(acquire(electrons, camera, 2), camera, ["lossless"],
    ...                      labels=sparse_labels(truth, rng=3), replicas=3)
    >>> [p.name for p in write_report(a, tempfile.mkdtemp())][:2]
    ['report.html', 'segmentation.png']
    """
    outdir = Path(outdir)
    figures_dir = outdir / "figures"
    figures_dir.mkdir(parents=True, exist_ok=True)
    figures = render_figures(assessment)
    paths = []
    for f in figures:
        path = figures_dir / f"{f.name}.png"
        with atomic_file(path) as handle:
            handle.write(f.png)
        paths.append(path)
    # The page last: once it exists, every figure it shows exists too.
    page = outdir / "report.html"
    write_text_atomic(page, report_html(assessment, figures))
    return [page] + paths
