"""What was measured: label images that join the tables, the objects outside the noise band, the
segmentation warnings and the report's explanations, on small simulated scenes."""

from __future__ import annotations

import csv
import json
import math
import re

import numpy as np
import pytest
import tifffile

from noisestat.codecs._base import Codec
from noisestat.report import (COUNT_RATIO, GIANT_IMAGE_FRACTION, OUTSIDE_BAND_COLUMNS, segmentation_warnings,
                                  write_label_image)
from noisestat.measure import PARAMETERS, measure_objects
from noisestat.camera import load_profile
from noisestat.pipeline import assess, assess_files, write_assessment
from noisestat.report._tables import _safe_name
from noisestat.report import FIGURE_NAMES

CODECS = ("lossless", "jpeg:ratio=20", "bitdepth:bits=8,mode=shift")


@pytest.fixture(scope="module")
def run(scene_files, tmp_path_factory):
    out = tmp_path_factory.mktemp("measured") / "out"
    result = assess_files(scene_files / "raw.tif", scene_files / "camera.json", list(CODECS), out,
                          labels_path=scene_files / "labels.tif", replicas=3, seed=0)
    return result, out


def _read_csv(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _areas(labels: np.ndarray) -> dict:
    ids, counts = np.unique(labels[labels > 0], return_counts=True)
    return dict(zip(ids.tolist(), counts.tolist()))


def _label_path(out, k, spec):
    return out / "labels" / (f"{k:02d}_{_safe_name(spec)}.tif" if k else "00_raw.tif")


# --------------------------------------------------------------------------------------------------
# Label images
# --------------------------------------------------------------------------------------------------

def test_label_images_exist_with_the_raw_shape_an_integer_dtype_and_imagej_metadata(run, scene_files):
    result, out = run
    shape = tifffile.imread(scene_files / "raw.tif").shape
    for k, spec in enumerate(("raw",) + CODECS):
        path = _label_path(out, k, spec)
        assert path.is_file(), path
        with tifffile.TiffFile(path) as tif:
            labels = tif.asarray()
            assert tif.is_imagej, path.name
        assert labels.shape == shape and labels.dtype == np.uint16, path.name
        assert labels.max() > 1, path.name


def test_raw_label_ids_and_areas_join_objects_csv(run):
    result, out = run
    raw = tifffile.imread(out / "labels" / "00_raw.tif")
    rows = [r for r in _read_csv(out / "objects.csv") if r["codec"] == CODECS[0] and r["parameter"] == "Area"]
    table = {int(r["object"]): float(r["chi_raw"]) for r in rows}
    assert len(table) == len(result.raw) > 5
    assert _areas(raw) == table


@pytest.mark.parametrize("k", range(1, len(CODECS) + 1))
def test_codec_label_ids_join_codec_object_and_the_imagej_table(run, k):
    result, out = run
    spec = CODECS[k - 1]
    labels = tifffile.imread(_label_path(out, k, spec))
    areas = _areas(labels)
    rows = [r for r in _read_csv(out / "objects.csv") if r["codec"] == spec and r["parameter"] == "Area"]
    matched = {int(r["codec_object"]): float(r["chi_codec"]) for r in rows if r["codec_object"]}
    assert matched, spec
    assert all(areas[i] == area for i, area in matched.items())
    # Every object of the decoded image (matched or not) is a row of its ImageJ table, in label order.
    imagej = _read_csv(out / "imagej" / f"{k:02d}_{_safe_name(spec)}.csv")
    assert [float(r["Area"]) for r in imagej] == [areas[i] for i in sorted(areas)]


def test_large_label_ids_are_written_as_uint32(tmp_path):
    labels = np.zeros((8, 8), np.int64)
    labels[:2, :2] = 70000
    labels[5:, 5:] = 3
    write_label_image(tmp_path / "big.tif", labels)
    back = tifffile.imread(tmp_path / "big.tif")
    assert back.dtype == np.uint32 and np.array_equal(back, labels)


# --------------------------------------------------------------------------------------------------
# Objects outside the noise band
# --------------------------------------------------------------------------------------------------

def _worst_from_objects_csv(out):
    """(codec, object) -> (max |eps| over the parameters, n_replicas_matched, codec_object) from objects.csv."""
    worst = {}
    for r in _read_csv(out / "objects.csv"):
        key = (r["codec"], int(r["object"]))
        e = abs(float(r["eps"])) if r["eps"] else math.nan
        best, n, partner = worst.get(key, (math.nan, int(r["n_replicas_matched"]), r["codec_object"]))
        if not math.isnan(e) and not e <= best:
            best = e
        worst[key] = (best, n, partner)
    return worst


def test_outside_band_csv_is_complete_and_holds_nothing_inside_the_band(run):
    result, out = run
    rows = _read_csv(out / "outside_band.csv")
    assert tuple(rows[0].keys()) == OUTSIDE_BAND_COLUMNS
    worst = _worst_from_objects_csv(out)
    want = {k for k, (e, _, _) in worst.items() if e >= 1}
    want_lost = {k for k, (_, n, partner) in worst.items() if not partner and n >= 2}
    got = {(r["codec"], int(r["object"])) for r in rows if r["worst_parameter"]}
    got_lost = {(r["codec"], int(r["object"])) for r in rows if not r["worst_parameter"]}
    assert want, "the scene should give some objects outside the band"
    assert got == want
    assert got_lost == want_lost
    assert not {(r["codec"], int(r["object"])) for r in rows if r["codec"] == "lossless"}
    for r in rows:
        if r["worst_parameter"]:
            key = (r["codec"], int(r["object"]))
            assert abs(float(r["eps"])) == worst[key][0]
            assert r["worst_parameter"] in PARAMETERS
            assert float(r["match_rate"]) == int(r["n_replicas_matched"]) / result.n_replicas


def test_outside_band_csv_is_sorted_worst_first_per_codec(run):
    _, out = run
    rows = _read_csv(out / "outside_band.csv")
    assert [r["codec"] for r in rows] == sorted((r["codec"] for r in rows), key=CODECS.index)
    for spec in CODECS:
        mine = [r for r in rows if r["codec"] == spec]
        assert [int(r["rank"]) for r in mine] == list(range(1, len(mine) + 1))
        scored = [abs(float(r["eps"])) for r in mine if r["worst_parameter"]]
        assert scored == sorted(scored, reverse=True)
        # lost objects (no eps) come after every scored one
        kinds = [bool(r["worst_parameter"]) for r in mine]
        assert kinds == sorted(kinds, reverse=True)


def test_outside_band_takes_every_object_at_or_beyond_one_and_none_inside(run):
    import dataclasses

    from noisestat.report import outside_band

    result, _ = run
    c = result.codecs[1]
    n = len(result.raw)
    rng = np.random.default_rng(7)
    eps = rng.uniform(-0.99, 0.99, size=(n, len(PARAMETERS)))
    eps[:, 3] = np.nan                                 # a parameter not estimable: ignored
    per_object = [0.999, 1.0, -1.0, 1.5, np.inf, -np.inf, -2.5, 0.5]
    for i, v in enumerate(per_object):
        eps[i, 5 + i] = v
    codec = dataclasses.replace(c, eps=eps)
    rows = outside_band(dataclasses.replace(result, codecs=(codec,)))[c.spec]
    scored = [r for r in rows if r["worst_parameter"]]
    want = {int(result.raw.labels[i]) for i, v in enumerate(per_object) if abs(v) >= 1}
    assert {r["object"] for r in scored} == want
    assert [abs(r["eps"]) for r in scored] == sorted((abs(v) for v in per_object if abs(v) >= 1), reverse=True)
    assert all(r["worst_parameter"] == PARAMETERS[5 + per_object.index(r["eps"])] for r in scored)


def test_outside_band_worst_eps_matches_the_assessment(run):
    result, out = run
    rows = [r for r in _read_csv(out / "outside_band.csv") if r["codec"] == CODECS[1] and r["worst_parameter"]]
    c = result.codecs[1]
    row_of = {int(i): k for k, i in enumerate(result.raw.labels)}
    for r in rows:
        i, j = row_of[int(r["object"])], PARAMETERS.index(r["worst_parameter"])
        assert float(r["eps"]) == c.eps[i, j]
        assert float(r["chi_raw"]) == result.raw.values[i, j]
        assert float(r["chi_codec"]) == c.objects.values[i, j]


# --------------------------------------------------------------------------------------------------
# What the codec's segmentation made of each raw object
# --------------------------------------------------------------------------------------------------

def test_status_joins_the_pipeline_record_or_the_label_images(run):
    result, out = run
    rows = _read_csv(out / "outside_band.csv")
    row_of = {int(i): k for k, i in enumerate(result.raw.labels)}
    assert {r["status"] for r in rows} <= {"matched", "lost", "split", "merged"}
    for spec_index, spec in enumerate(CODECS):
        c = result.codecs[spec_index]
        recorded = getattr(c.objects, "status", None)
        for r in (r for r in rows if r["codec"] == spec):
            i = row_of[int(r["object"])]
            assert (r["status"] == "matched") == bool(r["codec_object"])
            if recorded is not None:
                assert r["status"] == recorded[i]
    # Lost rows name no partner and no eps, and were found by at least 2 replicas.
    for r in rows:
        if not r["worst_parameter"]:
            assert r["status"] != "matched" and not r["eps"] and int(r["n_replicas_matched"]) >= 2


def test_status_is_classified_from_label_images_when_the_pipeline_records_none(run):
    import dataclasses

    from noisestat.report import codec_status

    result, _ = run
    for c in result.codecs:
        if getattr(c.objects, "status", None) is None:
            continue
        bare = dataclasses.replace(c, objects=dataclasses.replace(c.objects, status=None))
        assert codec_status(result, bare).tolist() == list(c.objects.status)


# --------------------------------------------------------------------------------------------------
# Segmentation warnings
# --------------------------------------------------------------------------------------------------

def _cells(shape, rng, n=30, radius=6):
    """Non-touching discs of one size on a grid: a plainly normal segmentation."""
    labels = np.zeros(shape, int)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    k = 0
    for cy in range(10, shape[0] - 10, 20):
        for cx in range(10, shape[1] - 10, 20):
            if k < n:
                k += 1
                r = radius + rng.uniform(-1, 1)
                labels[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = k
    return labels


def test_normal_segmentation_gives_no_warning(small_scene):
    rng = np.random.default_rng(1)
    assert segmentation_warnings(measure_objects(_cells((200, 200), rng)), (200, 200)) == []
    # The simulator's own cells (touching ones joined, as the classifier would) pass too.
    from skimage.measure import label

    truth = small_scene[2]
    assert segmentation_warnings(measure_objects(label(truth, connectivity=2)), truth.shape) == []


def test_one_object_covering_a_fifth_of_the_image_is_giant():
    labels = _cells((200, 200), np.random.default_rng(2))
    labels[100:192, 4:96] = labels.max() + 1  # 8464 px: 21 % of the image
    warnings = segmentation_warnings(measure_objects(labels), labels.shape)
    assert len(warnings) == 1 and "giant object" in warnings[0]
    assert "21.2% of the image" in warnings[0] and f"{GIANT_IMAGE_FRACTION:.0%}" in warnings[0]


def test_an_object_twenty_times_the_median_is_giant_even_when_small_in_the_image():
    labels = _cells((400, 400), np.random.default_rng(3), n=200, radius=4)
    labels[300:340, 300:340] = 0
    labels[300:340, 300:340] = labels.max() + 1  # 1600 px: 1 % of the image, ~30x the median
    warnings = segmentation_warnings(measure_objects(labels), labels.shape)
    assert len(warnings) == 1 and "giant object" in warnings[0] and "x the median area" in warnings[0]


def test_hundreds_of_specks_are_fragmented():
    rng = np.random.default_rng(4)
    labels = _cells((200, 200), rng, n=39)
    specks = np.zeros_like(labels)
    spots = rng.integers(0, 200, size=(400, 2))
    specks[spots[:, 0], spots[:, 1]] = 1
    specks[labels > 0] = 0
    from skimage.measure import label

    fragments = label(specks, connectivity=2)
    labels = np.where(fragments > 0, fragments + labels.max(), labels)
    warnings = segmentation_warnings(measure_objects(labels), labels.shape)
    assert len(warnings) == 1 and "fragmented" in warnings[0]
    assert re.search(r"\d+ of \d+ objects", warnings[0])


class Speckle(Codec):
    """Decoded image with 3 x 3 bright specks sprinkled on the background (many small objects)."""

    name, summary = "speckle", "bright specks added"

    def apply(self, image, profile):
        out = image.copy()
        rng = np.random.default_rng(5)
        top = int(np.percentile(image, 99.9))
        for r, c in rng.integers(2, min(image.shape) - 2, size=(150, 2)):
            out[r - 1:r + 2, c - 1:c + 2] = top
        return self.result(image, out, None)


class Flood(Codec):
    """Decoded image with a bright block over a fifth of the image (one giant object)."""

    name, summary = "flood", "a bright block"

    def apply(self, image, profile):
        out = image.copy()
        rows, cols = image.shape
        out[rows // 2:rows // 2 + 88, 4:92] = int(np.percentile(image, 99.5))
        return self.result(image, out, None)


def test_a_codec_that_fragments_or_floods_is_warned_in_summary_printed_summary_and_report(scene_files, tmp_path):
    raw = tifffile.imread(scene_files / "raw.tif")
    labels = tifffile.imread(scene_files / "labels.tif")
    result = assess(raw, load_profile(scene_files / "camera.json"), ["lossless", Speckle("speckle"), Flood("flood")],
                    labels=labels, replicas=2, seed=0)
    flooded = [w for w in result.warnings if "segmentation of flood: giant object" in w]
    assert len(flooded) == 1
    block = result.codecs[2].objects.table[:, PARAMETERS.index("Area")].max() / raw.size
    assert block > GIANT_IMAGE_FRACTION and f"{block:.1%} of the image" in flooded[0]
    out = tmp_path / "out"
    ours = [w for w in result.warnings if "segmentation of speckle" in w and "objects against" in w]
    assert len(ours) == 1
    n_raw, n_codec = len(result.raw), result.codecs[1].objects.n_objects
    assert n_codec > COUNT_RATIO * n_raw and f"{n_codec} objects against {n_raw}" in ours[0]
    assert not [w for w in result.warnings if "lossless" in w or "raw segmentation" in w]
    write_assessment(result, out)
    assert ours[0] in json.loads((out / "summary.json").read_text())["warnings"]
    assert f"warning: {ours[0]}" in (out / "summary.txt").read_text()
    assert f"warning: {flooded[0]}" in (out / "summary.txt").read_text()
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.index('id="warnings"') < page.index("Verdict per codec")


def test_normal_run_has_no_segmentation_warning(run):
    result, _ = run
    assert not [w for w in result.warnings if "giant" in w or "fragmented" in w or "objects against" in w]


# --------------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------------

def test_report_shows_the_overlay_and_outside_band_figures(run):
    _, out = run
    page = (out / "report.html").read_text(encoding="utf-8")
    for name in ("segmentation", "outside_band"):
        assert name in FIGURE_NAMES and f'id="{name}"' in page
        assert (out / "figures" / f"{name}.png").is_file()
    assert "Objects outside the noise band" in page and "outside_band.csv" in page


def test_every_table_column_is_explained_under_its_table(run):
    _, out = run
    page = (out / "report.html").read_text(encoding="utf-8")
    tables = re.findall(r"<table(?: class=\"[^\"]*\")?>(.*?)</table>(\s*<dl class=\"legend\">.*?</dl>)?", page, re.S)
    with_header = [(t, legend) for t, legend in tables if "<th>" in t]
    assert len(with_header) >= 2 * len(CODECS) + 2
    for table, legend in with_header:
        heads = {re.sub(r"<[^>]+>", "", h) for h in re.findall(r"<th>(.*?)</th>", table)}
        explained = set(re.findall(r"<dt>(.*?)</dt>", legend))
        assert heads <= explained, heads - explained
        assert "a field recorded by this version" not in legend, legend
    for word in ("p_zero", "p_equivalent", "p_zero_holm", "trimmed_mean", "n_finite", "TOST", "Holm", "Tukey–McLaughlin", "p_beyond"):
        assert word in page, word
    assert "frac_wilson95" in page


def test_outside_band_table_in_the_report_shows_the_top_twenty(run):
    result, out = run
    rows = [r for r in _read_csv(out / "outside_band.csv") if r["codec"] == CODECS[2]]
    page = (out / "report.html").read_text(encoding="utf-8")
    section = page[page.index('id="outside-band"'):page.index("Scores per codec and parameter")]
    assert f"{len([r for r in rows if r['worst_parameter']])} of {len(result.raw)} objects outside" in section
    if len(rows) > 20:
        assert f"and {len(rows) - 20} more in" in section
