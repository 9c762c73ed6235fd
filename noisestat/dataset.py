"""A whole dataset: every field of a campaign assessed with the same codecs and settings, and one pooled
verdict per codec (``noisestat assess-dataset``).

The fields are listed in a CSV (:func:`noisestat.io.read_dataset`; every row checked before any work).
Each field runs :func:`noisestat.pipeline.assess_files` into ``OUT/<field>/``, one field after another,
each on the engine given (``jobs`` workers or a dask ``scheduler``): a field's tasks already keep the
workers busy, and one field at a time holds one field's images in memory. A field's seed is derived
from the one ``seed`` and its position in the CSV (:func:`field_seed`), so its numbers do not depend on
which fields ran before or were finished earlier.

Resuming: a field is finished when ``OUT/<field>/summary.json`` exists (the field's folder is moved into
place whole, ``summary.json`` written last) and the record of its inputs (their SHA-256) and settings in
its provenance (``dataset``) equals this run's. A finished field is skipped; any other is run again, its
folder replaced. So an interrupted run (Ctrl-C, a killed process) rerun with the same command gives the
outputs of an uninterrupted one: the pooled ``summary.json`` holds no timing and is the same, byte for byte.

The pooled statistics are :func:`noisestat.score.judge_dataset`'s (docs/datasets.md); the outputs are
``OUT/summary.json``, ``OUT/fields.csv`` and ``OUT/report.html`` (written atomically, ``summary.json``
last).
"""

from __future__ import annotations

import csv
import inspect
import io
import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .codecs import parse_spec
from .errors import InputError
from .io._dataset import DatasetField, mark_dataset_files, prepare_dataset_dir, read_dataset
from .io._outputs import OUTPUT_MARKER, _noisestat_leftover
from .io._files import check_output_dir, codec_input_files, file_sha256, write_json_atomic, write_text_atomic
from .score._dataset import METHOD, MIN_FIELDS, judge_dataset, number_from_json
from .score._verdict import Margins

__all__ = ["assess_dataset", "field_seed", "DatasetAssessment", "DATASET_SCHEMA"]

DATASET_SCHEMA = "noisestat-dataset/2"

# The version of what a field's summary must hold for the pooled verdict (every criterion's effect and
# standard error since 2): part of a field's settings, so a field finished under an older rule is run again.
POOLED_RULE = 2

# What the pooled summary calls a field's simulated second acquisition, in fields.csv and the report.
NULL_NAME = "second acquisition (simulated)"


def field_seed(seed: int, position: int) -> int:
    """The seed of the field at ``position`` (from 0, in CSV order): a child of ``seed``, the same whichever
    fields ran before it.

    Examples
    --------
    >>> field_seed(0, 0) == field_seed(0, 0), field_seed(0, 0) != field_seed(0, 1)
    (True, True)
    """
    return int(np.random.SeedSequence([int(seed), int(position)]).generate_state(1, np.uint32)[0])


@dataclass(frozen=True)
class DatasetAssessment:
    """A dataset's assessment: its fields, the pooled summary (the content of ``summary.json``), and which
    fields ran in this call and which were finished before."""

    fields: tuple
    summary: dict = field(repr=False)
    ran: tuple = ()
    reused: tuple = ()

    def codec(self, spec: str) -> dict:
        return next(c for c in self.summary["codecs"] if c["spec"] == spec)


def _one_kind(fields, csv_path, channel, plane) -> None:
    """Refuse, before any work, a dataset mixing 2D images and 3D volumes: their objects have other
    parameters (Area against Volume), so their shifts cannot be pooled as one campaign's."""
    from .io import open_image

    first = {}
    for f in fields:
        _, info = open_image(f.image, channel=channel, plane=plane)
        first.setdefault(info.ndim, f)
    if len(first) > 1:
        raise InputError(f"{csv_path}: mixes 2D images (row {first[2].row}: {first[2].image}) and 3D volumes (row "
                         f"{first[3].row}: {first[3].image}); a dataset's verdict pools fields of one kind: give them "
                         f"in two CSVs")


def _record(f: DatasetField, position: int, seed: int, settings: dict) -> dict:
    """What makes a field's result: its place, its seed, its inputs' content and the settings."""
    from .predict._callable import python_fingerprint
    from .predict._command import command_fingerprint

    inputs = {}
    for role, value in f.inputs().items():
        if role in ("image", "camera", "labels", "model", "target"):
            inputs[role] = {"path": value, "sha256": file_sha256(value)}
        elif role == "predictor_command":  # the tool's files: an edited tool runs its fields again
            inputs[role] = {"command": value, **command_fingerprint(value)}
        elif role == "predictor_python":
            inputs[role] = {"python": value, **python_fingerprint(value)}
        else:
            inputs[role] = value
    return {"field": f.name, "row": f.row, "position": position, "seed": seed, "inputs": inputs,
            "settings": settings}


