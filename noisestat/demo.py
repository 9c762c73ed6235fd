"""The built-in demo: calibrate a simulated camera, then assess five codec settings on a scene it images.

1. A seeded :class:`~noisestat.simulate.CameraSimulator` (16-bit sCMOS-like: gain 0.46 DN/e-,
   offset 100 DN, read noise 3.5 e-, DSNU and PRNU) records a flat-field series of 16 light levels.
2. ``noisestat.calibrate`` turns the series into a camera profile (``camera.json``, ``ptc.png``).
3. The same camera images a field of cells; sparse labels are drawn from the scene's truth.
4. The raw image is assessed with lossless, both 8-bit conversions and JPEG at 10:1 and 100:1,
   with the *calibrated* profile, as a user would.

:func:`demo_volume` and :func:`demo_opt` (``noisestat/_demos3d.py``) do the same for a volume of nuclei and
for optical projection tomography.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ._demos3d import demo_opt, demo_volume
from .io._files import prepare_output_dir, staged_directory
from .calibrate import Level, FlatFieldSeries, calibrate_series, plot_photon_transfer
from .camera._profile import save_profile
from .pipeline import Assessment, assess, write_assessment
from .simulate._camera import CameraModel, CameraSimulator, simulate_scene, sparse_labels

__all__ = ["run_demo", "demo_volume", "demo_opt", "DEMO_CODECS", "demo_camera", "calibrate_demo_camera"]

DEMO_CODECS = ("lossless", "bitdepth:bits=8,mode=minmax", "bitdepth:bits=8,mode=shift", "jpeg:ratio=10",
               "jpeg:ratio=100")


def demo_camera(shape=(640, 640), seed: int = 0) -> CameraSimulator:
    """The demo's camera: its fixed pattern drawn from ``seed``."""
    return CameraSimulator(CameraModel(shape=tuple(shape), gain_dn_per_e=0.46, offset_dn=100.0, read_noise_e=3.5,
                                       bit_depth=16, quantum_efficiency=0.7, full_well_e=30000.0, dsnu_dn=0.6,
                                       prnu=0.005, pattern_seed=seed))


def calibrate_demo_camera(camera: CameraSimulator, seed):
    """Calibrate ``camera`` from a flat-field series of 16 light levels up to 1.2x saturation (two frames
    each, 10 ms), drawn from ``seed`` (int or SeedSequence); the :class:`~noisestat.calibrate.Calibration`."""
    model = camera.model
    saturation_photons = model.full_well_e / model.quantum_efficiency
    series = camera.photon_series(np.linspace(0, 1.2 * saturation_photons, 17)[1:], 0.01, rng=seed)
    levels = tuple(Level(d["bright"], d["dark"], d["exposure_s"], d["photons"], f"level {k:02d}")
                   for k, d in enumerate(series))
    return calibrate_series(FlatFieldSeries(levels, model.bit_depth, None, "demo camera", "simulated"))


def run_demo(outdir: str | os.PathLike = "noisestat-demo", *, seed: int = 0, jobs: int = 1,
             shape=(640, 640), replicas: int = 10) -> Assessment:
    """Calibrate the demo camera, image a scene, assess :data:`DEMO_CODECS`, write ``outdir``.

    ``outdir`` receives the inputs (``raw.tif``, ``labels.tif``), the calibration (``camera.json``,
    ``ptc.png``) and the assessment in ``outdir/assessment``, so the run can be repeated with the
    command line.
    """
    import tifffile

    prepare_output_dir(outdir)  # refuse an unsafe output before the work
    flat_seed, scene_seed, acquisition_seed, label_seed = np.random.SeedSequence(seed).spawn(4)
    camera = demo_camera(shape, seed)
    model = camera.model
    calibration = calibrate_demo_camera(camera, flat_seed)
    profile = calibration.profile

    electrons, truth = simulate_scene(shape, rng=np.random.default_rng(scene_seed))
    raw = camera.acquire(electrons / model.quantum_efficiency, 0.01, 1, np.random.default_rng(acquisition_seed))[0]
    labels = sparse_labels(truth, rng=np.random.default_rng(label_seed))
    result = assess(raw, profile, DEMO_CODECS, labels=labels, replicas=replicas, seed=seed, jobs=jobs,
                    provenance={"demo": {"shape": list(shape), "seed": seed,
                                         "true_gain_dn_per_e": model.gain_dn_per_e,
                                         "calibrated_gain_dn_per_e": profile.gain_dn_per_e}})
    with staged_directory(outdir, command="demo") as tmp:
        tifffile.imwrite(tmp / "raw.tif", raw)
        tifffile.imwrite(tmp / "labels.tif", labels)
        save_profile(profile, tmp / "camera.json")
        plot_photon_transfer(calibration.ptc, tmp / "ptc.png", title="Demo camera")
        write_assessment(result, Path(tmp) / "assessment")
    return result
