"""Tests of noisestat.measure against values worked out by hand.

Conventions used in the comments: pixel (x, y) covers [x, x+1] x [y, y+1], y down;
c = 2 - sqrt(2) is what ImageJ's traced perimeter takes off per counted corner.
"""

import math

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial import ConvexHull

from noisestat.errors import InputError
from noisestat.measure._morphometry import (
    ANGULAR_PARAMETERS,
    INTENSITY_PARAMETERS,
    PARAMETERS,
    SHAPE_PARAMETERS,
    ObjectMeasurements,
    _imagej_convex_hull,
    _shoelace_area,
    _trace_outline,
    measure_objects,
)

C = 2.0 - math.sqrt(2.0)


def _row(image, label=1):
    """The measurements of one object as a dict keyed by column name."""
    table = measure_objects(np.asarray(image))
    index = int(np.flatnonzero(table.labels == label)[0])
    return dict(zip(PARAMETERS, table.values[index]))


def _check(row, expected):
    for name, value in expected.items():
        assert row[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name


def _random_blobs(shape=(160, 160), n=40, seed=1):
    """Noisy ellipses, labelled as 8-connected components."""
    rng = np.random.default_rng(seed)
    image = np.zeros(shape, bool)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    for _ in range(n):
        r = rng.uniform(2, 12)
        cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
        a, t = rng.uniform(0.3, 1.0), rng.uniform(0, np.pi)
        u = (xx - cx) * np.cos(t) + (yy - cy) * np.sin(t)
        v = -(xx - cx) * np.sin(t) + (yy - cy) * np.cos(t)
        image |= (u / r) ** 2 + (v / (a * r)) ** 2 < 1 + rng.normal(0, 0.2, shape)
    labels, _ = ndimage.label(image, structure=np.ones((3, 3)))
    return labels


def test_api_shape_and_names():
    assert len(SHAPE_PARAMETERS) == 19 and len(INTENSITY_PARAMETERS) == 7
    assert PARAMETERS == SHAPE_PARAMETERS + INTENSITY_PARAMETERS
    assert set(ANGULAR_PARAMETERS) <= set(PARAMETERS)
    table = measure_objects(np.array([[0, 3], [0, 0]]))
    assert isinstance(table, ObjectMeasurements)
    assert len(table) == 1
    assert table.labels.dtype == np.int64 and table.values.dtype == np.float64
    assert table.values.shape == (1, len(PARAMETERS))
    # no image given: the intensity columns are not measured
    assert np.isnan(table.values[0, len(SHAPE_PARAMETERS):]).all()
    assert table.column("Area")[0] == 1.0
    with pytest.raises(KeyError):
        table.column("Perimeter")


def test_single_pixel():
    # Outline (1,1) (0,1) (0,0) (1,0): 4 unit sides, corners at vertices 0 and 2
    # -> Perim = 4 - 2c = 2 sqrt 2.  Moments: 1/12 on xx and yy -> isotropic,
    # Major = Minor = sqrt(4/pi).  Hull = unit square: Feret = sqrt 2 from (0,0)
    # to (1,1), FeretAngle = atan2(0-1, 1-0) = -45 -> 135; MinFeret = 1.
    image = np.zeros((3, 4), int)
    image[1, 2] = 1
    d = math.sqrt(4 / math.pi)
    _check(_row(image), {
        "Area": 1, "XM": 2.5, "YM": 1.5, "Perim.": 2 * math.sqrt(2),
        "Major": d, "Minor": d, "Angle": 0, "Circ.": 1, "Feret": math.sqrt(2),
        "FeretX": 2, "FeretY": 1, "FeretAngle": 135, "MinFeret": 1, "AR": 1,
        "Round": 1, "Solidity": 1, "FeretAR": math.sqrt(2), "Compact": 1, "Extent": 1,
    })


def test_two_by_two_square():
    # Outline (2,2) (0,2) (0,0) (2,0): 4 sides of 2, all corners -> 8 - 4c = 4 sqrt 2.
    # Circ = 16 pi / 32 > 1 -> 1.  Isotropic: Major = Minor = sqrt(16/pi).
    d = math.sqrt(16 / math.pi)
    _check(_row(np.ones((2, 2), int)), {
        "Area": 4, "XM": 1, "YM": 1, "Perim.": 4 * math.sqrt(2), "Major": d,
        "Minor": d, "Angle": 0, "Circ.": 1, "Feret": 2 * math.sqrt(2), "FeretX": 0,
        "FeretY": 0, "FeretAngle": 135, "MinFeret": 2, "Solidity": 1, "Extent": 1,
    })


def test_diagonal_line():
    # Pixels (i, i), i = 0..3.  Outline: 16 unit sides (a staircase on each side),
    # every other vertex a corner -> Perim = 16 - 8c = 8 sqrt 2.
    # Sums: n=4, Sx=Sy=6, Sxx=Syy=Sxy=14 -> n^2 u20 = n^2 u02 = n^2 u11 = 4*14-36 = 20.
    # 12 n^2 cov = [[256, 240], [240, 256]]: eigenvalues 496 and 16, ratio 31.
    # Major = sqrt(16/pi * sqrt 31), Minor = sqrt(16/pi / sqrt 31); the axis runs
    # down-right on screen -> Angle 135.
    # Hull (0,0) (0,1) (3,4) (4,4) (4,3) (1,0): area 16 - 2 * 9/2 = 7 -> Solidity 4/7.
    # Feret (0,0)-(4,4) = 4 sqrt 2; MinFeret = sqrt 2 (the band's width).
    image = np.eye(4, dtype=np.uint8)
    _check(_row(image), {
        "Area": 4, "XM": 2, "YM": 2, "Perim.": 8 * math.sqrt(2),
        "Major": math.sqrt(16 / math.pi * math.sqrt(31)),
        "Minor": math.sqrt(16 / math.pi / math.sqrt(31)),
        "Angle": 135, "Circ.": 16 * math.pi / 128, "Feret": 4 * math.sqrt(2),
        "FeretX": 0, "FeretY": 0, "FeretAngle": 135, "MinFeret": math.sqrt(2),
        "Solidity": 4 / 7, "FeretAR": 4, "Extent": 0.25,
    })
    # The other diagonal: Feret from (0,4) to (4,0), angle atan2(4, 4) = 45.
    row = _row(np.fliplr(image))
    _check(row, {"Angle": 45, "FeretAngle": 45, "FeretX": 0, "FeretY": 4,
                 "Perim.": 8 * math.sqrt(2)})


def test_horizontal_and_vertical_lines():
    # 1 x 5 row: the trace starts at (5,1), the run's lower right corner, which is
    # already a turn: outline (5,1) (0,1) (0,0) (5,0), incoming sides 1 5 1 5.
    # Corners: vertex 0 (always), 1 (side 5), 2 no (side 1 after a corner),
    # 3 (side 5) -> 3 corners, Perim = 12 - 3c.
    # Moments: u20 = (25-1)/12 + 1/12 = 25/12, u02 = 1/12, ratio 25
    # -> Major = sqrt(20/pi * 5), Minor = sqrt(20/pi / 5).
    row = _row(np.ones((1, 5), int))
    _check(row, {"Perim.": 12 - 3 * C, "Major": math.sqrt(100 / math.pi),
                 "Minor": math.sqrt(4 / math.pi), "Angle": 0, "Feret": math.sqrt(26),
                 "MinFeret": 1, "Solidity": 1, "Extent": 1})
    # Feret pair: hull (0,0) (0,1) (5,1) (5,0); (0,0)-(5,1) comes first -> angle
    # atan2(0-1, 5-0) + 180.
    assert row["FeretAngle"] == pytest.approx(180 - math.degrees(math.atan2(1, 5)))
    # 5 x 1 column: the trace goes down from (1,1) and turns first at (1,5):
    # outline (1,5) (0,5) (0,0) (1,0), incoming sides 5 1 5 1 -> corners at
    # vertices 0 and 2 only -> Perim = 12 - 2c.  ImageJ's rule depends on the
    # start vertex, so the row and the column differ (ImageJ says as much in
    # PolygonRoi.getTracedPerimeter).
    column = _row(np.ones((5, 1), int))
    _check(column, {"Perim.": 12 - 2 * C, "Angle": 90, "MinFeret": 1,
                    "Major": math.sqrt(100 / math.pi)})


def test_l_shape():
    # X . .
    # X . .
    # X X X     pixels (0,0) (0,1) (0,2) (1,2) (2,2)
    # Outline from (1,1) downwards: (1,2) (3,2) (3,3) (0,3) (0,0) (1,0), incoming
    # sides 2 2 1 3 3 1; corners: 2 yes, 2 yes, 1 no, 3 yes, 3 yes, 1 no -> 4
    # -> Perim = 12 - 4c.
    # Sums: n=5, Sx=3, Sy=7, Sxx=5, Syy=13, Sxy=6 -> n^2 u20 = 16, n^2 u02 = 16,
    # n^2 u11 = 9; cov = [[16/25 + 1/12, 9/25], [9/25, 16/25 + 1/12]],
    # eigenvalues 13/12 and 109/300, ratio 325/109; axis down-right -> 135.
    # Hull (0,0) (0,3) (3,3) (3,2) (1,0): shoelace 14/2 = 7 -> Solidity 5/7.
    # Feret (0,0)-(3,3) = 3 sqrt 2.  MinFeret: the side (3,2)-(1,0) lies on
    # x - y = 1; (0,3) is |0 - 3 - 1| / sqrt 2 = 2 sqrt 2 away, the other sides
    # give 3 -> MinFeret = 2 sqrt 2, FeretAR = 1.5.  Extent = 5/9.
    image = np.array([[1, 0, 0], [1, 0, 0], [1, 1, 1]])
    s = math.sqrt(325 / 109)
    major = math.sqrt(20 / math.pi * s)
    perimeter = 12 - 4 * C
    _check(_row(image), {
        "Area": 5, "XM": 1.1, "YM": 1.9, "Perim.": perimeter, "Major": major,
        "Minor": math.sqrt(20 / math.pi / s), "Angle": 135,
        "Circ.": 20 * math.pi / perimeter**2, "Feret": 3 * math.sqrt(2),
        "FeretX": 0, "FeretY": 0, "FeretAngle": 135, "MinFeret": 2 * math.sqrt(2),
        "AR": s, "Round": 20 / (math.pi * major**2), "Solidity": 5 / 7,
        "FeretAR": 1.5, "Compact": math.sqrt(20 / math.pi) / major, "Extent": 5 / 9,
    })


def test_object_with_hole():
    # A 3 x 3 ring: the hole is not traced (outline = the 3 x 3 square,
    # Perim = 12 - 4c) but not counted either: Area 8, Solidity = Extent = 8/9.
    ring = np.ones((3, 3), int)
    ring[1, 1] = 0
    square = _row(np.ones((3, 3), int))
    row = _row(ring)
    _check(row, {"Area": 8, "XM": 1.5, "YM": 1.5, "Perim.": 12 - 4 * C,
                 "Angle": 0, "Solidity": 8 / 9, "Extent": 8 / 9,
                 "Major": math.sqrt(32 / math.pi), "Minor": math.sqrt(32 / math.pi)})
    for name in ("Perim.", "Feret", "FeretX", "FeretY", "FeretAngle", "MinFeret"):
        assert row[name] == square[name]


def test_digital_disk():
    r = 20
    yy, xx = np.mgrid[-30:31, -30:31]
    disk = (xx**2 + yy**2 <= r * r).astype(np.int32)
    row = _row(disk)
    assert row["Area"] == disk.sum()
    assert row["Area"] == pytest.approx(math.pi * r * r, rel=0.01)
    # ImageJ's traced perimeter charges a (k, 1) step of the staircase k + 1 - c
    # instead of sqrt(k^2 + 1), so it overestimates a digital circle's length by
    # a few per cent (about 6 % here) and Circ stays near 0.9, not 1.
    assert 2 * math.pi * r < row["Perim."] < 1.08 * 2 * math.pi * (r + 0.5)
    assert 0.85 < row["Circ."] < 0.95
    assert row["XM"] == pytest.approx(30.5) and row["YM"] == pytest.approx(30.5)
    assert row["Major"] == pytest.approx(row["Minor"], rel=1e-12)
    assert row["Angle"] == 0  # exactly symmetric moments
    assert row["Feret"] == pytest.approx(2 * r + 1, rel=0.02)
    assert row["MinFeret"] == pytest.approx(2 * r + 1, rel=0.02)
    # The hull runs over pixel corners, about half a pixel outside the pixel
    # centres: roughly (r / (r + 0.5))^2 = 0.95.
    assert 0.94 < row["Solidity"] < 0.97


def test_several_objects_ordered_by_label():
    image = np.zeros((8, 12), np.uint16)
    image[0, 0] = 7                     # 1 px
    image[2:4, 2:4] = 2                 # 2 x 2
    image[5:8, 8] = 900                 # 3 x 1 column
    image[6, 0:5] = 40                  # 1 x 5 row
    table = measure_objects(image)
    assert table.labels.tolist() == [2, 7, 40, 900]
    assert table.column("Area").tolist() == [4, 1, 5, 3]
    assert table.column("XM").tolist() == [3, 0.5, 2.5, 8.5]
    assert table.column("Perim.")[1] == pytest.approx(2 * math.sqrt(2))
    assert table.column("Extent").tolist() == [1, 1, 1, 1]
    # Each object alone gives the same row as in company.
    for label, values in zip(table.labels, table.values):
        alone = measure_objects(np.where(image == label, label, 0))
        np.testing.assert_array_equal(alone.values[0], values)


def test_sparse_large_labels():
    image = np.zeros((4, 4), np.int64)
    image[0, 0] = 2**40
    image[3, 3] = 5
    table = measure_objects(image)
    assert table.labels.tolist() == [5, 2**40]
    assert table.column("XM").tolist() == [3.5, 0.5]
    # Same through the dense path (small ids, with gaps) and unsigned input.
    small = np.where(image == 2**40, 9, image).astype(np.uint8)
    dense = measure_objects(small)
    assert dense.labels.tolist() == [5, 9]
    np.testing.assert_array_equal(dense.values, table.values)


def test_exact_identities_on_random_blobs():
    table = measure_objects(_random_blobs())
    assert len(table) > 10
    area = table.column("Area")
    major, minor = table.column("Major"), table.column("Minor")
    rnd, ar, compact = table.column("Round"), table.column("AR"), table.column("Compact")
    np.testing.assert_allclose(rnd * ar, 1.0, rtol=1e-12)
    np.testing.assert_allclose(compact**2, rnd, rtol=1e-12)
    np.testing.assert_allclose(math.pi / 4 * major * minor, area, rtol=1e-12)
    assert np.all(major >= minor)
    for name in ANGULAR_PARAMETERS:
        angles = table.column(name)
        assert np.all((angles >= 0) & (angles < 180))
    assert np.all(table.column("Solidity") <= 1 + 1e-12)
    assert np.all(table.column("Extent") <= 1)
    assert np.all(table.column("Circ.") <= 1)
    assert np.all(table.column("MinFeret") <= table.column("Feret"))


def test_outline_and_hull_consistent_with_filled_object():
    # The traced polygon encloses exactly the object with its holes filled, its
    # side lengths add up to the crack length of that filled object, and the
    # hull matches qhull's on all pixel corners.
    labels = _random_blobs(seed=2)
    for k, box in enumerate(ndimage.find_objects(labels)):
        mask = np.pad(labels[box] == k + 1, 1)
        filled = ndimage.binary_fill_holes(mask).astype(int)
        xs, ys = _trace_outline(mask)
        assert _shoelace_area(xs, ys) == filled.sum()
        sides = np.abs(xs - np.roll(xs, 1)) + np.abs(ys - np.roll(ys, 1))
        crack = np.abs(np.diff(filled, axis=0)).sum() + np.abs(np.diff(filled, axis=1)).sum()
        assert sides.sum() == crack
        assert np.all(sides > 0) and np.all((xs == np.roll(xs, 1)) | (ys == np.roll(ys, 1)))
        hx, hy = _imagej_convex_hull(xs, ys)
        py, px = np.nonzero(mask)
        corners = np.concatenate([np.c_[px + dx, py + dy] for dx in (0, 1) for dy in (0, 1)])
        reference = ConvexHull(corners)
        assert _shoelace_area(hx, hy) == pytest.approx(reference.volume, abs=1e-9)
        # ImageJ's hull order: start at min y then min x, counter-clockwise on screen.
        assert (hy[0], hx[0]) == min(zip(hy.tolist(), hx.tolist()))
        assert np.sum(hx * np.roll(hy, -1) - np.roll(hx, -1) * hy) < 0


def test_trace_start_and_direction():
    # ImageJ starts below the right end of the first run of the top row and walks
    # down: for the L shape the first vertex is (1, 2), the last (1, 0).
    mask = np.pad(np.array([[1, 0, 0], [1, 0, 0], [1, 1, 1]], bool), 1)
    xs, ys = _trace_outline(mask)
    assert list(zip(xs.tolist(), ys.tolist())) == [(1, 2), (3, 2), (3, 3), (0, 3), (0, 0), (1, 0)]


def test_feret_tie_keeps_first_pair_in_hull_order():
    # 3 x 3 square: both diagonals are 3 sqrt 2.  Hull order (0,0) (0,3) (3,3) (3,0):
    # pair (0,0)-(3,3) comes before (0,3)-(3,0) -> FeretX, FeretY = 0, 0, angle 135.
    row = _row(np.ones((3, 3), int))
    _check(row, {"Feret": 3 * math.sqrt(2), "FeretX": 0, "FeretY": 0, "FeretAngle": 135})


def test_empty_image():
    for image in (np.zeros((5, 5), int), np.zeros((0, 3), np.uint8)):
        table = measure_objects(image)
        assert len(table) == 0
        assert table.values.shape == (0, len(PARAMETERS))
        assert table.labels.shape == (0,)


@pytest.mark.parametrize("bad", [
    np.zeros((2, 2, 2), int),
    np.zeros(5, int),
    np.zeros((3, 3), float),
    np.zeros((3, 3), bool),
    np.array([[0, -1], [2, 0]]),
    np.array([[0, 2**63]], dtype=np.uint64),
])
def test_bad_input_raises(bad):
    with pytest.raises(InputError):
        measure_objects(bad)


def test_result_is_read_only():
    table = measure_objects(np.ones((2, 2), int))
    with pytest.raises(ValueError):
        table.values[0, 0] = 1.0


def test_objects_sharing_a_mask_measure_as_each_alone():
    # Repeated masks (single pixels, one L shape, a blob) at several places, touching the image's
    # edges too: each row equals the object measured alone in an otherwise empty image.
    # (and masks of one area but another shape: an L, its mirror, a square, a line of 4 pixels)
    shapes = [np.ones((1, 1), bool), np.array([[1, 0], [1, 0], [1, 1]], bool),
              np.array([[0, 1], [0, 1], [1, 1]], bool), np.ones((2, 2), bool), np.ones((1, 4), bool),
              ndimage.binary_dilation(np.pad(np.ones((1, 1), bool), 3), iterations=3)]
    image = np.zeros((70, 60), np.int32)
    places = [(0, 0), (10, 9), (22, 13), (40, 20), (63, 3), (50, 12)]
    next_id = 1
    for r, c in places:
        for s, shape in enumerate(shapes):
            rr, cc = r, c + s * 8
            window = image[rr:rr + shape.shape[0], cc:cc + shape.shape[1]]
            if window.shape != shape.shape or window.any():
                continue
            window[shape] = next_id
            next_id += 1
    together = measure_objects(image)
    assert len(together.labels) == next_id - 1 >= 12
    for row, i in enumerate(together.labels):
        alone = measure_objects(np.where(image == i, 1, 0))
        np.testing.assert_array_equal(together.values[row], alone.values[0])


def test_intensity_parameters_have_imagejs_definitions():
    # checked against scikit-image's regionprops (an independent implementation) and numpy by hand
    from skimage.measure import regionprops

    rng = np.random.default_rng(4)
    labels = _random_blobs((80, 90), n=12, seed=4)
    image = rng.gamma(2.0, 50.0, labels.shape)
    table = measure_objects(labels, image)
    assert len(table) > 5
    for region in regionprops(labels, intensity_image=image):
        row = table.values[list(table.labels).index(region.label)]
        got = dict(zip(PARAMETERS, row))
        pixels = image[labels == region.label]
        assert got["Mean"] == pytest.approx(region.intensity_mean, rel=1e-12)
        assert got["Min"] == region.intensity_min and got["Max"] == region.intensity_max
        assert got["Median"] == pytest.approx(np.median(pixels), rel=1e-12)
        # ImageJ's StdDev is the sample standard deviation (n - 1), 0 for a single pixel
        assert got["StdDev"] == pytest.approx(pixels.std(ddof=1) if len(pixels) > 1 else 0.0, rel=1e-9, abs=1e-12)
        assert got["RawIntDen"] == pytest.approx(pixels.sum(), rel=1e-12)
        assert got["IntDen"] == pytest.approx(got["Area"] * got["Mean"], rel=1e-12)
    # a constant object has no spread; a one-pixel object has StdDev 0, like ImageJ
    flat = measure_objects(np.array([[1, 1, 0, 2]]), np.array([[7.0, 7.0, 0.0, 3.0]]))
    assert flat.column("StdDev").tolist() == [0.0, 0.0] and flat.column("Median").tolist() == [7.0, 3.0]
    with pytest.raises(Exception, match="intensity image has shape"):
        measure_objects(labels, image[:-1])


def test_a_volumes_intensity_parameters_are_those_of_its_voxels():
    from skimage.measure import regionprops

    from noisestat.measure import VOLUME_PARAMETERS, measure_volume_objects

    rng = np.random.default_rng(5)
    volume = np.zeros((6, 20, 24), int)
    volume[1:4, 2:8, 3:9] = 4
    volume[2:6, 10:18, 12:20] = 9
    volume[5, 0, 0] = 2   # one voxel
    image = rng.normal(100.0, 10.0, volume.shape)
    table = measure_volume_objects(volume, image)
    assert set(INTENSITY_PARAMETERS) <= set(VOLUME_PARAMETERS)
    for region in regionprops(volume, intensity_image=image):
        got = dict(zip(table.names, table.values[list(table.labels).index(region.label)]))
        voxels = image[volume == region.label]
        assert got["Mean"] == pytest.approx(voxels.mean(), rel=1e-12)
        assert got["Median"] == pytest.approx(np.median(voxels), rel=1e-12)
        assert got["StdDev"] == pytest.approx(voxels.std(ddof=1) if len(voxels) > 1 else 0.0, rel=1e-9)
        assert got["RawIntDen"] == pytest.approx(voxels.sum(), rel=1e-12) == pytest.approx(got["IntDen"], rel=1e-12)
        assert (got["Min"], got["Max"]) == (voxels.min(), voxels.max())
    # without the volume's values the intensity columns are not measured
    assert np.isnan(measure_volume_objects(volume).column("Mean")).all()
