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
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from .errors import InputError

__all__ = ["Matching", "match_iou", "match_centroids", "METHODS"]

METHODS = ("iou", "centroid")


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
    ref_ids, ref_index = np.unique(reference, return_inverse=True)
    oth_ids, oth_index = np.unique(other, return_inverse=True)
    ref_index = ref_index.reshape(-1) - (ref_ids[0] == 0)
    oth_index = oth_index.reshape(-1) - (oth_ids[0] == 0)
    n_ref = len(ref_ids) - (ref_ids[0] == 0)
    n_oth = len(oth_ids) - (oth_ids[0] == 0)
    partner = np.full(n_ref, -1, dtype=np.int64)
    if n_ref == 0 or n_oth == 0:
        return Matching("iou", partner, int(n_oth))
    ref_area = np.bincount(ref_index[ref_index >= 0], minlength=n_ref)
    oth_area = np.bincount(oth_index[oth_index >= 0], minlength=n_oth)
    both = (ref_index >= 0) & (oth_index >= 0)
    pair = ref_index[both].astype(np.int64) * n_oth + oth_index[both]
    pair, inter = np.unique(pair, return_counts=True)
    r, o = pair // n_oth, pair % n_oth
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
    """Nearest-centre matching within ``max_distance`` pixels (not one-to-one).

    Parameters
    ----------
    reference_xy, other_xy : ndarray, shape (n, 2)
        Centres of mass (x, y) of the objects, in row order.

    Examples
    --------
    >>> match_centroids(np.array([[0., 0.], [10., 10.]]), np.array([[1., 1.]])).partner.tolist()
    [0, -1]
    """
    reference_xy = np.asarray(reference_xy, dtype=float).reshape(-1, 2)
    other_xy = np.asarray(other_xy, dtype=float).reshape(-1, 2)
    partner = np.full(len(reference_xy), -1, dtype=np.int64)
    if len(reference_xy) and len(other_xy):
        distance, index = cKDTree(other_xy).query(reference_xy, k=1)
        close = distance <= max_distance
        partner[close] = index[close]
    return Matching("centroid", partner, len(other_xy))
