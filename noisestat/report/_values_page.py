"""A value predictor's report (:func:`noisestat.assess_values`): ``report.html``, one self-contained
page as the objects' report is (CSS inline, figures embedded as PNG, nothing fetched), and its
figures under ``figures/`` as PNG, SVG and PDF.

The figures: the raw image's prediction beside sigma_raw (``00_raw``); per codec, numbered as the
maps are (``01_<codec>``, ...), the codec's prediction, the difference raw - codec and the eps map on
a diverging scale with fixed symmetric limits (|eps| <= :data:`EPS_LIMIT`, beyond drawn at the
limit), so that codecs compare at a glance; and the per-pixel summary per codec beside the null's
(``eps_summary``). A volume is shown by its middle plane along z. The page adds the verdict per
codec and the metrics against a target where the assessment carries them, the per-pixel table of
``pixels.csv`` with the null's row, warnings and the provenance.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

import numpy as np

from ..io._files import atomic_file, write_text_atomic
from ._html import _FORMATS
from ._draw import (_EPS_CLIP, _REFERENCE_COLOUR, _WIDTH_IN, Drawing, ReportFigure, _colour, _display, _finish,
                    _new_figure, _render, _short, _text)
from ._page import _CSS, _breakable_headers, _cell, _e, _flatten, _kv_table, _reasons
from ._reading import _fmt
from ._tables import _safe_name
from ._values import PIXELS_COLUMNS

__all__ = ["EPS_LIMIT", "value_figure_names", "render_value_figures", "value_report_html", "write_value_report"]

# The eps maps' colour scale: -EPS_LIMIT to +EPS_LIMIT for every codec (beyond: the end colours).
EPS_LIMIT = _EPS_CLIP

_PIXEL_HELP = {
    "codec": "the codec spec; the last row is a simulated second acquisition of the raw image (the null).",
    "compression_ratio": "raw bytes / compressed bytes.",
    "pixels": "pixels scored.",
    "frac_abs_eps_lt_1": "share of pixels whose value moved by less than one sigma_raw (|ε| < 1).",
    "null_frac_abs_eps_lt_1": "the same share for simulated second acquisitions (pooled over the null pair and "
                              "disjoint replica pairs): what camera noise alone gives.",
    "median_abs_eps": "median |ε| over pixels.",
    "q95_abs_eps": "95th percentile of |ε|.",
    "q99_abs_eps": "99th percentile of |ε|.",
    "max_abs_eps": "largest |ε| (+∞ where the value changed and no replica moved it).",
    "mean_eps": "mean ε over pixels with a finite ε: a systematic shift of the values (ε = (raw − codec) / σ_raw).",
    "n_infinite": "pixels with an infinite ε (sigma_raw 0 and its floor 0, the value changed).",
    "beyond_null_q99": "share of pixels with |ε| beyond the null's 99th percentile; 0.01 for a second acquisition.",
}


def _plane(m) -> np.ndarray:
    """A 2D map as drawn: itself, or a volume's middle plane along z (decimated as the objects' figures)."""
    m = np.asarray(m)
    return _display(m if m.ndim == 2 else m[m.shape[0] // 2])


def _plane_note(a) -> str:
    shape = np.shape(a.raw_values)
    if len(shape) == 2:
        return ""
    return (f" This is a volume (z × rows × columns = {' × '.join(str(int(v)) for v in shape)}): the maps show its "
            f"middle plane z = {shape[0] // 2}; maps/ holds the whole volumes.")


def _limits(m, symmetric: bool = False) -> tuple[float, float]:
    """Colour limits: the 0.5th and 99.5th percentiles of the finite values (symmetric: +- the 99.5th of
    |m|), never an empty range."""
    m = np.asarray(m, dtype=np.float64)
    m = m[np.isfinite(m)]
    if not m.size:
        return (-1.0, 1.0) if symmetric else (0.0, 1.0)
    if symmetric:
        hi = float(np.percentile(np.abs(m), 99.5))
        hi = hi if hi > 0 else 1.0
        return -hi, hi
    lo, hi = (float(v) for v in np.percentile(m, [0.5, 99.5]))
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def _panels(n: int, rows: int, cols: int):
    fig = _new_figure(_WIDTH_IN, max(2.2, min(_WIDTH_IN / n * rows / max(cols, 1) + 0.8, 6.0)))
    return fig, fig.subplots(1, n, squeeze=False)[0]


def _map(fig, ax, m, title: str, cmap: str, limits, label: str, extend: str = "neither") -> None:
    image = ax.imshow(m, cmap=cmap, vmin=limits[0], vmax=limits[1], interpolation="nearest")
    ax.set_title(_text(title))
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(image, ax=ax, shrink=0.85, extend=extend).set_label(_text(label))


def _raw_figure(a) -> Drawing:
    raw, sigma = _plane(a.raw_values), _plane(a.sigma_raw)
    fig, (left, right) = _panels(2, *raw.shape)
    _map(fig, left, raw, "raw image's prediction", "viridis", _limits(raw), "value")
    _map(fig, right, sigma, "σ_raw", "magma", (0.0, max(_limits(sigma)[1], 0.0) or 1.0), "value",
         extend="max")
    caption = (f"Left: the predictor's value per pixel on the raw image. Right: sigma_raw, the spread of that value "
               f"over the {a.n_replicas} Monte-Carlo replicas of the raw image (its camera noise); the scores use "
               f"max(sigma_raw, {a.sigma_floor:.3g}), the floor of the predictor's resolution."
               + _plane_note(a))
    return _finish("00_raw", "The raw prediction and its noise", caption, fig)


def _codec_figure(a, k: int, c, diff_limits) -> Drawing:
    raw = _plane(a.raw_values)
    fig, (left, mid, right) = _panels(3, *raw.shape)
    _map(fig, left, _plane(c.values), "codec's prediction", "viridis", _limits(raw), "value")
    difference = _plane(a.raw_values).astype(np.float64) - _plane(c.values)
    _map(fig, mid, difference, "raw − codec", "PuOr_r", diff_limits, "value difference")
    eps = np.clip(np.nan_to_num(_plane(c.eps), nan=0.0), -EPS_LIMIT, EPS_LIMIT)
    _map(fig, right, eps, "ε = (raw − codec) / σ_raw", "RdBu_r", (-EPS_LIMIT, EPS_LIMIT), "ε", extend="both")
    caption = (f"{c.spec}: the predictor's value on the decoded image (the colours of the raw prediction), the "
               f"difference raw − codec (one symmetric scale for every codec) and eps, the difference in units of "
               f"sigma_raw, on a fixed scale of ±{EPS_LIMIT:g} (white: inside the camera noise; beyond "
               f"±{EPS_LIMIT:g} drawn at the end colours). maps/{k:02d}_{_safe_name(c.spec)}_eps.tif holds eps itself."
               + _plane_note(a))
    return _finish(f"{k:02d}_{_safe_name(c.spec)}", f"{_short(c.spec, 60)}: prediction, difference and ε", caption,
                   fig)


def _summary_figure(a) -> Drawing:
    fig = _new_figure(_WIDTH_IN, 2.6)
    left, right = fig.subplots(1, 2)
    names = [_text(_short(c.spec, 22)) for c in a.codecs]
    x = np.arange(len(a.codecs))
    inside = [c.summary.get("frac_abs_eps_lt_1", np.nan) for c in a.codecs]
    beyond = [c.summary.get("beyond_null_q99", np.nan) for c in a.codecs]
    colours = [_colour(i) for i in range(len(a.codecs))]
    left.bar(x, inside, color=colours)
    left.axhline(a.null["frac_abs_eps_lt_1"], color=_REFERENCE_COLOUR, linestyle="--", label="second acquisition")
    left.set_ylim(0, 1.02)
    left.set_ylabel("share of pixels with |ε| < 1")
    right.bar(x, beyond, color=colours)
    right.axhline(0.01, color=_REFERENCE_COLOUR, linestyle="--", label="second acquisition")
    right.set_ylim(0, max(0.02, 1.15 * float(np.nanmax(beyond, initial=0.0))))
    right.set_ylabel("share beyond null q99 |ε|")
    for ax in (left, right):
        ax.set_xticks(x, names, rotation=30, ha="right")
        ax.legend(fontsize=7, loc="best")
    caption = ("Per codec, the share of pixels whose value moved by less than one sigma_raw (left) and the share "
               "beyond the 99th percentile of a simulated second acquisition's |eps| (right); the dashed lines are "
               "what a second acquisition of the raw image gives. Descriptive: neighbouring pixels share the "
               "predictor's neighbourhood, so these shares are not counts of independent pixels.")
    return _finish("eps_summary", "Per-pixel ε per codec against a second acquisition", caption, fig)


def value_figure_names(a) -> list[str]:
    """The figures' file stems, in the page's order."""
    return (["00_raw"] + [f"{k:02d}_{_safe_name(c.spec)}" for k, c in enumerate(a.codecs, 1)]
            + (["eps_summary"] if a.codecs else []))


def render_value_figures(a, *, vector: bool = True) -> list[ReportFigure]:
    """Draw a value assessment's figures (in the order of :func:`value_figure_names`)."""
    diffs = [np.abs(_plane(a.raw_values).astype(np.float64) - _plane(c.values)) for c in a.codecs]
    top = max((float(np.percentile(d, 99.5)) for d in diffs if d.size), default=0.0)
    diff_limits = (-top, top) if top > 0 else (-1.0, 1.0)
    figures = [_render(_raw_figure(a), vector=vector)]
    figures += [_render(_codec_figure(a, k, c, diff_limits), vector=vector) for k, c in enumerate(a.codecs, 1)]
    if a.codecs:
        figures.append(_render(_summary_figure(a), vector=vector))
    return figures


