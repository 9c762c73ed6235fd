"""What an assessment holds at once on this machine: a large image's codecs finish before the
training starts (their whole-image arrays never sit beside the training's features), a small image's
run beside it, and the numbers are the same either way."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import noisestat._reference as reference
import noisestat.pipeline as pipeline
from noisestat import assess
from noisestat.report._tables import objects_csv
from noisestat.simulate import acquire, simulate_scene, sparse_labels

from conftest import CAMERA

CODEC = "bitdepth:bits=8,mode=minmax"


@pytest.fixture(scope="module")
def scene():
    electrons, truth = simulate_scene((96, 112), rng=8)
    return acquire(electrons, CAMERA, 9), sparse_labels(truth, rng=10)


def _ordered_run(scene, monkeypatch, *, large: bool):
    """One assessment whose codec, once coded, waits (up to a second) for the training to start; the
    order in which the codec ended and the training started, and the assessment."""
    events, training = [], threading.Event()
    real_code, real_train = pipeline.code_image, reference.train

    def code_image(*args):
        result = real_code(*args)
        training.wait(1.0)  # beside the training it has started by then; before it, it never does
        events.append("codec done")
        return result

    def train(*args, **kwargs):
        events.append("training starts")
        training.set()
        return real_train(*args, **kwargs)

    monkeypatch.setattr(pipeline, "code_image", code_image)
    monkeypatch.setattr(reference, "train", train)
    if large:
        monkeypatch.setattr(reference, "CODEC_BYTES_PER_PIXEL", 1 << 30)  # as for an image of 512 MiB and more
    raw, labels = scene
    result = assess(raw, CAMERA, [CODEC], labels=labels, replicas=2, seed=4, jobs=2)
    monkeypatch.undo()
    return events, result


def test_a_large_images_codecs_finish_before_the_training_and_change_no_number(scene, monkeypatch):
    events_small, small = _ordered_run(scene, monkeypatch, large=False)
    events_large, large = _ordered_run(scene, monkeypatch, large=True)
    assert events_small == ["training starts", "codec done"]
    assert events_large == ["codec done", "training starts"]
    assert objects_csv(large) == objects_csv(small)
    assert large.summary()["codecs"] == small.summary()["codecs"]


def test_which_images_have_their_codecs_first():
    assert reference.codecs_before_training((128, 512, 512))
    assert not reference.codecs_before_training((4096, 4096))
    assert not reference.codecs_before_training((64, 256, 256))
    assert np.prod((128, 512, 512)) * reference.CODEC_BYTES_PER_PIXEL > reference.RAW_FEATURE_CACHE_BYTES


def test_electrons_cost_one_float32_copy_and_leave_the_pixels_alone():
    import tracemalloc

    from noisestat._tasks import electrons

    rng = np.random.default_rng(3)
    pixels = rng.integers(90, 4000, size=(16, 256, 256)).astype(np.uint16)
    expected = (pixels.astype(np.float32) - np.float32(CAMERA.offset_dn)) / np.float32(CAMERA.gain_dn_per_e)
    tracemalloc.start()
    try:
        got = electrons(pixels, CAMERA)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
    assert peak < 1.5 * got.nbytes, f"peak {peak / 2**20:.1f} MiB for {got.nbytes / 2**20:.0f} MiB of electrons"
    # a float32 image given as it is: converted in a copy, never in place
    floats = pixels[0].astype(np.float32)
    kept = floats.copy()
    np.testing.assert_array_equal(electrons(floats, CAMERA), expected[0])
    np.testing.assert_array_equal(floats, kept)


@pytest.mark.parametrize("maps", [False, True])
def test_a_volumes_intensities_convert_only_the_objects_voxels(maps):
    import tracemalloc

    from noisestat import CameraProfile
    from noisestat.camera import PixelMaps
    from noisestat._tasks import electrons, intensity, measure

    shape = (24, 128, 128)
    rng = np.random.default_rng(12)
    profile = CAMERA
    if maps:
        profile = CameraProfile(0.5, 100, 2, 16, pixel_maps=PixelMaps(
            offset_dn=100 + rng.normal(0, 2, shape[1:]), gain_dn_per_e=0.5 + rng.normal(0, 0.02, shape[1:]),
            read_variance_dn2=4 + rng.uniform(0, 1, shape[1:])))
    pixels = rng.integers(90, 4000, size=shape).astype(np.uint16)
    labels = np.zeros(shape, np.uint16)
    for k, (z, y, x) in enumerate(rng.integers(3, 100, size=(20, 3)) % np.array([20, 120, 120]), start=1):
        labels[z:z + 4, y:y + 6, x:x + 5] = k  # blocks, some overlapping: a few percent of the voxels
    expected = measure(labels, electrons(pixels, profile), (2.0, 1.0, 1.0))
    tracemalloc.start()
    try:
        got = measure(labels, intensity(pixels, pixels, profile), (2.0, 1.0, 1.0))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(got.labels, expected.labels)
    np.testing.assert_array_equal(got.values, expected.values)  # bit for bit, NaN where NaN
    assert np.isfinite(got.column("Mean")).all() and len(got) > 10
    # a float32 copy of the volume is 4 bytes a voxel; the labels' own lookup is 2
    assert peak < 4 * pixels.size, f"peak {peak / 2**20:.1f} MiB"
