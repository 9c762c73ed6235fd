"""Compression ratio against error for every registered codec, on the real images of ``../shared/data``.

For each image and each codec of :data:`noisestat.codecs.REGISTRY` that can take it, the codec is
asked for each target ratio (``name:ratio=R``) and the decoded image is measured with
:func:`noisestat.bench.compression_metrics` (PSNR peak: the smallest of 8/10/12/14/16 bits that
holds the image's maximum, as ``compress-bench`` does without a camera). Skipped, with the reason
printed: ``file`` (it decodes nothing itself), codecs needing an optional extra that is not
installed, and codecs needing a camera profile when ``--camera`` is not given. Lossless codecs are
run once (their ratio is what it is); ``bitdepth`` and ``noiseaware``, which have no ``ratio=`` key,
sweep their own knob; any other codec without ``ratio=`` is run once with its defaults. A codec that
cannot reach a ratio prints its CodecError message and the run goes on.

Images (those present): Usiigaci phase contrast set3/set14/set47 ``raw.tif`` (1022x1024, 16-bit
container), BBBC022 Cell Painting channel 0 (395x695, 12-bit), StarDist ``img2d.tif`` (512x512,
8-bit content in uint16).

Writes one PNG per image (RMSE and PSNR against ratio, log x) and ``results.csv`` into the output
folder (default ``bench-codecs-out/``), and prints the numbers.

Usage::

    python benchmarks/bench_codecs.py                      # ratios 2 4 10 20 50 100, all images
    python benchmarks/bench_codecs.py --quick              # ratios 4 20, 256x256 crops: a smoke test
    python benchmarks/bench_codecs.py --jobs 2 --ratios 10 50 -o /tmp/bc

Benchmarks measure and print; they assert nothing.
"""

from __future__ import annotations

import argparse
import csv
import importlib.metadata
import json
import math
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
IMAGES = {
    "usiigaci-set3": ("usiigaci-phase-contrast/set3/raw.tif", None),
    "usiigaci-set14": ("usiigaci-phase-contrast/set14/raw.tif", None),
    "usiigaci-set47": ("usiigaci-phase-contrast/set47/raw.tif", None),
    "bbbc022-ch0": ("bbbc022-cellpainting-12bit/IXMtest_A02_s9.tif", 0),
    "stardist-img2d": ("stardist-dsb2018-nuclei2d/img2d.tif", None),
}
RATIOS = (2, 4, 10, 20, 50, 100)
QUICK_RATIOS = (4, 20)
# Codecs without a ratio= key: their own knob, swept.
SWEEPS = {
    "bitdepth": [f"bitdepth:bits={b},mode=minmax" for b in (12, 10, 8, 6, 4, 2)],
    "noiseaware": [f"noiseaware:step={s}" for s in (0.5, 1, 2, 4, 8)],
}
COLUMNS = ("image", "codec", "spec", "target_ratio", "compression_ratio", "rmse", "psnr", "ssim", "ms_ssim",
           "pearson", "max_abs_error", "bias", "error_sigma_rms", "noise_inflation", "seconds", "settings", "error")


def extra_requirements(extra: str) -> list[str]:
    """Distribution names the optional extra ``extra`` of noisestat needs (pyproject first, then metadata)."""
    names = []
    pyproject = ROOT / "pyproject.toml"
    if pyproject.is_file() and sys.version_info >= (3, 11):
        import tomllib

        deps = tomllib.loads(pyproject.read_text()).get("project", {}).get("optional-dependencies", {})
        names = list(deps.get(extra, []))
    if not names:
        for req in importlib.metadata.requires("noisestat") or []:
            if re.search(rf"extra\s*==\s*['\"]{re.escape(extra)}['\"]", req):
                names.append(req.split(";")[0])
    return [re.split(r"[<>=!~\[ ;]", n.strip(), maxsplit=1)[0] for n in names]


def missing_extra(extra: str) -> list[str]:
    missing = []
    for name in extra_requirements(extra) or [extra]:
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    return missing


def plan(ratios, profile, log=print):
    """(codec name, [(target ratio or None, spec)]) for every codec that can run here."""
    from noisestat.codecs import REGISTRY

    out = []
    for name in sorted(REGISTRY):
        cls = REGISTRY[name]
        if name == "file":
            log(f"skip {name}: decodes nothing itself (reads an image decoded elsewhere)")
            continue
        if cls.extra and missing_extra(cls.extra):
            log(f"skip {name}: needs noisestat[{cls.extra}] ({', '.join(missing_extra(cls.extra))} not installed)")
            continue
        if cls.needs_profile and profile is None:
            log(f"skip {name}: needs a camera profile (--camera)")
            continue
        keys = {k.name for k in cls.keys}
        if cls.lossless:
            out.append((name, [(None, name)]))
        elif "ratio" in keys:
            out.append((name, [(r, f"{name}:ratio={r:g}") for r in ratios]))
        elif name in SWEEPS:
            out.append((name, [(None, s) for s in SWEEPS[name]]))
        else:
            out.append((name, [(None, name)]))
    return out


def load_images(quick: bool):
    import tifffile

    images = {}
    for label, (rel, channel) in IMAGES.items():
        path = DATA / rel
        if not path.is_file():
            print(f"skip image {label}: {path} not found")
            continue
        image = tifffile.imread(path)
        image = np.ascontiguousarray(image[channel] if channel is not None else np.squeeze(image))
        if quick:
            image = np.ascontiguousarray(image[:256, :256])
        images[label] = image
    return images


