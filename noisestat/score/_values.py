"""A value predictor's verdict: quantities whose null is known, judged by the objects' rule.

A value per pixel (a probability map, a restored image) has no verdict pixel by pixel: neighbouring
pixels share the predictor's neighbourhood (:mod:`noisestat.score._pixels`). Averages over regions
wide enough to be nearly independent of one another do have one, and so do quantities of the whole
image. Each is a value measured on the raw image, on the N replicas (sigma_raw: their spread), on
the two extra replicas and the disjoint replica pairs (the simulated second acquisitions) and on
each decoded image, and each is judged by :func:`noisestat.score.judge`, the rule, margins and
burden of proof of objects and globals (docs/verdict.md):

**Region means.** The prediction averaged over each region, a region standing for an object:
eps = (raw mean - codec mean) / sigma_raw(region mean), judged by the objects' shift, spread and
outlier criteria against the simulated second acquisitions' region means. A region cannot be lost,
so there is no loss criterion. The regions are the user's label image (every label > 0 a region) or
a grid of square (cubic in a volume) blocks, whose edge follows the spatial correlation of the
predictor's noise:

    L    = the lag at which the autocorrelation of the replicas' residuals (each replica's map
           minus the replicas' mean map) falls to 1/e, the largest over the axes (linear
           interpolation between lags; :func:`correlation_length`)
    edge = the smallest odd number >= max(MIN_EDGE, ceil(LENGTHS_PER_EDGE x L))

The grid's origin is drawn at random (from the run's seed) along each axis: a codec that keeps each
of its own blocks' mean and nothing else (JPEG with only the DC terms) would leave the means of a grid
that lines up with its blocks unchanged. An odd edge never lines up with a codec's blocks of 4, 8 or
16 pixels for more than one block in a row, and the random origin leaves no fixed alignment to aim at.
Structure *inside* a region (finer than the edge) is not judged by the region means: say so in what
the verdict admits.

For noise whose correlation falls as exp(-d^2 / L^2) (a Gaussian smoothing), two blocks sharing a
face of edge B have means correlated by about L / (2 sqrt(pi) B): 0.07 at B = 4 L, and blocks meeting
at a corner by its square. ``MIN_EDGE`` (8 pixels, 64 in an image) keeps each mean an average over
many readings: sigma_raw from replicas drawn around the observed image is tied to the region's own
reading (:mod:`noisestat.score._pixels`), a tie that averaging over the region dilutes. Pixels beyond
the last whole block along an axis join it.

**Image-level quantities** (globals): the prediction's mean over the image and, with user regions,
over their foreground (every pixel of a label > 0), each judged as N_tot is (|eps| below the global
margin, sigma_raw known from N replicas: a chi-square bound). The sum over the same pixels is the
mean times a fixed count, the same eps: reported beside it, judged once through the mean (as IntDen
and RawIntDen are one family).

**Metrics against a target** (``target``, the truth the prediction should match): MSE, SSIM
(:func:`skimage.metrics.structural_similarity`, ``data_range`` the target's max - min), PSNR
(the same range) and Pearson r of the prediction against the target, on the raw map, every replica
and each decoded image: reported, not judged. A whole-image metric against a target has no known
null here: the replicas are drawn around the observed image, so each carries the raw image's own
noise beside a fresh draw, and their spread of MSE or r is up to about 1.8 times a true second
acquisition's (and their mean MSE about twice a second acquisition's; measured on simulated scenes).
A user sees both what the codec does to the prediction (the verdict on the region means and the
image's mean) and to its accuracy (each metric on raw and on the codec's image, and how much it
moves between replicas).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import InputError
from ._criteria import eps_scale, keep_for_spread
from ._eps import epsilon, floored, replica_spread, resolution_floor
from ._null import band_counts, replica_pair_eps
from ._tests import codec_statistics
from ._verdict import Margins, Verdict, judge

__all__ = ["REGION_PARAMETER", "LENGTHS_PER_EDGE", "MIN_EDGE", "METRICS", "correlation_length", "block_edge",
           "block_regions", "check_regions", "check_target", "target_metrics", "ValueReference", "value_reference",
           "judge_values", "region_margins"]

REGION_PARAMETER = "region mean"
# a grid block's edge in correlation lengths of the predictor's noise (module docstring: adjacent blocks'
# means then correlate by about 0.07), and at least this many pixels
LENGTHS_PER_EDGE = 4
MIN_EDGE = 8
# metric -> judged through (its family's representative)
METRICS = {"MSE": "MSE", "PSNR": "MSE", "SSIM": "SSIM", "r": "r"}
_LAG_STEP = 8  # lags computed per pass of correlation_length
# the outlier criterion's floor for regions, in regions: 8 / n (region_margins)
OUTLIER_FLOOR_UNITS = 8.0
METRICS_NOT_JUDGED = ("reported, not judged: the replicas scatter around the observed image, so a whole-image "
                      "metric's spread over them is not a second acquisition's (up to about 1.8 x wider)")


def _residuals(maps):
    """The maps minus their mean over maps (float64), one at a time."""
    maps = list(maps)
    mean = np.zeros(np.shape(maps[0]))
    for m in maps:
        mean += m
    mean /= len(maps)
    for m in maps:
        yield np.asarray(m, dtype=np.float64) - mean


def _lagged(r: np.ndarray, axis: int, lag: int) -> float:
    """mean of r(x) r(x + lag) along ``axis`` over the pairs inside the array."""
    first, second = [slice(None)] * r.ndim, [slice(None)] * r.ndim
    first[axis], second[axis] = slice(0, r.shape[axis] - lag), slice(lag, None)
    a, b = r[tuple(first)], r[tuple(second)]
    return float(np.sum(a * b) / a.size) if a.size else math.nan


def correlation_length(maps, *, max_lag: int | None = None) -> float:
    """The correlation length of the predictor's noise, in pixels: the lag at which the spatial
    autocorrelation of the replicas' residuals (each map minus the maps' mean map) falls to 1/e,
    interpolated linearly between lags, the largest over the axes (0.0 when the maps do not vary).

    ``maps``: N >= 2 replica maps of one shape. Lags are computed a few at a time until the
    autocorrelation has fallen along every axis (at most ``max_lag``, default a quarter of the
    axis; the length is then that lag).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> white = [rng.normal(size=(64, 64)) for _ in range(4)]
    >>> correlation_length(white) < 1
    True
    """
    maps = list(maps)
    if len(maps) < 2:
        raise ValueError(f"correlation_length needs at least 2 maps; got {len(maps)}")
    shape = np.shape(maps[0])
    axes = [a for a, n in enumerate(shape) if n >= 4]
    var = sum(float(np.sum(r * r)) for r in _residuals(maps)) / (len(maps) * max(int(np.prod(shape)), 1))
    if not var > 0 or not axes:
        return 0.0
    target = math.exp(-1.0)
    lengths = []
    for axis in axes:
        limit = max(1, shape[axis] // 4) if max_lag is None else min(int(max_lag), shape[axis] - 1)
        rho, found = [1.0], None
        while found is None and len(rho) <= limit:
            lags = range(len(rho), min(len(rho) + _LAG_STEP, limit + 1))
            sums = np.zeros(len(lags))
            for r in _residuals(maps):
                sums += [_lagged(r, axis, d) for d in lags]
            for d, s in zip(lags, sums / len(maps) / var):
                rho.append(float(s))
                if rho[-1] < target:
                    found = (d - 1) + (rho[-2] - target) / (rho[-2] - rho[-1])
                    break
        lengths.append(found if found is not None else float(limit))
    return float(max(lengths))


def block_edge(length: float) -> int:
    """The grid's block edge for a correlation length (pixels): max(MIN_EDGE, ceil(LENGTHS_PER_EDGE x
    length)).

    Examples
    --------
    >>> block_edge(0.6), block_edge(3.0)
    (9, 13)
    """
    edge = int(max(MIN_EDGE, math.ceil(LENGTHS_PER_EDGE * float(length) - 1e-9)))
    return edge if edge % 2 else edge + 1


def block_regions(shape, edge: int, offset=None) -> np.ndarray:
    """A label image (int32, 1..R) of square (cubic) blocks of ``edge`` pixels whose boundaries lie at
    ``offset`` + k ``edge`` along each axis (``offset`` per axis in [0, edge), default 0); the pixels
    before the first boundary join the first block and those beyond the last whole block join it (an
    axis shorter than ``edge`` is one block).

    Examples
    --------
    >>> block_regions((5, 4), 2)
    array([[1, 1, 2, 2],
           [1, 1, 2, 2],
           [3, 3, 4, 4],
           [3, 3, 4, 4],
           [3, 3, 4, 4]], dtype=int32)
    >>> block_regions((5, 4), 2, offset=(1, 0))[:, 0]
    array([1, 1, 1, 3, 3], dtype=int32)
    """
    offset = (0,) * len(shape) if offset is None else tuple(int(o) for o in offset)
    if len(offset) != len(shape) or any(not 0 <= o < edge for o in offset):
        raise ValueError(f"offset must be one value in [0, {edge}) per axis; got {offset}")
    index = np.zeros(shape, dtype=np.int64)
    for axis, (n, o) in enumerate(zip(shape, offset)):
        blocks = max((n - o) // edge, 1)
        i = np.clip((np.arange(n) - o) // edge, 0, blocks - 1)
        index = index * blocks + i.reshape([-1 if k == axis else 1 for k in range(len(shape))])
    return (index + 1).astype(np.int32)


def check_regions(regions, shape, name: str = "regions") -> np.ndarray:
    """The user's regions as a label image: integers (or booleans) >= 0 of the image's shape, some
    label > 0; ``name`` (the file) in every message."""
    a = np.asarray(regions)
    if a.shape != tuple(shape):
        raise InputError(f"{name} must have the image's shape {tuple(shape)}; got {a.shape}")
    if a.dtype.kind not in "biu":
        raise InputError(f"{name} must hold whole-number labels (0 outside every region); got {a.dtype}")
    if a.dtype.kind == "i" and (a < 0).any():
        raise InputError(f"{name} must hold labels >= 0 (0 outside every region); got {int(a.min())}")
    if not (a > 0).any():
        raise InputError(f"{name} has no region: every label is 0")
    return a


def check_target(target, shape, name: str = "target") -> np.ndarray:
    """The target as float64 of the image's shape, finite, not constant."""
    a = np.asarray(target)
    if a.shape != tuple(shape):
        raise InputError(f"{name} must have the image's shape {tuple(shape)}; got {a.shape}")
    if a.dtype.kind not in "biuf":
        raise InputError(f"{name} must hold real numbers; got {a.dtype}")
    a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise InputError(f"{name} has non-finite values ({int((~np.isfinite(a)).sum())} pixels)")
    if not a.max() > a.min():
        raise InputError(f"{name} is constant ({a.flat[0]:g}): SSIM and PSNR need a data range")
    return a


