"""Writing the report: ``report.html`` (:mod:`._page`) and the same figures as files under
``figures/`` (:mod:`._figures`), each as PNG (what the page shows), SVG and PDF (vector, for a
paper), each file written atomically, the page last.

The report's public names are importable from here as well as from :mod:`noisestat.report`.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..io._files import atomic_file, write_text_atomic
# The definitions the figures and legends read, under the names they have always had here.
from ..results import GLOBAL_PARAMETERS  # noqa: F401
from ._draw import ReportFigure
from ._figures import FIGURE_NAMES, figure_names, render_figures
from ._page import report_html
from ._reading import FAMILY, _null_theory  # noqa: F401

__all__ = ["write_report", "render_figures", "figure_names", "report_html", "ReportFigure", "FIGURE_NAMES", "FAMILY"]

_FORMATS = ("png", "svg", "pdf")


def write_report(assessment, outdir: str | os.PathLike) -> list[Path]:
    """Write ``report.html`` and ``figures/*.png``, ``*.svg`` and ``*.pdf`` for an assessment.

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
        ``report.html`` first, then the PNG files in the order of :func:`figure_names`
        (:data:`FIGURE_NAMES` for an image), then the SVG files and the PDF files in that order.

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
    for fmt in _FORMATS:
        for f in figures:
            path = figures_dir / f"{f.name}.{fmt}"
            with atomic_file(path) as handle:
                handle.write(getattr(f, fmt))
            paths.append(path)
    # The page last: once it exists, every figure it shows exists too.
    page = outdir / "report.html"
    write_text_atomic(page, report_html(assessment, figures))
    return [page] + paths
