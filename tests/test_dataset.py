"""noisestat assess-dataset: the dataset CSV, the fields' folders, resuming, and the pooled verdict."""

import json
import math
import os
import shutil

import numpy as np
import pytest
import tifffile

from conftest import CAMERA
from noisestat.cli import main
from noisestat.errors import InputError, OutputError
from noisestat.io import read_dataset
from noisestat.score import Margins, field_counts, judge_dataset, pooled_criterion, pooled_shift
from noisestat.score._criteria import proportion_margin_effect
from noisestat.simulate import acquire, simulate_scene, sparse_labels

PRIMARY = ["Area", "Mean"]


# --- the pooled statistics, on field-level numbers with a known answer -------------------------------

def _fields(shifts, ses, outcome="tolerable", null_shifts=None, null_outcome="tolerable"):
    null_shifts = shifts if null_shifts is None else null_shifts
    return [{"outcome": outcome, "null_outcome": null_outcome,
             "shift": {p: (s, e) for p in PRIMARY}, "null_shift": {p: (n, e) for p in PRIMARY}}
            for s, e, n in zip(shifts, ses, null_shifts)]


def test_fields_of_true_second_acquisitions_are_tolerable():
    rng = np.random.default_rng(1)
    se = np.full(8, 0.15)
    fields = _fields(rng.normal(0, se), se, null_shifts=rng.normal(0, se))
    v = judge_dataset(fields, Margins(), 10, PRIMARY)
    assert v["outcome"] == "tolerable" and v["tolerable"] is True
    shift = v["criteria"][0]
    assert shift["criterion"] == "shift" and -1 < shift["interval"][0] < shift["interval"][1] < 1
    assert v["null"]["outcome"] == "tolerable"


def test_a_destructive_codec_is_not_tolerable():
    rng = np.random.default_rng(2)
    se = np.full(6, 0.3)
    fields = _fields(rng.normal(4.0, 0.5, 6), se, outcome="not tolerable", null_shifts=rng.normal(0, se))
    v = judge_dataset(fields, Margins(), 10, PRIMARY)
    assert v["outcome"] == "not tolerable" and v["tolerable"] is False
    assert any(r.startswith("Area: pooled shift +3.98") and "shown beyond" in r for r in v["reasons"])


def test_one_field_is_inconclusive_whatever_it_shows():
    for shift, outcome in ((0.0, "tolerable"), (5.0, "not tolerable")):
        v = judge_dataset(_fields([shift], [0.1], outcome=outcome), Margins(), 10, PRIMARY)
        assert v["outcome"] == "inconclusive" and v["tolerable"] is None
        assert "at least 2 fields" in v["reasons"][0]


def test_few_fields_with_a_small_shift_are_inconclusive_not_tolerable():
    # two fields agreeing on 0.5 sigma_raw: Student's t on one degree of freedom cannot show |shift| < 1
    v = judge_dataset(_fields([0.45, 0.55], [0.2, 0.2]), Margins(), 10, PRIMARY)
    assert v["outcome"] == "inconclusive"


def test_heterogeneous_fields_widen_the_pooled_interval():
    same = pooled_shift([0.3] * 6, [0.1] * 6, margin=1, beyond_margin=1.09, alpha=0.05)
    spread = pooled_shift([0.3, -0.9, 1.5, 0.2, -0.6, 1.3], [0.1] * 6, margin=1, beyond_margin=1.09, alpha=0.05)
    assert same["p_within"] < 0.05 and same["tau2"] == 0
    assert spread["tau2"] > 0.3 and spread["p_within"] > 0.05
    assert spread["interval"][1] - spread["interval"][0] > 3 * (same["interval"][1] - same["interval"][0])


def test_identical_fields_are_within_exactly():
    r = pooled_shift([0.0, 0.0, 0.0], [0.0, 0.0, 0.0], margin=1, beyond_margin=1.09, alpha=0.05)
    assert r["p_within"] == 0 and r["interval"] == [0.0, 0.0]


def _full(shift=0.0, spread=0.2, losses=-0.05, global_eps=0.5, outcome="inconclusive", se=0.1):
    """One field with every criterion: shifts of the primary parameters, the spread (share minus margin,
    within when above 0), the losses (rate minus margin, within when below 0) and one global."""
    criteria = [{"criterion": "shift", "parameter": p, "effect": shift, "se": se} for p in PRIMARY]
    criteria += [{"criterion": "spread", "parameter": "Area, Mean", "effect": spread, "se": 0.05},
                 {"criterion": "losses", "parameter": "raw objects lost, split or merged", "effect": losses,
                  "se": 0.03},
                 {"criterion": "global", "parameter": "N_tot", "effect": global_eps, "se": abs(global_eps) / 4.2}]
    return {"outcome": outcome, "null_outcome": "inconclusive", "criteria": criteria, "null_criteria": criteria}


