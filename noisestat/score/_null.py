"""The simulated second raw acquisition: the reference every codec is judged against.

Two extra replicas, independent of the N that estimate sigma_raw, give one simulated second
acquisition: eps = (chi_a - chi_b) / sigma_raw, a difference of two independent draws over the
replicas' spread, as for a truly second raw acquisition (sqrt(2) t(N - 1) in theory).

Disjoint pairs of the N replicas give more second acquisitions for free: (chi_i - chi_j) / sigma
from the other N - 2 replicas (sqrt(2) t(N - 3): a share inside |eps| < 1 lower by < 0.02 for
N = 10). Pooled with the extra pair, they make the reference several times more precise. The extra
pair's own verdict is judged against the replica pairs alone, so that its reference does not
contain itself. The same pairs give the rate at which raw objects lose their one-to-one partner
between two acquisitions (:func:`second_acquisition_losses`), and the share of raw objects the
replicas themselves lose tells whether the raw segmentation is stable at all
(:func:`unstable_warning`).
"""

from __future__ import annotations

import math

import numpy as np

from ._eps import epsilon, floored, replica_spread

__all__ = ["replica_pair_eps", "band_counts", "second_acquisition_losses", "unstable_warning",
           "unchanged_warning",
           "UNSTABLE_FRACTION"]

# Raw segmentation called unstable when replicas leave more than this share of the raw objects without a
# one-to-one partner on average. Well-segmented simulated scenes lose 0.3-2.7 % between two images
# (benchmarks/README.md, bench_verdict); the real phase-contrast set3 image, fragmented, 46 %;
# above 20 % one raw object in five has its sigma_raw from fewer replicas or none, and the per-object
# statistics describe only the objects that survive the camera's own noise.
UNSTABLE_FRACTION = 0.2


def replica_pair_eps(raw_values: np.ndarray, stack: np.ndarray, floor: np.ndarray, angular: np.ndarray) -> np.ndarray:
    """eps of the disjoint replica pairs (0, 1), (2, 3), ...: (chi_i - chi_j) / sigma from the other
    N - 2 replicas, floored as for the codecs; rows stacked pair after pair (n_pairs * n_objects,
    n_parameters). Empty with fewer than 4 replicas."""
    n = len(stack)
    rows = []
    if n >= 4:
        for k in range(n // 2):
            i, j = 2 * k, 2 * k + 1
            rest = [m for m in range(n) if m not in (i, j)]
            sigma_rest, _ = replica_spread(raw_values, stack[rest], angular)
            rows.append(epsilon(stack[i], stack[j], floored(sigma_rest, floor[None]), angular))
    if not rows:
        return np.empty((0, raw_values.shape[1]))
    return np.concatenate(rows)


def band_counts(eps: np.ndarray, parameters) -> dict:
    """Per parameter, the second acquisitions' objects with |eps| < 1:
    {"inside": count, "n": objects with an eps, "fraction": inside / n}."""
    out = {}
    for j, p in enumerate(parameters):
        col = np.asarray(eps)[:, j] if len(eps) else np.empty(0)
        col = col[~np.isnan(col)]
        inside = int((np.abs(col) < 1).sum())
        out[p] = {"inside": inside, "n": int(len(col)), "fraction": inside / len(col) if len(col) else math.nan}
    return out


def second_acquisition_losses(pair_counts, extra_pair, method: str) -> tuple:
    """Raw objects without a one-to-one partner between second acquisitions.

    ``pair_counts``: (unmatched, n) of each disjoint replica pair; ``extra_pair``: the same of the two
    extra replicas. Returns ``(reference, pooled)``: the replica pairs' counts (the extra pair's
    reference) and every pair's (the codecs' reference), as dicts ``unmatched``, ``n``, ``rate``,
    ``pairs``, ``method``."""
    u0, n0 = sum(c[0] for c in pair_counts), sum(c[1] for c in pair_counts)
    u_all, n_all = u0 + extra_pair[0], n0 + extra_pair[1]

    def entry(u, n, pairs):
        return {"unmatched": int(u), "n": int(n), "rate": u / n if n else math.nan, "pairs": pairs, "method": method}

    return entry(u0, n0, len(pair_counts)), entry(u_all, n_all, len(pair_counts) + 1)


def unstable_warning(replica_status: np.ndarray, n_matched: np.ndarray, statuses) -> str | None:
    """The warning for a raw segmentation that the camera's own noise (the replicas) does not
    reproduce: more than :data:`UNSTABLE_FRACTION` of the raw objects without a one-to-one partner in a
    replica, on average. None when stable."""
    if replica_status.ndim != 2 or not replica_status.shape[1]:
        return None
    replicas, n_raw = replica_status.shape
    unmatched = (replica_status != "matched").mean(axis=1)
    mean = float(unmatched.mean())
    if mean <= UNSTABLE_FRACTION:
        return None
    parts = {k: float((replica_status == k).mean()) for k in statuses[1:]}
    return (f"unstable raw segmentation: the {replicas} replicas leave {mean:.0%} of the {n_raw} raw objects "
            f"without a one-to-one partner on average (lost {parts['lost']:.0%}, split {parts['split']:.0%}, "
            f"merged {parts['merged']:.0%}; range {unmatched.min():.0%}-{unmatched.max():.0%}; threshold "
            f"{UNSTABLE_FRACTION:.0%}): sigma_raw and the per-object statistics describe only the objects that "
            f"survive the camera's own noise; {int((n_matched < 2).sum())} raw objects have no sigma_raw")


def unchanged_warning(floor: np.ndarray, sigma: np.ndarray, parameters) -> str | None:
    """The warning for parameters no replica changed for any object (no sigma floor: any change by a
    codec scores an infinite eps). None when there are none."""
    never = [p for j, p in enumerate(parameters) if floor[j] == 0 and np.isfinite(sigma[:, j]).any()]
    if not never:
        return None
    return (f"no replica changed {', '.join(never)} of any object: no sigma floor for them, so any change by a "
            f"codec scores an infinite eps")
