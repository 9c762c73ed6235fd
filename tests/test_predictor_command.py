"""``--predictor-command``: a user's tool (tests/_predictor_tool.py, a Gaussian then a threshold)
scored end to end through the command line, in its one-image and batch forms, with labels, mask
and values outputs, and every way the tool can fail said in one line that names the image."""

from __future__ import annotations

import json
import os
import shlex
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

import noisestat
from noisestat.camera import CameraProfile
from noisestat.cli import main
from noisestat.errors import InputError
from noisestat.io import PixelSize
from noisestat.io._hashing import file_sha256
from noisestat.predict._command import command_predictor
from noisestat.simulate import acquire, simulate_scene

from conftest import wait_until

TOOL = Path(__file__).resolve().parent / "_predictor_tool.py"
CAMERA = CameraProfile(gain_dn_per_e=0.5, offset_dn=100.0, read_noise_dn=2.0, bit_depth=16)
# half-way between the background (300 e-) and a cell (300 + 1500 e-), in DN
THRESHOLD_DN = CAMERA.offset_dn + CAMERA.gain_dn_per_e * (300.0 + 1500.0 / 2)
SPACING = (2.0, 0.5, 0.5)  # z, y, x in micrometres


def tool(*options, form="single"):
    """The template that runs the test tool with ``options``."""
    places = "{input} {output}" if form == "single" else "{input_dir} {output_dir} --batch"
    return (f"{shlex.quote(sys.executable)} {shlex.quote(str(TOOL))} {places} --threshold {THRESHOLD_DN:g} "
            + " ".join(shlex.quote(str(o)) for o in options))


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def plane(tmp_path_factory):
    """A 64 x 64 scene of a few cells, two acquisitions of it and the camera, as files."""
    electrons, _ = simulate_scene((64, 64), n_objects=6, radius=(3.0, 6.0), rng=5)
    return _acquired(tmp_path_factory.mktemp("plane"), electrons, 6, 7, (0.25, 0.25))


@pytest.fixture(scope="module")
def crowded_plane(tmp_path_factory):
    """A 256 x 256 scene of about a hundred cells: enough objects for a verdict."""
    electrons, _ = simulate_scene((256, 256), n_objects=160, radius=(3.0, 5.0), rng=1)
    return _acquired(tmp_path_factory.mktemp("crowded"), electrons, 2, 3, (0.25, 0.25))


@pytest.fixture(scope="module")
def volume(tmp_path_factory):
    """A 12 x 96 x 96 volume of about sixty ellipsoidal nuclei in anisotropic voxels (z 2 um, y and x
    0.5 um), acquired twice: enough objects for a verdict."""
    rng = np.random.default_rng(3)
    z, y, x = np.indices((12, 96, 96)) * np.asarray(SPACING)[:, None, None, None]
    inside, centres = np.zeros((12, 96, 96), bool), []
    for _ in range(5000):
        c = rng.uniform([5.0, 3.0, 3.0], [19.0, 45.0, 45.0])
        if all(np.linalg.norm((c - d) / [1.6, 1.0, 1.0]) > 6.5 for d in centres):
            centres.append(c)
            inside |= ((z - c[0]) / 4.0) ** 2 + ((y - c[1]) / 2.0) ** 2 + ((x - c[2]) / 2.0) ** 2 <= 1
    electrons = 300.0 + 1500.0 * ndi.gaussian_filter(inside.astype(float), 0.8)
    return _acquired(tmp_path_factory.mktemp("volume"), electrons, 1, 2, SPACING[1:], z=SPACING[0])


def _acquired(folder: Path, electrons, seed, second_seed, size, z=None) -> Path:
    """raw.tif and second.tif (two acquisitions of ``electrons``, ImageJ files of pixel ``size`` in
    micrometres, ``z`` apart for a volume) and camera.json in ``folder``."""
    metadata = {"unit": "um", **({"axes": "ZYX", "spacing": z} if z is not None else {})}
    for name, s in (("raw.tif", seed), ("second.tif", second_seed)):
        tifffile.imwrite(folder / name, acquire(electrons, CAMERA, s), imagej=True,
                         resolution=(1 / size[1], 1 / size[0]), metadata=metadata)
    (folder / "camera.json").write_text(json.dumps({"gain_dn_per_e": 0.5, "offset_dn": 100.0, "read_noise_dn": 2.0,
                                                   "bit_depth": 16}))
    return folder


