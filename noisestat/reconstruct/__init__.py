"""Optical projection tomography: a stack of projections ``(angles, rows, width)`` reconstructed
slice by slice (one per row) by filtered back-projection, with the conventions of scikit-image's
``iradon(circle=True)`` and several times its speed; :func:`fbp_rows` reconstructs a tile of rows
as an independent task.
"""

from ._fbp import INTERPOLATIONS, ROWS_PER_BLOCK, describe_fbp, fbp, fbp_rows
from ._filters import FILTERS, filter_response, padded_length

__all__ = ["fbp", "fbp_rows", "describe_fbp", "FILTERS", "INTERPOLATIONS", "ROWS_PER_BLOCK", "filter_response",
           "padded_length"]
