"""The built-in demo: a simulated camera and cell scene, assessed with five codec settings."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._io import staged_directory
from .camera import save_profile
from .pipeline import Assessment, assess, write_assessment
from .simulate import DEMO_CAMERA, acquire, simulate_scene, sparse_labels

__all__ = ["run_demo", "DEMO_CODECS"]

DEMO_CODECS = ("lossless", "bitdepth:bits=8,mode=minmax", "bitdepth:bits=8,mode=shift", "jpeg:ratio=10",
               "jpeg:ratio=100")


def run_demo(outdir: str | os.PathLike = "noisestat-demo", *, seed: int = 0, jobs: int = 1,
             shape=(640, 640), replicas: int = 10) -> Assessment:
    """Simulate a camera and a scene, assess :data:`DEMO_CODECS`, write everything to ``outdir``.

    ``outdir`` receives the inputs (``raw.tif``, ``labels.tif``, ``camera.json``) and the
    assessment in ``outdir/assessment``, so the same run can be repeated with the CLI.
    """
    import tifffile

    scene_seed, acquisition_seed, label_seed = np.random.SeedSequence(seed).spawn(3)
    electrons, truth = simulate_scene(shape, rng=np.random.default_rng(scene_seed))
    raw = acquire(electrons, DEMO_CAMERA, np.random.default_rng(acquisition_seed))
    labels = sparse_labels(truth, rng=np.random.default_rng(label_seed))
    result = assess(raw, DEMO_CAMERA, DEMO_CODECS, labels=labels, replicas=replicas, seed=seed, jobs=jobs,
                    provenance={"demo": {"shape": list(shape), "seed": seed}})
    with staged_directory(outdir) as tmp:
        tifffile.imwrite(tmp / "raw.tif", raw)
        tifffile.imwrite(tmp / "labels.tif", labels)
        save_profile(DEMO_CAMERA, tmp / "camera.json")
        write_assessment(result, Path(tmp) / "assessment")
    return result
