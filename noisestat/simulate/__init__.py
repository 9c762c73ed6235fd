"""A camera simulator with known truth (EMVA 1288 style): scenes, acquisitions, flat-field series and
sparse labels, for tests, benchmarks and the demo.
"""

from ._camera import simulate_scene, acquire, sparse_labels, DEMO_CAMERA, CameraModel, CameraSimulator

__all__ = ['simulate_scene', 'acquire', 'sparse_labels', 'DEMO_CAMERA', 'CameraModel', 'CameraSimulator']
