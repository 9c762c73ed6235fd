"""The verdict: one kind of proof for every criterion, three outcomes.

Every criterion has a margin, stated in the units a reader can check, and two one-sided tests at
level ``alpha``:

* *within*: the codec shows that its effect is inside the margin (equivalence or non-inferiority:
  the burden of proof is on the codec);
* *beyond*: the data show that the effect is outside the margin.

A criterion whose tests show neither is *undecided*. The verdict is

* **tolerable** when every criterion is shown within its margin. This is an intersection-union
  test: each criterion at level ``alpha`` gives the whole rule level ``alpha`` (a codec truly beyond
  one margin is called tolerable with probability at most ``alpha``), with no multiplicity correction;
* **not tolerable** when at least one criterion is shown beyond its margin after Holm's correction
  over the criteria (a codec truly within every margin is called not tolerable with probability at
  most ``alpha``, however many criteria are judged);
* **inconclusive** otherwise: the criteria not yet decided are listed, each with the number of
  objects (or replicas, for a global) that would decide it at the effect and variance measured.

The criteria (margins in :class:`Margins`, defaults justified in docs/verdict.md):

``shift`` (one per primary parameter family)
    the 20 % trimmed mean of eps, |shift| < ``margins.shift`` sigma_raw: TOST of Tukey-McLaughlin's
    t (:func:`noisestat.score.location_tests`), from :data:`MIN_OBJECTS_WITHIN` objects; beyond when
    the one-sided test shows |shift| above the margin in sigma_raw (the margin times
    :func:`eps_scale` in eps).
``spread`` (one over the primary parameters)
    the share of (object, parameter) pairs with |eps| < 1, pooled over the primary parameters,
    against the same share of simulated second raw acquisitions. The margin is a spread of the
    codec's error ``margins.spread`` times a second acquisition's; ``keep`` is the share such an
    error would have relative to the reference second acquisitions (:func:`keep_for_spread`). Within
    when the codec's share is shown above ``keep`` times the reference's, beyond when shown below.
    Objects are the units (their parameters are correlated) and each is paired with its own second
    acquisitions (objects differ in how often they fall inside the band):
    :func:`clustered_margin_test`.
``outliers`` (one over the primary parameters)
    the objects with a primary |eps| beyond what 99 % of the reference second acquisitions' objects
    reach, judged like the losses: the trimmed mean and the band share do not see how far a
    minority of objects is moved.
``losses``
    the raw objects the codec leaves without a one-to-one partner (lost, split or merged), against
    the rate between simulated second acquisitions (pairs of replicas): within when the codec's rate
    is shown below ``margins.loss`` times the second acquisitions' rate plus ``margins.loss_floor``
    (:func:`proportion_margin_test`, a score test).
``N_tot``, ``A_tot`` (one value each)
    |eps| of the global below ``margins.global_`` sigma_raw, with sigma_raw known only from N
    replicas: (N - 1) sigma_hat^2 / sigma^2 is chi2(N - 1), so |eps| < m / sqrt(q_{1-alpha} / (N - 1))
    shows |change| < m sigma_raw (:func:`global_test`).

Only the *primary* parameters (:data:`PRIMARY`, settable, ``"all"`` for every one) enter the verdict,
declared up front: each criterion that must pass lowers the chance that a true second acquisition
passes them all, which is also why the spread is one test pooled over them rather than one per
family (docs/verdict.md has the measurements). The other parameters keep their statistics, reported
as secondary.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import stats

from ..errors import InputError
from ._criteria import (_worst, clustered_margin_effect, clustered_margin_test, eps_scale, global_effect,
                        global_test, keep_for_spread, object_shares, proportion_margin_effect, proportion_margin_test)
from ._tests import holm

__all__ = ["Margins", "PRIMARY", "VOLUME_PRIMARY", "default_primary", "Verdict", "decide", "parse_primary", "judge", "rule_text"]

# Primary parameters: the verdict's parameters unless the user declares others (``--primary``). Size
# (Area), outline (Perim.), shape (Circ.) and what a fluorescence user measures first (Mean, IntDen).
PRIMARY = ("Area", "Perim.", "Circ.", "Mean", "IntDen")
# A volume's: size (Volume), outline (SurfaceArea), shape (Sphericity), position (the centroid: a volume's
# planes are coded one by one, and a z shift of the planes moves every object), and the intensities.
VOLUME_PRIMARY = ("Volume", "SurfaceArea", "Sphericity", "Centroid.X", "Centroid.Y", "Centroid.Z", "Mean", "IntDen")


def default_primary(available) -> tuple:
    """The primary parameters of a set of columns: :data:`PRIMARY` for an image's, :data:`VOLUME_PRIMARY`
    for a volume's."""
    return PRIMARY if "Area" in available else VOLUME_PRIMARY