def target_metrics(values, target: np.ndarray) -> dict:
    """MSE, PSNR, SSIM and Pearson r of ``values`` against ``target`` (float64), data range the
    target's max - min (SSIM's window: 7, or the smallest axis when odd and shorter).

    Examples
    --------
    >>> t = np.arange(64.0).reshape(8, 8)
    >>> m = target_metrics(t + 1.0, t)
    >>> m["MSE"], round(m["r"], 6)
    (1.0, 1.0)
    """
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    v = np.asarray(values, dtype=np.float64)
    data_range = float(target.max() - target.min())
    mse = float(np.mean((v - target) ** 2))
    win = min(7, min(v.shape) if min(v.shape) % 2 else min(v.shape) - 1)
    ssim = float(structural_similarity(target, v, data_range=data_range, win_size=max(win, 3)))
    with np.errstate(divide="ignore"):
        psnr = float(peak_signal_noise_ratio(target, v, data_range=data_range)) if mse > 0 else math.inf
    dv, dt = v - v.mean(), target - target.mean()
    denom = math.sqrt(float((dv * dv).sum()) * float((dt * dt).sum()))
    r = float((dv * dt).sum() / denom) if denom > 0 else math.nan
    return {"MSE": mse, "PSNR": psnr, "SSIM": ssim, "r": r}


