import numpy as np
import pytest

from noisestat import InputError
from noisestat.measure import match_centroids, match_iou


def test_iou_one_to_one_and_unmatched_counts():
    a = np.zeros((10, 10), int)
    a[0:4, 0:4] = 1      # 16 px
    a[6:9, 6:9] = 2      # 9 px, will lose to a merge
    a[0:2, 8:10] = 3     # 4 px, absent in b
    b = np.zeros((10, 10), int)
    b[0:4, 0:3] = 5      # IoU with 1 = 12/16
    b[5:10, 5:10] = 6    # IoU with 2 = 9/25 < 0.5
    b[8:10, 0:2] = 7     # new object
    m = match_iou(a, b)
    assert m.partner.tolist() == [0, -1, -1]
    assert (m.n_matched, m.n_unmatched_reference, m.n_unmatched_other, m.n_shared) == (1, 2, 2, 0)


def test_iou_is_symmetric_in_partners():
    rng = np.random.default_rng(1)
    a = np.zeros((50, 50), int)
    for k in range(1, 20):
        r, c = rng.integers(0, 45, 2)
        a[r:r + 4, c:c + 4] = k
    b = np.roll(a, 1, axis=1)
    ab, ba = match_iou(a, b), match_iou(b, a)
    ids_a, ids_b = np.unique(a)[1:], np.unique(b)[1:]
    pairs_ab = {(ids_a[i], ids_b[j]) for i, j in enumerate(ab.partner) if j >= 0}
    pairs_ba = {(ids_a[j], ids_b[i]) for i, j in enumerate(ba.partner) if j >= 0}
    assert pairs_ab == pairs_ba and pairs_ab


def test_identical_images_match_fully():
    a = np.zeros((8, 8), int)
    a[1:3, 1:3], a[5:7, 5:7] = 4, 9
    m = match_iou(a, a)
    assert m.partner.tolist() == [0, 1] and m.n_unmatched_other == 0


def test_centroid_rule_is_not_one_to_one():
    ref = np.array([[10.0, 10.0], [12.0, 10.0], [40.0, 40.0]])
    other = np.array([[11.0, 10.0], [44.0, 40.0]])
    m = match_centroids(ref, other, max_distance=3)
    assert m.partner.tolist() == [0, 0, -1]  # 4 px away is rejected
    assert m.n_shared == 1 and m.n_unmatched_other == 1


def test_bad_inputs():
    with pytest.raises(InputError, match="differ in shape"):
        match_iou(np.zeros((3, 3), int), np.zeros((3, 4), int))
    with pytest.raises(InputError, match=">= 0.5"):
        match_iou(np.zeros((3, 3), int), np.zeros((3, 3), int), threshold=0.3)
    assert match_iou(np.zeros((3, 3), int), np.zeros((3, 3), int)).n_reference == 0


@pytest.mark.parametrize("shape", [(40, 50), (8, 30, 30)])
def test_overlap_table_equals_a_dense_count(shape):
    """The sparse overlap table (computed on the covered pixels only) against a dense count."""
    from scipy import ndimage as ndi

    from noisestat.measure._matching import _overlap

    rng = np.random.default_rng(len(shape))
    a = ndi.label(ndi.gaussian_filter(rng.normal(size=shape), 2) > 0.1)[0] * 3   # gaps in the ids
    b = ndi.label(ndi.gaussian_filter(rng.normal(size=shape), 2) > 0.1)[0]
    n_ref, n_oth, ref_area, oth_area, r, o, inter = _overlap(a, b)
    ids_a, ids_b = np.unique(a[a > 0]), np.unique(b[b > 0])
    dense = np.array([[np.sum((a == i) & (b == j)) for j in ids_b] for i in ids_a])
    assert (n_ref, n_oth) == (len(ids_a), len(ids_b))
    assert ref_area.tolist() == [int((a == i).sum()) for i in ids_a]
    assert oth_area.tolist() == [int((b == j).sum()) for j in ids_b]
    table = np.zeros_like(dense)
    table[r, o] = inter
    assert np.array_equal(table, dense) and (inter > 0).all()