def assess(capsys, folder, template, out, *extra, codecs=("lossless",), replicas=3):
    codec_args = [a for c in codecs for a in ("--codec", c)]
    return run(capsys, "assess", folder / "raw.tif", "--camera", folder / "camera.json", "--predictor-command",
               template, *codec_args, "--replicas", replicas, "-o", out, *extra)


def _judged(capsys, folder, out, size):
    """Assess ``folder``'s raw image with the tool in its batch form (the input files must say the
    pixel ``size``), against lossless and the second acquisition; the summary and the second's spec."""
    second = f"file:path={folder / 'second.tif'}"
    code, _, err = assess(capsys, folder, tool("--expect-size", size, form="batch"), out,
                          codecs=("lossless", second), replicas=6)
    assert code == 0, err
    return json.loads((out / "summary.json").read_text()), second


@pytest.mark.slow
def test_plane_scored_end_to_end_lossless_zero_and_a_second_acquisition_tolerable(capsys, tmp_path, crowded_plane):
    summary, second = _judged(capsys, crowded_plane, tmp_path / "o", 0.25)
    codecs = {c["spec"]: c for c in summary["codecs"]}
    assert summary["raw"]["N_tot"]["value"] >= 80
    assert codecs["lossless"]["outcome"] == "tolerable"
    assert all(p["mean_eps"] == 0 and p["frac_abs_eps_lt_1"] == 1 for p in codecs["lossless"]["parameters"].values())
    assert codecs[second]["outcome"] == "tolerable"
    record = summary["provenance"]["inputs"]["predictor"]
    assert record["command"] == tool("--expect-size", 0.25, form="batch") and record["form"] == "batch"
    assert record["script"] == str(TOOL) and record["script_sha256"] == file_sha256(TOOL)
    assert record["path"] == str(TOOL) and record["sha256"] == file_sha256(TOOL)
    assert record["executable_sha256"] == file_sha256(record["executable"])
    assert record["version"] is None  # an interpreter is not asked its version: it is not the tool's
    assert summary["provenance"]["classifier"] == record


@pytest.mark.slow
def test_volume_scored_end_to_end_with_its_voxel_size(capsys, tmp_path, volume):
    # the tool refuses an input that does not say the voxel size (x 0.5 um, slices 2 um apart)
    summary, second = _judged(capsys, volume, tmp_path / "o", "0.5,2.0")
    codecs = {c["spec"]: c for c in summary["codecs"]}
    assert summary["raw"]["N_tot"]["value"] >= 40
    assert codecs["lossless"]["outcome"] == "tolerable"
    assert all(p["mean_eps"] == 0 for p in codecs["lossless"]["parameters"].values())
    assert codecs[second]["outcome"] == "tolerable"


@pytest.mark.slow
def test_batch_form_gives_the_single_forms_numbers_in_one_call(capsys, tmp_path, plane):
    calls = tmp_path / "calls.txt"
    second = f"file:path={plane / 'second.tif'}"
    code, _, err = assess(capsys, plane, tool("--calls", calls, form="batch"), tmp_path / "batch",
                          codecs=("lossless", second))
    assert code == 0, err
    # one worker: the raw image, the replicas, the null pairs and the decoded image in one call
    assert calls.read_text().count("call") == 1
    code, _, err = assess(capsys, plane, tool("--calls", calls, "--expect-size", 0.25), tmp_path / "single",
                          codecs=("lossless", second))
    assert code == 0, err
    assert calls.read_text().count("call") > 2
    batch, single = (json.loads((tmp_path / n / "summary.json").read_text()) for n in ("batch", "single"))
    assert batch["codecs"] == single["codecs"] and batch["raw"] == single["raw"]
    assert (tmp_path / "batch" / "objects.csv").read_bytes() == (tmp_path / "single" / "objects.csv").read_bytes()
    lossless = {c["spec"]: c for c in single["codecs"]}["lossless"]
    assert single["raw"]["N_tot"]["value"] >= 3
    assert all(p["mean_eps"] == 0 for p in lossless["parameters"].values() if p["n"])


