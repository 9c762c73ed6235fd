"""Calibration on simulated cameras with known truth.

Tolerances are tied to standard errors: K and sigma_y.dark are checked against the standard errors
the calibration itself reports (4 SE: a false failure rate of 6e-5 per check); quantities without a
reported SE against the standard error of the estimator they rest on, stated where used.
"""

import numpy as np
import pytest

from noisestat.calibrate import Level, FlatFieldSeries, calibrate_series, read_emva_descriptor, read_stacks
from noisestat.calibrate._maps import MIN_DARK_FRAMES
from noisestat.calibrate._ptc import NONLINEAR_LEVEL
from noisestat.replicas import draw_replica
from noisestat.simulate import CameraModel, CameraSimulator

PHOTONS = np.linspace(0, 14000, 22)[1:]   # 6000 e- full well at QE 0.6 is reached at 10000 photons
EXPOSURES = np.linspace(0.001, 0.02, len(PHOTONS))


def _series(sim, photons=PHOTONS, exposures=EXPOSURES, frames=2, dark_frames=2, rng=0, spatial=None):
    levels = tuple(Level(d["bright"], d["dark"], d["exposure_s"], d["photons"], f"level {k}")
                   for k, d in enumerate(sim.photon_series(photons, exposures, frames, dark_frames, rng)))
    return FlatFieldSeries(levels, sim.model.bit_depth, spatial, "simulated", "stacks")


@pytest.fixture(scope="module")
def linear():
    model = CameraModel(shape=(128, 128), gain_dn_per_e=0.5, offset_dn=100.0, read_noise_e=4.0, bit_depth=12,
                        quantum_efficiency=0.6, full_well_e=6000.0, dsnu_dn=2.0, prnu=0.01, pattern_seed=1)
    sim = CameraSimulator(model)
    rng = np.random.default_rng(5)
    spatial_photons = 5000.0
    spatial = Level(sim.acquire(spatial_photons, 0.01, 16, rng), sim.acquire(0.0, 0.01, 16, rng), 0.01,
                    spatial_photons, "spatial")
    return model, calibrate_series(_series(sim, rng=rng, spatial=spatial))


def test_linear_camera_recovers_gain_and_dark_noise(linear):
    model, cal = linear
    p, ptc = cal.profile, cal.ptc
    assert abs(p.gain_dn_per_e - model.gain_dn_per_e) < 4 * ptc.gain_se
    assert ptc.gain_se < 0.01 * model.gain_dn_per_e
    true_dark = np.sqrt((model.gain_dn_per_e * model.read_noise_e) ** 2 + 1 / 12)
    assert abs(p.read_noise_dn - true_dark) < 4 * ptc.read_noise_se
    # dark means: read noise 2 DN over 2 x 16384 pixels per level -> SE 0.011 DN per level
    assert p.offset_dn == pytest.approx(model.offset_dn, abs=0.05)
    assert not ptc.nonlinear and p.noise_model == "linear"
    # QE: responsivity / K, each good to < 1 %
    assert ptc.quantum_efficiency == pytest.approx(model.quantum_efficiency, rel=0.02)


def test_saturation_is_found_and_levels_above_are_excluded(linear):
    model, cal = linear
    ptc = cal.ptc
    # the well holds 6000 e- = 3000 DN above the offset: the variance peaks just below it
    assert 2500 < ptc.mu_net[ptc.saturation_index] <= 3000 + 1
    beyond = ptc.photons * model.quantum_efficiency > 1.1 * model.full_well_e
    assert ptc.excluded[beyond].all()
    assert ptc.saturation_capacity_e == pytest.approx(model.full_well_e, rel=0.1)


def test_dsnu_and_prnu_from_the_spatial_set(linear):
    model, cal = linear
    s = cal.ptc.spatial
    # a spatial variance over 16384 pixels has relative SE sqrt(2/16384) = 1.1 %, 0.6 % on its root
    assert s["dsnu_dn"] == pytest.approx(model.dsnu_dn, rel=0.03)
    assert s["dsnu1288_e"] == pytest.approx(model.dsnu_dn / model.gain_dn_per_e, rel=0.04)
    # PRNU 1 % of ~3000 e- is 30 e-, next to the ~55 e- shot noise averaged over 16 frames: ~5 % SE
    assert s["prnu1288_pct"] == pytest.approx(100 * model.prnu, rel=0.15)


