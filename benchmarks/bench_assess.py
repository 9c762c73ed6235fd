"""Time ``noisestat.assess`` against the straightforward loop a user would write for the same job.

Both sides do one job: train a random-forest pixel classifier (200 trees, 2 features per split)
from sparse labels on a raw image, segment the raw image, N Monte-Carlo replicas of it and the
decoded image of every codec (threshold 0.5, 8-connected objects), measure the objects, match them
to the raw objects by IoU >= 0.5, take the spread over replicas (sigma_raw) and score each codec
with eps = (chi_raw - chi_codec) / sigma_raw.

* ``naive``: scikit-image's ``multiscale_basic_features`` (sigma 1..16), scikit-learn's
  ``RandomForestClassifier``, ``skimage.measure.label`` and ``regionprops_table``, replicas drawn
  with numpy one after another, a plain matching loop; one process, one image after another.
* ``noisestat``: one call of :func:`noisestat.assess` (70 Weka-style features, 19 ImageJ-style
  parameters, replicas and codecs as parallel tasks with ``jobs`` workers).

Both sides get their decoded images from noisestat's codecs: the comparison is about the
assessment machinery, not about the codecs. The two sides do not compute the same numbers
(different features, different parameters); the eps summaries they print are a sanity check that
each did the whole job, not a comparison of results.

Each side runs in its own fresh Python process (this script started again with a hidden flag), so
that neither inherits the other's imports, caches or memory. Reported:

* wall s: time of the work alone, from the loaded inputs to the scores (imports and the reading of
  the inputs excluded);
* self MiB: ``getrusage(RUSAGE_SELF).ru_maxrss`` of that process (peak resident set);
* workers MiB: ``getrusage(RUSAGE_CHILDREN).ru_maxrss``, the peak of the *largest single* worker
  process joblib started (0 with one job). It is not a sum over workers;
* tree PSS MiB: the peak of the summed proportional set size (``/proc/<pid>/smaps_rollup``) of the
  process and all its descendants, sampled every 0.1 s by the parent. PSS splits shared pages
  between the processes sharing them, so the sum does not count joblib's memory-mapped arrays
  twice; sampling can miss short spikes. Linux only ("-" elsewhere).

Usage::

    python benchmarks/bench_assess.py                 # 1024x1024 simulated image, 10 replicas
    python benchmarks/bench_assess.py --quick         # 256x256, 3 replicas: a smoke test
    python benchmarks/bench_assess.py --jobs 2        # noisestat with 2 workers (and with 1)
    python benchmarks/bench_assess.py --real ../shared/data/usiigaci-phase-contrast/set3/raw.tif

Benchmarks measure and print; they assert nothing about times.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np

CODECS = ("lossless", "bitdepth:bits=8,mode=minmax", "jpeg:ratio=10", "jpeg:ratio=100")
DEFAULT_SIZE, DEFAULT_REPLICAS = 1024, 10
QUICK_SIZE, QUICK_REPLICAS = 256, 3
OBJECT, BACKGROUND = 2, 1

# The properties of regionprops_table closest to noisestat's ImageJ-style parameters.
NAIVE_PROPERTIES = ("label", "area", "centroid", "perimeter", "axis_major_length", "axis_minor_length",
                    "orientation", "eccentricity", "solidity", "extent", "feret_diameter_max", "bbox")


# --------------------------------------------------------------------------------------------
# The job: one raw image, its sparse labels and a camera profile
# --------------------------------------------------------------------------------------------

def simulated_job(size: int, seed: int):
    """A simulated raw image of ``size`` x ``size`` pixels with sparse labels, by the demo camera.

    Returns
    -------
    image : ndarray of uint16
    labels : ndarray of uint8
        0 unlabelled, 1 background, 2 object.
    profile : noisestat.CameraProfile
    description : str
    """
    from noisestat.simulate import DEMO_CAMERA, acquire, simulate_scene, sparse_labels

    rng = np.random.default_rng(seed)
    electrons, truth = simulate_scene((size, size), rng=rng)
    image = acquire(electrons, DEMO_CAMERA, rng)
    labels = sparse_labels(truth, rng=rng)
    return image, labels, DEMO_CAMERA, f"simulated {size}x{size} (simulate_scene + acquire, seed {seed})"


def real_job(path: Path, mask_path: Path, camera_path: Path | None, crop: int | None, seed: int):
    """A real raw image with sparse labels drawn from its instance mask.

    Labels: a random 1 % of the pixels, "object" where a pixel lies at least 3 px inside its own
    instance (each instance eroded on its own, so that touching cells stay apart), "background"
    where it lies more than 4 px away from every instance: the scribbles a user would draw.
    Without ``camera_path`` the demo camera is used: the noise it draws is then not this
    camera's, which changes the eps values but not the amount of work.
    """
    import imagecodecs
    import tifffile
    from scipy import ndimage as ndi

    from noisestat import load_profile
    from noisestat.simulate import DEMO_CAMERA

    image = np.asarray(tifffile.imread(path))
    instances = np.asarray(imagecodecs.imread(mask_path)).astype(np.int32)
    if image.ndim != 2 or instances.shape != image.shape:
        raise SystemExit(f"{path}: expected a 2D image and a mask of the same shape; got {image.shape} "
                         f"and {instances.shape}")
    if crop:
        image, instances = image[:crop, :crop], instances[:crop, :crop]
    window = np.ones((7, 7), bool)  # 7x7: a pixel is "3 px inside" if its whole window is one instance
    inside = ((ndi.maximum_filter(instances, footprint=window) == instances)
              & (ndi.minimum_filter(instances, footprint=window) == instances) & (instances > 0))
    far = ~ndi.binary_dilation(instances > 0, iterations=4)
    pick = np.random.default_rng(seed).random(image.shape) < 0.01
    labels = np.zeros(image.shape, np.uint8)
    labels[pick & far] = BACKGROUND
    labels[pick & inside] = OBJECT
    profile = load_profile(camera_path) if camera_path else DEMO_CAMERA
    camera = str(camera_path) if camera_path else "demo camera (no --camera given)"
    rows, cols = image.shape
    return image, labels, profile, f"real {path} {rows}x{cols}, labels from {mask_path.name}, camera: {camera}"


# --------------------------------------------------------------------------------------------
# The straightforward loop
# --------------------------------------------------------------------------------------------

def naive_assess(image, labels, profile, codec_specs, replicas, seed):
    """The assessment as a competent user would write it with scikit-image and scikit-learn.

    One process, one image after another, library defaults wherever the job allows them.

    Returns
    -------
    dict
        ``n_raw`` objects on the raw image, ``stages`` (seconds), ``codecs`` (per codec: matched
        objects, median |eps|, fraction of finite eps inside (-1, 1)).
    """
    from skimage.feature import multiscale_basic_features
    from skimage.measure import label, regionprops_table
    from sklearn.ensemble import RandomForestClassifier

    from noisestat.codecs import parse_spec

    stages = {}
    clock = time.perf_counter()

    def lap(name):
        nonlocal clock
        now = time.perf_counter()
        stages[name] = now - clock
        clock = now

    def features(img):
        return multiscale_basic_features(img, sigma_min=1, sigma_max=16)

    stack = features(image)
    picked = labels > 0
    forest = RandomForestClassifier(n_estimators=200, max_features=2, random_state=seed)
    forest.fit(stack[picked], labels[picked])
    object_column = list(forest.classes_).index(OBJECT)
    del stack
    lap("train")

    def segment(img):
        stack = features(img)
        proba = forest.predict_proba(stack.reshape(-1, stack.shape[-1]))[:, object_column]
        return label(proba.reshape(img.shape) > 0.5, connectivity=2)

    def measure(lab):
        table = regionprops_table(lab, properties=NAIVE_PROPERTIES)
        columns = [k for k in table if k != "label"]
        return table["label"], np.column_stack([table[k] for k in columns]).astype(float), table

    raw_lab = segment(image)
    raw_ids, raw_values, raw_table = measure(raw_lab)
    n_raw, n_props = raw_values.shape if raw_values.ndim == 2 else (0, 0)
    lap("raw")

    def matched_values(lab):
        """Values of the object of ``lab`` matching each raw object (IoU >= 0.5), NaN if none."""
        ids, values, table = measure(lab)
        row_of = {int(i): r for r, i in enumerate(ids)}
        out = np.full((n_raw, n_props), np.nan)
        for i in range(n_raw):
            r0, c0, r1, c1 = (int(raw_table[f"bbox-{k}"][i]) for k in range(4))
            inside = raw_lab[r0:r1, c0:c1] == raw_ids[i]
            under = lab[r0:r1, c0:c1][inside]
            under = under[under > 0]
            if under.size == 0:
                continue
            candidates, overlaps = np.unique(under, return_counts=True)
            best = int(np.argmax(overlaps))
            other = row_of[int(candidates[best])]
            inter = overlaps[best]
            # With IoU >= 0.5 a raw object can have only one partner: the one it overlaps most.
            if inter / (raw_table["area"][i] + table["area"][other] - inter) >= 0.5:
                out[i] = values[other]
        return out

    rng = np.random.default_rng(seed)
    y = image.astype(np.float64)
    electrons = np.maximum(y - profile.offset_dn, 0.0) / profile.gain_dn_per_e
    per_replica = []
    for _ in range(replicas):
        dn = profile.offset_dn + profile.gain_dn_per_e * rng.poisson(electrons)
        dn = dn + rng.normal(0.0, profile.read_noise_dn, image.shape)
        replica = np.clip(np.rint(dn), 0, profile.max_dn).astype(image.dtype)
        per_replica.append(matched_values(segment(replica)))
    lap("replicas")

    decoded = {}
    for spec in codec_specs:
        decoded[spec] = matched_values(segment(parse_spec(spec).apply(image, profile).decoded))
    lap("codecs")

    stack = np.stack(per_replica)
    n_matched = np.isfinite(stack).sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # objects matched in < 2 replicas: NaN is right
        sigma = np.where(n_matched >= 2, np.nanstd(stack, axis=0, ddof=1), np.nan)
    codecs = {}
    for spec, values in decoded.items():
        with np.errstate(divide="ignore", invalid="ignore"):
            eps = (raw_values - values) / sigma
        codecs[spec] = _eps_summary(eps, int(np.isfinite(values[:, 0]).sum()) if n_raw else 0)
    lap("scores")
    return {"n_raw": int(n_raw), "stages": stages, "codecs": codecs}


def _eps_summary(eps: np.ndarray, matched: int) -> dict:
    finite = np.abs(eps[np.isfinite(eps)])
    return {"matched": matched,
            "median_abs_eps": float(np.median(finite)) if finite.size else float("nan"),
            "inside_band": float((finite < 1).mean()) if finite.size else float("nan")}


# --------------------------------------------------------------------------------------------
# noisestat
# --------------------------------------------------------------------------------------------

def noisestat_assess(image, labels, profile, codec_specs, replicas, seed, jobs):
    """One call of :func:`noisestat.assess`, with stage times where they can be observed.

    Stage times come from wrapping two names ``noisestat.pipeline`` looks up when it runs: the
    classifier's ``fit`` (features + forest) and joblib's ``Parallel`` (replicas and codecs). If
    either name is gone from the module the stages are left out; the total is always measured.
    """
    import noisestat
    from noisestat import pipeline

    marks = {}
    instrumented = hasattr(pipeline, "PixelClassifier") and hasattr(pipeline, "Parallel")
    if instrumented:
        base_classifier, base_parallel = pipeline.PixelClassifier, pipeline.Parallel

        class TimedClassifier(base_classifier):
            def fit(self, *args, **kwargs):
                out = super().fit(*args, **kwargs)
                marks["fit_done"] = time.perf_counter()
                return out

        class TimedParallel(base_parallel):
            def __call__(self, *args, **kwargs):
                marks["parallel_start"] = time.perf_counter()
                out = super().__call__(*args, **kwargs)
                marks["parallel_done"] = time.perf_counter()
                return out

        pipeline.PixelClassifier, pipeline.Parallel = TimedClassifier, TimedParallel

    start = time.perf_counter()
    result = noisestat.assess(image, profile, list(codec_specs), labels=labels, replicas=replicas, seed=seed,
                              jobs=jobs)
    end = time.perf_counter()
    stages = {}
    if {"fit_done", "parallel_start", "parallel_done"} <= marks.keys():
        stages = {"train": marks["fit_done"] - start, "raw": marks["parallel_start"] - marks["fit_done"],
                  "replicas+codecs": marks["parallel_done"] - marks["parallel_start"],
                  "scores": end - marks["parallel_done"]}
    codecs = {c.spec: _eps_summary(c.eps, int(c.objects.matching.get("matched", 0))) for c in result.codecs}
    return {"n_raw": len(result.raw), "stages": stages, "codecs": codecs}


# --------------------------------------------------------------------------------------------
# Measurement: each side in its own process
# --------------------------------------------------------------------------------------------

def _run_side(side: str, job_path: str, replicas: int, seed: int, jobs: int, result_path: str) -> None:
    """Body of the measured process: load the job, do the work, write what was measured."""
    with np.load(job_path) as job:
        image, labels = job["image"], job["labels"]
        profile_values = json.loads(str(job["profile"]))
    from noisestat import CameraProfile

    profile = CameraProfile(**profile_values)
    started = time.perf_counter()
    if side == "naive":
        out = naive_assess(image, labels, profile, CODECS, replicas, seed)
    else:
        out = noisestat_assess(image, labels, profile, CODECS, replicas, seed, jobs)
    out["wall_s"] = time.perf_counter() - started
    if side != "naive" and jobs != 1:
        # joblib keeps its workers alive for reuse; only workers that have exited and been reaped
        # are counted by RUSAGE_CHILDREN, so stop them before reading it.
        from joblib.externals.loky import get_reusable_executor

        get_reusable_executor().shutdown(wait=True)
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    scale = 1 if sys.platform == "darwin" else 1024
    own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    out["self_mib"] = own.ru_maxrss * scale / 2**20
    out["workers_mib"] = workers.ru_maxrss * scale / 2**20
    # CPU seconds of the whole process tree (imports and input loading included, a few seconds):
    # against the wall time it tells how many cores the side kept busy.
    out["cpu_s"] = own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime
    Path(result_path).write_text(json.dumps(out))


def _tree_pss_kib(root: int) -> int | None:
    """Summed PSS (KiB) of ``root`` and all its descendants; None where /proc cannot tell."""
    parent_of = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as handle:
                # The command name may hold spaces; the fields after its closing ')' do not.
                fields = handle.read().rsplit(")", 1)[1].split()
            parent_of[int(entry.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        for child, parent in parent_of.items():
            if parent == pid and child not in tree:
                tree.add(child)
                frontier.append(child)
    total, seen = 0, False
    for pid in tree:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as handle:
                for line in handle:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        seen = True
                        break
        except OSError:
            continue
    return total if seen else None


def measure(side: str, job_path: str, replicas: int, seed: int, jobs: int) -> dict:
    """Run one side in a fresh interpreter and return what it measured plus the sampled tree PSS."""
    with tempfile.TemporaryDirectory() as tmp:
        result_path = os.path.join(tmp, "result.json")
        command = [sys.executable, os.path.abspath(__file__), "--_side", side, "--_job", job_path,
                   "--_result", result_path, "--replicas", str(replicas), "--seed", str(seed), "--jobs", str(jobs)]
        # Other work on the machine slows a side down without any sign in its own figures: record
        # the load it started under.
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        process = subprocess.Popen(command)
        peak = {"kib": None}
        sampling = os.path.isdir("/proc") and os.path.exists(f"/proc/{os.getpid()}/smaps_rollup")

        def sample():
            while process.poll() is None:
                kib = _tree_pss_kib(process.pid)
                if kib is not None and (peak["kib"] is None or kib > peak["kib"]):
                    peak["kib"] = kib
                time.sleep(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        if sampling:
            sampler.start()
        try:
            code = process.wait()
        except KeyboardInterrupt:
            process.terminate()
            raise
        if sampling:
            sampler.join()
        if code != 0:
            raise SystemExit(f"the {side} side failed (exit status {code}); its error is printed above")
        out = json.loads(Path(result_path).read_text())
    out["tree_pss_mib"] = None if peak["kib"] is None else peak["kib"] / 1024
    out["load"] = load
    return out


def _print_report(rows, description, replicas):
    print(f"\njob: {description}; {replicas} replicas; codecs: {', '.join(CODECS)}")
    header = (f"{'side':<18} {'wall s':>8} {'CPU s':>7} {'self MiB':>9} {'workers MiB':>12} {'tree PSS MiB':>13} "
              f"{'raw objects':>12} {'load':>5}")
    print(header)
    print("-" * len(header))
    for name, r in rows:
        pss = "-" if r["tree_pss_mib"] is None else f"{r['tree_pss_mib']:.0f}"
        load = "-" if r["load"] is None else f"{r['load']:.1f}"
        print(f"{name:<18} {r['wall_s']:>8.1f} {r['cpu_s']:>7.1f} {r['self_mib']:>9.0f} {r['workers_mib']:>12.0f} {pss:>13} "
              f"{r['n_raw']:>12} {load:>5}")
    print("\nstages (s):")
    for name, r in rows:
        if r["stages"]:
            print(f"  {name:<16} " + ", ".join(f"{k} {v:.1f}" for k, v in r["stages"].items()))
    print("\nsanity (the sides measure different features and parameters; numbers are not comparable):")
    for name, r in rows:
        for spec, c in r["codecs"].items():
            print(f"  {name:<16} {spec:<30} matched {c['matched']:>5}  median |eps| {c['median_abs_eps']:7.2f}  "
                  f"|eps|<1 {c['inside_band']:6.1%}")
    print("\nwall s: work only (inputs loaded, imports done). CPU s: user+system of the process and its "
          "workers, imports included. self MiB: ru_maxrss of the side's process. "
          "workers MiB: ru_maxrss of its largest joblib worker (RUSAGE_CHILDREN, not a sum). "
          "tree PSS MiB: sampled peak of the summed PSS of the process and its workers. "
          f"load: 1-minute load average when the side started (this machine has {os.cpu_count()} CPUs; "
          "a load near or above that means other work shared them; it lags and still includes the previous side).")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, help=f"side of the simulated image (default {DEFAULT_SIZE}; "
                        f"with --real: crop to the top-left SIZE x SIZE)")
    parser.add_argument("--replicas", type=int, help=f"Monte-Carlo replicas (default {DEFAULT_REPLICAS})")
    parser.add_argument("--jobs", type=int, default=1,
                        help="workers for noisestat (default 1); with another value jobs=1 is run too")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: {QUICK_SIZE}x{QUICK_SIZE}, {QUICK_REPLICAS} replicas")
    parser.add_argument("--real", type=Path, help="a real uint 2D TIFF instead of the simulator")
    parser.add_argument("--mask", type=Path, help="instance mask of --real (default: instances_ids.png beside it)")
    parser.add_argument("--camera", type=Path, help="camera profile JSON for --real (default: the demo camera)")
    parser.add_argument("--skip-naive", action="store_true", help="time noisestat only")
    # The measured processes: this script started again by measure().
    parser.add_argument("--_side", choices=("naive", "noisestat"), help=argparse.SUPPRESS)
    parser.add_argument("--_job", help=argparse.SUPPRESS)
    parser.add_argument("--_result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    replicas = args.replicas or (QUICK_REPLICAS if args.quick else DEFAULT_REPLICAS)
    if args._side:
        _run_side(args._side, args._job, replicas, args.seed, args.jobs, args._result)
        return 0
    if replicas < 2:
        parser.error("at least 2 replicas are needed for a spread")
    size = args.size or (QUICK_SIZE if args.quick else None)

    if args.real:
        mask = args.mask or args.real.with_name("instances_ids.png")
        missing = [str(p) for p in (args.real, mask) if not p.is_file()]
        if missing:
            print(f"skipped: {', '.join(missing)} not found (the real data lives in ../shared/data/ "
                  f"of a development checkout)")
            return 0
        image, labels, profile, description = real_job(args.real, mask, args.camera, size, args.seed)
    else:
        image, labels, profile, description = simulated_job(size or DEFAULT_SIZE, args.seed)

    job_counts = [1] if args.jobs == 1 else [1, args.jobs]
    sides = ([] if args.skip_naive else [("naive loop", "naive", 1)])
    sides += [(f"noisestat jobs={j}", "noisestat", j) for j in job_counts]
    print(f"{description}; {int((labels > 0).sum())} labelled pixels; {os.cpu_count()} CPUs; "
          f"python {sys.version.split()[0]}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        job_path = os.path.join(tmp, "job.npz")
        profile_json = json.dumps({k: getattr(profile, k)
                                   for k in ("gain_dn_per_e", "offset_dn", "read_noise_dn", "bit_depth")})
        np.savez(job_path, image=image, labels=labels, profile=np.array(profile_json))
        for name, side, jobs in sides:
            print(f"running {name} ...", flush=True)
            rows.append((name, measure(side, job_path, replicas, args.seed, jobs)))
    _print_report(rows, description, replicas)
    return 0


if __name__ == "__main__":
    sys.exit(main())