@dataclass(frozen=True)
class ValueReference:
    """What the raw image, the replicas and the simulated second acquisitions give the verdict of a
    value predictor (:func:`value_reference`); :func:`judge_values` judges a codec's map against it."""

    labels: np.ndarray = field(repr=False)  # 0 outside every region, 1..R
    region_ids: np.ndarray = field(repr=False)  # the user's label of each region (1..R for the grid)
    regions: dict
    raw_means: np.ndarray = field(repr=False)  # (R, 1)
    sigma_used: np.ndarray = field(repr=False)  # (R, 1), floored
    pooled_null_eps: np.ndarray = field(repr=False)  # replica pairs, then the extra pair
    null_fractions: dict
    quantities_raw: dict
    quantities_sigma: dict  # sigma_raw of each quantity (floored)
    quantities_replicas: dict  # name -> (N,) values on the replicas
    judged: tuple  # the global quantities judged
    n_replicas: int
    margins: Margins
    target: np.ndarray | None = field(default=None, repr=False)
    null_verdict: Verdict | None = None
    null_quantities: dict = field(default_factory=dict)

    def region_means(self, values) -> np.ndarray:
        """The map's mean over each region, (R, 1)."""
        flat = self.labels.reshape(-1)
        sums = np.bincount(flat, weights=np.asarray(values, dtype=np.float64).reshape(-1),
                           minlength=len(self.region_ids) + 1)[1:]
        return (sums / self._counts)[:, None]

    @property
    def _counts(self) -> np.ndarray:
        return np.bincount(self.labels.reshape(-1), minlength=len(self.region_ids) + 1)[1:].astype(np.float64)

    def quantities(self, values) -> dict:
        """The image-level quantities (and metrics, with a target) of one map."""
        v = np.asarray(values, dtype=np.float64)
        out = {"mean": float(v.mean()), "sum": float(v.sum())}
        if self.regions["source"] == "user":
            fg = v[self.labels > 0]
            out.update({"mean[foreground]": float(fg.mean()), "sum[foreground]": float(fg.sum())})
        if self.target is not None:
            out.update(target_metrics(v, self.target))
        return out

    def describe(self) -> dict:
        """The regions, the quantities judged and the simulated second acquisition's outcome (summary.json)."""
        return {"regions": self.regions, "judged_globals": list(self.judged),
                "reported_only": {"sum": "the mean times a fixed pixel count: judged through the mean",
                                  **({"MSE, PSNR, SSIM, r": METRICS_NOT_JUDGED} if self.target is not None else {})},
                "quantities_raw": self.quantities_raw, "quantities_sigma_raw": self.quantities_sigma,
                "null_verdict": None if self.null_verdict is None else
                {"outcome": self.null_verdict.outcome, "reasons": list(self.null_verdict.reasons)},
                "rule": value_rule_text(self.margins, self.n_replicas, self.judged)}


