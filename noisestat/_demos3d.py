"""The demos of a volume and of optical projection tomography (OPT), beside the 2D one in :mod:`noisestat.demo`.

Each demo calibrates the simulated camera from a flat-field series, as the 2D demo does, images a scene
with known truth through it, writes the inputs a user would have (the raw file with its voxel size, a true
second acquisition, sparse labels, ``camera.json``), then assesses them as ``noisestat assess`` would and
writes the assessment into ``outdir/assessment``.

* :func:`demo_volume`: nuclei in an anisotropic fluorescence volume (24 x 128 x 128 voxels of
  2 x 0.5 x 0.5 um), scored with lossless, the second acquisition (``file:``), SZ3 with an error bound
  of one noise sigma and JPEG plane by plane at a ratio.
* :func:`demo_opt`: emission projections (360 k / n degrees) of an organ-like body holding small bright
  plaques; the replicas are drawn and the codecs applied on the projections, every image reconstructed by
  filtered back-projection before the forest; scored with lossless, the second acquisition, SZ3 with an
  error bound of one noise sigma and JPEG.

The inputs are written first (a complete folder, moved into place), then the assessment beside them, so
the provenance names the files where they stay and the command in ``demo.json`` repeats the run.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from .io._files import prepare_output_dir, staged_directory, write_json_atomic
from .io._hyperstacks import write_label_image
from .io._metadata import PixelSize

__all__ = ["demo_volume", "demo_opt", "VOLUME_SIZES", "OPT_SIZES", "volume_codecs", "opt_codecs",
           "simulate_nuclei_volume", "simulate_opt_phantom", "sparse_labels_nd"]

#: The volume demo's settings by ``size``: ``shape`` (z, y, x) in voxels, ``spacing`` (z, y, x) in um,
#: the number of nuclei and of replicas. "full" is the demo; "quick" the same scene kind, small.
VOLUME_SIZES = {
    "full": {"shape": (24, 128, 128), "spacing": (2.0, 0.5, 0.5), "nuclei": 22, "replicas": 10},
    "quick": {"shape": (10, 48, 48), "spacing": (2.0, 0.5, 0.5), "nuclei": 4, "replicas": 3},
}

#: The OPT demo's settings by ``size``: projections (angles, rows, width), the number of plaques and of
#: replicas; the reconstruction is (rows, width, width) of isotropic voxels of ``voxel_um``.
OPT_SIZES = {
    "full": {"angles": 128, "rows": 12, "width": 112, "plaques": 18, "replicas": 10, "voxel_um": 10.0},
    "quick": {"angles": 48, "rows": 8, "width": 48, "plaques": 4, "replicas": 3, "voxel_um": 10.0},
}


def volume_codecs(second: str | os.PathLike) -> tuple[str, ...]:
    """The volume demo's codecs: lossless, the true second acquisition in ``second`` (``file:``), SZ3
    with every voxel's error bound to its own noise sigma (coded as one volume) and JPEG at 20:1 (plane by plane)."""
    return ("lossless", f"file:path={os.fspath(second)}", "sz3:max_error_sigma=1", "jpeg:ratio=20")


def opt_codecs(second: str | os.PathLike) -> tuple[str, ...]:
    """The OPT demo's codecs, applied on the projections: lossless, the true second acquisition in
    ``second`` (``file:``), SZ3 with every pixel's error bound to its own noise sigma (the stack as one
    volume) and JPEG at quality 50 (one projection at a time; a projection a few rows high holds too few
    blocks for a fixed ratio)."""
    return ("lossless", f"file:path={os.fspath(second)}", "sz3:max_error_sigma=1", "jpeg:quality=50")


# --------------------------------------------------------------------------------------------------
# Scenes with known truth
# --------------------------------------------------------------------------------------------------

