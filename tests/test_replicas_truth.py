"""Replicas against the simulator's truth: per-pixel mean the observed value, and var(replica - raw)
the variance a second, independent acquisition has at that signal, in the dark, below the offset,
at mid and bright signal, for the linear, pixel-maps and noise-map models (mode pixel-as-mean; mode
denoised-edges is the same draw moved by a fixed shift near edges, checked below, and the replicas'
spread between themselves is the camera's in both). Then the width that matters: the spread of
object parameters over replicas against their spread over independent acquisitions of one scene.

Tolerances. A region's estimate is ``est = mean_i m_i`` with ``m_i = mean_r (replica_r - raw)_i^2``
over its N pixels and R replicas. Pixels are independent (the raw's noise and every draw are drawn
pixel by pixel), so ``SE(est) = std(m_i) / sqrt(N)``, estimated from the m_i themselves; that
includes the draws' own spread (about ``V sqrt(2 / R)`` per pixel for Gaussian noise), the spread of
V(y_i) that comes from the raw's own noise, and any non-Gaussian shape. The same holds for the bias
``mean_i mean_r (replica_r - raw)_i``. The analytic truth (``CameraSimulator.expected_variance_dn2``)
has no sampling error; an empirical truth (a stack of independent acquisitions) has its own SE,
added in quadrature. Every comparison allows 4 SE: a false failure once in ~16 000 runs, while
the previous chain's errors (+0.8 DN bias and 1.46x variance in the dark, 1/12 DN^2 counted twice,
no noise at all for a quantisation-limited camera) lie 10 to 300 SE away in these regions.
"""

import numpy as np
import pytest

from noisestat import CameraProfile, draw_replica, generate_replicas
from noisestat.camera import NoiseMap, PixelMaps
from noisestat.replicas import MODE, MODES
from noisestat.simulate import CameraModel, CameraSimulator

PIXEL_AS_MEAN, DENOISED_EDGES = "pixel-as-mean", "denoised-edges"

Z = 4.0  # standard errors allowed (module docstring)


def _profile(model: CameraModel, **extra) -> CameraProfile:
    """The true linear profile of a simulated camera: read_noise_dn is the total dark noise
    sigma_y.dark, rounding included (what a calibration measures)."""
    read = float(np.sqrt((model.gain_dn_per_e * model.read_noise_e) ** 2 + 1 / 12))
    return CameraProfile(model.gain_dn_per_e, model.offset_dn, read, model.bit_depth, extra)


def _diffs(raw, profile, n=4, seed=0, mode=PIXEL_AS_MEAN):
    """(n, pixels) replica - raw."""
    return generate_replicas(raw, profile, n, seed=seed, mode=mode).astype(np.float64) - raw.astype(np.float64)


def _stats(d, truth_var, mask=None):
    """Bias and its SE, var(replica - raw) / truth and its SE over the pixels in ``mask``.

    ``truth_var`` is the per-pixel true variance (array); the variance is compared as the mean of
    d^2 / truth, so that per-pixel truths (sCMOS) pool correctly.
    """
    truth_var = np.broadcast_to(truth_var, d.shape[1:])
    if mask is not None:
        d, truth_var = d[:, mask], truth_var[mask]
    d = d.reshape(d.shape[0], -1)
    truth_var = truth_var.ravel()
    n = d.shape[1]
    bias_i = d.mean(axis=0)
    ratio_i = (d ** 2).mean(axis=0) / truth_var
    return (bias_i.mean(), bias_i.std(ddof=1) / np.sqrt(n), ratio_i.mean(), ratio_i.std(ddof=1) / np.sqrt(n))


def _assert_truthful(d, truth_var, mask=None, what="", truth_se=0.0):
    bias, bias_se, ratio, ratio_se = _stats(d, truth_var, mask)
    se = np.hypot(ratio_se, truth_se)
    assert abs(bias) <= Z * bias_se, f"{what}: bias {bias:+.4f} DN (SE {bias_se:.4f})"
    assert abs(ratio - 1) < Z * se, f"{what}: var(replica - raw) / truth {ratio:.4f} (SE {se:.4f})"