OUTCOMES = ("tolerable", "not tolerable", "inconclusive")

# The trimmed mean's t test approximates its level from about this many objects: below it, eps of
# integer parameters (many exactly 0, a few far out) leave a trimmed core of a handful of values whose
# winsorized spread is too small (measured: "within" 9 % of the time at 15 objects for a shift beyond the
# margin, 5.5 % at 20, 0.2 % at 40). A shift is shown within its margin from this many objects on; with
# fewer it can still be shown beyond.
MIN_OBJECTS_WITHIN = 20


@dataclass(frozen=True)
class Margins:
    """The margins of the verdict's criteria (module docstring; docs/verdict.md justifies the defaults).

    Attributes
    ----------
    shift : float
        Largest systematic shift admitted, in sigma_raw (|20 % trimmed mean of eps|).
    spread : float
        Largest spread of the codec's per-object error admitted, as a multiple of a second raw
        acquisition's.
    loss : float
        Largest rate of raw objects left without a one-to-one partner, as a multiple of a second
        acquisition's rate ...
    loss_floor : float
        ... plus this fraction of the raw objects.
    global_ : float
        Largest change of N_tot and A_tot admitted, in sigma_raw.
    alpha : float
        Level of every one-sided test.
    """

    shift: float = 1.0
    spread: float = 1.5
    loss: float = 2.0
    loss_floor: float = 0.06
    global_: float = 4.0
    alpha: float = 0.05

    _KEYS = {"shift": "shift", "spread": "spread", "loss": "loss", "loss_floor": "loss_floor",
             "global": "global_", "alpha": "alpha"}

    def __post_init__(self):
        for key, attr in self._KEYS.items():
            value = getattr(self, attr)
            if not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise InputError(f"margin {key} must be a finite number; got {value!r}")
        if self.shift <= 0 or self.global_ <= 0:
            raise InputError(f"margins shift and global must be > 0; got shift={self.shift:g}, global={self.global_:g}")
        if self.spread < 1:
            raise InputError(f"margin spread must be >= 1 (a multiple of a second acquisition's spread); got "
                             f"{self.spread:g}")
        if self.loss < 1 or not 0 <= self.loss_floor < 1:
            raise InputError(f"margin loss must be >= 1 and loss_floor in [0, 1); got loss={self.loss:g}, "
                             f"loss_floor={self.loss_floor:g}")
        if not 0 < self.alpha < 0.5:
            raise InputError(f"margin alpha must be in (0, 0.5); got {self.alpha:g}")

    @classmethod
    def parse(cls, text: str | None) -> "Margins":
        """``"shift=0.5,spread=1.5,loss=2,loss_floor=0.03,global=4,alpha=0.05"`` (any subset)."""
        if not text:
            return cls()
        values = {}
        for item in str(text).split(","):
            key, sep, value = item.partition("=")
            key = key.strip()
            if not sep or key not in cls._KEYS:
                raise InputError(f"--margin takes key=value pairs with keys {', '.join(cls._KEYS)}; got {item!r}")
            if cls._KEYS[key] in values:
                raise InputError(f"--margin gives {key} twice")
            try:
                values[cls._KEYS[key]] = float(value)
            except ValueError:
                raise InputError(f"--margin {key} must be a number; got {value!r}") from None
        return cls(**values)

    def to_dict(self) -> dict:
        return {key: getattr(self, attr) for key, attr in self._KEYS.items()}

    def admitted(self, n_replicas: int, globals_=("the global parameters",)) -> str:
        """What the rule admits, in words (``globals_``: the global parameters' names)."""
        keep = keep_for_spread(self.spread, n_replicas)
        return (f"a systematic shift under {self.shift:g} sigma_raw, a per-object error spread under "
                f"{self.spread:g} x a second acquisition's (share of |eps| < 1 above {keep:.2f} x a second "
                f"acquisition's), raw objects lost, split or merged, and objects measured beyond a second "
                f"acquisition's 99th percentile, each under {self.loss:g} x a second acquisition's rate + "
                f"{self.loss_floor:.0%} of the objects, and {_and(globals_)} changed by under {self.global_:g} "
                f"sigma_raw")


