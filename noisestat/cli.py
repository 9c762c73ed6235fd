"""The ``noisestat`` command: a thin layer over the public Python API.

Exit codes: 0 success, 1 error (one line on stderr, no traceback unless ``--debug``), 2 bad usage.
"""

from __future__ import annotations

import argparse
import logging
import functools
import os
import signal
import sys
import threading
import time

from . import __version__
from .errors import NoisestatError


# Estimated durations shorter than this are not announced.
ESTIMATE_SHOWN_S = 20.0


def _clock(seconds: float) -> str:
    """``seconds`` as m:ss, or h:mm:ss from an hour on."""
    seconds = max(int(round(seconds)), 0)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class _Progress:
    """A one-line progress bar on stderr, drawn only on a terminal and without --quiet.

    The line is drawn when the block starts, after every finished task and every ``tick_s`` seconds
    in between (so the elapsed time moves while a long task runs). It shows the elapsed time and,
    once a task of the current batch has finished, an ETA: the batch's remaining tasks at the rate
    of its finished ones (a batch starts when the previous one ended, or at the start)."""

    WIDTH = 110  # characters the line may take; cleared with as many spaces

    def __init__(self, label: str, *, quiet: bool = False, stream=None, clock=time.monotonic,
                 tick_s: float | None = 1.0):
        self.stream = stream or sys.stderr
        self.active = not quiet and self.stream.isatty()
        self.quiet = quiet
        self.label = label
        self.clock, self.tick_s = clock, tick_s
        self.start = self.batch_start = self.clock()
        self.state = None  # (name, done, total) of the last finished task
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.ticker = None

    def notice(self, message: str, seconds: float | None = None) -> None:
        """A line said before the long part (an estimated duration of at least
        :data:`ESTIMATE_SHOWN_S`) or on the way (a lost worker), unless --quiet."""
        if self.quiet or (seconds is not None and seconds < ESTIMATE_SHOWN_S):
            return
        with self.lock:
            if self.active:
                self.stream.write("\r" + " " * self.WIDTH + "\r")
            self.stream.write(f"noisestat: {message}\n")
            self.stream.flush()
        if self.active:
            self._draw()

    def line(self) -> str:
        """The progress line as it would be drawn now."""
        now = self.clock()
        elapsed = f"{_clock(now - self.start)} elapsed"
        if self.state is None:
            return f"{self.label}: starting, {elapsed}"
        name, done, total = self.state
        width = 24
        filled = int(width * done / total) if total else width
        eta = ""
        if 0 < done < total:
            rate = (self.last - self.batch_start) / done  # seconds per finished task in this batch
            eta = f", ETA {_clock(max(rate * (total - done) - (now - self.last), 0.0))}"
        return f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {name[:30]:<30} {elapsed}{eta}"

    def _draw(self) -> None:
        with self.lock:
            text = self.line()[:self.WIDTH]
            self.stream.write(f"\r{text:<{self.WIDTH}}")
            self.stream.flush()

    def __call__(self, name: str, done: int, total: int) -> None:
        now = self.clock()
        if self.state is not None and (total != self.state[2] or done <= self.state[1]):
            self.batch_start = self.last  # a new batch: it began when the previous one ended
        self.state, self.last = (name, done, total), now
        if self.active:
            self._draw()

    def _tick(self) -> None:
        while not self.stop.wait(self.tick_s):
            self._draw()

    def __enter__(self):
        self.start = self.batch_start = self.clock()
        if self.active:
            self._draw()
            if self.tick_s:
                self.ticker = threading.Thread(target=self._tick, name="noisestat-progress", daemon=True)
                self.ticker.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        if self.ticker is not None:
            self.ticker.join()
        if self.active:
            self.stream.write("\r" + " " * self.WIDTH + "\r")
            self.stream.flush()
        return False


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1; got {value}")
    return value


def _jobs(text):
    value = int(text)
    if value < 1 and value != -1:
        raise argparse.ArgumentTypeError(f"must be a positive number of workers, or -1 for all cores; got {value}")
    return value


def _tile(text):
    value = int(text)
    if value < 16:
        raise argparse.ArgumentTypeError(f"must be at least 16 pixels; got {value}")
    return value


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer; got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a non-negative integer; got {value}")
    return value


