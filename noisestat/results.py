"""What an assessment produces, as frozen result types: each image's objects aligned to the raw ones
(:class:`ImageObjects`), the codec-independent reference (:class:`Reference`: raw objects, sigma_raw,
the simulated second acquisition), one codec's scores (:class:`CodecScore`) and the whole
:class:`Assessment` with its ``summary()`` (the content of ``summary.json``).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import numpy as np

from . import __version__
from .camera._profile import CameraProfile
from .measure._morphometry import PARAMETERS, ObjectMeasurements
from .predict._forest import PixelClassifier
from .score._eps import floored, global_floors, null_reference, summarise_eps
from .score._tests import difference_stats
from .score._verdict import Margins, Verdict

__all__ = ["PackedLabels", "ImageObjects", "CodecScore", "Assessment", "Reference", "ValueScore", "ValueAssessment",
           "GLOBAL_PARAMETERS", "VOLUME_GLOBALS", "globals_for", "SUMMARY_SCHEMA"]

GLOBAL_PARAMETERS = ("N_tot", "A_tot")
"""An image's global parameters: the object count and the object pixels."""
VOLUME_GLOBALS = ("N_tot", "V_tot", "SA_tot")
"""A volume's global parameters: the object count, the objects' total volume and total surface area (physical
units)."""


def globals_for(parameters) -> tuple:
    """The global parameters that go with a set of per-object columns (an image's or a volume's)."""
    return GLOBAL_PARAMETERS if tuple(parameters) == PARAMETERS else VOLUME_GLOBALS

SUMMARY_SCHEMA = 1
SAMPLE_NOTE = ("a --sample run: only the sampled tiles were segmented; objects touching a tile's face towards "
               "another tile are dropped in every image; each global (raw, replicas, codecs) is extrapolated to the "
               "whole image from the same tiles, each object weighted by 1 / its probability of being kept, with "
               "sampling_se its standard error (tiles sampled without replacement, plus the weights' variance); "
               "sigma_raw and eps of a global compare images on the same tiles, so sampling_se is not part of "
               "them: a codec's difference_sampling_se is the error of raw - codec from the tiles' paired "
               "differences")

@dataclass(frozen=True)
class PackedLabels:
    """A label image kept compressed (zlib): a replica's segmentation, needed only to match replica
    pairs, held for every replica of a run at a fraction of its size (labels compress well)."""

    shape: tuple
    dtype: str
    data: bytes = field(repr=False)

    @classmethod
    def pack(cls, labels: np.ndarray) -> "PackedLabels":
        # compressed from the array's own buffer (no bytes copy of the whole label image)
        return cls(tuple(labels.shape), str(labels.dtype), zlib.compress(np.ascontiguousarray(labels).data, 1))

    def unpack(self) -> np.ndarray:
        return np.frombuffer(zlib.decompress(self.data), dtype=self.dtype).reshape(self.shape)


