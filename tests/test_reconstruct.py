"""Filtered back-projection (noisestat.reconstruct) against scikit-image's iradon, the reference it
follows row by row, and `noisestat reconstruct` end to end."""

import numpy as np
import pytest
from skimage.transform import iradon

from noisestat.camera import CameraProfile
from noisestat.errors import InputError
from noisestat.reconstruct import FILTERS, _fbp, describe_fbp, fbp, fbp_rows


def _stack(angles, rows, width, seed, margin=0):
    """Smooth random projections (a random walk along the width), zero within ``margin`` of the edges."""
    rng = np.random.default_rng(seed)
    stack = rng.normal(size=(angles, rows, width)).cumsum(axis=-1)
    if margin:
        stack[..., :margin] = 0
        stack[..., width - margin:] = 0
    return stack


def _iradon(stack, row, theta, **kwargs):
    return iradon(stack[:, row, :].T, theta=theta, circle=True, **kwargs)


def _close(rec, ref, tol):
    scale = np.ptp(ref)
    assert scale > 0
    assert np.abs(rec - ref).max() <= tol * scale


@pytest.mark.parametrize("width", [24, 25])
@pytest.mark.parametrize("name", FILTERS)
def test_each_row_equals_iradon(width, name):
    stack = _stack(36, 3, width, seed=1)
    theta = 360.0 * np.arange(36) / 36
    rec = fbp(stack, filter=name, dtype=np.float64)
    assert rec.shape == (3, width, width) and rec.dtype == np.float64
    for row in range(3):
        _close(rec[row], _iradon(stack, row, theta, filter_name=name), 1e-10)


@pytest.mark.parametrize("angles, width", [(60, 33), (40, 20), (45, 21)])
def test_nearest_equals_iradon_halfway_positions_included(angles, width):
    # at 30 and 150 degrees some pixels sit exactly halfway between two samples (t = -1/2 up to rounding)
    stack = _stack(angles, 2, width, seed=2)
    theta = 360.0 * np.arange(angles) / angles
    rec = fbp(stack, interpolation="nearest", dtype=np.float64)
    for row in range(2):
        _close(rec[row], _iradon(stack, row, theta, interpolation="nearest"), 1e-10)


def test_float32_within_a_millionth_of_the_range():
    stack = _stack(90, 2, 64, seed=3).astype(np.float32)
    theta = 360.0 * np.arange(90) / 90
    rec = fbp(stack)
    assert rec.dtype == np.float32
    _close(rec[1], _iradon(stack.astype(np.float64), 1, theta), 1e-5)


def test_integer_projections_as_the_camera_wrote_them():
    rng = np.random.default_rng(4)
    stack = rng.integers(100, 4000, size=(30, 2, 16)).astype(np.uint16)
    theta = 360.0 * np.arange(30) / 30
    _close(fbp(stack, dtype=np.float64)[0], _iradon(stack.astype(np.float64), 0, theta), 1e-10)


def test_given_angles_half_turn_unevenly_spaced():
    rng = np.random.default_rng(5)
    theta = np.sort(rng.uniform(0, 180, 40))
    stack = _stack(40, 2, 22, seed=6)
    rec = fbp(stack, angles=theta, dtype=np.float64)
    _close(rec[1], _iradon(stack, 1, theta), 1e-10)
    assert not np.allclose(rec, fbp(stack, dtype=np.float64))  # the angles were used


