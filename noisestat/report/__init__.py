"""What an assessment shows: label images, the objects outside the noise band, warnings about the
segmentation, figures and the HTML report; a value predictor's maps and per-pixel table; the
operator-level eps table and figure; a dataset's page (the pooled verdict per codec, the fields).
"""

from ._inspection import (write_label_image, write_float_map, codec_status, outside_band, outside_band_csv,
                          segmentation_warnings, OUTSIDE_BAND_COLUMNS, GIANT_IMAGE_FRACTION, GIANT_MEDIAN_RATIO,
                          TINY_AREA_PX, TINY_FRACTION, TINY_MEDIAN_PX, COUNT_RATIO)
from ._values import pixels_csv, write_value_assessment, PIXELS_COLUMNS
from ._operators import (operators_csv, write_operators_csv, operators_figure, write_operators_figure, OPERATORS_CSV,
                         OPERATORS_FIGURE)

# The figures need matplotlib: imported on first use, so that the tables and label images need none.
_HTML = ("write_report", "render_figures", "figure_names", "report_html", "ReportFigure", "FIGURE_NAMES", "FAMILY")


_DATASET = ("dataset_report_html", "dataset_figure")


def __getattr__(name):
    if name in _HTML:
        from . import _html

        return getattr(_html, name)
    if name in _DATASET:
        from . import _dataset

        return getattr(_dataset, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["write_float_map", "pixels_csv", "write_value_assessment", "PIXELS_COLUMNS", "operators_csv",
           "write_operators_csv", "operators_figure", "write_operators_figure", "OPERATORS_CSV", "OPERATORS_FIGURE",
           "write_label_image",
           "codec_status", "outside_band", "outside_band_csv", "segmentation_warnings",
           "OUTSIDE_BAND_COLUMNS", "GIANT_IMAGE_FRACTION", "GIANT_MEDIAN_RATIO", "TINY_AREA_PX",
           "TINY_FRACTION", "TINY_MEDIAN_PX", "COUNT_RATIO", "write_report", "render_figures", "figure_names",
           "report_html", "ReportFigure", "FIGURE_NAMES", "FAMILY", "dataset_report_html", "dataset_figure"]
