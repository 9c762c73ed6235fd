"""The EMVA 1288 style camera simulator (noisestat.simulate.CameraSimulator) against its own truth.

Tolerances come from the standard error of the estimate: for a variance estimated as the mean of
``d**2 / 2`` over N independent pair differences ``d`` of near-Gaussian data, the standard error is
``var * sqrt(2 / N)``; for a mean of N values it is ``sqrt(var / N)``. Checks allow 5 standard errors
(a false failure rate of ~6e-7 per check), so they are not flaky, yet far tighter than the effects
they guard against (double quantisation, clipping before the ADC, a missing non-linearity).
"""

import json
from pathlib import Path

import imagecodecs
import numpy as np
import pytest
import tifffile

from noisestat.simulate import CameraModel, CameraSimulator


def pair_variance(stack):
    """Temporal variance from frame pairs (0,1), (2,3)...: mean of d**2/2, and the number of d's."""
    a = stack[0::2].astype(np.float64)
    b = stack[1::2].astype(np.float64)
    d = a - b
    return float(np.mean(d * d) / 2.0), d.size


def test_flat_field_mean_and_temporal_variance_match_the_model():
    model = CameraModel(gain_dn_per_e=0.5, offset_dn=100.0, read_noise_e=4.0, quantum_efficiency=0.6,
                        full_well_e=60000.0, bit_depth=16)
    sim = CameraSimulator(model)
    k, qe = model.gain_dn_per_e, model.quantum_efficiency
    for seed, photons in enumerate([0.0, 50.0, 1000.0, 20000.0]):
        stack = sim.acquire(photons, frames=8, rng=seed)
        assert stack.shape == (8, 128, 128) and stack.dtype == np.uint16
        var_true = k**2 * qe * photons + k**2 * model.read_noise_e**2 + 1 / 12
        mean_true = model.offset_dn + k * qe * photons
        assert np.isclose(model.variance_dn2(model.mean_dn(photons)), var_true)
        var, n = pair_variance(stack)
        assert abs(var - var_true) < 5 * var_true * np.sqrt(2 / n), (photons, var, var_true)
        assert abs(stack.mean() - mean_true) < 5 * np.sqrt(var_true / stack.size), (photons, stack.mean())


def test_quantisation_happens_once():
    # Read noise of 0.6 DN: enough spread for rounding to add exactly 1/12 (Sheppard), small enough
    # that a second 1/12 (as the reference simulator adds) is 17 % of the total, ~35 standard errors.
    model = CameraModel(gain_dn_per_e=1.0, read_noise_e=0.6, offset_dn=100.0)
    stack = CameraSimulator(model).acquire(0.0, frames=8, rng=3)
    var, n = pair_variance(stack)
    once = model.read_noise_e**2 + 1 / 12
    twice = model.read_noise_e**2 + 2 / 12
    assert abs(var - once) < 5 * once * np.sqrt(2 / n)
    assert abs(var - twice) > 20 * once * np.sqrt(2 / n)
    assert np.isclose(model.variance_dn2(model.offset_dn), once)


def test_read_noise_is_not_clipped_at_zero_electrons():
    # Read noise 20 e- = 10 DN at zero light. Clipping electrons at 0 before the ADC would raise the
    # dark mean by sigma/sqrt(2 pi) = 4 DN (~100 standard errors) and halve the variance.
    model = CameraModel(gain_dn_per_e=0.5, read_noise_e=20.0, offset_dn=100.0)
    stack = CameraSimulator(model).acquire(0.0, frames=4, rng=5).astype(np.float64)
    sigma_dn = model.gain_dn_per_e * model.read_noise_e
    assert abs(stack.mean() - model.offset_dn) < 5 * np.sqrt((sigma_dn**2 + 1 / 12) / stack.size)
    assert (stack < model.offset_dn - sigma_dn).mean() > 0.1  # ~16 % of pixels lie 1 sigma below
    var, n = pair_variance(stack)
    assert abs(var - (sigma_dn**2 + 1 / 12)) < 5 * (sigma_dn**2 + 1 / 12) * np.sqrt(2 / n)