@dataclass(frozen=True)
class ImageObjects:
    """One image's objects, aligned to the raw image's objects.

    Attributes
    ----------
    values : ndarray, shape (n_raw_objects, n_parameters)
        Parameters of the object matched to each raw object; NaN where none matched. Columns: an
        image's :data:`PARAMETERS`, a volume's :data:`~noisestat.measure.VOLUME_PARAMETERS`.
    partner : ndarray of int, shape (n_raw_objects,)
        Label id of that object in this image's segmentation, 0 where none matched.
    n_objects : int
        N_tot: objects in this image.
    area_total : int
        A_tot: object pixels (a volume's: voxels) in this image.
    matching : dict
        Matched and unmatched counts: method, matched, unmatched_reference, unmatched_other, shared,
        and lost, split, merged (:func:`noisestat.measure.classify_objects`), n_reference.
    table : ndarray, shape (n_objects, n_parameters)
        Every object of this image (matched or not), in label order: its own Results table.
    labels : ndarray of int, shape (rows, cols), or PackedLabels, optional
        This image's label image; its ids are those of ``partner`` (written to ``labels/``); a
        replica's is kept packed (:class:`PackedLabels`).
    status : ndarray of str, shape (n_raw_objects,), optional
        What happened to each raw object in this image: matched, lost, split or merged.
    totals : dict, optional
        The global parameters after N_tot, by name: a volume's V_tot and SA_tot (physical units); with
        several classes of object, also each class's count and size (``N_tot[c]``, ``A_tot[c]`` or
        ``V_tot[c]``, ``SA_tot[c]``) and each further class's load on class 2 (``load[c]``). None for an
        image of one class of object (A_tot is ``area_total``).
    sampled : dict, optional
        A ``--sample`` run's globals extrapolated to the whole image from the sampled tiles
        (:func:`noisestat._tasks.sampled_globals`): ``value`` and ``se`` (the sampling standard error) in
        :attr:`global_names` order, and ``tile_totals`` (sampled tiles x globals). :attr:`globals` are then
        the extrapolated values; ``n_objects``, ``area_total`` and ``totals`` stay those of the sampled tiles.
    """

    values: np.ndarray
    partner: np.ndarray
    n_objects: int
    area_total: int
    matching: dict
    table: np.ndarray | None = field(default=None, repr=False)
    labels: np.ndarray | None = field(default=None, repr=False, compare=False)
    status: np.ndarray | None = field(default=None, repr=False, compare=False)
    totals: dict | None = None
    table_classes: np.ndarray | None = field(default=None, repr=False, compare=False)  # ``table``'s rows' classes
    sampled: dict | None = field(default=None, repr=False, compare=False)

    @property
    def global_names(self) -> tuple:
        """The names of :attr:`globals`: N_tot, A_tot (an image); N_tot, V_tot, SA_tot (a volume); then
        the per-class ones (several classes of object)."""
        return GLOBAL_PARAMETERS if self.totals is None else ("N_tot", *self.totals)

    @property
    def globals(self) -> np.ndarray:
        """The global parameters, in :attr:`global_names` order (a ``--sample`` run's: extrapolated to
        the whole image)."""
        if self.sampled is not None:
            return np.asarray(self.sampled["value"], dtype=float)
        if self.totals is None:
            return np.array([self.n_objects, self.area_total], dtype=float)
        return np.array([self.n_objects, *self.totals.values()], dtype=float)


@dataclass(frozen=True)
class CodecScore:
    """Scores of one codec against the raw image."""

    spec: str
    compression_ratio: float | None
    n_bytes: int | None
    info: dict
    objects: ImageObjects
    eps: np.ndarray
    parameters: dict
    global_scores: dict
    tolerable: bool
    reasons: tuple
    statistics: dict = field(default_factory=dict)
    area_difference: dict = field(default_factory=dict)
    loss: dict = field(default_factory=dict)  # noisestat.score.loss_test: lost/split/merged vs replica pairs
    verdict: Verdict | None = field(default=None, repr=False)
    withheld: str | None = None  # why no verdict is given (an unfit raw segmentation), None when it is

    @property
    def outcome(self) -> str:
        """tolerable, not tolerable or inconclusive (inconclusive when the verdict is withheld)."""
        if self.withheld or self.verdict is None:
            return "inconclusive" if self.withheld or not self.tolerable else "tolerable"
        return self.verdict.outcome


class _RawColumns:
    """What an assessment and its reference read alike from their raw objects and replicas."""

    @property
    def n_replicas(self) -> int:
        return len(self.replica_globals)

    @property
    def parameters(self) -> tuple:
        """The per-object columns: :data:`PARAMETERS` for an image, a volume's own set."""
        return self.raw.names

    @property
    def global_names(self) -> tuple:
        """The global parameters: the raw objects' (:attr:`ImageObjects.global_names`)."""
        return self.raw_objects.global_names


