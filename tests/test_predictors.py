"""Predictors other than the forest, through the whole assessment (noisestat/predict/_protocol.py).

A threshold on the Gaussian-smoothed image (a MaskPredictor, tiled with a halo of the Gaussian's
radius) and the same threshold labelled by scikit-image (a LabelPredictor, whole image) segment a
simulated scene; their objects are checked against the simulator's truth, not against each other.
"""

import re
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage.measure import label as label_components

import noisestat
from noisestat.engine import segment
from noisestat.errors import ModelError
from noisestat.measure import match_iou, measure_objects
from noisestat.predict._protocol import check_predictor_output, predictor_kind
from noisestat.simulate import acquire, simulate_scene

from conftest import CAMERA

DOCS = Path(__file__).resolve().parents[1] / "docs" / "predictors.md"
BACKGROUND_E, OBJECT_E = 300.0, 1500.0  # simulate_scene's defaults, stated so the threshold follows them
# Half-way between background and cell, in DN: the edge of a cell blurred by the optics lies there.
THRESHOLD_DN = CAMERA.offset_dn + CAMERA.gain_dn_per_e * (BACKGROUND_E + OBJECT_E / 2)
CODECS = ["lossless", "jpeg:quality=5"]


class ThresholdPredictor:
    """Foreground where the image smoothed by a Gaussian of ``sigma`` px exceeds ``threshold_dn``."""

    def __init__(self, threshold_dn, sigma=1.0, truncate=4.0):
        self.threshold_dn = threshold_dn
        self.sigma = sigma
        self.truncate = truncate

    def halo(self, ndim):
        # scipy.ndimage's kernel radius for this sigma and truncate: int(truncate * sigma + 0.5)
        return (int(self.truncate * self.sigma + 0.5),) * ndim

    def predict_mask(self, region):
        smooth = ndi.gaussian_filter(np.asarray(region, dtype=np.float64), self.sigma, truncate=self.truncate)
        return smooth > self.threshold_dn

    def describe(self):
        return {"predictor": "threshold", "threshold_dn": self.threshold_dn, "sigma": self.sigma}


class LabelledThreshold:
    """The same decision, labelled here by scikit-image: a whole-image segmenter."""

    def __init__(self, threshold_dn, sigma=1.0):
        self.mask = ThresholdPredictor(threshold_dn, sigma)

    def segment(self, image):
        return label_components(self.mask.predict_mask(image), connectivity=image.ndim)

    def describe(self):
        return {**self.mask.describe(), "predictor": "labelled threshold"}


class UnderstatedHalo(ThresholdPredictor):
    """Says it needs no context although its Gaussian does: tiles then disagree at their seams."""

    def halo(self, ndim):
        return (0,) * ndim


@pytest.fixture(scope="module")
def scene():
    """256 x 256 px, 24 cells; the truth labelled as noisestat labels (8-connected)."""
    electrons, truth = simulate_scene((256, 256), background_e=BACKGROUND_E, object_e=OBJECT_E, rng=11)
    raw = acquire(electrons, CAMERA, 12)
    return raw, label_components(truth, connectivity=2)


def _assess(raw, model, **kw):
    return noisestat.assess(raw, CAMERA, CODECS, model=model, replicas=4, seed=0, **kw)


@pytest.fixture(scope="module")
def mask_result(scene):
    return _assess(scene[0], ThresholdPredictor(THRESHOLD_DN), tile=64)


@pytest.fixture(scope="module")
def label_result(scene):
    return _assess(scene[0], LabelledThreshold(THRESHOLD_DN))


def _check_against_truth(result, true_labels):
    n_true = int(true_labels.max())
    assert result.raw_objects.n_objects == n_true
    # every true cell found once, one to one
    m = match_iou(true_labels, result.raw_labels)
    assert (m.partner >= 0).all(), f"true cells without a partner: {np.flatnonzero(m.partner < 0) + 1}"
    true_area = measure_objects(true_labels).column("Area")
    found_area = result.raw.column("Area")[m.partner]
    assert abs(result.raw_objects.area_total / true_area.sum() - 1) < 0.03
    assert np.median(np.abs(found_area / true_area - 1)) < 0.05


def test_mask_predictor_finds_the_true_cells(scene, mask_result):
    _check_against_truth(mask_result, scene[1])
    assert mask_result.provenance["classifier"] == ThresholdPredictor(THRESHOLD_DN).describe()


def test_label_predictor_finds_the_true_cells(scene, label_result):
    _check_against_truth(label_result, scene[1])
    assert label_result.provenance["classifier"]["predictor"] == "labelled threshold"


@pytest.mark.parametrize("which", ["mask", "labels"])
def test_lossless_scores_zero_and_a_lossy_codec_does_not(which, mask_result, label_result):
    result = mask_result if which == "mask" else label_result
    lossless, jpeg = result.codecs
    assert lossless.spec == "lossless" and jpeg.spec == "jpeg:quality=5"
    assert np.isfinite(lossless.eps).any()
    assert np.nanmax(np.abs(lossless.eps)) == 0
    assert all(g["eps"] == 0 for g in lossless.global_scores.values())
    assert lossless.compression_ratio > 1
    # the same objects measured after JPEG at quality 5 move by more than the raw noise
    assert np.nanmax(np.abs(jpeg.eps)) > 1


