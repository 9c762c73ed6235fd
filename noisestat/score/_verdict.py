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
    t (:func:`noisestat.score.location_tests`); beyond when one one-sided test shows |shift| above
    the margin.
``spread`` (one over the primary parameters)
    the share of (object, parameter) pairs with |eps| < 1, pooled over the primary parameters,
    against the same share of simulated second raw acquisitions. The margin is a spread of the
    codec's error ``margins.spread`` times a second acquisition's: for errors of that spread, eps
    would be ``margins.spread`` times as wide as a second acquisition's, sqrt(2) t(N - 1), whose
    share inside the band is ``keep`` times a second acquisition's (:func:`keep_for_spread`). Within
    when the codec's share is shown above ``keep`` times the second acquisitions'; beyond when it is
    shown below. Objects are the independent units (their parameters are correlated), so the share's
    variance is taken over objects (:func:`clustered_margin_test`).
``losses``
    the raw objects the codec leaves without a one-to-one partner (lost, split or merged), against
    the rate between simulated second acquisitions (pairs of replicas): within when the codec's rate
    is shown below ``margins.loss`` times the second acquisitions' rate plus ``margins.loss_floor``
    (:func:`proportion_margin_test`).
``N_tot``, ``A_tot`` (one value each)
    |eps| of the global below ``margins.global_`` sigma_raw, with sigma_raw known only from N
    replicas: (N - 1) sigma_hat^2 / sigma^2 is chi2(N - 1), so |eps| < m / sqrt(q_{1-alpha} / (N - 1))
    shows |change| < m sigma_raw (:func:`global_test`).

Only the *primary* parameters (:data:`PRIMARY`, settable) enter the verdict: with 17 families tested
two ways each, a true second acquisition of 50-80 objects passes every test too rarely for the rule
to be usable (docs/verdict.md has the curves). The other parameters keep their statistics and their
own decisions, reported as secondary.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

from ..errors import InputError

__all__ = ["Margins", "PRIMARY", "Verdict", "keep_for_spread", "proportion_margin_test", "clustered_margin_test",
           "global_test", "decide", "parse_primary", "judge", "rule_text", "object_shares"]

# Primary parameters: the verdict's parameters unless the user declares others (``--primary``). Size
# (Area), outline (Perim.), shape (Circ.) and what a fluorescence user measures first (Mean, IntDen).
PRIMARY = ("Area", "Perim.", "Circ.", "Mean", "IntDen")

OUTCOMES = ("tolerable", "not tolerable", "inconclusive")


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
    loss_floor: float = 0.05
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

    def admitted(self, n_replicas: int) -> str:
        """What the rule admits, in words."""
        keep = keep_for_spread(self.spread, n_replicas)
        return (f"a systematic shift under {self.shift:g} sigma_raw, a per-object error spread under "
                f"{self.spread:g} x a second acquisition's (share of |eps| < 1 above {keep:.2f} x a second "
                f"acquisition's), raw objects lost, split or merged under {self.loss:g} x a second acquisition's "
                f"rate + {self.loss_floor:.0%} of the objects, and N_tot and A_tot changed by under "
                f"{self.global_:g} sigma_raw")


def parse_primary(text, available) -> tuple:
    """``--primary``: comma-separated parameter names, or ``all``; each must be one of ``available``."""
    if text is None:
        return tuple(p for p in PRIMARY if p in available)
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


def keep_for_spread(spread: float, n_replicas: int) -> float:
    """The share of |eps| < 1 a codec whose error is ``spread`` times as wide as a second acquisition's
    would have, relative to a second acquisition's (eps ~ spread sqrt(2) t(N - 1) against sqrt(2) t(N - 1)).

    Examples
    --------
    >>> round(keep_for_spread(1.0, 10), 3), round(keep_for_spread(2.0, 10), 3)
    (1.0, 0.534)
    """
    dof = max(n_replicas - 1, 1)
    inside = 2 * stats.t.cdf(1 / (spread * math.sqrt(2)), dof) - 1
    return float(inside / (2 * stats.t.cdf(1 / math.sqrt(2), dof) - 1))


