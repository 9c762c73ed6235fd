"""Monte-Carlo raw-equivalent images: each pixel redrawn with the camera's temporal noise at its value,
from seeds that do not depend on the order, the tiling or the worker that draws them.
"""

from ._draw import MODE, NOISE_BLOCK, draw_region, draw_replica, generate_replicas, replica_seeds

__all__ = ["draw_replica", "draw_region", "generate_replicas", "replica_seeds", "MODE", "NOISE_BLOCK"]
