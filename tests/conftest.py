import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from noisestat.camera import CameraProfile
from noisestat.simulate import acquire, simulate_scene, sparse_labels

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CAMERA = CameraProfile(gain_dn_per_e=0.5, offset_dn=100.0, read_noise_dn=2.0, bit_depth=16)


@pytest.fixture(scope="session")
def small_scene():
    """A 192x192 simulated scene, one acquisition of it and sparse labels from its truth."""
    electrons, truth = simulate_scene((192, 192), rng=11)
    raw = acquire(electrons, CAMERA, 12)
    labels = sparse_labels(truth, rng=13)
    return raw, labels, truth, electrons


@pytest.fixture(scope="session")
def scene_files(tmp_path_factory, small_scene):
    """The small scene written as files, as a user would have them."""
    raw, labels, _, electrons = small_scene
    d = tmp_path_factory.mktemp("scene")
    tifffile.imwrite(d / "raw.tif", raw)
    tifffile.imwrite(d / "labels.tif", labels)
    tifffile.imwrite(d / "raw_b.tif", acquire(electrons, CAMERA, 99))
    (d / "camera.json").write_text(json.dumps({"gain_dn_per_e": CAMERA.gain_dn_per_e, "offset_dn": CAMERA.offset_dn,
                                              "read_noise_dn": CAMERA.read_noise_dn, "bit_depth": CAMERA.bit_depth}))
    return d


def shared_data(*parts):
    """Path under ../shared/data, or skip the test with the reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not found at {path} (the shared data folder is not present)")
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(0)