def parse_primary(text, available) -> tuple:
    """``--primary``: comma-separated parameter names, or ``all``; each must be one of ``available``."""
    if text is None:
        return tuple(p for p in default_primary(available) if p in available)
    if isinstance(text, str):
        names = [t.strip() for t in text.split(",") if t.strip()]
    else:
        names = list(text)
    if names == ["all"]:
        return tuple(available)
    unknown = [n for n in names if n not in available]
    if unknown or not names:
        raise InputError(f"--primary takes parameter names ({', '.join(available)}) or 'all'; got "
                         f"{', '.join(unknown) if unknown else 'nothing'}")
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class Verdict:
    """A codec's verdict: ``outcome`` (tolerable, not tolerable, inconclusive), every criterion with its
    margin, estimate, p-values and decision, the reasons, the rule and what it admitted."""

    outcome: str
    reasons: tuple
    criteria: tuple
    rule: str
    admitted: str
    margins: dict = field(default_factory=dict)
    primary: tuple = ()
    needed: dict = field(default_factory=dict)

    @property
    def tolerable(self) -> bool:
        return self.outcome == "tolerable"

    def to_dict(self) -> dict:
        return asdict(self)


def decide(criteria: list, alpha: float) -> str:
    """Each criterion's decision and the outcome: beyond (Holm-adjusted p_beyond < alpha over the
    criteria), else within (p_within < alpha), else undecided; not tolerable if any is beyond,
    tolerable if all are within, inconclusive otherwise."""
    p_beyond = [c["p_beyond"] for c in criteria]
    finite = [i for i, p in enumerate(p_beyond) if np.isfinite(p)]
    adjusted = [math.nan] * len(criteria)
    if finite:
        for i, p in zip(finite, holm([p_beyond[i] for i in finite])):
            adjusted[i] = float(p)
    for c, adj in zip(criteria, adjusted):
        c["p_beyond_holm"] = adj
        if np.isfinite(adj) and adj < alpha:
            c["decision"] = "beyond"
        elif np.isfinite(c["p_within"]) and c["p_within"] < alpha:
            c["decision"] = "within"
        else:
            c["decision"] = "undecided"
    if any(c["decision"] == "beyond" for c in criteria):
        return "not tolerable"
    if criteria and all(c["decision"] == "within" for c in criteria):
        return "tolerable"
    return "inconclusive"


def _needed_replicas(eps: float, margin: float, alpha: float, within: bool, n_replicas: int) -> int | None:
    """Replicas with which one global eps of this size would be decided (sigma_raw as now)."""
    for n in range(n_replicas + 1, 1001):
        dof = n - 1
        if within and abs(eps) < margin / math.sqrt(stats.chi2.isf(alpha, dof) / dof):
            return n
        if not within and abs(eps) > margin / math.sqrt(stats.chi2.ppf(alpha, dof) / dof):
            return n
    return None