# -- the acceptance case --------------------------------------------------------------------------

def test_dark_frame_of_the_acceptance_check():
    # The case of ../shared/checks/trust-replica-dark: a pure dark frame, K 0.5, read noise 3 e-
    # (1.5 DN before rounding), offset 100, 12 bits; truth (K * 3)^2 + 1/12 DN^2.
    K, off, rn_e = 0.5, 100.0, 3.0
    raw = np.clip(np.rint(off + K * np.random.default_rng(3).normal(0, rn_e, (512, 512))), 0, 4095).astype(np.uint16)
    var_true = (K * rn_e) ** 2 + 1 / 12
    cam = CameraProfile(gain_dn_per_e=K, offset_dn=off, read_noise_dn=float(np.sqrt(var_true)), bit_depth=12)
    d = np.stack([draw_replica(raw, cam, s).astype(float) - raw for s in range(4)])
    bias, ratio = float(d.mean()), float(d.var()) / var_true
    assert abs(bias) < 0.1 and 0.9 <= ratio <= 1.1          # the check's own limits
    _assert_truthful(d, np.full(raw.shape, var_true), what="acceptance dark frame")


# -- linear camera: dark, below the offset, mid, bright ---------------------------------------------

BANDS_E = {"dark": 0.0, "low (40 % at or below the offset)": 2.0, "mid": 1000.0, "bright": 5000.0}


@pytest.fixture(scope="module")
def linear_bands():
    model = CameraModel(shape=(512, 256), gain_dn_per_e=0.5, offset_dn=100.0, read_noise_e=4.0, bit_depth=12,
                        quantum_efficiency=0.6, full_well_e=20000.0)
    sim = CameraSimulator(model)
    band = np.repeat(np.arange(4), 128)[:, None] * np.ones((1, 256), int)
    photons = np.array(list(BANDS_E.values()))[band] / model.quantum_efficiency
    first, second = sim.acquire(photons, frames=2, rng=5)
    return model, sim, photons, band, first, second


def test_second_acquisition_has_the_analytic_truth(linear_bands):
    # The truth used below is the variance of a real second acquisition: check it on the pair.
    model, sim, photons, band, first, second = linear_bands
    truth = sim.expected_variance_dn2(photons)
    diff = (second.astype(float) - first)[None] / np.sqrt(2)   # var(a - b) = 2 v
    for i, name in enumerate(BANDS_E):
        _, _, ratio, se = _stats(diff, truth, band == i)
        assert abs(ratio - 1) < Z * se, f"{name}: simulator pair {ratio:.4f}"


def test_linear_replicas_match_a_second_acquisition_in_every_band(linear_bands):
    model, sim, photons, band, first, _ = linear_bands
    d = _diffs(first, _profile(model), n=4, seed=1)
    truth = sim.expected_variance_dn2(photons)
    for i, name in enumerate(BANDS_E):
        _assert_truthful(d, truth, band == i, what=name)


def test_pixels_below_the_offset_keep_their_observed_value_as_mean(linear_bands):
    # Dark pixels that read below the offset were lifted to it (Poisson of 0 electrons): their
    # replicas must scatter around the observed value, not around the offset.
    model, sim, photons, band, first, _ = linear_bands
    d = _diffs(first, _profile(model), n=8, seed=2)
    for i in (0, 1):
        below = (band == i) & (first < model.offset_dn - 1)
        assert below.sum() > 0.1 * (band == i).sum()
        bias_i = d[:, below].mean(axis=0)
        assert abs(bias_i.mean()) < Z * bias_i.std(ddof=1) / np.sqrt(below.sum())
        # and they do vary: not pinned to a value
        assert (d[:, below] != 0).mean() > 0.5


# -- mode denoised-edges: the same draw, its mean moved near edges -----------------------------------