def _legend(columns, help_: dict) -> str:
    items = "".join(f"<dt>{_e(k)}</dt><dd>: {_e(help_.get(k, 'see summary.json.'))}</dd>" for k in columns)
    return f'<dl class="legend">{items}</dl>'


def _badge(outcome) -> str:
    return ('<span class="ok">tolerable</span>' if outcome == "tolerable" else
            '<span class="no">NOT tolerable</span>' if outcome == "not tolerable" else
            '<span class="undecided">inconclusive</span>')


def _verdict_section(a) -> str:
    judged = [c for c in a.codecs if getattr(c, "verdict", None) is not None]
    if not judged:
        note = a.summary().get("verdict_note", "")
        return f'<h2>Verdict per codec</h2><p class="rule" id="no-verdict"><b>No verdict.</b> {_e(note)}</p>'
    rows = []
    for c in a.codecs:
        verdict = getattr(c, "verdict", None)
        regions = (getattr(c, "quantities", None) or {}).get("regions") or {}
        rows.append(f"<tr><td><code>{_e(c.spec)}</code></td><td class=\"n\">{_e(_fmt(c.compression_ratio, '.1f'))}"
                    f"</td><td class=\"n\">{_e(_fmt(regions.get('n'), 'g'))}</td>"
                    f"<td>{_badge(getattr(verdict, 'outcome', None))}</td>"
                    f"<td>{_reasons(getattr(verdict, 'reasons', ()) or ())}</td></tr>")
    null = (getattr(a, "judged", None) or {}).get("null_verdict")
    if isinstance(null, dict):  # the same rule on a simulated second acquisition: what noise alone is called
        rows.append(f"<tr><td>second acquisition (simulated)</td><td class=\"n\">–</td><td class=\"n\">–</td>"
                    f"<td>{_badge(null.get('outcome'))}</td><td>{_reasons(null.get('reasons') or ())}</td></tr>")
    first = judged[0].verdict
    out = ['<h2 id="verdict">Verdict per codec</h2><table><tr><th>codec</th><th>compression ratio</th>'
           "<th>regions</th><th>verdict</th><th>reasons</th></tr>", *rows, "</table>"]
    if getattr(first, "admitted", ""):
        out.append(f'<p class="rule" id="admitted"><b>What the verdict admits.</b> Tolerable means that every '
                   f"criterion was shown within its margin: {_e(first.admitted)}.</p>")
    if getattr(first, "rule", ""):
        out.append(f'<p class="rule"><b>Verdict rule.</b> {_e(first.rule)}</p>')
    judged_on = [(k, v if len(str(v)) <= _SHOWN_CHARS else str(v)[:_SHOWN_CHARS] + " … (summary.json)")
                 for k, v in _flatten({k: v for k, v in (getattr(a, "judged", None) or {}).items()
                                       if k not in ("rule", "null_verdict")})]
    if judged_on:
        out.append("<h3>What was judged</h3>" + _kv_table(judged_on))
    return "".join(out)