def test_mask_predictor_same_objects_for_any_tile(scene, mask_result):
    whole = _assess(scene[0], ThresholdPredictor(THRESHOLD_DN), tile=4096)
    assert mask_result.provenance["tile"] == 64 and whole.provenance["tile"] == 4096
    assert mask_result.raw_labels.tobytes() == whole.raw_labels.tobytes()
    assert mask_result.raw.values.tobytes() == whole.raw.values.tobytes()
    assert mask_result.sigma_raw.tobytes() == whole.sigma_raw.tobytes()
    for a, b in zip(mask_result.codecs, whole.codecs):
        assert a.objects.labels.tobytes() == b.objects.labels.tobytes()
        assert a.objects.table.tobytes() == b.objects.table.tobytes()
        assert a.eps.tobytes() == b.eps.tobytes()


def test_tile_check_sees_an_understated_halo(scene):
    """The tile comparison above can fail: a halo smaller than the filter's changes the mask at seams."""
    raw = scene[0]
    honest = ThresholdPredictor(THRESHOLD_DN)
    assert np.array_equal(segment(raw, honest, tile=16), segment(raw, honest, tile=4096))
    assert not np.array_equal(segment(raw, UnderstatedHalo(THRESHOLD_DN), tile=16),
                              segment(raw, UnderstatedHalo(THRESHOLD_DN), tile=4096))


def test_mask_predictor_same_labels_in_worker_processes(scene):
    """A predictor travels to workers pickled; its tiles computed there give the same labels."""
    raw = scene[0]
    model = ThresholdPredictor(THRESHOLD_DN)
    assert np.array_equal(segment(raw, model, tile=64, jobs=2), segment(raw, model, tile=64, jobs=1))


def test_custom_predictor_result_is_written(scene, mask_result, tmp_path):
    """An assessment made with any predictor is written like the forest's (summary, tables, report)."""
    import json

    noisestat.write_assessment(mask_result, tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["provenance"]["classifier"] == ThresholdPredictor(THRESHOLD_DN).describe()


# ---- protocol errors: one line, ModelError, naming the predictor ------------------------------------

class _Halo:
    def halo(self, ndim):
        return (0,) * ndim

    def describe(self):
        return {}


class WrongShape(_Halo):
    def predict_mask(self, region):
        return (region > THRESHOLD_DN)[1:]


class FloatMask(_Halo):
    def predict_mask(self, region):
        return (region > THRESHOLD_DN).astype(np.float64)


class HaloOnly(_Halo):
    pass


class FloatLabels:
    def segment(self, image):
        return (image > THRESHOLD_DN).astype(np.float32)

    def describe(self):
        return {}


class NegativeLabels(FloatLabels):
    def segment(self, image):
        return -(image > THRESHOLD_DN).astype(np.int32)


class TransposedLabels(FloatLabels):
    def segment(self, image):
        return label_components(image[:-3] > THRESHOLD_DN).T


class NoDescribe:
    def halo(self, ndim):
        return (0,) * ndim

    def predict_mask(self, region):
        return region > THRESHOLD_DN


def test_predictor_kind():
    assert predictor_kind(ThresholdPredictor(1.0)) == "mask"
    assert predictor_kind(LabelledThreshold(1.0)) == "labels"
    for bad in (HaloOnly(), object(), "threshold"):
        with pytest.raises(ModelError, match=r"is not a predictor: it needs predict_mask\(region\)"):
            predictor_kind(bad)


def test_check_predictor_output():
    mask = np.zeros((4, 5), bool)
    assert np.array_equal(check_predictor_output(FloatMask(), mask, (4, 5), "mask"), mask)
    with pytest.raises(ModelError, match=r"FloatMask returned an array of shape \(5, 4\) for an input of shape \(4, 5\)"):
        check_predictor_output(FloatMask(), mask.T, (4, 5), "mask")
    with pytest.raises(ModelError, match="must return a boolean mask; got dtype float64"):
        check_predictor_output(FloatMask(), mask.astype(float), (4, 5), "mask")
    with pytest.raises(ModelError, match="must return integer labels; got dtype bool"):
        check_predictor_output(FloatLabels(), mask, (4, 5), "labels")
    negative = np.zeros((4, 5), np.int16)
    negative[1, 2] = -2
    with pytest.raises(ModelError, match=r"negative label ids \(min -2\)"):
        check_predictor_output(FloatLabels(), negative, (4, 5), "labels")


@pytest.mark.parametrize("model, message", [
    (HaloOnly(), r"HaloOnly is not a predictor"),
    (object(), r"object is not a predictor"),
    (WrongShape(), r"WrongShape returned an array of shape \(\d+, \d+\) for an input of shape"),
    (FloatMask(), r"FloatMask.predict_mask must return a boolean mask; got dtype float64"),
    (FloatLabels(), r"FloatLabels.segment must return integer labels; got dtype float32"),
    (NegativeLabels(), r"NegativeLabels.segment returned negative label ids"),
    (TransposedLabels(), r"TransposedLabels returned an array of shape"),
    (NoDescribe(), r"NoDescribe.*describe"),
])
def test_bad_predictor_is_one_line_model_error(model, message):
    electrons, _ = simulate_scene((64, 64), rng=3)
    raw = acquire(electrons, CAMERA, 4)
    with pytest.raises(ModelError, match=message) as err:
        noisestat.assess(raw, CAMERA, ["lossless"], model=model, replicas=2, seed=0)
    assert "\n" not in str(err.value)


def test_docs_worked_example_runs():
    """The worked example of docs/predictors.md, run as written."""
    text = DOCS.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, f"{DOCS} has no python example"
    namespace = {}
    exec(compile("\n".join(blocks), str(DOCS), "exec"), namespace)  # noqa: S102 - our own documentation
    result = namespace["result"]
    assert [c.spec for c in result.codecs][0] == "lossless"
    assert np.nanmax(np.abs(result.codecs[0].eps)) == 0