def _finished(folder: Path, record: dict) -> dict | None:
    """The field's summary when its folder holds a finished assessment of exactly ``record``."""
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    recorded = summary.get("provenance", {}).get("dataset") if isinstance(summary, dict) else None
    return summary if recorded == json.loads(json.dumps(record)) else None


def _pooled_inputs(criteria) -> list:
    """A field verdict's criteria as the pooled verdict reads them: kind, parameter and the ``pool`` entry
    (effect, standard error, exact)."""
    out = []
    for c in criteria or ():
        pool = c.get("pool") or {}
        out.append({"criterion": c.get("criterion"), "parameter": c.get("parameter"),
                    "effect": number_from_json(pool.get("effect")), "se": number_from_json(pool.get("se")),
                    "exact": bool(pool.get("exact"))})
    return out


def _shift(statistics: dict) -> tuple:
    """A parameter's trimmed mean of eps and its standard error, from a field's summary.json."""
    return number_from_json(statistics.get("trimmed_mean")), number_from_json(statistics.get("se_trimmed"))


def _field_scores(summary: dict, specs) -> dict:
    """What the pooled verdict reads from a field's summary.json: per codec its outcome, each primary
    parameter's trimmed mean of eps with its standard error, and every criterion's pooled effect; the same
    for the simulated second acquisition."""
    codecs = {c["spec"]: c for c in summary.get("codecs", [])}
    primary = []
    out = {"codecs": {}}
    for spec in specs:
        c = codecs.get(spec, {})
        verdict = c.get("verdict", {})
        primary += [p for p in verdict.get("primary", []) if p not in primary]
        stats = c.get("statistics", {})
        out["codecs"][spec] = {"outcome": c.get("outcome", "inconclusive"),
                               "shift": {p: _shift(s) for p, s in stats.items()},
                               "criteria": _pooled_inputs(verdict.get("criteria"))}
    simulated = summary.get("null_reference", {}).get("simulated", {})
    out["null"] = {"outcome": simulated.get("outcome") or "inconclusive",
                   "shift": {p: _shift(s) for p, s in simulated.get("parameters", {}).items()},
                   "criteria": _pooled_inputs(simulated.get("criteria"))}
    out["primary"] = primary
    out["n_objects_raw"] = summary.get("n_objects_raw")
    out["replicas"] = summary.get("replicas")
    return out


def judge_inputs(score: dict, spec: str) -> dict:
    """One field's entry for :func:`noisestat.score.judge_dataset` from :func:`_field_scores`."""
    c, null = score["codecs"][spec], score["null"]
    return {"outcome": c["outcome"], "null_outcome": null["outcome"], "shift": c["shift"],
            "null_shift": null["shift"], "criteria": c["criteria"], "null_criteria": null["criteria"]}


