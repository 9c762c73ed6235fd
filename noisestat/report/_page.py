"""The report page: ``report.html`` as one self-contained document (CSS inline, figures embedded as
base64 PNG, no script and nothing fetched from anywhere, so it can be mailed or archived as it is).

Under the figures, the page lists the objects outside the band per codec (the top 20; all of them
are in ``outside_band.csv``), and explains every column of every table in a legend beneath it. A
volume's page also says how each codec coded it (as a volume or plane by plane) and gives the
single-object volume differences' numbers (Table 2) under their figure.
"""

from __future__ import annotations

import base64
import html
import re

import numpy as np

from ..measure._morphometry import PARAMETERS
from . import _inspection as inspection
from ._draw import ReportFigure
from ._inspection import _is_volume, _measured_parameters
from ._legends import _COLUMN_TITLES, _coded_note, _coded_text, _column_help, _not_measured_note, _volume_help
from ._reading import _codec_ratio, _family_members, _fmt, _matched, _n_replicas
from ._volumes import volume_difference_table, volume_differences

__all__ = ["report_html"]

_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0 auto;max-width:1180px;
padding:18px 24px;color:#1d1d1f;background:#fff;line-height:1.4}
h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:3px}
h3{font-size:15px;margin:18px 0 6px}
.sub{color:#555;margin:0 0 14px}
table{border-collapse:collapse;font-size:13px;margin:6px 0 12px;display:block;max-width:100%;overflow-x:auto}
th,td{border:1px solid #d5d5d5;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f2f2f4}td.n{text-align:right;font-variant-numeric:tabular-nums}
td.bad{color:#b00020;font-weight:600}
code{font-family:Menlo,Consolas,monospace;font-size:12px;word-break:break-all}
.ok{background:#1b7f3b;color:#fff;border-radius:4px;padding:1px 8px;font-weight:600;white-space:nowrap}
.no{background:#b00020;color:#fff;border-radius:4px;padding:1px 8px;font-weight:600;white-space:nowrap}
.undecided{background:#8a6d00;color:#fff;border-radius:4px;padding:1px 8px;font-weight:600;white-space:nowrap}
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
    """``obj`` with every dict entry keyed by a 2D parameter not in ``parameters`` left out, at any depth."""
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
             f"<p>Raw objects with |ε| ≥ 1 for at least one parameter, worst first, then the objects left without "
             f"a partner in the decoded image (lost, split or merged: the status column says which) although at "
             f"least 2 of the {n_rep} replicas found them. The first {_OUTSIDE_SHOWN} per codec "
             "are shown; <code>outside_band.csv</code> lists all of them. Look them up in "
             "<code>labels/</code> (ids are the object and codec_object columns)"
             + "".join(f" and in Figure {k}" for k, f in enumerate(figures, 1) if f.name == "outside_band")
             + ".</p>"]
    for c in a.codecs:
        rows = table.get(c.spec, [])
        n_apart = sum(1 for r in rows if r["worst_parameter"] == "")
        parts.append(f"<h3><code>{_e(c.spec)}</code>: {len(rows) - n_apart} of {len(a.raw)} objects outside the "
                     f"band, {n_apart} without a partner</h3>")
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


_DIFFERENCE_COLUMNS = ("source", "objects", "mean (voxels)", "sd (voxels)")


def _volume_difference_section(a) -> str:
    """Table 2: per source (the simulated second acquisitions, each codec) the number, mean and sd of
    the single-object volume differences of the volume-difference figure."""
    rows = volume_difference_table(volume_differences(a))
    head = "".join(f"<th>{_e(k)}</th>" for k in _DIFFERENCE_COLUMNS)
    body = "".join(f"<tr><td><code>{_e(source)}</code></td><td class=\"n\">{n}</td>"
                   f"<td class=\"n\">{_e(_fmt(mean, '+.3f'))}</td><td class=\"n\">{_e(_fmt(sd, '.3f'))}</td></tr>"
                   for source, n, mean, sd in rows)
    return ('<h3 id="volume-difference-table">Single-object volume difference (voxels)</h3>'
            f"<table><tr>{head}</tr>{body}</table>" + _legend(_DIFFERENCE_COLUMNS, volume=True))


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
        out.append(f'<p class="rule" id="volume"><b>Volume.</b> {_e(_not_measured_note(a))} The orthogonal views '
                   "show three slices through the raw volume; the figures of the segmentation and of the objects "
                   "show the volume as its maximum-intensity projection along z. "
                   f"{_e(_coded_note(a))}</p>")
    if s.get("sample"):
        # a --sample run: the globals are the sampled tiles' extrapolation; their sampling error beside sigma_raw
        sample, names = s["sample"], list(a.global_names)
        rows = "".join(f"<tr><td>{_e(g)}</td>{_cell(s['raw'][g].get('value'))}{_cell(s['raw'][g].get('sampling_se'))}"
                       f"{_cell(s['raw'][g].get('sigma_raw'))}</tr>" for g in names if g in s["raw"])
        out.append(f'<p class="rule" id="sample"><b>Sampled.</b> {_e(sample["n_sampled"])} of {_e(sample["n_tiles"])} '
                   f'tiles of {_e(sample["tile"])} px (fraction {_e(sample["fraction"])}, seed {_e(sample["seed"])}) were '
                   "assessed, objects wholly inside them; the globals are whole-image estimates with their sampling "
                   "error (standard error over the tiles), shown beside sigma_raw. A codec's eps compares it with raw "
                   "on the same tiles, so the sampling error is not part of eps.</p>"
                   f'<table id="sample-globals"><tr><th>global</th><th>raw estimate</th><th>sampling SE</th>'
                   f"<th>σ_raw</th></tr>{rows}</table>")
    warnings = [str(w) for w in s.get("warnings") or getattr(a, "warnings", ()) or ()]
    if warnings:
        out.append('<div class="warn" id="warnings"><b>Warnings: read these before the verdict.</b><ul>'
                   + "".join(f"<li>{_e(w)}</li>" for w in warnings) + "</ul></div>")

    withheld = next((c.withheld for c in a.codecs if getattr(c, "withheld", None)), None)
    if withheld:
        out.append(f'<h2>Verdict per codec</h2><p class="warn" id="no-verdict"><b>No verdict.</b> {_e(withheld)}. '
                   "The measurements below describe a segmentation that should not be judged.</p>")
    else:
        out.append("<h2>Verdict per codec</h2><table><tr><th>codec</th><th>compression ratio</th>"
                   + ("<th>coded</th>" if volume else "")
                   + "<th>raw objects matched</th><th>verdict</th><th>reasons</th></tr>")
    for c in ([] if withheld else a.codecs):
        matched = int(_matched(c).sum()) if len(a.raw) else 0
        ratio = _codec_ratio(c)
        badge = ('<span class="ok">tolerable</span>' if c.outcome == "tolerable" else
                 '<span class="no">NOT tolerable</span>' if c.outcome == "not tolerable" else
                 '<span class="undecided">inconclusive</span>')
        reasons = _reasons(c.reasons)
        coded = f"<td>{_e(_coded_text(c))}</td>" if volume else ""
        out.append(f"<tr><td><code>{_e(c.spec)}</code></td><td class=\"n\">{_e(_fmt(ratio, '.1f'))}</td>{coded}"
                   f"<td class=\"n\">{matched} / {_e(n_raw)}</td><td>{badge}</td><td>{reasons}</td></tr>")
    if not withheld:
        out.append("</table>")
        out.append(_legend(["codec", "compression ratio", *(["coded"] if volume else []), "raw objects matched",
                            "verdict", "reasons"], volume))
        admitted = (s.get("verdict") or {}).get("admitted")
        if admitted:
            out.append(f'<p class="rule" id="admitted"><b>What the verdict admits.</b> Tolerable means that every '
                       f"criterion was shown within its margin: {_e(admitted)}. Not tolerable means that one was "
                       "shown beyond it; inconclusive, neither (the reasons say how many objects would decide).</p>")
    out.append(_matching_table(a))
    out.append(f'<p class="rule"><b>Verdict rule.</b> {_e(s.get("verdict_rule", getattr(a, "rule", "")))}</p>')

    out.append("<h2>Figures</h2>")
    for i, f in enumerate(figures, 1):
        data = base64.b64encode(f.png).decode("ascii")
        out.append(f'<figure id="{_e(f.name)}"><img src="data:image/png;base64,{data}" alt="{_e(f.title)}">'
                   f"<figcaption><b>Figure {i}. {_e(f.title)}.</b> {_e(f.caption)}</figcaption></figure>")
        if volume and f.name == "volume_difference":
            out.append(_volume_difference_section(a))

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
    return _breakable_headers("\n".join(out))


_HEADER = re.compile(r"<th>(.*?)</th>", re.S)


def _breakable_headers(page: str) -> str:
    """Column titles that may break after an underscore (``<wbr>``), so that ``unmatched_reference``
    need not set a column's width. (User strings are escaped: every ``<th>`` is the page's own.)

    A table wider than the page scrolls sideways inside its own box (the CSS makes each table a
    block of at most the page's width, ``overflow-x:auto``); the page itself never does."""
    return _HEADER.sub(lambda m: "<th>" + m.group(1).replace("_", "_<wbr>") + "</th>", page)


