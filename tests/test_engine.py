"""The engine: replicas drawn per region equal the whole replica, the forest's early-stopped decision
equals scikit-learn's, tiles and schedulers do not change a single number, dead workers and bad
addresses end in one line."""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from noisestat import CameraProfile, CodecError, assess, draw_replica
from noisestat.codecs import Codec
from noisestat.camera import NoiseMap, PixelMaps
from noisestat.engine import EngineError, default_tile, parse_scheduler, segment, tile_grid
from noisestat.engine import _executors
from noisestat.predict import PixelClassifier
from noisestat.predict._forest import decide_threshold
from noisestat.replicas import NOISE_BLOCK, BlockCache, draw_region, noise_block
from noisestat.report._tables import objects_csv
from noisestat.simulate import acquire, simulate_scene, sparse_labels

from conftest import CAMERA, DEADLINE_S, returns_within

CODECS = ["lossless", "jpeg:ratio=10", "bitdepth:bits=8,mode=minmax"]


@pytest.fixture(scope="module")
def scene():
    electrons, truth = simulate_scene((176, 208), rng=21)
    return acquire(electrons, CAMERA, 5), sparse_labels(truth, rng=2)


@pytest.fixture(scope="module")
def reference(scene):
    raw, labels = scene
    return assess(raw, CAMERA, CODECS, labels=labels, replicas=4, seed=3)


# -- replicas per region ---------------------------------------------------------------------------

def _profiles(shape):
    rng = np.random.default_rng(0)
    maps = PixelMaps(offset_dn=100 + rng.normal(0, 2, shape[-2:]), gain_dn_per_e=0.5 + rng.normal(0, 0.02, shape[-2:]),
                     read_variance_dn2=4 + rng.uniform(0, 1, shape[-2:]))
    noise_map = NoiseMap(mean_dn=np.array([100.0, 500.0, 3000.0]), variance_dn2=np.array([4.0, 200.0, 1400.0]))
    return {"linear": CAMERA, "pixel-maps": CameraProfile(0.5, 100, 2, 16, pixel_maps=maps),
            "noise-map": CameraProfile(0.5, 100, 2, 16, noise_map=noise_map)}


@pytest.mark.parametrize("shape", [(300, 530), (3, 270, 290)])
@pytest.mark.parametrize("model", ["linear", "pixel-maps", "noise-map"])
def test_a_region_of_a_replica_is_the_same_part_of_the_whole_replica(shape, model):
    profile = _profiles(shape)[model]
    # dark pixels far below the offset exercise the neighbour redistribution across block borders
    image = np.random.default_rng(1).integers(60, 4000, shape).astype(np.uint16)
    whole = draw_replica(image, profile, 17)
    rng = np.random.default_rng(2)
    for _ in range(6):
        starts = [int(rng.integers(0, n - 1)) for n in shape]
        region = tuple(slice(s, int(rng.integers(s + 1, n + 1))) for s, n in zip(starts, shape))
        assert np.array_equal(draw_region(image, profile, 17, region), whole[region])
    # the block grid is fixed: a crop of the image at a block corner draws the same noise there
    edge = noise_block(len(shape))
    crop = tuple(slice(0, 2 * edge if n > 2 * edge else n) for n in shape)
    inner = tuple(slice(0, c.stop - 8 if c.stop < n else n) for c, n in zip(crop, shape))  # off the cut edge
    if model != "pixel-maps":
        assert np.array_equal(draw_replica(image[crop], profile, 17)[inner], whole[inner])


