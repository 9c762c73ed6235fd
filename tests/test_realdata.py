"""The assessment on real phase-contrast images (Usiigaci, manual instance masks)."""

import imagecodecs
import numpy as np
import pytest
import tifffile

from noisestat import CameraProfile, assess

from conftest import shared_data

CODECS = ["lossless", "bitdepth:bits=8,mode=minmax", "bitdepth:bits=8,mode=shift", "jpeg:ratio=10",
          "jpeg:ratio=100"]


def _labels_from_instances(instances, rng):
    from scipy import ndimage as ndi

    cells = instances > 0
    pick = rng.random(instances.shape) < 0.02
    labels = np.zeros(instances.shape, np.uint8)
    labels[pick & ~ndi.binary_dilation(cells, iterations=4)] = 1
    labels[pick & ndi.binary_erosion(cells, iterations=3)] = 2
    return labels


@pytest.fixture(scope="module")
def realpc():
    folder = shared_data("usiigaci-phase-contrast", "set3")
    raw = tifffile.imread(folder / "raw.tif")[:512, :512]
    instances = np.asarray(imagecodecs.imread(folder / "instances_ids.png"))[:512, :512]
    labels = _labels_from_instances(instances, np.random.default_rng(0))
    # No calibration exists for this camera. Its noise, measured on the flattest parts of the full image
    # (examples/phase_contrast.py), is ~300-400 DN and shows no resolvable shot-noise slope: a read-noise-
    # dominated profile in that range.
    camera = CameraProfile(gain_dn_per_e=0.05, offset_dn=0.0, read_noise_dn=300.0, bit_depth=16)
    return assess(raw, camera, CODECS, labels=labels, replicas=6, seed=0, jobs=2, min_area=20)


def test_every_codec_runs_on_real_data(realpc):
    by = {c.spec: c for c in realpc.codecs}
    assert list(by) == CODECS
    assert len(realpc.raw) >= 10
    assert (by["lossless"].eps[np.isfinite(by["lossless"].eps)] == 0).all()
    assert abs(by["jpeg:ratio=10"].compression_ratio / 10 - 1) <= 0.05
    assert abs(by["jpeg:ratio=100"].compression_ratio / 100 - 1) <= 0.05


def test_jpeg_100_distorts_more_than_jpeg_10(realpc):
    by = {c.spec: c for c in realpc.codecs}

    def distortion(c):  # mean over parameters of |mean eps| and of the sd of eps
        p = c.parameters.values()
        return np.nanmean([abs(v["mean_eps"]) for v in p]), np.nanmean([v["sd_eps"] for v in p])

    mean10, sd10 = distortion(by["jpeg:ratio=10"])
    mean100, sd100 = distortion(by["jpeg:ratio=100"])
    assert mean100 > mean10 and sd100 > sd10
    assert abs(by["jpeg:ratio=100"].global_scores["A_tot"]["eps"]) > abs(by["jpeg:ratio=10"].global_scores["A_tot"]["eps"])
    assert not by["jpeg:ratio=100"].tolerable
