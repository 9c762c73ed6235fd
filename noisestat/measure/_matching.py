"""Matching objects of one segmentation to those of another.

Two rules, selectable and always recorded:

``"iou"`` (default)
    One-to-one: a pair matches when its intersection over union is at least 0.5 (the practice
    of StarDist's and cellpose's metrics). Above 0.5 a match is unique by construction; at exactly
    0.5 ties are resolved greedily by descending IoU, then ascending label ids.
``"centroid"``
    The rule of Pomarico et al. (2022): each reference object takes the object whose centre of mass
    is nearest to its own, if no further than ``max_distance`` (3 px). Not one-to-one and size-blind:
    two reference objects may take the same object (counted as ``n_shared``).

Objects left without a partner on either side are counted, never dropped silently.

:func:`classify_objects` then names what happened to each reference object from the pixel-overlap
table: ``"matched"`` (it has a partner), else ``"merged"`` (the other object covering at least half
of it also covers at least half of another reference object), else ``"split"`` (two or more other
objects lie mostly, >= half of their pixels, inside it), else ``"lost"``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from ..errors import InputError

__all__ = ["Matching", "match_iou", "match_centroids", "classify_objects", "label_counts", "pair_unmatched", "METHODS",
           "STATUSES"]

METHODS = ("iou", "centroid")
STATUSES = ("matched", "lost", "split", "merged")


@dataclass(frozen=True)
class Matching:
    """Result of matching reference objects to other objects.

    Attributes
    ----------
    method : str
        ``"iou"`` or ``"centroid"``.
    partner : ndarray of int64, shape (n_reference,)
        For reference object ``i`` (the i-th reference label id, ascending), the row index of its
        partner among the other objects, or -1 when it has none.
    n_other : int
        Number of other objects.
    """

    method: str
    partner: np.ndarray
    n_other: int

    @property
    def n_reference(self) -> int:
        return len(self.partner)

    @property
    def n_matched(self) -> int:
        return int((self.partner >= 0).sum())

    @property
    def n_unmatched_reference(self) -> int:
        """Reference objects with no partner (lost, merged or split beyond recognition)."""
        return self.n_reference - self.n_matched

    @property
    def n_unmatched_other(self) -> int:
        """Other objects no reference object took (new or split-off objects)."""
        return self.n_other - len(np.unique(self.partner[self.partner >= 0]))

    @property
    def n_shared(self) -> int:
        """Other objects taken by more than one reference object (centroid rule only)."""
        taken = self.partner[self.partner >= 0]
        return int((np.bincount(taken, minlength=self.n_other) > 1).sum()) if taken.size else 0

    def counts(self) -> dict:
        return {"method": self.method, "matched": self.n_matched, "unmatched_reference": self.n_unmatched_reference,
                "unmatched_other": self.n_unmatched_other, "shared": self.n_shared}


_COUNT_CHUNK = 1 << 22  # pixels per bincount pass of label_counts


def label_counts(labels: np.ndarray) -> np.ndarray:
    """Pixels per label id (``np.bincount`` of the label image), counted in chunks: bincount of a
    whole image first copies it to 8-byte integers (268 MB for a 33 M voxel volume)."""
    flat = np.asarray(labels).reshape(-1)
    top = int(flat.max()) if flat.size else 0
    counts = np.zeros(top + 1, dtype=np.int64)
    for start in range(0, flat.size, _COUNT_CHUNK):
        counts += np.bincount(flat[start:start + _COUNT_CHUNK], minlength=top + 1)
    return counts


def _overlap(reference: np.ndarray, other: np.ndarray):
    """Sparse pixel-overlap table of two label images (objects indexed by ascending label id).

    Returns (n_ref, n_oth, ref_area, oth_area, r, o, inter): the pairs (r, o) that share ``inter``
    pixels. Hand-written with ``np.unique`` on pair codes of the pixels both images cover (a dense
    table would be n_ref x n_oth); ids and areas come from ``bincount``, so the memory is that of the
    overlap, not of the image (a volume's 33 M voxels would otherwise need ~1 GB of sort arrays).
    """
    reference, other = np.asarray(reference), np.asarray(other)
    if (reference.size and reference.min() < 0) or (other.size and other.min() < 0):
        raise InputError("label images must hold ids >= 0")
    ref_counts = label_counts(reference)
    oth_counts = label_counts(other)
    ref_ids = np.flatnonzero(ref_counts[1:]) + 1
    oth_ids = np.flatnonzero(oth_counts[1:]) + 1
    n_ref, n_oth = len(ref_ids), len(oth_ids)
    ref_area, oth_area = ref_counts[ref_ids], oth_counts[oth_ids]
    ref_lut = np.full(len(ref_counts), -1, dtype=np.int64)
    ref_lut[ref_ids] = np.arange(n_ref)
    oth_lut = np.full(len(oth_counts), -1, dtype=np.int64)
    oth_lut[oth_ids] = np.arange(n_oth)
    both = (reference > 0) & (other > 0)
    pair = ref_lut[reference[both]] * max(n_oth, 1) + oth_lut[other[both]]
    pair, inter = np.unique(pair, return_counts=True)
    return n_ref, n_oth, ref_area, oth_area, pair // max(n_oth, 1), pair % max(n_oth, 1), inter


def classify_objects(reference: np.ndarray, other: np.ndarray, partner: np.ndarray) -> np.ndarray:
    """What happened to each reference object in ``other``: one of :data:`STATUSES`.

    Parameters
    ----------
    reference, other : ndarray of int, shape (rows, cols)
        Label images (0 background).
    partner : ndarray of int, shape (n_reference,)
        :attr:`Matching.partner` of the matching used (-1: no partner).

    Returns
    -------
    status : ndarray of str, shape (n_reference,)
        ``"matched"`` where ``partner >= 0`` and no other reference object has the same partner
        (``"merged"`` where one has: the centroid rule); otherwise ``"merged"`` when the other object that
        covers at least half of the reference object also covers at least half of another
        reference object, ``"split"`` when at least two other objects each have at least half
        of their pixels inside it, else ``"lost"``.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((4, 9), int); a[:, :2] = 1; a[:, 3:5] = 2; a[:, 6:] = 3
    >>> b = np.zeros((4, 9), int); b[:, :5] = 1; b[:2, 6:] = 2; b[2:, 6:] = 3
    >>> classify_objects(a, b, np.array([-1, -1, -1])).tolist()
    ['merged', 'merged', 'split']
    >>> classify_objects(a, b, np.array([0, 0, -1])).tolist()   # both took object 0: a merge
    ['merged', 'merged', 'split']
    """
    if reference.shape != other.shape:
        raise InputError(f"label images to classify differ in shape: {reference.shape} and {other.shape}")
    partner = np.asarray(partner)
    n_ref, n_oth, ref_area, oth_area, r, o, inter = _overlap(reference, other)
    if len(partner) != n_ref:
        raise InputError(f"partner must have one entry per reference object ({n_ref}); got {len(partner)}")
    status = np.full(n_ref, "lost", dtype="<U7")
    status[partner >= 0] = "matched"
    # a partner taken by two reference objects (the centroid rule is not one-to-one): one object where
    # the reference has two, a merge, whatever the centres say
    taken = partner[partner >= 0]
    shared = np.zeros(n_ref, dtype=bool)
    if taken.size:
        counts = np.bincount(taken)
        shared[partner >= 0] = counts[taken] >= 2
    status[shared] = "merged"
    # other objects covering >= half of a reference object, and how many reference objects each covers so
    covers = 2 * inter >= ref_area[r]
    n_covered = np.bincount(o[covers], minlength=n_oth)
    merged = np.zeros(n_ref, dtype=bool)
    merged[r[covers & (n_covered[o] >= 2)]] = True
    inside = 2 * inter >= oth_area[o]
    split = np.bincount(r[inside], minlength=n_ref) >= 2
    unmatched = partner < 0
    status[unmatched & split] = "split"
    status[unmatched & merged] = "merged"
    return status


def match_iou(reference: np.ndarray, other: np.ndarray, *, threshold: float = 0.5) -> Matching:
    """One-to-one matching of two label images by intersection over union.

    Parameters
    ----------
    reference, other : ndarray of int, shape (rows, cols)
        Label images (0 background); objects are indexed by ascending label id.
    threshold : float, default 0.5
        Minimum IoU of a match; must be >= 0.5 so that greedy assignment is optimal.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.zeros((4, 6), int); a[:2, :2] = 1; a[2:, 3:] = 2
    >>> b = np.zeros((4, 6), int); b[:2, :3] = 7
    >>> match_iou(a, b).partner.tolist()
    [0, -1]
    """
    if reference.shape != other.shape:
        raise InputError(f"label images to match differ in shape: {reference.shape} and {other.shape}")
    if threshold < 0.5:
        raise InputError(f"IoU threshold must be >= 0.5 for a unique matching; got {threshold}")
    n_ref, n_oth, ref_area, oth_area, r, o, inter = _overlap(reference, other)
    partner = np.full(n_ref, -1, dtype=np.int64)
    if n_ref == 0 or n_oth == 0:
        return Matching("iou", partner, int(n_oth))
    iou = inter / (ref_area[r] + oth_area[o] - inter)
    keep = iou >= threshold
    r, o, iou = r[keep], o[keep], iou[keep]
    order = np.lexsort((o, r, -iou))
    taken = np.zeros(n_oth, dtype=bool)
    for i in order:
        if partner[r[i]] < 0 and not taken[o[i]]:
            partner[r[i]] = o[i]
            taken[o[i]] = True
    return Matching("iou", partner, int(n_oth))


def match_centroids(reference_xy: np.ndarray, other_xy: np.ndarray, *, max_distance: float = 3.0) -> Matching:
    """Nearest-centre matching within ``max_distance`` (not one-to-one): pixels for an image's centres,
    physical units for a volume's.

    Parameters
    ----------
    reference_xy, other_xy : ndarray, shape (n, 2) or (n, 3)
        Centres of the objects, in row order: (x, y) of an image's objects, (x, y, z) of a volume's.

    Examples
    --------
    >>> match_centroids(np.array([[0., 0.], [10., 10.]]), np.array([[1., 1.]])).partner.tolist()
    [0, -1]
    """
    reference_xy = np.asarray(reference_xy, dtype=float)
    dims = reference_xy.shape[-1] if reference_xy.ndim == 2 else 2
    reference_xy = reference_xy.reshape(-1, dims)
    other_xy = np.asarray(other_xy, dtype=float).reshape(-1, dims)
    partner = np.full(len(reference_xy), -1, dtype=np.int64)
    if len(reference_xy) and len(other_xy):
        distance, index = cKDTree(other_xy).query(reference_xy, k=1)
        close = distance <= max_distance
        partner[close] = index[close]
    return Matching("centroid", partner, len(other_xy))


def pair_unmatched(a_labels: np.ndarray, b_labels: np.ndarray, a_xy: np.ndarray, b_xy: np.ndarray,
                   method: str, max_distance: float = 3.0, a_classes=None, b_classes=None) -> tuple[int, int]:
    """Objects of image ``a`` without a one-to-one partner in image ``b`` under ``method``, and ``a``'s
    object count: the losses between two acquisitions. Under the centroid rule, objects of ``a`` that
    share their partner count as without one (a merge), as :func:`classify_objects` says. With each
    object's class (``a_classes``, ``b_classes``: one per object in label order, several classes of
    object), a partner of another class is no partner, as for a codec's objects.

    Examples
    --------
    >>> a = np.zeros((4, 9), int); a[:, :2] = 1; a[:, 3:5] = 2; a[:, 6:] = 3
    >>> pair_unmatched(a, a, None, None, "iou")
    (0, 3)
    """
    m = match_iou(a_labels, b_labels) if method == "iou" else match_centroids(a_xy, b_xy, max_distance=max_distance)
    partner = m.partner
    if a_classes is not None and b_classes is not None and len(partner):
        other = (partner >= 0) & (np.asarray(b_classes)[np.maximum(partner, 0)] != np.asarray(a_classes))
        partner = np.where(other, -1, partner)
    unmatched = int((partner < 0).sum())
    if method == "iou":
        return unmatched, m.n_reference
    taken = partner[partner >= 0]
    shared = int((np.bincount(taken)[taken] >= 2).sum()) if taken.size else 0
    return unmatched + shared, m.n_reference
