"""The engine: how the work runs. Tiles with exact halos (a predictor's result does not depend on
the tile size) and executors (this machine's processes, or a dask.distributed cluster) that give the
same numbers on every path; connected components of a mask labelled block by block, exactly as
on the whole mask (for volumes larger than memory).
"""

from ._executors import DaskExecutor, EngineError, Executor, JoblibExecutor, Pending, make_executor, parse_scheduler
from ._label import BlockSummary, block_labels, block_slices, block_summary, executor_map, label_blocks
from ._segment import segment
from ._tiles import (FEATURE_BUDGET_BYTES, Tile, default_tile, label_mask, predict_values_tiled, segment_tiled,
                     tile_grid)

__all__ = ["segment", "segment_tiled", "predict_values_tiled", "tile_grid", "Tile", "default_tile", "label_mask",
           "make_executor", "Executor", "JoblibExecutor", "DaskExecutor", "Pending", "EngineError", "parse_scheduler",
           "FEATURE_BUDGET_BYTES", "label_blocks", "block_summary", "block_labels", "block_slices", "BlockSummary",
           "executor_map"]