def test_emva_files_from_the_simulator_round_trip(tmp_path):
    model = CameraModel(shape=(64, 64), gain_dn_per_e=0.25, offset_dn=50.0, read_noise_e=6.0, bit_depth=12,
                        pattern_seed=2)
    sim = CameraSimulator(model)
    desc = sim.write_emva(tmp_path, PHOTONS[:12], EXPOSURES[:12], spatial_frames=8, rng=3)
    cal = calibrate_series(read_emva_descriptor(desc))
    assert abs(cal.profile.gain_dn_per_e - 0.25) < 4 * cal.ptc.gain_se
    assert cal.ptc.spatial is not None and cal.ptc.spatial["frames"] == {"dark": 8, "bright": 8}
    stacks = sim.write_stacks(tmp_path / "stacks", PHOTONS[:8], 0.01, frames=4, rng=4)
    cal2 = calibrate_series(read_stacks(stacks["levels"], stacks["darks"][:1], sidecar=stacks["sidecar"], bit_depth=12))
    assert abs(cal2.profile.gain_dn_per_e - 0.25) < 4 * cal2.ptc.gain_se


@pytest.mark.parametrize("a", [0.5, -0.5])
def test_nonlinear_camera_is_detected_and_gain_stays_unbiased(a):
    # response y = lin + a lin^2 / 4096: at a = 0.5 the slope is 1.7x at full well
    model = CameraModel(shape=(128, 128), gain_dn_per_e=0.5, offset_dn=100.0, read_noise_e=4.0, bit_depth=12,
                        full_well_e=6000.0, nonlinearity=a, pattern_seed=3)
    sim = CameraSimulator(model)
    photons = np.linspace(0, 10000 if a > 0 else 5000, 31)[1:]
    series = _series(sim, photons=photons, exposures=np.linspace(0.001, 0.02, 30), frames=4, dark_frames=4, rng=6)
    cal = calibrate_series(series)
    ptc = cal.ptc
    assert ptc.nonlinear and ptc.linearity["nonlinear"]
    # The slope at zero signal is the true K: 4 reported SE, plus 1 % for what a cubic cannot follow of
    # the curve (measured over 6 seeds at |a| <= 0.6: at most 1.3 %, mean 0.3 %).
    assert abs(ptc.gain_dn_per_e / 0.5 - 1) < 4 * ptc.gain_se / 0.5 + 0.01
    # the responsivity is also taken at zero signal, so QE = R / K stays right (6 % tolerance: two slopes at zero)
    assert ptc.quantum_efficiency == pytest.approx(model.quantum_efficiency, rel=0.06)
    # a straight line through the bend would be off by far more
    fit = ptc.fit_mask
    k_line = np.sum(ptc.mu_net[fit] * ptc.s2_net[fit]) / np.sum(ptc.mu_net[fit] ** 2)
    assert abs(k_line / 0.5 - 1) > 0.1
    # the stored noise map follows the true variance curve (per-level variance: ~1 % SE)
    assert cal.profile.noise_model == "noise-map"
    nm = cal.profile.noise_map
    mid = ptc.mu_y[ptc.saturation_index] / 2
    assert nm.variance(mid) == pytest.approx(model.variance_dn2(mid), rel=0.05)


def test_linear_camera_is_not_flagged_nonlinear_across_seeds():
    model = CameraModel(shape=(96, 96), gain_dn_per_e=0.5, read_noise_e=4.0, pattern_seed=4, prnu=0.005)
    sim = CameraSimulator(model)
    flagged = [calibrate_series(_series(sim, rng=seed)).ptc.nonlinear for seed in range(5)]
    assert not any(flagged)


@pytest.fixture(scope="module")
def scmos():
    model = CameraModel(shape=(48, 48), gain_dn_per_e=0.5, offset_dn=100.0, read_noise_e=3.0, bit_depth=12,
                        dsnu_dn=3.0, gain_spread=0.08, full_well_e=6000.0, pattern_seed=7)
    sim = CameraSimulator(model)
    photons = np.linspace(500, 6000, 10)
    series = _series(sim, photons=photons, exposures=0.01, frames=30, dark_frames=MIN_DARK_FRAMES, rng=8)
    return sim, calibrate_series(series, per_pixel=True)