@pytest.mark.parametrize("shape", [(700, 600), (40, 150, 140)])
def test_a_block_cache_draws_each_block_once_and_changes_no_value(shape):
    image = np.random.default_rng(3).integers(60, 4000, shape).astype(np.uint16)
    whole = draw_replica(image, CAMERA, 5)
    cache = BlockCache()
    edge = noise_block(len(shape))
    # overlapping regions, as tiles with halos are: every block is drawn once, the values unchanged
    step, halo = edge // 2 + 7, 11
    starts = [range(0, n, step) for n in shape]
    for corner in itertools.product(*starts):
        region = tuple(slice(max(c - halo, 0), min(c + step + halo, n)) for c, n in zip(corner, shape))
        assert np.array_equal(draw_region(image, CAMERA, 5, region, cache), whole[region])
    assert cache.drawn == math.prod(-(-n // edge) for n in shape)
    # a cache too small for one block still gives the same values
    tiny = BlockCache(max_bytes=1)
    region = tuple(slice(n // 3, n) for n in shape)
    assert np.array_equal(draw_region(image, CAMERA, 5, region, tiny), whole[region])
    assert np.array_equal(draw_region(image, CAMERA, 5, region, tiny), whole[region])


def test_replica_seeds_are_independent_between_blocks_and_replicas():
    image = np.full((2 * NOISE_BLOCK, NOISE_BLOCK), 1100, np.uint16)
    a, b = draw_replica(image, CAMERA, 1).astype(float), draw_replica(image, CAMERA, 2).astype(float)
    top, bottom = a[:NOISE_BLOCK] - 1100, a[NOISE_BLOCK:] - 1100
    assert abs(np.corrcoef(top.ravel(), bottom.ravel())[0, 1]) < 0.02
    assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.02
    # variance against the profile's truth: K (y - offset) + read^2 = 0.5 * 1000 + 4
    assert abs(top.var() / 504 - 1) < 0.03


# -- the forest's decision -------------------------------------------------------------------------

@pytest.mark.parametrize("n_trees", [1, 2, 10, 25, 200])
def test_early_stopped_decision_equals_scikit_learns_mask(n_trees):
    rng = np.random.default_rng(n_trees)
    x = rng.normal(size=(6000, 4)).astype(np.float32)
    y = np.where(x[:, 0] + rng.normal(0, 1.5, len(x)) > 0, 2, 1)   # noisy labels: many votes near 0.5
    forest = RandomForestClassifier(n_estimators=n_trees, max_features=2, random_state=0, n_jobs=1).fit(x, y)
    test = rng.normal(size=(40000, 4)).astype(np.float32)
    truth = forest.predict_proba(test)[:, 1] > 0.5
    mask, evaluations = decide_threshold(forest, test, 1)
    assert np.array_equal(mask, truth)
    ties = np.isclose(forest.predict_proba(test)[:, 1], 0.5).sum()
    if n_trees % 2 == 0 and n_trees >= 10:
        assert ties > 0  # exact ties (even tree counts) are covered: they must go to the background
    if n_trees >= 10:
        assert evaluations < 0.9 * n_trees * len(test)
    assert evaluations <= n_trees * len(test)


def test_classifier_mask_equals_probability_threshold(scene):
    raw, labels = scene
    model = PixelClassifier(n_estimators=30, random_state=1).fit(raw, labels)
    assert np.array_equal(model.predict(raw), model.predict_proba(raw) > 0.5)


@pytest.mark.parametrize("chunk", [997, 4096, 1 << 20])
def test_the_mask_does_not_depend_on_the_pixel_chunk_nor_the_threads(scene, monkeypatch, chunk):
    from noisestat.predict import _forest

    raw, labels = scene
    model = PixelClassifier(n_estimators=30, random_state=1).fit(raw, labels)
    truth = model.predict_proba(raw) > 0.5
    monkeypatch.setattr(_forest, "_PREDICT_CHUNK", chunk)
    for threads in (1, 2):
        counts = {}
        assert np.array_equal(model.predict_mask(raw, threads=threads, counts=counts), truth)
        assert counts["pixels"] == raw.size and 0 < counts["tree_evaluations"] <= 30 * raw.size


# -- tiles -------------------------------------------------------------------------------------------

def test_tile_grid_covers_the_image_once_with_clipped_halos():
    tiles = tile_grid((100, 37), 32, (5, 5))
    cover = np.zeros((100, 37), int)
    for t in tiles:
        cover[t.core] += 1
        for c, r, n in zip(t.core, t.region, (100, 37)):
            assert r.start == max(c.start - 5, 0) and r.stop == min(c.stop + 5, n)
    assert (cover == 1).all() and len(tiles) == 4 * 2


@pytest.mark.parametrize("tile", [16, 48, 100])
def test_assessment_is_byte_identical_for_any_tile(scene, reference, tile):
    raw, labels = scene
    other = assess(raw, CAMERA, CODECS, labels=labels, replicas=4, seed=3, tile=tile)
    assert other.provenance["tile"] == tile
    assert objects_csv(other) == objects_csv(reference)
    assert np.array_equal(other.raw_labels, reference.raw_labels)
    assert other.summary()["codecs"] == reference.summary()["codecs"]


def test_assessment_is_byte_identical_for_any_jobs(scene, reference):
    raw, labels = scene
    other = assess(raw, CAMERA, CODECS, labels=labels, replicas=4, seed=3, jobs=2, tile=64)
    assert objects_csv(other) == objects_csv(reference)


def test_default_tile_keeps_features_within_budget():
    from noisestat.engine import FEATURE_BUDGET_BYTES

    model = PixelClassifier()
    edge = default_tile(model, 2)
    halo = model.halo(2)[0]
    assert (edge + 2 * halo) ** 2 * 70 * 4 <= FEATURE_BUDGET_BYTES < (edge + 16 + 2 * halo) ** 2 * 70 * 4


def test_timing_and_estimate_are_reported(scene):
    raw, labels = scene
    said = []
    a = assess(raw, CAMERA, ["lossless"], labels=labels, replicas=2, seed=0, notice=lambda m, s: said.append((m, s)))
    timing = a.provenance["timing"]
    for key in ("features", "trees", "training", "labelling", "measuring", "matching", "codecs", "codecs_wait",
                "wall"):
        assert timing[key] >= 0
    assert timing["codecs"] > 0  # the codecs' own seconds, even when nothing waited for them
    # trees: 200 per pixel for sklearn; the early decision needs just over half for clear pixels
    assert 0.5 < timing["trees_evaluated_fraction"] < 0.8
    (message, seconds), *revised = said
    assert message.startswith("estimated time:") and seconds > 0
    # said once more when the first images took more than twice as long as said, or less than half
    assert len(revised) <= 1 and all(m.startswith("revised estimate: about ") for m, _ in revised)


# -- 3D --------------------------------------------------------------------------------------------

def _volume(shape=(24, 72, 80), n=9, seed=0):
    """Bright balls on a dark background: truth labels and a camera acquisition of them."""
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(shape)
    truth = np.zeros(shape, np.int32)
    centres = []
    while len(centres) < n:
        c = rng.uniform([5, 8, 8], [shape[0] - 5, shape[1] - 8, shape[2] - 8])
        if all(np.linalg.norm(c - d) > 13 for d in centres):
            centres.append(c)
    for i, c in enumerate(centres, 1):
        truth[(z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2 <= 4.5 ** 2] = i
    electrons = np.where(truth > 0, 400.0, 20.0)
    return acquire(electrons, CAMERA, seed + 1), truth


def _sparse_3d(truth):
    labels = np.zeros(truth.shape, np.uint8)
    labels[(truth > 0)] = 2
    labels[::3, ::3, ::3][truth[::3, ::3, ::3] == 0] = 1
    keep = np.zeros(truth.shape, bool)
    keep[::2] = True
    return np.where(keep, labels, 0).astype(np.uint8)


def test_volume_segments_and_counts_26_connected_for_any_tile():
    pytest.importorskip("noisestat.predict._ilastik", reason="the n-D feature set is needed for volumes")
    volume, truth = _volume()
    model = PixelClassifier(n_estimators=20, random_state=0, feature_set="ilastik",
                            sigmas=(0.7, 1.6, 3.5)).fit(volume, _sparse_3d(truth))
    whole = segment(volume, model, tile=4096)
    assert int(whole.max()) == int(truth.max())   # the simulator's count
    # every true ball is one object
    for i in range(1, int(truth.max()) + 1):
        ids = np.unique(whole[truth == i])
        assert len(ids[ids > 0]) == 1
    for tile in (16, 40):
        assert np.array_equal(segment(volume, model, tile=tile), whole)
    # 26-connectivity: two voxels touching at a corner are one object
    mask = np.zeros((3, 3, 3), bool)
    mask[0, 0, 0] = mask[1, 1, 1] = True
    from noisestat.engine import label_mask

    assert label_mask(mask).max() == 1


def test_volume_assessment_counts_objects_and_is_tile_invariant():
    pytest.importorskip("noisestat.predict._ilastik", reason="the n-D feature set is needed for volumes")
    volume, truth = _volume((20, 64, 64), n=6, seed=4)
    labels = _sparse_3d(truth)
    a = assess(volume, CAMERA, ["lossless", "bitdepth:bits=8,mode=minmax"], labels=labels, replicas=3, seed=1, tile=32)
    b = assess(volume, CAMERA, ["lossless", "bitdepth:bits=8,mode=minmax"], labels=labels, replicas=3, seed=1, tile=4096)
    assert a.summary()["raw"]["N_tot"]["value"] == int(truth.max())
    assert a.summary()["codecs"] == b.summary()["codecs"]
    assert a.provenance["connectivity"] == 26


# -- schedulers ------------------------------------------------------------------------------------

def test_scheduler_addresses_are_checked_before_any_work():
    assert parse_scheduler("local:3") == ("local", 3)
    assert parse_scheduler("tcp://10.0.0.1:8786") == ("address", "tcp://10.0.0.1:8786")
    for bad in ("local:0", "local:x", "8786", "tcp://"):
        with pytest.raises(EngineError, match="--scheduler"):
            parse_scheduler(bad)


def test_unreachable_scheduler_is_one_line(scene, monkeypatch):
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    monkeypatch.setattr(_executors, "CONNECT_TIMEOUT_S", 2.0)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    raw, labels = scene
    with pytest.raises(EngineError, match=f"cannot reach the dask scheduler tcp://127.0.0.1:{port}") as info:
        returns_within(DEADLINE_S, "assess with an unreachable scheduler", assess, raw, CAMERA, ["lossless"],
                       labels=labels, replicas=2, scheduler=f"tcp://127.0.0.1:{port}")
    # one line, and it gave up after the connection timeout given (dask's own default is 30 s)
    assert "\n" not in str(info.value) and str(info.value).endswith(" after 2 s")


@pytest.mark.process
@pytest.mark.slow
def test_local_dask_cluster_gives_the_same_numbers(scene, reference):
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    raw, labels = scene
    other = assess(raw, CAMERA, CODECS, labels=labels, replicas=4, seed=3, scheduler="local:2", tile=64)
    assert other.provenance["engine"]["engine"] == "dask"
    assert objects_csv(other) == objects_csv(reference)


@pytest.mark.process
@pytest.mark.slow
def test_a_local_cluster_starts_quietly_beside_another_one():
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    import socket
    import warnings

    holder = socket.socket()
    try:
        try:  # distributed's default HTTP port, as another cluster running here holds it
            holder.bind(("127.0.0.1", 8787))
            holder.listen()
        except OSError:  # something already holds it: the same situation
            pass
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with _executors.DaskExecutor("local:1") as executor:
                assert executor.map(abs, [(-2,)], ["abs"]) == [2]
    finally:
        holder.close()


@pytest.mark.process
@pytest.mark.slow
def test_a_script_without_a_main_guard_is_told_why_its_local_cluster_did_not_start(tmp_path):
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    script = tmp_path / "unguarded.py"
    script.write_text("from noisestat.engine import _executors\n"
                      "try:\n"
                      "    _executors.DaskExecutor('local:1')\n"
                      "except Exception as exc:\n"
                      "    print('ERROR', type(exc).__name__, exc, flush=True)\n"
                      "    raise SystemExit(1)\n"
                      "else:\n"
                      "    print('STARTED', flush=True)\n")
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=DEADLINE_S,
                          cwd=tmp_path)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(("ERROR", "STARTED"))]
    # the script's own process is the last to print: its workers imported the script and failed first
    assert lines, proc.stdout + proc.stderr
    assert lines[-1].startswith("ERROR EngineError cannot start a local dask cluster of 1 workers"), lines
    assert 'under `if __name__ == "__main__":`' in lines[-1] and proc.returncode == 1


def _needs_a_missing_module(*_):
    import noisestat_extra_that_is_not_installed  # noqa: F401


@pytest.mark.process
@pytest.mark.slow
def test_a_worker_that_cannot_import_what_a_task_needs_is_one_line():
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    with _executors.DaskExecutor("local:1") as executor:
        with pytest.raises(EngineError, match=r"^a dask worker cannot run codec x: ModuleNotFoundError: No module "
                                              r"named 'noisestat_extra_that_is_not_installed' \(every worker needs this "
                                              r"noisestat, .+, with the same extras\)$"):
            executor.map(_needs_a_missing_module, [(1,)], ["codec x"])


def _die(*_):
    os._exit(3)


@pytest.mark.process
@pytest.mark.slow
def test_dead_workers_are_reported_not_waited_for():
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        executor = _executors.DaskExecutor("local:1")
        said = []
        executor.notice = lambda m, s: said.append(m)
        try:
            with pytest.raises(EngineError, match="dask workers died running task 1"):
                returns_within(DEADLINE_S, "a map whose task kills its worker", executor.map, _die, [(1,)], ["task 1"])
        finally:
            executor.close()


def _wait_for(path, seconds):
    """Return "seen" once ``path`` exists, "not seen" after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return "seen"
        time.sleep(0.05)
    return "not seen"


@pytest.mark.parametrize("how", ["one worker", "threads", pytest.param("processes", marks=pytest.mark.process),
                                 pytest.param("dask", marks=pytest.mark.process)])
def test_started_tasks_overlap_the_callers_work_except_in_worker_processes(how, tmp_path):
    flag = tmp_path / "written after start returned"
    if how == "dask":
        pytest.importorskip("distributed", reason="the dask extra is not installed")
        executor = _executors.DaskExecutor("local:1")
    else:
        executor = _executors.JoblibExecutor(1 if how == "one worker" else 2, threads=how == "threads")
    # worker processes run the tasks at once: they cannot see what the caller does after start(), as
    # start() returns only once they are done (so the half second they look cannot be too short)
    expected, seconds = (["not seen"], 0.5) if how == "processes" else (["seen"], DEADLINE_S)
    with executor:
        pending = executor.start(_wait_for, [(str(flag), seconds)], ["wait"])
        flag.write_text("")
        assert pending.result() == expected
        assert pending.result() is pending.result()


def test_a_task_started_in_a_thread_raises_in_the_caller():
    pending = _executors.JoblibExecutor(2, threads=True).start(_needs_a_missing_module, [(1,)], ["task"])
    with pytest.raises(ModuleNotFoundError, match="noisestat_extra_that_is_not_installed"):
        pending.result()


class _FailsWhenApplied(Codec):
    name = "fails-when-applied"
    summary = "passes prepare, raises in apply (a setting found unreachable only by coding)"

    def apply(self, image, profile):
        raise CodecError(f"{self.spec}: cannot reach the target on this image")


@pytest.mark.parametrize("jobs, scheduler", [(1, None), (2, None), pytest.param(1, "local:1", marks=[pytest.mark.process, pytest.mark.slow])])
def test_a_codec_failing_while_the_forest_trains_stops_the_run_with_its_own_line(scene, jobs, scheduler):
    if scheduler:
        pytest.importorskip("distributed", reason="the dask extra is not installed")
    raw, labels = scene
    with pytest.raises(CodecError, match="^failing: cannot reach the target on this image$"):
        assess(raw, CAMERA, ["lossless", _FailsWhenApplied("failing")], labels=labels, replicas=2, jobs=jobs,
               scheduler=scheduler)


# -- command line ------------------------------------------------------------------------------------

def test_cli_refuses_bad_tile_and_scheduler_in_one_line(scene_files, tmp_path, capsys):
    from noisestat.cli import main

    d = scene_files
    base = ["assess", str(d / "raw.tif"), "--camera", str(d / "camera.json"), "--labels", str(d / "labels.tif"),
            "--codec", "lossless", "--replicas", "2", "--quiet"]
    with pytest.raises(SystemExit) as info:
        main(base + ["--tile", "8", "-o", str(tmp_path / "a")])
    assert info.value.code == 2 and "at least 16 pixels" in capsys.readouterr().err
    assert main(base + ["--scheduler", "nowhere", "-o", str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--scheduler must be tcp://HOST:PORT" in err[0]
    assert not (tmp_path / "b").exists()


def test_cli_tile_gives_the_same_objects_and_records_it(scene_files, tmp_path):
    import json

    from noisestat.cli import main

    d = scene_files
    base = ["assess", str(d / "raw.tif"), "--camera", str(d / "camera.json"), "--labels", str(d / "labels.tif"),
            "--codec", "jpeg:ratio=10", "--replicas", "2", "--quiet"]
    assert main(base + ["--tile", "48", "-o", str(tmp_path / "t48")]) == 0
    assert main(base + ["-o", str(tmp_path / "whole")]) == 0
    assert (tmp_path / "t48" / "objects.csv").read_bytes() == (tmp_path / "whole" / "objects.csv").read_bytes()
    prov = json.loads((tmp_path / "t48" / "summary.json").read_text())["provenance"]
    assert prov["tile"] == 48 and prov["engine"] == {"engine": "joblib", "jobs": 1, "workers_are": "threads"}


@pytest.mark.process
def test_a_dead_local_worker_is_one_line():
    executor = _executors.JoblibExecutor(2)
    with pytest.raises(EngineError, match="a worker process died while running task 1"):
        executor.map(_die, [(1,), (2,)], ["task 1", "task 2"])


def test_a_volume_model_file_round_trips_and_a_bad_feature_set_is_refused(tmp_path):
    import json

    from noisestat.errors import ModelError
    from noisestat.predict import load_model, save_model

    volume, truth = _volume((16, 40, 40), n=3, seed=2)
    model = PixelClassifier(n_estimators=5, random_state=0, feature_set="ilastik", spacing=(2.0, 1.0, 1.0))
    model.fit(volume, _sparse_3d(truth))
    save_model(model, tmp_path / "m.npz")
    again = load_model(tmp_path / "m.npz")
    assert again.describe() == model.describe() and again.describe()["ndim"] == 3
    assert np.array_equal(segment(volume, again, tile=24), segment(volume, model, tile=4096))
    with pytest.raises(ModelError, match="trained on 3D"):
        again.predict(volume[0])
    # a header naming an unknown feature set, or spacing of the wrong length, is refused in one line
    for key, value, message in (("feature_set", "fourier", "feature_set"), ("spacing", [1.0], "spacing")):
        with np.load(tmp_path / "m.npz") as archive:
            arrays = dict(archive)
        data = json.loads(arrays["header"].tobytes().decode())
        data[key] = value
        arrays["header"] = np.frombuffer(json.dumps(data).encode(), dtype=np.uint8)
        np.savez_compressed(tmp_path / "bad.npz", **arrays)
        with pytest.raises(ModelError, match=f"damaged model file: header '{message}'"):
            load_model(tmp_path / "bad.npz")


def test_a_raw_image_too_large_to_keep_its_features_is_segmented_tile_parallel(scene, reference, monkeypatch):
    import noisestat.predict._training as training

    monkeypatch.setattr(training, "RAW_FEATURE_CACHE_BYTES", 0)   # as for an image beyond the cache
    raw, labels = scene
    other = assess(raw, CAMERA, CODECS, labels=labels, replicas=4, seed=3, jobs=2, tile=64)
    assert objects_csv(other) == objects_csv(reference)
    model = other.model
    assert np.array_equal(segment(raw, model, tile=48, jobs=2), segment(raw, model, tile=4096))


_MAPPED = """
import ctypes, sys
import numpy as np
from noisestat.engine import _executors

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2

def work():
    mapped = 0  # arrays that got a fresh mapping of their own (glibc's hblkhd grew while they lived)
    for _ in range(20):
        before = libc.mallinfo2().hblkhd
        a = np.ones(1 << 18, np.float32)   # 1 MiB allocated and freed, as a feature plane is
        mapped += libc.mallinfo2().hblkhd > before
        del a
    return mapped

print(_executors._dask_task(work) if sys.argv[1] == "task" else work(), _executors._libc is not None)
"""


def _mapped(how, env):
    out = subprocess.run([sys.executable, "-c", _MAPPED, how], env=env, capture_output=True, text=True, check=True,
                         timeout=DEADLINE_S)
    count, tuned = out.stdout.split()
    return int(count), tuned == "True"


@pytest.mark.process
@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_dask_tasks_reuse_freed_memory_under_the_nannies_trim_threshold():
    # dask's nannies start workers with MALLOC_TRIM_THRESHOLD_=65536, which also stops glibc's sliding
    # mmap threshold: every array over 128 KiB then gets a fresh mapping whose pages fault in one by
    # one (a 1024 x 1024 replica's mask: 3.3 s instead of 2.1 s), unless the task lets glibc reuse memory
    trim = {**{k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}, "MALLOC_TRIM_THRESHOLD_": "65536"}
    plain_count, plain_tuned = _mapped("plain", trim)
    assert not plain_tuned
    # (plain_count is 20 on a quiet machine; it was seen at 0 inside a long test session, so only the
    # task side, which this code controls, is asserted)
    assert _mapped("task", trim) == (0, True)
    # without the variable glibc's sliding threshold reuses memory after the first array: nothing is changed
    plain = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    assert _mapped("task", plain) == (1, False)


def test_a_task_a_worker_refuses_to_receive_is_its_own_one_line_error():
    """joblib reports a task that failed to unpickle in a worker as a broken pool whose cause is the remote
    traceback's text; the worker's own noisestat error comes back as itself, in one line."""
    from joblib.externals.loky.process_executor import BrokenProcessPool

    from noisestat.engine._executors import EngineError, _worker_error
    from noisestat.errors import ModelError

    remote = RuntimeError('\n"""\nTraceback (most recent call last):\n  File "x.py", line 1, in <module>\n'
                          "noisestat.errors.ModelError: --predictor-python: /a/b.py changed while the assessment ran\n"
                          '"""')
    broken = BrokenProcessPool("A task has failed to un-serialize. Please ensure that the arguments of the function "
                               "are all picklable.")
    broken.__cause__ = remote
    got = _worker_error(broken, "replica 2")
    assert isinstance(got, ModelError) and str(got) == "--predictor-python: /a/b.py changed while the assessment ran"
    other = _worker_error(BrokenProcessPool("A task has failed to un-serialize."), "replica 2")
    assert isinstance(other, EngineError) and str(other).startswith("a worker could not take replica 2: A task")