_SHOWN_CHARS = 300  # a longer value (a list per region) is cut on the page; summary.json has it whole


def _quantity_tables(a, key: str, title: str, anchor: str) -> str:
    """Per codec, one row per quantity of ``quantities[key]`` (the image-level quantities, the metrics)."""
    parts = []
    for c in a.codecs:
        entries = (getattr(c, "quantities", None) or {}).get(key) or {}
        if not entries:
            continue
        keys = list(dict.fromkeys(k for v in entries.values() if isinstance(v, dict) for k in v))
        head = "".join(f"<th>{_e(k)}</th>" for k in keys)
        body = "".join(f"<tr><td>{_e(name)}</td>" + "".join(_cell(v.get(k)) for k in keys) + "</tr>"
                       for name, v in entries.items() if isinstance(v, dict))
        parts.append(f"<h3><code>{_e(c.spec)}</code></h3><table><tr><th>{_e(key[:-1])}</th>{head}</tr>{body}</table>")
    return f'<h2 id="{anchor}">{_e(title)}</h2>' + "".join(parts) if parts else ""


def _pixels_section(a) -> str:
    null = a.null.get("null_pair") or {}
    rows = [{"codec": c.spec, "compression_ratio": c.compression_ratio,
             "null_frac_abs_eps_lt_1": a.null["frac_abs_eps_lt_1"], **c.summary} for c in a.codecs]
    rows.append({**null, "codec": "second acquisition (simulated null pair)", "compression_ratio": None,
                 "null_frac_abs_eps_lt_1": a.null["frac_abs_eps_lt_1"]})
    head = "".join(f"<th>{_e(k)}</th>" for k in PIXELS_COLUMNS)
    body = []
    for r in rows:
        cells = [f"<td><code>{_e(r['codec'])}</code></td>"]
        cells += [_cell(r.get(k)) for k in PIXELS_COLUMNS[1:]]
        body.append("<tr>" + "".join(cells) + "</tr>")
    return ('<h2 id="pixels">Per-pixel ε per codec</h2><p>The table of <code>pixels.csv</code>, the null\'s row '
            "beneath: descriptive, with no verdict pixel by pixel (neighbouring pixels share the predictor's "
            f"neighbourhood).</p><table><tr>{head}</tr>{''.join(body)}</table>"
            + _legend(PIXELS_COLUMNS, _PIXEL_HELP))


