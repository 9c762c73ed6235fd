"""Block-by-block labelling (noisestat.engine.label_blocks) against scipy.ndimage.label on the whole
mask: the same partition and the same ids (raster order of first voxel)."""

import numpy as np
import pytest
from scipy import ndimage

from noisestat.engine import JoblibExecutor, executor_map, label_blocks
from noisestat.errors import InputError


def _expected(mask, connectivity):
    return ndimage.label(mask, structure=ndimage.generate_binary_structure(mask.ndim, connectivity))


def _check(mask, block, connectivity, **kwargs):
    expected, n_expected = _expected(mask, connectivity)
    labels, n = label_blocks(mask, block, connectivity=connectivity, **kwargs)
    assert n == n_expected
    np.testing.assert_array_equal(labels, expected)
    return labels, n


def _spiral(size: int) -> np.ndarray:
    """A square spiral one pixel wide with one-pixel gaps: one object that winds through the image."""
    mask = np.zeros((size, size), dtype=bool)
    lo, hi = 0, size - 1
    while lo <= hi:
        mask[lo, lo:hi + 1] = True
        mask[lo:hi + 1, hi] = True
        if hi - lo >= 2:
            mask[hi, lo:hi + 1] = True
            mask[lo + 2:hi + 1, lo] = True
        if lo + 2 <= hi - 2:
            mask[lo + 2, lo + 1] = True  # the step inwards to the next turn
        lo, hi = lo + 2, hi - 2
    return mask


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("connectivity", ["one", "full"])
@pytest.mark.parametrize("divides", [True, False])
def test_random_masks_equal_whole_labelling(ndim, connectivity, divides):
    rng = np.random.default_rng(7 + ndim)
    connectivity = 1 if connectivity == "one" else ndim
    for density in (0.05, 0.3, 0.6):
        shape = (48, 40) if ndim == 2 else (16, 20, 12)
        block = (8, 10) if ndim == 2 else (4, 5, 6)
        if not divides:
            shape = tuple(n + 3 for n in shape)
        mask = rng.random(shape) < density
        labels, n = _check(mask, block, connectivity)
        # many objects when sparse; dense, an object crossing many blocks
        if density < 0.1:
            assert n > 10
        elif density > 0.5:
            assert np.bincount(labels.ravel())[1:].max() > 2 * np.prod(block)


def test_random_shapes_and_blocks_of_every_connectivity():
    rng = np.random.default_rng(11)
    for _ in range(60):
        ndim = int(rng.integers(1, 4))
        shape = tuple(int(n) for n in rng.integers(1, 24 if ndim < 3 else 11, size=ndim))
        block = tuple(int(b) for b in rng.integers(1, 8, size=ndim))
        mask = rng.random(shape) < rng.uniform(0.1, 0.8)
        _check(mask, block, int(rng.integers(1, ndim + 1)))


@pytest.mark.parametrize("block", [3, 5, 8])
def test_spiral_spanning_many_blocks_is_one_object(block):
    mask = _spiral(37)
    assert _expected(mask, 1)[1] == 1
    labels, n = _check(mask, block, 1)
    assert n == 1
    volume = np.repeat(mask[None], 9, axis=0)  # the spiral as a prism through a volume
    volume[::2, 18, :] = True  # with bars across the turns in every other plane
    _check(volume, (2, block, block + 1), 1)
    _check(volume, block, 3)


def test_objects_joined_only_at_block_corners():
    # a diagonal chain of voxels crosses blocks only at their corners: one object with full
    # connectivity, one per voxel with faces only
    mask = np.zeros((12, 12, 12), dtype=bool)
    mask[np.arange(12), np.arange(12), np.arange(12)] = True
    mask[np.arange(12), np.arange(12)[::-1], np.arange(12)] = True
    for block in (2, 3, 4):
        assert _check(mask, block, 3)[1] == 1
        _check(mask, block, 2)
        assert _check(mask, block, 1)[1] == mask.sum() - 2  # the chains touch by a face at the middle


def test_written_block_by_block_into_a_memmap(tmp_path):
    rng = np.random.default_rng(3)
    mask = ndimage.binary_opening(rng.random((20, 30, 25)) < 0.55)
    out = np.lib.format.open_memmap(tmp_path / "labels.npy", mode="w+", dtype=np.int32, shape=mask.shape)
    labels, n = _check(mask, 7, 3, out=out)
    assert labels is out
    out.flush()
    np.testing.assert_array_equal(np.load(tmp_path / "labels.npy"), _expected(mask, 3)[0])


