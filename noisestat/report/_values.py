"""The output folder of a value predictor's assessment (:func:`noisestat.assess_values`): the
per-pixel summary per codec, the maps, the report (:mod:`._values_page`) and the summary."""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

from ..io._files import staged_directory, write_json_atomic, write_text_atomic
from ..results import ValueAssessment
from ._inspection import write_float_map
from ._tables import _safe_name

__all__ = ["PIXELS_COLUMNS", "pixels_csv", "format_value_summary", "write_value_assessment"]

PIXELS_COLUMNS = ("codec", "compression_ratio", "pixels", "frac_abs_eps_lt_1", "null_frac_abs_eps_lt_1",
                  "median_abs_eps", "q95_abs_eps", "q99_abs_eps", "max_abs_eps", "mean_eps", "n_infinite",
                  "beyond_null_q99")


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(float(value)) if isinstance(value, float) else str(value)


def pixels_csv(a: ValueAssessment) -> str:
    """``pixels.csv``: one row per codec, the per-pixel summary beside the null's fraction."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(PIXELS_COLUMNS)
    for c in a.codecs:
        row = {"codec": c.spec, "compression_ratio": c.compression_ratio,
               "null_frac_abs_eps_lt_1": a.null["frac_abs_eps_lt_1"], **c.summary}
        writer.writerow([_fmt(row.get(k)) for k in PIXELS_COLUMNS])
    return out.getvalue()


def format_value_summary(a: ValueAssessment) -> str:
    """The text of ``summary.txt``."""
    s = a.summary()
    lines = [f"noisestat {s['noisestat']}: per-pixel values of {a.provenance.get('predictor', 'the predictor')}"
             f", {a.n_replicas} replicas, seed {s['seed']}, {s['pixels']} pixels",
             f"sigma_raw: median {s['sigma_raw']['median']:.4g}, zero at {s['sigma_raw']['zero_fraction']:.1%} of "
             f"pixels, floor {a.sigma_floor:.3g}",
             f"second acquisition (null): |eps| < 1 at {a.null['frac_abs_eps_lt_1']:.1%} of pixels, 99th percentile "
             f"of |eps| {a.null['q99_abs_eps']:.3g}",
             "",
             f"{'codec':<34} {'ratio':>7} {'|eps|<1':>8} {'median|eps|':>12} {'q99|eps|':>9} {'beyond null q99':>16}"
             f"  verdict"]
    for c in a.codecs:
        m = c.summary
        ratio = "-" if c.compression_ratio is None else f"{c.compression_ratio:.2f}"
        lines.append(f"{c.spec[:34]:<34} {ratio:>7} {m['frac_abs_eps_lt_1']:>8.1%} {m['median_abs_eps']:>12.3g} "
                     f"{m['q99_abs_eps']:>9.3g} {m['beyond_null_q99']:>16.2%}  {c.outcome or '-'}")
    lines.extend(_verdict_lines(a))
    lines.append(f"per pixel: {s['verdict_note']}")
    lines.extend(f"warning: {w}" for w in s["warnings"])
    return "\n".join(lines)


def _verdict_lines(a: ValueAssessment) -> list:
    """The verdict's regions, each codec's reasons and, with a target, its metrics raw against codec."""
    judged = a.judged or {}
    if not judged:
        return []
    r = judged["regions"]
    where = (f"a grid of {r['n_regions']} blocks of {r['edge_px']} px (correlation length "
             f"{r['correlation_length_px']:.2f} px)" if r["source"] == "grid" else f"{r['n_regions']} given regions")
    lines = ["", f"verdict on the prediction's mean over {where} and on {', '.join(judged['judged_globals'])}; "
                 f"simulated second acquisition: {judged['null_verdict']['outcome']}"]
    for c in a.codecs:
        for reason in (c.verdict.reasons if c.verdict is not None else ()):
            lines.append(f"  {c.spec}: {reason}")
    if any("metrics" in c.quantities for c in a.codecs):
        lines.append("metrics against the target, reported, not judged (raw -> codec; replicas' sd):")
        for c in a.codecs:
            lines.append(f"  {c.spec[:32]:<32} " + ", ".join(
                f"{k} {v['raw']:.4g} -> {v['codec']:.4g} ({v['replicas_sd']:.2g})" for k, v in c.quantities["metrics"].items()))
    return lines


def write_value_assessment(a: ValueAssessment, outdir: str | os.PathLike) -> Path:
    """Write ``outdir``: ``pixels.csv``, ``summary.txt``, ``maps/`` (float32 TIFF: the raw image's
    values, sigma_raw, and per codec its values and eps, numbered 01, 02, ... in codec order:
    ``00_raw_values.tif``, ``00_sigma_raw.tif``, ``NN_<codec>_values.tif``, ``NN_<codec>_eps.tif``),
    ``report.html`` with ``figures/`` (:func:`noisestat.report._values_page.write_value_report`) and
    ``summary.json`` last. Built under a temporary name and moved into place at the end, as every
    noisestat output (an existing folder is replaced only when noisestat wrote it)."""
    with staged_directory(outdir, command="assess-values",
                          inputs=[i["path"] for i in a.provenance.get("inputs", {}).values() if "path" in i]) as tmp:
        write_text_atomic(tmp / "pixels.csv", pixels_csv(a))
        write_text_atomic(tmp / "summary.txt", format_value_summary(a) + "\n")
        maps = tmp / "maps"
        maps.mkdir()
        pixel_size = a.provenance.get("pixel_size")
        write_float_map(maps / "00_raw_values.tif", a.raw_values, pixel_size=pixel_size)
        write_float_map(maps / "00_sigma_raw.tif", a.sigma_raw, pixel_size=pixel_size)
        for k, c in enumerate(a.codecs, 1):
            write_float_map(maps / f"{k:02d}_{_safe_name(c.spec)}_values.tif", c.values, pixel_size=pixel_size)
            write_float_map(maps / f"{k:02d}_{_safe_name(c.spec)}_eps.tif", c.eps, pixel_size=pixel_size)
        from ._values_page import write_value_report  # matplotlib, on first use

        write_value_report(a, tmp)
        # summary.json last: its presence marks a complete output.
        write_json_atomic(tmp / "summary.json", a.summary())
    return Path(outdir)
