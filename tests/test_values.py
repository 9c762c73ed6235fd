"""Value predictors (a value per pixel) through the engine: noisestat.assess_values.

The predictor is a Gaussian smoothing of the image: a linear filter of independent pixels, so the
true spread of its value under the camera's noise is known exactly (the filter's squared weights
applied to the simulator's true variance). sigma_raw is checked against that truth and the null
against real second acquisitions of the simulated scene, never against the pipeline's own output.
"""

import json
import math

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

import noisestat
from noisestat import assess_values, write_assessment
from noisestat.engine import segment
from noisestat.errors import InputError, ModelError, OutputError
from noisestat.predict import predictor_kind
from noisestat.simulate import acquire, simulate_scene

from conftest import CAMERA

SIGMA_PX = 1.5
TRUNCATE = 4.0
HALO = int(TRUNCATE * SIGMA_PX + 0.5)


class Smooth:
    """A value per pixel: the image smoothed by a Gaussian (scipy's kernel, reflecting edges)."""

    def __init__(self, sigma=SIGMA_PX, step=None, dtype=np.float64):
        self.sigma, self.step, self.dtype = sigma, step, dtype

    def halo(self, ndim):
        return (int(TRUNCATE * self.sigma + 0.5),) * ndim

    def predict_values(self, region):
        v = ndi.gaussian_filter(np.asarray(region, dtype=np.float64), self.sigma, truncate=TRUNCATE)
        if self.step:
            v = np.round(v / self.step) * self.step
        return v.astype(self.dtype)

    def describe(self):
        return {"predictor": "gaussian smoothing", "sigma": self.sigma, "step": self.step}


class Constant(Smooth):
    def predict_values(self, region):
        return np.zeros(np.shape(region), dtype=np.float32)


def _scene(shape=(160, 160), seed=0):
    """A scene from dark (tens of electrons) to bright: the noise model is tested in both."""
    electrons, _ = simulate_scene(shape, background_e=20.0, object_e=900.0, rng=seed)
    electrons = electrons * np.linspace(0.3, 1.7, shape[1])[None, :]
    return electrons, acquire(electrons, CAMERA, seed + 1)


def _true_sigma(electrons):
    """sd of the smoothed value of an acquisition: sqrt(sum w^2 var), var the simulator's per-pixel
    variance (gain^2 e + the profile's total read noise^2)."""
    var = CAMERA.gain_dn_per_e ** 2 * electrons + CAMERA.read_noise_dn ** 2
    delta = np.zeros(2 * HALO + 1)
    delta[HALO] = 1.0
    w2 = ndi.gaussian_filter1d(delta, SIGMA_PX, truncate=TRUNCATE) ** 2
    return np.sqrt(ndi.correlate1d(ndi.correlate1d(var, w2, axis=0), w2, axis=1))


@pytest.fixture(scope="module")
def scene():
    return _scene()


@pytest.fixture(scope="module")
def reference(scene):
    _, raw = scene
    return assess_values(raw, CAMERA, ["lossless", "bitdepth:bits=6,mode=minmax"], Smooth(), replicas=16, seed=4)


def test_a_value_predictor_is_recognised():
    assert predictor_kind(Smooth()) == "values"
    assert isinstance(Smooth(), noisestat.predict.ValuePredictor)


def test_sigma_raw_is_the_true_spread_in_the_dark_and_the_bright(scene, reference):
    electrons, _ = scene
    truth = _true_sigma(electrons)
    inner = (slice(HALO, -HALO), slice(HALO, -HALO))  # reflected edges repeat pixels: not independent
    ratio = (reference.sigma_raw[inner] / truth[inner]) ** 2
    dark = electrons[inner] < 15  # a few DN of signal beside 2 DN of read noise
    bright = electrons[inner] > 400
    assert dark.sum() > 1000 and bright.sum() > 1000
    # variance ratio: unbiased; 16 replicas, thousands of pixels (correlated over ~10 px): measured
    # 1.00 in the dark and 0.97 in the bright (sigma_raw is pooled over each pixel's 8 neighbours:
    # the bright side of a cell's edge gets some of the dark side's variance); ddof 0 would give 15/16
    for part in (dark, bright):
        assert abs(ratio[part].mean() - 1) < 0.04, ratio[part].mean()


