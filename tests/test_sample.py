"""--sample: a seeded fraction of a volume's tiles judged, its globals extrapolated (noisestat/_tasks.py Sample,
noisestat/score/_sampling.py).

The volumes are small simulated ones whose nuclei a threshold finds exactly (a 3x3x3 mean, halo 1), so the
number of nuclei is known; tiles of 16 or 32 voxels make several tiles of a 32 x 96 x 96 volume.
"""

import math

import numpy as np
import pytest
from scipy import ndimage as ndi

import noisestat
from noisestat._reference import _sample_root
from noisestat._tasks import Sample
from noisestat.cli import main
from noisestat.errors import InputError
from noisestat.score._sampling import kept_probability

from conftest import CAMERA

SHAPE = (32, 96, 96)
BACKGROUND_E, OBJECT_E = 300.0, 1500.0
THRESHOLD_DN = CAMERA.offset_dn + CAMERA.gain_dn_per_e * (BACKGROUND_E + OBJECT_E / 2)


class MeanAbove:
    """Foreground where the 3x3x3 mean exceeds ``threshold_dn`` (halo 1)."""

    def __init__(self, threshold_dn):
        self.threshold_dn = threshold_dn

    def halo(self, ndim):
        return (1,) * ndim

    def predict_mask(self, region):
        return ndi.uniform_filter(np.asarray(region, np.float64), 3, mode="nearest") > self.threshold_dn

    def describe(self):
        return {"predictor": "mean above", "threshold_dn": self.threshold_dn}


MODEL = MeanAbove(THRESHOLD_DN)


