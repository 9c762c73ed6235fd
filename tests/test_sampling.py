"""Globals of a whole volume from a random sample of its tiles (noisestat.score._sampling), checked
against the truth by simulation: many samplings of a synthetic population of tiles or objects."""

import numpy as np
import pytest
from scipy import ndimage

from noisestat.engine import tile_grid
from noisestat.errors import InputError
from noisestat.score import (extrapolate_global, extrapolate_ratio, objects_in_core, objects_inside, sample_tiles,
                             tile_of_objects, tile_totals, whole_weights)

Z95 = 1.959963984540054


def test_sample_tiles_is_seeded_sorted_and_uniform():
    first = sample_tiles(50, 0.2, seed=4)
    assert first.tolist() == sample_tiles(50, 0.2, seed=4).tolist() != sample_tiles(50, 0.2, seed=5).tolist()
    assert len(first) == 10 and np.all(np.diff(first) > 0) and 0 <= first[0] and first[-1] < 50
    assert len(sample_tiles(7, 0.001, seed=0)) == 1 and sample_tiles(7, 1.0, seed=0).tolist() == list(range(7))
    rng = np.random.default_rng(1)
    hits = np.zeros(20)
    for _ in range(2000):
        hits[sample_tiles(20, 0.25, rng)] += 1
    # each tile is in 25 % of the samples: 500 of 2000, binomial sd about 19
    assert np.all(np.abs(hits - 500) < 5 * np.sqrt(2000 * 0.25 * 0.75))


@pytest.mark.parametrize("fraction", [0, 1.5, -0.1])
def test_a_fraction_outside_0_1_is_refused(fraction):
    with pytest.raises(InputError, match="--sample must be a fraction of the tiles in \\(0, 1\\]"):
        sample_tiles(10, fraction, seed=0)


def _replicate(population, fraction, draws, seed, estimate):
    rng = np.random.default_rng(seed)
    results = [estimate(sample_tiles(len(population[0]), fraction, rng)) for _ in range(draws)]
    return np.array([r.value for r in results]), np.array([r.se for r in results])


def test_total_is_unbiased_its_se_is_the_spread_and_intervals_cover():
    rng = np.random.default_rng(12)
    totals = rng.gamma(4.0, 25.0, size=300)  # e.g. V_tot of each tile, skewed
    truth = totals.sum()
    values, ses = _replicate([totals], 0.1, 3000, 13, lambda s: extrapolate_global(totals[s], len(totals)))
    spread = values.std(ddof=1)
    assert abs(values.mean() - truth) < 4 * spread / np.sqrt(len(values))
    assert np.sqrt(np.mean(ses ** 2)) == pytest.approx(spread, rel=0.05)
    coverage = np.mean(np.abs(values - truth) <= Z95 * ses)
    assert 0.93 <= coverage <= 0.97


def test_ratio_is_nearly_unbiased_its_se_is_the_spread_and_intervals_cover():
    rng = np.random.default_rng(21)
    organ = rng.gamma(3.0, 100.0, size=400)
    plaque = 0.2 * organ + rng.normal(0, 3.0, size=400) * np.sqrt(organ)
    truth = plaque.sum() / organ.sum()
    values, ses = _replicate([organ], 0.1, 3000, 22,
                             lambda s: extrapolate_ratio(plaque[s], organ[s], len(organ)))
    spread = values.std(ddof=1)
    assert abs(values.mean() - truth) < 4 * spread / np.sqrt(len(values)) + 0.05 * spread  # bias O(1/n)
    assert np.sqrt(np.mean(ses ** 2)) == pytest.approx(spread, rel=0.07)
    coverage = np.mean(np.abs(values - truth) <= Z95 * ses)
    assert 0.92 <= coverage <= 0.975


def test_every_tile_sampled_gives_the_total_exactly():
    totals = np.arange(12.0)
    whole = extrapolate_global(totals, 12)
    assert whole.value == totals.sum() and whole.se == 0.0
    one = extrapolate_global([5.0], 12)
    assert one.value == 60.0 and np.isnan(one.se)
    assert extrapolate_ratio([1, 2], [2, 4], 2).se == 0.0