class Identity(Smooth):
    """The image itself: its sigma_raw is the camera's own noise, pixel by pixel."""

    def halo(self, ndim):
        return (0,) * ndim

    def predict_values(self, region):
        return region


def test_the_image_itself_has_the_camera_noise(scene):
    electrons, raw = scene
    a = assess_values(raw, CAMERA, ["lossless"], Identity(), replicas=16, seed=5)
    assert a.raw_values.dtype == np.float32 and np.array_equal(a.raw_values, raw)
    truth = CAMERA.gain_dn_per_e ** 2 * electrons + CAMERA.read_noise_dn ** 2
    ratio = a.sigma_raw ** 2 / truth
    for part in (electrons < 15, electrons > 400):
        assert abs(ratio[part].mean() - 1) < 0.05, ratio[part].mean()


def test_the_null_is_what_a_second_acquisition_does(scene, reference):
    electrons, raw = scene
    predictor = Smooth()
    v_raw = predictor.predict_values(raw)
    fractions, beyond = [], []
    for k in range(4):  # real second acquisitions of the same scene, against the replicas' sigma_raw
        other = predictor.predict_values(acquire(electrons, CAMERA, 100 + k))
        eps = np.abs(v_raw - other) / reference.sigma_raw
        fractions.append(float((eps < 1).mean()))
        beyond.append(float((eps > reference.null["q99_abs_eps"]).mean()))
    null = reference.null["frac_abs_eps_lt_1"]
    # Gaussian noise: |sqrt(2) N(0, 1)| < 1 for 52 % of pixels
    assert abs(null - 0.52) < 0.04
    assert abs(np.mean(fractions) - null) < 0.03, (fractions, null)
    # the null's 99th percentile of |eps| leaves about 1 % of a real second acquisition's pixels beyond
    assert 0.004 < np.mean(beyond) < 0.02, beyond


def test_codecs_are_scored_pixel_by_pixel(reference):
    lossless, coarse = reference.codecs
    assert np.array_equal(lossless.eps, np.zeros_like(lossless.eps))
    assert lossless.summary["frac_abs_eps_lt_1"] == 1.0 and lossless.summary["beyond_null_q99"] == 0.0
    # 6 bits of a 16-bit range: steps far beyond the camera noise
    assert coarse.summary["frac_abs_eps_lt_1"] < reference.null["frac_abs_eps_lt_1"]
    assert coarse.summary["beyond_null_q99"] > 0.05
    assert coarse.summary["pixels"] == reference.sigma_raw.size


def test_values_do_not_depend_on_tile_or_workers(scene, reference):
    _, raw = scene
    for kwargs in ({"tile": 16}, {"tile": 48, "jobs": 2}):
        other = assess_values(raw, CAMERA, ["lossless", "bitdepth:bits=6,mode=minmax"], Smooth(), replicas=16,
                              seed=4, **kwargs)
        assert np.array_equal(other.raw_values, reference.raw_values)
        assert np.array_equal(other.sigma_raw, reference.sigma_raw)
        for a, b in zip(other.codecs, reference.codecs):
            assert np.array_equal(a.eps, b.eps) and a.summary == b.summary
        assert other.null == reference.null


def test_local_dask_cluster_gives_the_same_values(scene):
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    _, raw = scene
    raw = raw[:64, :96]
    one = assess_values(raw, CAMERA, ["bitdepth:bits=8,mode=minmax"], Smooth(), replicas=4, seed=1, tile=32)
    other = assess_values(raw, CAMERA, ["bitdepth:bits=8,mode=minmax"], Smooth(), replicas=4, seed=1, tile=32,
                          scheduler="local:2")
    assert other.provenance["engine"]["engine"] == "dask"
    assert np.array_equal(one.sigma_raw, other.sigma_raw)
    assert np.array_equal(one.codecs[0].eps, other.codecs[0].eps)