def _judged(names) -> tuple:
    """The quantities judged: each family once (a sum through its mean); the metrics against a target are
    reported only (module docstring)."""
    return tuple(n for n in names if not n.startswith("sum") and n not in METRICS)


def _floored_sigma(raw: dict, replicas: dict) -> dict:
    """sigma_raw of each scalar quantity: the replicas' sd, floored at its step h / sqrt(12)."""
    out = {}
    for name, value in raw.items():
        reps = np.asarray(replicas[name], dtype=np.float64)
        if not np.isfinite(value) or not np.isfinite(reps).all():
            out[name] = math.nan
            continue
        sigma, _ = replica_spread(np.array([[value]]), reps[:, None, None], np.zeros(1, bool))
        floor = resolution_floor(np.array([[value]]), reps[:, None, None], np.zeros(1, bool))
        out[name] = float(floored(sigma, floor[None])[0, 0])
    return out


def _global_eps(raw: dict, other: dict, sigma: dict, names) -> dict:
    return {n: float(epsilon(np.array([raw[n]]), np.array([other[n]]), np.array([sigma[n]]), np.zeros(1, bool))[0])
            for n in names}


def region_margins(margins: Margins, n_regions: int) -> Margins:
    """The margins with the outlier criterion's floor for ``n_regions`` regions: ``min(loss_floor,
    OUTLIER_FLOOR_UNITS / n_regions)``. The objects' floor (6 %) suits the 50-odd objects of an image:
    hundreds of regions can show far less, and a fixed 6 % would admit a codec that wrecks 6 % of them.
    With the margin ``loss`` x the reference's rate (about 1 %: its 99th percentile) + floor, 8 / n is
    about the floor at which a second acquisition's rate is shown under the margin with 90 % power
    (one-sided at alpha 0.05: (m - 0.01)^2 n >= 2.93^2 m (1 - m), m the margin): 3.2 % at 250 regions,
    1.3 % at 600; at most the objects' 6 %.

    Examples
    --------
    >>> region_margins(Margins(), 50).loss_floor, region_margins(Margins(), 800).loss_floor
    (0.06, 0.01)
    """
    floor = min(margins.loss_floor, OUTLIER_FLOOR_UNITS / max(int(n_regions), 1))
    return replace(margins, loss_floor=floor)