def test_per_pixel_maps_recover_the_pixels(scmos):
    sim, cal = scmos
    maps = cal.profile.pixel_maps
    assert maps is not None and cal.profile.noise_model == "pixel-maps"
    # offset per pixel: mean of 10 x 20 dark frames with 1.5 DN read noise -> SE 0.11 DN
    assert np.abs(maps.offset_dn - sim.offset_map_dn).std() < 0.2
    true_read_var = (sim.model.read_noise_e * sim.gain_map_dn_per_e) ** 2 + 1 / 12
    assert np.median(maps.read_variance_dn2 / true_read_var) == pytest.approx(1, abs=0.05)
    # gain per pixel: a variance slope from n = 29 dof x fitted levels has relative SE ~ sqrt(2 / n)
    n = 29 * int(cal.ptc.fit_mask.sum())
    rel_err = maps.gain_dn_per_e / sim.gain_map_dn_per_e - 1
    assert abs(np.median(rel_err)) < 3 * np.sqrt(2 / n) / np.sqrt(rel_err.size) + 0.01
    assert rel_err.std() < 1.25 * np.sqrt(2 / n)
    # the maps carry the true 8 % pixel-to-pixel gain pattern, not just noise
    assert np.corrcoef(maps.gain_dn_per_e.ravel(), sim.gain_map_dn_per_e.ravel())[0, 1] > 0.5


def test_pixel_maps_round_trip_and_drive_the_replicas(tmp_path, scmos):
    from noisestat import load_profile, save_profile

    sim, cal = scmos
    save_profile(cal.profile, tmp_path / "cam.json")
    assert (tmp_path / "cam_pixelmaps.tif").exists()
    loaded = load_profile(tmp_path / "cam.json")
    np.testing.assert_allclose(loaded.pixel_maps.gain_dn_per_e, cal.profile.pixel_maps.gain_dn_per_e, rtol=1e-6)
    image = np.rint(sim.expected_mean_dn(4000.0, 0.01)).astype(np.uint16)
    reps = np.stack([draw_replica(image, loaded, s) for s in range(200)]).astype(float)
    # per-pixel replica variance follows each pixel's own gain: K_ij * (y - o_ij) + read_ij
    expected = loaded.pixel_maps.gain_dn_per_e * (image - loaded.pixel_maps.offset_dn) + loaded.pixel_maps.read_variance_dn2
    ratio = reps.var(axis=0, ddof=1) / expected
    assert np.median(ratio) == pytest.approx(1, abs=0.03)
    # a wrong-sized image is refused before any work
    from noisestat import ProfileError

    with pytest.raises(ProfileError, match="per-pixel maps are"):
        draw_replica(image[:10, :10], loaded, 0)
    # a tampered maps file is noticed
    (tmp_path / "cam_pixelmaps.tif").write_bytes(b"x")
    with pytest.raises(ProfileError, match="checksum"):
        load_profile(tmp_path / "cam.json")


def test_noise_map_drives_the_replicas():
    from noisestat import CameraProfile
    from noisestat.camera import NoiseMap

    nm = NoiseMap(np.array([100.0, 1000.0, 3000.0]), np.array([4.0, 300.0, 500.0]))
    profile = CameraProfile(0.5, 100.0, 2.0, 12, noise_map=nm)
    image = np.full((200, 200), 2000, np.uint16)
    rep = draw_replica(image, profile, 1).astype(float)
    assert rep.var() == pytest.approx(400 + 1 / 12, rel=0.03)  # interpolated between 300 and 500


# --------------------------------------------------------------------------------------------------
# An 8-bit CMOS as the EMVA 1288 descriptors of such cameras have it: K ~ 0.02 DN/e-, 2 frames per
# level, a near-dark level at exposure 0 with 0.35 photons ("b 0.0 0.35"), constant irradiance.
# --------------------------------------------------------------------------------------------------

