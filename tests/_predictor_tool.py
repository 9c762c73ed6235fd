"""A stand-in for a user's segmentation tool, run by tests/test_predictor_command.py through
``--predictor-command``: it smooths the image with a Gaussian of 1 px and thresholds it, writing
labels (fully connected components), a 0/255 mask or the smoothed values.

    python _predictor_tool.py INPUT OUTPUT --threshold DN [--output labels|mask|values]
    python _predictor_tool.py INPUT_DIR OUTPUT_DIR --batch ...

``--fail`` makes it misbehave (exit, missing, garbage, shape, float, sleep) once it has been called
``--fail-after`` times before (counted in the ``--calls`` file, one line a call);
``--expect-size X,Z`` makes it fail unless its input says that pixel width (and slice distance).
"""

import argparse
import os
import subprocess
import sys
import time

import numpy as np
import tifffile
from scipy import ndimage as ndi


def predict(image: np.ndarray, threshold: float, output: str) -> np.ndarray:
    smooth = ndi.gaussian_filter(image.astype(np.float64), 1.0)
    if output == "values":
        return smooth.astype(np.float32)
    mask = smooth > threshold
    if output == "mask":
        return mask.astype(np.uint8) * 255
    labels, _ = ndi.label(mask, structure=np.ones((3,) * image.ndim, bool))
    return labels.astype(np.uint16)


def check_size(path: str, expected: str) -> None:
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        x_resolution = page.tags["XResolution"].value if "XResolution" in page.tags else (1, 1)
        spacing = (tif.imagej_metadata or {}).get("spacing")
    x = x_resolution[1] / x_resolution[0]
    want = [float(v) for v in expected.split(",")]
    if abs(x - want[0]) > 1e-6 or (len(want) > 1 and (spacing is None or abs(spacing - want[1]) > 1e-6)):
        sys.exit(f"wrong pixel size in {os.path.basename(path)}: x {x}, z {spacing}; expected {expected}")


def misbehave(how: str, target: str, image: np.ndarray, threshold: float) -> None:
    if how == "exit":
        print("loading model weights.pt", file=sys.stderr)
        print("RuntimeError: the model file is corrupt", file=sys.stderr)
        print("", file=sys.stderr)
        sys.exit(3)
    if how == "missing":
        print("no objects found, nothing written", file=sys.stderr)
        sys.exit(0)
    if how == "garbage":
        with open(target, "w") as handle:
            handle.write("not a tiff")
        return
    if how == "shape":
        tifffile.imwrite(target, predict(image, threshold, "labels")[..., ::2])
        return
    if how == "float":
        tifffile.imwrite(target, predict(image, threshold, "labels").astype(np.float32))
        return
    if how == "sleep":
        # a child in the same process group, as a tool's own workers would be; its pid for the test
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        with open(target + ".child", "w") as handle:
            handle.write(str(child.pid))
        os.replace(target + ".child", os.environ["NOISESTAT_TOOL_CHILD"])
        print("still thinking", file=sys.stderr, flush=True)
        time.sleep(600)
    if how == "daemon":
        # leaves a child running that holds the tool's stderr open, then does its work and exits at once
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        with open(target + ".child", "w") as handle:
            handle.write(str(child.pid))
        os.replace(target + ".child", os.environ["NOISESTAT_TOOL_CHILD"])
        tifffile.imwrite(target, predict(image, threshold, "labels"))
        return
    raise SystemExit(f"unknown --fail {how}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("source")
    p.add_argument("target")
    p.add_argument("--threshold", type=float, required=True)
    p.add_argument("--output", default="labels")
    p.add_argument("--batch", action="store_true")
    p.add_argument("--fail")
    p.add_argument("--fail-after", type=int, default=0)
    p.add_argument("--calls")
    p.add_argument("--expect-size")
    a = p.parse_args()
    before = 0
    if a.calls:
        if os.path.exists(a.calls):
            with open(a.calls) as handle:
                before = len(handle.readlines())
        with open(a.calls, "a") as handle:
            handle.write("call\n")
    if a.batch:
        pairs = [(os.path.join(a.source, n), os.path.join(a.target, n)) for n in sorted(os.listdir(a.source))]
    else:
        pairs = [(a.source, a.target)]
    for source, target in pairs:
        if a.expect_size:
            check_size(source, a.expect_size)
        image = tifffile.imread(source)
        if a.fail and before >= a.fail_after:
            misbehave(a.fail, target, image, a.threshold)
            continue
        tifffile.imwrite(target, predict(image, a.threshold, a.output))


if __name__ == "__main__":
    main()