def test_denoised_edges_is_the_pixel_as_mean_draw_moved_by_a_fixed_shift_near_edges(linear_bands):
    model, sim, photons, band, first, _ = linear_bands
    profile = _profile(model)
    shifts = [draw_replica(first, profile, s, mode=DENOISED_EDGES).astype(np.int64)
              - draw_replica(first, profile, s, mode=PIXEL_AS_MEAN) for s in (0, 1)]
    # the shift is the same for every replica: the spread between replicas is pixel-as-mean's
    np.testing.assert_array_equal(shifts[0], shifts[1])
    shift = shifts[0]
    rows = np.arange(first.shape[0])[:, None] * np.ones((1, first.shape[1]), int)
    # edges between bands at rows 256 (2 -> 1000 e-) and 384 (1000 -> 5000 e-); 0 -> 2 e- at 128 is
    # below the noise. Farther than the gate's reach (5 + 3 px) plus the denoiser's (8 px), only the
    # gate's false alarms move pixels: noise passes its threshold at ~4e-6 of the pixels, each alarm
    # widened to at most 25 (here one alarm in the dark band, 22 pixels).
    near = (np.abs(rows - 256) < 4) | (np.abs(rows - 384) < 4)
    far = (np.abs(rows - 256) > 16) & (np.abs(rows - 384) > 16)
    assert (shift[far] != 0).mean() < 1e-3
    assert (shift[near] != 0).mean() > 0.5
    # where it moves, the replicas' mean (raw + shift) is nearer the noise-free scene than the raw value
    truth = sim.expected_mean_dn(photons)
    moved = shift != 0
    rms_raw = np.sqrt(np.mean((first[moved] - truth[moved]) ** 2))
    rms_centre = np.sqrt(np.mean((first[moved] + shift[moved] - truth[moved]) ** 2))
    assert rms_centre < 0.6 * rms_raw, (rms_centre, rms_raw)


@pytest.mark.parametrize("mode", MODES)
def test_spread_between_replicas_is_the_cameras_in_every_band(linear_bands, mode):
    # The spread between replicas at a pixel (what sigma_raw is made of) is a second acquisition's
    # variance there, in both modes, edges included. SE: pixels are independent, so std / sqrt(n)
    # of the per-pixel ratio (its own spread includes the draws' and that of V(y) about V(truth)).
    model, sim, photons, band, first, _ = linear_bands
    stack = generate_replicas(first, _profile(model), 4, seed=8, mode=mode).astype(np.float64)
    ratio = stack.var(axis=0, ddof=1) / sim.expected_variance_dn2(photons)
    for i, name in enumerate(BANDS_E):
        r = ratio[band == i]
        assert abs(r.mean() - 1) < Z * r.std(ddof=1) / np.sqrt(r.size), f"{mode}, {name}: {r.mean():.4f}"


def test_default_mode_is_recorded_and_an_unknown_mode_is_refused():
    from noisestat import InputError

    assert MODE == DENOISED_EDGES and PIXEL_AS_MEAN in MODES
    with pytest.raises(InputError, match="replica mode must be one of"):
        draw_replica(np.full((8, 8), 100, np.uint16), CameraProfile(0.5, 100.0, 2.0, 12), 0, mode="denoised")


# -- quantisation-limited cameras -------------------------------------------------------------------

@pytest.mark.parametrize("read_noise_e, dsnu_dn", [(5.0, 0.0), (8.0, 0.0), (8.0, 3.0), (12.0, 0.0)])
def test_quantisation_limited_camera(read_noise_e, dsnu_dn):
    # K 0.05 DN/e-: read noise 0.25 to 0.6 DN before rounding. The dark variance of such a camera is
    # whatever rounding makes of it (0.05 DN^2 for 0.25 DN at an integer offset: below 1/12), so the
    # truth is measured on 16 independent acquisitions, and the profile carries that measured
    # sigma_y.dark, as a calibration would.
    model = CameraModel(shape=(128, 256), gain_dn_per_e=0.05, offset_dn=100.0, read_noise_e=read_noise_e,
                        bit_depth=12, dsnu_dn=dsnu_dn, full_well_e=50000.0)
    sim = CameraSimulator(model)
    photons = np.where(np.arange(128)[:, None] < 64, 0.0, 20000.0 / 0.6) * np.ones((1, 256))
    stack = sim.acquire(photons, frames=17, rng=7).astype(np.float64)
    raw, frames = stack[0].astype(np.uint16), stack[1:]
    true_var = frames.var(axis=0, ddof=1)             # per pixel, 16 frames
    dark = photons == 0
    dark_var = float(true_var[dark].mean())
    # SE of a pooled variance from 16 frames per pixel: std over pixels / sqrt(pixels)
    dark_se = float(true_var[dark].std(ddof=1) / np.sqrt(dark.sum()))
    profile = CameraProfile(model.gain_dn_per_e, model.offset_dn, float(np.sqrt(dark_var)), model.bit_depth)
    d = _diffs(raw, profile, n=8, seed=3)
    _assert_truthful(d, np.full(raw.shape, dark_var), dark, what=f"dark, read {read_noise_e} e-",
                     truth_se=dark_se / dark_var)
    bright_var = float(true_var[~dark].mean())
    bright_se = float(true_var[~dark].std(ddof=1) / np.sqrt((~dark).sum()))
    _assert_truthful(d, np.full(raw.shape, bright_var), ~dark, what="bright", truth_se=bright_se / bright_var)