def assess_dataset(csv_path, codecs, outdir, *, camera=None, labels=None, model=None, target=None,
                   predictor_command=None, predictor_python=None, predictor_output="labels",
                   predictor_timeout=None, replicas=10, seed=0, jobs=1, scheduler=None, matching="iou",
                   min_area=0, margins=None, primary=None, verdict_anyway=False, tile=None, channel=None,
                   plane=None, progress=None, notice=None, on_field=None) -> DatasetAssessment:
    """Assess every field of the dataset ``csv_path`` with ``codecs`` and pool the verdicts (module docstring).

    Parameters
    ----------
    csv_path : path
        The dataset CSV (:func:`noisestat.io.read_dataset`).
    codecs : sequence of str
        Codec specs, the same for every field.
    outdir : path
        The dataset's folder: ``OUT/<field>/`` per field, ``summary.json``, ``fields.csv``, ``report.html``.
    camera, labels, model, target, predictor_command, predictor_python : optional
        The defaults of the CSV's empty cells.
    replicas, seed, jobs, scheduler, matching, min_area, margins, primary, verdict_anyway, tile, channel, plane,
    predictor_output, predictor_timeout :
        As :func:`noisestat.pipeline.assess_files`, for every field (``seed`` is the dataset's: each field's
        is :func:`field_seed`).
    progress, notice : callable, optional
        Passed to each field's :func:`~noisestat.pipeline.assess_files`.
    on_field : callable, optional
        ``on_field(name, number, total, state)`` with ``state`` ``"reused"`` (finished before), ``"running"``
        or the field's outcomes in words once it is done.

    Returns
    -------
    DatasetAssessment
    """
    from .pipeline import assess_files

    if predictor_output == "values":
        raise InputError("assess-dataset pools the verdicts of objects; a predictor giving a value per pixel "
                         "(--predictor-output values) is assessed field by field with noisestat assess")
    fields = read_dataset(csv_path, camera=camera, labels=labels, model=model, target=target,
                          predictor_command=predictor_command, predictor_python=predictor_python)
    if any(f.target is not None for f in fields) and "target_path" not in inspect.signature(assess_files).parameters:
        raise InputError(f"{csv_path}: a target is given, but this noisestat's assessment of objects takes none")
    specs = [parse_spec(c).spec for c in codecs]
    if not specs:
        raise InputError("no codec to assess: give at least one codec spec")
    if len(set(specs)) != len(specs):
        raise InputError(f"codec specs must be distinct; got {specs}")
    margins = margins if isinstance(margins, Margins) else Margins.parse(margins)
    if replicas < 2:
        raise InputError(f"at least 2 replicas are needed to estimate sigma_raw; got {replicas}")
    out = Path(outdir)
    files = [v for f in fields for k, v in f.inputs().items() if k in ("image", "camera", "labels", "model", "target")]
    files += [os.fspath(csv_path), *codec_input_files([parse_spec(c) for c in codecs])]
    # every place checked before any work: the dataset's folder, then each field's
    check_output_dir(out, inputs=files)
    for f in fields:
        check_output_dir(out / f.name, inputs=files)
    _one_kind(fields, csv_path, channel, plane)
    settings = {"noisestat": __version__, "codecs": specs, "replicas": replicas, "matching": matching,
                "min_area": min_area, "margins": margins.to_dict(),
                "primary": primary if primary is None or isinstance(primary, str) else list(primary),
                "verdict_anyway": verdict_anyway, "channel": channel, "plane": plane,
                "predictor_output": predictor_output, "predictor_timeout": predictor_timeout,
                "pooled_rule": POOLED_RULE}
    records = [_record(f, i, field_seed(seed, i), settings) for i, f in enumerate(fields)]
    created = not out.exists()
    out = prepare_dataset_dir(out, inputs=files)
    ran, reused, summaries = [], [], []
    try:
        for i, (f, record) in enumerate(zip(fields, records)):
            folder = out / f.name
            summary = _finished(folder, record)
            if summary is not None:
                reused.append(f.name)
                if on_field is not None:
                    on_field(f.name, i + 1, len(fields), "reused")
            else:
                if on_field is not None:
                    on_field(f.name, i + 1, len(fields), "running")
                assess_files(f.image, f.camera, list(codecs), folder, model_path=f.model, labels_path=f.labels,
                             replicas=replicas, seed=record["seed"], jobs=jobs, matching=matching, min_area=min_area,
                             progress=progress, channel=channel, plane=plane, tile=tile, scheduler=scheduler,
                             notice=notice, margins=margins, primary=primary, verdict_anyway=verdict_anyway,
                             predictor_command=f.predictor_command, predictor_python=f.predictor_python,
                             predictor_output=predictor_output, predictor_timeout=predictor_timeout,
                             provenance={"dataset": record}, **({"target_path": f.target} if f.target else {}))
                summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
                ran.append(f.name)
                if on_field is not None:
                    outcomes = {c["spec"]: c["outcome"] for c in summary.get("codecs", [])}
                    on_field(f.name, i + 1, len(fields), "; ".join(f"{s} {o}" for s, o in outcomes.items()))
            summaries.append(summary)
    except BaseException:
        # a run that fails or is stopped before any field is finished leaves nothing: the folder it made
        # holds only noisestat's marker (and a staging leftover, which is noisestat's too)
        if created and not ran and not reused and all(
                name == OUTPUT_MARKER or _noisestat_leftover(name) for name in os.listdir(out)):
            shutil.rmtree(out, ignore_errors=True)
        raise
    pooled = dataset_summary(fields, records, [_field_scores(s, specs) for s in summaries], specs, margins,
                             replicas, seed, settings, csv_path)
    write_text_atomic(out / "fields.csv", fields_csv(pooled))
    from .report._dataset import dataset_report_html

    write_text_atomic(out / "report.html", dataset_report_html(pooled))
    mark_dataset_files(out, ["fields.csv", "report.html", "summary.json"])
    write_json_atomic(out / "summary.json", pooled)  # last: its presence marks a complete dataset
    return DatasetAssessment(fields, pooled, tuple(ran), tuple(reused))


