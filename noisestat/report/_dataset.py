"""A dataset's ``report.html``: one self-contained page with the pooled verdict per codec, the per-field
table and one figure (per codec, each field's trimmed mean of eps per primary parameter, the pooled
interval and the margin band).
"""

from __future__ import annotations

import base64
import math

import numpy as np

from ._draw import _REFERENCE_COLOUR, _colour, _finish, _jitter, _new_figure, _render, _short, _text, _WIDTH_IN
from ._page import _CSS, _e

__all__ = ["dataset_figure", "dataset_report_html"]


def _f(v, fmt: str = ".3g") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, fmt) if isinstance(v, (int, float)) else str(v)


def dataset_figure(summary: dict):
    """The figure: one panel per codec; per primary parameter each field's trimmed mean of eps (dots), its
    simulated second acquisition's (grey dots), the pooled shift with its interval (bar) and the margin
    band (shaded). A drawing (:func:`noisestat.report._draw._render` makes its files)."""
    codecs, primary = summary["codecs"], summary["primary"]
    height = 1.2 + 1.6 * max(len(codecs), 1)
    fig = _new_figure(_WIDTH_IN, height)
    axes = fig.subplots(max(len(codecs), 1), 1, squeeze=False)[:, 0]
    x = np.arange(len(primary))
    for k, (ax, c) in enumerate(zip(axes, codecs)):
        margin = summary["settings"]["margins"]["shift"]
        ax.axhspan(-margin, margin, color="0.9", zorder=0)
        ax.axhline(0, color="0.6", lw=0.6, zorder=1)
        for j, p in enumerate(primary):
            values = [f["codecs"][c["spec"]]["shift"].get(p) for f in summary["fields"]]
            nulls = [f["null"]["shift"].get(p) for f in summary["fields"]]
            v = np.array([np.nan if a is None else a for a in values], float)
            n = np.array([np.nan if a is None else a for a in nulls], float)
            ax.scatter(j + 0.18 + _jitter(len(n), 2 * j) * 0.3, n, s=9, color=_REFERENCE_COLOUR, zorder=2)
            ax.scatter(j - 0.18 + _jitter(len(v), 2 * j + 1) * 0.3, v, s=11, color=_colour(k), zorder=3)
            for shift, offset, colour in ((c["pooled_shift"].get(p, {}), -0.18, _colour(k)),
                                          (c["null"]["pooled_shift"].get(p, {}), 0.18, _REFERENCE_COLOUR)):
                lo, hi = shift.get("interval", [None, None])
                est = shift.get("estimate")
                if est is not None and lo is not None and hi is not None and np.isfinite([est, lo, hi]).all():
                    ax.errorbar(j + offset, est, yerr=[[est - lo], [hi - est]], fmt="D", ms=4, color="black",
                                ecolor=colour, elinewidth=2.2, capsize=3, zorder=4)
        ax.set_xticks(x, [_text(p) for p in primary])
        ax.set_xlim(-0.6, len(primary) - 0.4)
        ax.set_ylabel("trimmed mean eps")
        ax.set_title(_text(f"{_short(c['spec'], 40)}: {c['outcome']} over {c['fields']} fields "
                           f"(second acquisitions: {c['null']['outcome']})"))
    caption = ("Per codec and primary parameter: each field's 20 % trimmed mean of eps (coloured dots, left) and "
               "its simulated second acquisition's (grey dots, right); the pooled shift over fields (diamond) with "
               "its interval (bar; random effects, modified Hartung-Knapp), and the margin band +-"
               f"{summary['settings']['margins']['shift']:g} sigma_raw (shaded). Tolerable needs every interval "
               "inside the band.")
    return _finish("dataset_shift", "Pooled shift per codec", caption, fig)


