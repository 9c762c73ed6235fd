"""Operator-level eps in the output folder: ``operators.csv`` (one row per domain, operator, scale and
codec, the columns of :data:`noisestat.score.OPERATOR_COLUMNS`) and the figure ``operators``
(PNG, SVG, PDF), like Fig. 4f of Pomarico et al. 2022: per operator and scale, each codec's fraction
of pixels with |eps| < 1 beside a simulated second acquisition's.

The scores come from :func:`noisestat.score.operator_scores`; nothing here computes a statistic.
The CSV writer needs no matplotlib; the figure imports it when drawn.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

from ..errors import OutputError
from ..io import atomic_file, write_text_atomic
from ..score._operators import OPERATOR_COLUMNS, OPERATORS, OperatorScore

__all__ = ["operators_csv", "write_operators_csv", "operators_figure", "write_operators_figure",
           "OPERATORS_CSV", "OPERATORS_FIGURE"]

OPERATORS_CSV = "operators.csv"
OPERATORS_FIGURE = "operators"   # the figure's file stem: operators.png, .svg, .pdf

_NULL_LABEL = "second acquisition (replica pair)"
_TITLES = {"gaussian_smoothing": "Gaussian smoothing", "laplacian_of_gaussian": "Laplacian of Gaussian",
           "gradient_magnitude": "gradient magnitude", "difference_of_gaussians": "difference of Gaussians"}


def _fmt(value) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


def _check(scores) -> list:
    scores = list(scores)
    wrong = [type(s).__name__ for s in scores if not isinstance(s, OperatorScore)]
    if wrong:
        raise OutputError(f"operators.csv holds OperatorScore rows (noisestat.score.operator_scores); got {wrong[0]}")
    return scores


def operators_csv(scores) -> str:
    """The text of ``operators.csv``: a header of :data:`~noisestat.score.OPERATOR_COLUMNS`, then one
    row per score in the order given (NaN written as an empty cell).

    Examples
    --------
    >>> from noisestat.report import operators_csv
    >>> from noisestat.score import OperatorScore
    >>> s = OperatorScore("image", "gaussian_smoothing", 1.0, "lossless", 0.0, 0.0, 1.0, 0.52, 4096, 0)
    >>> print(operators_csv([s]), end="")
    domain,operator,sigma,codec,mean_eps,sd_eps,frac_abs_eps_lt_1,null_frac_abs_eps_lt_1
    image,gaussian_smoothing,1.0,lossless,0.0,0.0,1.0,0.52
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(OPERATOR_COLUMNS)
    for s in _check(scores):
        writer.writerow([_fmt(v) for v in s.row().values()])
    return out.getvalue()


def write_operators_csv(scores, path: str | os.PathLike) -> Path:
    """Write :func:`operators_csv` to ``path`` (a file, or a folder to hold ``operators.csv``)
    atomically: a previous file there is replaced only once the new one is complete."""
    path = Path(path)
    if path.is_dir():
        path = path / OPERATORS_CSV
    write_text_atomic(path, operators_csv(scores))
    return path


def _groups(scores) -> tuple[list, dict]:
    """The domains in order of appearance, and per domain the operators, scales and codecs in order."""
    domains, seen = [], {}
    for s in scores:
        if s.domain not in seen:
            domains.append(s.domain)
            seen[s.domain] = ([], [], [])
        ops, sigmas, codecs = seen[s.domain]
        for value, kept in ((s.operator, ops), (s.sigma, sigmas), (s.codec, codecs)):
            if value not in kept:
                kept.append(value)
    for ops, sigmas, _ in seen.values():
        ops.sort(key=lambda o: OPERATORS.index(o) if o in OPERATORS else len(OPERATORS))
        sigmas.sort()
    return domains, seen


