"""Calibration on simulated cameras with known truth.

Tolerances are tied to standard errors: K and sigma_y.dark are checked against the standard errors
the calibration itself reports (4 SE: a false failure rate of 6e-5 per check); quantities without a
reported SE against the standard error of the estimator they rest on, stated where used.
"""

import numpy as np
import pytest

from noisestat.calibrate import Level, FlatFieldSeries, calibrate_series, read_emva_descriptor, read_stacks
from noisestat.calibrate._maps import MIN_DARK_FRAMES
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