def test_volumes_are_tiled_exactly():
    rng = np.random.default_rng(0)
    electrons = ndi.gaussian_filter(rng.uniform(10, 800, (20, 40, 36)), 2)
    raw = acquire(electrons, CAMERA, 2)
    whole = assess_values(raw, CAMERA, ["bitdepth:bits=8,mode=minmax"], Smooth(1.0), replicas=3, seed=0, tile=64)
    tiled = assess_values(raw, CAMERA, ["bitdepth:bits=8,mode=minmax"], Smooth(1.0), replicas=3, seed=0, tile=16)
    assert whole.sigma_raw.shape == raw.shape
    assert np.array_equal(whole.sigma_raw, tiled.sigma_raw)
    assert np.array_equal(whole.codecs[0].eps, tiled.codecs[0].eps)


def test_quantised_values_get_the_resolution_floor(scene):
    _, raw = scene
    step = 5.0  # several times the smoothed noise: most pixels see no change in any replica
    a = assess_values(raw, CAMERA, ["bitdepth:bits=8,mode=minmax"], Smooth(step=step), replicas=6, seed=2)
    assert (a.sigma_raw == 0).mean() > 0.3
    assert a.sigma_floor == pytest.approx(step / math.sqrt(12))
    eps = a.codecs[0].eps
    assert np.isfinite(eps).all()  # floored: a one-step change scores 3.46, not infinity
    assert np.abs(eps).max() <= np.abs(a.raw_values - a.codecs[0].values).max() / a.sigma_floor + 1e-9


