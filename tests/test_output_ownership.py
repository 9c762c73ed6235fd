"""A single-file output (a camera profile, a model, a checkpoint, a reconstruction, a plot) replaces only a
file noisestat wrote: each writer's mark is recognised (noisestat.io.written_by_noisestat), and a user's
file of the same name is refused in one line and left as it was."""

import hashlib
import json
import zipfile

import numpy as np
import pytest
import tifffile

from conftest import CAMERA
from noisestat.camera import CameraProfile
from noisestat.camera._profile import save_profile
from noisestat.cli import main
from noisestat.io import written_by_noisestat
from noisestat.simulate import acquire, simulate_scene, sparse_labels


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    d = tmp_path_factory.mktemp("ownership")
    electrons, truth = simulate_scene((64, 64), n_objects=8, rng=2)
    tifffile.imwrite(d / "raw.tif", acquire(electrons, CAMERA, rng=3))
    tifffile.imwrite(d / "labels.tif", sparse_labels(truth, rng=4))
    # a field with smooth areas at two brightnesses, enough for the single-image noise estimate
    flat = np.full((256, 256), 400.0)
    flat[:, 128:] = 2400.0
    tifffile.imwrite(d / "flat.tif", acquire(flat, CAMERA, rng=5))
    return d


def test_each_writers_mark_is_recognised(tmp_path, scene):
    # a camera profile (JSON) written by noisestat, and one written by hand
    save_profile(CAMERA, tmp_path / "camera.json")
    assert written_by_noisestat(tmp_path / "camera.json")
    (tmp_path / "hand.json").write_text(json.dumps({"gain_dn_per_e": 0.5, "offset_dn": 100, "read_noise_dn": 2,
                                                    "bit_depth": 16}))
    assert not written_by_noisestat(tmp_path / "hand.json")
    # a forest model (.npz)
    assert main(["train", str(scene / "raw.tif"), "--labels", str(scene / "labels.tif"), "--trees", "5",
                 "-o", str(tmp_path / "model.npz")]) == 0
    assert written_by_noisestat(tmp_path / "model.npz")
    np.savez(tmp_path / "other.npz", header=np.frombuffer(b'{"format": "theirs"}', np.uint8))
    assert not written_by_noisestat(tmp_path / "other.npz")
    # TIFFs: a plain one, and one whose description merely lies elsewhere in the bytes is not enough
    tifffile.imwrite(tmp_path / "plain.tif", np.zeros((8, 8), np.uint16))
    assert not written_by_noisestat(tmp_path / "plain.tif")
    # a zip that is neither an npz of ours nor a torch checkpoint, a PNG without the mark, a text file
    with zipfile.ZipFile(tmp_path / "notes.zip", "w") as z:
        z.writestr("a.txt", "noisestat-labelfree")
    assert not written_by_noisestat(tmp_path / "notes.zip")
    from PIL import Image

    Image.new("L", (4, 4)).save(tmp_path / "plot.png")
    assert not written_by_noisestat(tmp_path / "plot.png")
    (tmp_path / "notes.txt").write_text("noisestat wrote nothing here")
    assert not written_by_noisestat(tmp_path / "notes.txt")
    assert not written_by_noisestat(tmp_path / "missing.json")


def test_a_label_free_checkpoint_and_a_plot_carry_the_mark(tmp_path):
    torch = pytest.importorskip("torch")
    from noisestat.predict._labelfree import save_labelfree, train_labelfree

    rng = np.random.default_rng(0)
    image = rng.poisson(200, (32, 32)).astype(np.uint16)
    model = train_labelfree([image], [image.astype(np.float32)], steps=2, seed=0)
    save_labelfree(model, tmp_path / "m.pt")
    assert written_by_noisestat(tmp_path / "m.pt")
    torch.save({"format": "someone-else", "state": {}}, tmp_path / "theirs.pt")
    assert not written_by_noisestat(tmp_path / "theirs.pt")


@pytest.mark.parametrize("command", ["train", "reconstruct", "calibrate"])
def test_an_output_file_of_the_users_is_refused_and_kept(tmp_path, scene, capsys, command):
    target = tmp_path / {"train": "model.npz", "reconstruct": "volume.tif", "calibrate": "camera.json"}[command]
    target.write_bytes(b'{"mine": true}' if command == "calibrate" else b"the user's own file")
    before = _digest(target)
    if command == "train":
        argv = ["train", str(scene / "raw.tif"), "--labels", str(scene / "labels.tif"), "--trees", "5"]
    elif command == "reconstruct":
        stack = np.random.default_rng(1).integers(100, 200, (16, 4, 24)).astype(np.uint16)
        tifffile.imwrite(tmp_path / "proj.tif", stack)
        argv = ["reconstruct", str(tmp_path / "proj.tif"), "--quiet"]
    else:
        argv = ["calibrate", "--from-image", str(scene / "flat.tif"), "--bit-depth", "16"]
    code = main([*argv, "-o", str(target)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith(f"noisestat: error: {target}: a file noisestat did not write is there")
    assert "\n" not in err
    assert _digest(target) == before
    # what noisestat wrote there itself is replaced by the next run
    target.unlink()
    assert main([*argv, "-o", str(target)]) == 0
    assert written_by_noisestat(target)
    assert main([*argv, "-o", str(target)]) == 0


def test_a_profile_written_by_noisestat_still_loads(tmp_path):
    from noisestat.camera._profile import load_profile

    save_profile(CameraProfile(gain_dn_per_e=0.4, offset_dn=90.0, read_noise_dn=1.5, bit_depth=12),
                  tmp_path / "c.json")
    loaded = load_profile(tmp_path / "c.json")
    assert (loaded.gain_dn_per_e, loaded.offset_dn, loaded.bit_depth) == (0.4, 90.0, 12)