def operators_figure(scores, *, vector: bool = True):
    """The figure of operator-level eps as a :class:`~noisestat.report.ReportFigure` (PNG, and SVG
    and PDF unless ``vector`` is False): one panel per domain and operator, the scales along x, for
    each scale a bar per codec of its fraction of pixels with |eps| < 1 and the null's (a simulated
    second acquisition) as a grey bar on the left; a codec that changes nothing reaches 1, the
    camera's own noise about 0.52."""
    from ._draw import (_REFERENCE_COLOUR, _WIDTH_IN, _colour, _finish, _new_figure, _no_data, _render, _short,
                        _text)

    scores = _check(scores)
    domains, groups = _groups(scores)
    by_key = {(s.domain, s.operator, s.sigma, s.codec): s for s in scores}
    ncols = max((len(groups[d][0]) for d in domains), default=1)
    nrows = max(len(domains), 1)
    fig = _new_figure(_WIDTH_IN, 0.6 + 2.0 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False, sharey=True)
    if not scores:
        _no_data(axes[0][0], "no operator scores")
    codecs_all = []
    for d in domains:
        for c in groups[d][2]:
            if c not in codecs_all:
                codecs_all.append(c)
    for row, d in enumerate(domains):
        ops, sigmas, codecs = groups[d]
        width = 0.8 / (len(codecs) + 1)
        for col in range(ncols):
            ax = axes[row][col]
            if col >= len(ops):
                ax.set_axis_off()
                continue
            op = ops[col]
            for i, sigma in enumerate(sigmas):
                first = next((by_key[d, op, sigma, c] for c in codecs if (d, op, sigma, c) in by_key), None)
                null = first.null_frac_abs_eps_lt_1 if first is not None else math.nan
                x0 = i - 0.4 + width / 2
                ax.bar(x0, null, width, color=_REFERENCE_COLOUR)
                for k, c in enumerate(codecs):
                    s = by_key.get((d, op, sigma, c))
                    value = s.frac_abs_eps_lt_1 if s is not None else math.nan
                    ax.bar(x0 + (k + 1) * width, value, width, color=_colour(codecs_all.index(c)))
            ax.axhline(1.0, color="0.6", linewidth=0.6, linestyle=":")
            ax.set_xticks(range(len(sigmas)), [f"{s:g}" for s in sigmas])
            ax.set_ylim(0, 1.05)
            ax.set_title(_text(_TITLES.get(op, op) if nrows == 1 else f"{d}: {_TITLES.get(op, op)}"))
            ax.set_xlabel("σ (px)")
            if col == 0:
                ax.set_ylabel("fraction |ε| < 1")
    if scores:
        from matplotlib.patches import Patch

        handles = [Patch(color=_REFERENCE_COLOUR, label=_NULL_LABEL)]
        handles += [Patch(color=_colour(k), label=_text(_short(c))) for k, c in enumerate(codecs_all)]
        fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4), fontsize=7.5,
                   frameon=False)
    excluded = sorted({(s.domain, s.operator, s.sigma, s.excluded_pixels) for s in scores if s.excluded_pixels})
    caption = ("Operator-level eps: for each image filter and scale, the fraction of pixels where the filter's "
               "response to the decoded image differs from its response to the raw image by less than its "
               "standard deviation over the replicas (|eps| < 1), beside the same fraction for a simulated second "
               "acquisition (grey). A codec that changes nothing reaches 1; the camera's own noise about 0.52.")
    if excluded:
        most = max(e[3] for e in excluded)
        caption += (f" Pixels whose filter response is the same in every replica (saturated, constant) are left "
                    f"out: up to {most} per filter and scale.")
    drawing = _finish(OPERATORS_FIGURE, "Operator-level eps", caption, fig)
    return _render(drawing, vector=vector)


def write_operators_figure(scores, folder: str | os.PathLike) -> list[Path]:
    """Write the figure of :func:`operators_figure` as ``operators.png``, ``.svg`` and ``.pdf`` in
    ``folder``, each file atomically; returns their paths."""
    folder = Path(folder)
    figure = operators_figure(scores)
    paths = []
    for ext in ("png", "svg", "pdf"):
        path = folder / f"{figure.name}.{ext}"
        with atomic_file(path) as handle:
            handle.write(getattr(figure, ext))
        paths.append(path)
    return paths
