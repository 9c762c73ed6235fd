"""Label-free models: the U-Net's training, its checkpoint and the checks on it, the predictor, the
command line. Skipped as a whole when torch is not installed (the optional extra noisestat[learned])."""

import io
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

pytest.importorskip("torch", reason="label-free models need PyTorch (the optional extra noisestat[learned])")

import torch  # noqa: E402

from noisestat import ModelError, PixelClassifier, save_model  # noqa: E402
from noisestat.cli import main  # noqa: E402
from noisestat.predict import LabelFreePredictor, load_labelfree, load_predictor, save_labelfree  # noqa: E402
from noisestat.predict import train_labelfree  # noqa: E402
from noisestat.predict import _labelfree as labelfree  # noqa: E402
from noisestat.predict._protocol import check_predictor_output, predictor_kind  # noqa: E402
from noisestat.simulate import acquire, simulate_scene, sparse_labels  # noqa: E402

from conftest import CAMERA  # noqa: E402

# small and quick: a 48 x 48 pair, a U-Net of width 4
SMALL = dict(steps=3, depth=2, width=4, patch=16, batch=2)


def pair(shape=(48, 48), seed=1, sigma=2.0):
    """A simulated acquisition (DN) and, as its target, the scene's electrons smoothed."""
    electrons, _ = simulate_scene(shape, rng=seed)
    return acquire(electrons, CAMERA, rng=seed + 100), ndi.gaussian_filter(electrons, sigma)


@pytest.fixture(scope="module")
def small():
    x, y = pair()
    return x, y, train_labelfree(x, y, seed=5, **SMALL)


def weights(model):
    return model.state_dict()


def test_training_is_deterministic_and_leaves_torch_as_it_was(small):
    x, y, model = small
    threads = torch.get_num_threads()
    state = torch.random.get_rng_state()
    again = train_labelfree(x, y, seed=5, **SMALL)
    assert torch.get_num_threads() == threads and torch.equal(torch.random.get_rng_state(), state)
    assert not torch.are_deterministic_algorithms_enabled()
    a, b = weights(model), weights(again)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    other = train_labelfree(x, y, seed=6, **SMALL)
    assert not all(np.array_equal(a[k], weights(other)[k]) for k in a)  # the seed matters


def test_header_records_the_training(small):
    x, y, model = small
    h = model.header
    assert h["format"] == labelfree.CHECKPOINT_FORMAT and h["arch"] == {"depth": 2, "width": 4}
    assert h["normalisation"]["input_mean"] == pytest.approx(x.mean())
    assert h["normalisation"]["target_std"] == pytest.approx(y.std())
    t = h["training"]
    assert t["steps"] == 3 and t["seed"] == 5 and t["codec"] is None and np.isfinite(t["loss"])
    assert t["pairs"][0]["input"] == "input 0" and len(t["pairs"][0]["input_sha256"]) == 64


def test_predictor_protocol_shapes_and_volumes(small):
    x, _, model = small
    assert predictor_kind(model) == "values" and model.whole_image and model.halo(3) == (0, 0, 0)
    odd = x[:37, :29]  # padded to a multiple of 4 by reflection and cropped back
    values = check_predictor_output(model, model.predict_values(odd), odd.shape, "values")
    assert values.dtype == np.float32 and values.shape == odd.shape
    assert np.array_equal(model.predict_values(odd), values)
    volume = np.stack([x[:32, :32], x[8:40, 8:40]])
    planes = model.predict_values(volume)
    assert np.array_equal(planes[1], model.predict_values(volume[1]))  # plane by plane
    assert model.predict_values(x[:1, :5]).shape == (1, 5)


def test_pickle_and_checkpoint_round_trips_are_bit_exact(small, tmp_path):
    x, _, model = small
    expected = model.predict_values(x)
    copy = pickle.loads(pickle.dumps(model))
    assert np.array_equal(copy.predict_values(x), expected)
    blob = pickle.dumps(model)
    assert b"torch.nn" not in blob and b"UNet" not in blob  # the header and numpy weights, not a torch module
    path = tmp_path / "model.pt"
    save_labelfree(model, path)
    assert not list(tmp_path.glob(".*.tmp"))
    loaded = load_labelfree(path)
    assert np.array_equal(loaded.predict_values(x), expected)
    d = loaded.describe()
    assert d["arch"] == model.header["arch"] and d["training"]["seed"] == 5 and d["file"]["path"] == str(path)
    assert isinstance(load_predictor(path), LabelFreePredictor)


