"""A value predictor's verdict (noisestat.score._values through noisestat.assess_values): region means,
image-level quantities and metrics against a target, judged by the objects' rule.

The predictor is a Gaussian smoothing (a restored image); the scenes are simulated, so a true second
acquisition of the same scene is at hand, and the noise's correlation is known for the block rule.
"""

import json

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from noisestat import assess_values, write_assessment
from noisestat.cli import main
from noisestat.codecs._base import Codec
from noisestat.errors import InputError
from noisestat.score._values import (LENGTHS_PER_EDGE, MIN_EDGE, REGION_PARAMETER, block_edge, block_regions,
                                     correlation_length)
from noisestat.simulate import acquire, simulate_scene

from conftest import CAMERA


class Smooth:
    """A Gaussian smoothing of 1.5 px."""

    def halo(self, ndim):
        return (6,) * ndim

    def predict_values(self, region):
        return ndi.gaussian_filter(np.asarray(region, dtype=np.float64), 1.5, truncate=4.0)

    def describe(self):
        return {"predictor": "smooth"}


class GivenImage(Codec):
    """A given image scored as if it were a decoded one."""

    name, summary = "given", "an image given directly"

    def __init__(self, spec, image):
        super().__init__(spec)
        self.image = image

    def apply(self, image, profile):
        return self.result(image, self.image, None)


@pytest.fixture(scope="module")
def scene():
    electrons, truth = simulate_scene((120, 120), n_objects=30, radius=(3.0, 7.0), background_e=200.0,
                                      object_e=600.0, rng=3)
    return electrons, truth, acquire(electrons, CAMERA, [3, 1]), acquire(electrons, CAMERA, [3, 2])


@pytest.fixture(scope="module")
def target(scene):
    electrons = scene[0]
    return CAMERA.offset_dn + CAMERA.gain_dn_per_e * electrons  # the noise-free image in DN


@pytest.fixture(scope="module")
def judged(scene, target):
    _, _, raw, second = scene
    return assess_values(raw, CAMERA, ["lossless", GivenImage("second acquisition", second), "bitdepth:bits=3"],
                         Smooth(), replicas=10, seed=2, target=target)


def test_a_true_second_acquisition_is_tolerable(judged):
    second = judged.codecs[1]
    assert second.outcome == "tolerable", second.verdict.reasons
    kinds = {(c["criterion"], c["parameter"]) for c in second.verdict.criteria}
    assert ("shift", REGION_PARAMETER) in kinds and ("global", "mean") in kinds
    assert {"spread", "outliers"} <= {k for k, _ in kinds} and "losses" not in {k for k, _ in kinds}
    # the metrics against a target are reported, not judged (their replicas' spread is not a second
    # acquisition's), and the sum is judged through the mean
    assert not any(p in ("MSE", "SSIM", "r", "PSNR", "sum") for _, p in kinds)
    assert all(m["judged"] is False for m in second.quantities["metrics"].values())


def test_lossless_is_tolerable_with_eps_zero(judged):
    lossless = judged.codecs[0]
    assert lossless.outcome == "tolerable"
    assert lossless.quantities["regions"]["eps"] and not np.any(lossless.quantities["regions"]["eps"])
    assert all(g["eps"] == 0 for g in lossless.quantities["globals"].values())
    assert all(m["change"] == 0 for m in lossless.quantities["metrics"].values())


def test_a_destructive_codec_is_not_tolerable(judged):
    coarse = judged.codecs[2]
    assert coarse.outcome == "not tolerable"
    assert any(c["decision"] == "beyond" for c in coarse.verdict.criteria if c["criterion"] != "global")


