"""Tests of the 3D morphometry (noisestat.measure.measure_regions_3d) against digitized solids whose
volume, surface, radii and topology are known analytically, with isotropic and anisotropic voxels."""

import itertools
import math

import numpy as np
import pytest
from scipy.special import elliprg
from skimage.measure import euler_number

from noisestat.errors import InputError
from noisestat.measure import VOLUME_SHAPE_PARAMETERS, measure_regions_3d
from noisestat.measure._regions3d import _DIRECTIONS, direction_weights, intrinsic_volume_tables


def _ellipsoid(radii, spacing, margin=2):
    """A digitized ellipsoid (voxel centres inside), radii (z, y, x) physical, centred on a voxel."""
    spacing = np.asarray(spacing, float)
    half = (np.ceil(np.asarray(radii) / spacing) + margin).astype(int)
    z, y, x = np.ogrid[-half[0]:half[0] + 1, -half[1]:half[1] + 1, -half[2]:half[2] + 1]
    inside = ((z * spacing[0] / radii[0]) ** 2 + (y * spacing[1] / radii[1]) ** 2
              + (x * spacing[2] / radii[2]) ** 2) <= 1.0
    return inside.astype(np.uint8)


def _ellipsoid_surface(a, b, c):
    """Exact surface area of an ellipsoid: 4 pi a b c R_G(a^-2, b^-2, c^-2) (Carlson's symmetric form)."""
    return 4.0 * math.pi * a * b * c * float(elliprg(a ** -2, b ** -2, c ** -2))


def _row(volume, spacing=(1.0, 1.0, 1.0)):
    ids, table = measure_regions_3d(volume, spacing=spacing)
    assert len(ids) == 1
    return {name: float(column[0]) for name, column in table.items()}


def test_isotropic_direction_weights_are_the_published_ones():
    # Lehmann & Legland (2012) and MorphoLibJ give, per vector of the 26-neighbourhood, 0.04577789
    # (axes), 0.03698063 (face diagonals), 0.03519564 (body diagonals); a pair +-d has twice that.
    weights = direction_weights(_DIRECTIONS.astype(float)) / 2
    nonzero = np.count_nonzero(_DIRECTIONS, axis=1)
    expected = np.select([nonzero == 1, nonzero == 2], [0.04577789120476, 0.03698062787608], 0.03519563978232)
    np.testing.assert_allclose(weights, expected, atol=1e-9)


def test_anisotropic_direction_weights_follow_the_spacing():
    steps = _DIRECTIONS * np.array([4.0, 1.0, 1.0])
    weights = direction_weights(steps)
    assert weights.sum() == pytest.approx(1.0, abs=1e-12)
    z_axis = [i for i, d in enumerate(_DIRECTIONS) if tuple(d) == (1, 0, 0)][0]
    x_axis = [i for i, d in enumerate(_DIRECTIONS) if tuple(d) == (0, 0, 1)][0]
    # long z steps tilt the diagonals (4, 1, 0), (4, 1, 1) ... towards the z axis, which keeps a
    # small cap, while the x axis's neighbours move away from it
    assert weights[z_axis] < weights[x_axis] / 4
    tables = intrinsic_volume_tables((4.0, 1.0, 1.0))
    assert not np.allclose(tables["SurfaceArea"], intrinsic_volume_tables((1.0, 1.0, 1.0))["SurfaceArea"])


