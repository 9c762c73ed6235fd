"""Monte-Carlo raw-equivalent images: each pixel redrawn with the camera's temporal noise at its value
(near object edges about its denoised value, mode ``denoised-edges``), from seeds that do not depend on
the order, the tiling or the worker that draws them.
"""

from ._draw import (MODE, MODES, NOISE_BLOCK, VOLUME_NOISE_BLOCK, BlockCache, draw_region, draw_replica, generate_replicas,
                    noise_block, replica_seeds)

__all__ = ["draw_replica", "draw_region", "generate_replicas", "replica_seeds", "noise_block", "BlockCache", "MODE", "MODES",
           "NOISE_BLOCK", "VOLUME_NOISE_BLOCK"]