def simulate_nuclei_volume(shape=(24, 128, 128), spacing=(2.0, 0.5, 0.5), *, n_objects=22, radius_um=(3.5, 5.5),
                           background_e=250.0, object_e=1400.0, psf_um=(1.2, 0.35, 0.35), rng=None):
    """A fluorescence volume of nuclei: ellipsoids that do not overlap, blurred by an anisotropic PSF.

    Parameters
    ----------
    shape : (z, y, x)
        Voxels.
    spacing : (z, y, x)
        Voxel size in um; the nuclei are round in physical space, so they span fewer planes than pixels.
    n_objects : int
        Nuclei wanted; fewer when no free place is found for one (500 tries each).
    radius_um : (min, max)
        Semi-axis range of the ellipsoids, um.
    background_e, object_e : float
        Mean photo-electrons of the background and extra electrons in a nucleus (each nucleus scaled by a
        factor in [0.7, 1.3]).
    psf_um : (z, y, x)
        Gaussian blur's sigma in um.
    rng : Generator, int or None

    Returns
    -------
    electrons : ndarray of float, shape ``shape``
        Noise-free expected photo-electrons per voxel.
    truth : ndarray of bool
        The nuclei's true extent.
    """
    rng = np.random.default_rng(rng)
    spacing = np.asarray(spacing, float)
    extent = np.asarray(shape) * spacing
    grid = np.ogrid[tuple(slice(0, n) for n in shape)]
    coords = [g * s for g, s in zip(grid, spacing)]
    truth = np.zeros(shape, bool)
    brightness = np.zeros(shape)
    placed: list[tuple[np.ndarray, float]] = []
    for _ in range(int(n_objects)):
        for _try in range(500):
            semi = rng.uniform(*radius_um, size=3)
            centre = rng.uniform(0.0, extent)
            if all(np.linalg.norm(centre - c) > semi.max() + r + 0.5 for c, r in placed):
                break
        else:
            break
        placed.append((centre, float(semi.max())))
        angle = rng.uniform(0.0, np.pi)  # a turn about z: nuclei lie flat, as on a slide
        dy, dx = coords[1] - centre[1], coords[2] - centre[2]
        u = dy * np.cos(angle) + dx * np.sin(angle)
        v = -dy * np.sin(angle) + dx * np.cos(angle)
        inside = ((coords[0] - centre[0]) / semi[0]) ** 2 + (u / semi[1]) ** 2 + (v / semi[2]) ** 2 < 1
        truth |= inside
        brightness[inside] = rng.uniform(0.7, 1.3)
    blurred = ndi.gaussian_filter(brightness, np.asarray(psf_um) / spacing)
    ramp = 1.0 + 0.2 * np.sin(coords[2] / extent[2] * 4)  # a slowly varying background, as in the 2D scene
    return blurred * object_e + background_e * ramp, truth


def simulate_opt_phantom(rows=12, width=112, *, n_plaques=18, radius_px=(2.2, 3.4), body=1.0, plaque=5.0, rng=None):
    """An emission OPT phantom in the reconstruction's geometry ``(rows, width, width)``: an organ-like body
    (two overlapping ellipsoidal lobes, inside the inscribed circle of every slice) holding small bright
    spherical plaques.

    Returns
    -------
    density : ndarray of float, shape (rows, width, width)
        Fluorescence per voxel (``body`` in the organ, ``plaque`` more in a plaque), zero outside the
        circle of radius ``width / 2 - 1`` about the centre of each slice.
    truth : ndarray of bool
        The plaques.
    """
    rng = np.random.default_rng(rng)
    r, a, b = np.ogrid[:rows, :width, :width]
    c = (width - 1) / 2.0
    z = (r - (rows - 1) / 2.0) / max(rows, 1)
    lobe1 = ((a - c + 0.08 * width) / (0.30 * width)) ** 2 + ((b - c - 0.10 * width) / (0.20 * width)) ** 2 + z ** 2
    lobe2 = ((a - c - 0.12 * width) / (0.18 * width)) ** 2 + ((b - c + 0.14 * width) / (0.24 * width)) ** 2 + z ** 2
    organ = (lobe1 < 1) | (lobe2 < 1)
    circle = (a - c) ** 2 + (b - c) ** 2 < (width / 2.0 - 1) ** 2
    organ &= circle
    truth = np.zeros((rows, width, width), bool)
    placed: list[tuple[np.ndarray, float]] = []
    # the plaques keep away from the organ's edge (their whole ball inside it)
    depth = ndi.distance_transform_edt(np.pad(organ, ((1, 1), (0, 0), (0, 0)), constant_values=True))[1:-1]
    for _ in range(int(n_plaques)):
        for _try in range(500):
            radius = rng.uniform(*radius_px)
            centre = rng.uniform((0, 0, 0), (rows - 1, width - 1, width - 1))
            ic = tuple(int(round(v)) for v in centre)
            if depth[ic] > radius + 1 and all(np.linalg.norm(centre - p) > radius + q + 2 for p, q in placed):
                break
        else:
            break
        placed.append((centre, radius))
        truth |= (r - centre[0]) ** 2 + (a - centre[1]) ** 2 + (b - centre[2]) ** 2 < radius ** 2
    density = ndi.gaussian_filter(organ * body + truth * plaque, 0.7) * circle
    return density, truth