def judge(statistics: dict, eps: np.ndarray, parameters, null_eps: np.ndarray | None, global_eps: dict,
          n_replicas: int, *, loss: dict | None = None, margins: Margins | None = None, primary=None,
          judged=None, identical: bool = False, reference: str = "pooled", losses: bool = True) -> Verdict:
    """The verdict of one codec (module docstring).

    Parameters
    ----------
    statistics : dict
        Parameter -> :func:`noisestat.score.codec_statistics` entry.
    eps : ndarray, shape (n_objects, n_parameters)
        The codec's eps (NaN where not estimable).
    parameters : sequence of str
        The columns of ``eps``.
    null_eps : ndarray, shape (n_rows, n_parameters), optional
        Simulated second acquisitions' eps, pooled (the spread criterion's reference); without it the
        theoretical sqrt(2) t(N - 1) share is the reference.
    global_eps : dict
        Global parameter -> eps (sigma floored).
    n_replicas : int
    loss : dict, optional
        ``n_unmatched``, ``n_raw``, ``null_unmatched``, ``null_n`` (:func:`noisestat.score.loss_test`).
    margins : Margins, optional
    primary : sequence of str, optional
        The parameters judged (default :data:`PRIMARY`, a volume's :data:`VOLUME_PRIMARY`); a family counts once, through its
        representative.
    judged : sequence of str, optional
        The parameters measured at all (a volume's); primary parameters outside it are dropped.
    reference : {"pooled", "pairs"}
        What ``null_eps`` holds: every simulated second acquisition (a codec's reference) or the replica
        pairs alone (the extra pair's own reference): :func:`keep_for_spread`.
    identical : bool, default False
        The decoded image is the raw image, value for value: a deterministic model measures exactly what
        it measured on the raw image, every effect is exactly zero and every criterion is within its
        margin without a test (whatever the number of objects).
    losses : bool, default True
        Whether objects can be lost at all. Fixed regions (a value predictor's region means,
        :mod:`noisestat.score._values`) cannot: without loss counts they are still judged in full.
    """
    from ._tests import FAMILIES, family_of

    margins = margins or Margins()
    alpha = margins.alpha
    parameters = list(parameters)
    if primary is None:
        primary = default_primary(parameters)
    primary = [p for p in primary if p in parameters and (judged is None or p in judged)]
    # one representative per family
    reps = []
    for p in primary:
        fam = family_of(p)
        rep = FAMILIES[fam][0] if fam in FAMILIES else p
        if rep in parameters and rep not in reps:
            reps.append(rep)
    criteria = []
    for p in reps:
        s = statistics.get(p, {})
        n = int(s.get("n_eps", 0))
        criteria.append({"criterion": "shift", "parameter": p, "estimate": s.get("trimmed_mean", math.nan),
                         "margin": margins.shift, "units": "sigma_raw", "n": n,
                         "p_within": s.get("p_equivalent", math.nan) if n >= MIN_OBJECTS_WITHIN else math.nan,
                         "p_beyond": s.get("p_beyond", math.nan) if n >= 3 else math.nan,
                         "_se": s.get("se_trimmed", math.nan),
                         "pool": _pool(s.get("trimmed_mean", math.nan), s.get("se_trimmed", math.nan))})
    cols = [parameters.index(p) for p in primary]
    if cols:
        criteria.append(_spread_criterion(np.asarray(eps)[:, cols], None if null_eps is None else
                                          np.asarray(null_eps)[:, cols], margins, n_replicas, reference,
                                          ", ".join(primary)))
        criteria.append(_outlier_criterion(np.asarray(eps)[:, cols], None if null_eps is None else
                                           np.asarray(null_eps)[:, cols], margins))
    if loss is not None:
        n, x = int(loss.get("n_raw", 0)), int(loss.get("n_unmatched", 0))
        n0, x0 = loss.get("null_n", 0), loss.get("null_unmatched", 0)
        p_below, p_above = proportion_margin_test(x, n, x0, n0, ratio=margins.loss, offset=margins.loss_floor)
        criteria.append({"criterion": "losses", "parameter": "raw objects lost, split or merged",
                         "estimate": x / n if n else math.nan, "reference": x0 / n0 if n0 else math.nan,
                         "margin": margins.loss, "offset": margins.loss_floor,
                         "units": "x a second acquisition's rate + offset", "n": n, "p_within": p_below,
                         "p_beyond": p_above, "_x0n0": (x0, n0),
                         "pool": _pool(*proportion_margin_effect(x, n, x0, n0, ratio=margins.loss,
                                                                 offset=margins.loss_floor))})
    for name, e in global_eps.items():
        p_within, p_beyond = global_test(float(e), margins.global_, n_replicas)
        criteria.append({"criterion": "global", "parameter": name, "estimate": float(e), "margin": margins.global_,
                         "units": "sigma_raw", "n": n_replicas, "p_within": p_within, "p_beyond": p_beyond,
                         "pool": _pool(*global_effect(float(e), n_replicas))})
    outcome = decide(criteria, alpha)
    missing = [k for k, present in (("shift", reps), ("spread and outliers", cols), ("losses", loss is not None or not losses))
               if not present]
    if identical:
        for c in criteria:
            c["decision"], c["exact"] = "within", "the decoded image is the raw image"
            c["pool"] = {**c.get("pool", _pool(math.nan, math.nan)), "exact": True}
        outcome = "tolerable"
    elif outcome == "tolerable" and missing:
        # the globals alone do not make a codec tolerable: objects must have been judged
        outcome = "inconclusive"
    for c in criteria:
        c["needed"] = _needed(c, margins, len(criteria), n_replicas) if c["decision"] == "undecided" else None
        c.pop("_se", None)
        c.pop("_x0n0", None)
    reasons = []
    for c in criteria:
        if outcome == "not tolerable" and c["decision"] == "beyond":
            reasons.append(_describe(c, "shown beyond"))
        elif outcome == "inconclusive" and c["decision"] == "undecided":
            reasons.append(_describe(c, "not shown either way"))
    if outcome == "inconclusive" and missing and not identical:
        reasons.append(f"nothing judged for: {', '.join(missing)} (no primary parameter measured, or no loss counts)")
    needed = {}
    if outcome == "inconclusive":
        for c in criteria:
            if c["decision"] == "undecided" and c.get("needed"):
                for k, v in c["needed"].items():
                    needed[k] = max(needed.get(k, 0), v)
    names = tuple(global_eps) or ("the global parameters",)
    return Verdict(outcome, tuple(reasons), tuple(criteria), rule_text(margins, n_replicas, reps, names),
                   margins.admitted(n_replicas, names), margins.to_dict(), tuple(reps), needed)