CMOS8 = dict(shape=(96, 96), gain_dn_per_e=0.02, offset_dn=10.0, read_noise_e=25.0, bit_depth=8,
             quantum_efficiency=0.55, full_well_e=10700.0, dark_current_e_per_s=200.0, dsnu_dn=0.5, prnu=0.005,
             pattern_seed=1)
CMOS8_LEVELS = 24
CMOS8_T_MAX_S = 0.010


def cmos8_levels(model):
    """Exposures 0 .. 10 ms at constant irradiance up to 1.2 x the full well, plus 0.35 photons of stray
    light at every exposure (so the exposure-0 level has 0.35 photons, as in the descriptor)."""
    exposures = np.linspace(0, CMOS8_T_MAX_S, CMOS8_LEVELS)
    irradiance = 1.2 * model.full_well_e / model.quantum_efficiency / CMOS8_T_MAX_S
    photons = [round(0.35 + irradiance * t, 2) for t in exposures]
    return photons, list(exposures), irradiance * CMOS8_T_MAX_S / (CMOS8_LEVELS - 1)


@pytest.fixture(scope="module")
def cmos8(tmp_path_factory):
    model = CameraModel(**CMOS8)
    photons, exposures, step = cmos8_levels(model)
    desc = CameraSimulator(model).write_emva(tmp_path_factory.mktemp("cmos8"), photons, exposures, frames=2, rng=21)
    assert "b 0.0 0.35" in desc.read_text()
    return model, step, calibrate_series(read_emva_descriptor(desc))


def test_8bit_cmos_with_a_near_dark_level_recovers_the_truth(cmos8):
    model, step_photons, cal = cmos8
    ptc, p = cal.ptc, cal.profile
    assert ptc.photons.min() == 0.35 and not ptc.nonlinear
    # K: the EMVA 1288 straight line, within 4 of its reported standard errors (~0.3 %)
    assert p.gain_dn_per_e == ptc.linearity["gain_emva_dn_per_e"]
    assert abs(p.gain_dn_per_e - model.gain_dn_per_e) < 4 * ptc.gain_se
    # QE = R / K, R an unweighted line over the same levels: both to < 1 % -> 2 %
    assert ptc.quantum_efficiency == pytest.approx(model.quantum_efficiency, rel=0.02)
    # Saturation capacity = QE x photons at the variance peak: the last level whose pixels stay below
    # the full well (10700 e-) by more than the shot-noise and PRNU spread, so at most one level step
    # (558 e-) plus 3 shot-noise sd (310 e-) short of it, never above it.
    step_e = model.quantum_efficiency * step_photons
    full = model.full_well_e
    assert full - step_e - 3 * np.sqrt(full) <= ptc.saturation_capacity_e <= full
    # dark current: slope of the dark means over 0..10 ms (2 e- = 0.04 DN at the end), within 4 SE (~6 e-/s)
    se = ptc.extra["dark_current_se_e_per_s"]
    assert 0 < se < 20 and abs(ptc.dark_current_e_per_s - model.dark_current_e_per_s) < 4 * se
    # sigma_y.dark: total temporal dark noise in DN, the 1/12 of rounding included (sqrt(0.25 + 1/12))
    true_dark = np.sqrt((model.gain_dn_per_e * model.read_noise_e) ** 2 + 1 / 12)
    assert abs(p.read_noise_dn - true_dark) < 4 * ptc.read_noise_se + 0.005
    assert ptc.sigma_d_e == pytest.approx(model.read_noise_e, rel=0.03)