def sparse_labels_nd(truth: np.ndarray, *, spacing=None, fraction=0.02, inside=1.0, outside=1.5, rng=None):
    """Scribble-like sparse labels of a 2D or 3D true mask: 1 background, 2 object, 0 unlabelled.

    A random ``fraction`` of the voxels is labelled: object where the nearest voxel outside the objects
    lies farther than ``inside``, background where the nearest object voxel lies farther than
    ``outside``, both distances between voxel centres in the units of ``spacing`` (per axis; default one
    per voxel), so an anisotropic volume gets the same margins in every direction.
    """
    rng = np.random.default_rng(rng)
    spacing = None if spacing is None else tuple(float(s) for s in spacing)
    depth = ndi.distance_transform_edt(truth, sampling=spacing)
    away = ndi.distance_transform_edt(~truth, sampling=spacing)
    pick = rng.random(truth.shape) < fraction
    labels = np.zeros(truth.shape, np.uint8)
    labels[pick & (away > outside)] = 1
    labels[pick & (depth > inside)] = 2
    return labels


# --------------------------------------------------------------------------------------------------
# The demos
# --------------------------------------------------------------------------------------------------

def _size(sizes: dict, size: str) -> dict:
    from .errors import InputError

    if size not in sizes:
        raise InputError(f"demo size must be one of {', '.join(sizes)}; got {size!r}")
    return sizes[size]


def _write_stack(path: Path, stack: np.ndarray, spacing_um) -> None:
    """A uint16 stack (z, y, x) as an ImageJ hyperstack with its voxel size in um (``z`` None: a stack of
    planes without a slice distance, such as projections)."""
    z, y, x = spacing_um
    write_label_image(path, stack, pixel_size=PixelSize(float(x), float(y), "µm", z=None if z is None else float(z)))


def _with_demo(result, demo: dict):
    return dataclasses.replace(result, provenance={**result.provenance, "demo": demo})