def test_objects_wholly_inside_a_tile_from_its_label_image_match_the_bounding_box_rule():
    rng = np.random.default_rng(8)
    mask = ndimage.binary_dilation(rng.random((90, 75)) < 0.02, iterations=2)
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    boxes = ndimage.find_objects(labels)
    lo = np.array([[s.start for s in b] for b in boxes])
    hi = np.array([[s.stop for s in b] for b in boxes])
    tile_index, n_tiles = tile_of_objects(lo, hi, mask.shape, 20)
    tiles = tile_grid(mask.shape, 20, (1, 1))
    assert n_tiles == len(tiles)
    counted = 0
    for k, t in enumerate(tiles):
        region_labels = ndimage.label(mask[t.region], structure=np.ones((3, 3)))[0]
        ids = objects_in_core(region_labels, t.inner)
        whole = np.flatnonzero(tile_index == k)
        assert len(ids) == len(whole)
        counted += len(ids)
        # the same objects: same areas
        assert sorted(np.bincount(region_labels.ravel())[ids].tolist()) == sorted(
            np.bincount(labels.ravel())[whole + 1].tolist())
        box_lo, box_hi = [c.start for c in t.core], [c.stop for c in t.core]
        assert np.array_equal(np.flatnonzero(objects_inside(lo, hi, box_lo, box_hi)), whole)
    assert 0 < counted < n  # some objects are whole, some cut


def test_tile_totals_sum_each_sampled_tiles_objects():
    totals = tile_totals([1.0, 2.0, 4.0, 8.0, 16.0], np.array([3, -1, 0, 3, 7]), np.array([7, 0, 3, 5]))
    assert totals.tolist() == [16.0, 4.0, 9.0, 0.0]


def test_minus_sampling_removes_the_bias_of_cut_objects():
    # objects (boxes) up to 0.6 tile long: counting whole ones only misses most of the volume;
    # weighting each by 1 / P(whole) restores the total, on a grid with a random origin
    rng = np.random.default_rng(31)
    shape, tile, m = (600, 600), 50, 700
    extent = rng.integers(1, 31, size=(m, 2))
    lo = (rng.random((m, 2)) * (np.array(shape) - extent + 1)).astype(int)
    hi = lo + extent
    volume = extent.prod(axis=1).astype(float)
    truth = volume.sum()
    naive, corrected, ses = [], [], []
    for _ in range(300):
        index, n_tiles = tile_of_objects(lo, hi, shape, tile, offset=rng.integers(0, tile, size=2))
        sampled = sample_tiles(n_tiles, 0.3, rng)
        whole = index >= 0
        weights, edge = np.zeros(m), np.zeros(m)
        weights[whole], edge[whole] = whole_weights(extent[whole], tile, volume[whole])
        naive.append(extrapolate_global(tile_totals(volume, index, sampled), n_tiles).value)
        estimate = extrapolate_global(tile_totals(volume * weights, index, sampled), n_tiles,
                                      edge_variance=tile_totals(edge, index, sampled))
        corrected.append(estimate.value)
        ses.append(estimate.se)
    naive, corrected, ses = np.array(naive), np.array(corrected), np.array(ses)
    expected_naive = (volume * np.prod((tile - extent + 1) / tile, axis=1)).sum()
    assert naive.mean() < 0.75 * truth
    assert abs(naive.mean() - expected_naive) < 4 * naive.std(ddof=1) / np.sqrt(len(naive))
    spread = corrected.std(ddof=1)
    assert abs(corrected.mean() - truth) < 4 * spread / np.sqrt(len(corrected))
    assert np.sqrt(np.mean(ses ** 2)) == pytest.approx(spread, rel=0.15)
    assert np.mean(np.abs(corrected - truth) <= Z95 * ses) >= 0.9


def test_weights_of_objects_that_cannot_be_whole_are_refused():
    weights, edge = whole_weights([[1, 1], [10, 1]], 10)
    assert weights.tolist() == [1.0, 10.0] and edge.tolist() == [0.0, 90.0]
    with pytest.raises(InputError, match="from 1 voxel to the tile's \\[10.0, 10.0\\] on every axis; got \\[11.0, 2.0\\]"):
        whole_weights([[11, 2]], 10)


@pytest.mark.parametrize("call, message", [
    (lambda: extrapolate_global([1, 2, 3], 2), "at least the 3 sampled; got 2"),
    (lambda: extrapolate_global([1, np.nan], 5), "must be finite"),
    (lambda: extrapolate_global([1, 2], 5, edge_variance=[1]), "one value per sampled tile \\(2\\); got 1"),
    (lambda: extrapolate_ratio([1, 2], [1], 5), "same sampled tiles; got 2 and 1"),
    (lambda: extrapolate_ratio([1, 2], [0, 0], 5), "must be positive"),
])
def test_bad_samples_are_one_clear_error(call, message):
    with pytest.raises(InputError, match=message):
        call()
