"""The tables and text of an assessment's output folder: ``objects.csv`` / ``objects.parquet`` (one row
per codec, raw object and parameter), ImageJ Results tables, ``summary.txt``, and
:func:`write_assessment`, which writes the whole folder.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

import numpy as np

from ..io._files import staged_directory, write_json_atomic, write_text_atomic
from ..measure._morphometry import PARAMETERS
from ..predict._forest import PixelClassifier, save_model
from ..results import SUMMARY_SCHEMA, Assessment, ImageObjects
from ._inspection import _is_volume, _measured_parameters, outside_band_csv, write_label_image

__all__ = ["objects_columns", "objects_csv", "write_objects_parquet", "results_table_csv", "raw_results_csv",
           "format_summary", "write_assessment"]

_CSV_COLUMNS = ("codec", "object", "parameter", "chi_raw", "sigma_raw", "sigma_used", "n_replicas_matched",
                "status", "codec_object", "chi_codec", "eps")


def _fmt(value) -> str:
    if isinstance(value, (float, np.floating)):
        return "" if math.isnan(value) else repr(float(value))
    return str(value)


def objects_columns(assessment: Assessment) -> dict:
    """The long table of ``objects.csv`` / ``objects.parquet`` as columns: one row per codec, raw
    object and parameter (codec_object 0 and NaN values where the codec lost the object)."""
    n_obj, n_par = assessment.raw.values.shape
    rows = n_obj * n_par
    codecs = assessment.codecs
    tile = lambda a: np.tile(np.asarray(a).reshape(-1), len(codecs))  # noqa: E731
    return {
        "codec": np.repeat([c.spec for c in codecs], rows),
        "object": tile(np.repeat(assessment.raw.labels, n_par)),
        "parameter": tile(np.tile(assessment.raw.names, n_obj)),
        "chi_raw": tile(assessment.raw.values),
        "sigma_raw": tile(assessment.sigma_raw),
        "sigma_used": tile(assessment.sigma_used),
        "n_replicas_matched": tile(np.repeat(assessment.n_replicas_matched, n_par)),
        "status": np.concatenate([np.repeat(_status(c.objects, n_obj), n_par) for c in codecs]) if codecs else [],
        "codec_object": np.concatenate([np.repeat(c.objects.partner, n_par) for c in codecs]) if codecs else [],
        "chi_codec": np.concatenate([c.objects.values.reshape(-1) for c in codecs]) if codecs else [],
        "eps": np.concatenate([c.eps.reshape(-1) for c in codecs]) if codecs else [],
    }


def _status(objects: ImageObjects, n_obj: int) -> np.ndarray:
    """Per raw object, what this image's segmentation made of it (matched, lost, split, merged)."""
    if objects.status is None:
        return np.where(np.asarray(objects.partner) > 0, "matched", "lost")
    return np.asarray(objects.status, dtype=str).reshape(n_obj)


def objects_csv(assessment: Assessment) -> str:
    """``objects.csv``: one row per codec, raw object and parameter (empty where not estimable)."""
    cols = objects_columns(assessment)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_CSV_COLUMNS)
    for row in zip(*(cols[k] for k in _CSV_COLUMNS)):
        writer.writerow(tuple(_fmt(v) if isinstance(v, (float, np.floating)) else
                              ("" if k == "codec_object" and v == 0 else str(v)) for k, v in zip(_CSV_COLUMNS, row)))
    return buffer.getvalue()