def test_near_dark_level_does_not_drive_a_nonlinear_cameras_responsivity():
    # An expansive 12-bit camera with a level at 0.35 photons (net signal 0.1 DN, standard error
    # 0.008 DN): weighting the responsivity fit by 1/signal^2 hands that level the fit and moves the
    # QE by its 8 % relative noise (measured with such weights: -4.8 %, -3.7 %, -3.7 % for seeds 6, 7, 8);
    # with the weights floored at 5 % of saturation the level changes the QE by < 1 %.
    model = CameraModel(shape=(128, 128), gain_dn_per_e=0.5, offset_dn=100.0, read_noise_e=4.0, bit_depth=12,
                        full_well_e=6000.0, nonlinearity=0.5, pattern_seed=3)
    sim = CameraSimulator(model)
    photons = np.concatenate([[0.35], np.linspace(0, 10000, 31)[1:]])
    exposures = np.concatenate([[0.0], np.linspace(0.001, 0.02, 30)])
    series = _series(sim, photons=photons, exposures=exposures, frames=4, dark_frames=4, rng=6)
    cal = calibrate_series(series)
    ptc = cal.ptc
    assert ptc.nonlinear and ptc.fit_mask[np.argmin(ptc.photons)]
    assert ptc.quantum_efficiency == pytest.approx(model.quantum_efficiency, rel=0.06)
    without = calibrate_series(FlatFieldSeries(series.levels[1:], 12, None, "no near-dark level", "stacks")).ptc
    assert ptc.quantum_efficiency == pytest.approx(without.quantum_efficiency, rel=0.015)
    assert abs(ptc.gain_dn_per_e / 0.5 - 1) < 4 * ptc.gain_se / 0.5 + 0.01
    # the EMVA straight line is reported beside the slope at zero (it is far off for this camera)
    assert ptc.linearity["gain_emva_dn_per_e"] > 1.3 * ptc.gain_dn_per_e


def _bend_variance(sim, levels, slope_change):
    """Levels whose temporal noise is scaled by sqrt(1 + slope_change * mu_net / mu_net_max) around each
    pixel's true mean: the photon transfer curve bends, the mean response stays linear."""
    top = max(float(sim.expected_mean_dn(lv.photons, lv.exposure_s).mean()) for lv in levels) - sim.model.offset_dn
    out = []
    for lv in levels:
        mean = sim.expected_mean_dn(lv.photons, lv.exposure_s)
        g = np.sqrt(1 + slope_change * (mean - sim.model.offset_dn) / top)
        bright = np.rint(mean + (lv.bright - mean) * g).astype(np.uint16)
        out.append(Level(bright, lv.dark, lv.exposure_s, lv.photons, lv.name))
    return tuple(out)


def test_a_bent_photon_transfer_curve_with_a_linear_response_stays_linear():
    # 12-bit, read noise 4 e- (2 DN): re-rounding the scaled frames adds the same 1/12 DN^2 at every level.
    model = CameraModel(shape=(96, 96), gain_dn_per_e=0.5, read_noise_e=4.0, full_well_e=1e6, pattern_seed=4)
    sim = CameraSimulator(model)
    photons = np.linspace(0, 9000, 25)[1:]       # up to 2700 DN: no saturation, no clipping
    series = _series(sim, photons=photons, exposures=np.linspace(0.001, 0.02, 24), frames=2, dark_frames=2, rng=9)
    bent = FlatFieldSeries(_bend_variance(sim, series.levels, -0.25), 12, None, "bent", "stacks")
    cal = calibrate_series(bent)
    lin = cal.ptc.linearity
    # the photon transfer curve bends clearly (its test alone would call this camera non-linear) ...
    assert lin["ptc_slope_change"] < -0.1 and lin["ptc_bend_p"] < NONLINEAR_LEVEL
    # ... but the response is linear, as its own F test and the EMVA linearity error say: the linear model is kept
    assert lin["response_bend_p"] >= NONLINEAR_LEVEL
    assert max(abs(lin["linearity_error_min_pct"]), abs(lin["linearity_error_max_pct"])) < 0.3
    assert lin["implied_linearity_error_span_pct"] > 2
    assert not cal.ptc.nonlinear and cal.profile.noise_model == "linear"
    assert cal.profile.gain_dn_per_e == lin["gain_emva_dn_per_e"]
    assert any("bends" in w and "linear model kept" in w for w in cal.warnings)


# --------------------------------------------------------------------------------------------------
# A mildly non-linear camera: K = 0.1 DN/e-, 10 bit, compressive (nonlinearity -0.05), whose EMVA
# linearity error stays just inside +-1 % (-0.95 / +0.66 %) while the straight line's K is 6 % low.
# 256x256, 30 levels of 2 + 2 frames up to 1.3 x saturation: the geometry of bench_calibrate.py.
# --------------------------------------------------------------------------------------------------