def test_fixed_pattern_is_seeded_and_has_the_requested_spreads():
    model = CameraModel(dsnu_dn=3.0, prnu=0.02, gain_spread=0.05, read_noise_e=2.0, pattern_seed=7)
    a, b = CameraSimulator(model), CameraSimulator(model)
    other = CameraSimulator(CameraModel(dsnu_dn=3.0, prnu=0.02, gain_spread=0.05, read_noise_e=2.0, pattern_seed=8))
    for name in ("offset_map_dn", "sensitivity_map", "gain_map_dn_per_e"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
        assert not np.array_equal(getattr(a, name), getattr(other, name)), name
        assert getattr(a, name).shape == model.shape
        with pytest.raises(ValueError):
            getattr(a, name)[0, 0] = 0.0  # read-only
    assert np.isclose(a.offset_map_dn.mean(), model.offset_dn) and np.isclose(a.offset_map_dn.std(), 3.0)
    assert np.isclose(a.sensitivity_map.mean(), 1.0) and np.isclose(a.sensitivity_map.std(), 0.02)
    assert np.isclose(a.gain_map_dn_per_e.mean(), 0.5) and np.isclose(a.gain_map_dn_per_e.std(), 0.5 * 0.05)
    # One spread does not move the pattern of another (independent streams).
    only_dsnu = CameraSimulator(CameraModel(dsnu_dn=3.0, pattern_seed=7))
    assert np.array_equal(only_dsnu.offset_map_dn, a.offset_map_dn)

    # The maps drive the images: two acquisitions with different temporal seeds, from two instances,
    # share the dark pattern. Frame-mean dark images have spatial spread sqrt(dsnu^2 + temporal/frames).
    dark1 = a.acquire(0.0, frames=16, rng=1).mean(axis=0)
    dark2 = b.acquire(0.0, frames=16, rng=2).mean(axis=0)
    assert np.corrcoef(dark1.ravel(), dark2.ravel())[0, 1] > 0.95
    assert np.corrcoef(dark1.ravel(), other.acquire(0.0, frames=16, rng=1).mean(axis=0).ravel())[0, 1] < 0.05
    temporal = model.variance_dn2(model.offset_dn)
    assert np.isclose(dark1.std(), np.sqrt(9.0 + temporal / 16), rtol=0.03)
    # Per-pixel truth agrees with the images (bright: PRNU and per-pixel gain shape the mean).
    bright = a.acquire(4000.0, frames=16, rng=4).astype(np.float64)
    resid = bright.mean(axis=0) - a.expected_mean_dn(4000.0)
    assert abs(resid.mean()) < 0.05 and resid.std() < 1.2 * np.sqrt(a.expected_variance_dn2(4000.0).mean() / 16)


def test_per_pixel_gain_shows_in_per_pixel_variance():
    model = CameraModel(gain_spread=0.2, read_noise_e=1.0, full_well_e=60000.0, bit_depth=16, pattern_seed=2)
    sim = CameraSimulator(model)
    stack = sim.acquire(20000.0, frames=64, rng=9).astype(np.float64)
    var_px = stack.var(axis=0, ddof=1)
    truth = sim.expected_variance_dn2(20000.0)
    # Per-pixel variance over 64 frames has a relative SE of sqrt(2/63) = 18 %; the gain spread
    # makes the true variance vary by ~40 %, so the two correlate clearly.
    assert np.corrcoef(var_px.ravel(), truth.ravel())[0, 1] > 0.8
    assert abs(var_px.mean() / truth.mean() - 1) < 0.01


def test_saturation_reads_the_clip_value():
    # ADC first: K * full well + offset = 10100 DN > 4095, so every pixel reads 4095 despite noise
    # and fixed pattern.
    adc = CameraSimulator(CameraModel(full_well_e=20000.0, dsnu_dn=2.0, prnu=0.01, gain_spread=0.01))
    assert np.all(adc.acquire(1e6, frames=2, rng=1) == 4095)
    # Full well first: 100 + 0.5 * 6000 = 3100 DN < 4095; without read noise every pixel reads 3100.
    well = CameraSimulator(CameraModel(full_well_e=6000.0, read_noise_e=0.0))
    assert np.all(well.acquire(1e6, frames=2, rng=1) == 3100)
    # With read noise the shot noise vanishes at full well and only the dark noise is left.
    noisy = CameraSimulator(CameraModel(full_well_e=6000.0, read_noise_e=4.0))
    stack = noisy.acquire(1e6, frames=8, rng=2)
    var, n = pair_variance(stack)
    dark_var = noisy.model.variance_dn2(noisy.model.offset_dn)
    assert abs(var - dark_var) < 5 * dark_var * np.sqrt(2 / n)
    assert abs(stack.mean() - 3100) < 0.1


def test_nonlinearity_bends_the_response_as_specified():
    model = CameraModel(nonlinearity=0.2, full_well_e=20000.0, read_noise_e=4.0)
    sim = CameraSimulator(model)
    k, qe, c = model.gain_dn_per_e, model.quantum_efficiency, 0.2 / 2**12
    photons = np.linspace(500.0, 10000.0, 8)
    means = np.array([sim.acquire(p, frames=4, rng=i).mean() for i, p in enumerate(photons)])
    lin = k * qe * photons
    # Expected mean output: offset + lin + c lin^2, plus the curvature times the variance before the
    # curve (E[L^2] = lin^2 + var_lin), a 0.01-0.07 DN effect kept so the check can be tight.
    var_lin = k * lin + (k * model.read_noise_e) ** 2
    expected = model.offset_dn + lin + c * lin**2 + c * var_lin
    assert np.allclose(model.mean_dn(photons), model.offset_dn + lin + c * lin**2)
    se = np.sqrt(model.variance_dn2(model.mean_dn(photons)) / (4 * 128 * 128))
    assert np.all(np.abs(means - expected) < 5 * se), means - expected
    # A straight line misses by hundreds of DN; a quadratic recovers the coefficient.
    slope, intercept = np.polyfit(lin, means, 1)
    assert np.abs(means - (slope * lin + intercept)).max() > 50
    quad = np.polyfit(lin, means - model.offset_dn, 2)
    assert np.isclose(quad[0], c, rtol=0.01) and np.isclose(quad[1], 1.0, atol=0.01)
    # Inverse and slope of the curve are consistent, and the variance is propagated through it.
    y = np.array([-5.0, 0.0, 100.0, 2000.0])
    assert np.allclose(model.response_dn(model.inverse_response_dn(y)), y)
    mu = model.mean_dn(4000.0)
    lin4 = k * qe * 4000.0
    assert np.isclose(model.variance_dn2(mu), (1 + 2 * c * lin4) ** 2 * (k * lin4 + (k * 4.0) ** 2) + 1 / 12)
    # The measured temporal variance follows the propagated variance.
    var, n = pair_variance(sim.acquire(4000.0, frames=8, rng=11))
    assert abs(var - model.variance_dn2(mu)) < 5 * model.variance_dn2(mu) * np.sqrt(2 / n)


def test_compressive_curve_stays_monotone():
    model = CameraModel(nonlinearity=-1.0)
    lin = np.linspace(-100, 8000, 500)
    out = model.response_dn(lin)
    assert np.all(np.diff(out) >= 0) and out.max() == pytest.approx(2**12 / 4)


def parse_descriptor(path):
    """Minimal EMVA 1288 descriptor reader: header and a list of (kind, exposure_ns, photons, files)."""
    header, sets = {}, []
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if parts[0] == "v":
            header["version"] = parts[1]
        elif parts[0] == "n":
            header["bits"], header["width"], header["height"] = map(int, parts[1:])
        elif parts[0] == "b":
            sets.append(["b", float(parts[1]), float(parts[2]), []])
        elif parts[0] == "d":
            sets.append(["d", float(parts[1]), None, []])
        elif parts[0] == "i":
            sets[-1][3].append(Path(path).parent / parts[1])
    return header, sets


@pytest.mark.parametrize("fmt", ["png", "tif"])
def test_write_emva_round_trips(tmp_path, fmt):
    model = CameraModel(shape=(24, 32), dsnu_dn=1.0, dark_current_e_per_s=200.0)
    sim = CameraSimulator(model)
    photons = [0.0, 500.0, 3000.0, 6000.0]
    exposures = [0.001, 0.001, 0.002, 0.004]  # two levels share an exposure: one dark set for both
    descriptor = sim.write_emva(tmp_path / "set", photons, exposures, spatial_frames=4, rng=42, fmt=fmt)
    assert descriptor == tmp_path / "set" / "EMVA1288_Data.txt"
    header, sets = parse_descriptor(descriptor)
    assert header == {"version": "3.0", "bits": 12, "width": 32, "height": 24}

    # Re-simulate in the documented draw order: per level bright, then dark for a new exposure;
    # then the spatial bright and dark sets.
    rng = np.random.default_rng(42)
    expected_b, expected_d, seen = [], [], set()
    for p, t in zip(photons, exposures):
        expected_b.append(("b", t * 1e9, p, sim.acquire(p, t, 2, rng)))
        if t not in seen:
            seen.add(t)
            expected_d.append(("d", t * 1e9, None, sim.acquire(0.0, t, 2, rng)))
    sp = 0.5 * min(model.full_well_e, (4095 - 100) / 0.5) / 0.6  # 50 % of saturation
    st = float(np.interp(sp, photons, exposures))
    expected_b.append(("b", st * 1e9, sp, sim.acquire(sp, st, 4, rng)))
    expected_d.append(("d", st * 1e9, None, sim.acquire(0.0, st, 4, rng)))
    expected = expected_b + expected_d  # bright sets (temporal, spatial), then dark sets

    assert [s[0] for s in sets] == [e[0] for e in expected]
    for (kind, t_ns, p, files), (ekind, et_ns, ep, stack) in zip(sets, expected):
        assert t_ns == pytest.approx(et_ns) and (p == ep if kind == "b" else p is None)
        assert len(files) == len(stack)
        for f, frame in zip(files, stack):
            assert f.suffix == f".{fmt}" and f.is_file()
            img = tifffile.imread(f) if fmt == "tif" else imagecodecs.imread(f)
            assert img.dtype == np.uint16 and np.array_equal(img, frame)
    names = [f.name for s in sets for f in s[3]]
    assert f"b_000_snap_001.{fmt}" in names and f"d_002_snap_002.{fmt}" in names
    assert f"b_s_000_snap_000.{fmt}" in names and f"d_s_000_snap_003.{fmt}" in names
    # The reference parser's rules: one dark set per exposure among temporal (2-frame) sets.
    temporal_dark = [s[1] for s in sets if s[0] == "d" and len(s[3]) == 2]
    assert len(temporal_dark) == len(set(temporal_dark)) == 3


def test_write_emva_refuses_what_a_parser_could_not_read(tmp_path):
    sim = CameraSimulator(CameraModel(shape=(4, 4)))
    with pytest.raises(ValueError):
        sim.write_emva(tmp_path, [1.0, 1.0], 0.01)  # duplicate level
    with pytest.raises(ValueError):
        sim.write_emva(tmp_path, [1.0], 0.01, frames=1)
    with pytest.raises(ValueError):
        sim.write_emva(tmp_path, [1.0], 0.01, spatial_frames=2)
    with pytest.raises(ValueError):
        sim.write_emva(tmp_path, [1.0], 0.01, fmt="jpg")


def test_write_stacks_multipage_tiffs_and_sidecar(tmp_path):
    sim = CameraSimulator(CameraModel(shape=(16, 20), dark_current_e_per_s=50.0))
    photons, exposures = [0.0, 200.0, 2000.0], [0.01, 0.02, 0.04]
    out = sim.write_stacks(tmp_path / "stacks", photons, exposures, frames=3, rng=8)
    series = sim.photon_series(photons, exposures, frames=3, dark_frames=3, rng=8)
    assert [p.name for p in out["levels"]] == ["level_00.tif", "level_01.tif", "level_02.tif"]
    assert [p.name for p in out["darks"]] == ["dark_00.tif", "dark_01.tif", "dark_02.tif"]
    for path, dark, level in zip(out["levels"], out["darks"], series):
        with tifffile.TiffFile(path) as tif:
            assert len(tif.pages) == 3
        assert np.array_equal(tifffile.imread(path), level["bright"])
        assert np.array_equal(tifffile.imread(dark), level["dark"])
    side = json.loads(out["sidecar"].read_text())
    assert out["sidecar"].name == "levels.json"
    assert [e["photons"] for e in side["levels"]] == photons
    assert [e["exposure_s"] for e in side["levels"]] == exposures
    assert [e["file"] for e in side["levels"]] == [p.name for p in out["levels"]]
    assert side["camera"]["dark_current_e_per_s"] == 50.0


def test_photon_series_and_input_checks():
    sim = CameraSimulator(CameraModel(shape=(8, 8)))
    series = sim.photon_series([0.0, 100.0], 0.01, frames=2, dark_frames=3, rng=1)
    assert [s["bright"].shape for s in series] == [(2, 8, 8)] * 2
    assert [s["dark"].shape for s in series] == [(3, 8, 8)] * 2
    assert [s["exposure_s"] for s in series] == [0.01, 0.01]
    a = sim.acquire(100.0, frames=2, rng=5)
    assert np.array_equal(a, sim.acquire(100.0, frames=2, rng=np.random.default_rng(5)))
    assert sim.acquire(np.full((8, 8), 50.0), rng=1).shape == (2, 8, 8)
    with pytest.raises(ValueError):
        sim.acquire(-1.0)
    with pytest.raises(ValueError):
        sim.photon_series([1.0, 2.0], [0.01])
    with pytest.raises(ValueError):
        CameraModel(bit_depth=17)
    with pytest.raises(ValueError):
        CameraModel(quantum_efficiency=1.5)