def test_mask_output_is_labelled_as_noisestat_labels_masks(tmp_path, plane):
    image = tifffile.imread(plane / "raw.tif")
    labels_tool, _ = command_predictor(tool(), output="labels")
    mask_tool, record = command_predictor(tool("--output", "mask", form="batch"), output="mask")
    assert record["output"] == "mask" and record["form"] == "batch"
    expected = labels_tool.segment(image)
    got = mask_tool.segment_batch([image, image[::-1].copy()])
    np.testing.assert_array_equal(got[0], expected)
    assert int(got[1].max()) == int(expected.max())
    assert noisestat.predict.predictor_kind(mask_tool) == "labels"


def test_values_output_is_a_whole_image_value_predictor(tmp_path, plane):
    image = tifffile.imread(plane / "raw.tif")
    model, _ = command_predictor(tool("--output", "values"), output="values")
    assert noisestat.predict.predictor_kind(model) == "values" and model.whole_image
    result = noisestat.assess_values(image, CAMERA, ["lossless", "bitdepth:bits=8,mode=shift"], model, replicas=3,
                                     seed=0, tile=16)
    from scipy import ndimage as ndi

    np.testing.assert_allclose(result.raw_values, ndi.gaussian_filter(image.astype(float), 1.0), rtol=1e-6)
    lossless, coarse = result.codecs
    assert np.all(lossless.eps == 0) and np.abs(coarse.eps).max() > 1
    assert result.provenance["classifier"]["output"] == "values"


@pytest.mark.parametrize("template, message", [
    ("", "--predictor-command is empty"),
    ("   ", "--predictor-command is empty"),
    ("mytool --threshold 3", "needs {input} and {output}"),
    ("mytool {input} {output_dir}", "mixes {input} (one image a call) with {output_dir}"),
    ("mytool {input} result.tif", "has {input} but no {output}"),
    ("mytool {input_dir}", "has {input_dir} but no {output_dir}"),
    ("mytool 'unbalanced {input} {output}", "cannot be split into words"),
    ("no-such-tool-anywhere {input} {output}", "'no-such-tool-anywhere': not found on PATH"),
    ("./no/such/tool {input} {output}", "no such executable file"),
])
def test_bad_templates_are_refused_in_one_line_before_any_work(capsys, tmp_path, plane, monkeypatch, template,
                                                                  message):
    with pytest.raises(InputError, match="predictor-command"):
        command_predictor(template)
    monkeypatch.setattr("noisestat.pipeline.assess", lambda *a, **k: pytest.fail("work started"))
    code, _, err = assess(capsys, plane, template, tmp_path / "o")
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o").exists()