def test_every_criterion_is_pooled_and_must_be_shown_within():
    """Tolerable needs every pooled criterion shown within, not the shift alone: a spread or a loss rate
    the fields cannot show on the right side of its margin leaves the dataset inconclusive, whatever the
    shift, and one shown on the wrong side makes it not tolerable."""
    rng = np.random.default_rng(5)
    good = [_full(shift=rng.normal(0, 0.1), spread=rng.normal(0.2, 0.03)) for _ in range(8)]
    v = judge_dataset(good, Margins(), 10, PRIMARY)
    assert v["outcome"] == "tolerable"
    assert {c["criterion"] for c in v["criteria"]} == {"shift", "spread", "losses", "global"}
    assert all(c["decision"] == "within" for c in v["criteria"])
    # the spread at its margin in every field: not shown above it
    undecided = [_full(shift=rng.normal(0, 0.1), spread=rng.normal(0.0, 0.03)) for _ in range(8)]
    v = judge_dataset(undecided, Margins(), 10, PRIMARY)
    assert v["outcome"] == "inconclusive"
    assert [c["decision"] for c in v["criteria"] if c["criterion"] == "spread"] == ["undecided"]
    assert any(r.startswith("spread:") for r in v["reasons"])
    # losses clearly above their margin in every field: not tolerable, though every shift is ~0
    lossy = [_full(shift=rng.normal(0, 0.1), losses=rng.normal(0.15, 0.02)) for _ in range(8)]
    v = judge_dataset(lossy, Margins(), 10, PRIMARY)
    assert v["outcome"] == "not tolerable"
    assert [c["decision"] for c in v["criteria"] if c["criterion"] == "losses"] == ["beyond"]


def test_a_field_not_judged_or_infinite_blocks_within():
    rng = np.random.default_rng(6)
    fields = [_full(shift=rng.normal(0, 0.1)) for _ in range(8)]
    assert judge_dataset(fields, Margins(), 10, PRIMARY)["outcome"] == "tolerable"
    for bad in (math.nan, math.inf):
        broken = [dict(f, criteria=[dict(c) for c in f["criteria"]]) for f in fields]
        broken[3]["criteria"][0]["effect"] = bad
        v = judge_dataset(broken, Margins(), 10, PRIMARY)
        assert v["outcome"] == "inconclusive", bad
        first = v["criteria"][0]
        assert first["decision"] == "undecided" and np.isnan(first["p_within"])
        assert (first["left_out"], first["infinite"]) == ((1, 0) if math.isnan(bad) else (0, 1))
        assert "not judged" in v["reasons"][0] or "infinite" in v["reasons"][0]


def test_identical_fields_are_within_exactly_on_every_criterion():
    fields = [_full(shift=0.0, global_eps=0.0, se=0.0) for _ in range(2)]
    for f in fields:
        for c in f["criteria"]:
            c["exact"] = True
    v = judge_dataset(fields, Margins(), 10, PRIMARY)
    assert v["outcome"] == "tolerable"
    assert all(c.get("exact") for c in v["criteria"])


def test_field_counts_are_reported_not_tested():
    counts = field_counts(["tolerable"] * 3 + ["not tolerable"] + ["inconclusive"] * 2,
                          ["tolerable"] * 5 + ["inconclusive"], alpha=0.05)
    assert (counts["tolerable_fields"], counts["not_tolerable_fields"], counts["inconclusive_fields"]) == (3, 1, 2)
    assert counts["null_tolerable_fields"] == 5 and counts["tested"] is False
    assert 0 < counts["interval"][0] < 0.5 < counts["interval"][1] < 1
    # the fields' outcomes do not decide: a pooled shift within stays tolerable beside inconclusive fields
    rng = np.random.default_rng(3)
    fields = _fields(rng.normal(0, 0.1, 12), np.full(12, 0.1), outcome="inconclusive")
    v = judge_dataset(fields, Margins(), 10, PRIMARY)
    assert v["outcome"] == "tolerable" and v["counts"]["tolerable_fields"] == 0