def value_reference(raw_values, replica_maps, null_pair, *, regions=None, target=None,
                    margins: Margins | None = None, regions_name: str = "regions",
                    target_name: str = "target", seed=None) -> ValueReference:
    """The verdict's reference from the raw map, the N replica maps and the two extra replicas' maps
    (module docstring): the regions (the user's ``regions`` or the correlation-length grid), their
    means, sigma_raw and the simulated second acquisitions, the image-level quantities and, with
    ``target``, the metrics; and the simulated second acquisition's own verdict. ``seed`` (anything
    :func:`numpy.random.default_rng` takes) draws the grid's origin; without it the grid starts at 0."""
    margins = margins or Margins()
    replica_maps = list(replica_maps)
    n = len(replica_maps)
    shape = np.shape(raw_values)
    if regions is None:
        length = correlation_length(replica_maps)
        edge = block_edge(length)
        offset = (tuple(int(o) for o in np.random.default_rng(seed).integers(0, edge, size=len(shape)))
                  if seed is not None else (0,) * len(shape))
        labels = block_regions(shape, edge, offset)
        ids = np.arange(1, int(labels.max()) + 1)
        described = {"source": "grid", "correlation_length_px": round(length, 3), "edge_px": edge,
                     "origin_px": list(offset),
                     "rule": f"edge = the smallest odd number >= max({MIN_EDGE}, ceil({LENGTHS_PER_EDGE} x L)), L the "
                             "lag at which the autocorrelation of the replicas' residuals falls to 1/e (largest over "
                             "the axes); the grid's origin drawn from the run's seed"}
    else:
        given = check_regions(regions, shape, regions_name)
        ids, inverse = np.unique(given, return_inverse=True)
        labels = inverse.reshape(shape).astype(np.int32)
        if ids[0] != 0:
            labels += 1
        ids = ids[ids > 0]
        described = {"source": "user"}
    target = None if target is None else check_target(target, shape, target_name)
    described["n_regions"] = int(len(ids))
    margins = region_margins(margins, len(ids))
    described["outlier_floor"] = margins.loss_floor
    counts = np.bincount(labels.reshape(-1), minlength=len(ids) + 1)[1:]
    described["pixels_per_region"] = {"min": int(counts.min()), "median": float(np.median(counts)),
                                      "max": int(counts.max())}
    base = ValueReference(labels, ids, described, np.empty((0, 1)), np.empty((0, 1)), np.empty((0, 1)), {}, {}, {},
                          {}, (), n, margins, target)
    raw_means = base.region_means(raw_values)
    stack = np.stack([base.region_means(m) for m in replica_maps])
    sigma, _ = replica_spread(raw_means, stack, np.zeros(1, bool))
    floor = resolution_floor(raw_means, stack, np.zeros(1, bool))
    sigma_used = floored(sigma, floor[None])
    null_means = [base.region_means(m) for m in null_pair]
    null_eps = epsilon(null_means[0], null_means[1], sigma_used, np.zeros(1, bool))
    pairs_eps = replica_pair_eps(raw_means, stack, floor, np.zeros(1, bool))
    pooled = np.concatenate([pairs_eps, null_eps])
    raw_q = base.quantities(raw_values)
    per_replica = [base.quantities(m) for m in replica_maps]
    rep_q = {k: np.array([q[k] for q in per_replica]) for k in raw_q}
    sigma_q = _floored_sigma(raw_q, rep_q)
    judged = _judged(raw_q)
    ref = replace(base, raw_means=raw_means, sigma_used=sigma_used, pooled_null_eps=pooled,
                  null_fractions=band_counts(pooled, [REGION_PARAMETER]), quantities_raw=raw_q,
                  quantities_sigma=sigma_q, quantities_replicas=rep_q, judged=judged)
    # the extra pair judged as a codec would be, against the replica pairs alone
    null_q = [base.quantities(m) for m in null_pair]
    pairs = pairs_eps if len(pairs_eps) else None
    stats = codec_statistics(null_eps, [REGION_PARAMETER], band_counts(pairs_eps, [REGION_PARAMETER]) if pairs is not
                             None else None, margin=margins.shift,
                             keep=keep_for_spread(margins.spread, n, reference="pairs"),
                             beyond_margin=margins.shift * eps_scale(n))
    verdict = judge(stats, null_eps, [REGION_PARAMETER], pairs, _global_eps(null_q[0], null_q[1], sigma_q, judged), n,
                    margins=margins, primary=[REGION_PARAMETER], reference="pairs", losses=False)
    return replace(ref, null_verdict=_worded(verdict, margins, n, judged),
                   null_quantities={"pair": null_q, "eps": _global_eps(null_q[0], null_q[1], sigma_q, raw_q)})


