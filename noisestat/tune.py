"""The tolerability search: the strongest setting of a codec whose verdict is still tolerable.

The replicas, the raw objects and the simulated second acquisition do not depend on the codec, so
they are computed once (:func:`noisestat.pipeline.build_reference`); each setting tried then costs
one encode and one segmentation. The search bisects the codec's knob between its gentlest setting
(which must be tolerable) and its strongest, assuming that a stronger setting is never more
tolerable; it stops when the two brackets are adjacent (integer knobs), within 5 % of each other
(continuous knobs), or after ``max_evaluations`` settings.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from . import __version__
from .codecs import REGISTRY, parse_spec
from .codecs._base import code_image, prepare_image
from .errors import CodecError, InputError
from ._tasks import check_fraction
from .pipeline import build_reference, score_codec, segment_and_match, unfit_warnings

__all__ = ["TuneResult", "tune", "write_tune", "format_tune"]


@dataclass(frozen=True)
class TuneResult:
    codec: str
    knob: str
    evaluations: tuple      # dicts: knob value, spec, ratio, tolerable, worst, reasons
    chosen: dict | None
    next_stronger: dict | None
    provenance: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"codec": self.codec, "knob": self.knob, "spec": self.chosen["spec"] if self.chosen else None,
                "chosen": self.chosen, "next_stronger": self.next_stronger,
                "evaluations": sorted(self.evaluations, key=lambda e: e["strength"]), "provenance": self.provenance}


def _base_spec(codec: str):
    name, _, rest = codec.partition(":")
    if name not in REGISTRY:
        parse_spec(codec)  # raises the usual unknown-codec error
    cls = REGISTRY[name]
    knob = getattr(cls, "knob", None)
    if knob is None:
        raise CodecError(f"codec {name} has no setting to tune")
    fixed = [kv for kv in rest.split(",") if kv.strip()] if rest else []
    for kv in fixed:
        if kv.split("=")[0].strip() in (knob, "ratio", "max_error_sigma"):
            raise CodecError(f"tune sets {knob} itself: give only the other keys of {name} (got {kv!r})")
    return name, cls, knob, fixed


def _format(value, integer):
    return str(int(value)) if integer else f"{value:.4g}"


def tune(image, profile, codec: str, *, model=None, labels=None, replicas=10, seed=0, jobs=1, matching="iou",
         min_area=0, max_evaluations=8, progress=None, tile=None, scheduler=None, notice=None, margins=None,
         primary=None, verdict_anyway=False, spacing=None, sample=None) -> TuneResult:
    """Find the strongest tolerable setting of ``codec`` (a codec name, optionally with fixed keys,
    e.g. ``"avif:bits=12"``). ``tile``, ``scheduler``, ``margins``, ``primary`` and a volume's voxel
    ``spacing`` as for :func:`noisestat.assess`; a volume is coded as :func:`noisestat.assess` codes it.
    ``sample``: judge every setting on the same seeded fraction of the tiles (:func:`noisestat.assess`'s
    ``sample``), so that a volume too large to segment whole many times can still be tuned. Only a
    setting whose verdict is *tolerable* (every criterion shown within its margin) is accepted: an
    inconclusive one counts as not tolerable, so the search cannot profit
    from a criterion the data could not decide. A raw segmentation unfit to be judged (giant,
    fragmented, unstable) is refused unless ``verdict_anyway``."""
    name, cls, knob, fixed = _base_spec(codec)
    if sample is not None:
        sample = check_fraction(sample)
    if max_evaluations < 2:
        raise InputError(f"max_evaluations must be >= 2; got {max_evaluations}")
    lo, hi = cls.knob_range
    integer = bool(getattr(cls, "knob_integer", False))
    grows = bool(getattr(cls, "ratio_grows", False))
    weak, strong = (lo, hi) if grows else (hi, lo)
    log_scale = not integer and lo > 0 and hi / lo > 100

    def spec_for(value):
        return f"{name}:" + ",".join(fixed + [f"{knob}={_format(value, integer)}"])

    # checks of the settings before the long part
    for v in (weak, strong):
        prepare_image(parse_spec(spec_for(v)), image, profile)
    started = time.time()
    ref, _ = build_reference(image, profile, model=model, labels=labels, replicas=replicas, seed=seed, jobs=jobs,
                             matching=matching, min_area=min_area, progress=progress, tile=tile,
                             scheduler=scheduler, notice=notice, margins=margins, primary=primary, spacing=spacing,
                             sample=sample)
    unfit = unfit_warnings(ref)
    if unfit and not verdict_anyway:
        raise InputError(f"no verdict to tune on: {unfit[0]} (fix the labels or the model, or give --verdict-anyway)")
    evaluations = []

    def evaluate(value):
        value = int(round(value)) if integer else float(value)
        spec = spec_for(value)
        coded = code_image(parse_spec(spec), image, profile)  # a volume as a volume or plane by plane
        score = score_codec(ref, coded, segment_and_match(ref, coded.decoded))
        tm = {p: abs(s["trimmed_mean"]) for p, s in score.statistics.items() if np.isfinite(s["trimmed_mean"])}
        worst = score.reasons[0] if score.reasons else (max(tm, key=tm.get) if tm else None)
        entry = {"knob_value": value, "spec": spec, "compression_ratio": coded.compression_ratio,
                 "tolerable": score.outcome == "tolerable", "outcome": score.outcome, "worst": worst,
                 "reasons": list(score.reasons),
                 "strength": _strength(value, grows, log_scale)}
        evaluations.append(entry)
        if progress is not None:
            progress(spec, len(evaluations), max_evaluations)
        return entry

    first = evaluate(weak)
    chosen = next_stronger = None
    if first["tolerable"]:
        last = evaluate(strong)
        if last["tolerable"]:
            chosen = last
        else:
            ok, bad = first, last
            while len(evaluations) < max_evaluations:
                a, b = ok["knob_value"], bad["knob_value"]
                if integer and abs(a - b) <= 1:
                    break
                if not integer and abs(math.log(a / b) if log_scale else (a - b) / max(abs(a), abs(b), 1e-12)) < 0.05:
                    break
                mid = math.sqrt(a * b) if log_scale else (a + b) / 2
                entry = evaluate(round(mid) if integer else mid)
                if entry["tolerable"]:
                    ok = entry
                else:
                    bad = entry
            chosen, next_stronger = ok, bad
    else:
        next_stronger = first
    prov = {"noisestat": __version__, "seed": seed, "replicas": replicas, "matching": matching, "min_area": min_area,
            "classifier": ref.model.describe(), "verdict_rule": ref.rule, "seconds": round(time.time() - started, 2),
            "second_acquisition_tolerable": bool(ref.null_tolerable[0]),
            "second_acquisition_outcome": ref.null_verdict.outcome if ref.null_verdict is not None else None,
            "sample": None if ref.sample is None else ref.sample.describe(seed),
            "margins": ref.margins.to_dict(), "primary": list(ref.primary), "admitted": ref.null_verdict.admitted
            if ref.null_verdict is not None else None,
            "search": f"bisection on {knob} between {_format(weak, integer)} (gentlest) and "
                      f"{_format(strong, integer)} (strongest), at most {max_evaluations} settings"}
    return TuneResult(name, knob, tuple(evaluations), chosen, next_stronger, prov)


def _strength(value, grows, log_scale):
    x = math.log(value) if log_scale else float(value)
    return x if grows else -x


def format_tune(result: TuneResult) -> str:
    lines = [f"{'setting':<36} {'ratio':>8}  {'verdict':<13} worst"]
    for e in sorted(result.evaluations, key=lambda e: e["strength"]):
        ratio = "-" if e["compression_ratio"] is None else f"{e['compression_ratio']:.2f}"
        lines.append(f"{e['spec'][:36]:<36} {ratio:>8}  {e.get('outcome', 'tolerable' if e['tolerable'] else 'not'):<13} "
                     f"{e['worst'] or ''}")
    if result.chosen:
        lines.append(f"strongest tolerable: {result.chosen['spec']} (ratio {result.chosen['compression_ratio']:.2f})"
                     + (f"; next stronger tried: {result.next_stronger['spec']} is not tolerable"
                        if result.next_stronger else "; the strongest setting is tolerable"))
    else:
        lines.append(f"no setting of {result.codec} is tolerable, not even the gentlest")
    return "\n".join(lines)


def write_tune(result: TuneResult, outdir) -> None:
    """``tune.json`` (the chosen spec and every setting tried), ``tune.csv`` (the curve), ``tune.png``."""
    import csv
    import io

    from .io._files import staged_directory, write_json_atomic, write_text_atomic

    with staged_directory(outdir, command="tune") as tmp:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(("setting", result.knob, "compression_ratio", "tolerable", "worst"))
        for e in sorted(result.evaluations, key=lambda e: e["strength"]):
            writer.writerow((e["spec"], e["knob_value"], "" if e["compression_ratio"] is None else e["compression_ratio"],
                             e["tolerable"], e["worst"] or ""))
        write_text_atomic(tmp / "tune.csv", buffer.getvalue())
        _plot(result, tmp / "tune.png")
        write_json_atomic(tmp / "tune.json", result.to_json())


def _plot(result: TuneResult, path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4), layout="constrained")
    ax = fig.subplots()
    pts = sorted(result.evaluations, key=lambda e: e["strength"])
    for e in pts:
        if e["compression_ratio"] is None:
            continue
        ax.plot(e["knob_value"], e["compression_ratio"], "o", color="C2" if e["tolerable"] else "C3")
    if result.chosen:
        ax.axvline(result.chosen["knob_value"], color="C2", ls="--", lw=1, label=f"chosen: {result.chosen['spec']}")
        ax.legend(fontsize=8)
    ax.set_xlabel(result.knob)
    ax.set_ylabel("compression ratio")
    ax.set_yscale("log")
    ax.set_title(f"{result.codec}: tolerable (green) and not (red)")
    fig.savefig(path, dpi=100)