def dataset_summary(fields, records, scores, specs, margins: Margins, replicas: int, seed: int, settings: dict,
                    csv_path) -> dict:
    """The pooled ``summary.json``: per codec the pooled verdict, per field its inputs and outcomes; no
    timing, so that a resumed run writes the same bytes as an uninterrupted one."""
    primary = []
    for s in scores:
        primary += [p for p in s["primary"] if p not in primary]
    codecs = []
    for spec in specs:
        v = judge_dataset([judge_inputs(s, spec) for s in scores], margins, replicas, primary)
        codecs.append({"spec": spec, "outcome": v["outcome"], "tolerable": v["tolerable"], "fields": v["fields"],
                       "pooled_shift": {c["parameter"]: _criterion(c) for c in v["criteria"]
                                        if c["criterion"] == "shift"},
                       "pooled_criteria": [_criterion(c) for c in v["criteria"] if c["criterion"] != "shift"],
                       "field_counts": v["counts"],
                       "reasons": v["reasons"],
                       "null": {"outcome": v["null"]["outcome"],
                                "pooled_shift": {c["parameter"]: _criterion(c) for c in v["null"]["criteria"]
                                                 if c["criterion"] == "shift"},
                                "pooled_criteria": [_criterion(c) for c in v["null"]["criteria"]
                                                    if c["criterion"] != "shift"],
                                "reasons": v["null"]["reasons"]}})
    rows = []
    for f, record, s in zip(fields, records, scores):
        rows.append({"name": f.name, "folder": f.name, "row": f.row, "position": record["position"],
                     "seed": record["seed"], "inputs": record["inputs"], "n_objects_raw": s["n_objects_raw"],
                     "codecs": {spec: {"outcome": s["codecs"][spec]["outcome"],
                                       "shift": {p: s["codecs"][spec]["shift"].get(p, (math.nan,))[0]
                                                 for p in primary}} for spec in specs},
                     "null": {"outcome": s["null"]["outcome"],
                              "shift": {p: s["null"]["shift"].get(p, (math.nan,))[0] for p in primary}}})
    rule = (f"per codec, over the fields as units: every criterion of the per-field verdict (the shift of each "
            f"primary parameter ({', '.join(primary) or 'none'}), the spread, the outliers, the losses, each global) "
            f"pooled with the field as a random effect ({METHOD}); a shift or global within when its "
            f"{1 - 2 * margins.alpha:.0%} interval lies inside its margin (+-{margins.shift:g} sigma_raw for a shift, "
            f"+-{margins.global_:g} for a global), beyond when shown outside it; the spread, outliers and losses "
            f"within when the pooled difference from their margins is shown on the right side, beyond when shown "
            f"on the wrong one. Tolerable when every criterion is within, not tolerable when one is beyond (Holm "
            f"over the criteria, alpha {margins.alpha:g}), inconclusive otherwise, always with fewer than "
            f"{MIN_FIELDS} fields, and never within where a field could not be judged. It admits the average "
            f"field's effect within each margin; a single field may lie outside it (the pooled shifts' prediction "
            f"intervals). The counts of fields tolerable are reported, not tested")
    return {"schema_version": DATASET_SCHEMA, "noisestat": __version__, "dataset": os.fspath(csv_path),
            "seed": seed, "field_seeds": "numpy SeedSequence([seed, position]), position in CSV order from 0",
            "settings": settings, "primary": primary, "rule": rule, "codecs": codecs, "fields": rows}


def _criterion(c: dict) -> dict:
    keep = ("criterion", "parameter", "units", "estimate", "interval", "prediction_interval", "interval_method",
            "sided", "margin", "beyond_margin", "se", "df", "tau2", "fields", "left_out", "infinite", "p_within",
            "p_beyond", "p_beyond_holm", "decision", "exact")
    return {k: c[k] for k in keep if k in c}


def fields_csv(summary: dict) -> str:
    """``fields.csv``: one row per field and codec (and the field's simulated second acquisition): its
    outcome and each primary parameter's trimmed mean of eps."""
    primary = summary["primary"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["field", "row", "seed", "image", "objects", "codec", "outcome",
                     *(f"shift {p}" for p in primary)])

    def number(v):
        return "" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.6g}"

    for f in summary["fields"]:
        head = [f["name"], f["row"], f["seed"], f["inputs"]["image"]["path"], f["n_objects_raw"]]
        for spec, c in f["codecs"].items():
            writer.writerow([*head, spec, c["outcome"], *(number(c["shift"].get(p)) for p in primary)])
        writer.writerow([*head, NULL_NAME, f["null"]["outcome"], *(number(f["null"]["shift"].get(p))
                                                                   for p in primary)])
    return buffer.getvalue()
