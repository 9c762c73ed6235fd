"""``noisestat compress-bench``: compression ratio and image-quality metrics of codecs on raw images.

Every (image, codec) pair is coded and measured with :func:`noisestat.bench.compression_metrics`;
the rows go to ``metrics.csv`` and the per-codec averages over *all* images to ``summary.json``.
(Zhou et al. reported averages that, through a loop bug, held only the last image; here each
codec's average says how many images it holds.)

Everything that can be checked is checked before any coding: every image is read, every spec
parsed and prepared on every image, the camera profile loaded and matched to every image as
``noisestat assess`` does (:meth:`~noisestat.camera.CameraProfile.fit_warnings`: refused when it
cannot describe the image, warnings kept in ``summary.json``). A ``ratio=`` target a codec cannot
reach on an image is reported as not reachable (its row's ``status``, its metrics empty) and the
run goes on; any other codec failure stops the run with its one-line message and no output folder
is written.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..io._files import (_json_safe, codec_input_files, file_sha256, prepare_output_dir, read_image, staged_directory,
                  write_json_atomic, write_text_atomic)
from ..engine._executors import JoblibExecutor
from ..camera._profile import CameraProfile, load_profile
from ..codecs import Codec, parse_spec
from ..errors import CodecError, InputError, NoisestatError
from ._metrics import SIGMA_METRICS, compression_metrics, default_data_range

__all__ = ["CompressBench", "compress_bench", "format_bench", "noise_sigma_dn", "METRIC_COLUMNS",
           "AVERAGED_METRICS", "QUANTISATION_VARIANCE_DN2"]

#: Columns of ``metrics.csv`` before the camera-noise metrics and ``settings``.
METRIC_COLUMNS = ("image", "spec", "codec", "lossless", "compression_ratio", "space_saving", "n_bytes",
                  "raw_bytes", "mse", "rmse", "psnr", "ssim", "ms_ssim", "ms_ssim_scales", "pearson", "bias",
                  "max_abs_error", "data_range_dn")

#: Metrics averaged per codec in ``summary.json`` (and the camera-noise ones with a camera).
AVERAGED_METRICS = ("compression_ratio", "space_saving", "mse", "rmse", "psnr", "ssim", "ms_ssim", "pearson",
                    "bias", "max_abs_error")

#: ``status`` of a row whose ``ratio=`` target the codec cannot reach on that image (then ``status``
#: is this followed by ": " and the codec's message; every other row's is "ok").
NOT_REACHABLE = "not reachable"

#: Floor of the per-pixel noise variance (DN^2): the quantisation noise of a 1-DN step, so that errors
#: in sigma units stay finite where a profile with no read noise predicts zero variance.
QUANTISATION_VARIANCE_DN2 = 1.0 / 12.0


@dataclass(frozen=True)
class CompressBench:
    """What ``compress-bench`` measured.

    Attributes
    ----------
    rows : tuple of dict
        One per (image, codec), image-major, in the order given: ``image``, ``spec``, ``codec``,
        ``lossless`` and every key of :func:`~noisestat.bench.compression_metrics`, plus
        ``settings`` (the codec's ``info``: settings used, e.g. ``quality_used``).
    averages : tuple of dict
        One per codec, in the order given: ``spec``, ``codec``, ``lossless``, ``n_images`` and the
        arithmetic mean over all images of each metric of :data:`AVERAGED_METRICS` (and of the
        camera-noise metrics with a camera). A mean of values some of which are unknown (None) is
        None; a PSNR mean holding an exact copy is ``inf``.
    images : tuple of str
        The image paths as given.
    specs : tuple of str
        The codec specs as given.
    camera : str or None
        The camera profile path, if any.
    warnings : tuple of str
        What the camera profile's check against each image warned of (the same checks as
        ``noisestat assess``).
    provenance : dict
        noisestat version, image SHA-256s, shapes and dtypes, camera path and SHA-256.
    outdir : str
        The output folder written.
    """

    rows: tuple
    averages: tuple
    images: tuple
    specs: tuple
    camera: str | None
    provenance: dict = field(default_factory=dict)
    outdir: str = ""
    warnings: tuple = ()

    @property
    def with_camera(self) -> bool:
        return self.camera is not None


def noise_sigma_dn(raw: np.ndarray, profile: CameraProfile) -> np.ndarray:
    """Per-pixel temporal noise standard deviation (DN) of ``raw`` under ``profile``.

    With per-pixel maps: ``sqrt(gain * max(raw - offset, 0) + read_variance)`` pixel by pixel; else
    ``sqrt(profile.noise_variance_dn2(raw))`` (noise map or linear model), evaluated at the raw
    value as an estimate of the mean. Variances are floored at :data:`QUANTISATION_VARIANCE_DN2`.
    """
    y = raw.astype(np.float64)
    maps = profile.pixel_maps
    if maps is not None:
        var = maps.gain_dn_per_e * np.maximum(y - maps.offset_dn, 0.0) + maps.read_variance_dn2
    else:
        var = np.asarray(profile.noise_variance_dn2(y), dtype=np.float64)
    return np.sqrt(np.maximum(var, QUANTISATION_VARIANCE_DN2))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _not_reachable(codec: Codec, exc: NoisestatError) -> bool:
    """A ``ratio=`` target the codec's knob cannot reach (:func:`noisestat.codecs.bisect_ratio`)."""
    return (isinstance(exc, CodecError) and getattr(codec, "params", {}).get("ratio") is not None
            and "cannot be reached" in str(exc))