def demo_volume(outdir: str | os.PathLike = "noisestat-demo-volume", *, jobs: int = 1, seed: int = 0,
                progress=None, notice=None, size: str = "full"):
    """Calibrate the demo camera, image a volume of nuclei plane by plane, assess four codecs on it.

    Writes ``outdir/volume.tif`` (uint16 ImageJ hyperstack, ZYX, voxel 2 x 0.5 x 0.5 um),
    ``outdir/second.tif`` (a second acquisition of the same scene by the same camera),
    ``outdir/labels.tif`` (sparse labels), ``outdir/camera.json`` and ``ptc.png`` (the calibration) and
    ``outdir/demo.json`` (the truth and the command that repeats the assessment), then
    :func:`noisestat.pipeline.assess_files` writes ``outdir/assessment`` with the codecs of
    :func:`volume_codecs`.

    Parameters
    ----------
    outdir : path-like
        The output folder (the rules of ``noisestat demo -o``).
    jobs, seed, progress, notice
        As for :func:`noisestat.assess`; ``seed`` also seeds the camera, the scene and the labels.
    size : {"full", "quick"}
        :data:`VOLUME_SIZES`: the demo, or a small volume for a quick check.

    Returns
    -------
    Assessment
        With ``provenance["demo"]``: the true and calibrated gain, the number of true nuclei, the shape.
    """
    from .demo import calibrate_demo_camera, demo_camera
    from .pipeline import assess_files

    settings = _size(VOLUME_SIZES, size)
    shape, spacing = settings["shape"], settings["spacing"]
    out = Path(outdir)
    prepare_output_dir(out)  # refuse an unsafe output before the work
    flat_seed, scene_seed, acquisition_seed, second_seed, label_seed = np.random.SeedSequence(seed).spawn(5)
    camera = demo_camera(shape[1:], seed)
    calibration = calibrate_demo_camera(camera, flat_seed)
    profile = calibration.profile
    electrons, truth = simulate_nuclei_volume(shape, spacing, n_objects=settings["nuclei"], rng=scene_seed)
    photons = electrons / camera.model.quantum_efficiency
    # one frame per plane: the camera images the volume as a z stack
    raw = _acquire_stack(camera, photons, acquisition_seed)
    second = _acquire_stack(camera, photons, second_seed)
    # the 2D demo's margins (2 px of 0.5 um in, 3 px out) in um: one plane in from a nucleus's top and bottom
    labels = sparse_labels_nd(truth, spacing=spacing, inside=2.0, outside=3.0, rng=np.random.default_rng(label_seed))
    n_true = int(ndi.label(truth)[1])
    codecs = volume_codecs(out / "second.tif")
    demo = {"kind": "volume", "size": size, "shape": list(shape), "spacing_um": list(spacing), "seed": seed,
            "true_objects": n_true, "true_gain_dn_per_e": camera.model.gain_dn_per_e,
            "calibrated_gain_dn_per_e": profile.gain_dn_per_e, "replicas": settings["replicas"],
            "command": _command(["assess", out / "volume.tif", "--camera", out / "camera.json", "--labels",
                                 out / "labels.tif"], codecs, settings["replicas"], seed, out / "assessment")}
    _write_inputs(out, profile, calibration, demo,
                  lambda tmp: (_write_stack(tmp / "volume.tif", raw, spacing),
                               _write_stack(tmp / "second.tif", second, spacing),
                               _write_stack(tmp / "labels.tif", labels, spacing)))
    result = assess_files(out / "volume.tif", out / "camera.json", codecs, out / "assessment",
                          labels_path=out / "labels.tif", replicas=settings["replicas"], seed=seed, jobs=jobs,
                          progress=progress, notice=notice)
    return _with_demo(result, demo)