def test_no_spread_at_all_is_said_not_crashed(scene, tmp_path):
    _, raw = scene
    a = assess_values(raw, CAMERA, ["lossless", "bitdepth:bits=6,mode=minmax"], Constant(), replicas=3, seed=0)
    assert a.sigma_floor == 0.0 and not a.sigma_raw.any()
    assert any("sigma_raw is 0 everywhere" in w for w in a.warnings)
    assert all(c.summary["frac_abs_eps_lt_1"] == 1.0 for c in a.codecs)  # nothing changed: eps 0, not NaN
    write_assessment(a, tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["sigma_raw"]["zero_fraction"] == 1.0
    # no value changed anywhere: every region's and global's eps is 0, shown within its margin
    assert [c["outcome"] for c in summary["codecs"]] == ["tolerable", "tolerable"]


@pytest.mark.parametrize("bad, message", [
    (lambda r: np.full(np.shape(r), np.nan), "non-finite values"),
    (lambda r: np.zeros((3, 3)), "shape"),
    (lambda r: np.zeros(np.shape(r), dtype=bool), "real numbers"),
])
def test_bad_values_are_one_line(scene, bad, message):
    _, raw = scene

    class Bad(Smooth):
        def predict_values(self, region):
            return bad(region)

    with pytest.raises(ModelError, match=message) as info:
        assess_values(raw[:40, :40], CAMERA, ["lossless"], Bad(), replicas=2)
    assert "\n" not in str(info.value)


def test_arguments_are_checked(scene):
    _, raw = scene
    with pytest.raises(InputError, match="value per pixel, not objects"):
        noisestat.assess(raw, CAMERA, ["lossless"], model=Smooth(), min_area=5)
    with pytest.raises(InputError, match="not a value predictor"):
        assess_values(raw, CAMERA, ["lossless"], noisestat.PixelClassifier())
    with pytest.raises(InputError, match="at least 2 replicas"):
        assess_values(raw, CAMERA, ["lossless"], Smooth(), replicas=1)
    for jobs in (1, 2):  # no objects to segment: said in one line
        with pytest.raises(InputError, match="value per pixel, not objects"):
            segment(raw, Smooth(), jobs=jobs)


def test_assess_refuses_a_value_predictor_and_assess_values_takes_it(scene):
    _, raw = scene
    with pytest.raises(InputError, match="value per pixel, not objects: assess it with noisestat.assess_values"):
        noisestat.assess(raw[:48, :48], CAMERA, ["lossless"], model=Smooth(), replicas=2)
    said = []
    a = assess_values(raw[:48, :48], CAMERA, ["lossless"], Smooth(), replicas=2, notice=lambda m, s: said.append((m, s)))
    assert isinstance(a, noisestat.ValueAssessment)
    (message, seconds), *revised = said
    # raw, 2 replicas, the simulated second acquisition's pair, and raw again (the determinism check);
    # lossless's decoded image is the raw image and is not predicted again
    assert message.startswith("estimated time:") and "for 6 images" in message and seconds >= 0
    # said once more when the first images took more than twice as long as said, or less than half
    assert len(revised) <= 1 and all(m.startswith("revised estimate: about ") for m, _ in revised)


def test_output_folder(reference, tmp_path):
    out = write_assessment(reference, tmp_path / "values")
    names = sorted(p.name for p in (out / "maps").iterdir())
    assert names == ["00_raw_values.tif", "00_sigma_raw.tif", "01_lossless_eps.tif", "01_lossless_values.tif",
                     "02_bitdepth_bits=6_mode=minmax_eps.tif", "02_bitdepth_bits=6_mode=minmax_values.tif"]
    assert np.array_equal(tifffile.imread(out / "maps" / "00_sigma_raw.tif"), reference.sigma_raw.astype(np.float32))
    lines = (out / "pixels.csv").read_text().splitlines()
    assert lines[0].startswith("codec,compression_ratio,pixels,frac_abs_eps_lt_1,null_frac_abs_eps_lt_1")
    assert len(lines) == 3
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kind"] == "values" and summary["codecs"][1]["spec"] == "bitdepth:bits=6,mode=minmax"
    text = (out / "summary.txt").read_text()
    assert "verdict on the prediction's mean over a grid of" in text and "per pixel: " in text


def test_a_folder_noisestat_did_not_write_is_left_alone(reference, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(OutputError):
        write_assessment(reference, mine)
    assert (mine / "notes.txt").read_text() == "keep me" and sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


class Dark(Smooth):
    """1 where a pixel reads 0 DN (never in the raw image or its replicas: the offset is 100 DN)."""

    def halo(self, ndim):
        return (0,) * ndim

    def predict_values(self, region):
        return (np.asarray(region) == 0).astype(np.float32)


def test_a_change_where_the_replicas_saw_none_is_infinite_and_written(scene, tmp_path):
    _, raw = scene
    decoded = raw.copy()
    decoded[10:14, 20:30] = 0  # an external tool that blacked out 40 pixels
    tifffile.imwrite(tmp_path / "decoded.tif", decoded)
    a = assess_values(raw, CAMERA, [f"file:path={tmp_path / 'decoded.tif'}"], Dark(), replicas=3)
    summary = a.codecs[0].summary
    assert summary["n_infinite"] == 40 and summary["max_abs_eps"] == math.inf
    assert summary["frac_abs_eps_lt_1"] == pytest.approx(1 - 40 / raw.size)
    out = write_assessment(a, tmp_path / "out")
    text = (out / "summary.json").read_text()
    assert "Infinity" not in text and "NaN" not in text  # strict JSON: inf written as "inf"
    assert json.loads(text)["codecs"][0]["max_abs_eps"] == "inf"
    eps_map, = (out / "maps").glob("01_*_eps.tif")
    assert np.isinf(tifffile.imread(eps_map)).sum() == 40


class WholeImageMean:
    """A value that depends on every pixel (the image's mean added to each pixel): exact only when the
    predictor sees the whole image at once, as ``whole_image = True`` asks."""

    whole_image = True

    def halo(self, ndim):
        return (0,) * ndim

    def predict_values(self, region):
        region = np.asarray(region, float)
        return region + region.mean()

    def describe(self):
        return {"name": "whole-image mean"}


def test_a_whole_image_predictor_sees_the_whole_image(scene):
    _, raw = scene
    result = assess_values(raw, CAMERA, ["lossless"], WholeImageMean(), replicas=2, seed=1, tile=32)
    expected = raw.astype(float) + raw.astype(float).mean()
    np.testing.assert_allclose(result.raw_values, expected)