@dataclass(frozen=True)
class Assessment(_RawColumns):
    """Everything an assessment measured, with its provenance."""

    raw: ObjectMeasurements
    raw_objects: ImageObjects
    sigma_raw: np.ndarray
    n_replicas_matched: np.ndarray
    replica_globals: np.ndarray
    replica_matching: tuple
    codecs: tuple
    rule: str
    provenance: dict = field(default_factory=dict)
    model: PixelClassifier | None = field(default=None, repr=False, compare=False)
    image: np.ndarray | None = field(default=None, repr=False, compare=False)
    raw_labels: np.ndarray | None = field(default=None, repr=False, compare=False)
    replica_values: np.ndarray | None = field(default=None, repr=False, compare=False)
    null_eps: np.ndarray | None = field(default=None, repr=False, compare=False)
    null_globals_eps: np.ndarray | None = field(default=None, repr=False, compare=False)
    null_statistics: dict = field(default_factory=dict, repr=False, compare=False)
    null_tolerable: tuple = field(default=(), repr=False, compare=False)
    sigma_model: np.ndarray | None = field(default=None, repr=False, compare=False)
    null_fractions: dict = field(default_factory=dict, repr=False, compare=False)
    warnings: tuple = ()
    sigma_floor: np.ndarray | None = field(default=None, repr=False, compare=False)
    replica_status: np.ndarray | None = field(default=None, repr=False, compare=False)
    null_loss: dict = field(default_factory=dict, repr=False, compare=False)
    null_verdict: Verdict | None = field(default=None, repr=False, compare=False)
    operators: tuple = field(default=(), repr=False, compare=False)  # noisestat.score.OperatorScore rows
    global_floor: np.ndarray | None = field(default=None, repr=False, compare=False)  # each global's sigma floor

    @property
    def sigma_used(self) -> np.ndarray:
        """The spread eps divides by: sigma_raw floored at the parameter's resolution (noisestat.score)."""
        return self.sigma_raw if self.sigma_floor is None else floored(self.sigma_raw, self.sigma_floor[None])

    def summary(self) -> dict:
        """The content of ``summary.json``."""
        sigma_global = self.replica_globals.std(axis=0, ddof=1)
        codecs = []
        for c in self.codecs:
            codecs.append({
                "spec": c.spec, "compression_ratio": c.compression_ratio, "n_bytes": c.n_bytes,
                "settings": c.info, "matching": c.objects.matching,
                "object_status": [] if c.objects.status is None else [str(v) for v in c.objects.status],
                "loss": c.loss, "parameters": c.parameters, "global": c.global_scores,
                "outcome": c.outcome, "tolerable": c.outcome == "tolerable",
                "reasons": [f"verdict withheld: {c.withheld}"] if c.withheld else list(c.reasons),
                **({"verdict": _verdict_json(c.verdict, c.withheld)} if c.verdict is not None else {})})
        for c, entry in zip(self.codecs, codecs):
            entry["statistics"] = c.statistics
            entry["area_difference"] = c.area_difference
        raw_globals = self.raw_objects.globals
        sampled = self.raw_objects.sampled
        null = null_reference(self.n_replicas)
        if self.null_eps is not None:
            null["simulated"] = {
                "method": "two extra replicas per run: eps = (chi_a - chi_b) / sigma_raw, a difference of two "
                          "independent draws over sigma from the N replicas, as for a second raw acquisition",
                "parameters": {p: {**summarise_eps(self.null_eps[:, j]),
                                   "trimmed_mean": self.null_statistics.get(p, {}).get("trimmed_mean"),
                                   "p_equivalent": self.null_statistics.get(p, {}).get("p_equivalent"),
                                   "se_trimmed": self.null_statistics.get(p, {}).get("se_trimmed")}
                               for j, p in enumerate(self.parameters)},
                "pooled_frac_abs_eps_lt_1": {p: v["fraction"] if isinstance(v, dict) else v
                                             for p, v in self.null_fractions.items()},
                "pooled_counts": {p: {"inside": v["inside"], "n": v["n"]}
                                  for p, v in self.null_fractions.items() if isinstance(v, dict)},
                "global": {name: float(self.null_globals_eps[i]) for i, name in enumerate(self.global_names)},
                "judged_tolerable": bool(self.null_tolerable[0]) if self.null_tolerable else None,
                "outcome": self.null_verdict.outcome if self.null_verdict is not None else None,
                "criteria": list(self.null_verdict.criteria) if self.null_verdict is not None else [],
                "reasons": list(self.null_tolerable[1]) if self.null_tolerable else [],
            }
        replica_area = pair_area = {}
        if self.replica_values is not None:
            # an object's size in pixels (a volume's: voxels)
            size = self.parameters.index("Area" if "Area" in self.parameters else "Voxels")
            area = self.replica_values[:, :, size]
            replica_area = difference_stats(area - self.raw.values[None, :, size])
            # like with like: a codec's chi_c - chi_raw is a second image against the first; so is one replica
            # of a disjoint pair against the other (a simulated second acquisition), whereas replica - raw
            # is biased by the replicas being drawn around the raw image
            half = len(area) // 2
            pair_area = difference_stats(area[1:2 * half:2] - area[0:2 * half:2]) if half else {}
        model = None
        if self.sigma_model is not None:
            with np.errstate(divide="ignore", invalid="ignore"):  # sigma_raw may be 0: ratio inf/nan, dropped below
                ratio = self.sigma_model / self.sigma_raw
            runs = self.provenance.get("deterministic") is False  # a predictor's own spread over two runs
            model = {"seeds": None if runs else self.provenance.get("model_seeds"),
                     **({"runs": 2} if runs else {}),
                     "median_sigma_model_over_sigma_raw": {
                         p: float(np.nanmedian(np.where(np.isfinite(ratio[:, j]), ratio[:, j], np.nan)))
                         if np.isfinite(ratio[:, j]).any() else None for j, p in enumerate(self.parameters)},
                     "note": ("spread of each parameter over two runs of the predictor on the raw image (it is not "
                              "deterministic); reported beside sigma_raw, never added to it" if runs else
                              "spread of each parameter over forests retrained with other seeds; reported beside "
                              "sigma_raw, never added to it")}
        return {
            "schema_version": SUMMARY_SCHEMA,
            "noisestat": __version__,
            "replicas": self.n_replicas,
            "seed": self.provenance.get("seed"),
            "n_objects_raw": len(self.raw),
            "raw": {name: {"value": float(raw_globals[i]), "sigma_raw": float(sigma_global[i]),
                           "replica_mean": float(self.replica_globals[:, i].mean()),
                           **({"sampling_se": float(sampled["se"][i])} if sampled is not None else {})}
                    for i, name in enumerate(self.global_names)},
            **({"sample": {**self.provenance.get("sample", {}), "note": SAMPLE_NOTE}} if sampled is not None else {}),
            "replica_matching": {
                "unmatched_raw_mean": float(np.mean([m["unmatched_reference"] for m in self.replica_matching])),
                "unmatched_replica_mean": float(np.mean([m["unmatched_other"] for m in self.replica_matching])),
                "raw_objects_with_sigma": int((self.n_replicas_matched >= 2).sum()),
                "unmatched_raw_fraction_mean": (float(np.mean([m["unmatched_reference"] for m in self.replica_matching]))
                                                / len(self.raw) if len(self.raw) else math.nan),
                "second_acquisition_unmatched_rate": self.null_loss.get("rate", math.nan),
                "second_acquisition_pairs": self.null_loss,
                "per_replica": list(self.replica_matching)},
            "sigma_floor": self._sigma_floor_summary(),
            "null_reference": null,
            "area_difference": {"second_acquisitions": pair_area, "replicas_minus_raw": replica_area,
                                **{c.spec: c.area_difference for c in self.codecs}},
            "sigma_model": model,
            "verdict_rule": self.rule,
            "verdict": {**self.provenance.get("verdict", {}),
                        "admitted": self.null_verdict.admitted if self.null_verdict is not None else None,
                        "outcomes": ["tolerable", "not tolerable", "inconclusive"]},
            "warnings": list(self.warnings),
            **({"operators": [o.row() for o in self.operators]} if self.operators else {}),
            "codecs": codecs,
            "provenance": self.provenance,
        }

    def _sigma_floor_summary(self) -> dict | None:
        if self.sigma_floor is None:
            return None
        with np.errstate(invalid="ignore"):
            below = self.sigma_raw < self.sigma_floor[None]
        n_sigma = np.isfinite(self.sigma_raw).sum(axis=0)
        return {"rule": "sigma used = max(sigma_raw, h / sqrt(12)), h the parameter's smallest observed change "
                        "(median over objects); for a global its lattice step: 1 for counts, a voxel for V_tot, a "
                        "face for SA_tot; a class's size and load, where the replicas never moved them, one object's "
                        "step (noisestat.score.global_floors)",
                "parameters": {p: float(self.sigma_floor[j]) for j, p in enumerate(self.parameters)},
                "global": dict(zip(self.global_names, (self.global_floor if self.global_floor is not None else
                                                       global_floors(self.global_names,
                                                                     self.provenance.get("spacing"))).tolist())),
                "floored_fraction": {p: float(below[:, j].sum() / n_sigma[j]) if n_sigma[j] else None
                                     for j, p in enumerate(self.parameters)}}