@pytest.fixture(scope="module")
def forest():
    electrons, truth = simulate_scene((48, 48), n_objects=3, rng=3)
    image, labels = acquire(electrons, CAMERA, rng=4), sparse_labels(truth, fraction=0.2, rng=5)
    return PixelClassifier(n_estimators=2, sigmas=(1,), random_state=0).fit(image, labels)


def test_load_predictor_sends_forest_files_to_the_forest(forest, tmp_path):
    for name in ("forest.npz", "forest.pt"):  # its content decides, not its name
        save_model(forest, tmp_path / name)
        assert isinstance(load_predictor(tmp_path / name), PixelClassifier)
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ModelError, match="not a noisestat model file"):
        load_predictor(tmp_path / "junk.npz")




class Payload:
    """Writes a file when unpickled: a checkpoint holding code."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def _checkpoint(model) -> dict:
    return {**model.header, "state_dict": {k: torch.from_numpy(v.copy()) for k, v in model.state_dict().items()}}


def _hostile(model, tmp_path):
    """(name, bytes or object to torch.save, expected message) for every kind of damage."""
    good = _checkpoint(model)
    buffer = io.BytesIO()
    torch.save(good, buffer)
    data = buffer.getvalue()

    def changed(**entries):
        return {**good, **entries}

    def weight(name, value):
        return changed(state_dict={**good["state_dict"], name: value})

    first = next(iter(good["state_dict"]))
    nan = good["state_dict"][first].clone()
    nan.view(-1)[0] = float("nan")
    return [
        ("code.pt", {"weights": Payload(str(tmp_path / "pwned"))}, "holds Python objects"),
        ("pickle.pt", pickle.dumps(Payload(str(tmp_path / "pwned"))), "refused|not a PyTorch checkpoint"),
        ("truncated.pt", data[:len(data) // 2], "not a PyTorch checkpoint"),
        ("empty.pt", b"", "not a PyTorch checkpoint"),
        ("list.pt", [1, 2], "not a label-free model"),
        ("codec.pt", changed(format="noisestat-learned-codec"), "not a label-free model"),
        ("version.pt", changed(version=2), "version 2"),
        ("deep.pt", changed(arch={"depth": 40, "width": 4}), "depth must be an integer in"),
        ("wide.pt", changed(arch={"depth": 4, "width": 64}), "width \\* 2\\*\\*depth"),
        ("boolarch.pt", changed(arch={"depth": True, "width": 4}), "depth must be"),
        ("std.pt", changed(normalisation={**good["normalisation"], "input_std": 0.0}), "input_std"),
        ("nanmean.pt", changed(normalisation={**good["normalisation"], "target_mean": float("nan")}), "target_mean"),
        ("extra.pt", changed(more=1), "unexpected entries"),
        ("training.pt", changed(training=torch.zeros(2)), "training must be"),
        ("shape.pt", weight(first, torch.zeros(3, 3)), "has shape"),
        ("dtype.pt", weight(first, good["state_dict"][first].double()), "dtype"),
        ("nan.pt", weight(first, nan), "NaN"),
        ("missing.pt", changed(state_dict={k: v for k, v in good["state_dict"].items() if k != first}), "missing"),
        ("more.pt", weight("down.9.weight", torch.zeros(1)), "unexpected"),
        ("int.pt", weight(first, good["state_dict"][first].to(torch.int32)), "dtype"),
    ]


def test_hostile_checkpoints_are_refused_in_one_line(small, forest, tmp_path):
    x, _, model = small
    cases = _hostile(model, tmp_path)
    for name, content, message in cases:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            torch.save(content, path)
        with pytest.raises(ModelError, match=message) as info:
            load_labelfree(path)
        text = str(info.value)
        assert text.startswith(f"{path}: ") and "\n" not in text, (name, text)
        with pytest.raises(ModelError):
            load_predictor(path)
    assert not (tmp_path / "pwned").exists()  # no code ran
    # a forest file renamed .pt, given to load_labelfree itself
    save_model(forest, tmp_path / "forest.npz")
    (tmp_path / "forest.pt").write_bytes((tmp_path / "forest.npz").read_bytes())
    with pytest.raises(ModelError, match="not a PyTorch checkpoint"):
        load_labelfree(tmp_path / "forest.pt")
    with pytest.raises(ModelError, match="no such model file"):
        load_labelfree(tmp_path / "absent.pt")


def test_oversized_file_is_refused_before_reading(small, tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    save_labelfree(small[2], path)
    monkeypatch.setattr(labelfree, "MAX_CHECKPOINT_BYTES", path.stat().st_size - 1)
    with pytest.raises(ModelError, match="at most"):
        load_labelfree(path)


def test_a_torch_archive_is_sniffed_without_torch_by_its_content(small, tmp_path):
    path = tmp_path / "model.bin"
    save_labelfree(small[2], path)
    assert labelfree.is_labelfree_file(path) and zipfile.is_zipfile(path)
    (tmp_path / "plain.pt").write_bytes(b"not a zip")
    assert labelfree.is_labelfree_file(tmp_path / "plain.pt")
    assert not labelfree.is_labelfree_file(tmp_path / "absent.npz")


def test_without_torch_import_works_and_loading_says_what_is_missing(small, tmp_path):
    path = tmp_path / "model.pt"
    save_labelfree(small[2], path)
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] == 'torch':\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import noisestat, noisestat.cli, noisestat.pipeline\n"
        "from noisestat.predict import load_predictor\n"
        "from noisestat.errors import ModelError\n"
        "try:\n"
        f"    load_predictor({str(path)!r})\n"
        "except ModelError as exc:\n"
        "    print(exc)\n"
        "assert 'torch' not in sys.modules\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == labelfree.MISSING_TORCH


def test_training_refuses_bad_pairs():
    x, y = pair((32, 32))
    with pytest.raises(Exception, match="differs from its input"):
        train_labelfree(x, y[:16], **SMALL)
    with pytest.raises(Exception, match="one target per input"):
        train_labelfree([x, x], [y], **SMALL)
    with pytest.raises(Exception, match="constant"):
        train_labelfree(x, np.ones_like(y), **SMALL)
    with pytest.raises(Exception, match="NaN"):
        train_labelfree(x, np.where(y > y.mean(), np.nan, y), **SMALL)
    with pytest.raises(Exception, match="depth must be"):
        train_labelfree(x, y, **{**SMALL, "depth": 9})


def test_training_on_coded_inputs_records_the_codec():
    x, y = pair((32, 32))
    model = train_labelfree(x, y, codec="bitdepth:bits=8,mode=shift", **SMALL)
    assert model.header["training"]["codec"] == "bitdepth:bits=8,mode=shift"
    assert model.header["normalisation"]["input_mean"] != pytest.approx(x.mean())  # trained on the decoded image


def test_cli_default_steps_is_the_library_default():
    from noisestat.cli import _parser

    args = _parser().parse_args(["train-labelfree", "--input", "a.tif", "--target", "b.tif", "-o", "m.pt"])
    assert args.steps == labelfree.DEFAULT_STEPS


def test_cli_trains_on_a_pair_and_refuses_bad_inputs(tmp_path, capsys, monkeypatch):
    x, y = pair((48, 48))
    tifffile.imwrite(tmp_path / "in.tif", x)
    tifffile.imwrite(tmp_path / "target.tif", y.astype(np.float32))
    tifffile.imwrite(tmp_path / "small.tif", y[:32].astype(np.float32))
    args = ["train-labelfree", "--input", str(tmp_path / "in.tif"), "--target", str(tmp_path / "target.tif"),
            "--steps", "2", "--seed", "1"]
    assert main([*args, "-o", str(tmp_path / "m.pt")]) == 0
    out = capsys.readouterr().out
    assert "for 2 steps" in out and "final loss" in out and f"wrote {tmp_path / 'm.pt'}" in out
    model = load_predictor(tmp_path / "m.pt")
    assert model.header["training"]["pairs"][0]["input"] == "in.tif"
    # the same training writes the same file, byte for byte, from any working folder
    assert main([*args, "-o", str(tmp_path / "again.pt")]) == 0
    assert (tmp_path / "again.pt").read_bytes() == (tmp_path / "m.pt").read_bytes()
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert main(["train-labelfree", "--input", "../in.tif", "--target", "../target.tif", "--steps", "2", "--seed", "1",
                 "-o", "../from_sub.pt"]) == 0
    assert (tmp_path / "from_sub.pt").read_bytes() == (tmp_path / "m.pt").read_bytes()
    capsys.readouterr()
    # the output is never an input
    before = (tmp_path / "in.tif").read_bytes()
    assert main([*args, "-o", str(tmp_path / "in.tif")]) == 1
    assert (tmp_path / "in.tif").read_bytes() == before
    assert "in.tif" in capsys.readouterr().err
    # shapes differ: one line naming the target
    assert main(["train-labelfree", "--input", str(tmp_path / "in.tif"), "--target", str(tmp_path / "small.tif"),
                 "-o", str(tmp_path / "n.pt")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "small.tif: shape (32, 48) differs" in err
    assert not (tmp_path / "n.pt").exists()
    # a codec that needs the camera, without it
    assert main([*args, "--train-codec", "noiseaware:step=1", "-o", str(tmp_path / "c.pt")]) == 1
    assert "needs the camera profile" in capsys.readouterr().err


def test_cli_trains_on_coded_inputs_with_the_camera(tmp_path, capsys):
    from noisestat.camera._profile import save_profile

    x, y = pair((48, 48))
    tifffile.imwrite(tmp_path / "in.tif", x)
    tifffile.imwrite(tmp_path / "target.tif", y.astype(np.float32))
    save_profile(CAMERA, tmp_path / "cam.json")
    assert main(["train-labelfree", "--input", str(tmp_path / "in.tif"), "--target", str(tmp_path / "target.tif"),
                 "--steps", "1", "--train-codec", "noiseaware:step=1", "--camera", str(tmp_path / "cam.json"),
                 "-o", str(tmp_path / "c.pt")]) == 0
    assert "coded by noiseaware:step=1" in capsys.readouterr().out
    training = load_labelfree(tmp_path / "c.pt").header["training"]
    assert training["codec"] == "noiseaware:step=1" and training["camera"]["path"] == "cam.json"


@pytest.mark.slow
def test_the_model_learns_the_mapping():
    """Trained on one simulated pair, on a held-out pair its MSE against the target is far below that
    of the input itself mapped to the target's units by the best affine fit."""
    x, y = pair((128, 128), seed=1)
    model = train_labelfree(x, y, steps=300, seed=0, width=8, batch=4, patch=48)
    held_x, held_y = pair((128, 128), seed=21)
    mse = float(np.mean((model.predict_values(held_x) - held_y) ** 2))
    design = np.c_[held_x.ravel().astype(float), np.ones(held_x.size)]
    fit = design @ np.linalg.lstsq(design, held_y.ravel(), rcond=None)[0]
    baseline = float(np.mean((fit - held_y.ravel()) ** 2))
    assert mse < baseline / 4, (mse, baseline)