@pytest.mark.parametrize("shift", [-3, 4])
@pytest.mark.parametrize("interpolation", ["linear", "nearest"])
def test_given_center_is_the_axis(shift, interpolation):
    # the same object with its axis moved `shift` columns: the slice, centred on the axis, is unchanged
    width = 30
    stack = _stack(48, 2, width, seed=7, margin=5)
    moved = np.roll(stack, shift, axis=-1)  # the margin's zeros roll in
    theta = 360.0 * np.arange(48) / 48
    rec = fbp(moved, center=width // 2 + shift, interpolation=interpolation, dtype=np.float64)
    _close(rec[0], _iradon(stack, 0, theta, interpolation=interpolation), 1e-10)


@pytest.mark.parametrize("center", [None, 11.5, 12.25])
def test_opposite_angles_sharing_the_work_changes_nothing(center, monkeypatch):
    stack = _stack(50, 2, 24, seed=8)
    paired = fbp(stack, center=center, dtype=np.float64)
    geometry = _fbp._geometry(stack.shape, None, center, "ramp", "linear", "p")
    assert (geometry.partner >= 0).sum() == (0 if center == 12.25 else 25)
    monkeypatch.setattr(_fbp, "OPPOSITE_TOLERANCE_DEG", -1.0)  # no angle is opposite any other
    assert (_fbp._geometry(stack.shape, None, center, "ramp", "linear", "p").partner < 0).all()
    alone = fbp(stack, center=center, dtype=np.float64)
    np.testing.assert_allclose(paired, alone, rtol=0, atol=1e-12 * np.ptp(alone))


@pytest.mark.parametrize("width, center", [(24, None), (25, None), (24, 11.5), (25, 13)])
def test_quarter_turns_sharing_the_weights_change_nothing(width, center, monkeypatch):
    stack = _stack(48, 3, width, seed=15)
    geometry = _fbp._geometry(stack.shape, None, center, "ramp", "linear", "p")
    assert geometry.turned is not None and geometry.primary.size == 12
    turned = fbp(stack, center=center, dtype=np.float64)
    monkeypatch.setattr(_fbp, "_quarters", lambda angles, center: None)
    assert _fbp._geometry(stack.shape, None, center, "ramp", "linear", "p").turned is None
    alone = fbp(stack, center=center, dtype=np.float64)
    np.testing.assert_allclose(turned, alone, rtol=0, atol=1e-12 * np.ptp(alone))
    if center is None:
        theta = 360.0 * np.arange(48) / 48
        _close(turned[2], _iradon(stack, 2, theta), 1e-10)


def test_quarter_turns_need_every_angle_in_a_group():
    angles = 360.0 * np.arange(48) / 48
    assert _fbp._quarters(angles, 12.0) is not None
    assert _fbp._quarters(np.append(np.delete(angles, 5), 1.0), 12.0) is None  # one angle off the turns
    assert _fbp._quarters(angles, 12.25) is None
    assert _fbp._geometry((48, 1, 24), None, None, "ramp", "nearest", "p").turned is None


def test_odd_count_of_angles_pairs_none():
    geometry = _fbp._geometry((45, 1, 16), None, None, "ramp", "linear", "p")
    assert geometry.primary.size == 45 and (geometry.partner < 0).all()


def test_rows_tile_by_tile_equal_all_at_once(monkeypatch):
    monkeypatch.setattr(_fbp, "ROWS_PER_BLOCK", 3)   # blocks within a tile too
    monkeypatch.setattr(_fbp, "NONZEROS_PER_TILE", 5000)  # several pixel tiles
    stack = _stack(24, 8, 20, seed=9).astype(np.float32)
    whole = fbp(stack)
    tiles = [fbp_rows(stack, slice(a, b)) for a, b in ((0, 1), (1, 5), (5, 8))]
    np.testing.assert_array_equal(np.concatenate(tiles), whole)
    np.testing.assert_array_equal(fbp(stack, rows=slice(2, 6)), whole[2:6])
    np.testing.assert_array_equal(fbp_rows(stack, 7)[0], whole[7])


def test_zero_outside_the_circle():
    rec = fbp(np.ones((20, 1, 16)))[0]
    i, j = np.mgrid[:16, :16] - 8
    assert (rec[i * i + j * j > 64] == 0).all() and (rec[i * i + j * j <= 64] != 0).all()


def test_profile_converts_to_electrons_first():
    rng = np.random.default_rng(10)
    stack = rng.integers(100, 3000, size=(20, 2, 16)).astype(np.uint16)
    camera = CameraProfile(gain_dn_per_e=0.5, offset_dn=100.0, read_noise_dn=2.0, bit_depth=16)
    np.testing.assert_allclose(fbp(stack, profile=camera, dtype=np.float64),
                               fbp((stack - 100.0) / 0.5, dtype=np.float64), rtol=0, atol=1e-9)


def test_describe_records_filter_and_interpolation():
    d = describe_fbp((30, 4, 16), angles=np.linspace(0, 180, 30), center=7, filter="hann", interpolation="nearest")
    assert d["filter"] == "hann" and d["interpolation"] == "nearest" and d["center_px"] == 7.0
    assert d["angles"] == {"count": 30, "first_deg": 0.0, "last_deg": 180.0, "default_360_k_over_n": False}


@pytest.mark.parametrize("call, message", [
    (lambda s: fbp(s[0]), "expected a stack of projections (angles, rows, width); got shape (4, 16)"),
    (lambda s: fbp(s[None]), "got shape (1, 20, 4, 16)"),
    (lambda s: fbp(s, angles=np.arange(19)), "20 projections need 20 angles; got 19"),
    (lambda s: fbp(s, angles=[np.nan] * 20), "the angles hold NaN or infinite values"),
    (lambda s: fbp(s, center=16), "between column 0 and 15; got 16"),
    (lambda s: fbp(s, center=-0.5), "between column 0 and 15; got -0.5"),
    (lambda s: fbp(s, filter="ram"), "unknown filter 'ram'; choose one of ramp, shepp-logan"),
    (lambda s: fbp(s, interpolation="cubic"), "unknown interpolation 'cubic'"),
    (lambda s: fbp(s, rows=slice(3, 9)), "rows 3:9 are not within the stack's 4 rows"),
    (lambda s: fbp_rows(s, slice(0, 4, 2)), "rows must be a slice of consecutive rows"),
    (lambda s: fbp(s.astype(complex)), "expected integer or real projection values; got dtype complex128"),
    (lambda s: fbp(np.where(s > 0.5, np.inf, s)), "pixel(s) of row(s) 0, 1, 2, 3 hold NaN or infinite values"),
    (lambda s: fbp(np.where(np.arange(4)[None, :, None] == 2, np.nan, s)), ": 320 pixel(s) of row(s) 2 hold NaN or"),
    (lambda s: fbp(s, dtype=np.int16), "the volume's dtype must be float32 or float64"),
])
def test_bad_input_is_one_clear_error(call, message):
    stack = np.random.default_rng(11).random((20, 4, 16))
    with pytest.raises(InputError) as info:
        call(stack)
    text = str(info.value)
    assert text.startswith("projections: ") and message in text and "\n" not in text


# --- `noisestat reconstruct` ---------------------------------------------------------------------

def _projection_file(tmp_path, angles=40, rows=8, width=24):
    import tifffile

    rng = np.random.default_rng(12)
    stack = (100 + 50 * _stack(angles, rows, width, seed=13) ** 2 / width + rng.integers(0, 5, (angles, rows, width)))
    stack = np.rint(stack).astype(np.uint16)
    path = tmp_path / "proj.tif"
    tifffile.imwrite(path, stack)
    return path, stack


def _run(*argv):
    from noisestat.cli import main

    return main(["reconstruct", *map(str, argv), "--quiet"])


def test_cli_writes_the_float32_volume_of_fbp(tmp_path, capsys):
    import json

    import tifffile

    path, stack = _projection_file(tmp_path)
    assert _run(path, "-o", tmp_path / "out" / "rec.tif", "--jobs", "2") == 0
    with tifffile.TiffFile(tmp_path / "out" / "rec.tif") as tif:
        assert tif.is_imagej and tif.series[0].axes == "ZYX"
        volume = tif.asarray()
        record = json.loads(tif.imagej_metadata["Info"])
    assert record["filter"] == "ramp" and record["interpolation"] == "linear" and record["center_px"] == 12.0
    assert record["values"] == "as written (DN)" and record["projections"] == "proj.tif"
    assert volume.dtype == np.float32 and volume.shape == (8, 24, 24)
    np.testing.assert_array_equal(volume, fbp(stack))
    theta = 360.0 * np.arange(40) / 40
    _close(volume[3], _iradon(stack.astype(np.float64), 3, theta), 1e-5)
    out = capsys.readouterr().out
    assert "reconstructed 8 slices of 24 x 24 from 40 projections (ramp filter, linear interpolation" in out


def test_cli_angles_center_filter_and_camera(tmp_path):
    import json

    import tifffile

    path, stack = _projection_file(tmp_path)
    angles = np.sort(np.random.default_rng(14).uniform(0, 180, 40))
    (tmp_path / "angles.txt").write_text("\n".join(f"{a:.17g}" for a in angles))
    (tmp_path / "cam.json").write_text(json.dumps({"gain_dn_per_e": 0.5, "offset_dn": 100, "read_noise_dn": 1.0,
                                                   "bit_depth": 16}))
    assert _run(path, "-o", tmp_path / "a.tif", "--angles", tmp_path / "angles.txt", "--center", 11,
                "--filter", "hann", "--interpolation", "nearest", "--camera", tmp_path / "cam.json") == 0
    expected = fbp((stack - 100.0) / 0.5, angles=angles, center=11, filter="hann", interpolation="nearest")
    np.testing.assert_allclose(tifffile.imread(tmp_path / "a.tif"), expected, rtol=0, atol=1e-5 * np.ptp(expected))
    assert _run(path, "-o", tmp_path / "b.tif", "--angles-range", "0,180") == 0
    half = fbp(stack, angles=180.0 * np.arange(40) / 40)
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "b.tif"), half)