def _verdict_json(verdict: Verdict, withheld: str | None) -> dict:
    """A codec's verdict in summary.json: the outcome its criteria give (``outcome_if_judged`` when
    withheld), each criterion, what would decide an inconclusive one, what the rule admitted."""
    out = {"criteria": list(verdict.criteria), "admitted": verdict.admitted, "needed": verdict.needed,
           "margins": verdict.margins, "primary": list(verdict.primary)}
    if withheld:
        out["withheld"] = withheld
        out["outcome_if_judged"] = verdict.outcome
    return out


@dataclass(frozen=True)
class Reference(_RawColumns):
    """Everything an assessment measures that does not depend on the codecs: the raw objects,
    sigma_raw from the replicas, the simulated second acquisition, sigma_model."""

    profile: CameraProfile
    model: PixelClassifier
    trained: bool
    seed: int
    matching: str
    min_area: int
    raw: ObjectMeasurements
    raw_labels: np.ndarray
    raw_objects: ImageObjects
    raw_xy: np.ndarray
    sigma_raw: np.ndarray
    n_replicas_matched: np.ndarray
    replica_values: np.ndarray
    replica_globals: np.ndarray
    replica_matching: tuple
    null_eps: np.ndarray
    null_globals_eps: np.ndarray
    null_statistics: dict
    null_fractions: dict
    null_tolerable: tuple
    rule: str
    sigma_model: np.ndarray | None = None
    warnings: tuple = ()
    sigma_floor: np.ndarray | None = None
    replica_status: np.ndarray | None = field(default=None, repr=False)
    null_loss: dict = field(default_factory=dict)
    tile: int | None = None
    timing: dict = field(default_factory=dict)
    margins: Margins = field(default_factory=Margins)
    primary: tuple = ()
    null_verdict: Verdict | None = field(default=None, repr=False)
    pooled_null_eps: np.ndarray | None = field(default=None, repr=False)
    unstable: str | None = None
    image: np.ndarray | None = field(default=None, repr=False)  # the raw image (not a copy)
    spacing: tuple | None = None  # a volume's voxel size (z, y, x): the units of its objects' parameters
    classes: object = None  # noisestat._tasks.Classes when the model tells several classes of object apart
    global_floor: np.ndarray | None = field(default=None, repr=False)  # each global's sigma floor
    sample: object = None  # noisestat._tasks.Sample: a --sample run's tiles (None: the whole image)
    deterministic: bool | None = None  # the raw image's two runs agreed (None: noisestat's forest, not checked)

    @property
    def sigma_global(self) -> np.ndarray:
        """sd of the global parameters over the replicas (before the floor)."""
        return self.replica_globals.std(axis=0, ddof=1)

    @property
    def sigma_global_used(self) -> np.ndarray:
        """The global spread eps divides by: floored at each global's lattice step
        (:func:`noisestat.score.global_floors`)."""
        floor = self.global_floor if self.global_floor is not None else global_floors(self.global_names, self.spacing)
        return floored(self.sigma_global, floor)

    @property
    def sigma_used(self) -> np.ndarray:
        """The per-object spread eps divides by: sigma_raw floored per parameter."""
        return self.sigma_raw if self.sigma_floor is None else floored(self.sigma_raw, self.sigma_floor[None])