def test_the_grid_follows_the_correlation_length(judged):
    regions = judged.judged["regions"]
    assert regions["source"] == "grid"
    # a 1.5 px Gaussian smoothing of independent pixels: correlation exp(-d^2 / (4 1.5^2)), 1/e at 3 px
    assert 2.6 < regions["correlation_length_px"] < 3.4
    edge = regions["edge_px"]
    assert edge == block_edge(regions["correlation_length_px"]) and 11 <= edge <= 15 and edge % 2 == 1
    origin = regions["origin_px"]
    assert len(origin) == 2 and all(0 <= o < edge for o in origin)
    assert regions["n_regions"] == np.prod([(120 - o) // edge for o in origin]) == judged.region_labels.max()


def test_target_metrics_match_a_direct_computation(judged, target):
    data_range = target.max() - target.min()
    for c in judged.codecs:
        values = c.values.astype(np.float64)
        got = c.quantities["metrics"]
        assert got["MSE"]["codec"] == pytest.approx(np.mean((values - target) ** 2), rel=1e-12)
        assert got["PSNR"]["codec"] == pytest.approx(peak_signal_noise_ratio(target, values, data_range=data_range))
        assert got["SSIM"]["codec"] == pytest.approx(structural_similarity(target, values, data_range=data_range))
        assert got["r"]["codec"] == pytest.approx(np.corrcoef(values.ravel(), target.ravel())[0, 1], rel=1e-10)
    raw = judged.raw_values.astype(np.float64)
    assert judged.codecs[0].quantities["metrics"]["MSE"]["raw"] == pytest.approx(np.mean((raw - target) ** 2))
    # the change and the replicas' spread are reported beside it
    m = judged.codecs[2].quantities["metrics"]["MSE"]
    assert m["change"] == pytest.approx(m["codec"] - m["raw"]) and m["replicas_sd"] > 0


def test_summary_json_has_the_verdict_and_the_metrics(judged, tmp_path):
    write_assessment(judged, tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    codecs = summary["codecs"]
    assert [c["outcome"] for c in codecs] == ["tolerable", "tolerable", "not tolerable"]
    assert [c["tolerable"] for c in codecs] == [True, True, False]
    assert all("margin" in k for c in codecs for k in c["verdict"]["criteria"])
    assert set(codecs[1]["metrics"]) == {"MSE", "PSNR", "SSIM", "r"}
    assert summary["verdict"]["regions"] == judged.judged["regions"]
    text = (tmp_path / "out" / "summary.txt").read_text()
    assert "not tolerable" in text and "metrics against the target" in text


def test_user_regions_are_used(scene):
    electrons, truth, raw, second = scene
    small = (slice(0, 64), slice(0, 64))
    regions = np.zeros((64, 64), dtype=np.uint16)
    regions[:32, :32], regions[:32, 32:], regions[32:, :32] = 7, 9, 30  # the last quadrant outside every region
    a = assess_values(raw[small], CAMERA, [GivenImage("second acquisition", second[small])], Smooth(), replicas=6,
                      seed=1, regions=regions)
    assert a.judged["regions"] == {"source": "user", "n_regions": 3, "outlier_floor": 0.06,
                                   "pixels_per_region": {"min": 1024, "median": 1024.0, "max": 1024}}
    q = a.codecs[0].quantities
    values = a.codecs[0].values.astype(np.float64)
    raw_values = a.raw_values.astype(np.float64)
    # region means in the order of the user's labels
    for k, label in enumerate((7, 9, 30)):
        mean_raw, mean_codec = raw_values[regions == label].mean(), values[regions == label].mean()
        sigma = (mean_raw - mean_codec) / q["regions"]["eps"][k]
        assert sigma > 0
    fg = q["globals"]["mean[foreground]"]
    assert fg["raw"] == pytest.approx(raw_values[regions > 0].mean())
    assert q["globals"]["sum[foreground]"]["raw"] == pytest.approx(raw_values[regions > 0].sum())
    judged_globals = [c["parameter"] for c in a.codecs[0].verdict.criteria if c["criterion"] == "global"]
    assert judged_globals == ["mean", "mean[foreground]"]
    # three regions cannot show a shift within its margin (that needs 20): inconclusive, not tolerable
    assert a.codecs[0].outcome == "inconclusive"
    assert any(c["criterion"] == "shift" and c["decision"] == "undecided" for c in a.codecs[0].verdict.criteria)


@pytest.mark.parametrize("bad, message", [
    ({"regions": np.zeros((10, 10), np.int32)}, r"regions must have the image's shape \(40, 40\); got \(10, 10\)"),
    ({"regions": np.zeros((40, 40), np.int32)}, "regions has no region: every label is 0"),
    ({"regions": np.full((40, 40), 0.5)}, "whole-number labels"),
    ({"target": np.ones((40, 40))}, "target is constant"),
    ({"target": np.ones((40, 41))}, "target must have the image's shape"),
])
def test_bad_regions_and_targets_are_one_line(scene, bad, message):
    raw = scene[2][:40, :40]
    with pytest.raises(InputError, match=message) as info:
        assess_values(raw, CAMERA, ["lossless"], Smooth(), replicas=2, **bad)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("sigma_px", [1.0, 2.5])
def test_correlation_length_of_a_field_of_known_correlation(sigma_px):
    # white noise smoothed by a Gaussian of s px: autocorrelation exp(-d^2 / (4 s^2)), 1/e at 2 s
    rng = np.random.default_rng(11)
    maps = [ndi.gaussian_filter(rng.normal(size=(96, 96)), sigma_px, mode="wrap") for _ in range(6)]
    length = correlation_length(maps)
    assert length == pytest.approx(2 * sigma_px, rel=0.1)
    edge = max(MIN_EDGE, int(np.ceil(LENGTHS_PER_EDGE * length)))
    assert block_edge(length) == edge + (1 - edge % 2)  # the smallest odd edge at least that


def test_blocks_cover_the_image_once():
    labels = block_regions((23, 17, 9), 8)
    assert labels.shape == (23, 17, 9) and labels.min() == 1
    assert np.array_equal(np.unique(labels), np.arange(1, 2 * 2 * 1 + 1))
    assert (labels == 1).sum() == 8 * 8 * 9  # an axis shorter than the edge is one block


def test_a_grid_origin_moves_every_boundary_and_keeps_every_pixel():
    labels = block_regions((23, 17), 5, offset=(3, 4))
    assert labels.min() == 1 and np.array_equal(np.unique(labels), np.arange(1, 4 * 2 + 1))
    rows = labels[:, 0]
    # boundaries at 3 + 5 k: the first 3 rows join the first block, the last rows join the last
    assert list(np.flatnonzero(np.diff(rows)) + 1) == [8, 13, 18]
    with pytest.raises(ValueError, match="offset"):
        block_regions((23, 17), 5, offset=(5, 0))


class DcOnly(Codec):
    """Each 8 x 8 block replaced by its mean (JPEG with only the DC terms kept): block means unchanged."""

    name, summary = "dconly", "8 x 8 block means"

    def apply(self, image, profile):
        h, w = (s - s % 8 for s in image.shape)
        out = image.astype(np.float64)
        blocks = out[:h, :w].reshape(h // 8, 8, w // 8, 8)
        out[:h, :w] = np.broadcast_to(blocks.mean(axis=(1, 3), keepdims=True), blocks.shape).reshape(h, w)
        return self.result(image, out, None)


def test_a_codec_keeping_only_its_block_means_is_not_tolerable():
    """The grid's odd edge and seeded origin: a codec that keeps the mean of each of its own 8 x 8 blocks and
    nothing else cannot pass through regions aligned with those blocks (a sharp scene, the identity as the
    predictor, so that the blocks' insides matter)."""

    class Identity(Smooth):
        def halo(self, ndim):
            return (0,) * ndim

        def predict_values(self, region):
            return np.asarray(region, dtype=np.float64)

    electrons, _ = simulate_scene((128, 128), n_objects=60, radius=(2.0, 5.0), background_e=300.0, object_e=2000.0,
                                  rng=21)
    raw = acquire(electrons, CAMERA, [21, 1])
    a = assess_values(raw, CAMERA, [DcOnly("dconly")], Identity(), replicas=10, seed=4)
    edge = a.judged["regions"]["edge_px"]
    assert edge % 2 == 1
    assert a.codecs[0].outcome == "not tolerable", a.codecs[0].verdict.reasons


def test_the_outlier_floor_shrinks_with_the_number_of_regions():
    from noisestat.score._values import region_margins
    from noisestat.score import Margins

    assert region_margins(Margins(), 20).loss_floor == 0.06
    assert region_margins(Margins(), 800).loss_floor == pytest.approx(0.01)
    assert region_margins(Margins(loss_floor=0.002), 800).loss_floor == 0.002


PREDICTOR = '''
import numpy as np
from scipy import ndimage as ndi


class Smooth:
    def halo(self, ndim):
        return (6,) * ndim

    def predict_values(self, region):
        return ndi.gaussian_filter(np.asarray(region, dtype=np.float64), 1.5, truncate=4.0)

    def describe(self):
        return {"predictor": "smooth"}


def smooth():
    return Smooth()
'''


@pytest.fixture(scope="module")
def files(scene, target, tmp_path_factory):
    d = tmp_path_factory.mktemp("value_verdict_cli")
    small = (slice(0, 48), slice(0, 48))
    tifffile.imwrite(d / "raw.tif", scene[2][small])
    regions = np.zeros((48, 48), np.uint16)
    regions[:24], regions[24:] = 1, 2
    tifffile.imwrite(d / "regions.tif", regions)
    tifffile.imwrite(d / "truth.tif", target[small].astype(np.float32))
    tifffile.imwrite(d / "wrong.tif", regions[:20])
    (d / "camera.json").write_text(json.dumps({"gain_dn_per_e": CAMERA.gain_dn_per_e, "offset_dn": CAMERA.offset_dn,
                                              "read_noise_dn": CAMERA.read_noise_dn, "bit_depth": CAMERA.bit_depth}))
    (d / "smooth.py").write_text(PREDICTOR)
    return d


def _cli(files, out, *extra):
    return main(["assess", str(files / "raw.tif"), "--camera", str(files / "camera.json"),
                 "--predictor-python", f"{files / 'smooth.py'}:smooth", "--predictor-output", "values",
                 "--codec", "lossless", "--replicas", "4", "--quiet", "-o", str(out), *extra])


def test_assess_takes_regions_and_a_target(files, tmp_path, capsys):
    out = tmp_path / "out"
    assert _cli(files, out, "--regions", str(files / "regions.tif"), "--target", str(files / "truth.tif")) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["verdict"]["regions"]["source"] == "user" and summary["verdict"]["regions"]["n_regions"] == 2
    assert summary["codecs"][0]["outcome"] == "tolerable" and set(summary["codecs"][0]["metrics"]) == {
        "MSE", "PSNR", "SSIM", "r"}
    inputs = summary["provenance"]["inputs"]
    assert inputs["regions"]["path"].endswith("regions.tif") and len(inputs["target"]["sha256"]) == 64
    assert "metrics against the target" in capsys.readouterr().out


def test_regions_of_another_shape_are_one_line_naming_the_file(files, tmp_path, capsys):
    out = tmp_path / "out"
    assert _cli(files, out, "--regions", str(files / "wrong.tif")) == 1
    err = capsys.readouterr().err.strip()
    assert "wrong.tif must have the image's shape (48, 48); got (20, 48)" in err and "\n" not in err
    assert not out.exists()


def test_regions_are_refused_for_objects(files, tmp_path, capsys):
    labels = np.zeros((48, 48), np.uint8)
    labels[:4, :4], labels[20:24, 20:24] = 1, 2
    tifffile.imwrite(tmp_path / "labels.tif", labels)
    code = main(["assess", str(files / "raw.tif"), "--camera", str(files / "camera.json"), "--labels",
                 str(tmp_path / "labels.tif"), "--codec", "lossless", "--replicas", "2", "--quiet", "--target",
                 str(files / "truth.tif"), "-o", str(tmp_path / "out")])
    assert code == 1
    assert "--regions and --target apply to a predictor that gives a value per pixel" in capsys.readouterr().err