def test_euler_table_agrees_with_scikit_image():
    rng = np.random.default_rng(7)
    for fill in (0.2, 0.5, 0.7):
        volume = (rng.random((9, 10, 11)) < fill).astype(np.uint8)
        ids, table = measure_regions_3d(volume)
        assert table["EulerNumber"][0] == euler_number(volume, connectivity=3)


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (2.0, 0.5, 0.5), (4.0, 1.0, 1.0)])
def test_ball(spacing):
    # with z steps of 4, a ball of radius 16 has 9 planes: its digitized volume is 2.5 % short, and
    # the surface follows the digitized object
    radius = 16.0
    row = _row(_ellipsoid((radius,) * 3, spacing), spacing)
    assert row["Volume"] == pytest.approx(4 / 3 * math.pi * radius ** 3, rel=0.03)
    assert row["SurfaceArea"] == pytest.approx(4 * math.pi * radius ** 2, rel=0.04)
    assert row["MeanBreadth"] == pytest.approx(2 * radius, rel=0.04)
    assert row["EulerNumber"] == 1
    for name in ("Elli.R1", "Elli.R2", "Elli.R3"):
        assert row[name] == pytest.approx(radius, rel=0.04)
    assert row["MaxFeretDiam"] == pytest.approx(2 * radius, abs=max(spacing))
    assert row["Solidity"] == pytest.approx(1.0, abs=1e-12)
    assert row["Sphericity"] == pytest.approx(1.0, abs=0.1)
    assert row["Voxels"] * np.prod(spacing) == row["Volume"]


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (2.0, 0.5, 0.5)])
def test_ellipsoid(spacing):
    radii = (8.0, 12.0, 16.0)                                  # along z, y, x
    row = _row(_ellipsoid(radii, spacing), spacing)
    assert row["Volume"] == pytest.approx(4 / 3 * math.pi * np.prod(radii), rel=0.03)
    assert row["SurfaceArea"] == pytest.approx(_ellipsoid_surface(*radii), rel=0.03)
    assert [row["Elli.R1"], row["Elli.R2"], row["Elli.R3"]] == pytest.approx([16.0, 12.0, 8.0], rel=0.04)
    assert row["Elli.R1/R3"] == pytest.approx(row["Elli.R1"] / row["Elli.R3"])
    assert row["MaxFeretDiam"] == pytest.approx(32.0, abs=max(spacing))
    assert row["EulerNumber"] == 1
    assert row["Centroid.X"] == pytest.approx((_ellipsoid(radii, spacing).shape[2] - 1) / 2 * spacing[2])


def _box_crofton(n, spacing):
    """The Crofton estimates of a box of n = (nz, ny, nx) voxels, worked out from its geometry: along a
    direction d, 2 (prod n - prod(n - |d|)) voxel pairs cross the boundary, and the box meets
    sum |a| (n - 1) + 1 lattice planes of normal a, each in one convex section."""
    s = np.asarray(spacing)
    n = np.asarray(n)
    steps = _DIRECTIONS * s
    crossings = np.array([2 * (np.prod(n) - np.prod(np.clip(n - np.abs(d), 0, None))) for d in _DIRECTIONS])
    surface = 2 * np.sum(direction_weights(steps) * crossings * np.prod(s) / np.linalg.norm(steps, axis=1))
    normals = _DIRECTIONS / s
    planes = np.abs(_DIRECTIONS) @ (n - 1) + 1
    breadth = np.sum(direction_weights(normals) * planes / np.linalg.norm(normals, axis=1))
    return surface, breadth