@pytest.mark.parametrize("gain, read_noise_e", [(0.5, 1.0), (2.0, 0.5), (1.0, 1.0)])
def test_low_read_noise_in_electrons_keeps_the_dark_variance(gain, read_noise_e):
    # Read noise of 0.5 to 1 e-: V(y) = K (y - offset) + read^2 is negative for dark pixels more than
    # about one read-noise sd below the offset (7 to 30 % of them). Flooring them at 0 alone gave a
    # dark frame 8 % (K 0.5, 1 e-) to 39 % (K 2, 0.5 e-) too much variance; their negative part is
    # taken from their neighbours instead. Truth: 8 independent acquisitions.
    model = CameraModel(shape=(256, 256), gain_dn_per_e=gain, offset_dn=100.0, read_noise_e=read_noise_e,
                        bit_depth=12)
    stack = CameraSimulator(model).acquire(0.0, frames=9, rng=17).astype(np.float64)
    raw, frames = stack[0].astype(np.uint16), stack[1:]
    true_var = frames.var(axis=0, ddof=1)
    dark_var = float(true_var.mean())
    dark_se = float(true_var.std(ddof=1) / np.sqrt(true_var.size))
    profile = CameraProfile(gain, model.offset_dn, float(np.sqrt(dark_var)), model.bit_depth)
    d = _diffs(raw, profile, n=4, seed=6)
    assert np.mean(gain * (raw - 100.0) + dark_var < 0) > 0.05     # the case is the one meant
    _assert_truthful(d, np.full(raw.shape, dark_var), what=f"K {gain}, {read_noise_e} e-", truth_se=dark_se / dark_var)


def test_camera_without_read_noise_is_copied_in_the_dark():
    # A noise-free dark frame at an integer offset reads the offset every time; so must its replicas
    # (no invented rounding noise), while the bright part still gets its shot noise.
    cam = CameraProfile(gain_dn_per_e=1.0, offset_dn=50.0, read_noise_dn=0.0, bit_depth=12)
    image = np.full((64, 64), 50, np.uint16)
    image[32:] = 1050
    stack = generate_replicas(image, cam, 4, seed=0).astype(float)
    assert (stack[:, :32] == 50).all()
    assert stack[:, 32:].var() == pytest.approx(1000.0, rel=Z * np.sqrt(2 / stack[:, 32:].size))


# -- sCMOS: per-pixel gain, offset and read noise ---------------------------------------------------