def _reference_blocks(eps0: np.ndarray, n_objects: int) -> np.ndarray | None:
    """The reference rows as (pairs, objects, parameters) when they are whole blocks of the raw objects
    (the pipeline stacks replica pair after replica pair, then the extra pair), else None."""
    if n_objects and len(eps0) and len(eps0) % n_objects == 0:
        return eps0.reshape(len(eps0) // n_objects, n_objects, eps0.shape[1])
    return None


def _pool(effect, se) -> dict:
    """What a dataset pools of a criterion over fields (:func:`noisestat.score.judge_dataset`): the field's
    effect in the criterion's own scale (a shift or a global's eps in sigma_raw; for the spread, the mean
    share inside the band minus its margin, positive when within; for losses and outliers, the rate minus
    its margin, negative when within) and its standard error."""
    return {"effect": float(effect), "se": float(se)}


def _spread_criterion(eps, eps0, margins, n_replicas, reference, names) -> dict:
    """Criterion (2): the share of |eps| < 1 over the primary parameters, paired by object with the
    reference second acquisitions (:func:`clustered_margin_test`)."""
    from ._eps import null_reference

    keep = keep_for_spread(margins.spread, n_replicas, reference=reference)
    shares = object_shares(eps)
    n = int(np.isfinite(shares).sum())
    if eps0 is not None and len(eps0):
        blocks = _reference_blocks(eps0, len(eps))
        if blocks is not None:
            shares0 = np.stack([object_shares(block) for block in blocks])
        else:  # rows of other objects: their mean share, for every object
            shares0 = np.full(len(eps), np.nanmean(object_shares(eps0)))
        ref = float(np.nanmean(shares0)) if np.isfinite(shares0).any() else math.nan
    else:
        ref = null_reference(n_replicas)["frac_abs_eps_lt_1"]
        shares0 = np.full(len(eps), ref)
    p_above, p_below = clustered_margin_test(shares, shares0, ratio=keep)
    effect, se, _ = clustered_margin_effect(shares, shares0, ratio=keep)
    return {"criterion": "spread", "parameter": names, "estimate": float(np.nanmean(shares)) if n else math.nan,
            "reference": ref, "margin": margins.spread, "keep": keep, "units": "x a second acquisition's spread",
            "n": n, "p_within": p_above if n >= 3 else math.nan, "p_beyond": p_below if n >= 3 else math.nan,
            "pool": _pool(effect, se) if n >= 3 else _pool(math.nan, math.nan)}


def _outlier_criterion(eps, eps0, margins) -> dict:
    """Criterion (3b): objects measured far outside the noise. An object is an outlier when one of its
    primary parameters' |eps| exceeds what 99 % of the reference second acquisitions' objects reach
    (their largest |eps| over the primary parameters). The share of outliers is judged like the losses:
    below ``loss`` x the reference's share (1 %) + ``loss_floor``. Without it a codec could move a
    minority of objects arbitrarily far: the trimmed mean ignores a fifth of each tail, and the band
    share does not look at how far outside the band an object lies."""
    worst = _worst(eps)
    has = ~np.isnan(worst)
    out = {"criterion": "outliers", "parameter": "objects beyond a second acquisition's 99th percentile",
           "margin": margins.loss, "offset": margins.loss_floor, "units": "x a second acquisition's share + offset",
           "n": int(has.sum()), "estimate": math.nan, "reference": math.nan, "threshold": math.nan,
           "p_within": math.nan, "p_beyond": math.nan, "pool": _pool(math.nan, math.nan)}
    if eps0 is None or not len(eps0) or not has.any():
        return out
    worst0 = _worst(eps0)
    worst0 = worst0[~np.isnan(worst0)]
    if not len(worst0):
        return out
    # an observed value (no interpolation, which infinite eps would turn into inf - inf)
    threshold = float(np.quantile(worst0, 0.99, method="higher"))
    x, n = int((worst[has] > threshold).sum()), int(has.sum())
    x0, n0 = int((worst0 > threshold).sum()), len(worst0)
    p_below, p_above = proportion_margin_test(x, n, x0, n0, ratio=margins.loss, offset=margins.loss_floor)
    out.update(estimate=x / n, reference=x0 / n0, threshold=threshold, p_within=p_below, p_beyond=p_above,
               _x0n0=(x0, n0), pool=_pool(*proportion_margin_effect(x, n, x0, n0, ratio=margins.loss,
                                                                     offset=margins.loss_floor)))
    return out


def _needed(c: dict, margins: Margins, k: int, n_replicas: int) -> dict | None:
    """About how many objects (replicas, for a global) would decide an undecided criterion, at the
    effect and variance measured: "within" at level alpha, or "beyond" at alpha / k (Holm's
    smallest level over k criteria), whichever its estimate points to."""
    alpha = margins.alpha
    n, est = c.get("n", 0), c.get("estimate", math.nan)
    if c["criterion"] == "global":
        if not np.isfinite(est) or est == 0:
            return None
        need = _needed_replicas(est, c["margin"], alpha if abs(est) < c["margin"] else alpha / k,
                                abs(est) < c["margin"], n_replicas)
        return {"replicas": need} if need else None
    if n < 3:
        return {"objects": 3} if n else None
    if c["criterion"] == "shift":
        if n < MIN_OBJECTS_WITHIN and abs(est) < c["margin"]:
            return {"objects": MIN_OBJECTS_WITHIN}
        se = c.get("_se", math.nan)
        if not (np.isfinite(se) and se > 0 and np.isfinite(est)):
            return None
        gap = abs(abs(est) - c["margin"])
        crit = stats.norm.isf(alpha if abs(est) < c["margin"] else alpha / k)
        return _more(n, (crit * se * math.sqrt(n) / gap) ** 2 if gap > 0 else math.inf)
    if c["criterion"] == "spread":
        pw, pb = c["p_within"], c.get("p_beyond", math.nan)
        if not (np.isfinite(pw) and np.isfinite(pb)):
            return None
        within = pw <= pb
        z = stats.norm.isf(pw if within else pb)
        crit = stats.norm.isf(alpha if within else alpha / k)
        return _more(n, n * (crit / z) ** 2 if z > 0 else math.inf)
    # losses, outliers: the margin test at the observed rate, searched over the number of objects
    x0, n0 = c.get("_x0n0", (0, 0))
    if not n0 or not np.isfinite(est):
        return None
    p0 = x0 / n0
    m = min(c["margin"] * p0 + c["offset"], 1.0)
    guarded = (x0 + 1) / (n0 + 2)
    var0 = c["margin"] ** 2 * guarded * (1 - guarded) / (n0 + 2)
    within = est < m
    crit = stats.norm.isf(alpha if within else alpha / k)
    room = ((m - est) / crit) ** 2 - var0
    return _more(n, m * (1 - m) / room if room > 0 else math.inf)


def _more(n: int, need: float) -> dict | None:
    """{"objects": need} when finite and below a million, at least n + 1; None otherwise."""
    if not np.isfinite(need) or need > 1e6:
        return None
    return {"objects": max(int(math.ceil(need)), n + 1)}


def _describe(c: dict, how: str) -> str:
    need = ""
    if c.get("needed") and how != "shown beyond":
        (unit, k), = c["needed"].items()
        need = f"; about {k} {unit} would decide it"
    if how == "shown beyond":
        p = c["p_beyond_holm"]
    else:  # the direction the estimate points to
        p = min(c["p_within"], c["p_beyond_holm"]) if np.isfinite(c["p_beyond_holm"]) else c["p_within"]
    ptext = f"p = {p:.2g}" if np.isfinite(p) else "too few objects to test"
    est = c.get("estimate", math.nan)
    if c["criterion"] == "shift":
        value = f"{est:+.2f} sigma_raw" if np.isfinite(est) or np.isinf(est) else "not estimable"
        return f"{c['parameter']}: systematic shift {value}, {how} the margin +-{c['margin']:g} ({ptext}{need})"
    if c["criterion"] == "spread":
        if not np.isfinite(est):
            return f"spread ({c['parameter']}): no object with an eps ({ptext}{need})"
        return (f"spread ({c['parameter']}): {est:.0%} of |eps| < 1 against {c['reference']:.0%} of a "
                f"second acquisition, {how} the margin {c['keep']:.2f} x ({c['margin']:g} x its spread; {ptext}{need})")
    if c["criterion"] in ("losses", "outliers"):
        what = ("lost, split or merged" if c["criterion"] == "losses" else
                "measured beyond a second acquisition's 99th percentile")
        if not np.isfinite(est):
            return f"objects {what}: no object to count ({ptext}{need})"
        return (f"objects: {est:.1%} of the {c['n']} raw objects {what} against {c['reference']:.1%} "
                f"{'between' if c['criterion'] == 'losses' else 'of'} second acquisitions, {how} the margin "
                f"{c['margin']:g} x + {c['offset']:.0%} ({ptext}{need})")
    return f"{c['parameter']}: eps {est:+.2f}, {how} the margin +-{c['margin']:g} sigma_raw ({ptext}{need})"


def _family_sentence() -> str:
    """The families of FAMILIES in words: "AR, Round and Compact are one family, tested through AR"."""
    from ._tests import FAMILIES

    def words(names):
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]

    return "; ".join(f"{words(members)} are one family, tested through {rep}" for rep, members in FAMILIES.values())