def demo_opt(outdir: str | os.PathLike = "noisestat-demo-opt", *, jobs: int = 1, seed: int = 0, progress=None,
             notice=None, size: str = "full"):
    """Calibrate the demo camera, record OPT projections of a phantom, assess four codecs on them.

    The phantom (:func:`simulate_opt_phantom`) is projected row by row with
    ``skimage.transform.radon`` at ``360 k / n`` degrees (emission: line integrals of the fluorescence,
    plus a dim background), and each projection is one camera frame. Writes ``outdir/projections.tif``
    (uint16, angles x rows x width), ``outdir/second.tif`` (a second acquisition), ``outdir/labels.tif``
    (sparse labels in the reconstruction's geometry rows x width x width: 1 background, 2 plaque),
    ``camera.json``, ``ptc.png`` and ``demo.json``, then :func:`noisestat.pipeline.assess_files` with
    ``reconstruct=parse_reconstruction("fbp")`` writes ``outdir/assessment``: replicas and codecs act on
    the projections, every image is reconstructed before the forest.

    Parameters and return as :func:`demo_volume` (``size`` from :data:`OPT_SIZES`).
    """
    from .demo import calibrate_demo_camera, demo_camera
    from .pipeline import assess_files
    from .reconstruct._domain import parse_reconstruction

    settings = _size(OPT_SIZES, size)
    n, rows, width = settings["angles"], settings["rows"], settings["width"]
    voxel = settings["voxel_um"]
    out = Path(outdir)
    prepare_output_dir(out)
    flat_seed, scene_seed, acquisition_seed, second_seed, label_seed = np.random.SeedSequence(seed).spawn(5)
    camera = demo_camera((rows, width), seed)
    calibration = calibrate_demo_camera(camera, flat_seed)
    profile = calibration.profile
    density, truth = simulate_opt_phantom(rows, width, n_plaques=settings["plaques"], rng=scene_seed)
    sinograms = _project(density, 360.0 * np.arange(n) / n)
    # photons per projection pixel: the organ's thickest path about 3000 e-, a dim background of 200 e-
    photons = (200.0 + sinograms * (3000.0 / max(float(sinograms.max()), 1e-12))) / camera.model.quantum_efficiency
    projections = _acquire_stack(camera, photons, acquisition_seed)
    second = _acquire_stack(camera, photons, second_seed)
    labels = sparse_labels_nd(truth, fraction=0.03, inside=1.0, outside=2.0, rng=np.random.default_rng(label_seed))
    codecs = opt_codecs(out / "second.tif")
    demo = {"kind": "opt", "size": size, "projections": [n, rows, width], "angles_deg": "360 k / n",
            "volume": [rows, width, width], "voxel_um": voxel, "seed": seed, "true_objects": int(ndi.label(truth)[1]),
            "true_gain_dn_per_e": camera.model.gain_dn_per_e, "calibrated_gain_dn_per_e": profile.gain_dn_per_e,
            "replicas": settings["replicas"],
            "command": _command(["assess", out / "projections.tif", "--camera", out / "camera.json",
                                 "--labels", out / "labels.tif", "--reconstruct", "fbp"], codecs,
                                settings["replicas"], seed, out / "assessment")}
    _write_inputs(out, profile, calibration, demo,
                  lambda tmp: (_write_stack(tmp / "projections.tif", projections, (None, voxel, voxel)),
                               _write_stack(tmp / "second.tif", second, (None, voxel, voxel)),
                               _write_stack(tmp / "labels.tif", labels, (voxel, voxel, voxel))))
    # the reconstruction's voxels are the projections' pixels (isotropic), read from projections.tif
    result = assess_files(out / "projections.tif", out / "camera.json", codecs, out / "assessment",
                          labels_path=out / "labels.tif", replicas=settings["replicas"], seed=seed, jobs=jobs,
                          progress=progress, notice=notice, reconstruct=parse_reconstruction("fbp"))
    return _with_demo(result, demo)


def _acquire_stack(camera, photons: np.ndarray, seed) -> np.ndarray:
    """One camera frame (10 ms) per plane of ``photons`` (frames, rows, cols), the frames in order from one
    generator."""
    rng = np.random.default_rng(seed)
    return np.stack([camera.acquire(plane, 0.01, 1, rng)[0] for plane in photons])


def _project(density: np.ndarray, angles_deg: np.ndarray) -> np.ndarray:
    """Emission projections ``(angles, rows, width)`` of a volume ``(rows, width, width)``: ``radon`` of each
    row's slice, the convention :func:`noisestat.reconstruct.fbp` inverts."""
    from skimage.transform import radon

    rows, width, _ = density.shape
    out = np.empty((len(angles_deg), rows, width))
    for r in range(rows):
        out[:, r, :] = radon(density[r], theta=angles_deg, circle=True).T
    return np.maximum(out, 0.0)


def _write_inputs(out: Path, profile, calibration, demo: dict, write_images) -> None:
    """The demo's inputs as one folder, moved into place complete before the assessment starts."""
    from .calibrate import plot_photon_transfer
    from .camera._profile import save_profile

    with staged_directory(out, command="demo") as tmp:
        write_images(tmp)
        save_profile(profile, tmp / "camera.json")
        plot_photon_transfer(calibration.ptc, tmp / "ptc.png", title="Demo camera")
        write_json_atomic(tmp / "demo.json", demo)


def _command(head: list, codecs, replicas: int, seed: int, output: Path) -> str:
    words = ["noisestat", *map(str, head)]
    for c in codecs:
        words += ["--codec", c]
    words += ["--replicas", str(replicas), "--seed", str(seed), "-o", str(output)]
    return " ".join(words)
