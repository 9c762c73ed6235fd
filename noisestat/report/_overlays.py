"""The report's figures drawn over the raw image: the raw segmentation, the objects coloured by
|eps| of their Area, and the objects outside the noise band per codec."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.patches import Ellipse, Patch
from matplotlib.ticker import MaxNLocator

from ..measure._morphometry import PARAMETERS
from . import _inspection as inspection
from . import _legends as legends
from ._draw import (Drawing, _CODEC_OUTLINE_COLOUR, _EPS_CLIP, _FAR_OUTSIDE_COLOUR, _FONT_PT, _GIANT_COLOUR,
                    _MIN_FONT_PT, _NO_PARTNER_COLOUR, _NOT_ESTIMABLE_COLOUR, _NUMBERED, _OUTLINE_COLOUR,
                    _OUTSIDE_COLOUR, _PLAIN, _SPECK_COLOUR, _UNMATCHED_COLOUR, _WIDTH_IN, _cmap, _display, _finish,
                    _new_figure, _no_data, _overlay_size, _pixels, _short, _show, _text)
from ._inspection import _is_volume
from ._reading import _centres_px, _matched, _project, _size_index, _size_unit

def _object_colours(a, c) -> np.ndarray:
    """RGB per raw object: |eps| of Area on the clipped colour scale, or the unmatched / not-estimable colour."""
    cmap = _cmap()
    eps = np.asarray(c.eps, dtype=float).reshape(-1, len(a.raw.names))[:, _size_index(a)]
    matched = _matched(c)
    rgb = np.array(cmap(np.clip(np.nan_to_num(np.abs(eps), nan=0.0, posinf=_EPS_CLIP), 0, _EPS_CLIP)
                        / _EPS_CLIP))[:, :3]
    rgb[np.isnan(eps)] = _NOT_ESTIMABLE_COLOUR
    rgb[~matched] = _UNMATCHED_COLOUR
    return rgb


def _figure_objects(a) -> Drawing:
    from skimage.segmentation import find_boundaries

    pixels = _pixels(a)
    have_pixels = pixels is not None
    volume = _is_volume(a)
    # Without Major (a volume's objects), an object is drawn as the disc of its equal-volume ball.
    extent = (2 * np.cbrt(3 * np.asarray(a.raw.column("Voxels"), dtype=float) / (4 * math.pi)) if volume and len(a.raw)
              else None)
    centre_x, centre_y = _centres_px(a)
    if have_pixels:
        grey, labels = pixels
        rows, cols = labels.shape
    else:
        shape = (a.provenance or {}).get("image_shape") if hasattr(a, "provenance") else None
        if shape and len(shape) in (2, 3):
            rows, cols = int(shape[-2]), int(shape[-1])
        elif len(a.raw):
            size = extent if volume else a.raw.column("Major")
            rows = int(np.nanmax(centre_y + size)) + 1
            cols = int(np.nanmax(centre_x + size)) + 1
        else:
            rows = cols = 64
    n = len(a.codecs)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    # Panels share the print width with the colour bar (about 0.9 inch).
    panel = (_WIDTH_IN - 0.9) / ncols
    aspect = rows / max(cols, 1)
    fig = _new_figure(_WIDTH_IN, min(panel * aspect, 4.0) * nrows + 0.5 * nrows + 0.6)
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
                xm, ym = float(centre_x[i]), float(centre_y[i])
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
        ax.set_title(_text(f"{_short(c.spec, 30)}\n{len(ids) - n_unmatched}/{len(ids)} matched"))
        ax.set_xticks([])
        ax.set_yticks([])
        if not len(ids):
            _no_data(ax, "no raw objects")
    for ax in axes[n:]:
        ax.set_axis_off()
    fig.colorbar(ScalarMappable(Normalize(0, _EPS_CLIP), _cmap()), ax=list(axes[:n]), extend="max",
                 label="|ε| of Area (units of σ_raw, clipped at 3)", shrink=0.9)
    fig.legend(handles=[Patch(color=_UNMATCHED_COLOUR, label="no matching object in the decoded image"),
                        Patch(color=_NOT_ESTIMABLE_COLOUR, label="ε not estimable (σ_raw undefined)")],
               loc="outside lower center", ncols=2, fontsize=_FONT_PT, frameon=False)
    caption = legends.objects_eps(a, have_pixels)
    return _finish("objects_eps", "Objects coloured by |ε| of Area", caption, fig)



def _figure_segmentation(a) -> Drawing:
    from skimage.segmentation import find_boundaries

    pixels = _pixels(a)
    volume = _is_volume(a)
    unit = _size_unit(a)
    areas = np.asarray(a.raw.values, dtype=float).reshape(-1, len(a.raw.names))[:, _size_index(a)]
    n = len(areas)
    fig = _new_figure(_WIDTH_IN, 3.9)
    ax_img, ax_hist = fig.subplots(1, 2, width_ratios=[1.35, 1])
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
                         )
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
        ax_hist.set_ylabel("raw objects (count)")
        ax_hist.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax_hist.legend(fontsize=_MIN_FONT_PT, loc="upper right")
    else:
        _no_data(ax_hist, "the raw image has no objects")
    ax_hist.set_title("Object volumes" if volume else "Object areas")
    caption = legends.segmentation(a, pixels is not None)
    return _finish("segmentation", "Raw segmentation", caption, fig)


def _figure_outside_band(a) -> Drawing:
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
    width, height = _overlay_size(rows, cols, (_WIDTH_IN - 0.2) / ncols)
    fig = _new_figure(_WIDTH_IN, min(height, 4.0) * nrows + 0.75 * nrows + 0.6)
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    ids = np.asarray(a.raw.labels, dtype=np.int64)
    xm, ym = _centres_px(a) if len(ids) else (np.empty(0), np.empty(0))
    row_of = {int(i): k for k, i in enumerate(ids)}
    raw_edges = find_boundaries(pixels[1], mode="inner") if pixels is not None and len(ids) else None
    missing_codec_labels = []
    for ax, c in zip(axes, a.codecs):
        rows_c = table.get(c.spec, [])
        n_apart = sum(1 for r in rows_c if r["worst_parameter"] == "")
        ax.set_title(_text(f"{_short(c.spec, 28)}\n{len(rows_c) - n_apart} of {len(ids)} outside the band\n"
                           f"{n_apart} without a partner"))
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
                lut[r["object"]] = (_NO_PARTNER_COLOUR if r["worst_parameter"] == "" else
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
                        Patch(color=_NO_PARTNER_COLOUR, label="no partner (lost, split or merged)"),
                        Patch(color=_CODEC_OUTLINE_COLOUR, label="decoded image's object outlines"),
                        Patch(color="0.8", label="raw object outlines")],
               loc="outside lower center", ncols=2, fontsize=_FONT_PT, frameon=False)
    caption = legends.outside_band(a, pixels is not None, missing_codec_labels)
    return _finish("outside_band", "Objects outside the noise band", caption, fig)