def _run_pair(name: str, image: np.ndarray, codec: Codec, profile, sigma, data_range: float):
    """Code one image with one codec and measure it: ("ok", row); an unreachable ratio comes back as
    (:data:`NOT_REACHABLE`, row without metrics), other errors as ("error", message)."""
    try:
        result = codec.apply(image, profile)
        decoded = np.asarray(result.decoded)
        if decoded.shape != image.shape:
            raise CodecError(f"{codec.spec}: decoded shape {decoded.shape} differs from the raw {image.shape}")
        if codec.lossless and not np.array_equal(decoded, image):
            raise CodecError(f"{codec.spec}: a lossless codec did not reproduce {name} exactly")
        metrics = compression_metrics(image, decoded, n_bytes=result.n_bytes, sigma=sigma, data_range=data_range)
    except NoisestatError as exc:
        message = _one_line(exc)
        if _not_reachable(codec, exc):
            metrics = dict.fromkeys(METRIC_COLUMNS[4:] + (SIGMA_METRICS if sigma is not None else ()))
            return NOT_REACHABLE, {"image": name, "spec": codec.spec, "codec": codec.name,
                                   "lossless": bool(codec.lossless), **metrics, "settings": {},
                                   "status": f"{NOT_REACHABLE}: {message}"}
        return "error", (message if name in message else f"{name}: {message}")
    except Exception as exc:  # a codec library's own failure: report it on one line, as a codec error
        return "error", f"{codec.spec} on {name}: {type(exc).__name__}: {_one_line(exc)}"
    metrics.pop("data_range_source")
    row = {"image": name, "spec": codec.spec, "codec": codec.name, "lossless": bool(codec.lossless), **metrics,
           "settings": _json_safe(result.info), "status": "ok"}
    return "ok", row


def _mean(values):
    if any(v is None for v in values):
        return None
    vals = [float(v) for v in values]
    if any(math.isnan(v) for v in vals):
        return math.nan
    if any(math.isinf(v) for v in vals):
        return math.fsum(vals) if len({math.copysign(1, v) for v in vals if math.isinf(v)}) == 1 else math.nan
    return math.fsum(vals) / len(vals)


