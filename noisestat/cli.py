"""The ``noisestat`` command: a thin layer over the public Python API.

Exit codes: 0 success, 1 error (one line on stderr, no traceback unless ``--debug``), 2 bad usage.
"""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .errors import NoisestatError


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1; got {value}")
    return value


def _jobs(text):
    value = int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be a positive number of workers, or -1 for all cores")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="noisestat", description=(
        "Does a compression setting change what a model measures by more than the camera's own noise?"))
    parser.add_argument("--version", action="version", version=f"noisestat {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("assess", help="score codecs against the raw image's camera noise")
    p.add_argument("image", help="raw 2D image (TIFF, PNG)")
    p.add_argument("--camera", required=True, help="camera profile JSON (see calibration/README.md)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="pixel classifier saved by `noisestat train`")
    source.add_argument("--labels", help="sparse labels: 0 unlabelled, 1 background, 2 object")
    p.add_argument("--codec", action="append", required=True, metavar="SPEC",
                   help="codec spec name:key=value,... (repeat; `noisestat codecs` lists them)")
    p.add_argument("--replicas", type=_positive_int, default=10, help="Monte-Carlo replicas (default 10)")
    p.add_argument("--seed", type=int, default=0, help="the seed of every random choice (default 0)")
    p.add_argument("--jobs", type=_jobs, default=1, help="parallel workers; results do not depend on it")
    p.add_argument("--matching", choices=("iou", "centroid"), default="iou",
                   help="object matching: one-to-one IoU >= 0.5 (default) or the paper's 3 px centroid rule")
    p.add_argument("--min-area", type=int, default=0, metavar="PX",
                   help="discard objects smaller than PX pixels in every image (default 0: keep all)")
    p.add_argument("-o", "--output", required=True, help="output folder")

    p = sub.add_parser("train", help="train a pixel classifier from sparse labels")
    p.add_argument("image")
    p.add_argument("--labels", required=True, help="sparse labels: 0 unlabelled, 1 background, 2 object")
    p.add_argument("--seed", type=int, default=0, help="forest seed (default 0)")
    p.add_argument("--trees", type=_positive_int, default=200, help="number of trees (default 200)")
    p.add_argument("--jobs", type=_jobs, default=1)
    p.add_argument("-o", "--output", required=True, help="model file (.npz)")

    p = sub.add_parser("demo", help="simulate a camera and a scene and run a whole assessment")
    p.add_argument("-o", "--output", default="noisestat-demo", help="output folder (default noisestat-demo)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=_jobs, default=1)

    sub.add_parser("codecs", help="list every codec and its keys")
    return parser


def _assess(args) -> int:
    from .pipeline import assess_files, format_summary

    result = assess_files(args.image, args.camera, args.codec, args.output, model_path=args.model,
                          labels_path=args.labels, replicas=args.replicas, seed=args.seed, jobs=args.jobs,
                          matching=args.matching, min_area=args.min_area)
    print(format_summary(result))
    print(f"wrote {args.output}/summary.json and objects.csv")
    return 0


def _train(args) -> int:
    from ._io import read_image, read_labels
    from .classifier import PixelClassifier, save_model

    image = read_image(args.image)
    labels = read_labels(args.labels, shape=image.shape)
    model = PixelClassifier(n_estimators=args.trees, random_state=args.seed, n_jobs=args.jobs).fit(image, labels)
    save_model(model, args.output)
    d = model.describe()
    print(f"trained {d['n_estimators']} trees on {d['training_pixels']['background']} background and "
          f"{d['training_pixels']['object']} object pixels, {d['n_features']} features, forest seed {d['seed']}")
    print(f"wrote {args.output}")
    return 0


def _demo(args) -> int:
    from .demo import run_demo
    from .pipeline import format_summary

    result = run_demo(args.output, seed=args.seed, jobs=args.jobs)
    print(format_summary(result))
    print(f"wrote {args.output}/ (inputs) and {args.output}/assessment/ (summary.json, objects.csv)")
    return 0


def _codecs(args) -> int:
    from .codecs import describe_codecs

    print(describe_codecs())
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    handler = {"assess": _assess, "train": _train, "demo": _demo, "codecs": _codecs}[args.command]
    try:
        return handler(args)
    except NoisestatError as exc:
        if args.debug:
            raise
        print(f"noisestat: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("noisestat: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