@pytest.mark.parametrize("n", [(3, 4, 5), (1, 1, 1), (1, 3, 1)])
def test_box_exactly(n):
    spacing = (2.0, 0.5, 0.75)
    volume = np.zeros((8, 9, 10), np.int32)
    volume[2:2 + n[0], 3:3 + n[1], 1:1 + n[2]] = 5
    row = _row(volume, spacing)
    assert row["Voxels"] == np.prod(n)
    assert row["Volume"] == np.prod(n) * np.prod(spacing)
    assert (row["Box.Z.Min"], row["Box.Z.Max"]) == (1.5 * 2.0, (1.5 + n[0]) * 2.0)
    assert (row["Box.Y.Min"], row["Box.Y.Max"]) == (2.5 * 0.5, (2.5 + n[1]) * 0.5)
    assert (row["Box.X.Min"], row["Box.X.Max"]) == (0.5 * 0.75, (0.5 + n[2]) * 0.75)
    assert row["Centroid.Z"] == pytest.approx((2 + (n[0] - 1) / 2) * 2.0)
    assert row["Centroid.X"] == pytest.approx((1 + (n[2] - 1) / 2) * 0.75)
    assert row["EulerNumber"] == 1
    assert row["ConvexVolume"] == row["Volume"]
    assert row["Solidity"] == 1.0
    extent = (np.asarray(n) - 1) * spacing
    assert row["MaxFeretDiam"] == pytest.approx(np.linalg.norm(extent))
    # the variance of n equally spaced centres is (n^2 - 1) / 12 steps^2
    radii = sorted(np.sqrt(5 * (np.asarray(n) ** 2 - 1) / 12) * spacing, reverse=True)
    assert [row["Elli.R1"], row["Elli.R2"], row["Elli.R3"]] == pytest.approx(radii)
    surface, breadth = _box_crofton(n, spacing)
    assert row["SurfaceArea"] == pytest.approx(surface, rel=1e-12)
    assert row["MeanBreadth"] == pytest.approx(breadth, rel=1e-12)


def test_one_voxel():
    volume = np.zeros((3, 3, 3), np.uint8)
    volume[1, 1, 1] = 1
    row = _row(volume, (2.0, 1.0, 1.0))
    assert row["Volume"] == 2.0 and row["Voxels"] == 1 and row["EulerNumber"] == 1
    assert row["MaxFeretDiam"] == 0.0 and row["Elli.R1"] == 0.0
    assert math.isnan(row["Elli.R1/R2"])
    assert row["ConvexVolume"] == 2.0 and row["Solidity"] == 1.0
    assert row["SurfaceArea"] > 0 and row["MeanBreadth"] > 0


def test_torus_and_hollow_ball_have_their_euler_numbers():
    z, y, x = np.ogrid[-5:6, -14:15, -14:15]
    torus = ((np.sqrt(y ** 2 + x ** 2) - 9.0) ** 2 + (z * 1.0) ** 2 <= 3.5 ** 2).astype(np.uint8)
    assert _row(torus)["EulerNumber"] == 0
    assert _row(torus[:, :, ::2], (1.0, 1.0, 2.0))["EulerNumber"] == 0
    outer = _ellipsoid((9.0,) * 3, (1.0, 1.0, 1.0))
    inner = _ellipsoid((5.0,) * 3, (1.0, 1.0, 1.0), margin=6)
    hollow = outer & (1 - inner)
    row = _row(hollow)
    assert row["EulerNumber"] == 2
    assert row["Solidity"] < 0.9                               # the cavity is inside the hull
    assert row["SurfaceArea"] == pytest.approx(4 * math.pi * (81 + 25), rel=0.05)


def test_ids_need_not_be_contiguous_and_objects_do_not_see_each_other():
    spacing = (2.0, 0.5, 0.5)
    ball = _ellipsoid((5.0,) * 3, spacing)
    alone = _row(ball, spacing)
    volume = np.zeros((ball.shape[0], ball.shape[1], 2 * ball.shape[2] + 3), np.uint16)
    volume[:, :, :ball.shape[2]] = ball * 10
    volume[:, :, ball.shape[2] + 3:] = ball * 3
    volume[0, 0, 0] = 7                                        # one voxel at the volume's corner
    ids, table = measure_regions_3d(volume, spacing=spacing)
    assert ids.tolist() == [3, 7, 10]
    assert set(table) == set(VOLUME_SHAPE_PARAMETERS) and all(c.dtype == np.float64 for c in table.values())
    for row in (0, 2):
        for name in VOLUME_SHAPE_PARAMETERS:
            if not name.startswith(("Centroid", "Box")):
                assert table[name][row] == pytest.approx(alone[name], rel=1e-12), name
    shift = (ball.shape[2] + 3) * spacing[2]
    assert table["Centroid.X"][0] - table["Centroid.X"][2] == pytest.approx(shift)
    assert table["Voxels"][1] == 1


