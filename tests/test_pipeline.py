import csv
import json
import math

import numpy as np
import pytest

from noisestat import CodecError, InputError
from noisestat.measure import PARAMETERS
from noisestat.pipeline import assess, assess_files, write_assessment
from noisestat.simulate import acquire, simulate_scene, sparse_labels

from conftest import CAMERA


@pytest.fixture(scope="module")
def lossless_run(small_scene):
    raw, labels, _, _ = small_scene
    return assess(raw, CAMERA, ["lossless", "bitdepth:bits=8,mode=shift", "jpeg:ratio=20"], labels=labels,
                  replicas=5, seed=0)


def test_lossless_gives_eps_zero_for_every_object_and_parameter(lossless_run):
    c = lossless_run.codecs[0]
    assert len(lossless_run.raw) > 5
    has_sigma = lossless_run.n_replicas_matched >= 2
    assert has_sigma.sum() > 5
    eps = c.eps[has_sigma]
    assert eps.shape[1] == len(PARAMETERS) and (eps == 0).all()
    assert all(p["mean_eps"] == 0 and p["frac_abs_eps_lt_1"] == 1 for p in c.parameters.values())
    assert c.global_scores["N_tot"]["eps"] == 0 and c.global_scores["A_tot"]["eps"] == 0
    # the decoded image is the raw image: every effect is exactly zero, tolerable whatever the number of objects
    assert c.tolerable and c.outcome == "tolerable"
    assert all(k["decision"] == "within" and k["exact"] for k in c.verdict.criteria)