def test_pixel_maps_match_each_pixels_truth():
    model = CameraModel(shape=(256, 256), gain_dn_per_e=0.5, offset_dn=200.0, read_noise_e=3.0, bit_depth=12,
                        dsnu_dn=6.0, prnu=0.01, gain_spread=0.3, full_well_e=20000.0)
    sim = CameraSimulator(model)
    g = sim.gain_map_dn_per_e
    maps = PixelMaps(np.array(sim.offset_map_dn), (g * model.read_noise_e) ** 2 + 1 / 12, np.array(g))
    profile = CameraProfile(model.gain_dn_per_e, model.offset_dn, float(np.sqrt(np.mean(maps.read_variance_dn2))),
                            model.bit_depth, pixel_maps=maps)
    rows = np.arange(256)[:, None] * np.ones((1, 256), int)
    photons = np.select([rows < 96, rows < 160], [0.0, 1000.0 / 0.6], 4000.0 / 0.6)
    raw = sim.acquire(photons, frames=1, rng=11)[0]
    truth = sim.expected_variance_dn2(photons)
    d = _diffs(raw, profile, n=4, seed=4)
    low_gain, high_gain = g < np.quantile(g, 1 / 3), g > np.quantile(g, 2 / 3)
    for region, name in ((rows < 96, "dark"), ((rows >= 96) & (rows < 160), "mid"), (rows >= 160, "bright")):
        for group, gname in ((low_gain, "low-gain pixels"), (high_gain, "high-gain pixels")):
            _assert_truthful(d, truth, region & group, what=f"{name}, {gname}")
    # The camera's dark pixels lie below the global offset by up to ~15 DN (DSNU): with the maps
    # they keep their own mean.
    below = (rows < 96) & (raw < model.offset_dn - 5)
    assert below.sum() > 1000
    _assert_truthful(d, truth, below & (sim.offset_map_dn < model.offset_dn - 8), what="dark, low-offset pixels")


# -- non-linear camera: the measured noise map -------------------------------------------------------

def test_noise_map_replicas_match_a_non_linear_camera():
    model = CameraModel(shape=(512, 128), gain_dn_per_e=0.5, offset_dn=100.0, read_noise_e=4.0, bit_depth=12,
                        nonlinearity=0.8, full_well_e=20000.0)
    sim = CameraSimulator(model)
    # The map a calibration would measure: the true variance at a series of levels, dark first, dense
    # enough (every 175 e-) that the chord of the curved variance is within 0.1 % of it (with 9 levels
    # it lies 3.7 % above at 1500 e-, an error of the map, not of the replicas).
    levels = model.mean_dn(np.linspace(0.0, 7000.0, 41) / model.quantum_efficiency)
    noise_map = NoiseMap(levels, model.variance_dn2(levels))
    profile = CameraProfile(model.gain_dn_per_e, model.offset_dn, float(np.sqrt(model.variance_dn2(100.0))),
                            model.bit_depth, noise_map=noise_map)
    band = np.repeat(np.arange(4), 128)[:, None] * np.ones((1, 128), int)
    photons = np.array([0.0, 2.0, 1500.0, 4500.0])[band] / model.quantum_efficiency
    raw = sim.acquire(photons, frames=1, rng=13)[0]
    truth = sim.expected_variance_dn2(photons)
    d = _diffs(raw, profile, n=4, seed=5)
    for i, name in enumerate(("dark", "low", "mid", "bright")):
        _assert_truthful(d, truth, band == i, what=f"noise map, {name}")


# -- saturation and the digitiser range ---------------------------------------------------------------

def test_saturated_pixels_are_copied_and_no_value_passes_the_maximum():
    cam = CameraProfile(gain_dn_per_e=4.0, offset_dn=100.0, read_noise_dn=20.0, bit_depth=12,
                        extra={"saturation_dn": 3900.0})
    image = np.tile(np.array([3899, 3900, 3950, 4090, 4095, 1000], np.uint16), (16, 16))
    stack = generate_replicas(image, cam, 30, seed=0)
    for column in (1, 2, 4):                        # at or above saturation_dn, and at the maximum
        assert (stack[:, :, column::6] == image[0, column]).all()
    assert stack.max() <= 4095
    below = stack[:, :, 0::6]                       # 3899: noisy (sd ~ 120 DN), may read above 3900
    assert below.std() > 50 and (below > 3900).any()
    # without a calibrated saturation only the digitiser's maximum is saturated
    plain = CameraProfile(4.0, 100.0, 20.0, 12)
    stack = generate_replicas(image, plain, 30, seed=0)
    assert (stack[:, :, 4::6] == 4095).all() and stack[:, :, 1::6].std() > 50 and stack.max() <= 4095