def _failures():
    return {
        "exit": ("exited with status 3", "RuntimeError: the model file is corrupt"),
        "missing": ("output output.tif is missing (the tool exited with status 0 but wrote no output.tif)",
                    "no objects found, nothing written"),
        "garbage": ("output.tif is not a readable TIFF", None),
        "shape": ("has shape (64, 32); the image has (64, 64)", None),
        "float": ("holds float32 values; --predictor-output labels needs integer ids", None),
    }


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """tempfile's folder for this test alone, to see that nothing is left in it."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.mark.parametrize("how", list(_failures()))
def test_a_failing_tool_is_one_line_naming_the_image_and_leaves_nothing(capsys, tmp_path, plane, private_tmp, how):
    said, stderr_line = _failures()[how]
    runs = tmp_path / "runs"
    runs.mkdir()
    code, out, err = assess(capsys, plane, tool("--fail", how), runs / "o")
    assert code == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("noisestat: error: raw image: "), err
    assert said in lines[0]
    if stderr_line:
        assert lines[0].endswith(stderr_line)
    assert list(private_tmp.iterdir()) == []   # the temporary folders are gone
    assert list(runs.iterdir()) == []          # no output folder was made


@pytest.mark.slow
def test_a_replica_that_fails_is_named_and_a_batch_names_its_image(capsys, tmp_path, plane, private_tmp):
    calls = tmp_path / "calls.txt"
    # one image a call: the raw image first, then replica 1, 2, 3: the fourth call fails
    code, _, err = assess(capsys, plane, tool("--fail", "exit", "--fail-after", 3, "--calls", calls), tmp_path / "a")
    assert code == 1 and err.startswith("noisestat: error: replica 3: the predictor command exited with status 3")
    # a batch: the image whose output is wrong is named (the raw image is the batch's first)
    code, _, err = assess(capsys, plane, tool("--fail", "shape", form="batch"), tmp_path / "b")
    assert code == 1 and err.startswith("noisestat: error: raw image: the predictor command's in_0000.tif has shape")
    # a batch that fails as a whole names its images
    code, _, err = assess(capsys, plane, tool("--fail", "exit", form="batch"), tmp_path / "c")
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "the batch of raw image, replica 1," in err and "a batch of" in err
    assert err.strip().endswith("RuntimeError: the model file is corrupt")
    assert list(private_tmp.iterdir()) == []
    assert not any((tmp_path / n).exists() for n in "abc")


def test_a_tool_past_its_timeout_is_stopped_with_its_children(capsys, tmp_path, plane, private_tmp, monkeypatch):
    child = tmp_path / "child.pid"
    monkeypatch.setenv("NOISESTAT_TOOL_CHILD", str(child))
    code, _, err = assess(capsys, plane, tool("--fail", "sleep"), tmp_path / "o", "--predictor-timeout", 8)
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert "raw image: the predictor command ran past --predictor-timeout 8 s on the image and was stopped" in err
    # the tool's own child, in its process group, is gone too
    pid = int(child.read_text())

    def gone():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # a zombie until its parent (init) reaps it counts as gone
        try:
            return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
        except OSError:
            return True

    wait_until(gone, "the tool's child process to be killed")
    assert list(private_tmp.iterdir()) == [] and not (tmp_path / "o").exists()


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie until init reaps it counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def test_a_tool_that_leaves_a_process_running_is_not_waited_for(capsys, tmp_path, plane, private_tmp, monkeypatch):
    """The tool exits at once but leaves a child holding its stderr open: noisestat waits for the tool
    only (within the timeout given as a safety net, which the tool itself never nears), and the child is
    stopped with the tool's process group."""
    child = tmp_path / "child.pid"
    monkeypatch.setenv("NOISESTAT_TOOL_CHILD", str(child))
    code, _, err = assess(capsys, plane, tool("--fail", "daemon"), tmp_path / "o", "--predictor-timeout", 300)
    assert code == 0, err
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["n_objects_raw"] > 0
    wait_until(lambda: _gone(int(child.read_text())), "the tool's leftover child process to be stopped")
    assert list(private_tmp.iterdir()) == []


def test_the_record_hashes_a_plain_executable_and_asks_its_version(tmp_path):
    exe = tmp_path / "segtool"
    exe.write_text("#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'segtool 1.4.2'; exit 0; fi\ncp \"$1\" \"$2\"\n")
    exe.chmod(0o755)
    model, record = command_predictor(f"{exe} {{input}} {{output}}")
    assert record["executable"] == str(exe) and record["executable_sha256"] == file_sha256(exe)
    assert record["version"] == "segtool 1.4.2" and record["script"] is None
    assert model.describe() == record
    # a tool that copies its input gives the image itself as labels
    model.pixel_size = PixelSize(0.25, 0.25, "µm")
    image = np.arange(64, dtype=np.uint16).reshape(8, 8)
    np.testing.assert_array_equal(model.segment(image), image)
    silent = tmp_path / "quiet"
    silent.write_text("#!/bin/sh\nexit 1\n")
    silent.chmod(0o755)
    assert command_predictor(f"{silent} {{input}} {{output}}")[1]["version"] is None