def judge_values(ref: ValueReference, values, *, identical: bool = False) -> tuple:
    """One codec's map judged against ``ref``: ``(verdict, quantities)``, the
    :class:`~noisestat.score.Verdict` and a dict of what was measured (the region means' eps summary,
    each global quantity on raw and codec with sigma_raw and eps, and with a target ``metrics``: each
    metric on raw, on the codec's map and its change, with the replicas' mean and spread).
    ``identical``: the decoded image is the raw image (every effect exactly 0)."""
    m = ref.margins
    n = ref.n_replicas
    means = ref.region_means(values)
    eps = epsilon(ref.raw_means, means, ref.sigma_used, np.zeros(1, bool))
    stats = codec_statistics(eps, [REGION_PARAMETER], ref.null_fractions, margin=m.shift,
                             keep=keep_for_spread(m.spread, n), beyond_margin=m.shift * eps_scale(n))
    q = ref.quantities(values)
    global_eps = _global_eps(ref.quantities_raw, q, ref.quantities_sigma, ref.quantities_raw)
    verdict = judge(stats, eps, [REGION_PARAMETER], ref.pooled_null_eps, {k: global_eps[k] for k in ref.judged}, n,
                    margins=m, primary=[REGION_PARAMETER], identical=identical, losses=False)
    e = eps[:, 0]
    finite = e[np.isfinite(e)]
    quantities = {
        "regions": {"n": int(len(e)), "eps": [float(x) for x in e],
                    "trimmed_mean_eps": stats[REGION_PARAMETER]["trimmed_mean"],
                    "frac_abs_eps_lt_1": float((np.abs(e) < 1).mean()) if len(e) else math.nan,
                    "null_frac_abs_eps_lt_1": ref.null_fractions[REGION_PARAMETER]["fraction"],
                    "max_abs_eps": float(np.abs(e).max()) if len(e) else math.nan,
                    "mean_eps": float(finite.mean()) if len(finite) else math.nan},
        "globals": {k: {"raw": ref.quantities_raw[k], "codec": q[k], "sigma_raw": ref.quantities_sigma[k],
                        "eps": global_eps[k], "judged": k in ref.judged}
                    for k in ref.quantities_raw if k not in METRICS},
    }
    if ref.target is not None:
        quantities["metrics"] = {
            k: {"raw": ref.quantities_raw[k], "codec": q[k], "change": q[k] - ref.quantities_raw[k],
                "replicas_sd": float(np.std(ref.quantities_replicas[k], ddof=1)), "judged": False}
            for k in METRICS}
    return _worded(verdict, m, n, ref.judged), quantities