def test_eight_bit_container_clips_at_its_maximum():
    cam = CameraProfile(gain_dn_per_e=1.0, offset_dn=10.0, read_noise_dn=3.0, bit_depth=12)
    image = np.tile(np.array([250, 255, 20], np.uint8), (16, 16))
    stack = generate_replicas(image, cam, 20, seed=1)
    assert stack.dtype == np.uint8 and (stack[:, :, 1::3] == 255).all()
    assert stack[:, :, 0::3].std() > 5


# -- the width that matters: object parameters over replicas against independent acquisitions ---------

def _log_width_ratios(mode, seeds=(11, 12, 13), size=192, replicas=10, acquisitions=20):
    """Per object of small dim scenes (fluorescence-like: 3 e- background, cells 30 e- brighter; as
    benchmarks/bench_replica_width.py), log(var over replicas / var over independent acquisitions) of
    Area and Perim., segmented and matched as the product does."""
    from noisestat.measure import PARAMETERS
    from noisestat.pipeline import build_reference, segment_and_match
    from noisestat.replicas import replica_seeds
    from noisestat.score._eps import replica_spread
    from noisestat.simulate import acquire, simulate_scene, sparse_labels

    cam = CameraProfile(gain_dn_per_e=0.5, offset_dn=100.0, read_noise_dn=2.0, bit_depth=16)
    cols = [PARAMETERS.index("Area"), PARAMETERS.index("Perim.")]
    out = []
    for seed in seeds:
        electrons, truth = simulate_scene((size, size), n_objects=int(110 / 256 ** 2 * size ** 2), radius=(3.0, 7.0),
                                          background_e=3.0, object_e=30.0, rng=100 + seed)
        raw = acquire(electrons, cam, [seed, 1])
        ref, _ = build_reference(raw, cam, labels=sparse_labels(truth, rng=seed), replicas=2, seed=seed)
        values = ref.raw.values[:, cols]
        angular = np.zeros(len(cols), bool)
        true = np.stack([segment_and_match(ref, acquire(electrons, cam, [seed, 1000 + k])).values[:, cols]
                         for k in range(acquisitions)])
        reps = np.stack([segment_and_match(ref, draw_replica(raw, cam, s, mode=mode)).values[:, cols]
                         for s in replica_seeds([seed, 7], replicas)])
        s_true, n_true = replica_spread(values, true, angular)
        s_rep, n_rep = replica_spread(values, reps, angular)
        ok = (n_true == acquisitions)[:, None] & (n_rep == replicas)[:, None] & (s_true > 0) & (s_rep > 0)
        out.append(np.where(ok, np.log(np.where(ok, s_rep, 1.0) ** 2 / np.where(ok, s_true, 1.0) ** 2), np.nan))
    return np.concatenate(out)


def _log_chi2_mean(dof: int) -> float:
    """E[log(s^2 / sigma^2)] of a sample variance with ``dof`` degrees of freedom (Gaussian)."""
    from scipy.special import digamma

    return float(digamma(dof / 2) + np.log(2 / dof))


@pytest.mark.slow
def test_replica_width_of_area_and_perimeter_is_the_true_width_in_a_dim_scene():
    # Truth: 20 independent acquisitions of each of three 192 x 192 dim scenes (about 130 objects
    # matched in every image), against 10 replicas of one of them. Per object, the log of the ratio of
    # the two sample variances has mean E0 = E[log chi2_9 / 9] - E[log chi2_19 / 19] when the widths
    # are equal; the mean over objects, less E0, is the log of the width ratio, with SE std / sqrt(n)
    # (objects are independent). Allowed: 3 SE (a truthful width fails once in ~370 per parameter).
    # Pixel-as-mean replicas gave Perim. 1.3x the true variance here, outside that band.
    logs = _log_width_ratios(MODE)
    e0 = _log_chi2_mean(9) - _log_chi2_mean(19)
    for j, name in enumerate(("Area", "Perim.")):
        x = logs[:, j][np.isfinite(logs[:, j])]
        assert len(x) > 80, f"{name}: only {len(x)} objects matched everywhere"
        ratio, se = np.exp(x.mean() - e0), x.std(ddof=1) / np.sqrt(len(x))
        assert abs(np.log(ratio)) < 3 * se, f"{name}: replica / true variance {ratio:.3f} (SE of its log {se:.3f})"