@dataclass(frozen=True)
class ValueScore:
    """One codec against the raw image, pixel by pixel (a value predictor's assessment)."""

    spec: str
    compression_ratio: float | None
    n_bytes: int | None
    info: dict
    values: np.ndarray = field(repr=False)
    eps: np.ndarray = field(repr=False)
    summary: dict = field(default_factory=dict)
    verdict: object = None  # noisestat.score.Verdict of the region means and image-level quantities
    quantities: dict = field(default_factory=dict)  # regions' eps, globals, metrics (score._values.judge_values)

    @property
    def outcome(self) -> str | None:
        """tolerable, not tolerable or inconclusive (None without a verdict)."""
        return None if self.verdict is None else self.verdict.outcome

    @property
    def tolerable(self) -> bool:
        return self.outcome == "tolerable"


@dataclass(frozen=True)
class ValueAssessment:
    """A value predictor's assessment (:func:`noisestat.assess_values`): the raw image's values,
    sigma_raw and the null per pixel, and per codec its values, eps map and summary (descriptive:
    :mod:`noisestat.score._pixels` says why), and its verdict on the region means, the image-level
    quantities and, with a target, the metrics (:mod:`noisestat.score._values`); ``judged``
    describes the regions (``region_labels``), the quantities and the simulated second
    acquisition's verdict."""

    raw_values: np.ndarray = field(repr=False)
    sigma_raw: np.ndarray = field(repr=False)
    sigma_floor: float
    n_replicas: int
    null: dict
    codecs: tuple
    provenance: dict = field(default_factory=dict)
    model: object = field(default=None, repr=False, compare=False)
    warnings: tuple = ()
    judged: dict = field(default_factory=dict)
    region_labels: np.ndarray | None = field(default=None, repr=False, compare=False)
    sigma_model: dict | None = None

    def summary(self) -> dict:
        """The JSON summary (``summary.json`` of :func:`noisestat.write_assessment`)."""
        sigma = self.sigma_raw
        return {
            "schema_version": SUMMARY_SCHEMA,
            "noisestat": __version__,
            "kind": "values",
            "replicas": self.n_replicas,
            "seed": self.provenance.get("seed"),
            "pixels": int(sigma.size),
            "sigma_raw": {"median": float(np.median(sigma)), "mean": float(sigma.mean()),
                          "zero_fraction": float((sigma == 0).mean()), "floor": self.sigma_floor,
                          "floor_rule": "sigma used = max(sigma_raw, h / sqrt(12)), h the median over pixels of the "
                                        "smallest non-zero change a replica made (0: no replica changed any pixel)"},
            "sigma_model": self.sigma_model,
            "null_reference": self.null,
            "verdict": self.judged or None,
            "verdict_note": "the verdict judges region means and image-level quantities (metrics against a "
                            "target are reported, not judged); per-pixel eps is descriptive: neighbouring pixels share the predictor's "
                            "neighbourhood, so their eps are not independent; compare frac_abs_eps_lt_1 with the "
                            "null's and beyond_null_q99 with 0.01",
            "warnings": list(self.warnings),
            "codecs": [{"spec": c.spec, "compression_ratio": c.compression_ratio, "n_bytes": c.n_bytes,
                        "info": c.info, **c.summary, **_value_verdict(c)} for c in self.codecs],
            "provenance": self.provenance,
        }


def _value_verdict(c: ValueScore) -> dict:
    """A value predictor's codec entry: outcome, tolerable, the verdict's criteria, the quantities
    (and ``metrics`` when a target was given)."""
    if c.verdict is None:
        return {}
    quantities = {k: v for k, v in c.quantities.items() if k != "metrics"}
    out = {"outcome": c.outcome, "tolerable": c.tolerable, "verdict": c.verdict.to_dict(), "quantities": quantities}
    if "metrics" in c.quantities:
        out["metrics"] = c.quantities["metrics"]
    return out
