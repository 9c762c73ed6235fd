"""The replicas' width against the truth on volumes and on OPT: per object and parameter, the variance
over replicas divided by the variance over independent acquisitions of the same simulated scene
(median over objects; with equal widths it reads the median of F(R - 1, M - 1), about 0.95 for 10
replicas and 30 acquisitions).

* ``volume``: nuclei in an anisotropic volume (benchmarks/bench_volume_verdict.py's scene), bright
  (400 e- on 20 e-) or dim (40 e- on 5 e-), replicas drawn as a volume's are (``pixel-as-mean``);
* ``opt``: the demo's OPT phantom (noisestat._demos3d), replicas drawn on the projections and
  reconstructed, against true re-acquisitions of the projections reconstructed; also per voxel of the
  reconstruction.

    python benchmarks/bench_replica_width_3d.py volume --scene dim --seeds 6
    python benchmarks/bench_replica_width_3d.py opt --seeds 6

The forest is trained once per scene on its raw image (noisestat's build_reference) and segments every
replica and acquisition (segment_and_match). Prints a markdown table; docs/replicas.md quotes it.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import stats

import bench_volume_verdict as scene_volume
from noisestat._demos3d import simulate_opt_phantom
from noisestat._reference import build_reference, segment_and_match
from noisestat.reconstruct._domain import Reconstructed, parse_reconstruction
from noisestat.replicas import draw_replica, replica_seeds
from noisestat.score._eps import replica_spread
from noisestat.simulate import acquire

PARAMETERS = ("Volume", "SurfaceArea", "Sphericity", "MeanBreadth", "Centroid.X", "Centroid.Y", "Centroid.Z", "Mean",
              "IntDen")


def _volume_scene(seed: int, objects: int, dim: bool):
    if dim:
        scene_volume.BACKGROUND_E, scene_volume.OBJECT_E = 5.0, 40.0
    electrons, truth = scene_volume.nuclei_volume(objects, [seed, objects])
    labels = scene_volume.scribbles(truth, [seed, objects, 3])
    return electrons, labels, scene_volume.CAMERA, scene_volume.SPACING, None


def _opt_scene(seed: int):
    from skimage.transform import radon

    from noisestat.camera._profile import CameraProfile

    rng = np.random.default_rng([seed, 5])
    density, truth = simulate_opt_phantom(rows=8, width=96, n_plaques=12, rng=rng)
    theta = np.linspace(0.0, 360.0, 96, endpoint=False)
    sinograms = np.stack([radon(plane, theta=theta, circle=True) for plane in density])
    electrons = 20.0 + 40.0 * np.transpose(sinograms, (2, 0, 1))
    labels = np.zeros(truth.shape, np.uint8)
    pick = rng.random(truth.shape)
    yy, xx = np.mgrid[:96, :96] - 47.5
    inside = np.broadcast_to(yy ** 2 + xx ** 2 <= 44 ** 2, truth.shape)
    labels[~truth & inside & (pick < 0.03)] = 1
    labels[truth & (pick < 0.3)] = 2
    camera = CameraProfile(gain_dn_per_e=0.5, offset_dn=100.0, read_noise_dn=2.0, bit_depth=16)
    return electrons, labels, camera, (1.0, 1.0, 1.0), parse_reconstruction("fbp")


def run(kind: str, seeds, replicas: int, acquisitions: int, objects: int, dim: bool) -> dict:
    ratios = {p: [] for p in PARAMETERS}
    voxel = []
    for seed in seeds:
        start = time.time()
        electrons, labels, camera, spacing, rec = (_opt_scene(seed) if kind == "opt"
                                                   else _volume_scene(seed, objects, dim))
        raw = acquire(electrons, camera, [seed, 1])
        domain = raw if rec is None else Reconstructed(raw, rec, camera)
        wrap = (lambda a: a) if rec is None else domain.of
        ref, _ = build_reference(domain, camera, labels=labels, replicas=2, seed=seed, spacing=spacing)
        truth = [wrap(acquire(electrons, camera, [seed, 1000 + k])) for k in range(acquisitions)]
        reps = [wrap(draw_replica(raw, camera, s, mode="pixel-as-mean")) for s in replica_seeds([seed, 7], replicas)]
        if rec is not None:
            vt = np.stack([a.volume() for a in truth]).var(axis=0, ddof=1)
            vr = np.stack([r.volume() for r in reps]).var(axis=0, ddof=1)
            ok = vt > 0
            voxel.append(float(np.median(vr[ok] / vt[ok])))
        true_stack = np.stack([segment_and_match(ref, a).values for a in truth])
        rep_stack = np.stack([segment_and_match(ref, r).values for r in reps])
        angular = np.zeros(true_stack.shape[-1], bool)
        s_true, _ = replica_spread(ref.raw.values, true_stack, angular)
        s_rep, _ = replica_spread(ref.raw.values, rep_stack, angular)
        for p in PARAMETERS:
            j = ref.parameters.index(p)
            ok = np.isfinite(s_true[:, j]) & np.isfinite(s_rep[:, j]) & (s_true[:, j] > 0) & (s_rep[:, j] > 0)
            ratios[p] += list((s_rep[ok, j] / s_true[ok, j]) ** 2)
        print(f"seed {seed}: {len(ref.raw)} objects, {time.time() - start:.0f} s", flush=True)
    return {"ratios": ratios, "voxel": voxel}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=("volume", "opt"))
    parser.add_argument("--scene", choices=("bright", "dim"), default="bright", help="volume only")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--objects", type=int, default=40, help="nuclei per volume (volume only)")
    parser.add_argument("--replicas", type=int, default=10)
    parser.add_argument("--acquisitions", type=int, default=30)
    args = parser.parse_args()
    out = run(args.kind, range(args.seeds), args.replicas, args.acquisitions, args.objects, args.scene == "dim")
    expected = stats.f.median(args.replicas - 1, args.acquisitions - 1)
    rng = np.random.default_rng(0)
    print(f"\n{args.kind} ({args.scene if args.kind == 'volume' else 'projections'}), {args.seeds} scenes, "
          f"{args.replicas} replicas against {args.acquisitions} acquisitions; equal widths read {expected:.2f}\n")
    print("| parameter | replica / true variance, median over objects | objects |")
    print("|---|---|---|")
    for p, x in out["ratios"].items():
        x = np.asarray(x)
        if len(x):
            se = np.median(rng.choice(x, (300, len(x))), axis=1).std()
            print(f"| {p} | {np.median(x):.2f} +- {se:.2f} | {len(x)} |")
    if out["voxel"]:
        print(f"\nper voxel of the reconstruction (median per scene): {', '.join(f'{v:.3f}' for v in out['voxel'])}")


if __name__ == "__main__":
    main()