@pytest.mark.parametrize("sided, truth", [("below", 0.0), ("two", 1.0)])
def test_pooled_criteria_hold_their_level_at_the_margin(sided, truth):
    """Size against the truth: fields whose true loss rate is exactly at its margin (binomial counts of 50
    objects, 6 fields) are called beyond, and fields whose true shift is exactly the margin are called
    within, at most about alpha of the time (2000 simulated datasets each)."""
    rng = np.random.default_rng(7)
    calls = 0
    for _ in range(2000):
        if sided == "below":
            x = rng.binomial(50, 0.06, size=6)
            d, se = zip(*(proportion_margin_effect(int(k), 50, 0, math.inf, ratio=1.0, offset=0.06) for k in x))
            r = pooled_criterion(d, se, sided="below", alpha=0.05)
            calls += r["p_beyond"] < 0.05
        else:
            se = np.full(6, 0.2)
            r = pooled_criterion(rng.normal(truth, se), se, sided="two", margin=1.0, beyond_margin=1.0, alpha=0.05)
            calls += r["p_within"] < 0.05
    assert calls / 2000 < 0.065, calls
# --- the dataset CSV ----------------------------------------------------------------------------------

@pytest.fixture
def files(tmp_path):
    for name in ("a.tif", "b.tif", "a_labels.tif", "b_labels.tif", "camera.json", "model.npz"):
        (tmp_path / name).write_bytes(b"x")
    return tmp_path


def _csv(folder, text, name="dataset.csv"):
    path = folder / name
    path.write_text(text)
    return path


def test_rows_resolve_against_the_csv_folder_and_take_the_defaults(files):
    sub = files / "sub"
    sub.mkdir()
    path = _csv(sub, "image,labels\n../a.tif,../a_labels.tif\n../b.tif,\n")
    fields = read_dataset(path, camera=files / "camera.json", model=files / "model.npz")
    assert [f.name for f in fields] == ["a", "b"] and [f.row for f in fields] == [2, 3]
    assert fields[0].labels == str(files / "a_labels.tif") and fields[0].model is None
    assert fields[1].model == str(files / "model.npz") and fields[1].labels is None
    assert fields[0].camera == str(files / "camera.json")


def test_field_names_are_unique_and_safe(files):
    (files / "x y.tif").write_bytes(b"x")
    (files / "other").mkdir()
    (files / "other" / "x y.tif").write_bytes(b"x")
    path = _csv(files, "image,camera,labels\nx y.tif,camera.json,a_labels.tif\nother/x y.tif,camera.json,a_labels.tif\n")
    # the same image name in two folders: each field is named by its path from the CSV's folder
    assert [f.name for f in read_dataset(path)] == ["x_y", "other_x_y"]
    # names that differ only in case in one folder (one on a case-insensitive file system): numbered
    (files / "X y.tif").write_bytes(b"x")
    path = _csv(files, "image,camera,labels\nX y.tif,camera.json,a_labels.tif\nx y.tif,camera.json,a_labels.tif\n")
    assert [f.name for f in read_dataset(path)] == ["X_y", "x_y-2"]


@pytest.mark.parametrize("text, defaults, expected", [
    ("image,labels\nmissing.tif,a_labels.tif\n", {"camera": "camera.json"},
     "dataset.csv row 2, column image: no such file: missing.tif"),
    ("image,labels\na.tif,a_labels.tif\nb.tif,nolabels.tif\n", {"camera": "camera.json"},
     "dataset.csv row 3, column labels: no such file: nolabels.tif"),
    ("image,colour\na.tif,red\n", {}, "dataset.csv row 1: unknown column 'colour'"),
    ("camera,labels\ncamera.json,a_labels.tif\n", {}, "dataset.csv row 1: no 'image' column"),
    ("image,labels\n,a_labels.tif\n", {"camera": "camera.json"}, "dataset.csv row 2, column image: empty"),
    ("image,camera\na.tif,camera.json\n", {}, "dataset.csv row 2, columns model and labels: both empty"),
    ("image,labels\na.tif,a_labels.tif\n", {}, "dataset.csv row 2, column camera: empty and no --camera"),
    ("image,labels,model\na.tif,a_labels.tif,model.npz\n", {"camera": "camera.json"},
     "dataset.csv row 2, columns labels and model: give one"),
    ("image,labels\na.tif,a_labels.tif\nb.tif,b_labels.tif\n./a.tif,a_labels.tif\n", {"camera": "camera.json"},
     "dataset.csv row 4, column image: ./a.tif is the image of row 2 already"),
    ("image\n", {"camera": "camera.json"}, "dataset.csv: no field listed"),
])
def test_bad_csv_is_one_line_naming_row_and_column(files, text, defaults, expected):
    path = _csv(files, text)
    defaults = {k: str(files / v) for k, v in defaults.items()}
    with pytest.raises(InputError) as info:
        read_dataset(path, **defaults)
    message = str(info.value)
    assert "\n" not in message and expected in message.replace(str(files) + os.sep, "")