def nuclei(centres, radius, rng):
    """A raw volume of balls of ``radius`` voxels at ``centres`` (blurred edges, so that the noise moves them)."""
    zz, yy, xx = np.indices(SHAPE)
    truth = np.zeros(SHAPE, bool)
    for c in centres:
        truth |= (zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 <= radius ** 2
    electrons = BACKGROUND_E + OBJECT_E * ndi.gaussian_filter(truth.astype(float), 0.8)
    rng = np.random.default_rng(rng)
    y = CAMERA.offset_dn + CAMERA.gain_dn_per_e * rng.poisson(electrons) + rng.normal(0, 2, SHAPE)
    return np.clip(np.rint(y), 0, 65535).astype(np.uint16)


def random_centres(n, radius, rng):
    """``n`` ball centres, uniform over the volume, at least 3 voxels apart."""
    rng = np.random.default_rng(rng)
    centres = []
    while len(centres) < n:
        c = rng.uniform(radius, np.array(SHAPE) - radius)
        if all(np.linalg.norm(c - d) >= 2 * radius + 3 for d in centres):
            centres.append(c)
    return centres


def run(raw, **kw):
    kw = {"replicas": 3, "seed": 0, "tile": 32, **kw}
    return noisestat.assess(raw, CAMERA, kw.pop("codecs", ["lossless"]), model=MODEL, **kw)


def tile_interiors():
    """Centres in the middle of each 32-voxel tile: no ball of radius 4 comes near a tile face."""
    return [(16, 16 + 32 * j, 16 + 32 * k) for j in range(3) for k in range(3)]


@pytest.fixture(scope="module")
def interior():
    return nuclei(tile_interiors(), 4.0, 5)


def test_bad_fractions_are_refused(interior):
    for bad in (0, 0.0, 1.5, -0.1, math.nan, "half"):
        with pytest.raises(InputError, match=r"--sample must be a fraction of the tiles in \(0, 1\]"):
            run(interior, sample=bad)


@pytest.mark.parametrize("text", ["0", "1.01", "nan"])
def test_cli_bad_fraction_is_one_line(capsys, tmp_path, text):
    out = tmp_path / "out"
    code = main(["assess", str(tmp_path / "v.tif"), "--camera", str(tmp_path / "c.json"), "--model",
                 str(tmp_path / "m.npz"), "--codec", "lossless", "-o", str(out), "--sample", text])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err.count("\n") == 0 and "--sample" in err and repr(text) in err
    assert not out.exists()


def test_sample_one_keeps_the_objects_and_eps_when_no_object_meets_a_tile_face(interior):
    """With every tile sampled and every nucleus inside a tile, the objects, sigma_raw and eps are those of the
    whole-volume run; the globals are extrapolated (each object weighted by 1 / its chance of being kept)."""
    codecs = ["lossless", "sz3:max_error_sigma=2"]
    full, sampled = run(interior, codecs=codecs), run(interior, codecs=codecs, sample=1.0)
    assert len(full.raw) == len(sampled.raw) == 9
    np.testing.assert_array_equal(full.raw.values, sampled.raw.values)
    np.testing.assert_array_equal(full.sigma_raw, sampled.sigma_raw)
    for a, b in zip(full.codecs, sampled.codecs):
        np.testing.assert_array_equal(a.eps, b.eps)
    assert full.provenance["sample"] is None
    record = sampled.provenance["sample"]
    assert record["n_sampled"] == record["n_tiles"] == 9 and record["fraction"] == 1.0 and record["tile"] == 32
    # all tiles sampled: no sampling error between tiles, only the weights' own variance
    summary = sampled.summary()
    assert summary["raw"]["N_tot"]["value"] > 9 and summary["raw"]["N_tot"]["sampling_se"] > 0
    assert "sampling_se" not in full.summary()["raw"]["N_tot"]
    # the report shows the sampling error beside sigma_raw, and only for a sampled run
    from noisestat.report._page import report_html

    page = report_html(sampled, [])
    assert 'id="sample-globals"' in page and "sampling SE" in page and "9 of 9" in page
    assert f"{summary['raw']['N_tot']['sampling_se']:.3g}" in page
    assert 'id="sample' not in report_html(full, [])


def test_sample_one_is_the_whole_run_without_objects_at_tile_faces():
    """The documented relation: with --sample 1.0 the objects are the whole run's objects that touch no face
    between two tiles, with the same values."""
    raw = nuclei(random_centres(30, 3.5, 2), 3.5, 3)
    full, sampled = run(raw, tile=16), run(raw, tile=16, sample=1.0)
    boxes = ndi.find_objects(full.raw_labels)
    lo = np.array([[s.start for s in b] for b in boxes])
    hi = np.array([[s.stop for s in b] for b in boxes])
    faces = np.zeros(len(boxes), bool)
    for axis, n in enumerate(SHAPE):
        for b in range(16, n, 16):  # voxels b - 1 and b are two tiles' faces
            faces |= (lo[:, axis] <= b) & (hi[:, axis] > b - 1)
    assert 0 < faces.sum() < len(boxes)
    np.testing.assert_array_equal(sampled.raw.values, full.raw.values[~faces])


def test_an_object_cut_by_a_tile_face_is_excluded():
    centres = [(16, 16, 16), (16, 48, 31.5), (16, 80, 80)]  # the second straddles the face between x 31 and 32
    raw = nuclei(centres, 4.0, 7)
    full, sampled = run(raw), run(raw, sample=1.0)
    assert len(full.raw) == 3 and len(sampled.raw) == 2
    x = list(full.raw.names).index("Centroid.X")
    assert sorted(np.round(sampled.raw.values[:, x])) == sorted(np.round(full.raw.values[[0, 2], x]))
    # the cut object is in no image of the sampled run: its labels hold no voxel there
    assert not sampled.raw_labels[16, 48, 24:40].any()


def test_the_same_seed_draws_the_same_tiles(interior):
    a, b, c = run(interior, sample=0.4), run(interior, sample=0.4), run(interior, sample=0.4, seed=3)
    ta, tb, tc = (r.provenance["sample"]["indices"] for r in (a, b, c))
    assert ta == tb and ta != tc
    assert len(ta) == len(tc) == round(0.4 * 9)
    np.testing.assert_array_equal(a.raw.values, b.raw.values)
    assert a.provenance["sample"]["indices_sha256"] != c.provenance["sample"]["indices_sha256"]


def test_lossless_scores_eps_zero_on_the_sampled_tiles():
    raw = nuclei(random_centres(30, 3.5, 4), 3.5, 5)
    result = run(raw, codecs=["lossless"], sample=0.5, tile=16)
    score = result.codecs[0]
    assert len(result.raw) > 0
    assert np.all(score.eps[np.isfinite(score.eps)] == 0)
    for entry in score.global_scores.values():
        assert entry["eps"] == 0 and entry["difference_sampling_se"] == 0


@pytest.mark.slow
def test_extrapolated_n_tot_covers_the_known_count():
    """Over several seeds (each drawing other tiles), the known number of nuclei lies within the estimate's
    99 % interval, and the estimates differ from it and from each other (the interval is not vacuous)."""
    n = 40
    raw = nuclei(random_centres(n, 3.5, 8), 3.5, 9)
    estimates, tiles = [], set()
    for seed in range(5):
        result = run(raw, sample=0.5, tile=16, replicas=2, seed=seed)
        g = result.summary()["raw"]["N_tot"]
        estimates.append(g["value"])
        tiles.add(result.provenance["sample"]["indices_sha256"])
        assert 0 < g["sampling_se"] < n / 2
        assert abs(g["value"] - n) <= 2.576 * g["sampling_se"], (seed, g)
    assert len(tiles) == 5 and len({round(v, 6) for v in estimates}) >= 3 and n not in estimates


@pytest.mark.process
@pytest.mark.slow
def test_workers_do_not_change_a_sampled_run():
    raw = nuclei(random_centres(30, 3.5, 6), 3.5, 7)
    kw = {"codecs": ["lossless", "sz3:max_error_sigma=2"], "sample": 0.5, "tile": 16}
    one, two = run(raw, **kw), run(raw, jobs=2, **kw)
    assert one.provenance["sample"] == two.provenance["sample"]
    np.testing.assert_array_equal(one.raw.values, two.raw.values)
    np.testing.assert_array_equal(one.replica_globals, two.replica_globals)
    for a, b in zip(one.codecs, two.codecs):
        np.testing.assert_array_equal(a.eps, b.eps)
        assert a.global_scores == b.global_scores


def test_kept_probability_counts_the_positions():
    """Against a brute-force count of the starting positions whose object keeps off every inner face."""
    shape, tile = (23, 40), 8
    for extent in [(1, 1), (3, 5), (6, 2), (7, 6)]:
        kept = total = 0
        for z in range(shape[0] - extent[0] + 1):
            for y in range(shape[1] - extent[1] + 1):
                total += 1
                ok = True
                for start, e, n in zip((z, y), extent, shape):
                    stop = start + e  # exclusive
                    ok &= all(not (start <= b <= stop - 1 or start <= b - 1 <= stop - 1) for b in range(tile, n, tile))
                kept += ok
        p = kept_probability([[0, 0]], [list(extent)], shape, tile)[0]
        assert p == pytest.approx(kept / total, abs=1e-12)


def test_sample_whole_drops_objects_on_inner_faces_only():
    labels = np.zeros((1, 32, 32), np.uint16)
    labels[0, 2:4, 2:4] = 1      # inside tile 0
    labels[0, 14:17, 2:4] = 2    # across the face at y 15 | 16
    labels[0, 28:32, 28:32] = 3  # on the volume's edge: kept
    sample = Sample(1.0, 16, 16, (1, 32, 32), np.arange(4), 4)
    kept = sample.whole(labels)
    assert sorted(np.unique(kept).tolist()) == [0, 1, 2]
    assert kept[0, 30, 30] == 2 and kept[0, 15, 3] == 0


def test_a_tile_too_small_for_the_objects_is_warned(interior):
    small, large = run(interior, tile=16, sample=1.0), run(interior, tile=48, sample=1.0)
    # every ball sits on a face between two 16-voxel tiles
    assert len(small.raw) == 0
    assert any(w.startswith("--sample: no object lies wholly inside a sampled tile of 16 px") for w in small.warnings)
    assert not any(w.startswith("--sample") for w in large.warnings)
    raw = nuclei(random_centres(30, 3.5, 2), 3.5, 3)
    warned = run(raw, tile=16, sample=1.0)
    assert len(warned.raw) > 0
    assert any(w.startswith("--sample: the objects are large for tiles of 16 px") for w in warned.warnings)


def test_the_printed_summary_shows_the_extrapolated_totals_with_their_sampling_se(interior):
    from noisestat.report._tables import format_summary

    result = run(interior, sample=0.5)
    line = next(x for x in format_summary(result).splitlines() if x.startswith("sample: "))
    n_tot = result.summary()["raw"]["N_tot"]
    assert f"N_tot {n_tot['value']:.4g} +/- {n_tot['sampling_se']:.3g} (sampling SE" in line
    assert not any(x.startswith("sample: ") for x in format_summary(run(interior)).splitlines())


def test_operators_of_a_sampled_run_score_the_sampled_tiles_only(interior):
    """--sample --operators: the filters are scored on the sampled tiles' voxels (lossless: eps 0 there), as
    the provenance says, not on the whole volume."""
    whole = run(interior, codecs=["lossless"], operators=True)
    sampled = run(interior, codecs=["lossless"], operators=True, sample=0.25)
    cores = Sample.draw(SHAPE, 0.25, 32, 32, _sample_root(0)).cores()
    assert sampled.provenance["operators"] == "the sampled tiles"
    assert whole.provenance["operators"] == "every pixel"
    voxels = sum(math.prod(c.stop - c.start for c in core) for core in cores)
    assert 0 < voxels < math.prod(SHAPE)
    for s in sampled.operators:
        assert s.domain == "volume"
        assert s.pixels + s.excluded_pixels == voxels
        assert s.mean_eps == 0.0 and s.frac_abs_eps_lt_1 == 1.0
    assert all(s.pixels + s.excluded_pixels == math.prod(SHAPE) for s in whole.operators)


def test_tune_with_sample_judges_each_setting_as_a_sampled_assess_does():
    """tune --sample: every setting is judged on the same sampled tiles, so each evaluation's outcome and
    reasons are those of assess --sample with that setting and seed; the provenance records the sample."""
    from noisestat.tune import tune

    raw = nuclei(random_centres(30, 3.5, 4), 3.5, 5)
    result = tune(raw, CAMERA, "bitdepth:mode=shift", model=MODEL, replicas=3, seed=0, tile=16, sample=0.5,
                  max_evaluations=3, verdict_anyway=True)
    assert result.provenance["sample"]["fraction"] == 0.5
    assert result.provenance["sample"]["n_sampled"] >= 1
    for e in result.evaluations:
        alone = run(raw, codecs=[e["spec"]], sample=0.5, tile=16, verdict_anyway=True).codecs[0]
        assert (alone.outcome, list(alone.reasons)) == (e["outcome"], e["reasons"]), e["spec"]
    with pytest.raises(InputError, match="sample"):
        tune(raw, CAMERA, "bitdepth:mode=shift", model=MODEL, replicas=3, sample=1.5)
