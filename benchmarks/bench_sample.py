"""Wall time of an assessment of a simulated nuclei volume: the whole volume against --sample F.

    python benchmarks/bench_sample.py [--shape 32,256,256] [--tile 64] [--fraction 0.25] [--replicas 3]

Both runs train the same forest on the same sparse labels (its time is in both) and assess lossless and
sz3 on one core (jobs 1); printed: each run's wall seconds, its batch seconds (the replicas' and decoded
images' segmentation), the raw objects judged, and N_tot (whole volume, and the sampled run's estimate
with its sampling standard error).
"""

import argparse
import time

import numpy as np

from noisestat import assess
from noisestat._demos3d import simulate_nuclei_volume, sparse_labels_nd
from noisestat.camera import CameraProfile
from noisestat.simulate import acquire

CAMERA = CameraProfile(gain_dn_per_e=0.5, offset_dn=100.0, read_noise_dn=2.0, bit_depth=16)
SPACING = (2.0, 0.5, 0.5)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="32,256,256")
    parser.add_argument("--tile", type=int, default=64)
    parser.add_argument("--fraction", type=float, default=0.25)
    parser.add_argument("--replicas", type=int, default=3)
    args = parser.parse_args()
    shape = tuple(int(v) for v in args.shape.split(","))
    n = int(np.prod(shape) * np.prod(SPACING) / 400)  # about one nucleus per 400 um^3
    electrons, truth = simulate_nuclei_volume(shape, SPACING, n_objects=n, rng=1)
    raw = acquire(electrons, CAMERA, 2)
    labels = sparse_labels_nd(truth, spacing=SPACING, rng=3)
    codecs = ["lossless", "sz3:max_error_sigma=1"]
    print(f"volume {shape}, {n} nuclei wanted, tile {args.tile}, replicas {args.replicas}, jobs 1")
    for sample in (None, args.fraction):
        start = time.perf_counter()
        r = assess(raw, CAMERA, codecs, labels=labels, replicas=args.replicas, seed=0, tile=args.tile,
                   spacing=SPACING, sample=sample)
        wall = time.perf_counter() - start
        g = r.summary()["raw"]["N_tot"]
        se = f" +/- {g['sampling_se']:.1f} (sampling SE)" if "sampling_se" in g else ""
        tiles = "" if sample is None else (f" ({r.provenance['sample']['n_sampled']} of "
                                           f"{r.provenance['sample']['n_tiles']} tiles)")
        print(f"{'whole volume' if sample is None else f'--sample {sample:g}'}{tiles}: {wall:.1f} s wall, batch "
              f"{r.provenance['timing'].get('batch_wall', float('nan')):.1f} s, {len(r.raw)} raw objects judged, "
              f"N_tot {g['value']:.1f}{se}")


if __name__ == "__main__":
    main()
