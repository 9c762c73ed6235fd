"""Every writer keeps what is not its own: inputs, other folders, previous results.

The output rules (noisestat/io/_outputs.py): a folder is replaced only when noisestat wrote it (it holds
``.noisestat-output``) or it is empty; never when it is, holds or lies inside an input; never the
current folder. Missing parents are created; a file or folder in the way, a refused write and a
full disk end in one line and exit 1 with the previous result untouched; a killed run's
leftovers are cleaned by the next run; workers die with the main process.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from noisestat.io import _outputs as _io
from noisestat.io._atomic import write_text_atomic
from noisestat.cli import _cpu_count, main
from noisestat.errors import OutputError
from noisestat.simulate import acquire, simulate_scene, sparse_labels

from conftest import CAMERA, as_in_a_terminal, wait_until

MARKER = _io.OUTPUT_MARKER


# ----------------------------------------------------------------------------- data and helpers

@pytest.fixture(scope="module")
def scene_arrays():
    electrons, truth = simulate_scene((96, 96), rng=21)
    return acquire(electrons, CAMERA, 22), sparse_labels(truth, rng=23)


@pytest.fixture
def data(tmp_path, scene_arrays):
    """A user's folder: raw image, labels, camera profile and a note of their own."""
    raw, labels = scene_arrays
    d = tmp_path / "data"
    d.mkdir()
    tifffile.imwrite(d / "raw.tif", raw)
    tifffile.imwrite(d / "labels.tif", labels)
    (d / "camera.json").write_text(json.dumps({"gain_dn_per_e": CAMERA.gain_dn_per_e, "offset_dn": CAMERA.offset_dn,
                                              "read_noise_dn": CAMERA.read_noise_dn, "bit_depth": CAMERA.bit_depth}))
    (d / "notes.txt").write_text("my notes\n")
    return d