@pytest.mark.slow
def test_a_trained_model_is_assessed_with_its_target_from_the_command_line(tmp_path, capsys):
    """train-labelfree on one simulated pair, then assess --model model.pt --target on another: per-pixel
    maps, a verdict, the metrics against the target (raw, replicas, codec) and the report; lossless
    changes nothing and a true second acquisition of the scene is not called not tolerable."""
    import json

    from noisestat.camera._profile import save_profile

    x, y = pair((64, 64), seed=3)
    held_x, held_y = pair((64, 64), seed=23)
    electrons, _ = simulate_scene((64, 64), rng=23)
    second = acquire(electrons, CAMERA, rng=999)  # the same scene acquired again
    for name, data in (("in.tif", x), ("target.tif", y.astype(np.float32)), ("raw.tif", held_x),
                       ("truth.tif", held_y.astype(np.float32)), ("second.tif", second)):
        tifffile.imwrite(tmp_path / name, data)
    save_profile(CAMERA, tmp_path / "cam.json")
    assert main(["train-labelfree", "--input", str(tmp_path / "in.tif"), "--target", str(tmp_path / "target.tif"),
                 "--steps", "60", "-o", str(tmp_path / "model.pt")]) == 0
    out = tmp_path / "out"
    assert main(["assess", str(tmp_path / "raw.tif"), "--camera", str(tmp_path / "cam.json"),
                 "--model", str(tmp_path / "model.pt"), "--target", str(tmp_path / "truth.tif"),
                 "--codec", "lossless", "--codec", f"file:path={tmp_path / 'second.tif'}",
                 "--codec", "bitdepth:bits=8", "--replicas", "6", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "metrics against the target" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kind"] == "values" and summary["provenance"]["predictor"] == "LabelFreePredictor"
    assert summary["provenance"]["inputs"]["model"]["sha256"] and summary["provenance"]["deterministic"] is True
    lossless, again, eight = summary["codecs"]
    assert lossless["max_abs_eps"] == 0 and lossless["tolerable"] is True
    for name in ("MSE", "PSNR", "SSIM", "r"):
        m = lossless["metrics"][name]
        assert m["raw"] == m["codec"] and m["replicas_sd"] > 0
    assert again["outcome"] != "not tolerable" and eight["tolerable"] is False
    # the prediction itself against the target: far closer than the input mapped by its best affine fit
    assert lossless["metrics"]["r"]["raw"] > 0.95
    eps = tifffile.imread(out / "maps" / "01_lossless_eps.tif")
    assert eps.shape == (64, 64) and not eps.any()
    assert (out / "maps" / "03_bitdepth_bits=8_eps.tif").is_file() and (out / "report.html").is_file()
