#!/usr/bin/env bash
# The command-line workflow on the demo's simulated camera: make inputs, train a model once,
# assess several codecs with it, and score an image decoded by an external tool.
set -euo pipefail
out=${1:-cli-example}

# 1. The demo writes a raw image, sparse labels and the camera profile (and its own assessment).
noisestat demo -o "$out/demo"

# 2. Train the pixel classifier once; reuse it for every assessment.
noisestat train "$out/demo/raw.tif" --labels "$out/demo/labels.tif" --seed 0 -o "$out/model.npz"

# 3. An "external tool": here Python writes a JPEG-decoded copy, as a vendor codec would.
python - "$out" <<'PY'
import sys, imagecodecs, numpy as np, tifffile
out = sys.argv[1]
raw = tifffile.imread(f"{out}/demo/raw.tif")
lo, hi = int(raw.min()), int(raw.max())
codes = np.rint((raw - lo) * (255 / (hi - lo))).astype(np.uint8)
stream = imagecodecs.jpeg8_encode(codes, level=50)
open(f"{out}/external.jpg", "wb").write(stream)
decoded = lo + imagecodecs.jpeg8_decode(stream) * ((hi - lo) / 255)
tifffile.imwrite(f"{out}/external_decoded.tif", np.rint(decoded).astype(raw.dtype))
PY

# 4. Assess: built-in codecs and the external one, two workers (same numbers as one).
noisestat assess "$out/demo/raw.tif" --camera "$out/demo/camera.json" --model "$out/model.npz" \
    --codec lossless --codec jpeg:quality=50 \
    --codec "file:path=$out/external_decoded.tif,stream=$out/external.jpg" \
    --replicas 10 --seed 0 --jobs 2 -o "$out/assessment"