def test_touching_objects_are_measured_apart():
    volume = np.zeros((6, 6, 8), np.int64)
    volume[1:5, 1:5, 1:4] = 1
    volume[1:5, 1:5, 4:7] = 2                                   # shares a face with object 1
    ids, table = measure_regions_3d(volume)
    assert table["SurfaceArea"][0] == pytest.approx(table["SurfaceArea"][1])
    assert table["SurfaceArea"][0] == pytest.approx(_box_crofton((4, 4, 3), (1.0, 1.0, 1.0))[0])


@pytest.mark.parametrize("shape", [(0, 0, 0), (4, 5, 6)])
def test_empty_input(shape):
    ids, table = measure_regions_3d(np.zeros(shape, np.uint8))
    assert ids.shape == (0,) and ids.dtype == np.int64
    assert tuple(table) == VOLUME_SHAPE_PARAMETERS and all(c.shape == (0,) for c in table.values())


@pytest.mark.parametrize("labels, spacing, message", [
    (np.zeros((4, 4), np.uint8), (1, 1, 1), "3D array of integers"),
    (np.zeros((4, 4, 4), np.float32), (1, 1, 1), "3D array of integers"),
    (-np.ones((2, 2, 2), np.int8), (1, 1, 1), ">= 0"),
    (np.zeros((2, 2, 2), np.uint8), (1, 0, 1), "positive"),
    (np.zeros((2, 2, 2), np.uint8), (1, 1), "three positive numbers"),
    (np.zeros((2, 2, 2), np.uint8), "abc", "three numbers"),
])
def test_bad_input_is_one_clear_error(labels, spacing, message):
    with pytest.raises(InputError, match=message):
        measure_regions_3d(labels, spacing=spacing)


def test_intensity_of_another_shape_is_refused():
    with pytest.raises(InputError, match="shape"):
        measure_regions_3d(np.zeros((2, 3, 4), np.uint8), intensity=np.zeros((2, 3, 5)))


def test_measures_do_not_depend_on_the_position_or_the_volume_border():
    spacing = (2.0, 0.5, 0.5)
    ball = _ellipsoid((4.0,) * 3, spacing, margin=0)
    inner = _row(np.pad(ball, 3), spacing)
    edge = _row(ball, spacing)                                  # touches every face of the volume
    for name in VOLUME_SHAPE_PARAMETERS:
        if not name.startswith(("Centroid", "Box")):
            assert edge[name] == pytest.approx(inner[name], rel=1e-12), name


def test_configurations_are_counted_in_slabs(monkeypatch):
    # a slab of a single plane pair gives the same histogram as the whole box at once
    import noisestat.measure._regions3d as regions

    volume = _ellipsoid((5.0, 4.0, 6.0), (1.0, 1.0, 1.0))
    whole = _row(volume)
    monkeypatch.setattr(regions, "_SLAB_BLOCKS", 1)
    sliced = _row(volume)
    assert sliced == whole


def test_every_configuration_of_one_block():
    # each of the 255 non-empty 2x2x2 patterns: the Euler number against scikit-image, the surface
    # and mean breadth invariant under the mirror images of the block (isotropic voxels)
    tables = intrinsic_volume_tables((1.0, 1.0, 1.0))
    for code in range(1, 256):
        block = np.array([(code >> (4 * z + 2 * y + x)) & 1 for z, y, x in itertools.product((0, 1), repeat=3)],
                         np.uint8).reshape(2, 2, 2)
        volume = np.pad(block, 2)
        row = _row(volume)
        assert row["EulerNumber"] == euler_number(volume, connectivity=3)
        mirrored = _row(volume[::-1, :, ::-1].transpose(2, 1, 0))
        assert mirrored["SurfaceArea"] == pytest.approx(row["SurfaceArea"], rel=1e-12)
        assert mirrored["MeanBreadth"] == pytest.approx(row["MeanBreadth"], rel=1e-12)
    assert tables["EulerNumber"][0] == 0 and tables["SurfaceArea"][0] == 0
