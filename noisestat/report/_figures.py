"""The report's figures, after Pomarico et al. (2022), in the order the page shows them
(:data:`FIGURE_NAMES`; each is written as ``figures/<name>.png``):

``segmentation.png``
    The raw image in grey with the outlines of the raw segmentation, giant objects and 1-3 px
    specks marked, beside the histogram of object areas (what :mod:`noisestat.report` warns on).
``area_difference.png``
    Single-object area difference of each codec (chi_c - chi_raw) beside that between simulated second
    acquisitions (one replica of a pair against the other) (Fig. 2c).
``globals.png``
    N_tot and A_tot normalised to raw, with sigma_raw / raw error bars (Fig. 2d).
``eps_per_parameter.png``
    Mean and sd of eps per parameter and codec, the +-1 band and the null of a second raw
    acquisition (Fig. 2e).
``objects_eps.png``
    The raw image with every raw object coloured by |eps| of its Area, one panel per codec.
``outside_band.png``
    Per codec, the raw objects outside the noise band (|eps| >= 1 for some parameter) and those left
    without a partner, over the decoded image's own outlines, the worst numbered as in their table.
``ratio_distortion.png``
    Compression ratio against distortion (median |eps|, fraction outside the band).

A volume (a 3D image, ``(z, rows, cols)``) has its own list (:func:`figure_names`): the area
difference gives way to the figures of :mod:`noisestat.report._volumes` (Fig. 3 and Table 2),
drawn from the assessment: ``orthogonal_views`` (xy, xz and yz slices of the raw volume at its
physical aspect with the raw segmentation's outlines), ``volume_difference`` (histograms of the
single-object volume difference in voxels of the simulated second acquisitions and of each codec)
and one ``volume_scatter_NN`` per codec (voxel count in raw against that in the decoded volume);
the globals figure shows N_tot, V_tot and SA_tot. The other figures that show the image show the
maximum-intensity projection along z of the image and of the label volumes (each line along z
shows its largest object id), and every caption of such a figure says so; only the parameters
measured for volumes (:data:`~noisestat.measure.VOLUME_PARAMETERS`) enter the figures of eps.
Each figure says in its caption what it had to leave out of an assessment that lacks a field.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import LogLocator, MaxNLocator, NullFormatter

from ..measure._morphometry import PARAMETERS
from ..score._tests import FAMILIES
from . import _legends as legends
from ._draw import (Drawing, ReportFigure, _FONT_PT, _MIN_FONT_PT, _PLAIN, _REFERENCE_COLOUR, _TITLE_PT, _WIDTH_IN, _colour,
                    _finish, _jitter, _new_figure, _no_data, _render, _short, _text)
from ._inspection import _is_volume, _measured_parameters
from ._overlays import _figure_objects, _figure_outside_band, _figure_segmentation
from ._reading import (_global_names, _size_index, _codec_ratio, _finite, _fmt, _fraction_outside, _mean_sd, _median_abs, _n_replicas,
                       _null_theory, _optional_array, _size_unit)

__all__ = ["render_figures", "figure_names", "FIGURE_NAMES"]

FIGURE_NAMES = ("segmentation", "area_difference", "globals", "eps_per_parameter", "objects_eps", "outside_band",
                "ratio_distortion")
"""File stems of an image's figures, in the order the page shows them (a volume's: :func:`figure_names`)."""


_SECOND = "second acquisition (simulated)"


def _figure_area_difference(a) -> Drawing:
    size = _size_index(a)
    raw_area = np.asarray(a.raw.values, dtype=float)[:, size] if len(a.raw) else np.empty(0)
    replica_values = _optional_array(a, "replica_values")
    series, notes = [], []
    if replica_values is not None and len(replica_values) >= 2 and replica_values.size:
        # like with like: a codec's area minus the raw one is a second image against the first; so is one
        # replica of a disjoint pair against the other (a simulated second acquisition). Replica minus raw
        # is not: replicas are drawn around the raw image, which biases that difference.
        half = len(replica_values) // 2
        pairs = replica_values[1:2 * half:2, :, size] - replica_values[0:2 * half:2, :, size]
        series.append((_SECOND, pairs, _REFERENCE_COLOUR))
    elif replica_values is None:
        notes.append("the replicas' single-object values are not in this assessment, so only the codecs are shown")
    for i, c in enumerate(a.codecs):
        codec_area = np.asarray(c.objects.values, dtype=float)[:, size] if len(a.raw) else np.empty(0)
        series.append((c.spec, codec_area - raw_area, _colour(i)))

    unit = _size_unit(a)
    # One row per series, its name and mean ± sd as the row's label: horizontal text never collides.
    fig = _new_figure(_WIDTH_IN, 1.5 + 0.45 * max(len(series), 1))
    ax = fig.add_subplot()
    diffs = [_finite(d) for _, d, _ in series]
    reference = _finite(series[0][1]) if series and series[0][0] == _SECOND else np.empty(0)
    ref_sd = float(reference.std(ddof=1)) if len(reference) > 1 else 1.0
    labels = []
    for k, ((label, _, colour), d) in enumerate(zip(series, diffs)):
        mean, sd, n = _mean_sd(d)
        if n:
            ax.scatter(d, k + _jitter(n, k), s=8, color=colour, alpha=0.55, linewidths=0)
            ax.boxplot([d], positions=[k], widths=0.5, showfliers=False, manage_ticks=False,
                       orientation="horizontal", medianprops={"color": colour}, boxprops={"color": "0.4"},
                       whiskerprops={"color": "0.4"}, capprops={"color": "0.4"})
            ax.errorbar([mean], [k + 0.34], xerr=[0 if math.isnan(sd) else sd], fmt="D", color="black",
                        markersize=4, capsize=2)
        else:
            ax.text(0, k, "no matched object", ha="center", va="center", fontsize=_FONT_PT, color="0.3")
        name = label if label == _SECOND else _short(label, 30)
        labels.append(_text(f"{name}\n{_fmt(mean, '+.2f')} ± {_fmt(sd)} {unit}, n = {n}"))
    ax.axvline(0, color="0.5", linewidth=0.8, zorder=0)
    ax.set_yticks(range(len(series)), labels)
    ax.set_ylim(len(series) - 0.4, -0.6)
    all_d = np.concatenate(diffs) if diffs else np.empty(0)
    scale = "linear"
    if len(all_d) and np.abs(all_d).max() > 40 * max(ref_sd, 1.0):
        # A codec that moves areas by hundreds of pixels would flatten the replicas to a line.
        ax.set_xscale("symlog", linthresh=max(ref_sd, 1.0))
        ax.xaxis.set_major_formatter(_PLAIN)
        scale = "symmetric-log"
    ax.set_xlabel(f"Area in the second image − Area in the first ({unit})"
                  + (", symmetric log scale" if scale != "linear" else ""))
    ax.set_title("Single-object volume difference: decoded − raw, and between simulated acquisitions" if _is_volume(a)
                 else "Single-object area difference: decoded − raw, and between simulated acquisitions")
    fig.legend(handles=[Line2D([], [], marker="o", linestyle="", color="0.5", label="one object"),
                        Line2D([], [], color="0.4", label="box: quartiles and median"),
                        Line2D([], [], marker="D", linestyle="", color="black", label="mean ± sd")],
               loc="outside lower center", ncols=3, frameon=False, fontsize=_FONT_PT)
    if not len(a.raw):
        _no_data(ax, "the raw image has no objects")
    caption = legends.area_difference(a, scale, notes)
    title = "Single-object volume difference" if _is_volume(a) else "Single-object area difference"
    return _finish("area_difference", title, caption, fig)


def _figure_globals(a) -> Drawing:
    raw = np.asarray(a.raw_objects.globals, dtype=float)
    names = _global_names(a)
    replicas = np.asarray(a.replica_globals, dtype=float).reshape(-1, len(names))
    fig = _globals_drawing(names, raw, replicas, [c.spec for c in a.codecs],
                           [np.asarray(c.objects.globals, dtype=float) for c in a.codecs])
    caption = legends.globals_relative(a)
    return _finish("globals", "Global parameters relative to raw", caption, fig)


def _globals_drawing(names, raw, replicas, codec_specs, codec_values) -> Figure:
    """The globals figure from plain arrays (Fig. 2d, and Fig. 3f for a volume's globals).

    One panel per name in ``names`` (three to a row), each value divided by its ``raw`` value: the
    ``replicas`` (array ``(n_replicas, len(names))``, grey points and their mean ± sd), each codec
    (``codec_specs[i]`` with ``codec_values[i]``, one value per name; NaN is not drawn) with error bars
    ±σ_raw / raw, and the grey band 1 ± σ_raw / raw, σ_raw the sd over the replicas (ddof 1). A
    panel whose raw value is not positive says so instead.
    """
    names = list(names)
    n_globals = len(names)
    raw = np.asarray(raw, dtype=float).reshape(n_globals)
    replicas = np.asarray(replicas, dtype=float).reshape(-1, n_globals)
    sigma = replicas.std(axis=0, ddof=1) if len(replicas) > 1 else np.full(n_globals, np.nan)
    labels = ["replicas"] + [_short(spec, 30) for spec in codec_specs]
    ncols = min(n_globals, 3)
    nrows = math.ceil(n_globals / ncols)
    fig = _new_figure(_WIDTH_IN, (1.6 + 0.3 * len(labels)) * nrows)
    grid = np.atleast_1d(fig.subplots(nrows, ncols, sharey=True, squeeze=False)).ravel()
    for ax in grid[n_globals:]:
        ax.remove()
    axes = grid[:n_globals]
    handles = {}
    for j, (ax, name) in enumerate(zip(axes, names)):
        ax.set_title(_text(f"{name} / {name} of raw"))
        ax.set_yticks(range(len(labels)), [_text(s) for s in labels])
        ax.set_ylim(len(labels) - 0.4, -0.6)
        # Three panels to a row leave no room for the label on one line.
        ax.set_xlabel(_text(f"{name} relative to raw" + ("\n" if ncols > 2 else " ") + "(ratio, 1 = raw)"))
        if not raw[j] > 0:
            _no_data(ax, f"{name} of the raw image is 0:\nno ratio to show" if raw[j] == 0 else
                     f"{name} of the raw image is not given:\nno ratio to show")
            continue
        rel_sigma = sigma[j] / raw[j]
        if math.isfinite(rel_sigma):
            handles["band"] = ax.axvspan(1 - rel_sigma, 1 + rel_sigma, color="0.88", zorder=0,
                                         label="1 ± σ_raw / raw")
        ax.axvline(1.0, color="0.5", linewidth=0.8, zorder=0)
        rep = replicas[:, j] / raw[j]
        ax.scatter(rep, _jitter(len(rep), 100 + j), s=10, color=_REFERENCE_COLOUR, alpha=0.5, linewidths=0)
        mean, sd, n_rep = _mean_sd(rep)
        if n_rep:
            handles["replicas"] = ax.errorbar([mean], [0.3], xerr=[0 if math.isnan(sd) else sd], fmt="s",
                                              color="black", capsize=2, markersize=4, label="replicas: mean ± sd")
        for i, values in enumerate(codec_values):
            value = float(np.asarray(values, dtype=float).reshape(n_globals)[j]) / raw[j]
            if not math.isfinite(value):
                continue
            ax.errorbar([value], [i + 1], xerr=[0 if not math.isfinite(rel_sigma) else rel_sigma], fmt="o",
                        color=_colour(i), capsize=3, markersize=5)
        # Few ticks: ratios such as 0.9995 are long, and the panels are narrow.
        ax.xaxis.set_major_locator(MaxNLocator(4))
    if handles:
        fig.legend(handles=list(handles.values()), loc="outside lower center", ncols=2, frameon=False, fontsize=_FONT_PT)
    return fig


def _parameter_order(parameters=PARAMETERS) -> list[str]:
    """``parameters`` with each family's members moved right after the parameter it is tested through,
    so one bracket marks the family."""
    order = list(parameters)
    for rep, members in FAMILIES.values():
        if rep not in order:
            continue
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


def _family_names(spans) -> list[tuple[float, float, str]]:
    """(left, right, name of the family in FAMILIES) of each bracketed span."""
    names = {members: name for name, (_, members) in FAMILIES.items()}
    return [(lo, hi, names[tuple(members)]) for lo, hi, members in spans]


def _figure_eps(a) -> Drawing:
    measured = _measured_parameters(a)
    order = _parameter_order(measured)
    columns = [measured.index(p) for p in order]
    n_rep = _n_replicas(a)
    theory = _null_theory(n_rep)
    null_eps = _optional_array(a, "null_eps")
    sigma_model = _optional_array(a, "sigma_model")
    show_model = sigma_model is not None and sigma_model.shape == np.asarray(a.sigma_raw).shape
    fig = _new_figure(_WIDTH_IN, 6.4 if show_model else 4.6)
    if show_model:
        ax, ax_model = fig.subplots(2, 1, sharex=True, height_ratios=[2.3, 1])
    else:
        ax, ax_model = fig.add_subplot(), None

    series = []  # (label, colour, means, sds, n_infinite)
    simulated_null = null_eps is not None and null_eps.ndim == 2
    if simulated_null:
        stats_ = [_mean_sd(null_eps[:, j]) for j in columns]
        series.append(("second raw acquisition (simulated)", _REFERENCE_COLOUR, [s[0] for s in stats_],
                       [s[1] for s in stats_], [int(np.isinf(null_eps[:, j]).sum()) for j in columns]))
    else:
        sd = theory["sd"]
        series.append((f"second raw acquisition (theory, ε ~ {theory['label']})", _REFERENCE_COLOUR,
                       [0.0] * len(order), [sd if math.isfinite(sd) else math.nan] * len(order), [0] * len(order)))
    for i, c in enumerate(a.codecs):
        eps = np.asarray(c.eps, dtype=float).reshape(-1, len(measured))
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
            ax.errorbar(xs[ok], m[ok], yerr=s[ok], fmt="o", color=colour, markersize=3, capsize=1.5,
                        elinewidth=0.8, label=_text(label))
            top = max(top, float(np.max(np.abs(m[ok]) + s[ok])))
        else:
            ax.plot([], [], "o", color=colour, label=_text(label + " (no finite ε)"))
    if top > 12:
        # Band and null stay readable next to a codec whose eps reaches tens of sigma.
        ax.set_yscale("symlog", linthresh=2.0)
        ax.yaxis.set_major_formatter(_PLAIN)
        ax.set_ylabel("ε = (χ_raw − χ_codec) / σ_raw\n(units of σ_raw, symmetric log scale)")
    else:
        ax.set_ylabel("ε = (χ_raw − χ_codec) / σ_raw\n(units of σ_raw)")
    y_top = top * (1.6 if top > 12 else 1.15)
    ax.set_ylim(-y_top, y_top)
    any_inf = False
    for k, (_, colour, _, _, n_inf) in enumerate(series):
        xs = x - 0.4 + width * (k + 0.5)
        hit = np.array(n_inf) > 0
        if hit.any():
            any_inf = True
            ax.plot(xs[hit], np.full(hit.sum(), y_top), "^", color=colour, markersize=5, clip_on=False)
    if any_inf:
        ax.plot([], [], "^", color="0.3", label="some ε = ±∞ (σ_raw = 0), left out of mean/sd")
    for lo, hi, name in _family_names(spans):
        # The family's name only: its members are the ticks under the bracket, the caption says the rest.
        ax.annotate("", xy=(lo, 1.025), xytext=(hi, 1.025), xycoords=("data", "axes fraction"),
                    arrowprops={"arrowstyle": "|-|", "color": "#b8860b", "linewidth": 1.0}, annotation_clip=False)
        # Above the bracket's end marks; at the edges aligned inwards, so it stays on the figure.
        ha = "right" if hi > len(order) - 1.5 else "left" if lo < 0.5 else "center"
        ax.annotate(f"family {name}", xy=({"left": lo, "right": hi}.get(ha, (lo + hi) / 2), 1.025),
                    xycoords=("data", "axes fraction"), xytext=(0, 5), textcoords="offset points", ha=ha,
                    va="bottom", fontsize=_MIN_FONT_PT, color="#8b6508", annotation_clip=False)
    ax.set_xlim(-0.6, len(order) - 0.4)
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", ncols=2, frameon=False, fontsize=_FONT_PT)
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
        ax_model.set_ylabel("median σ_model / σ_raw\n(ratio)")
        ax_model.set_title("Spread when the forest is retrained with other seeds, relative to σ_raw")
        target = ax_model
    else:
        target = ax
    target.set_xticks(x, order, rotation=45, ha="right", rotation_mode="anchor")
    caption = legends.eps_per_parameter(a, simulated_null, theory, [m for _, _, m in spans], any_inf, show_model)
    return _finish("eps_per_parameter", "ε per parameter", caption, fig)


def _figure_ratio(a) -> Drawing:
    theory = _null_theory(_n_replicas(a))
    null_eps = _optional_array(a, "null_eps")
    if null_eps is not None and np.asarray(null_eps).size:
        null_median, null_out, null_kind = _median_abs(null_eps), _fraction_outside(null_eps), "simulated"
    else:
        null_median, null_out, null_kind = theory["median_abs"], theory["frac_outside"], "theory"
    fig = _new_figure(_WIDTH_IN, 3.4 + 0.2 * math.ceil(len(a.codecs) / 2))
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
    metrics = (("median |ε| over objects and parameters\n(units of σ_raw)", 1, null_median),
               ("(object, parameter) pairs with |ε| ≥ 1\n(fraction)", 2, null_out))
    for ax, (ylabel, k, null_value) in zip(axes, metrics):
        ax.set_xlabel("compression ratio (raw bytes / compressed bytes)")
        ax.set_ylabel(ylabel)
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
            ax.scatter([p[0]], [p[k]], s=36, color=_colour(p[3]), marker="o" if tolerable else "X", zorder=3)
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
            ax.axhline(null_value, color=_REFERENCE_COLOUR, linestyle="--", linewidth=1)
    if points:
        # One legend below both panels, none over the points: the codecs by colour (names beside the
        # points ran into one another), the markers and the line.
        handles = [Line2D([], [], marker="s", linestyle="", color=_colour(p[3]), label=_text(_short(p[4].spec, 40)))
                   for p in points]
        handles += [Line2D([], [], marker="o", linestyle="", color="0.3", label="tolerable"),
                    Line2D([], [], marker="X", linestyle="", color="0.3", label="not tolerable")]
        if math.isfinite(null_median) or math.isfinite(null_out):
            handles.append(Line2D([], [], color=_REFERENCE_COLOUR, linestyle="--",
                                  label=f"second raw acquisition ({null_kind})"))
        fig.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False, fontsize=_FONT_PT)
    fig.suptitle("Compression ratio against distortion", fontsize=_TITLE_PT)
    caption = legends.ratio_distortion(a, null_kind, without, undefined)
    return _finish("ratio_distortion", "Compression ratio against distortion", caption, fig)


_DRAWERS = (_figure_segmentation, _figure_area_difference, _figure_globals, _figure_eps, _figure_objects,
            _figure_outside_band, _figure_ratio)
"""The figure functions, in the order of :data:`FIGURE_NAMES`; each returns a :class:`Drawing`."""


def _plan(a) -> list[tuple[str, object]]:
    """(file stem, function of the assessment drawing it) of each figure, in the page's order."""
    if not _is_volume(a):
        return list(zip(FIGURE_NAMES, _DRAWERS))
    # Imported here: the volume figures draw their globals with this module's drawing.
    from . import _volumes

    scatters = [(f"volume_scatter_{i + 1:02d}", lambda a, i=i: _volumes._report_scatter(a, i))
                for i in range(len(a.codecs))]
    return [("segmentation", _figure_segmentation), ("orthogonal_views", _volumes._report_orthogonal_views),
            ("volume_difference", _volumes._report_difference), *scatters, ("globals", _figure_globals),
            ("eps_per_parameter", _figure_eps), ("objects_eps", _figure_objects),
            ("outside_band", _figure_outside_band), ("ratio_distortion", _figure_ratio)]


def figure_names(assessment) -> tuple[str, ...]:
    """The file stems of an assessment's figures, in the order the page shows them.

    An image's are :data:`FIGURE_NAMES`. A volume's replace the area difference by the volume's own
    figures (Fig. 3 and Table 2 of Pomarico et al. 2022): ``segmentation``, ``orthogonal_views``
    (xy, xz and yz slices of the raw volume with the raw segmentation), ``volume_difference``
    (histograms of the single-object volume difference of the replica pairs and of each codec),
    ``volume_scatter_NN`` (volume in raw against volume in the decoded volume, one per codec, NN its
    number as in ``labels/``: 01 the first), then ``globals`` (N_tot, V_tot and SA_tot),
    ``eps_per_parameter``, ``objects_eps``, ``outside_band`` and ``ratio_distortion``.

    Parameters
    ----------
    assessment : noisestat.pipeline.Assessment

    Returns
    -------
    tuple of str
        The names :func:`render_figures` gives its figures, in its order.
    """
    return tuple(name for name, _ in _plan(assessment))


def render_figures(assessment, *, vector: bool = True) -> list[ReportFigure]:
    """Draw the report figures.

    Parameters
    ----------
    assessment : noisestat.pipeline.Assessment
    vector : bool
        Also save each figure as SVG and PDF (``ReportFigure.svg``, ``.pdf``); False leaves them empty
        (the page needs only the PNG).

    Returns
    -------
    list of ReportFigure
        In the order of :func:`figure_names`: :data:`FIGURE_NAMES` for an image.
    """
    # One figure drawn, saved and let go at a time: the overlays of a large image are large.
    return [_render(draw(assessment), vector=vector) for _, draw in _plan(assessment)]