MILD = dict(shape=(256, 256), gain_dn_per_e=0.1, offset_dn=100.0, read_noise_e=4.0, bit_depth=10,
            quantum_efficiency=0.6, full_well_e=8000.0, dsnu_dn=2.0, prnu=0.01, nonlinearity=-0.05, pattern_seed=3)
MILD_PHOTONS = np.arange(1, 31) * 1.3 * 8000 / 0.6 / 30
MILD_EXPOSURES = np.arange(1, 31) * 0.04 / 30


@pytest.fixture(scope="module")
def mild():
    model = CameraModel(**MILD)
    return model, _series(CameraSimulator(model), photons=MILD_PHOTONS, exposures=MILD_EXPOSURES, rng=0)


def test_a_mildly_nonlinear_camera_is_found_by_evidence_and_its_gain_is_within_1_percent(mild):
    model, series = mild
    cal = calibrate_series(series)
    ptc, lin = cal.ptc, cal.ptc.linearity
    # K is the slope at zero: within 1 % of the truth and 4 of its reported standard errors (measured
    # over seeds 0..11: mean error +0.09 %, sd 0.32 %, at most 0.90 %; the reported SE 0.18 to 0.48 %)
    assert abs(ptc.gain_dn_per_e / model.gain_dn_per_e - 1) < 0.01
    assert abs(ptc.gain_dn_per_e - model.gain_dn_per_e) < 4 * ptc.gain_se
    assert ptc.nonlinear and cal.profile.noise_model == "noise-map"
    # no single number crosses a cliff: the linearity error stays inside +-1 % ...
    assert max(abs(lin["linearity_error_min_pct"]), abs(lin["linearity_error_max_pct"])) < 1
    # ... but both curves reject their straight lines, and undoing the response's bend straightens
    # the photon transfer curve: one response non-linearity explains both
    assert lin["ptc_bend_p"] < NONLINEAR_LEVEL and lin["response_bend_p"] < NONLINEAR_LEVEL
    assert lin["linearised_bend_p"] >= NONLINEAR_LEVEL
    # the EMVA 1288 straight line, kept beside it, is 6 % low
    assert lin["gain_emva_dn_per_e"] < 0.96 * model.gain_dn_per_e


def test_without_photon_counts_the_photon_transfer_curve_alone_decides(mild):
    model, series = mild
    blind = tuple(Level(lv.bright, lv.dark, lv.exposure_s, None, lv.name) for lv in series.levels)
    cal = calibrate_series(FlatFieldSeries(blind, 10, None, "no photon counts", "stacks"))
    assert cal.ptc.nonlinear and any("photon transfer curve alone" in w for w in cal.warnings)
    assert abs(cal.ptc.gain_dn_per_e / model.gain_dn_per_e - 1) < 0.01
    assert "response_bend_p" not in cal.ptc.linearity and cal.ptc.linearity["ptc_bend_p"] < NONLINEAR_LEVEL


def test_how_often_a_linear_camera_is_called_nonlinear():
    """The size of the non-linearity rule on simulated linear cameras. Measured with
    ``benchmarks/bench_calibrate.py --false-nonlinear 400`` (64x64, 30 levels; its linear 12-bit camera,
    its 8-bit CMOS and its K = 0.1 camera without the non-linearity; 400 seeds each): called non-linear
    0 of 1200; the photon transfer curve's test alone (the rule without photon counts) rejects at the
    level 0.001 in 0 of 1200 (10 at 0.01, 61 at 0.05), the response's in 2 of 1200. Here 16 seeds of
    a 12-bit camera (21 levels), the 8-bit CMOS above and the K = 0.1 camera of the test above without
    its non-linearity (64x64): none may be called non-linear."""
    cameras = [
        (CameraModel(shape=(64, 64), gain_dn_per_e=0.5, read_noise_e=4.0, prnu=0.005, pattern_seed=4),
         PHOTONS, EXPOSURES),
        (CameraModel(**{**CMOS8, "shape": (64, 64)}), *cmos8_levels(CameraModel(**CMOS8))[:2]),
        (CameraModel(**{**MILD, "shape": (64, 64), "nonlinearity": 0.0}), MILD_PHOTONS, MILD_EXPOSURES),
    ]
    called = total = 0
    p_ptc, p_resp = [], []
    for model, photons, exposures in cameras:
        sim = CameraSimulator(model)
        for seed in range(16):
            ptc = calibrate_series(_series(sim, photons=photons, exposures=exposures, rng=100 + seed)).ptc
            p_ptc.append(ptc.linearity["ptc_bend_p"])
            p_resp.append(ptc.linearity["response_bend_p"])
            called += ptc.nonlinear
            total += 1
    assert total == 48 and called == 0
    # the tests are not vacuous: their p values spread over (0, 1) as a test's p values under its null do
    assert min(p_ptc) < 0.2 < max(p_ptc) and min(p_resp) < 0.2 < max(p_resp)
    # at the level 0.05 the photon transfer curve's test rejects ~5 % of linear cameras: 2.4 of 48
    # expected; 8 or more would have p = 0.002
    assert sum(p < 0.05 for p in p_ptc) <= 7