def test_mask_read_one_block_at_a_time_and_on_an_executor():
    rng = np.random.default_rng(5)
    mask = ndimage.binary_dilation(rng.random((60, 50)) < 0.05)
    asked = []

    def read(region):
        asked.append(tuple(s.stop - s.start for s in region))
        return mask[region]

    with JoblibExecutor(jobs=2, threads=True) as executor:
        labels, n = label_blocks(read, 16, shape=mask.shape, map=executor_map(executor), batch=3)
    expected, n_expected = _expected(mask, 2)
    assert n == n_expected > 5
    np.testing.assert_array_equal(labels, expected)
    assert asked and max(np.prod(a) for a in asked) <= 16 * 16
    assert len(asked) == 2 * 4 * 4  # each block read twice: summarised, then labelled


def test_default_type_holds_the_count_and_a_small_output_is_refused():
    mask = np.zeros((2, 300), dtype=bool)
    mask[0, ::2] = True
    labels, n = label_blocks(mask, 16)
    assert n == 150 and labels.dtype == np.uint16
    with pytest.raises(InputError, match="holding 150 objects; got int8"):
        label_blocks(mask, 16, out=np.zeros(mask.shape, dtype=np.int8))


@pytest.mark.parametrize("kwargs, message", [
    ({"block": 0}, "block must be a positive whole number"),
    ({"block": (4, 4, 4)}, "one per axis \\(2\\)"),
    ({"block": 4, "connectivity": 3}, "connectivity must be a whole number from 1 .* to 2"),
    ({"block": 4, "out": np.zeros((5, 5), dtype=np.int32)}, "mask's shape \\(6, 6\\); got \\(5, 5\\)"),
])
def test_bad_arguments_are_one_clear_error(kwargs, message):
    with pytest.raises(InputError, match=message):
        label_blocks(np.ones((6, 6), dtype=bool), **kwargs)


def test_a_reader_giving_the_wrong_shape_is_named():
    with pytest.raises(InputError, match=r"mask of block \[0:4, 0:4\] must have the shape \(4, 4\); got \(3, 4\)"):
        label_blocks(lambda region: np.ones((3, 4), dtype=bool), 4, shape=(8, 8))
    with pytest.raises(InputError, match="needs shape="):
        label_blocks(lambda region: None, 4)


# -- segmentation: large masks labelled block by block ---------------------------------------------

class _Above:
    """A mask predictor without halo: foreground where the pixel exceeds ``level``."""

    def __init__(self, level):
        self.level = level

    def halo(self, ndim):
        return (0,) * ndim

    def predict_mask(self, region):
        return region > self.level

    def describe(self):
        return {"level": self.level}


def _blobs(shape, seed):
    """Smoothed noise: blobs of many sizes, some crossing tile borders, some of a few pixels."""
    rng = np.random.default_rng(seed)
    return ndimage.gaussian_filter(rng.normal(size=shape), 1.5)


@pytest.mark.parametrize("shape, tile", [((70, 90), 16), ((20, 36, 40), 16)])
@pytest.mark.parametrize("min_area", [0, 6])
def test_segmentation_of_a_large_mask_labels_by_blocks_of_the_tile_with_the_same_ids(monkeypatch, shape, tile,
                                                                                      min_area):
    from noisestat.engine import _tiles, segment_tiled

    image = _blobs(shape, seed=len(shape) + min_area)
    model = _Above(0.05)
    whole = segment_tiled(lambda r: image[r], shape, model, tile, min_area)
    calls = []

    def spy(mask, block, **kwargs):
        calls.append(block)
        return label_blocks(mask, block, **kwargs)

    monkeypatch.setattr(_tiles, "label_blocks", spy)
    monkeypatch.setattr(_tiles, "LABEL_BLOCKS_ABOVE", 0)  # every mask counts as large
    blocked = segment_tiled(lambda r: image[r], shape, model, tile, min_area)
    assert calls == [tile]
    assert blocked.dtype == whole.dtype
    np.testing.assert_array_equal(blocked, whole)
    assert int(whole.max()) > 5  # several objects, small ones dropped when min_area > 0
    if min_area:
        assert np.bincount(whole.ravel())[1:].min() >= min_area


def test_a_large_mask_of_more_objects_than_uint16_holds_is_labelled_once_in_int32(monkeypatch):
    from noisestat.engine import _tiles, label_mask

    mask = np.zeros((520, 520), dtype=bool)
    mask[::2, ::2] = True  # 67600 single pixels, none touching
    expected = label_mask(mask)
    monkeypatch.setattr(_tiles, "LABEL_BLOCKS_ABOVE", 0)
    labels = label_mask(mask, block=100)
    assert labels.dtype == np.int32 and expected.dtype == np.int32
    assert int(labels.max()) == 260 * 260
    np.testing.assert_array_equal(labels, expected)