def value_report_html(a, figures: list[ReportFigure]) -> str:
    """The report page of a :class:`~noisestat.results.ValueAssessment`, ``figures`` embedded (from
    :func:`render_value_figures`); every string from the assessment is escaped."""
    s = a.summary()
    predictor = a.provenance.get("predictor", "the predictor")
    out = ['<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           "<title>noisestat report</title>", f"<style>{_CSS}</style></head><body>",
           "<h1>noisestat report: does compression change the predictor's values by more than camera noise?</h1>",
           f'<p class="sub">{_e(predictor)}: a value per pixel · {_e(s["pixels"])} pixels · {_e(s["replicas"])} '
           f'replicas · seed {_e(s["seed"])} · noisestat {_e(s["noisestat"])}</p>']
    if a.warnings:
        out.append('<div class="warn" id="warnings"><b>Warnings: read these first.</b><ul>'
                   + "".join(f"<li>{_e(w)}</li>" for w in a.warnings) + "</ul></div>")
    out.append(_verdict_section(a))
    out.append(_quantity_tables(a, "metrics", "Metrics against the target", "metrics"))
    out.append(_quantity_tables(a, "globals", "Image-level quantities", "globals"))
    out.append(_pixels_section(a))
    out.append("<h2>Figures</h2>")
    for i, f in enumerate(figures, 1):
        data = base64.b64encode(f.png).decode("ascii")
        out.append(f'<figure id="{_e(f.name)}"><img src="data:image/png;base64,{data}" alt="{_e(f.title)}">'
                   f"<figcaption><b>Figure {i}. {_e(f.title)}.</b> {_e(f.caption)}</figcaption></figure>")
    out.append('<h2 id="null">Null reference</h2><p>What ε looks like when the “codec” is a second, independent raw '
               "acquisition: the reference every codec is compared with.</p>" + _kv_table(_flatten(a.null)))
    prov = dict(s.get("provenance") or {})
    head = [("noisestat", s["noisestat"]), ("seed", s["seed"]), ("replicas", s["replicas"]),
            ("pixels", s["pixels"]), ("sigma floor", a.sigma_floor)]
    out.append('<h2 id="provenance">Provenance</h2>'
               + _kv_table(head + [(k, v) for k, v in _flatten(prov) if k != "seed"]))
    out.append("</body></html>\n")
    return _breakable_headers("\n".join(out))


def write_value_report(a, outdir: str | os.PathLike) -> list[Path]:
    """Write ``report.html`` and ``figures/`` (each figure as PNG, SVG and PDF) for a value assessment,
    each file atomically, the page last. Returns the page, then the PNG, SVG and PDF files."""
    outdir = Path(outdir)
    figures_dir = outdir / "figures"
    figures_dir.mkdir(parents=True, exist_ok=True)
    figures = render_value_figures(a)
    paths = []
    for fmt in _FORMATS:
        for f in figures:
            path = figures_dir / f"{f.name}.{fmt}"
            with atomic_file(path) as handle:
                handle.write(getattr(f, fmt))
            paths.append(path)
    page = outdir / "report.html"
    write_text_atomic(page, value_report_html(a, figures))
    return [page] + paths