def test_negative_dark_current_is_zero_within_its_error_or_refused():
    model = CameraModel(shape=(64, 64), gain_dn_per_e=0.5, read_noise_e=4.0, pattern_seed=5)
    sim = CameraSimulator(model)
    # true dark current 0: the fitted slope is negative about half the time; then it is reported as 0
    # (within 3 SE) with the standard error and a warning
    negatives = 0
    for seed in range(10):
        cal = calibrate_series(_series(sim, rng=200 + seed))
        raw = cal.ptc.extra["dark_current_fit_e_per_s"]
        se = cal.ptc.extra["dark_current_se_e_per_s"]
        assert abs(raw) < 4 * se
        if raw < 0:
            negatives += 1
            assert cal.ptc.dark_current_e_per_s == 0.0
            assert any("zero within 3 standard errors" in w for w in cal.warnings)
        else:
            assert cal.ptc.dark_current_e_per_s == raw
    assert 0 < negatives < 10   # 3 of these 10 seeds (19 of 40 others: no bias)
    # dark means that fall by 2 DN over the exposures (no sensor does that): not reported, with the reason
    series = _series(sim, rng=300)
    falling = tuple(Level(lv.bright, lv.dark - np.uint16(round(2 * k / (len(series.levels) - 1))) + np.uint16(2),
                          lv.exposure_s, lv.photons, lv.name) for k, lv in enumerate(series.levels))
    cal = calibrate_series(FlatFieldSeries(falling, 12, None, "falling", "stacks"))
    assert cal.ptc.dark_current_e_per_s is None and "dark_current_e_per_s" not in cal.profile.extra
    # the fit is kept beside, labelled as such: the slope of the shifts (steps of 0, 1, 2 DN) over exposure / K
    shifts = [round(2 * k / (len(series.levels) - 1)) for k in range(len(series.levels))]
    slope = np.polyfit([lv.exposure_s for lv in series.levels], shifts, 1)[0]
    assert cal.profile.extra["dark_current_fit_e_per_s"] == pytest.approx(-slope / model.gain_dn_per_e, rel=0.05)
    assert any("dark current not reported" in w for w in cal.warnings)


def test_impossible_quantum_efficiency_is_refused_with_the_reason():
    model = CameraModel(shape=(64, 64), gain_dn_per_e=0.5, read_noise_e=4.0, pattern_seed=6)
    sim = CameraSimulator(model)
    series = _series(sim, rng=7)
    # photon counts 10 x too low (a unit slip in the descriptor): R / K = 6 electrons per photon
    wrong = tuple(Level(lv.bright, lv.dark, lv.exposure_s, lv.photons / 10, lv.name) for lv in series.levels)
    cal = calibrate_series(FlatFieldSeries(wrong, 12, None, "wrong photons", "stacks"))
    assert cal.ptc.quantum_efficiency is None and "quantum_efficiency" not in cal.profile.extra
    assert cal.ptc.linearity["quantum_efficiency_rejected"] == pytest.approx(6.0, rel=0.03)
    assert any("outside (0, 100] %" in w for w in cal.warnings)
    # saturation capacity then comes from the net signal and K, not from the wrong photon counts
    assert cal.ptc.saturation_capacity_e == pytest.approx(model.full_well_e, rel=0.1)