def proportion_margin_test(x: int, n: int, x0: float, n0: float, *, ratio: float, offset: float = 0.0) -> tuple:
    """One-sided p-values of the codec's proportion x/n against ``ratio`` p0 + ``offset`` (p0 = x0/n0).

    Returns ``(p_below, p_above)``: small ``p_below`` shows p < ratio p0 + offset, small ``p_above``
    shows p > ratio p0 + offset. Agresti-Caffo adjusted z (one success and one failure added to each
    sample), which keeps its level at small n and at proportions near 0 or 1; ``n0 = inf`` takes
    ``x0`` as the known p0. Written here because statsmodels' ``test_proportions_2indep`` takes a
    ratio or a difference margin, not both at once, and its score test returns NaN (with warnings)
    when both samples have no events, the normal case of losses in a clean scene.

    Examples
    --------
    >>> p_below, p_above = proportion_margin_test(0, 100, 2, 600, ratio=2, offset=0.03)
    >>> p_below < 0.05 < p_above
    True
    """
    if n <= 0 or (not math.isinf(n0) and n0 <= 0):
        return math.nan, math.nan
    pc = (x + 1) / (n + 2)
    var = pc * (1 - pc) / (n + 2)
    if math.isinf(n0):
        p0 = float(x0)
    else:
        p0 = (x0 + 1) / (n0 + 2)
        var += ratio ** 2 * p0 * (1 - p0) / (n0 + 2)
    z = (pc - ratio * p0 - offset) / math.sqrt(var)
    return float(stats.norm.cdf(z)), float(stats.norm.sf(z))


