"""Matplotlib helpers of the report's figures: the figure and its files (PNG, SVG, PDF), text safe
for matplotlib, colours, and the raw image and label image as the figures draw them.

Figures are drawn on :class:`matplotlib.figure.Figure` with the Agg canvas, never through
pyplot, and the same assessment always gives the same bytes. They are sized for print: at most
:data:`_WIDTH_IN` inches wide (a two-column page's full width) with no text under
:data:`_MIN_FONT_PT` points, so they can go into a paper as they are; the PNG is rendered at
:data:`_DPI` dots per inch for the page. The SVG keeps its text as text (editable, searchable) and
the PDF embeds its fonts as TrueType: matplotlib's SVG and PDF writers read that from three
``rcParams``, set only while a figure is saved and under a lock (:func:`_save`); nothing else
of matplotlib's global state is touched.
"""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from typing import NamedTuple

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from ._reading import _optional_array, _project

_DPI = 150
_WIDTH_IN = 7.2
_MIN_FONT_PT = 7.0
_FONT_PT = 8.0
_LABEL_PT = 8.5
_TITLE_PT = 9.0
_EPS_CLIP = 3.0
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
        The PNG file (what the page embeds).
    svg : bytes
        The same figure as SVG, its text as text (empty when not rendered).
    pdf : bytes
        The same figure as PDF, fonts embedded (empty when not rendered).
    """

    name: str
    title: str
    caption: str
    png: bytes
    svg: bytes = b""
    pdf: bytes = b""


class Drawing(NamedTuple):
    """A drawn figure before it is saved: what each figure function returns."""

    name: str
    title: str
    caption: str
    figure: Figure


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


# No date and no software stamp: the bytes then depend on the drawing (and matplotlib's version) only.
_METADATA = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None},
             "pdf": {"CreationDate": None, "Creator": None, "Producer": None}}
# Text as text in SVG, TrueType fonts in PDF, and fixed element ids in SVG (else random per run).
_VECTOR_RC = {"svg.fonttype": "none", "svg.hashsalt": "noisestat", "pdf.fonttype": 42}
_RC_LOCK = threading.Lock()


def _save(fig: Figure, fmt: str) -> bytes:
    """``fig`` as a ``fmt`` file ("png", "svg" or "pdf"), the same bytes for the same drawing."""
    buffer = io.BytesIO()
    if fmt == "png":
        fig.savefig(buffer, format="png", dpi=_DPI, metadata=_METADATA["png"], facecolor="white")
    else:
        with _RC_LOCK, matplotlib.rc_context(_VECTOR_RC):
            fig.savefig(buffer, format=fmt, dpi=_DPI, metadata=_METADATA[fmt], facecolor="white")
    return buffer.getvalue()


def _finish(name: str, title: str, caption: str, fig: Figure) -> Drawing:
    """The drawing of a figure with its text at print sizes: tick labels at :data:`_FONT_PT`, axis
    labels at :data:`_LABEL_PT`, axes titles at :data:`_TITLE_PT` (legends and figure titles are made
    at their size)."""
    for ax in fig.axes:
        ax.tick_params(which="both", labelsize=_FONT_PT)
        ax.xaxis.label.set_fontsize(_LABEL_PT)
        ax.yaxis.label.set_fontsize(_LABEL_PT)
        ax.title.set_fontsize(_TITLE_PT)
    return Drawing(name, title, caption, fig)


def _render(drawing: Drawing, vector: bool = True) -> ReportFigure:
    """The files of a drawn figure; ``vector=False`` leaves out SVG and PDF."""
    fig = drawing.figure
    return ReportFigure(drawing.name, drawing.title, drawing.caption, _save(fig, "png"),
                        _save(fig, "svg") if vector else b"", _save(fig, "pdf") if vector else b"")


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
    ax.text(0.5, 0.5, _text(message), transform=ax.transAxes, ha="center", va="center", fontsize=_LABEL_PT,
            color="0.3", wrap=True)


def _jitter(n: int, seed: int) -> np.ndarray:
    # A fixed seed per series: the strip plot is the same every time the report is built.
    return np.random.default_rng(seed).uniform(-0.22, 0.22, n)


def _cmap():
    from matplotlib import colormaps

    return colormaps["viridis"]


def _grey(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, dtype=float)
    lo, hi = np.percentile(image, [0.5, 99.5])
    if not hi > lo:
        hi = lo + 1.0
    return np.clip((image - lo) / (hi - lo), 0, 1)


_OUTLINE_COLOUR = (1.0, 0.85, 0.0)
_GIANT_COLOUR = (0.95, 0.15, 0.15)
_SPECK_COLOUR = (1.0, 0.0, 1.0)
_CODEC_OUTLINE_COLOUR = (0.0, 0.9, 1.0)
_OUTSIDE_COLOUR = (1.0, 0.55, 0.0)
_FAR_OUTSIDE_COLOUR = (0.9, 0.0, 0.0)
_NO_PARTNER_COLOUR = (1.0, 0.0, 1.0)
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