def dataset_report_html(summary: dict) -> str:
    """The page: the pooled verdict per codec (shift per primary parameter with interval and margin, the
    counts of fields tolerable beside the second acquisitions', the other pooled criteria), the figure, the
    per-field table."""
    figure = _render(dataset_figure(summary), vector=False)
    primary = summary["primary"]
    out = ["<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
           "<title>noisestat dataset report</title>", f"<style>{_CSS}</style></head><body>",
           "<h1>noisestat: a whole dataset</h1>",
           f"<p class=\"sub\">{_e(summary['dataset'])}: {len(summary['fields'])} fields, "
           f"{summary['settings']['replicas']} replicas each, seed {summary['seed']}, noisestat {_e(summary['noisestat'])}</p>",
           "<h2>Pooled verdict per codec</h2>",
           "<table><tr><th>codec</th><th>outcome</th><th>fields</th><th>fields tolerable (share's interval)</th>"
           "<th>fields not tolerable</th><th>second acquisitions tolerable</th><th>second acquisitions' outcome</th>"
           "</tr>"]
    for c in summary["codecs"]:
        fr = c["field_counts"]
        css = {"tolerable": "ok", "not tolerable": "no"}.get(c["outcome"], "")
        lo, hi = fr.get("interval", [None, None])
        out.append(f"<tr><td><code>{_e(c['spec'])}</code></td><td><span class=\"{css}\">{_e(c['outcome'])}</span></td>"
                   f"<td class=\"n\">{c['fields']}</td><td class=\"n\">{fr.get('tolerable_fields')} "
                   f"({_f(lo, '.2f')}-{_f(hi, '.2f')})</td><td class=\"n\">{fr.get('not_tolerable_fields')}</td>"
                   f"<td class=\"n\">{fr.get('null_tolerable_fields')}</td>"
                   f"<td>{_e(c['null']['outcome'])}</td></tr>")
    out.append("</table><p class=\"sub\">The counts of fields are reported, not tested: the outcome is that of "
               "the pooled criteria below.</p>")
    out.append("<h3>Pooled shift per primary parameter (sigma_raw)</h3><table><tr><th>codec</th>"
               + "".join(f"<th>{_e(p)}</th>" for p in primary) + "</tr>")
    for c in summary["codecs"]:
        cells = []
        for p in primary:
            s = c["pooled_shift"].get(p, {})
            lo, hi = s.get("interval", [None, None])
            cells.append(f"<td class=\"n\">{_f(s.get('estimate'), '+.2f')} [{_f(lo, '+.2f')}, {_f(hi, '+.2f')}] "
                         f"{_e(s.get('decision', ''))}</td>")
        out.append(f"<tr><td><code>{_e(c['spec'])}</code></td>{''.join(cells)}</tr>")
    out.append("</table>")
    others = [(c, o) for c in summary["codecs"] for o in c.get("pooled_criteria", [])]
    if others:
        out.append("<h3>The other pooled criteria</h3><table><tr><th>codec</th><th>criterion</th><th>pooled</th>"
                   "<th>interval</th><th>within when</th><th>decision</th></tr>")
        for c, o in others:
            lo, hi = o.get("interval", [None, None])
            when = (f"inside +-{_f(o.get('margin'), 'g')}" if o.get("sided") == "two" else
                    "above 0" if o.get("sided") == "above" else "below 0")
            name = o["parameter"] if o["criterion"] == "global" else o["criterion"]
            out.append(f"<tr><td><code>{_e(c['spec'])}</code></td><td>{_e(name)}</td>"
                       f"<td class=\"n\">{_f(o.get('estimate'), '+.3f')}</td>"
                       f"<td class=\"n\">[{_f(lo, '+.3f')}, {_f(hi, '+.3f')}]</td><td>{_e(when)}</td>"
                       f"<td>{_e(o.get('decision', ''))}</td></tr>")
        out.append("</table>")
    for c in summary["codecs"]:
        if c["reasons"]:
            out.append(f"<p><code>{_e(c['spec'])}</code>: " + "; ".join(_e(r) for r in c["reasons"]) + "</p>")
    out.append(f"<p class=\"sub\">{_e(summary['rule'])}</p>")
    data = base64.b64encode(figure.png).decode("ascii")
    out.append(f'<figure id="{_e(figure.name)}"><img src="data:image/png;base64,{data}" alt="{_e(figure.title)}">'
               f"<figcaption><b>Figure 1. {_e(figure.title)}.</b> {_e(figure.caption)}</figcaption></figure>")
    out.append("<h2>Fields</h2><table><tr><th>field</th><th>row</th><th>seed</th><th>objects</th>"
               + "".join(f"<th>{_e(c['spec'])}</th>" for c in summary["codecs"])
               + "<th>second acquisition (simulated)</th><th>report</th></tr>")
    for f in summary["fields"]:
        out.append(f"<tr><td>{_e(f['name'])}</td><td class=\"n\">{f['row']}</td><td class=\"n\">{f['seed']}</td>"
                   f"<td class=\"n\">{_f(f['n_objects_raw'])}</td>"
                   + "".join(f"<td>{_e(f['codecs'][c['spec']]['outcome'])}</td>" for c in summary["codecs"])
                   + f"<td>{_e(f['null']['outcome'])}</td>"
                   f"<td><a href=\"{_e(f['folder'])}/report.html\">{_e(f['folder'])}/</a></td></tr>")
    out.append("</table></body></html>\n")
    return "\n".join(out)