def clustered_margin_test(inside: np.ndarray, inside0: np.ndarray, *, ratio: float) -> tuple:
    """One-sided p-values of "mean share inside > ``ratio`` x the reference's", objects as units.

    ``inside``: per object, the share of its primary parameters with |eps| < 1 (codec); ``inside0``
    the same for simulated second acquisitions (one row per object and pair). Returns
    ``(p_above, p_below)``: small ``p_above`` shows the codec's mean share above ``ratio`` times the
    reference's (within the spread margin), small ``p_below`` shows it below. A z-test of
    ``m - ratio m0`` with each mean's variance taken over objects (one object's parameters are
    correlated, so each object counts once) after one object entirely inside and one entirely outside
    are added to each sample (the Agresti-Caffo guard, which keeps the level at small n and gives a
    share of 1 in every object a variance).

    Examples
    --------
    >>> p_above, p_below = clustered_margin_test(np.full(60, 0.5), np.full(300, 0.5), ratio=0.7)
    >>> p_above < 0.05 < p_below
    True
    """
    a = np.asarray(inside, dtype=float)
    b = np.asarray(inside0, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if len(a) < 1 or len(b) < 1:
        return math.nan, math.nan
    a, b = np.concatenate([a, [0.0, 1.0]]), np.concatenate([b, [0.0, 1.0]])
    m, v = a.mean(), a.var(ddof=1) / len(a)
    m0, v0 = b.mean(), b.var(ddof=1) / len(b)
    z = (m - ratio * m0) / math.sqrt(v + ratio ** 2 * v0)
    return float(stats.norm.sf(z)), float(stats.norm.cdf(z))


def global_test(eps: float, margin: float, n_replicas: int) -> tuple:
    """``(p_within, p_beyond)`` of |change of a global| < ``margin`` sigma_raw from one eps.

    eps = change / sigma_hat with (N - 1) sigma_hat^2 / sigma^2 ~ chi2(N - 1): at |change| = m sigma,
    P(|eps| < c) = P(chi2 > (N - 1) m^2 / c^2).

    Examples
    --------
    >>> [round(p, 3) for p in global_test(0.0, 4, 10)]
    [0.0, 1.0]
    >>> global_test(8.0, 4, 10)[1] < 0.05
    True
    """
    dof = max(n_replicas - 1, 1)
    if not np.isfinite(eps) and not np.isnan(eps):
        return 1.0, 0.0
    if np.isnan(eps):
        return math.nan, math.nan
    if eps == 0:
        return 0.0, 1.0
    q = dof * margin ** 2 / eps ** 2
    return float(stats.chi2.sf(q, dof)), float(stats.chi2.cdf(q, dof))


def _needed_z(n: int, z: float, alpha: float) -> int | None:
    """Units needed for a z (or t) statistic that grows as sqrt(n) to reach the one-sided critical value."""
    crit = stats.norm.isf(alpha)
    if not np.isfinite(z) or z <= 0 or n <= 0:
        return None
    return int(math.ceil(n * (crit / z) ** 2))


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


def decide(criteria: list, alpha: float) -> tuple:
    """Each criterion's decision and the outcome: within (p_within < alpha), beyond (Holm-adjusted
    p_beyond < alpha over the criteria), undecided; tolerable iff all within."""
    p_beyond = [c["p_beyond"] for c in criteria]
    finite = [i for i, p in enumerate(p_beyond) if np.isfinite(p)]
    adjusted = [math.nan] * len(criteria)
    if finite:
        for i, p in zip(finite, multipletests([p_beyond[i] for i in finite], alpha=alpha, method="holm")[1]):
            adjusted[i] = float(p)
    for c, adj in zip(criteria, adjusted):
        c["p_beyond_holm"] = adj
        if np.isfinite(c["p_within"]) and c["p_within"] < alpha:
            c["decision"] = "within"
        elif np.isfinite(adj) and adj < alpha:
            c["decision"] = "beyond"
        else:
            c["decision"] = "undecided"
    if criteria and all(c["decision"] == "within" for c in criteria):
        return "tolerable"
    if any(c["decision"] == "beyond" for c in criteria):
        return "not tolerable"
    return "inconclusive"


def object_shares(eps: np.ndarray) -> np.ndarray:
    """Per object (row), the share of its parameters (columns) with |eps| < 1 among those with an eps
    (an infinite eps is outside); NaN for an object with none."""
    x = np.asarray(eps, dtype=float)
    has = ~np.isnan(x)
    n = has.sum(axis=1)
    with np.errstate(invalid="ignore"):
        inside = (np.abs(np.where(has, x, np.inf)) < 1).sum(axis=1)
        return np.where(n > 0, inside / np.maximum(n, 1), np.nan)


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
          judged=None, identical: bool = False) -> Verdict:
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
        The parameters judged (default :data:`PRIMARY`); a family counts once, through its
        representative.
    judged : sequence of str, optional
        The parameters measured at all (a volume's); primary parameters outside it are dropped.
    identical : bool, default False
        The decoded image is the raw image, value for value: a deterministic model measures exactly what
        it measured on the raw image, every effect is exactly zero and every criterion is within its
        margin without a test (whatever the number of objects).
    """
    from ._eps import null_reference
    from ._tests import FAMILIES, family_of

    margins = margins or Margins()
    alpha = margins.alpha
    parameters = list(parameters)
    if primary is None:
        primary = PRIMARY
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
        c = {"criterion": "shift", "parameter": p, "estimate": s.get("trimmed_mean", math.nan),
             "margin": margins.shift, "units": "sigma_raw", "n": n,
             "p_within": s.get("p_equivalent", math.nan) if n >= 3 else math.nan,
             "p_beyond": s.get("p_beyond", math.nan) if n >= 3 else math.nan}
        se, m = s.get("se_trimmed", math.nan), s.get("trimmed_mean_finite", s.get("trimmed_mean", math.nan))
        if n < 3:
            c["needed"] = {"objects": 3}
        elif np.isfinite(se) and se > 0 and np.isfinite(m):
            gap = margins.shift - abs(m)
            need = _needed_z(n, abs(gap) / se, alpha)
            c["needed"] = {"objects": need} if need else None
        criteria.append(c)
    # the spread, pooled over the primary parameters, objects as units
    cols = [parameters.index(p) for p in primary]
    keep = keep_for_spread(margins.spread, n_replicas)
    if cols:
        shares = object_shares(np.asarray(eps)[:, cols])
        shares = shares[np.isfinite(shares)]
        if null_eps is not None and len(null_eps):
            shares0 = object_shares(np.asarray(null_eps)[:, cols])
            shares0 = shares0[np.isfinite(shares0)]
            p_above, p_below = clustered_margin_test(shares, shares0, ratio=keep)
            reference = float(shares0.mean()) if len(shares0) else math.nan
        else:
            reference = null_reference(n_replicas)["frac_abs_eps_lt_1"]
            x = float(shares.sum())
            p_above, p_below = (proportion_margin_test(int(round(x)), len(shares), reference, math.inf,
                                                       ratio=keep)[::-1] if len(shares) else (math.nan, math.nan))
        c = {"criterion": "spread", "parameter": ", ".join(primary), "estimate": float(shares.mean()) if len(shares)
             else math.nan, "reference": reference, "margin": margins.spread, "keep": keep,
             "units": "x a second acquisition's spread", "n": int(len(shares)),
             "p_within": p_above if len(shares) >= 3 else math.nan,
             "p_beyond": p_below if len(shares) >= 3 else math.nan}
        z = stats.norm.isf(p_above) if np.isfinite(p_above) else math.nan
        zb = stats.norm.isf(p_below) if np.isfinite(p_below) else math.nan
        best = max(z, zb) if np.isfinite(z) and np.isfinite(zb) else math.nan
        c["needed"] = ({"objects": 3} if len(shares) < 3 else
                       ({"objects": _needed_z(len(shares), best, alpha)} if _needed_z(len(shares), best, alpha)
                        else None))
        criteria.append(c)
    if loss is not None:
        n, x = int(loss.get("n_raw", 0)), int(loss.get("n_unmatched", 0))
        n0, x0 = loss.get("null_n", 0), loss.get("null_unmatched", 0)
        p_below, p_above = proportion_margin_test(x, n, x0, n0, ratio=margins.loss, offset=margins.loss_floor)
        rate0 = x0 / n0 if n0 else math.nan
        c = {"criterion": "losses", "parameter": "raw objects lost, split or merged", "estimate": x / n if n else math.nan,
             "reference": rate0, "margin": margins.loss, "offset": margins.loss_floor,
             "units": "x a second acquisition's rate + offset", "n": n, "p_within": p_below, "p_beyond": p_above}
        best = max(stats.norm.isf(p_below), stats.norm.isf(p_above)) if np.isfinite(p_below) else math.nan
        c["needed"] = {"objects": _needed_z(n, best, alpha)} if _needed_z(n, best, alpha) else None
        criteria.append(c)
    for name, e in global_eps.items():
        p_within, p_beyond = global_test(float(e), margins.global_, n_replicas)
        c = {"criterion": "global", "parameter": name, "estimate": float(e), "margin": margins.global_,
             "units": "sigma_raw", "n": n_replicas, "p_within": p_within, "p_beyond": p_beyond}
        need = (_needed_replicas(float(e), margins.global_, alpha, abs(e) < margins.global_, n_replicas)
                if np.isfinite(e) and e != 0 else None)
        c["needed"] = {"replicas": need} if need else None
        criteria.append(c)
    outcome = decide(criteria, alpha)
    if identical:
        for c in criteria:
            c["decision"], c["exact"] = "within", "the decoded image is the raw image"
        outcome = "tolerable"
    reasons = []
    for c in criteria:
        if outcome == "not tolerable" and c["decision"] == "beyond":
            reasons.append(_describe(c, "shown beyond"))
        elif outcome == "inconclusive" and c["decision"] == "undecided":
            reasons.append(_describe(c, "not shown either way"))
    needed = {}
    if outcome == "inconclusive":
        for c in criteria:
            if c["decision"] == "undecided" and c.get("needed"):
                for k, v in c["needed"].items():
                    needed[k] = max(needed.get(k, 0), v)
    return Verdict(outcome, tuple(reasons), tuple(criteria), rule_text(margins, n_replicas, reps),
                   margins.admitted(n_replicas), margins.to_dict(), tuple(reps), needed)


def _describe(c: dict, how: str) -> str:
    need = ""
    if c.get("needed") and how != "shown beyond":
        (unit, k), = c["needed"].items()
        need = f"; about {k} {unit} would decide it"
    p = c["p_beyond_holm"] if how == "shown beyond" else c["p_within"]
    ptext = f"p = {p:.2g}" if np.isfinite(p) else "too few to test"
    if c["criterion"] == "shift":
        return (f"{c['parameter']}: systematic shift {c['estimate']:+.2f} sigma_raw, {how} the margin "
                f"+-{c['margin']:g} ({ptext}{need})")
    if c["criterion"] == "spread":
        return (f"spread ({c['parameter']}): {c['estimate']:.0%} of |eps| < 1 against {c['reference']:.0%} of a "
                f"second acquisition, {how} the margin {c['keep']:.2f} x ({c['margin']:g} x its spread; {ptext}{need})")
    if c["criterion"] == "losses":
        return (f"objects: {c['estimate']:.1%} of the {c['n']} raw objects lost, split or merged against "
                f"{c['reference']:.1%} between second acquisitions, {how} the margin {c['margin']:g} x + "
                f"{c['offset']:.0%} ({ptext}{need})")
    return f"{c['parameter']}: eps {c['estimate']:+.2f}, {how} the margin +-{c['margin']:g} sigma_raw ({ptext}{need})"


def _family_sentence() -> str:
    """The families of FAMILIES in words: "AR, Round and Compact are one family, tested through AR"."""
    from ._tests import FAMILIES

    def words(names):
        return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]

    return "; ".join(f"{words(members)} are one family, tested through {rep}" for rep, members in FAMILIES.values())


def rule_text(margins: Margins, n_replicas: int, primary) -> str:
    """The rule in words, with its numbers (built from the constants it names, so that it cannot drift)."""
    from ._tests import TRIM

    return (f"tolerable when every criterion is shown within its margin (each one-sided test at p < "
            f"{margins.alpha:g}); not tolerable when one is shown beyond it (Holm-adjusted p < {margins.alpha:g} "
            f"over the criteria); inconclusive otherwise. Primary parameters: {', '.join(primary) or 'none'} "
            f"({_family_sentence()}). "
            f"Criteria: (1) per primary parameter, the {TRIM * 100:g} % trimmed mean of eps within +-{margins.shift:g} "
            f"(TOST of Tukey-McLaughlin's t; an infinite eps, sigma_raw = 0 and a changed value, counts beyond "
            f"every finite one); (2) over the primary parameters, the share of objects' |eps| < 1 above "
            f"{keep_for_spread(margins.spread, n_replicas):.2f} x that of simulated second raw acquisitions "
            f"(the share a per-object error {margins.spread:g} x as wide as a second acquisition's would have; "
            f"objects as units); (3) raw objects lost, split or merged below {margins.loss:g} x the rate between "
            f"second acquisitions + {margins.loss_floor:.0%} (Agresti-Caffo z); (4) |eps| of N_tot and A_tot "
            f"below {margins.global_:g}, sigma_raw known from {n_replicas} replicas (chi-square bound). "
            f"It admits {margins.admitted(n_replicas)}. sigma_raw is floored at the parameter's resolution "
            f"h / sqrt(12) (h its smallest observed change, 1 for counts)")
