"""Operator-level eps (noisestat.score.operator_scores) against the camera model's truth, and its
table and figure (noisestat.report)."""

import csv
import functools
import io

import numpy as np
import pytest
from scipy import ndimage as ndi
from scipy.stats import t as student_t

from noisestat.camera import CameraProfile
from noisestat.codecs import parse_spec
from noisestat.codecs._base import code_image
from noisestat.errors import InputError
from noisestat.replicas import BlockCache, draw_region, draw_replica, replica_seeds
from noisestat.report import OPERATORS_CSV, operators_csv, operators_figure, write_operators_csv, write_operators_figure
from noisestat.score import (OPERATOR_COLUMNS, OPERATORS, OperatorScore, operator_halo, operator_responses,
                             operator_scores, operator_sigma)
from noisestat.simulate import acquire, simulate_scene

CAMERA = CameraProfile(gain_dn_per_e=0.5, offset_dn=100.0, read_noise_dn=2.0, bit_depth=16)
LINEAR = ("gaussian_smoothing", "laplacian_of_gaussian", "difference_of_gaussians")


def _scene(shape, seed):
    """A simulated scene (bright everywhere: 300 e- background, cells of 1500 e- more), one raw
    acquisition and a second, independent acquisition of the same scene."""
    electrons, _ = simulate_scene(shape, n_objects=shape[0] * shape[1] // 500, rng=seed)
    return acquire(electrons, CAMERA, rng=seed + 1), acquire(electrons, CAMERA, rng=seed + 2)


def _replicas(raw, n, seed, mode="denoised-edges"):
    seeds = replica_seeds(seed, n + 2)
    drawn = [draw_replica(raw, CAMERA, s, mode=mode) for s in seeds]
    return drawn[:n], drawn[n:]


def _impulse_weights(operator, sigma, ndim=2):
    """The operator's kernel: its response to a unit impulse, far from the edges."""
    h = operator_halo(ndim, sigmas=(sigma,))[0]
    impulse = np.zeros((2 * h + 1,) * ndim)
    impulse[(h,) * ndim] = 1.0
    return operator_responses(impulse, operators=(operator,), sigmas=(sigma,))[operator, sigma]


@pytest.mark.parametrize("operator", LINEAR)
def test_linear_operator_spread_is_the_kernel_weighted_camera_variance(operator):
    # pixel-as-mean draws every pixel's noise independently, with the camera's variance at its
    # value V(y) = K (y - offset) + read^2 (exact here: no pixel is dark enough for V < 1 DN^2, none
    # saturates), so a linear operator's variance at x is sum_k w_k^2 V(x - k)
    raw, _ = _scene((64, 64), 10)
    sigma = 2.0
    replicas = [draw_replica(raw, CAMERA, s, mode="pixel-as-mean") for s in replica_seeds(11, 60)]
    measured = operator_sigma(iter(replicas), operators=(operator,), sigmas=(sigma,))[operator, sigma] ** 2
    v = CAMERA.gain_dn_per_e * (raw.astype(float) - CAMERA.offset_dn) + CAMERA.read_noise_dn ** 2
    w = _impulse_weights(operator, sigma)
    truth = ndi.convolve(v, w ** 2, mode="constant")
    h = operator_halo(2, sigmas=(sigma,))[0]
    inner = (slice(h, -h), slice(h, -h))
    measured, truth = measured[inner], truth[inner]
    # the cells' variance is several times the background's: the match must hold on both
    bright = truth > np.quantile(truth, 2 / 3)
    dark = truth < np.quantile(truth, 1 / 3)
    assert truth[bright].mean() > 1.5 * truth[dark].mean()
    for part in (bright, dark):
        # each pixel's variance over 60 replicas has a relative sd of sqrt(2/59) = 0.18, and a kernel
        # of sigma 2 px correlates a few tens of pixels, so the mean of ~700 pixels is good to ~4 %
        assert measured[part].mean() / truth[part].mean() == pytest.approx(1.0, abs=0.12)


def test_lossless_gives_eps_zero_exactly():
    raw, _ = _scene((48, 48), 20)
    replicas, null = _replicas(raw, 4, 21)
    decoded = code_image(parse_spec("lossless"), raw, CAMERA).decoded
    scores = operator_scores(raw, replicas, {"lossless": decoded}, null, sigmas=(1.0, 2.0))
    assert len(scores) == 2 * len(OPERATORS)
    for s in scores:
        assert (s.mean_eps, s.sd_eps, s.frac_abs_eps_lt_1) == (0.0, 0.0, 1.0)
        assert s.pixels == raw.size and s.excluded_pixels == 0
        assert 0.3 < s.null_frac_abs_eps_lt_1 < 0.7


def test_second_acquisition_is_like_the_null_and_an_8bit_shift_is_far():
    raw, second = _scene((128, 128), 30)
    n = 10
    replicas, null = _replicas(raw, n, 31)
    shifted = code_image(parse_spec("bitdepth:bits=8,mode=shift"), raw, CAMERA).decoded
    scores = operator_scores(raw, replicas, {"second": second, "shift": shifted}, null,
                             operators=LINEAR, sigmas=(1.0, 2.0))
    # eps of a second acquisition is sqrt(2) t(N - 1): |eps| < 1 with probability 0.503 for N = 10
    expected = 2 * student_t.cdf(2 ** -0.5, n - 1) - 1
    by = {(s.operator, s.sigma, s.codec): s for s in scores}
    for op in LINEAR:
        for sigma in (1.0, 2.0):
            s, far = by[op, sigma, "second"], by[op, sigma, "shift"]
            assert s.null_frac_abs_eps_lt_1 == pytest.approx(expected, abs=0.06)
            assert s.frac_abs_eps_lt_1 == pytest.approx(s.null_frac_abs_eps_lt_1, abs=0.06)
            assert abs(s.mean_eps) < 0.2
            assert s.sd_eps == pytest.approx(2 ** 0.5 * ((n - 1) / (n - 3)) ** 0.5, rel=0.15)
            assert far.frac_abs_eps_lt_1 < 0.4
            assert far.sd_eps > 4
    # the smoothing of an image whose low bits are dropped moves by many sigma everywhere
    assert by["gaussian_smoothing", 1.0, "shift"].frac_abs_eps_lt_1 < 0.01


def test_tiles_and_drawn_regions_give_the_whole_image_result():
    raw, second = _scene((70, 50), 40)
    seeds = replica_seeds(41, 5)
    replicas = [draw_replica(raw, CAMERA, s) for s in seeds[:3]]
    null = [draw_replica(raw, CAMERA, s) for s in seeds[3:]]
    whole = operator_scores(raw, replicas, {"second": second}, null, sigmas=(1.0, 3.0), tile=512)
    drawn = [functools.partial(draw_region, raw, CAMERA, s, cache=BlockCache()) for s in seeds]
    tiled = operator_scores(raw, drawn[:3], {"second": second}, drawn[3:], sigmas=(1.0, 3.0), tile=16)
    assert [s.row()["operator"] for s in whole] == [s.row()["operator"] for s in tiled]
    for a, b in zip(whole, tiled):
        assert (a.pixels, a.excluded_pixels) == (b.pixels, b.excluded_pixels)
        assert a.frac_abs_eps_lt_1 == b.frac_abs_eps_lt_1
        assert a.null_frac_abs_eps_lt_1 == b.null_frac_abs_eps_lt_1
        assert b.mean_eps == pytest.approx(a.mean_eps, rel=1e-9, abs=1e-12)
        assert b.sd_eps == pytest.approx(a.sd_eps, rel=1e-9)


def test_saturated_pixels_are_excluded_and_counted():
    cam = CameraProfile(gain_dn_per_e=0.5, offset_dn=100.0, read_noise_dn=2.0, bit_depth=12)
    electrons = np.full((48, 48), 800.0)
    raw = acquire(electrons, cam, rng=50)
    raw[10:30, 14:34] = cam.max_dn     # a saturated square of 20 x 20: replicas copy it unchanged
    seeds = replica_seeds(51, 5)
    replicas = [draw_replica(raw, cam, s) for s in seeds]
    scores = operator_scores(raw, replicas[:3], {"same": raw.copy()}, replicas[3:], sigmas=(1.0,))
    # a response is the same in every replica where its kernel (radius 4 px at sigma 1) sees only the
    # square: (20 - 2 * 4)^2 pixels
    for s in scores:
        assert s.excluded_pixels == 12 * 12, s.operator
        assert s.pixels == raw.size - 144
    all_saturated = np.full((20, 20), cam.max_dn, dtype=raw.dtype)
    flat = operator_scores(all_saturated, [all_saturated] * 2, {"same": all_saturated}, [all_saturated] * 2,
                           sigmas=(1.0,))
    for s in flat:
        assert s.pixels == 0 and s.excluded_pixels == 400
        assert np.isnan([s.mean_eps, s.sd_eps, s.frac_abs_eps_lt_1, s.null_frac_abs_eps_lt_1]).all()


def test_volume_sigmas_scale_with_spacing():
    rng = np.random.default_rng(60)
    volume = rng.poisson(200, (10, 24, 24)).astype(np.uint16)
    spacing = (2.0, 0.5, 0.5)
    r = operator_responses(volume, operators=("gaussian_smoothing", "gradient_magnitude"), sigmas=(2.0,),
                           spacing=spacing)
    # sigma 2 px of the finest axis: 0.5 px along z (4x coarser), 2 px in-plane
    expected = ndi.gaussian_filter(volume.astype(float), (0.5, 2.0, 2.0), mode="nearest")
    np.testing.assert_allclose(r["gaussian_smoothing", 2.0], expected, rtol=1e-12)
    grads = [f * ndi.gaussian_filter(volume.astype(float), (0.5, 2.0, 2.0), order=tuple(int(k == a) for k in range(3)),
                                     mode="nearest") for a, f in enumerate((0.25, 1.0, 1.0))]
    np.testing.assert_allclose(r["gradient_magnitude", 2.0], np.sqrt(sum(g * g for g in grads)), rtol=1e-12)
    assert operator_halo(3, sigmas=(2.0,), spacing=spacing) == (2, 8, 8)
    replicas = [rng.poisson(200, volume.shape).astype(np.uint16) for _ in range(4)]
    scores = operator_scores(volume, replicas[:2], {"lossless": volume}, replicas[2:], domain="volume",
                             sigmas=(1.0,), spacing=spacing, tile=8)
    assert {s.domain for s in scores} == {"volume"}
    assert all(s.mean_eps == 0.0 and s.frac_abs_eps_lt_1 == 1.0 for s in scores)


@pytest.mark.parametrize("kwargs, words", [
    ({"operators": ("sobel",)}, "operators must be one or more of"),
    ({"sigmas": (0.0,)}, "sigmas must be"),
    ({"domain": ""}, "domain must be"),
    ({"tile": 0}, "tile must be"),
    ({"codecs": {"jpeg": np.zeros((8, 8), np.uint16)}}, "decoded image of codec 'jpeg' has shape (8, 8)"),
    ({"replicas": [np.zeros((16, 16), np.uint16)]}, "at least 2 replicas"),
    ({"spacing": (1.0,)}, "spacing must be"),
])
def test_bad_input_is_one_clear_error(kwargs, words):
    image = np.full((16, 16), 500, np.uint16)
    args = {"raw": image, "replicas": [image, image + 1], "codecs": {"lossless": image}, "null_pair": (image, image)}
    args.update(kwargs)
    with pytest.raises(InputError, match=None) as info:
        operator_scores(args.pop("raw"), args.pop("replicas"), args.pop("codecs"), args.pop("null_pair"), **args)
    assert words in str(info.value)
    assert "\n" not in str(info.value)


def _sample_scores():
    return (OperatorScore("image", "gaussian_smoothing", 1.0, "lossless", 0.0, 0.0, 1.0, 0.51, 100, 0),
            OperatorScore("image", "gaussian_smoothing", 1.0, "jpeg:level=90", 0.1, 1.2, 0.6, 0.51, 100, 0),
            OperatorScore("image", "laplacian_of_gaussian", 2.0, "jpeg:level=90", float("nan"), float("nan"),
                          float("nan"), float("nan"), 0, 100))


def test_operators_csv_has_exactly_the_columns_and_is_written_atomically(tmp_path):
    text = operators_csv(_sample_scores())
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == OPERATOR_COLUMNS == ("domain", "operator", "sigma", "codec", "mean_eps", "sd_eps",
                                                  "frac_abs_eps_lt_1", "null_frac_abs_eps_lt_1")
    assert rows[2] == ["image", "gaussian_smoothing", "1.0", "jpeg:level=90", "0.1", "1.2", "0.6", "0.51"]
    assert rows[3][4:] == ["", "", "", ""]
    path = write_operators_csv(_sample_scores(), tmp_path)
    assert path == tmp_path / OPERATORS_CSV and path.read_text() == text
    assert sorted(p.name for p in tmp_path.iterdir()) == [OPERATORS_CSV]   # no temporary file left


def test_operators_figure_files(tmp_path):
    paths = write_operators_figure(_sample_scores(), tmp_path)
    assert [p.name for p in paths] == ["operators.png", "operators.svg", "operators.pdf"]
    png, svg, pdf = (p.read_bytes() for p in paths)
    assert png.startswith(b"\x89PNG") and svg.lstrip().startswith(b"<?xml") and pdf.startswith(b"%PDF")
    assert "fraction |ε| &lt; 1" in svg.decode()     # text kept as text
    figure = operators_figure(_sample_scores(), vector=False)
    assert "0.52" in figure.caption and "left out" in figure.caption
    assert figure.png == png                            # the same bytes every time


def test_an_infinite_spacing_filters_each_plane_as_its_own_image():
    # a projection stack: its planes are images at different angles, never filtered across
    from noisestat.score import operator_halo, operator_responses

    stack = np.random.default_rng(4).normal(size=(3, 40, 36))
    per_plane = operator_responses(stack, spacing=(np.inf, 1.0, 1.0))
    assert operator_halo(3, spacing=(np.inf, 1.0, 1.0))[0] == 0
    for k in range(3):
        alone = operator_responses(stack[k])
        for key, response in alone.items():
            np.testing.assert_array_equal(per_plane[key][k], response)


def test_within_scores_exactly_the_boxes_pixels_as_the_whole_image_does():
    """Restricted to boxes (``--sample``'s tiles), each pixel's eps is the one the whole image gives it: the
    boxes are filtered with their neighbourhood, not cropped."""
    raw, second = _scene((64, 72), 70)
    replicas, null = _replicas(raw, 4, 71)
    boxes = [(slice(0, 20), slice(30, 72)), (slice(40, 64), slice(5, 17))]
    got = operator_scores(raw, replicas, {"second": second}, null, sigmas=(1.0, 2.0), within=boxes, tile=8)
    keys = [(s.operator, s.sigma) for s in got]
    # the reference: every pixel's eps from the whole image's responses, then the boxes' pixels
    spread = operator_sigma(replicas, sigmas=(1.0, 2.0))
    r_raw, r_second = operator_responses(raw, sigmas=(1.0, 2.0)), operator_responses(second, sigmas=(1.0, 2.0))
    a, b = operator_responses(null[0], sigmas=(1.0, 2.0)), operator_responses(null[1], sigmas=(1.0, 2.0))
    inside = np.zeros(raw.shape, bool)
    for box in boxes:
        inside[box] = True
    for s, key in zip(got, keys):
        eps = ((r_raw[key] - r_second[key]) / spread[key])[inside]
        null_eps = ((a[key] - b[key]) / spread[key])[inside]
        assert s.pixels == inside.sum() == 20 * 42 + 24 * 12
        assert s.mean_eps == pytest.approx(eps.mean(), rel=1e-9, abs=1e-12)
        assert s.sd_eps == pytest.approx(eps.std(), rel=1e-9)
        assert s.frac_abs_eps_lt_1 == pytest.approx(np.mean(np.abs(eps) < 1), abs=1e-12)
        assert s.null_frac_abs_eps_lt_1 == pytest.approx(np.mean(np.abs(null_eps) < 1), abs=1e-12)
    # the whole image as one box is the unrestricted result
    whole = operator_scores(raw, replicas, {"second": second}, null, sigmas=(1.0,))
    boxed = operator_scores(raw, replicas, {"second": second}, null, sigmas=(1.0,),
                            within=[(slice(0, 64), slice(0, 72))])
    for a_, b_ in zip(whole, boxed):
        assert (a_.pixels, a_.frac_abs_eps_lt_1) == (b_.pixels, b_.frac_abs_eps_lt_1)
        assert b_.mean_eps == pytest.approx(a_.mean_eps, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("within, words", [
    ([(slice(0, 8),)], "box 0 must be 2 slices"),
    ([(slice(0, 8), slice(0, 8, 2))], "box 0 must be 2 slices with step 1"),
    ([(slice(0, 8), slice(4, 20))], "leaves the image"),
    ([(slice(3, 3), slice(0, 8))], "is empty"),
    ([(slice(0, 8), slice(0, 8)), (slice(4, 12), slice(4, 12))], "boxes 0 and 1 overlap"),
    ([], "no box to score"),
])
def test_bad_boxes_are_one_clear_error(within, words):
    image = np.full((16, 16), 500, np.uint16)
    with pytest.raises(InputError) as info:
        operator_scores(image, [image, image + 1], {"lossless": image}, (image, image), within=within)
    assert words in str(info.value) and "\n" not in str(info.value)