def _validate(images, specs, camera_path, channel=None, plane=None):
    images = [str(p) for p in images]
    specs = [str(s) for s in specs]
    if not images:
        raise InputError("compress-bench: no image given")
    if not specs:
        raise CodecError("compress-bench: no codec given (--codec SPEC)")
    for what, items, err in (("image", images, InputError), ("codec", specs, CodecError)):
        seen = set()
        for item in items:
            key = os.path.abspath(item) if what == "image" else item.strip()
            if key in seen:
                raise err(f"compress-bench: {what} {item!r} given twice")
            seen.add(key)
    arrays = [read_image(p, channel=channel, plane=plane) for p in images]
    codecs = [parse_spec(s) for s in specs]
    profile = load_profile(camera_path) if camera_path is not None else None
    warnings = []
    for path, image in zip(images, arrays):
        if profile is not None:  # refused or warned as assess does (values above the range, below the offset...)
            warnings += [w for w in profile.fit_warnings(image, name=path) if w not in warnings]
        for codec in codecs:
            try:
                codec.prepare(image, profile)
            except NoisestatError as exc:
                message = _one_line(exc)
                raise type(exc)(message if path in message else f"{path}: {message}") from None
    return images, specs, arrays, codecs, profile, tuple(warnings)


def compress_bench(images, specs, outdir, *, camera_path=None, jobs: int = 1, channel=None,
                   plane=None) -> CompressBench:
    """Code every image with every codec, measure each pair and write ``metrics.csv`` and ``summary.json``.

    Parameters
    ----------
    images : sequence of path-like
        Raw 2D integer images.
    specs : sequence of str
        Codec specs (``noisestat codecs`` lists them).
    outdir : path-like
        Output folder, written whole on success and not at all on error; an existing folder is
        replaced only when noisestat wrote it or it is empty (:func:`noisestat.io.check_output_dir`).
    camera_path : path-like, optional
        Camera profile: sets the PSNR/SSIM peak to ``2**bit_depth - 1``, is passed to the codecs,
        and adds the errors in units of the per-pixel noise sigma (:func:`noise_sigma_dn`).
    jobs : int
        Parallel workers (joblib) over (image, codec) pairs; the results do not depend on it.
    channel, plane : int, optional
        The 2D plane read from every multi-channel file or stack (:func:`noisestat.io.read_image_info`).

    Returns
    -------
    CompressBench

    Raises
    ------
    InputError, CodecError, ProfileError
        An unreadable image, a bad spec, an unusable camera profile or one that does not fit an
        image (:meth:`~noisestat.camera.CameraProfile.fit_warnings`; all found before any coding),
        or a codec failing on an image other than by missing its ``ratio=`` target; nothing is
        written then.
    """
    images, specs, arrays, codecs, profile, warnings = _validate(images, specs, camera_path, channel, plane)
    prepare_output_dir(outdir, inputs=[*images, camera_path, *codec_input_files(codecs)])  # before any coding
    bit_depth = profile.bit_depth if profile is not None else None
    prepared = []
    for image in arrays:
        sigma = noise_sigma_dn(image, profile) if profile is not None else None
        prepared.append((sigma, default_data_range(image, bit_depth)))

    tasks = [(name, image, codec, profile, sigma, peak[0])
             for name, image, (sigma, peak) in zip(images, arrays, prepared) for codec in codecs]
    rows = []
    # Results come in task order whatever ``jobs`` is, so the first failing pair is the same.
    results = JoblibExecutor(jobs).map(_run_pair, tasks, [f"{t[0]} {t[2].spec}" for t in tasks])
    for status, value in results:
        if status == "error":
            raise CodecError(value)
        rows.append(value)  # a setting not reachable on an image is a row without metrics
    if rows and all(r["status"] != "ok" for r in rows):
        # nothing was coded at all: no table to write, one line saying why (the first setting's reason)
        raise CodecError(f"compress-bench: no setting could be coded; {rows[0]['status']}")

    sigma_keys = SIGMA_METRICS if profile is not None else ()
    averages = []
    for codec in codecs:
        mine = [r for r in rows if r["spec"] == codec.spec and r["status"] == "ok"]
        missed = [r for r in rows if r["spec"] == codec.spec and r["status"] != "ok"]
        avg = {"spec": codec.spec, "codec": codec.name, "lossless": bool(codec.lossless), "n_images": len(mine),
               "n_not_reachable": len(missed)}
        for key in AVERAGED_METRICS + sigma_keys:
            avg[key] = _mean([r[key] for r in mine]) if mine else None
        known = [r["n_bytes"] for r in mine]
        avg["compression_ratio_pooled"] = (None if not mine or any(n is None for n in known)
                                           else sum(r["raw_bytes"] for r in mine) / sum(known))
        averages.append(avg)

    provenance = {
        "noisestat": __version__,
        "images": [{"path": p, "sha256": file_sha256(p), "shape": list(a.shape), "dtype": str(a.dtype),
                    "data_range_dn": peak[0], "data_range_source": peak[1], "channel": channel, "plane": plane}
                   for p, a, (_, peak) in zip(images, arrays, prepared)],
        "camera": None if camera_path is None else {"path": str(camera_path), "sha256": file_sha256(camera_path),
                                                    "bit_depth": profile.bit_depth,
                                                    "noise_model": profile.noise_model},
    }
    result = CompressBench(tuple(rows), tuple(averages), tuple(images), tuple(specs),
                           None if camera_path is None else str(camera_path), provenance, str(outdir), warnings)
    with staged_directory(outdir, command="compress-bench", inputs=[*images, camera_path]) as tmp:
        write_text_atomic(Path(tmp) / "metrics.csv", metrics_csv(result))
        write_json_atomic(Path(tmp) / "summary.json", summary_dict(result))
    return result


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # shortest exact round-trip form; inf and nan as such
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def metrics_csv(result: CompressBench) -> str:
    """``metrics.csv``: one row per image and codec; ``settings`` holds the codec's info as JSON,
    ``status`` "ok" or "not reachable: ..." (a ``ratio=`` target the codec missed; no metrics)."""
    columns = list(METRIC_COLUMNS) + (list(SIGMA_METRICS) if result.with_camera else []) + ["settings", "status"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in result.rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buffer.getvalue()


def summary_dict(result: CompressBench) -> dict:
    """``summary.json``: per-codec averages over all images, with provenance."""
    return {
        "noisestat": __version__,
        "what": "per-codec arithmetic means over all images of the metrics in metrics.csv",
        "n_images": len(result.images),
        "codecs": list(result.averages),
        "not_reachable": [{"image": r["image"], "spec": r["spec"], "status": r["status"]}
                          for r in result.rows if r["status"] != "ok"],
        "warnings": list(result.warnings),
        "provenance": result.provenance,
    }


def _fmt(value, spec: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return format(value, spec)


def format_bench(result: CompressBench) -> str:
    """The table ``compress-bench`` prints: one line per codec, averages over all images."""
    cols = [("ratio", "compression_ratio", ".2f"), ("psnr_dB", "psnr", ".2f"), ("ssim", "ssim", ".4f"),
            ("ms_ssim", "ms_ssim", ".4f"), ("pearson", "pearson", ".5f")]
    if result.with_camera:
        cols += [("err/sigma_rms", "error_sigma_rms", ".3f"), ("noise_infl", "noise_inflation", ".4f")]
    width = max([len("codec")] + [len(a["spec"]) for a in result.averages])
    header = f"{'codec':<{width}}  {'images':>6}" + "".join(f"  {name:>{max(len(name), 8)}}" for name, _, _ in cols)
    lines = [header]
    for avg in result.averages:
        line = f"{avg['spec']:<{width}}  {avg['n_images']:>6}"
        line += "".join(f"  {_fmt(avg[key], spec):>{max(len(name), 8)}}" for name, key, spec in cols)
        lines.append(line)
    for avg in result.averages:
        if avg["n_not_reachable"]:
            first = next(r["status"] for r in result.rows if r["spec"] == avg["spec"] and r["status"] != "ok")
            first = first[len(NOT_REACHABLE) + 2:]
            first = first[len(avg["spec"]) + 2:] if first.startswith(f"{avg['spec']}: ") else first
            lines.append(f"{avg['spec']}: {NOT_REACHABLE} on {avg['n_not_reachable']} of {len(result.images)} "
                         f"image(s) ({first})")
    lines.append(f"(means over the image(s) each codec reached, {len(result.images)} in all; psnr peak "
                 + ("2^bit_depth-1 of the camera" if result.with_camera else
                    "2^b-1, b the smallest of 8/10/12/14/16 bits holding each image's max") + ")")
    return "\n".join(lines)