def write_objects_parquet(assessment: Assessment, path) -> None:
    """``objects.parquet``: the same table with typed columns (NaN where not estimable)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols = objects_columns(assessment)
    table = pa.table({"codec": pa.array(cols["codec"], pa.string()), "object": pa.array(cols["object"], pa.int64()),
                      "parameter": pa.array(cols["parameter"], pa.string()),
                      "chi_raw": pa.array(cols["chi_raw"], pa.float64()),
                      "sigma_raw": pa.array(cols["sigma_raw"], pa.float64()),
                      "sigma_used": pa.array(cols["sigma_used"], pa.float64()),
                      "n_replicas_matched": pa.array(cols["n_replicas_matched"], pa.int64()),
                      "status": pa.array(cols["status"], pa.string()),
                      "codec_object": pa.array(cols["codec_object"], pa.int64()),
                      "chi_codec": pa.array(cols["chi_codec"], pa.float64()),
                      "eps": pa.array(cols["eps"], pa.float64())},
                     metadata={"noisestat_schema": str(SUMMARY_SCHEMA)})
    pq.write_table(table, path)


def results_table_csv(values: np.ndarray, parameters=PARAMETERS, classes=None) -> str:
    """An ImageJ Results table (ImageJ's column names, rows numbered from 1) of one image's objects:
    ``values``' columns are ``parameters`` (an image's :data:`PARAMETERS` unless told; a volume's
    :data:`~noisestat.measure.VOLUME_PARAMETERS`, MorphoLibJ's names); with ``classes`` (each
    object's class, several classes of object) a last column ``Class``."""
    columns = range(len(parameters))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow((" ",) + tuple(parameters) + (("Class",) if classes is not None else ()))
    for i, row in enumerate(values):
        writer.writerow((i + 1,) + tuple(_fmt(row[j]) for j in columns)
                        + ((int(classes[i]),) if classes is not None else ()))
    return buffer.getvalue()


def raw_results_csv(assessment: Assessment) -> str:
    """ImageJ-style Results table of the raw image's objects (of a volume: its 3D parameters)."""
    return results_table_csv(assessment.raw.values, _measured_parameters(assessment),
                             getattr(assessment.raw, "classes", None))


def _safe_name(spec: str) -> str:
    keep = "".join(ch if ch.isalnum() or ch in "-_=." else "_" for ch in spec)
    return keep[:80]


def _se_text(se) -> str:
    """A sampling SE for the printed summary: 'not estimable' where it is not a number (no object kept)."""
    try:
        value = float(se)
    except (TypeError, ValueError):
        return "not estimable"
    return f"{value:.3g}" if math.isfinite(value) else "not estimable"


def format_summary(assessment: Assessment) -> str:
    """The short human-readable summary printed after an assessment."""
    s = assessment.summary()
    volume = _is_volume(assessment)
    # what must be known to read the verdict comes first
    lines = [f"warning: {w}" for w in s.get("warnings", [])]
    names = assessment.global_names
    lines.append(f"raw: {s['n_objects_raw']} objects, {s['replicas']} replicas (seed {s['seed']}), "
                 + ", ".join(f"{g} sigma_raw {s['raw'][g]['sigma_raw']:.3g}" for g in names))
    if s.get("sample"):
        # a --sample run: the globals are extrapolated from the sampled tiles, with their sampling error
        sample = s["sample"]
        lines.append(f"sample: {sample['n_sampled']} of {sample['n_tiles']} tiles of {sample['tile']} px "
                     f"(fraction {sample['fraction']:g}, seed {sample['seed']}); whole-image estimates "
                     + ", ".join(f"{g} {s['raw'][g]['value']:.4g} +/- {_se_text(s['raw'][g]['sampling_se'])} (sampling "
                                 f"SE; sigma_raw {s['raw'][g]['sigma_raw']:.3g})" for g in names))
    if volume:
        unit = ((assessment.provenance or {}).get("pixel_size") or {}).get("unit") or (
            "voxels (the file gives no usable voxel size)")
        lines.append(f"volume: per object {len(assessment.parameters)} parameters in 3D (MorphoLibJ's names), "
                     f"in {unit}; Voxels counts voxels")
    withheld = (s.get("verdict") or {}).get("withheld")
    header = (f"{'codec':<34} {'ratio':>7} {'matched':>8} {'lost/split/merged':>17} "
              + " ".join(f"{'eps ' + g:>10}" for g in names[:3])
              + f" {'worst |mean eps|':>24}" + ("" if withheld else "  verdict"))
    lines.append(header)
    details = []
    for c in s["codecs"]:
        ratio = "-" if c["compression_ratio"] is None else f"{c['compression_ratio']:.1f}"
        means = {p: abs(v["mean_eps"]) for p, v in c["parameters"].items() if not math.isnan(v["mean_eps"])}
        worst = max(means, key=means.get) if means else None
        worst_text = f"{worst} {means[worst]:.2f}" if worst else "n/a"
        m = c["matching"]
        lsm = f"{m.get('lost', 0)}/{m.get('split', 0)}/{m.get('merged', 0)}"
        lines.append(f"{c['spec'][:34]:<34} {ratio:>7} {m['matched']:>8} {lsm:>17} "
                     + " ".join(f"{c['global'][g]['eps']:>10.2f}" for g in names[:3])
                     + f" {worst_text:>24}"
                     + ("" if withheld else f"  {'NOT tolerable' if c['outcome'] == 'not tolerable' else c['outcome']}"))
        if not withheld and c["outcome"] != "tolerable":
            details.extend(f"  {c['spec']}: {r}" for r in c["reasons"])
    if withheld:
        lines.append(f"no verdict: {withheld}")
    else:
        lines.extend(details)
        v = s.get("verdict") or {}
        lines.append(f"verdict: tolerable when every criterion is shown within its margin, not tolerable when one is "
                     f"shown beyond it, inconclusive otherwise; primary parameters {', '.join(v.get('primary', []))}; "
                     f"it admits {v.get('admitted')} (the rule in full: summary.json verdict_rule)")
    return "\n".join(lines)



def write_assessment(assessment: Assessment, outdir: str | os.PathLike) -> Path:
    """Write the assessment to ``outdir``: ``summary.json``, ``objects.csv`` and ``objects.parquet``,
    ``summary.txt``, ImageJ Results tables per image (``imagej/``; ``raw_results.csv`` for the raw
    image), label images of every segmentation (``labels/``, numbered as ``imagej/``), the objects
    outside the noise band (``outside_band.csv``), ``report.html`` with its ``figures/``, and the
    classifier used (``model.npz``, reusable with ``--model``).

    The folder is built under a temporary name and moved into place at the end, so an
    interrupted run never leaves a folder that looks complete, and an existing folder is only
    replaced by a finished one.

    A value predictor's :class:`~noisestat.results.ValueAssessment` is written by
    :func:`noisestat.report.write_value_assessment` (``pixels.csv``, ``maps/``, the summary).
    """
    from ..results import ValueAssessment

    if isinstance(assessment, ValueAssessment):
        from ._values import write_value_assessment

        return write_value_assessment(assessment, outdir)
    with staged_directory(outdir, command="assess",
                          inputs=[i["path"] for i in assessment.provenance.get("inputs", {}).values()]) as tmp:
        write_text_atomic(tmp / "objects.csv", objects_csv(assessment))
        write_objects_parquet(assessment, tmp / "objects.parquet")
        write_text_atomic(tmp / "raw_results.csv", raw_results_csv(assessment))
        (tmp / "imagej").mkdir()
        write_text_atomic(tmp / "imagej" / "00_raw.csv", raw_results_csv(assessment))
        measured = _measured_parameters(assessment)
        for k, c in enumerate(assessment.codecs, 1):
            if c.objects.table is not None:
                write_text_atomic(tmp / "imagej" / f"{k:02d}_{_safe_name(c.spec)}.csv",
                                  results_table_csv(c.objects.table, measured))
        # Label images: ids are objects.csv's `object` (raw) and `codec_object` (codecs), so tables join.
        if assessment.raw_labels is not None:
            (tmp / "labels").mkdir()
            pixel_size = assessment.provenance.get("pixel_size")
            write_label_image(tmp / "labels" / "00_raw.tif", assessment.raw_labels, pixel_size=pixel_size)
            for k, c in enumerate(assessment.codecs, 1):
                if getattr(c.objects, "labels", None) is not None:
                    write_label_image(tmp / "labels" / f"{k:02d}_{_safe_name(c.spec)}.tif", c.objects.labels,
                                      pixel_size=pixel_size)
        write_text_atomic(tmp / "outside_band.csv", outside_band_csv(assessment))
        write_text_atomic(tmp / "summary.txt", format_summary(assessment) + "\n")
        if isinstance(assessment.model, PixelClassifier):  # another predictor is the user's own to keep
            save_model(assessment.model, tmp / "model.npz")
        if assessment.image is not None:
            from ._html import write_report

            write_report(assessment, tmp)
        if assessment.operators:
            from ._operators import write_operators_csv, write_operators_figure

            write_operators_csv(assessment.operators, tmp / "operators.csv")
            (tmp / "figures").mkdir(exist_ok=True)
            write_operators_figure(assessment.operators, tmp / "figures")
        # summary.json last: its presence marks a complete output.
        write_json_atomic(tmp / "summary.json", assessment.summary())
    return Path(outdir)