def _cpu_count() -> int:
    """CPU cores this process may run on (its affinity mask where the system has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _usable_jobs(jobs: int) -> int:
    """``--jobs`` as a number of workers: -1 is every core; more than the cores is capped, with a warning."""
    cores = _cpu_count()
    if jobs == -1:
        return cores
    if jobs > cores:
        print(f"noisestat: warning: --jobs {jobs} is more than the {cores} CPU core(s) available; using {cores}",
              file=sys.stderr)
        return cores
    return jobs


_FOLDER_RULE = "an existing folder is replaced only when noisestat wrote it or it is empty"


def _plane_arguments(p) -> None:
    """--channel and --plane: which 2D plane of a multi-channel file or stack to read."""
    p.add_argument("--channel", type=int, metavar="N",
                   help="channel (C, or RGB sample) to read from a multi-channel image, from 0")
    p.add_argument("--plane", type=int, metavar="N",
                   help="plane to read from a stack (Z, T, ... flattened in file order), from 0")


def _scene_arguments(p) -> None:
    """The arguments `assess` and `tune` share: the raw image, its camera, the model, the replicas."""
    p.add_argument("image", help="raw image or volume (TIFF, OME-TIFF, PNG, OME-Zarr)")
    p.add_argument("--camera", required=True, help="camera profile JSON (see calibration/README.md)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="pixel classifier saved by `noisestat train`; assess also takes a label-free "
                                        "model saved by `noisestat train-labelfree` (scored pixel by pixel)")
    source.add_argument("--labels", help="sparse labels: 0 unlabelled, 1 background, 2 object (or classes of object 2, 3, ...)")
    source.add_argument("--predictor-command", metavar="TEMPLATE",
                        help="any tool run on each image: {input} and {output} (or {input_dir} and {output_dir} for "
                             "a batch) are TIFF paths noisestat fills in; docs/predictors.md")
    source.add_argument("--predictor-python", metavar="MODULE:FUNCTION",
                        help="a Python callable (MODULE:FUNCTION or path/to/file.py:FUNCTION) returning a predictor "
                             "or mapping an image to an array; docs/predictors.md")
    p.add_argument("--predictor-output", choices=("labels", "mask", "values"), default="labels",
                   help="what --predictor-command writes or --predictor-python returns (default labels)")
    p.add_argument("--predictor-timeout", type=float, default=None, metavar="SECONDS",
                   help="give up on --predictor-command after this long per call (default: no limit)")
    _run_arguments(p)


def _run_arguments(p) -> None:
    """The arguments `assess`, `tune` and `assess-dataset` share: replicas, seed, engine, matching, verdict, plane."""
    p.add_argument("--replicas", type=_positive_int, default=10, help="Monte-Carlo replicas (default 10)")
    p.add_argument("--seed", type=_seed, default=0, help="the seed of every random choice (default 0)")
    p.add_argument("--jobs", type=_jobs, default=1, help="parallel workers; results do not depend on it")
    p.add_argument("--tile", type=_tile, default=None, metavar="N",
                   help="tile edge in pixels (default: the largest whose features fit 64 MB, 160 MB for volumes); "
                        "results do not "
                        "depend on it, memory does")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on a dask.distributed cluster: tcp://HOST:PORT (running) or local:N (started here, "
                        "N workers); needs noisestat[dask]; results do not depend on it")
    p.add_argument("--matching", choices=("iou", "centroid"), default="iou",
                   help="object matching: one-to-one IoU >= 0.5 (default) or the paper's 3 px centroid rule")
    p.add_argument("--min-area", type=int, default=0, metavar="PX",
                   help="discard objects smaller than PX pixels in every image (default 0: keep all)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--margin", default=None, metavar="KEY=VALUE,...",
                   help="the verdict's margins: shift (sigma_raw, default 1), spread (x a second acquisition's, 1.5), "
                        "loss (x a second acquisition's rate, 2) plus loss_floor (share of objects, 0.06), global "
                        "(sigma_raw, 4), alpha (0.05); docs/verdict.md")
    p.add_argument("--primary", default=None, metavar="NAME,...",
                   help="the parameters the verdict judges (default Area,Perim.,Circ.,Mean,IntDen; 'all')")
    p.add_argument("--verdict-anyway", action="store_true",
                   help="give the verdict even when the raw segmentation is giant, fragmented or unstable")
    _plane_arguments(p)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="noisestat", description=(
        "Does a compression setting change what a model measures by more than the camera's own noise?"))
    parser.add_argument("--version", action="version", version=f"noisestat {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("assess", help="score codecs against the raw image's camera noise")
    _scene_arguments(p)
    p.add_argument("--codec", action="append", required=True, metavar="SPEC",
                   help="codec spec name:key=value,... (repeat; `noisestat codecs` lists them)")
    p.add_argument("--model-seeds", type=int, default=0, metavar="K",
                   help="also retrain the forest with K other seeds and report sigma_model beside sigma_raw")
    p.add_argument("--threshold", default=None, metavar="CLASS=P,...",
                   help="the forest's probability threshold per class of object, e.g. 2=0.7,3=0.5 (default 0.5 each)")
    p.add_argument("--sample", default=None, metavar="F",
                   help="judge a seeded random fraction F in (0, 1] of the tiles of a --tile grid (default: twice "
                        "the engine's tile); globals are extrapolated to the whole image with their sampling error "
                        "(docs/scaling.md)")
    p.add_argument("--operators", action="store_true",
                   help="also score the classifier's own filters per pixel (Gaussian, LoG, gradient magnitude, DoG "
                        "at several scales): operators.csv and its figure")
    p.add_argument("--regions", metavar="LABELS", default=None,
                   help="a value predictor's verdict on its mean over these regions (a label image of the image's "
                        "shape, every label > 0 a region; default: blocks several correlation lengths of its noise "
                        "wide)")
    p.add_argument("--target", metavar="IMAGE", default=None,
                   help="the image a value predictor should match: MSE, SSIM, PSNR and Pearson r against it on raw, "
                        "replicas and codecs, judged")
    opt = p.add_argument_group("optical projection tomography (the image is a projection stack: angles, rows, width)")
    opt.add_argument("--reconstruct", choices=("fbp",), default=None,
                     help="reconstruct every image (raw, replicas, decoded) by filtered back-projection before the "
                          "model; replicas and codecs act on the projections; labels and models live in the "
                          "reconstruction (rows, width, width)")
    turn = opt.add_mutually_exclusive_group()
    turn.add_argument("--angles", metavar="FILE", help="each projection's angle in degrees, in order (default "
                                                       "360 k / n)")
    turn.add_argument("--angles-range", metavar="START,STOP", help="angles evenly spaced from START to STOP degrees")
    opt.add_argument("--center", type=float, metavar="C", help="the rotation axis's column (default width // 2)")
    opt.add_argument("--filter", default=None, help="ramp (default), shepp-logan, cosine, hamming or hann")
    opt.add_argument("--interpolation", default=None, help="linear (default) or nearest")
    p.add_argument("-o", "--output", required=True, help="output folder; " + _FOLDER_RULE)

    p = sub.add_parser("assess-dataset", help="score codecs on every field of a dataset and pool the verdicts")
    _dataset_arguments(p)

    p = sub.add_parser("tune", help="the strongest setting of a codec that is still tolerable")
    _scene_arguments(p)
    p.add_argument("--codec", required=True, metavar="NAME[:KEY=VALUE,...]",
                   help="codec to tune, optionally with fixed keys (e.g. avif:bits=12); its knob is searched")
    p.add_argument("--max-evaluations", type=_positive_int, default=8, help="settings to try at most (default 8)")
    p.add_argument("--sample", default=None, metavar="F",
                   help="judge every setting on the same seeded random fraction F in (0, 1] of the tiles, as "
                        "assess --sample does (docs/scaling.md)")
    p.add_argument("-o", "--output", required=True, help="output folder (tune.json, tune.csv, tune.png); "
                   + _FOLDER_RULE)

    p = sub.add_parser("train", help="train a pixel classifier from sparse labels")
    p.add_argument("image")
    p.add_argument("--labels", required=True, help="sparse labels: 0 unlabelled, 1 background, 2 object (or classes of object 2, 3, ...)")
    p.add_argument("--seed", type=_seed, default=0, help="forest seed (default 0)")
    p.add_argument("--trees", type=_positive_int, default=200, help="number of trees (default 200)")
    p.add_argument("--jobs", type=_jobs, default=1)
    _plane_arguments(p)
    p.add_argument("-o", "--output", required=True, help="model file (.npz)")

    p = sub.add_parser("train-labelfree", help="train a label-free model (a small U-Net) to predict one image from "
                                               "another, on CPU")
    p.add_argument("--input", nargs="+", required=True, metavar="IMAGE",
                   help="input images or volumes (camera images, e.g. bright field); volumes' planes are images")
    p.add_argument("--target", nargs="+", required=True, metavar="IMAGE",
                   help="the images to predict (e.g. a fluorescence channel), one per --input, same order and shape")
    p.add_argument("--steps", type=_positive_int, default=1000, help="optimiser steps (default 1000)")
    p.add_argument("--seed", type=_seed, default=0, help="seeds the weights and the patches (default 0)")
    p.add_argument("--train-codec", metavar="SPEC",
                   help="train on the inputs coded and decoded by this codec instead of the raw inputs")
    p.add_argument("--camera", metavar="PROFILE.json", help="camera profile, for a --train-codec that needs one")
    p.add_argument("-o", "--output", required=True, metavar="MODEL.pt", help="checkpoint file to write")

    p = sub.add_parser("demo", help="simulate a camera and a scene and run a whole assessment")
    p.add_argument("-o", "--output", default="noisestat-demo", help="output folder (default noisestat-demo); "
                   + _FOLDER_RULE)
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--jobs", type=_jobs, default=1)
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--volume", action="store_true",
                      help="a 3D volume of nuclei (anisotropic voxels) and its second acquisition")
    kind.add_argument("--opt", action="store_true",
                      help="optical projection tomography: projections of an organ with plaques, reconstructed")
    p.add_argument("--quiet", action="store_true", help="no progress bar (volume and OPT demos)")

    p = sub.add_parser("calibrate", help="camera profile from a flat-field series or one image")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--emva", metavar="DESCRIPTOR", help="EMVA 1288 descriptor file (release 3.0/4.0 style)")
    source.add_argument("--flat", nargs="+", metavar="LEVEL.tif", help="one multi-page TIFF per light level")
    source.add_argument("--from-image", metavar="IMAGE", help="estimate var(y) = a*y + b from one image")
    p.add_argument("--dark", nargs="+", metavar="DARK.tif", help="dark stacks (with --flat)")
    p.add_argument("--sidecar", metavar="LEVELS.json", help="exposure_s and photons per stack file (with --flat)")
    p.add_argument("--spatial-flat", metavar="STACK.tif",
                   help="spatial set for DSNU/PRNU: many frames at ~50 %% of saturation (with --flat and --spatial-dark)")
    p.add_argument("--spatial-dark", metavar="STACK.tif", help="dark stack of the spatial set, same exposure (with --flat)")
    p.add_argument("--bit-depth", type=_positive_int, help="digitiser bits (default: from the descriptor or data)")
    p.add_argument("--dark-offset", type=float, metavar="DN", help="mean dark value, with --from-image")
    _plane_arguments(p)  # with --from-image
    p.add_argument("--per-pixel", choices=("auto", "yes", "no"), default="auto",
                   help="per-pixel maps (sCMOS): auto = when enough frames are given")
    p.add_argument("--plot", metavar="PTC.png", help="write the photon-transfer plot")
    p.add_argument("-o", "--output", required=True, metavar="PROFILE.json", help="camera profile to write")

    p = sub.add_parser("compress-bench", help="compression ratio and image-quality metrics of codecs")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="raw 2D images")
    p.add_argument("--codec", action="append", required=True, metavar="SPEC", help="codec spec (repeat)")
    p.add_argument("--camera", help="camera profile: adds errors in units of the per-pixel noise sigma")
    p.add_argument("--jobs", type=_jobs, default=1, help="parallel workers; results do not depend on it")
    _plane_arguments(p)
    p.add_argument("-o", "--output", required=True, help="output folder (metrics.csv, summary.json); "
                   + _FOLDER_RULE)

    p = sub.add_parser("codec-train", help="train a 1-channel learned codec (CompressAI) on your images, on CPU")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="training images")
    p.add_argument("--arch", required=True, help="CompressAI architecture, e.g. bmshj2018-factorized")
    p.add_argument("--quality", type=_positive_int, required=True, help="quality level (sets the rate-distortion weight)")
    p.add_argument("--steps", type=_positive_int, default=1000, help="training iterations (default 1000)")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("-o", "--output", required=True, metavar="CHECKPOINT", help="checkpoint file to write")

    p = sub.add_parser("reconstruct", help="optical projection tomography: a projection stack -> a volume, one "
                                           "slice per row (filtered back-projection, as skimage's iradon)")
    p.add_argument("projections", help="the projection stack (angles, rows, width) as the camera wrote it (TIFF, "
                                       "OME-TIFF, OME-Zarr); its rows run along the rotation axis")
    p.add_argument("-o", "--output", required=True, metavar="VOLUME.tif",
                   help="the volume (rows, width, width), float32 ImageJ TIFF, zero outside each slice's inscribed "
                        "circle; never one of the inputs")
    turn = p.add_mutually_exclusive_group()
    turn.add_argument("--angles", metavar="FILE", help="each projection's angle in degrees, in order (a text file; "
                                                       "numbers separated by spaces, commas or lines)")
    turn.add_argument("--angles-range", metavar="START,STOP",
                      help="angles evenly spaced from START to STOP degrees, STOP excluded (default 0,360: "
                           "projection k at 360 k / n)")
    p.add_argument("--center", type=float, metavar="C",
                   help="the column the rotation axis passes through (default the centre column, width // 2)")
    p.add_argument("--filter", default="ramp",
                   help="ramp (default), shepp-logan, cosine, hamming or hann, as iradon's filter_name")
    p.add_argument("--interpolation", default="linear", help="linear (default) or nearest, as iradon's")
    p.add_argument("--camera", metavar="PROFILE.json",
                   help="camera profile: subtract its offset and divide by its gain (per pixel with sCMOS maps) "
                        "before reconstructing, so the volume is in electrons; without it the values are "
                        "reconstructed as written (DN, offset included)")
    p.add_argument("--jobs", type=_jobs, default=1, help="parallel workers, each a tile of rows; the volume does "
                                                         "not depend on it")
    p.add_argument("--quiet", action="store_true", help="no progress bar")

    p = sub.add_parser("codecs", help="list every codec and its keys")
    p.add_argument("--markdown", action="store_true", help="as the Markdown table of docs/codecs.md")
    return parser


def _compress_bench(args) -> int:
    from .bench._run import compress_bench, format_bench

    result = compress_bench(args.images, args.codec, args.output, camera_path=args.camera, jobs=args.jobs,
                            channel=args.channel, plane=args.plane)
    for warning in result.warnings:  # the camera profile checked against each image, as assess does
        print(f"noisestat: warning: {warning}", file=sys.stderr)
    print(format_bench(result))
    print(f"wrote {args.output}/metrics.csv")
    return 0


def _codec_train(args) -> int:
    from .io._files import prepare_output_file
    from .codecs._compressai import train_codec

    prepare_output_file(args.output, inputs=args.images, create_parents=True)  # train_codec wants the folder
    info = train_codec(args.images, arch=args.arch, quality=args.quality, steps=args.steps, seed=args.seed,
                       output=args.output)
    print(" ".join(f"{k} {v}" for k, v in info.items() if not isinstance(v, (dict, list))))
    print(f"wrote {args.output}")
    return 0


def _calibrate(args) -> int:
    from .camera._profile import save_profile
    from .errors import InputError

    if args.flat and not args.dark:
        raise InputError("--flat needs --dark: the offset and dark noise come from frames without light")
    if (args.dark or args.sidecar or args.spatial_flat or args.spatial_dark) and not args.flat:
        raise InputError("--dark, --sidecar, --spatial-flat and --spatial-dark go with --flat")
    if args.dark_offset is not None and not args.from_image:
        raise InputError("--dark-offset goes with --from-image")
    if (args.channel is not None or args.plane is not None) and not args.from_image:
        raise InputError("--channel and --plane go with --from-image (stacks and descriptor frames are read whole)")
    _prepare_calibration_outputs(args)
    if args.from_image:
        from .calibrate import calibrate_image

        profile, fit = calibrate_image(args.from_image, bit_depth=args.bit_depth, offset_dn=args.dark_offset,
                                       channel=args.channel, plane=args.plane)
        for warning in profile.extra.get("calibration_warnings", ()):
            print(f"noisestat: warning: {warning}", file=sys.stderr)
        if args.plot:
            from .calibrate import plot_noise_fit

            plot_noise_fit(fit, args.plot)
        save_profile(profile, args.output)
        print(f"single-image estimate (not a calibration): var(y) = {fit.a:.4g} * y + {fit.b:.4g} DN^2 "
              f"(a ± {fit.a_se:.2g}, b ± {fit.b_se:.2g}) from {fit.n_pixels_used} pixels in "
              f"{len(fit.levels_mean)} level sets")
        print(f"gain_dn_per_e {profile.gain_dn_per_e:.4g}, offset_dn {profile.offset_dn:.4g}, "
              f"read_noise_dn {profile.read_noise_dn:.4g}, bit_depth {profile.bit_depth}")
        print(f"wrote {args.output}")
        return 0
    from .calibrate import calibrate_series, format_calibration, plot_photon_transfer, read_emva_descriptor, read_stacks

    if args.emva:
        series = read_emva_descriptor(args.emva)
    else:
        series = read_stacks(args.flat, args.dark, sidecar=args.sidecar, bit_depth=args.bit_depth,
                             spatial_flat=args.spatial_flat, spatial_dark=args.spatial_dark)
    per_pixel = {"auto": None, "yes": True, "no": False}[args.per_pixel]
    cal = calibrate_series(series, per_pixel=per_pixel, bit_depth=args.bit_depth)
    for warning in cal.warnings:
        print(f"noisestat: warning: {warning}", file=sys.stderr)
    if args.plot:
        plot_photon_transfer(cal.ptc, args.plot)
    save_profile(cal.profile, args.output)
    print(format_calibration(cal))
    print(f"wrote {args.output}" + (f" and {args.plot}" if args.plot else ""))
    return 0


def _prepare_calibration_outputs(args) -> None:
    """The profile, its pixel-map TIFF and the plot: none may be an input or another of them."""
    from pathlib import Path

    from .io._files import prepare_output_file
    from .errors import OutputError

    inputs = [args.emva, args.from_image, args.sidecar, *(args.flat or ()), *(args.dark or ())]
    profile = Path(args.output)
    maps = profile.with_name(f"{profile.stem}_pixelmaps.tif")
    prepare_output_file(profile, inputs=inputs)
    prepare_output_file(maps, inputs=inputs)
    if args.plot:
        prepare_output_file(args.plot, inputs=[*inputs, profile, maps])
        if os.path.realpath(args.plot) in (os.path.realpath(profile), os.path.realpath(maps)):
            raise OutputError(f"{args.plot}: --plot names the profile or its pixel-map file; give another name")


def _assess(args) -> int:
    from .pipeline import assess_files, format_summary

    with _Progress("assess", quiet=args.quiet) as progress:
        result = assess_files(args.image, args.camera, args.codec, args.output, model_path=args.model,
                              labels_path=args.labels, replicas=args.replicas, seed=args.seed, jobs=args.jobs,
                              matching=args.matching, min_area=args.min_area, model_seeds=args.model_seeds,
                              progress=progress, channel=args.channel, plane=args.plane, tile=args.tile,
                              scheduler=args.scheduler, notice=progress.notice, margins=args.margin,
                              primary=args.primary, verdict_anyway=args.verdict_anyway,
                              reconstruct=_reconstruction(args), thresholds=args.threshold,
                              operators=args.operators, sample=args.sample,
                              predictor_command=args.predictor_command, predictor_python=args.predictor_python,
                              predictor_output=args.predictor_output, predictor_timeout=args.predictor_timeout,
                              regions_path=args.regions, target_path=args.target)
    from .results import ValueAssessment

    if isinstance(result, ValueAssessment):  # a value per pixel (--predictor-output values, a network)
        from .report._values import format_value_summary

        print(format_value_summary(result))
        print(f"wrote {args.output}/report.html, summary.json, pixels.csv and maps/ (sigma_raw, values and eps "
              f"per codec)")
        return 0
    print(format_summary(result))
    print(f"wrote {args.output}/report.html, summary.json, objects.csv and objects.parquet")
    return 0


def _dataset_arguments(p) -> None:
    """`assess-dataset`: the dataset CSV, the defaults of its empty cells, the codecs, and what `assess` runs with."""
    p.add_argument("dataset", help="CSV with a header: image (required), camera, labels, model, target; one row per "
                                   "field, paths relative to the CSV's folder (docs/datasets.md)")
    p.add_argument("--camera", help="camera profile JSON for rows whose camera cell is empty")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--model", help="pixel classifier for rows whose model and labels cells are empty")
    source.add_argument("--labels", help="sparse labels for rows whose model and labels cells are empty")
    source.add_argument("--predictor-command", metavar="TEMPLATE",
                        help="a tool run on each image, for rows whose model and labels cells are empty "
                             "(docs/predictors.md)")
    source.add_argument("--predictor-python", metavar="MODULE:FUNCTION",
                        help="a Python callable, for rows whose model and labels cells are empty (docs/predictors.md)")
    p.add_argument("--target", help="target image for rows whose target cell is empty")
    p.add_argument("--predictor-output", choices=("labels", "mask"), default="labels",
                   help="what --predictor-command writes or --predictor-python returns (default labels)")
    p.add_argument("--predictor-timeout", type=float, default=None, metavar="SECONDS",
                   help="give up on --predictor-command after this long per call (default: no limit)")
    _run_arguments(p)
    p.add_argument("--codec", action="append", required=True, metavar="SPEC",
                   help="codec spec name:key=value,... (repeat; `noisestat codecs` lists them)")
    p.add_argument("-o", "--output", required=True,
                   help="output folder: one folder per field, summary.json, fields.csv, report.html; rerun the same "
                        "command to resume (finished fields are kept)")


def _assess_dataset(args) -> int:
    from .dataset import assess_dataset

    finished = []
    with _Progress("field", quiet=args.quiet) as progress:
        def on_field(name, number, total, state):
            if state not in ("running", "reused"):
                finished.append(name)
            what = {"running": "running", "reused": "finished earlier with the same inputs and settings: kept"}
            progress.notice(f"field {number}/{total} {name}: {what.get(state, state)}")

        try:
            result = assess_dataset(args.dataset, args.codec, args.output, camera=args.camera, labels=args.labels,
                                    model=args.model, target=args.target, predictor_command=args.predictor_command,
                                    predictor_python=args.predictor_python, predictor_output=args.predictor_output,
                                    predictor_timeout=args.predictor_timeout, replicas=args.replicas, seed=args.seed,
                                    jobs=args.jobs, scheduler=args.scheduler, matching=args.matching,
                                    min_area=args.min_area, margins=args.margin, primary=args.primary,
                                    verdict_anyway=args.verdict_anyway, tile=args.tile, channel=args.channel,
                                    plane=args.plane, progress=progress, notice=progress.notice, on_field=on_field)
        except KeyboardInterrupt as exc:
            if isinstance(exc, _Terminated) or not finished:
                raise
            print(f"\nnoisestat: interrupted; the {len(finished)} field(s) finished in this run are kept in "
                  f"{args.output}: run the same command again to resume", file=sys.stderr)
            return 130
    for c in result.summary["codecs"]:
        fr = c["field_counts"]
        print(f"{c['spec']}: {c['outcome'].upper()} over {c['fields']} fields (tolerable in {fr['tolerable_fields']}, "
              f"not tolerable in {fr['not_tolerable_fields']}; their simulated second acquisitions tolerable in "
              f"{fr['null_tolerable_fields']})")
        for reason in c["reasons"]:
            print(f"  {reason}")
    print(f"wrote {args.output}/summary.json, fields.csv, report.html and one folder per field "
          f"({len(result.ran)} run, {len(result.reused)} kept from an earlier run)")
    return 0


def _reconstruction(args):
    """``--reconstruct`` and its settings for :func:`noisestat.pipeline.assess_files` (None without it); the
    angles as a function of the number of projections, which only the file knows."""
    if args.reconstruct is None:
        for flag, value in (("--angles", args.angles), ("--angles-range", args.angles_range),
                            ("--center", args.center), ("--filter", args.filter),
                            ("--interpolation", args.interpolation)):
            if value is not None:
                from .errors import InputError

                raise InputError(f"{flag} sets up a reconstruction: give --reconstruct fbp with it")
        return None
    return {"method": args.reconstruct, "center": args.center, "filter": args.filter or "ramp",
            "interpolation": args.interpolation or "linear",
            "angles": functools.partial(_reconstruction_angles, args, source=args.image)}


def _tune(args) -> int:
    from .io._files import prepare_output_dir, read_image_info, read_labels
    from .camera._profile import load_profile
    from .predict._forest import load_model
    from .tune import format_tune, tune, write_tune

    image, info = read_image_info(args.image, channel=args.channel, plane=args.plane)
    profile = load_profile(args.camera)
    model = load_model(args.model) if args.model else None
    labels = read_labels(args.labels, shape=image.shape) if args.labels else None
    prepare_output_dir(args.output, inputs=[args.image, args.camera, args.model, args.labels])
    with _Progress("tune", quiet=args.quiet) as progress:
        result = tune(image, profile, args.codec, model=model, labels=labels, replicas=args.replicas, seed=args.seed,
                      jobs=args.jobs, matching=args.matching, min_area=args.min_area,
                      max_evaluations=args.max_evaluations, progress=progress, tile=args.tile,
                      scheduler=args.scheduler, notice=progress.notice, margins=args.margin, primary=args.primary,
                      verdict_anyway=args.verdict_anyway, spacing=info.spacing if image.ndim == 3 else None,
                      sample=args.sample)
    write_tune(result, args.output)
    print(format_tune(result))
    print(f"wrote {args.output}/tune.json, tune.csv, tune.png")
    return 0


def _train(args) -> int:
    import numpy as np

    from .errors import InputError
    from .io import read_array_info
    from .io._files import prepare_output_file, read_image_info, read_labels
    from .predict._forest import PixelClassifier, save_model

    # a raw image (integers, with the raw image's checks), or a volume of reals such as the reconstruction
    # `noisestat reconstruct --camera` writes for an OPT model (the values `assess --reconstruct` sees)
    image, info = read_array_info(args.image, channel=args.channel, plane=args.plane)
    if image.dtype.kind in "iub":
        image, info = read_image_info(args.image, channel=args.channel, plane=args.plane)
    elif not np.isfinite(image).all():
        raise InputError(f"{args.image}: holds NaN or infinite values ({int((~np.isfinite(image)).sum())} pixels)")
    elif not image.size or image.min() == image.max():
        raise InputError(f"{args.image}: every pixel has the same value; there is nothing to learn from")
    labels = read_labels(args.labels, shape=image.shape)
    prepare_output_file(args.output, inputs=[args.image, args.labels])
    # images: Weka's 2D features; volumes: the ilastik-style n-D set (as `assess --labels` trains)
    model = PixelClassifier(n_estimators=args.trees, random_state=args.seed, n_jobs=args.jobs,
                            **({} if image.ndim == 2 else {"feature_set": "ilastik", "spacing": info.spacing}))
    model.fit(image, labels)
    save_model(model, args.output)
    d = model.describe()
    print(f"trained {d['n_estimators']} trees on {d['training_pixels']['background']} background and "
          f"{d['training_pixels']['object']} object pixels, {d['n_features']} features, forest seed {d['seed']}")
    print(f"wrote {args.output}")
    return 0


def _train_labelfree(args) -> int:
    from .predict._labelfree import train_labelfree_files

    model, warnings = train_labelfree_files(args.input, args.target, args.output, steps=args.steps, seed=args.seed,
                                            codec=args.train_codec, camera=args.camera)
    for warning in warnings:
        print(f"noisestat: warning: {warning}", file=sys.stderr)
    t, arch = model.header["training"], model.header["arch"]
    coded = f" coded by {t['codec']}" if t["codec"] else ""
    print(f"trained a U-Net (depth {arch['depth']}, width {arch['width']}) for {t['steps']} steps on {t['planes']} "
          f"plane(s){coded} in {model.training_seconds:.1f} s; final loss {t['loss']:.4g} (MSE over the target's variance)")
    print(f"wrote {args.output}")
    return 0


def _demo(args) -> int:
    from .demo import demo_opt, demo_volume, run_demo
    from .pipeline import format_summary

    if args.volume or args.opt:
        run = demo_volume if args.volume else demo_opt
        with _Progress("demo", quiet=args.quiet) as progress:
            result = run(args.output, jobs=args.jobs, seed=args.seed, progress=progress, notice=progress.notice)
    else:
        result = run_demo(args.output, seed=args.seed, jobs=args.jobs)
    demo = result.provenance["demo"]
    print(f"calibrated the simulated camera: K = {demo['calibrated_gain_dn_per_e']:.4f} DN/e- "
          f"(true {demo['true_gain_dn_per_e']}); profile in {args.output}/camera.json, plot in {args.output}/ptc.png")
    print(format_summary(result))
    print(f"wrote {args.output}/ (inputs) and {args.output}/assessment/ (report.html, summary.json, objects.csv)")
    return 0


class _Unnamed:
    """A file handle without its name: the atomic writer's handle is named by its descriptor number,
    which tifffile would take for a path."""

    def __init__(self, handle):
        self._handle = handle

    def __getattr__(self, attr):
        if attr == "name":
            raise AttributeError(attr)
        return getattr(self._handle, attr)


def _reconstruction_angles(args, count: int, source: str):
    """The angles in degrees from --angles FILE or --angles-range START,STOP; None for the default turn."""
    import numpy as np

    from .errors import InputError

    if args.angles_range is not None:
        parts = args.angles_range.split(",")
        try:
            start, stop = (float(v) for v in parts) if len(parts) == 2 else (None, None)
        except ValueError:
            start = stop = None
        if start is None or not (np.isfinite(start) and np.isfinite(stop)) or start == stop:
            raise InputError(f"--angles-range: expected START,STOP in degrees (two different numbers, e.g. 0,360); "
                             f"got {args.angles_range!r}")
        return start + (stop - start) * np.arange(count) / count
    if args.angles is None:
        return None
    try:
        with open(args.angles, encoding="utf-8") as handle:
            words = handle.read().replace(",", " ").split()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{args.angles}: cannot read the angles ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        angles = np.array([float(w) for w in words])
    except ValueError as exc:
        raise InputError(f"{args.angles}: the angles must be numbers in degrees ({exc})") from None
    if angles.size != count or not np.isfinite(angles).all():
        raise InputError(f"{args.angles}: expected {count} finite angles in degrees, one per projection of {source}; "
                         f"got {angles.size}" + ("" if np.isfinite(angles).all() else " with NaN or infinities"))
    return angles


def _reconstruct(args) -> int:
    import json

    import numpy as np
    import tifffile

    from .camera._profile import load_profile
    from .engine import make_executor
    from .errors import InputError
    from .io import atomic_file, prepare_output_file, read_projections
    from .reconstruct import ROWS_PER_BLOCK, describe_fbp, fbp_rows
    from .reconstruct._domain import check_projections

    source = args.projections
    camera = load_profile(args.camera) if args.camera else None
    prepare_output_file(args.output, inputs=[source, args.camera, args.angles])
    stack, info = read_projections(source)  # integers as the camera wrote them, or reals (e.g. flat-fielded)
    check_projections(stack, name=source, integers=False)
    count, rows, width = stack.shape
    angles = _reconstruction_angles(args, count, source)
    settings = describe_fbp(stack.shape, angles, args.center, args.filter, args.interpolation, name=source)
    tiles = [(a, min(rows, a + ROWS_PER_BLOCK)) for a in range(0, rows, ROWS_PER_BLOCK)]
    task = functools.partial(fbp_rows, profile=camera, name=source)
    arguments = [(stack, slice(a, b), angles, args.center, args.filter, args.interpolation, np.float32)
                 for a, b in tiles]
    volume = np.empty((rows, width, width), np.float32)
    names = [f"rows {a}-{b - 1}" for a, b in tiles]
    with make_executor(args.jobs, threads=True) as executor, _Progress("reconstruct", quiet=args.quiet) as progress:
        group = 2 * max(1, executor.workers)  # tiles per round: only a round's results wait to be copied
        for g in range(0, len(tiles), group):
            def told(name, done, total, g=g):
                progress(name, g + done, len(tiles))

            blocks = executor.map(task, arguments[g:g + group], names[g:g + group], progress=told)
            for (a, b), block in zip(tiles[g:g + group], blocks):
                volume[a:b] = block
            del blocks
    values = "electrons above the camera's offset" if camera is not None else "as written (DN)"
    record = {"noisestat": __version__, "projections": os.path.basename(source), "values": values, **settings}
    metadata, extra = {"axes": "ZYX", "Info": json.dumps(record)}, {}
    if info.pixel_size is not None:  # a slice's pixel is the detector's across the axis, a slice one row apart
        size = info.pixel_size
        extra["resolution"] = (1.0 / float(size.x), 1.0 / float(size.x))
        metadata.update(unit=size.unit.replace("µ", "\\u00B5"), spacing=float(size.y))
    with atomic_file(args.output) as handle:  # streamed from the volume, no copy
        tifffile.imwrite(_Unnamed(handle), volume, imagej=True, metadata=metadata, **extra)
    print(f"reconstructed {rows} slices of {width} x {width} from {count} projections ({args.filter} filter, "
          f"{args.interpolation} interpolation, axis at column {settings['center_px']:g}, values "
          f"{values})")
    print(f"wrote {args.output}")
    return 0


def _codecs(args) -> int:
    from .codecs import describe_codecs, describe_codecs_markdown

    print(describe_codecs_markdown() if args.markdown else describe_codecs())
    return 0


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that every ``with`` block cleans up as on Ctrl-C."""