def test_unmatched_objects_are_counted_not_dropped(small_scene, lossless_run):
    raw, labels, _, _ = small_scene
    from noisestat.codecs._base import Codec

    class BlankLeftHalf(Codec):  # loses every object in the left half of the image
        name, summary = "blank", "left half set to the background level"

        def apply(self, image, profile):
            out = image.copy()
            out[:, : image.shape[1] // 2] = np.median(image)
            return self.result(image, out, None)

    r = assess(raw, CAMERA, [BlankLeftHalf("blank")], labels=labels, replicas=3, seed=0)
    c = r.codecs[0]
    n_raw = len(r.raw)
    left = r.raw.column("XM") < raw.shape[1] // 2 - 12
    assert c.objects.matching["matched"] + c.objects.matching["unmatched_reference"] == n_raw
    assert c.objects.matching["unmatched_reference"] >= left.sum() > 0
    assert (c.objects.partner[left] == 0).all() and np.isnan(c.eps[left]).all()
    assert c.parameters["Area"]["n"] <= n_raw - left.sum()
    assert c.global_scores["N_tot"]["codec"] < c.global_scores["N_tot"]["raw"]


def test_results_do_not_depend_on_jobs(small_scene, lossless_run):
    raw, labels, _, _ = small_scene
    again = assess(raw, CAMERA, ["lossless", "bitdepth:bits=8,mode=shift", "jpeg:ratio=20"], labels=labels,
                   replicas=5, seed=0, jobs=2)
    np.testing.assert_array_equal(again.sigma_raw, lossless_run.sigma_raw)
    np.testing.assert_array_equal(again.replica_globals, lossless_run.replica_globals)
    for a, b in zip(again.codecs, lossless_run.codecs):
        np.testing.assert_array_equal(a.eps, b.eps)
    s1, s2 = again.summary(), lossless_run.summary()
    for s in (s1, s2):
        for key in ("jobs", "seconds", "engine", "timing"):   # how it ran, not what it found
            s["provenance"].pop(key)
    assert json.dumps(s1, default=str) == json.dumps(s2, default=str)


def test_seed_changes_replicas(small_scene, lossless_run):
    raw, labels, _, _ = small_scene
    other = assess(raw, CAMERA, ["lossless"], labels=labels, replicas=5, seed=1)
    assert other.provenance["classifier"]["seed"] != lossless_run.provenance["classifier"]["seed"]
    assert not np.array_equal(other.replica_globals, lossless_run.replica_globals)


def test_second_independent_acquisition_is_inside_the_raw_noise():
    """Statistical validity: a second raw acquisition gives Area eps ~ sqrt 2 * t(9)."""
    electrons, truth = simulate_scene((640, 640), rng=21)
    raw_a = acquire(electrons, CAMERA, 1)
    raw_b = acquire(electrons, CAMERA, 2)
    labels = sparse_labels(truth, rng=3)
    from noisestat.codecs._base import Codec

    class SecondAcquisition(Codec):  # what `file:path=raw_b.tif` does, without a file
        name, summary = "second", "the other acquisition"

        def apply(self, image, profile):
            return self.result(image, raw_b, None)

    result = assess(raw_a, CAMERA, [SecondAcquisition("second")], labels=labels, replicas=10, seed=0, jobs=2)
    area = result.codecs[0].parameters["Area"]
    null = result.summary()["null_reference"]
    assert area["n"] >= 100
    # mean of >= 100 eps with sd ~1.6: standard error ~0.16
    assert abs(area["mean_eps"]) < 0.4
    # sd near sqrt(2) (sqrt 2 * sd of t(9) = 1.60 with 10 replicas)
    assert math.sqrt(2) * 0.85 < area["sd_eps"] < null["sd"] * 1.3
    assert area["frac_abs_eps_lt_1"] == pytest.approx(null["frac_abs_eps_lt_1"], abs=0.12)


def test_outputs_have_the_documented_shape(tmp_path, lossless_run):
    out = write_assessment(lossless_run, tmp_path / "out")
    s = json.loads((out / "summary.json").read_text())
    assert s["replicas"] == 5 and s["seed"] == 0 and s["n_objects_raw"] == len(lossless_run.raw)
    c = s["codecs"][2]
    assert c["spec"] == "jpeg:ratio=20" and abs(c["compression_ratio"] / 20 - 1) < 0.05
    assert list(c["parameters"]) == list(PARAMETERS)
    assert set(c["parameters"]["Area"]) >= {"n", "mean_eps", "sd_eps", "frac_abs_eps_lt_1"}
    # sigma_used: sigma_raw floored at the count's resolution 1 / sqrt(12) (noisestat.score)
    assert set(c["global"]["N_tot"]) == {"raw", "sigma_raw", "sigma_used", "codec", "eps"}
    assert c["global"]["N_tot"]["sigma_used"] >= max(c["global"]["N_tot"]["sigma_raw"], 1 / math.sqrt(12)) - 1e-12
    assert set(c["loss"]) >= {"n_unmatched", "rate", "null_rate", "p_excess", "excess"}
    assert len(c["object_status"]) == len(lossless_run.raw)
    assert isinstance(c["tolerable"], bool) and "tolerable when" in s["verdict_rule"]
    assert s["provenance"]["classifier"]["seed"] == lossless_run.provenance["classifier"]["seed"]
    with open(out / "objects.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3 * len(lossless_run.raw) * len(PARAMETERS)
    assert {"codec", "object", "parameter", "chi_raw", "sigma_raw", "chi_codec", "eps"} <= set(rows[0])
    assert (out / "model.npz").exists() and (out / "raw_results.csv").exists()
    assert "NOT tolerable" in (out / "summary.txt").read_text()


def test_failed_run_leaves_existing_output_untouched(tmp_path, scene_files):
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text("previous results")
    (out / ".noisestat-output").write_text('{"noisestat": "0", "files": ["summary.json"]}')  # a previous output: may be replaced
    with pytest.raises(CodecError):
        assess_files(scene_files / "raw.tif", scene_files / "camera.json", ["jpeg:ratio=1e5"], out,
                     labels_path=scene_files / "labels.tif", replicas=2)
    assert (out / "summary.json").read_text() == "previous results"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_image_above_camera_range_is_refused(small_scene):
    raw, labels, _, _ = small_scene
    from noisestat import CameraProfile

    with pytest.raises(InputError, match="above the camera's 8-bit range"):
        assess(raw, CameraProfile(1.0, 10.0, 1.0, 8), ["lossless"], labels=labels)


def test_centroid_matching_is_selectable(small_scene):
    raw, labels, _, _ = small_scene
    r = assess(raw, CAMERA, ["jpeg:ratio=20"], labels=labels, replicas=3, seed=0, matching="centroid")
    assert r.codecs[0].objects.matching["method"] == "centroid"
    assert r.summary()["provenance"]["matching"] == "centroid"


def test_min_area_drops_small_objects_everywhere(small_scene, lossless_run):
    raw, labels, _, _ = small_scene
    areas = lossless_run.raw.column("Area")
    cut = int(np.median(areas))
    r = assess(raw, CAMERA, ["jpeg:ratio=20"], labels=labels, replicas=3, seed=0, min_area=cut)
    assert len(r.raw) == (areas >= cut).sum()
    assert r.raw.column("Area").min() >= cut
    assert r.replica_globals[:, 0].max() <= len(lossless_run.raw)
    assert r.provenance["min_area"] == cut
    with pytest.raises(InputError, match="min_area"):
        assess(raw, CAMERA, ["lossless"], labels=labels, min_area=-1)


def test_parquet_and_imagej_tables(tmp_path, lossless_run):
    import pyarrow.parquet as pq

    out = write_assessment(lossless_run, tmp_path / "o")
    table = pq.read_table(out / "objects.parquet")
    assert table.num_rows == 3 * len(lossless_run.raw) * len(PARAMETERS)
    assert table.column_names == ["codec", "object", "parameter", "chi_raw", "sigma_raw", "sigma_used",
                                  "n_replicas_matched", "status", "codec_object", "chi_codec", "eps"]
    # sigma_used is sigma_raw floored at the parameter's resolution: never below sigma_raw
    sig, used = table.column("sigma_raw").to_numpy(), table.column("sigma_used").to_numpy()
    ok = np.isfinite(sig)
    assert (used[ok] >= sig[ok]).all()
    statuses = set(table.column("status").to_pylist())
    assert statuses <= {"matched", "lost", "split", "merged"} and "matched" in statuses
    with open(out / "objects.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    eps_csv = [float(r["eps"]) if r["eps"] else np.nan for r in rows]
    np.testing.assert_array_equal(np.array(eps_csv), table.column("eps").to_numpy())
    tables = sorted(p.name for p in (out / "imagej").iterdir())
    assert tables[0] == "00_raw.csv" and len(tables) == 4
    header = (out / "imagej" / tables[1]).read_text().splitlines()[0]
    assert header == " ,Area,XM,YM,Perim.,Major,Minor,Angle,Circ.,Feret,FeretX,FeretY,FeretAngle,MinFeret,AR,Round," \
                     "Solidity,FeretAR,Compact,Extent,Mean,StdDev,Median,Min,Max,IntDen,RawIntDen"
    assert (out / "report.html").exists() and (out / "figures").is_dir()


def test_simulated_second_acquisition_and_sigma_model_are_reported(small_scene):
    raw, labels, _, _ = small_scene
    r = assess(raw, CAMERA, ["lossless"], labels=labels, replicas=4, seed=0, model_seeds=2)
    s = r.summary()
    sim = s["null_reference"]["simulated"]
    assert set(sim["parameters"]) == set(PARAMETERS) and isinstance(sim["judged_tolerable"], bool)
    assert r.sigma_model.shape == r.sigma_raw.shape
    assert s["sigma_model"]["seeds"] == 2 and "never added" in s["sigma_model"]["note"]
    assert s["area_difference"]["lossless"] == {"n": len(r.raw), "mean": 0.0, "sd": 0.0}
    with pytest.raises(InputError, match="model_seeds needs sparse labels"):
        assess(raw, CAMERA, ["lossless"], model=r.model, replicas=2, model_seeds=1)


def test_no_feature_computation_is_repeated_and_the_numbers_stay_the_same(small_scene, lossless_run, monkeypatch):
    """The raw image's features serve training and its segmentation; a decoded image identical to the
    raw one is not segmented again. Counted here: one feature computation for the raw image and one per
    replica (5 + 2 null), none for the lossless codec, one for the 8-bit codec (before: 11)."""
    import noisestat.predict._forest as classifier_module

    calls = []
    original = classifier_module.weka_features

    def counting(image, **kwargs):
        calls.append(image.shape)
        return original(image, **kwargs)

    monkeypatch.setattr(classifier_module, "weka_features", counting)
    raw, labels, _, _ = small_scene
    again = assess(raw, CAMERA, ["lossless", "bitdepth:bits=8,mode=shift"], labels=labels, replicas=5, seed=0)
    assert len(calls) == 1 + 5 + 2 + 1
    # the same numbers as the run that computed everything (lossless_run has one more codec, after these)
    np.testing.assert_array_equal(again.sigma_raw, lossless_run.sigma_raw)
    for mine, theirs in zip(again.codecs, lossless_run.codecs):
        np.testing.assert_array_equal(mine.eps, theirs.eps)
        np.testing.assert_array_equal(mine.objects.labels, theirs.objects.labels)
    np.testing.assert_array_equal(again.codecs[0].objects.labels, again.raw_labels)