def run_one(label, image, codec_name, target, spec, profile, sigma):
    """One codec setting on one image: a result row (errors recorded, never raised)."""
    from noisestat.codecs import parse_spec
    from noisestat.errors import NoisestatError
    from noisestat.bench import compression_metrics

    row = {"image": label, "codec": codec_name, "spec": spec, "target_ratio": target}
    start = time.perf_counter()
    try:
        codec = parse_spec(spec)
        codec.prepare(image, profile)
        result = codec.apply(image, profile)
        row["seconds"] = time.perf_counter() - start
        bits = profile.bit_depth if profile is not None else None
        row.update(compression_metrics(image, result.decoded, n_bytes=result.n_bytes, sigma=sigma, bit_depth=bits))
        row["settings"] = json.dumps(result.info, sort_keys=True, default=str)
    except NoisestatError as exc:
        row["error"] = str(exc).splitlines()[0]
    except Exception as exc:  # a codec library failing: record it and go on
        row["error"] = f"{spec}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
    row.setdefault("seconds", time.perf_counter() - start)
    return row


def plot(label, rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_rmse, ax_psnr) = plt.subplots(1, 2, figsize=(12, 4.8))
    codecs = sorted({r["codec"] for r in rows})
    cmap = plt.get_cmap("tab20")
    for i, name in enumerate(codecs):
        pts = sorted((r["compression_ratio"], r["rmse"], r["psnr"]) for r in rows
                     if r["codec"] == name and not r.get("error") and r.get("compression_ratio"))
        if not pts:
            continue
        x, rmse, psnr = (np.array(v, dtype=float) for v in zip(*pts))
        style = dict(marker="o", ms=4, color=cmap(i % 20), label=name)
        lossy = rmse > 0
        if lossy.any():
            ax_rmse.plot(x[lossy], rmse[lossy], **style)
            ax_psnr.plot(x[lossy], psnr[lossy], **style)
        if (~lossy).any():  # exact: no error to plot on a log scale; mark the ratio
            ax_psnr.axvline(x[~lossy][0], color=cmap(i % 20), ls=":", lw=1, label=f"{name} (exact)")
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    for ax, what in ((ax_rmse, "RMSE (DN)"), (ax_psnr, "PSNR (dB)")):
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("compression ratio (raw bytes / stream bytes)")
        ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
    ax_rmse.set_yscale("log")
    ax_psnr.legend(fontsize=7, ncol=2)
    fig.suptitle(f"{label}: error against compression ratio")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fmt(value, spec):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return format(value, spec)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="ratios 4 and 20 on 256x256 crops")
    parser.add_argument("--ratios", type=float, nargs="+", help=f"target ratios (default {' '.join(map(str, RATIOS))})")
    parser.add_argument("--images", nargs="+", choices=sorted(IMAGES), help="only these images")
    parser.add_argument("--codecs", nargs="+", help="only these codecs (registry names)")
    parser.add_argument("--camera", help="camera profile: adds errors in noise sigmas, enables codecs needing one")
    parser.add_argument("--jobs", type=int, default=1, help="parallel (image, setting) runs")
    parser.add_argument("-o", "--output", default="bench-codecs-out", help="output folder (default bench-codecs-out)")
    args = parser.parse_args(argv)

    from joblib import Parallel, delayed

    import noisestat
    from noisestat.camera import load_profile
    from noisestat.codecs import REGISTRY
    from noisestat.bench import noise_sigma_dn

    ratios = tuple(args.ratios) if args.ratios else (QUICK_RATIOS if args.quick else RATIOS)
    profile = load_profile(args.camera) if args.camera else None
    print(f"noisestat {noisestat.__version__}; registered codecs: {', '.join(sorted(REGISTRY))}")
    todo = plan(ratios, profile)
    if args.codecs:
        todo = [(n, s) for n, s in todo if n in args.codecs]
    images = load_images(args.quick)
    if args.images:
        images = {k: v for k, v in images.items() if k in args.images}
    if not images:
        print(f"no images found under {DATA}")
        return 1
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)

    tasks = []
    for label, image in images.items():
        sigma = noise_sigma_dn(image, profile) if profile is not None else None
        for name, settings in todo:
            for target, spec in settings:
                tasks.append(delayed(run_one)(label, image, name, target, spec, profile, sigma))
    started = time.perf_counter()
    rows = Parallel(n_jobs=args.jobs)(tasks)
    total = time.perf_counter() - started

    with open(out / "results.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k) for k in COLUMNS})

    for label, image in images.items():
        mine = [r for r in rows if r["image"] == label]
        print(f"\n== {label}: {image.shape[0]}x{image.shape[1]} {image.dtype}, values {image.min()}..{image.max()}, "
              f"PSNR peak {fmt(next((r['data_range_dn'] for r in mine if 'data_range_dn' in r), None), '.0f')} DN")
        print(f"{'spec':<32} {'ratio':>8} {'rmse_DN':>9} {'psnr_dB':>8} {'ssim':>7} {'ms_ssim':>7} {'maxerr':>7} "
              f"{'s':>6}")
        for r in mine:
            if r.get("error"):
                print(f"{r['spec']:<32} {r['error']}")
                continue
            print(f"{r['spec']:<32} {fmt(r['compression_ratio'], '8.2f')} {fmt(r['rmse'], '9.3f')} "
                  f"{fmt(r['psnr'], '8.2f')} {fmt(r['ssim'], '7.4f')} {fmt(r['ms_ssim'], '7.4f')} "
                  f"{fmt(r['max_abs_error'], '7.0f')} {r['seconds']:6.2f}")
        plot(label, mine, out / f"{label}.png")
    print(f"\n{len(rows)} runs in {total:.1f} s with {args.jobs} job(s); wrote {out}/results.csv and one PNG per image")
    return 0


if __name__ == "__main__":
    sys.exit(main())