@pytest.fixture(scope="module")
def flat_series(tmp_path_factory):
    """A small simulated flat-field series: eight light levels and a dark stack, as TIFF files."""
    from noisestat.demo import demo_camera

    d = tmp_path_factory.mktemp("flats")
    cam = demo_camera((32, 32), 0)
    saturation = cam.model.full_well_e / cam.model.quantum_efficiency
    series = cam.photon_series(np.linspace(0, 1.2 * saturation, 9)[1:], 0.01, rng=np.random.SeedSequence(1))
    flats = []
    for k, level in enumerate(series):
        flats.append(d / f"level_{k}.tif")
        tifffile.imwrite(flats[-1], level["bright"])
    tifffile.imwrite(d / "dark.tif", series[0]["dark"])
    return flats, d / "dark.tif"


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` (hidden ones included) with the SHA-256 of its bytes."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(folder: Path) -> list[str]:
    """Hidden staging leftovers (``.NAME.*.partial``, ``.NAME.old-*``, ``*.tmp``) in ``folder``."""
    return sorted(p.name for p in folder.iterdir()
                  if p.name.startswith(".") and (".partial" in p.name or ".old-" in p.name or p.name.endswith(".tmp")
                                                 or p.name.startswith(".noisestat-probe")))


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("noisestat: error: "), err
    return lines[0]


def assess_argv(d: Path, out, *extra):
    return ["assess", d / "raw.tif", "--camera", d / "camera.json", "--labels", d / "labels.tif",
            "--codec", "lossless", "--replicas", "2", "--quiet", "-o", out, *extra]


def bench_argv(d: Path, out, *extra):
    return ["compress-bench", d / "raw.tif", "--codec", "lossless", "-o", out, *extra]


def tune_argv(d: Path, out):
    return ["tune", d / "raw.tif", "--camera", d / "camera.json", "--labels", d / "labels.tif", "--codec", "jpeg",
            "--replicas", "2", "--max-evaluations", "2", "--quiet", "-o", out]


def train_argv(d: Path, out):
    return ["train", d / "raw.tif", "--labels", d / "labels.tif", "--trees", "5", "-o", out]


def calibrate_argv(flat_series, out, plot=None):
    flats, dark = flat_series
    return ["calibrate", "--flat", *flats, "--dark", dark, "-o", out, *(["--plot", plot] if plot else [])]


class _FullDisk:
    """A file whose every write fails as on a full disk."""

    def __init__(self, handle):
        self._handle = handle

    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.close()
        return False


@pytest.fixture
def full_disk(monkeypatch):
    """Call ``full_disk()`` to make every file noisestat writes from then on fail with ENOSPC."""
    real = os.fdopen

    def arm():
        monkeypatch.setattr(os, "fdopen", lambda fd, *a, **k: _FullDisk(real(fd, *a, **k)))
    return arm


def _chmod_stops_root() -> bool:
    """False where we run as root (or otherwise ignore permissions): chmod 0o555 does not stop writes."""
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o555)
        try:
            Path(d, "probe").write_text("x")
        except PermissionError:
            return True
        finally:
            os.chmod(d, 0o755)
    return False


@pytest.fixture
def read_only(monkeypatch):
    """``read_only(folder)``: make ``folder`` refuse new entries. With chmod where it works; as root,
    where it does not, by making the calls that create or rename entries in it raise EACCES."""
    made = []
    if _chmod_stops_root():
        def protect(folder):
            os.chmod(folder, 0o555)
            made.append(folder)
        yield protect
        for folder in made:
            os.chmod(folder, 0o755)
        return

    protected: list[Path] = []

    def inside(path) -> bool:
        p = Path(os.path.abspath(path))
        return any(p.parent == f or p == f for f in protected)

    def denied(path):
        return PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    real_mkdtemp, real_mkstemp, real_mkdir, real_replace = tempfile.mkdtemp, tempfile.mkstemp, os.mkdir, os.replace

    def mkdtemp(suffix=None, prefix=None, dir=None):
        if dir is not None and inside(Path(dir) / "x"):
            raise denied(dir)
        return real_mkdtemp(suffix, prefix, dir)

    def mkstemp(suffix=None, prefix=None, dir=None, text=False):
        if dir is not None and inside(Path(dir) / "x"):
            raise denied(dir)
        return real_mkstemp(suffix, prefix, dir, text)

    def mkdir(path, *args, **kwargs):
        if inside(path) and Path(path) not in protected:
            raise denied(path)
        return real_mkdir(path, *args, **kwargs)

    def replace(src, dst, *args, **kwargs):
        if inside(dst) or inside(src):
            raise denied(dst)
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "replace", replace)
    yield lambda folder: protected.append(Path(os.path.abspath(folder)))


def test_read_only_emulation_refuses_writes(tmp_path, read_only):
    # the fixture itself must bite, or the read-only tests below prove nothing
    read_only(tmp_path)
    with pytest.raises(OutputError, match="ermission"):
        write_text_atomic(tmp_path / "x.txt", "x")
    assert not (tmp_path / "x.txt").exists()


# ----------------------------------------------------------------------------- inputs are never an output

@pytest.mark.parametrize("where", ["data", "parent", "image", "labels", "camera"])
def test_assess_refuses_an_output_that_is_or_holds_an_input(data, capsys, monkeypatch, where):
    before = snapshot(data)
    out = {"data": data, "parent": data.parent, "image": data / "raw.tif", "labels": data / "labels.tif",
           "camera": data / "camera.json"}[where]
    monkeypatch.setattr("noisestat.pipeline.assess", lambda *a, **k: pytest.fail("work started"))
    code, _, err = run(capsys, *assess_argv(data, out))
    assert code == 1
    line = one_error_line(err)
    assert str(out) in line and "input" in line
    assert snapshot(data) == before and leftovers(data) == [] and leftovers(data.parent) == []


def test_assess_refuses_the_folder_holding_its_model(data, capsys):
    model = data / "prev" / "model.npz"
    assert run(capsys, *train_argv(data, model))[0] == 0
    before = snapshot(data)
    code, _, err = run(capsys, "assess", data / "raw.tif", "--camera", data / "camera.json", "--model", model,
                       "--codec", "lossless", "--replicas", "2", "--quiet", "-o", data / "prev")
    assert code == 1 and "model.npz" in one_error_line(err)
    assert snapshot(data) == before


def test_assess_refuses_the_folder_holding_a_decoded_image_it_scores(data, capsys):
    ext = data.parent / "ext"
    ext.mkdir()
    (ext / MARKER).write_text('{"noisestat": "0"}')  # even a folder noisestat wrote
    (ext / "decoded.tif").write_bytes((data / "raw.tif").read_bytes())
    before = snapshot(ext)
    argv = assess_argv(data, ext)
    argv[argv.index("lossless")] = f"file:path={ext / 'decoded.tif'}"
    code, _, err = run(capsys, *argv)
    assert code == 1 and "decoded.tif" in one_error_line(err)
    assert snapshot(ext) == before


def test_camera_pixel_map_file_is_an_input(tmp_path, scene_arrays):
    from noisestat.camera import CameraProfile, PixelMaps, save_profile

    raw, _ = scene_arrays
    ones = np.ones(raw.shape)
    profile = CameraProfile(0.5, 100.0, 2.0, 16, pixel_maps=PixelMaps(100 * ones, 4 * ones, 0.5 * ones))
    save_profile(profile, tmp_path / "cam.json")
    maps = tmp_path / "cam_pixelmaps.tif"
    assert maps.is_file()
    for out in (maps, tmp_path):
        with pytest.raises(OutputError, match="input"):
            _io.check_output_dir(out, inputs=[tmp_path / "cam.json", maps])


def test_train_and_calibrate_refuse_to_overwrite_an_input(data, flat_series, capsys):
    before = snapshot(data)
    for argv in (train_argv(data, data / "labels.tif"), train_argv(data, data / "raw.tif")):
        code, _, err = run(capsys, *argv)
        assert code == 1 and "input" in one_error_line(err)
    flats, dark = flat_series
    flat_before = snapshot(dark.parent)
    for out, plot in ((dark, None), (dark.parent / "cam.json", flats[0]),
                      (dark.parent / "cam.json", dark.parent / "cam.json")):
        code, _, err = run(capsys, *calibrate_argv(flat_series, out, plot))
        assert code == 1, err
        one_error_line(err)
    assert snapshot(data) == before and snapshot(dark.parent) == flat_before


def test_assess_in_the_input_folder_keeps_everything(data, capsys, monkeypatch):
    """The reported case: `cd data && noisestat assess raw.tif ... -o .` (and -o data, -o '')."""
    before = snapshot(data)
    monkeypatch.chdir(data)
    for out in (".", "", str(data), "../data"):
        code, _, err = run(capsys, "assess", "raw.tif", "--camera", "camera.json", "--labels", "labels.tif",
                           "--codec", "lossless", "--replicas", "2", "--quiet", "-o", out)
        assert code == 1
        one_error_line(err)
        assert snapshot(data) == before
        assert leftovers(data) == [] and leftovers(data.parent) == []


def test_dot_in_an_empty_folder_is_refused_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    here = tmp_path / "empty"
    here.mkdir()
    monkeypatch.chdir(here)
    for argv in (bench_argv(tmp_path, ".") , bench_argv(tmp_path, "")):
        code, _, err = run(capsys, *argv)
        assert code == 1 and "folder" in one_error_line(err)
    assert list(here.iterdir()) == [] and leftovers(tmp_path) == []


# ----------------------------------------------------------------------------- the marker rule

def test_assess_marks_its_folder_and_replaces_only_its_own(data, capsys):
    out = data.parent / "results"
    code, _, err = run(capsys, *assess_argv(data, out))
    assert code == 0, err
    marker = json.loads((out / MARKER).read_text())
    assert marker["command"] == "assess" and marker["noisestat"]
    assert (out / "summary.json").is_file() and (out / "report.html").is_file()
    assert "summary.json" in marker["files"] and MARKER not in marker["files"]
    # a file the user put in the folder since is not noisestat's: the folder is not replaced, the file kept
    (out / "notes.txt").write_text("the user's notes")
    (out / "figures" / "mine.png").write_bytes(b"the user's figure")
    code, _, err = run(capsys, *assess_argv(data, out, "--seed", "1"))
    assert code == 1 and "figures/mine.png and 1 more file(s), which noisestat did not write there" in one_error_line(err)
    assert (out / "notes.txt").read_text() == "the user's notes"
    assert json.loads((out / "summary.json").read_text())["seed"] == 0
    (out / "notes.txt").unlink()
    (out / "figures" / "mine.png").unlink()
    # without them, a second run replaces the folder noisestat wrote, as a whole
    code, _, err = run(capsys, *assess_argv(data, out, "--seed", "1"))
    assert code == 0, err
    assert json.loads((out / "summary.json").read_text())["seed"] == 1
    assert leftovers(data.parent) == []
    # a folder of an earlier noisestat that listed no files: its files cannot be told from the user's, so
    # it is refused and kept as it is
    marker = json.loads((out / MARKER).read_text())
    del marker["files"]
    (out / MARKER).write_text(json.dumps(marker))
    (out / "stray.txt").write_text("from an earlier run")
    code, _, err = run(capsys, *assess_argv(data, out, "--seed", "2"))
    assert code == 1 and "was written by an earlier noisestat that did not list its files" in one_error_line(err)
    assert (out / "stray.txt").exists() and json.loads((out / "summary.json").read_text())["seed"] == 1


def test_a_folder_of_other_files_is_refused_before_any_work(data, capsys, monkeypatch):
    out = data.parent / "theirs"
    out.mkdir()
    (out / "thesis.tex").write_text("months of work")
    monkeypatch.setattr("noisestat.pipeline.assess", lambda *a, **k: pytest.fail("work started"))
    code, _, err = run(capsys, *assess_argv(data, out))
    assert code == 1
    line = one_error_line(err)
    assert "theirs" in line and MARKER in line and "choose a new or empty folder" in line
    assert (out / "thesis.tex").read_text() == "months of work" and sorted(os.listdir(out)) == ["thesis.tex"]


@pytest.mark.parametrize("writer", ["compress-bench", "tune", "demo"])
def test_every_folder_writer_follows_the_marker_rule(data, capsys, writer):
    out = data.parent / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    argv = {"compress-bench": bench_argv(data, out), "tune": tune_argv(data, out),
            "demo": ["demo", "-o", out]}[writer]
    code, _, err = run(capsys, *argv)
    assert code == 1 and MARKER in one_error_line(err)
    assert sorted(os.listdir(out)) == ["keep.txt"]


def test_an_empty_folder_is_used_and_a_marked_one_replaced(data, capsys):
    out = data.parent / "bench"
    out.mkdir()
    assert run(capsys, *bench_argv(data, out))[0] == 0
    assert json.loads((out / MARKER).read_text())["command"] == "compress-bench"
    assert (out / "metrics.csv").is_file()
    first = (out / "summary.json").read_bytes()
    code, _, err = run(capsys, *bench_argv(data, out))
    assert code == 0, err
    assert (out / "summary.json").read_bytes() == first and leftovers(data.parent) == []


# ----------------------------------------------------------------------------- a killed run's leftovers

def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_leftovers_are_removed_and_live_ones_kept(tmp_path):
    dead = _dead_pid()
    out = tmp_path / "out"
    out.mkdir()
    (out / MARKER).write_text('{"noisestat": "0"}')
    stale = [tmp_path / f".out.{dead}-abc123.partial", tmp_path / f".out.old-{dead}-0a1b2c3d"]
    legacy = tmp_path / ".out.k2j4h5l6.partial"  # no process id: judged by its age
    live = tmp_path / f".out.{os.getpid()}-xyz.partial"
    theirs = [tmp_path / ".out.2024", tmp_path / f".other.{dead}-abc.partial"]
    for folder in (*stale, legacy, live, *theirs):
        folder.mkdir()
        (folder / MARKER).write_text('{"noisestat": "0"}')  # as noisestat writes every staged folder
        (folder / "f").write_text("x")
    old = time.time() - _io.STALE_AFTER_S - 60
    os.utime(legacy, (old, old))
    removed = _io.clean_stale(out)
    assert sorted(removed) == sorted([*stale, legacy])
    assert not any(p.exists() for p in (*stale, legacy))
    assert live.exists() and all(p.exists() for p in theirs) and out.exists()


def test_a_folder_with_a_leftover_name_but_not_written_by_noisestat_is_kept(tmp_path):
    dead = _dead_pid()
    names = [f".out.{dead}-abc123.partial", f".out.old-{dead}-0a1b2c3d", ".out.k2j4h5l6.partial"]
    old = time.time() - _io.STALE_AFTER_S - 60
    for name in names:
        (tmp_path / name).mkdir()
        (tmp_path / name / "my_data.tif").write_text("a user's file")
        os.utime(tmp_path / name, (old, old))
    empty = tmp_path / f".out.{dead}-killed.partial"   # a run killed before it wrote its marker
    empty.mkdir()
    assert _io.clean_stale(tmp_path / "out") == [empty]
    assert all((tmp_path / name / "my_data.tif").exists() for name in names) and not empty.exists()


def test_a_run_killed_between_the_two_renames_gets_its_previous_folder_back(tmp_path):
    dead = _dead_pid()
    previous = tmp_path / f".out.old-{dead}-deadbeef"
    previous.mkdir()
    (previous / MARKER).write_text('{"noisestat": "0"}')
    (previous / "summary.json").write_text("{}")
    (tmp_path / f".out.{dead}-abc.partial").mkdir()
    _io.clean_stale(tmp_path / "out")
    assert sorted(os.listdir(tmp_path / "out")) == [MARKER, "summary.json"]
    assert leftovers(tmp_path) == []


def test_the_next_run_cleans_what_a_killed_run_left(data, capsys):
    dead = _dead_pid()
    for name in (f".bench.{dead}-abc.partial", f".bench.old-{dead}-0123abcd"):
        (data.parent / name).mkdir()
        (data.parent / name / MARKER).write_text('{"noisestat": "0", "files": ["half.csv"]}')
        (data.parent / name / "half.csv").write_text("x")
    (data.parent / f".model.npz.{dead}-q1w2e3.tmp").write_text("half a model")
    code, _, err = run(capsys, *bench_argv(data, data.parent / "bench"))
    assert code == 0, err
    assert run(capsys, *train_argv(data, data.parent / "model.npz"))[0] == 0
    assert leftovers(data.parent) == []
    assert sorted(os.listdir(data.parent / "bench")) == [MARKER, "metrics.csv", "summary.json"]


# ----------------------------------------------------------------------------- missing parents, things in the way

def test_writers_create_missing_parents(data, flat_series, tmp_path, capsys):
    deep = tmp_path / "a" / "b"
    assert run(capsys, *bench_argv(data, deep / "bench"))[0] == 0
    assert run(capsys, *train_argv(data, deep / "m" / "model.npz"))[0] == 0
    code, _, err = run(capsys, *calibrate_argv(flat_series, deep / "c" / "cam.json", deep / "p" / "ptc.png"))
    assert code == 0, err
    assert (deep / "bench" / "metrics.csv").is_file() and (deep / "m" / "model.npz").is_file()
    assert (deep / "c" / "cam.json").is_file()
    assert (deep / "p" / "ptc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_failed_run_creates_no_folders(data, tmp_path, capsys):
    code, _, err = run(capsys, "compress-bench", data / "raw.tif", "--codec", "jpeg:ratio=5000",
                       "-o", tmp_path / "x" / "y" / "bench")
    assert code == 1 and "cannot be reached" in one_error_line(err)
    assert not (tmp_path / "x").exists()


def test_a_file_in_the_way_of_an_output_folder(data, capsys):
    blocker = data.parent / "blocker"
    blocker.write_text("a file")
    for argv in (assess_argv(data, blocker), assess_argv(data, blocker / "sub"), bench_argv(data, blocker),
                 tune_argv(data, blocker), ["demo", "-o", blocker / "x"]):
        code, _, err = run(capsys, *argv)
        assert code == 1
        assert "blocker" in one_error_line(err) and "file" in err
    assert blocker.read_text() == "a file" and leftovers(data.parent) == []


def test_a_folder_in_the_way_of_an_output_file(data, flat_series, capsys):
    folder = data.parent / "taken"
    folder.mkdir()
    (folder / "x").write_text("x")
    for argv in (train_argv(data, folder), calibrate_argv(flat_series, folder),
                 calibrate_argv(flat_series, data.parent / "cam.json", folder),
                 train_argv(data, data / "notes.txt" / "model.npz")):
        code, _, err = run(capsys, *argv)
        assert code == 1, err
        assert "folder" in one_error_line(err)
    assert sorted(os.listdir(folder)) == ["x"] and not (data.parent / "cam.json").exists()


# ----------------------------------------------------------------------------- refused writes and a full disk

def test_read_only_place_is_refused_before_any_work(data, flat_series, tmp_path, capsys, read_only, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    read_only(locked)
    monkeypatch.setattr("noisestat.pipeline.assess", lambda *a, **k: pytest.fail("work started"))
    for argv in (assess_argv(data, locked / "r"), bench_argv(data, locked / "b"), train_argv(data, locked / "m.npz"),
                 calibrate_argv(flat_series, locked / "cam.json"), assess_argv(data, locked / "new" / "r")):
        code, _, err = run(capsys, *argv)
        assert code == 1
        line = one_error_line(err)
        assert "locked" in line and "ermission" in line
    assert list(locked.iterdir()) == []


def test_a_write_refused_at_the_end_keeps_the_previous_result(data, capsys, monkeypatch):
    out = data.parent / "results"
    assert run(capsys, *assess_argv(data, out))[0] == 0
    before = snapshot(out)
    real = os.replace

    def refuse_final(src, dst, *a, **k):
        if Path(src).name.endswith(".partial"):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dst))
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", refuse_final)
    code, _, err = run(capsys, *assess_argv(data, out, "--seed", "3"))
    assert code == 1
    line = one_error_line(err)
    assert str(out) in line and "ermission" in line
    assert snapshot(out) == before and leftovers(data.parent) == []


def test_full_disk_during_assess_keeps_the_previous_result(data, capsys, monkeypatch):
    out = data.parent / "results"
    assert run(capsys, *assess_argv(data, out))[0] == 0
    before = snapshot(out)

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("noisestat.report._tables.write_objects_parquet", disk_full)
    code, _, err = run(capsys, *assess_argv(data, out, "--seed", "4"))
    assert code == 1
    line = one_error_line(err)
    assert str(out) in line and "disk is full" in line and ".partial" not in line
    assert snapshot(out) == before and leftovers(data.parent) == []


@pytest.mark.parametrize("writer", ["compress-bench", "train", "calibrate", "tune"])
def test_full_disk_keeps_the_previous_result(data, flat_series, tmp_path, capsys, full_disk, writer):
    target = tmp_path / "res" / {"compress-bench": "bench", "train": "model.npz", "calibrate": "cam.json",
                                 "tune": "tune"}[writer]
    plot = tmp_path / "res" / "ptc.png"
    argv = {"compress-bench": bench_argv(data, target), "train": train_argv(data, target),
            "calibrate": calibrate_argv(flat_series, target, plot), "tune": tune_argv(data, target)}[writer]
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    before = snapshot(target.parent)
    full_disk()
    code, _, err = run(capsys, *argv)
    assert code == 1
    line = one_error_line(err)
    assert "disk is full" in line and str(target.parent) in line
    assert snapshot(target.parent) == before and leftovers(target.parent) == []


def test_full_disk_while_saving_a_profile_keeps_profile_and_maps_matching(tmp_path, full_disk):
    from noisestat.camera import CameraProfile, PixelMaps, load_profile, save_profile

    ones = np.ones((16, 16))
    first = CameraProfile(0.5, 100.0, 2.0, 16, pixel_maps=PixelMaps(100 * ones, 4 * ones, 0.5 * ones))
    save_profile(first, tmp_path / "cam.json")
    full_disk()
    second = CameraProfile(0.6, 90.0, 2.0, 16, pixel_maps=PixelMaps(90 * ones, 4 * ones, 0.6 * ones))
    with pytest.raises(OutputError, match="disk is full"):
        save_profile(second, tmp_path / "cam.json")
    back = load_profile(tmp_path / "cam.json")  # the checksum of the maps still matches
    assert back.gain_dn_per_e == 0.5 and np.all(back.pixel_maps.offset_dn == 100)
    assert leftovers(tmp_path) == []


def test_full_disk_in_the_demo_leaves_nothing(tmp_path, full_disk):
    from noisestat.demo import run_demo

    full_disk()
    with pytest.raises(OutputError, match="disk is full"):
        run_demo(tmp_path / "demo", shape=(192, 192), replicas=2)
    assert list(tmp_path.iterdir()) == []


def test_codec_train_checkpoint_path(tmp_path, capsys, full_disk):
    pytest.importorskip("torch", reason="codec-train needs the optional extra noisestat[learned] (torch)")
    pytest.importorskip("compressai", reason="codec-train needs the optional extra noisestat[learned] (compressai)")
    electrons, _ = simulate_scene((128, 128), rng=5)
    tifffile.imwrite(tmp_path / "train.tif", acquire(electrons, CAMERA, 6))  # codec-train's patches are 128 px
    argv = ["codec-train", tmp_path / "train.tif", "--arch", "bmshj2018-factorized", "--quality", "1", "--steps", "1"]
    (tmp_path / "dir.ckpt").mkdir()
    code, _, err = run(capsys, *argv, "-o", tmp_path / "dir.ckpt")
    assert code == 1 and "folder" in one_error_line(err)
    ckpt = tmp_path / "new" / "parents" / "c.ckpt"
    code, _, err = run(capsys, *argv, "-o", ckpt)
    assert code == 0, err
    assert ckpt.is_file()
    before = ckpt.read_bytes()
    full_disk()
    code, _, err = run(capsys, *argv, "--seed", "1", "-o", ckpt)
    assert code == 1 and "disk is full" in one_error_line(err)
    assert ckpt.read_bytes() == before and leftovers(ckpt.parent) == []


# ----------------------------------------------------------------------------- command-line values

@pytest.mark.parametrize("argv", [["demo", "--seed", "-1"], ["train", "x.tif", "--labels", "l.tif", "--seed", "-3",
                                                                 "-o", "m.npz"],
                                  ["demo", "--seed", "1.5"], ["demo", "--jobs", "0"], ["demo", "--jobs", "-2"]])
def test_bad_seed_or_jobs_is_a_usage_error(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("noisestat ") and "error: argument" in err[-1]
    assert not any("Traceback" in line for line in err)


@pytest.mark.parametrize("asked, warned", [("999", True), ("-1", False), ("1", False)])
def test_jobs_beyond_the_cores_are_capped_with_a_warning(data, capsys, monkeypatch, asked, warned):
    from noisestat.errors import NoisestatError

    cores = _cpu_count()
    seen = {}

    def record(*args, jobs, **kwargs):
        seen["jobs"] = jobs
        raise NoisestatError("stopped after reading --jobs")

    monkeypatch.setattr("noisestat.pipeline.assess_files", record)
    code, _, err = run(capsys, *assess_argv(data, data.parent / "r", "--jobs", asked))
    assert code == 1 and seen["jobs"] == (1 if asked == "1" else cores)
    warnings = [line for line in err.splitlines() if "warning" in line]
    if warned:
        assert warnings == [f"noisestat: warning: --jobs 999 is more than the {cores} CPU core(s) available; "
                            f"using {cores}"]
    else:
        assert warnings == []


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity on this system")
def test_jobs_are_capped_at_the_cores_this_process_may_use(capsys, monkeypatch):
    from noisestat.cli import _usable_jobs

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3})  # e.g. taskset -c 3
    assert _usable_jobs(4) == 1 and _usable_jobs(-1) == 1 and _usable_jobs(1) == 1
    assert capsys.readouterr().err.count("warning") == 1


# ----------------------------------------------------------------------------- processes and signals
# These tests start processes and wait for them to do something: each wait polls for its condition
# and fails only at a generous deadline (conftest.DEADLINE_S), so a busy machine makes them slower,
# never red; none asserts how long anything took.

_ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}

# A killed run's workers must be gone within this: well under the 300 s that loky's idle workers
# wait for work before ending on their own (joblib's idle_worker_timeout), so that workers which
# outlive their parent are caught, and generous beside the half second in which the watch notices.
WORKERS_GONE_S = 120.0


def _psutil():
    return pytest.importorskip("psutil", reason="psutil lists a process's children")


def _popen(argv: list, log: Path, **kwargs) -> subprocess.Popen:
    """Start ``argv`` with its error output in the file ``log`` (a pipe would keep a wait for its end
    going for as long as any worker, which inherits it, lives)."""
    with open(log, "w") as stream:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=stream, text=True, **kwargs)
    proc.log = log
    return proc


def _exited(proc: subprocess.Popen):
    """A reason to stop waiting for ``proc``: it has exited (with the end of its error output)."""
    if proc.poll() is None:
        return None
    return f"the process exited with code {proc.returncode}: {proc.log.read_text()[-2000:]}"


def _running(p) -> bool:
    """``p`` runs (a zombie, dead but not yet reaped by its new parent, does not)."""
    psutil = _psutil()
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _descendants(pid: int) -> dict:
    """The processes below ``pid`` with their command lines."""
    psutil = _psutil()
    kids = {}
    with contextlib.suppress(psutil.Error):
        for kid in psutil.Process(pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                kids[kid] = " ".join(kid.cmdline())
    return kids


def _loky_workers(proc: subprocess.Popen, *, at_least: int) -> dict:
    """The processes below ``proc`` (loky's workers and resource tracker) once ``at_least`` of
    them are loky worker processes."""
    def enough():
        kids = _descendants(proc.pid)
        return kids if sum("popen_loky" in line for line in kids.values()) >= at_least else None

    return wait_until(enough, f"{at_least} loky worker processes starting", failed=lambda: _exited(proc))


def _gone(procs: dict, *, within: float) -> list[str]:
    """Wait until none of ``procs`` runs, ``within`` seconds at most; the command lines of those
    still running then (they are killed, so that a failing test leaves nothing behind)."""
    psutil = _psutil()
    deadline = time.monotonic() + within
    while True:
        alive = [p for p in procs if _running(p)]
        if not alive or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    return [procs[p] for p in alive]


def _stop(proc: subprocess.Popen, kids: dict = ()) -> None:
    """Kill ``proc`` and ``kids`` if they still run and reap ``proc``: nothing outlives the test."""
    psutil = _psutil()
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for p in kids:
        with contextlib.suppress(psutil.Error):
            p.kill()


_WORKER_SCRIPT = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from joblib import Parallel, delayed
    if sys.argv[1] == "watch":
        from noisestat.engine._executors import watch_workers
        watch_workers()
    started = Path(sys.argv[2])
    def task(i):
        (started / str(os.getpid())).touch()   # this worker is mid-task from now on
        time.sleep(3600)   # longer than any wait below: a worker ends only if something ends it
        return i
    for _ in Parallel(n_jobs=2, return_as="generator")(delayed(task)(i) for i in range(10000)):
        pass
""")


@pytest.mark.process
@pytest.mark.parametrize("watch", [True, False])
def test_workers_die_with_a_killed_parent(tmp_path, watch):
    """joblib used as noisestat uses it; without the watch (control) loky's workers outlive it."""
    psutil = _psutil()
    script, started = tmp_path / "workers.py", tmp_path / "started"
    script.write_text(_WORKER_SCRIPT)
    started.mkdir()
    parent = _popen([sys.executable, str(script), "watch" if watch else "plain", str(started)], tmp_path / "err.txt",
                    env=_ENV)
    kids: dict = {}
    try:
        # both workers are inside a task (not merely started) when their parent is killed
        workers = {int(p) for p in wait_until(lambda: len(os.listdir(started)) >= 2 and os.listdir(started),
                                              "both loky workers starting a task", failed=lambda: _exited(parent))}
        kids = _descendants(parent.pid)
        assert workers <= {p.pid for p in kids}, (workers, kids)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        if watch:
            alive = _gone(kids, within=WORKERS_GONE_S)
            assert alive == [], f"still running {WORKERS_GONE_S:.0f} s after their parent was killed: {alive}"
        else:
            # the control: the same workers, without the watch, go on after their parent's death (they
            # were given to another parent and still run a while later), so the watch is what ends them
            workers = [p for p in kids if p.pid in workers]
            wait_until(lambda: all(_running(p) and p.ppid() != parent.pid for p in workers),
                       "the workers being given to another parent")
            until = time.monotonic() + 5  # ten times the watch's polling interval, in which watched workers end
            while time.monotonic() < until:
                assert all(_running(p) for p in workers), "a worker ended without the watch: the control shows nothing"
                time.sleep(0.1)
    finally:
        _stop(parent, kids)


# The forest's tasks run in threads; other predictors' in loky processes. This runs the CLI with
# process workers, to test that they die with noisestat.
_PROCESS_WORKERS = textwrap.dedent("""
    import sys
    import noisestat.pipeline as pipeline
    from noisestat.cli import main
    real = pipeline.make_executor
    pipeline.make_executor = lambda *args, threads=False, **kwargs: real(*args, threads=False, **kwargs)
    sys.exit(main(sys.argv[1:]))
""")


def _started(proc: subprocess.Popen, cpu_seconds: float) -> None:
    """Wait until ``proc`` has used ``cpu_seconds`` of CPU (its run is under way): a measure of its
    progress that a busy machine slows down but does not change."""
    psutil = _psutil()

    def used():
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(proc.pid).cpu_times()
            return times.user + times.system >= cpu_seconds
        return False

    wait_until(used, f"the run using {cpu_seconds} CPU-s", failed=lambda: _exited(proc))


@pytest.mark.process
@pytest.mark.parametrize("workers", ["processes", "threads"])
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_assess_workers_die_when_noisestat_is_killed(data, tmp_path, sig, workers):
    if _cpu_count() < 2:
        pytest.skip("needs 2 CPU cores for --jobs 2 (--jobs is capped at the cores)")
    args = [*map(str, assess_argv(data, tmp_path / "r", "--jobs", "2"))]
    args[args.index("--replicas") + 1] = "400"  # long enough to be stopped mid-run
    if workers == "processes":
        argv = [sys.executable, "-c", _PROCESS_WORKERS, *args]
    else:
        argv = [sys.executable, "-m", "noisestat", *args]
    parent = _popen(argv, tmp_path / "err.txt", env=_ENV)
    kids: dict = {}
    try:
        if workers == "processes":
            kids = _loky_workers(parent, at_least=2)
        else:
            _started(parent, cpu_seconds=4.0)
            kids = _descendants(parent.pid)
        parent.send_signal(sig)
        wait_until(lambda: parent.poll() is not None, f"noisestat ending after {sig.name}")
        alive = _gone(kids, within=WORKERS_GONE_S)
    finally:
        _stop(parent, kids)
    err = parent.log.read_text()
    assert alive == [], f"still running {WORKERS_GONE_S:.0f} s after noisestat was killed: {alive}"
    if sig == signal.SIGTERM:
        assert parent.returncode == 128 + signal.SIGTERM, err
        assert err.strip().splitlines() == ["noisestat: terminated; no partial output was left"]
    assert not (tmp_path / "r").exists() and leftovers(tmp_path) == []


_SLOW_WRITE = textwrap.dedent("""
    import sys, time
    import noisestat.report._tables as pipeline
    from noisestat.cli import main
    real = pipeline.write_objects_parquet
    def slow(*args, **kwargs):
        real(*args, **kwargs)
        open(sys.argv[1], "w").close()   # the test waits for this file
        # until the test's signal, in short sleeps: the kernel may hand the signal to another thread of
        # the process (a worker or BLAS thread), and then a sleep of the main thread is not cut short;
        # Python raises KeyboardInterrupt at the main thread's next bytecode, as a real run does
        while True:
            time.sleep(0.05)
    pipeline.write_objects_parquet = slow
    sys.exit(main(sys.argv[2:]))
""")


@pytest.mark.process
@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 128 + signal.SIGTERM)])
def test_a_signal_while_writing_leaves_no_partial_folder(data, tmp_path, sig, code):
    script = tmp_path / "slow.py"
    script.write_text(_SLOW_WRITE)
    out, writing = tmp_path / "results", tmp_path / "writing"
    proc = _popen([sys.executable, str(script), str(writing), *map(str, assess_argv(data, out))],
                  tmp_path / "err.txt", env=_ENV, preexec_fn=as_in_a_terminal)
    try:
        wait_until(writing.exists, "the run reaching the writing stage", failed=lambda: _exited(proc))
        assert any(name.endswith(".partial") for name in os.listdir(tmp_path))  # caught mid-write
        proc.send_signal(sig)
        wait_until(lambda: proc.poll() is not None, f"noisestat ending after {sig.name}")
    finally:
        _stop(proc)
    err = proc.log.read_text()
    assert proc.returncode == code
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("noisestat: "), err
    assert not out.exists() and leftovers(tmp_path) == []