def test_cli_help_names_every_filter(capsys):
    from noisestat.cli import main

    with pytest.raises(SystemExit):
        main(["reconstruct", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(name in text for name in FILTERS) and "electrons" in text


@pytest.mark.parametrize("extra, message", [
    (["--angles-range", "0,x"], "--angles-range: expected START,STOP in degrees"),
    (["--angles-range", "5,5"], "--angles-range: expected START,STOP in degrees"),
    (["--angles", "{tmp}/angles.txt"], "angles.txt: expected 40 finite angles in degrees, one per projection of"),
    (["--angles", "{tmp}/missing.txt"], "missing.txt: cannot read the angles"),
    (["--center", "24"], "proj.tif: the axis centre must lie on the projection, between column 0 and 23"),
    (["--filter", "ramps"], "proj.tif: unknown filter 'ramps'"),
    (["-o", "{tmp}/proj.tif"], "the output would overwrite the input"),
])
def test_cli_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, extra, message):
    path, stack = _projection_file(tmp_path)
    (tmp_path / "angles.txt").write_text("1, 2, 3")
    before = sorted(p.name for p in tmp_path.iterdir())
    argv = [a.format(tmp=tmp_path) for a in extra]
    if "-o" not in argv:
        argv += ["-o", str(tmp_path / "rec.tif")]
    assert _run(path, *argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("noisestat: error: ") and message in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    import tifffile
    np.testing.assert_array_equal(tifffile.imread(path), stack)  # the input is untouched


def test_cli_refuses_a_single_image(tmp_path, capsys):
    import tifffile

    tifffile.imwrite(tmp_path / "one.tif", np.full((16, 16), 7, np.uint16))
    assert _run(tmp_path / "one.tif", "-o", tmp_path / "rec.tif") == 1
    assert "one.tif: expected a stack of projections (angles, rows, width)" in capsys.readouterr().err