def test_bad_csv_on_the_command_line_is_one_line_and_writes_nothing(files, capsys):
    path = _csv(files, "image,labels\na.tif,a_labels.tif\nb.tif,\n")
    out = files / "out"
    code = main(["assess-dataset", str(path), "--camera", str(files / "camera.json"), "--codec", "lossless",
                 "-o", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert "row 3, columns model and labels" in err and not out.exists()


def test_a_folder_of_the_users_files_is_refused_and_kept(files, capsys):
    path = _csv(files, "image,camera,labels\na.tif,camera.json,a_labels.tif\n")
    out = files / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    code = main(["assess-dataset", str(path), "--codec", "lossless", "-o", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "noisestat did not write" in err
    assert (out / "notes.txt").read_text() == "keep me" and sorted(os.listdir(out)) == ["notes.txt"]


# --- a simulated dataset end to end -------------------------------------------------------------------

@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Three small simulated fields (96 x 96) with their labels, one camera, and the dataset CSV."""
    d = tmp_path_factory.mktemp("dataset")
    rows = ["image,camera,labels"]
    for i in range(3):
        electrons, truth = simulate_scene((96, 96), n_objects=14, radius=(3.0, 6.0), rng=40 + i)
        tifffile.imwrite(d / f"field{i}.tif", acquire(electrons, CAMERA, 50 + i))
        tifffile.imwrite(d / f"field{i}_labels.tif", sparse_labels(truth, rng=60 + i))
        rows.append(f"field{i}.tif,camera.json,field{i}_labels.tif")
    (d / "camera.json").write_text(json.dumps({"gain_dn_per_e": CAMERA.gain_dn_per_e, "offset_dn": CAMERA.offset_dn,
                                               "read_noise_dn": CAMERA.read_noise_dn, "bit_depth": CAMERA.bit_depth}))
    (d / "dataset.csv").write_text("\n".join(rows) + "\n")
    return d


def _run(d, out, capsys):
    code = main(["assess-dataset", str(d / "dataset.csv"), "--codec", "lossless", "--replicas", "3", "--quiet",
                 "-o", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


@pytest.mark.slow
def test_dataset_runs_resumes_and_reruns_only_a_changed_field(dataset, tmp_path, capsys):
    out = tmp_path / "ds"
    printed = _run(dataset, out, capsys)
    assert "lossless: TOLERABLE over 3 fields" in printed and "(3 run, 0 kept" in printed
    summary = json.loads((out / "summary.json").read_text())
    first = (out / "summary.json").read_bytes()
    # per-field folders, each a complete assessment; the pooled outputs beside them
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["field0", "field1", "field2"]
    for name in ("field0", "field1", "field2"):
        assert (out / name / "summary.json").exists() and (out / name / "report.html").exists()
    assert (out / "fields.csv").read_text().count("\n") == 1 + 3 * 2
    assert "<img src=\"data:image/png;base64," in (out / "report.html").read_text()
    (codec,) = summary["codecs"]
    assert codec["spec"] == "lossless" and codec["outcome"] == "tolerable" and codec["tolerable"] is True
    assert codec["fields"] == 3 and set(codec["pooled_shift"]) == set(summary["primary"])
    assert all(s["margin"] == 1.0 and s["decision"] == "within" for s in codec["pooled_shift"].values())
    assert codec["field_counts"]["tolerable_fields"] == 3 and "outcome" in codec["null"]
    assert {c["criterion"] for c in codec["pooled_criteria"]} >= {"spread", "losses", "global"}
    assert all(c["decision"] == "within" and c.get("exact") for c in codec["pooled_criteria"])
    seeds = [f["seed"] for f in summary["fields"]]
    assert len(set(seeds)) == 3 and [f["row"] for f in summary["fields"]] == [2, 3, 4]
    assert "timing" not in (out / "summary.json").read_text()

    # an interrupted run: one field's folder gone, a killed run's staging folder beside it
    shutil.rmtree(out / "field1")
    stale = out / ".field1.999999999-deadbeef.partial"
    stale.mkdir()
    (stale / ".noisestat-output").write_text(json.dumps({"noisestat": "x", "command": "assess"}))
    kept = (out / "field0" / "summary.json").stat().st_mtime_ns
    printed = _run(dataset, out, capsys)
    assert "(1 run, 2 kept" in printed and not stale.exists()
    assert (out / "summary.json").read_bytes() == first
    assert (out / "field0" / "summary.json").stat().st_mtime_ns == kept

    # a changed input reruns that field only
    electrons, truth = simulate_scene((96, 96), n_objects=14, radius=(3.0, 6.0), rng=42)
    tifffile.imwrite(dataset / "field2_labels.tif", sparse_labels(truth, rng=99))
    printed = _run(dataset, out, capsys)
    assert "(1 run, 2 kept" in printed
    again = json.loads((out / "summary.json").read_text())
    assert again["fields"][2]["inputs"]["labels"]["sha256"] != summary["fields"][2]["inputs"]["labels"]["sha256"]
    assert again["fields"][:2] == summary["fields"][:2]


def test_two_fields_that_disagree_are_inconclusive_and_counted():
    # two fields disagreeing on the shift leave it undecided on one degree of freedom; the counts say that
    # both fields were not tolerable on their own
    fields = _fields([0.5, 6.0], [0.2, 0.2], outcome="not tolerable", null_outcome="inconclusive")
    v = judge_dataset(fields, Margins(), 10, PRIMARY)
    assert v["outcome"] == "inconclusive"
    assert v["counts"]["not_tolerable_fields"] == 2


def test_an_edited_predictor_makes_its_fields_run_again(tmp_path):
    """A field's record (what resuming compares) holds the SHA-256 of a --predictor-python file and of a
    --predictor-command's script, so editing either runs the fields again instead of keeping stale ones."""
    from noisestat.dataset import _record
    from noisestat.io import DatasetField

    for name in ("raw.tif", "camera.json"):
        (tmp_path / name).write_bytes(b"x")
    script = tmp_path / "seg.py"
    script.write_text("def labels(image):\n    return image > 300\n")
    field_python = DatasetField("raw", 2, str(tmp_path / "raw.tif"), str(tmp_path / "camera.json"),
                                predictor_python=f"{script}:labels")
    field_command = DatasetField("raw", 2, str(tmp_path / "raw.tif"), str(tmp_path / "camera.json"),
                                 predictor_command=f"python {script} {{input}} {{output}}")
    before = [_record(f, 0, 1, {}) for f in (field_python, field_command)]
    assert before[0]["inputs"]["predictor_python"]["sha256"] and before[1]["inputs"]["predictor_command"]["script_sha256"]
    assert [_record(f, 0, 1, {}) for f in (field_python, field_command)] == before
    script.write_text("def labels(image):\n    return image > 350\n")
    after = [_record(f, 0, 1, {}) for f in (field_python, field_command)]
    assert after[0] != before[0] and after[1] != before[1]


def test_a_dataset_of_2d_images_and_3d_volumes_is_refused_before_any_work(tmp_path, capsys):
    tifffile.imwrite(tmp_path / "plane.tif", np.full((32, 32), 500, np.uint16))
    tifffile.imwrite(tmp_path / "volume.tif", np.full((12, 32, 32), 500, np.uint16), imagej=True,
                     metadata={"axes": "ZYX"})
    for name in ("labels.tif", "camera.json"):
        (tmp_path / name).write_bytes(b"x")
    path = _csv(tmp_path, "image,camera,labels\nplane.tif,camera.json,labels.tif\nvolume.tif,camera.json,labels.tif\n")
    code = main(["assess-dataset", str(path), "--codec", "lossless", "-o", str(tmp_path / "ds")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err
    assert "mixes 2D images (row 2:" in err and "3D volumes (row 3:" in err
    assert not (tmp_path / "ds").exists()


def test_a_dataset_that_fails_before_any_field_is_finished_leaves_no_folder(tmp_path, capsys):
    """A field that cannot be assessed (its camera cell names an image, not a profile): one line, and the
    dataset's folder this run made is gone with nothing in it."""
    from noisestat.simulate import acquire, simulate_scene

    electrons, truth = simulate_scene((48, 48), n_objects=4, rng=3)
    tifffile.imwrite(tmp_path / "a.tif", acquire(electrons, CAMERA, rng=4))
    tifffile.imwrite(tmp_path / "labels.tif", sparse_labels(truth, rng=5))
    path = _csv(tmp_path, "image,camera,labels\na.tif,labels.tif,labels.tif\n")
    code = main(["assess-dataset", str(path), "--codec", "lossless", "--replicas", "2", "-o", str(tmp_path / "ds")])
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert code == 1 and last.startswith("noisestat: error: ") and "labels.tif: not a JSON camera profile" in last
    assert not (tmp_path / "ds").exists()