def _worded(verdict: Verdict, margins: Margins, n_replicas: int, judged) -> Verdict:
    """The verdict with the rule and what it admitted said for regions and image-level quantities."""
    return replace(verdict, rule=value_rule_text(margins, n_replicas, judged),
                   admitted=_admitted(margins, n_replicas, judged))


def _admitted(margins: Margins, n_replicas: int, judged) -> str:
    keep = keep_for_spread(margins.spread, n_replicas)
    return (f"a systematic shift of the region means under {margins.shift:g} sigma_raw, a per-region error spread "
            f"under {margins.spread:g} x a second acquisition's (share of |eps| < 1 above {keep:.2f} x a second "
            f"acquisition's), regions measured beyond a second acquisition's 99th percentile under "
            f"{margins.loss:g} x a second acquisition's share + {margins.loss_floor:.0%} of the regions, and "
            f"{', '.join(judged)} changed by under {margins.global_:g} sigma_raw; structure finer than a region is "
            f"not judged, and the metrics against a target are reported, not judged")


def value_rule_text(margins: Margins, n_replicas: int, judged) -> str:
    """The rule for a value predictor in words (the objects' rule, each region an object, no losses)."""
    from ._verdict import MIN_OBJECTS_WITHIN

    return (f"tolerable when every criterion is shown within its margin (each one-sided test at p < "
            f"{margins.alpha:g}); not tolerable when one is shown beyond it (Holm-adjusted p < {margins.alpha:g} over "
            f"the criteria); inconclusive otherwise. Each region is an object whose one parameter is the prediction's "
            f"mean over it: (1) the 20 % trimmed mean of the regions' eps within +-{margins.shift:g} (TOST, from "
            f"{MIN_OBJECTS_WITHIN} regions; beyond: above {margins.shift * eps_scale(n_replicas):.2f}); (2) the share "
            f"of regions with |eps| < 1 above {keep_for_spread(margins.spread, n_replicas):.2f} x that of simulated "
            f"second acquisitions, paired by region; (3) regions beyond a second acquisition's 99th percentile of "
            f"|eps| below {margins.loss:g} x its share + {margins.loss_floor:.0%}; (4) |eps| of {', '.join(judged)} "
            f"below {margins.global_:g}, sigma_raw known from {n_replicas} replicas (chi-square bound). A region "
            f"cannot be lost: no loss criterion. It admits {_admitted(margins, n_replicas, judged)}")