# Set once SIGTERM arrived: an error raised while the run unwinds (a worker process stopped under
# a task, a file closed) is then the termination, not a failure of its own.
_TERMINATING = threading.Event()


def _on_sigterm(signum, frame):
    _TERMINATING.set()
    raise _Terminated()


def _terminated() -> int:
    print("noisestat: terminated; no partial output was left", file=sys.stderr)
    return 128 + signal.SIGTERM


def main(argv=None) -> int:
    # Ctrl-C and SIGTERM are handled from the first line on: the heavy imports (numpy, scikit-learn,
    # dask) happen inside, when a command needs them, so an early interrupt is one line too.
    in_main_thread = threading.current_thread() is threading.main_thread()
    # tifffile logs what it finds odd in a file (e.g. "incorrect StripOffsets count") on stderr; noisestat
    # says in one line what is wrong with a file it cannot use, so those lines would only add noise
    logging.getLogger("tifffile").setLevel(logging.ERROR)
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main_thread else None
    _TERMINATING.clear()
    args = argparse.Namespace(debug=False)
    try:
        args = _parser().parse_args(argv)
        if hasattr(args, "jobs"):
            args.jobs = _usable_jobs(args.jobs)
        handler = {"assess": _assess, "train": _train, "demo": _demo, "codecs": _codecs, "calibrate": _calibrate,
                   "compress-bench": _compress_bench, "codec-train": _codec_train, "tune": _tune,
                   "train-labelfree": _train_labelfree,
                   "reconstruct": _reconstruct, "assess-dataset": _assess_dataset}[args.command]
        from .engine._executors import watch_workers

        watch_workers()
        return handler(args)
    except NoisestatError as exc:
        if _TERMINATING.is_set():
            return _terminated()
        if args.debug:
            raise
        print(f"noisestat: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # a write noisestat did not expect to fail (the writers raise OutputError)
        if _TERMINATING.is_set():
            return _terminated()
        if args.debug:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"noisestat: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1
    except _Terminated:
        return _terminated()
    except KeyboardInterrupt:
        print("noisestat: interrupted; no partial output was left", file=sys.stderr)
        return 130
    except Exception:
        if _TERMINATING.is_set():  # e.g. joblib's error for a worker stopped while the run unwinds
            return _terminated()
        raise
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


if __name__ == "__main__":
    sys.exit(main())