def _and(names) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def rule_text(margins: Margins, n_replicas: int, primary, globals_=("the global parameters",)) -> str:
    """The rule in words, with its numbers (built from the constants it names, so that it cannot drift);
    ``globals_``: the global parameters' names."""
    from ._tests import TRIM

    return (f"tolerable when every criterion is shown within its margin (each one-sided test at p < "
            f"{margins.alpha:g}); not tolerable when one is shown beyond it (Holm-adjusted p < {margins.alpha:g} "
            f"over the criteria); inconclusive otherwise. Primary parameters: {', '.join(primary) or 'none'} "
            f"({_family_sentence()}). "
            f"Criteria: (1) per primary parameter, the {TRIM * 100:g} % trimmed mean of eps within +-{margins.shift:g} "
            f"(TOST of Tukey-McLaughlin's t, from {MIN_OBJECTS_WITHIN} objects; beyond: |shift| above "
            f"{margins.shift:g} sigma_raw, i.e. the trimmed mean of eps above {margins.shift * eps_scale(n_replicas):.2f}; "
            "an infinite eps, sigma_raw = 0 and a changed value, counts beyond every finite one); (2) over the "
            f"primary parameters, the share of objects' |eps| < 1 above {keep_for_spread(margins.spread, n_replicas):.2f} "
            "x that of simulated second raw acquisitions (the share a per-object error "
            f"{margins.spread:g} x as wide as a second acquisition's would have; objects as units, paired with their "
            f"own second acquisitions); (3) raw objects lost, split or merged below {margins.loss:g} x the rate "
            f"between second acquisitions + {margins.loss_floor:.0%} (score test); (4) objects with a primary |eps| "
            "beyond the 99th percentile of a second acquisition's objects below "
            f"{margins.loss:g} x a second acquisition's share + {margins.loss_floor:.0%}; (5) |eps| of "
            f"{_and(globals_)} below {margins.global_:g}, sigma_raw known from {n_replicas} replicas (chi-square "
            f"bound). It admits {margins.admitted(n_replicas, globals_)}. sigma_raw is floored at the parameter's resolution "
            f"h / sqrt(12) (h its smallest observed change, 1 for counts)")
