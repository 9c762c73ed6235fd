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

``--equal-model`` runs another comparison: the command ``noisestat assess --jobs 2`` against the loop
a user would write around noisestat's own features and forest (the same 70 Weka features, the same
trained forest, the same images from assess's seeds, the same codecs; per image ``weka_features``,
``forest.predict_proba``, > 0.5, ``skimage.measure.label``, ``regionprops_table``), the loop's two
cores used either by the forest's threads or by joblib over the images. It prints the wall times,
loop/assess, whether every image's object count agrees, and the stage times of
``summary.json["provenance"]["timing"]`` beside the loop's and the trees' own traversal time
(:func:`equal_loop`). Default input: the real phase-contrast set3 image of ../shared/data (skipped
with a message when absent); ``--quick``: a small simulated image.

Usage::

    python benchmarks/bench_assess.py --equal-model    # real set3, 10 replicas, 4 codecs, jobs 2
    python benchmarks/bench_assess.py --equal-model --quick
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


# --------------------------------------------------------------------------------------------
# Equal-model comparison: the same forest, features, images and codecs, looped by hand
# --------------------------------------------------------------------------------------------

EQUAL_CODECS = ("jpeg:ratio=10", "jpeg2k:ratio=20", "bitdepth:bits=8,mode=minmax", "lossless")
EQUAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "usiigaci-phase-contrast" / "set3"
PREP_FROM_MASK = Path(__file__).resolve().parents[2] / "shared" / "checks" / "lib" / "prep_from_mask.py"
EQUAL_JOBS = 2
# The per-image stages both sides time, in the names of summary.json["provenance"]["timing"].
LOOP_STAGES = ("training", "pixels", "codecs", "features", "trees", "labelling", "measuring")


def _assess_seeds(seed: int, replicas: int):
    """The forest seed and the replica seeds :func:`noisestat.assess` uses for ``seed``.

    Mirrors ``noisestat.pipeline.build_reference``: the root seed spawns four children (forest,
    replicas, -, retrained forests); the replicas' child spawns one seed per replica, the N that
    estimate sigma_raw and two more for the null pair. If the pipeline derives them differently the
    per-replica object counts printed at the end stop agreeing, which is how it shows.
    """
    from noisestat.replicas import replica_seeds

    forest_seed, replica_root, _, _ = np.random.SeedSequence(seed).spawn(4)
    return forest_seed, replica_seeds(replica_root, replicas + 2)


def _loop_segment(img, forest, column, n_jobs):
    """One image of the hand-written loop: Weka features, the forest's probabilities, > 0.5,
    8-connected objects, regionprops. Returns (object count, seconds per stage)."""
    from skimage.measure import label, regionprops_table

    from noisestat.predict import weka_features

    times = {}
    t0 = time.perf_counter()
    stack = weka_features(img)
    t1 = time.perf_counter()
    forest.n_jobs = n_jobs
    proba = forest.predict_proba(stack.reshape(-1, stack.shape[-1]))[:, column].reshape(img.shape)
    del stack
    t2 = time.perf_counter()
    lab = label(proba > 0.5, connectivity=2)
    t3 = time.perf_counter()
    table = regionprops_table(lab, properties=NAIVE_PROPERTIES)
    t4 = time.perf_counter()
    times.update(features=t1 - t0, trees=t2 - t1, labelling=t3 - t2, measuring=t4 - t3)
    return len(table["label"]), times


def _loop_task(kind, image, profile, what, forest, column, n_jobs, raw_count):
    """A replica (``what`` its seed) or a codec (``what`` its spec), drawn or coded, then segmented."""
    from noisestat import draw_replica, parse_spec

    t0 = time.perf_counter()
    if kind == "replica":
        img = draw_replica(image, profile, what)
    else:
        img = parse_spec(what).apply(image, profile).decoded
    # drawing a replica is assess's "pixels" stage (getting the image's pixels)
    stage = {"pixels" if kind == "replica" else "codecs": time.perf_counter() - t0}
    if kind == "codec" and img.shape == image.shape and img.dtype == image.dtype and np.array_equal(img, image):
        # As assess does: an image identical to the raw one has the raw objects (the forest is
        # deterministic), so it is not segmented again.
        return raw_count, stage
    count, times = _loop_segment(img, forest, column, n_jobs)
    return count, {**stage, **times}


def equal_loop(image, labels, profile, codec_specs, replicas, seed, jobs, mode):
    """The assessment's segmentation work written by hand with noisestat's features and forest.

    ``mode="threads"``: one image after another, the forest predicting with ``n_jobs=jobs``
    threads (scikit-learn's own parallelism; features and labelling stay on one core).
    ``mode="joblib"``: ``joblib.Parallel(n_jobs=jobs)`` over the images (loky processes), the forest
    in one thread per image. The images are those assess segments: the raw image, the N + 2
    replicas (N for sigma_raw, 2 for the null pair) from assess's seeds, and each codec's decoded
    image (skipped, as assess skips it, when identical to the raw). No matching and no scoring.
    """
    from joblib import Parallel, delayed

    from noisestat import PixelClassifier
    from noisestat.predict import OBJECT, weka_features

    forest_seed, seeds = _assess_seeds(seed, replicas)
    stages = dict.fromkeys(LOOP_STAGES, 0.0)
    t0 = time.perf_counter()
    raw_features = weka_features(image)
    t1 = time.perf_counter()
    model = PixelClassifier(random_state=np.random.default_rng(forest_seed), n_jobs=jobs)
    model.fit(image, labels, features=raw_features)
    stages["training"] = time.perf_counter() - t1
    stages["features"] += t1 - t0
    forest = model.forest_
    column = list(forest.classes_).index(OBJECT)
    t2 = time.perf_counter()
    forest.n_jobs = jobs
    proba = forest.predict_proba(raw_features.reshape(-1, raw_features.shape[-1]))[:, column].reshape(image.shape)
    del raw_features
    t3 = time.perf_counter()
    from skimage.measure import label, regionprops_table

    raw_lab = label(proba > 0.5, connectivity=2)
    t4 = time.perf_counter()
    raw_count = len(regionprops_table(raw_lab, properties=NAIVE_PROPERTIES)["label"])
    t5 = time.perf_counter()
    for k, v in (("trees", t3 - t2), ("labelling", t4 - t3), ("measuring", t5 - t4)):
        stages[k] += v

    items = [("replica", s) for s in seeds] + [("codec", c) for c in codec_specs]
    if mode == "threads":
        results = [_loop_task(kind, image, profile, what, forest, column, jobs, raw_count) for kind, what in items]
    else:
        results = Parallel(n_jobs=jobs)(delayed(_loop_task)(kind, image, profile, what, forest, column, 1, raw_count)
                                        for kind, what in items)
    wall = time.perf_counter() - t0
    for _, times in results:
        for k, v in times.items():
            stages[k] += v
    counts = [c for c, _ in results]
    out = {"wall_s": wall, "stages": stages, "n_raw": raw_count, "replica_counts": counts[:len(seeds)],
           "codec_counts": dict(zip(codec_specs, counts[len(seeds):])), "forest_seed": int(model.seed_),
           "segmented": 1 + sum(1 for _, t in results if "trees" in t)}
    if mode == "threads":
        # The trees' own traversal on the raw image's pixels, one thread, outside the timed work:
        # forest.apply (leaf indices only) and predict_proba (leaves' values summed over trees).
        stack = weka_features(image).reshape(-1, forest.n_features_in_)
        forest.n_jobs = 1

        def best_of_two(call):
            spans = []
            for _ in range(2):
                start = time.perf_counter()
                call(stack)
                spans.append(time.perf_counter() - start)
            return min(spans)

        out["traversal"] = {"predict_proba_s": best_of_two(forest.predict_proba), "apply_s": best_of_two(forest.apply),
                            "pixels": int(stack.shape[0])}
    return out


def _run_equal_side(mode: str, job_dir: str, replicas: int, seed: int, jobs: int, result_path: str) -> None:
    """Body of a measured loop process: read the inputs, run the loop, write what was measured."""
    import tifffile

    from noisestat import load_profile

    job = Path(job_dir)
    spec = json.loads((job / "job.json").read_text())
    image = np.asarray(tifffile.imread(spec["raw"]))
    labels = np.asarray(tifffile.imread(job / "labels.tif"))
    profile = load_profile(job / "camera.json")
    out = equal_loop(image, labels, profile, spec["codecs"], replicas, seed, jobs, mode)
    Path(result_path).write_text(json.dumps(out))


def _prepare_equal_job(job: Path, quick: bool, seed: int) -> tuple[str, str] | None:
    """Write the inputs both sides read into ``job``: raw path, labels.tif, camera.json.

    Real input: set3 of the phase-contrast data, labels and a rough camera profile derived from its
    instance mask by the acceptance checks' own ``prep_from_mask.py`` (1 % of the pixels, seed 0).
    Returns a description, or None when the data or that script is absent.
    """
    import tifffile

    if quick:
        from noisestat import save_profile
        from noisestat.simulate import DEMO_CAMERA, acquire, simulate_scene, sparse_labels

        rng = np.random.default_rng(seed)
        electrons, truth = simulate_scene((QUICK_SIZE, QUICK_SIZE), rng=rng)
        tifffile.imwrite(job / "raw.tif", acquire(electrons, DEMO_CAMERA, rng))
        tifffile.imwrite(job / "labels.tif", sparse_labels(truth, rng=rng))
        save_profile(DEMO_CAMERA, job / "camera.json")
        raw = job / "raw.tif"
        description = f"simulated {QUICK_SIZE}x{QUICK_SIZE} (simulate_scene + acquire, demo camera, seed {seed})"
    else:
        raw, mask = EQUAL_DATA / "raw.tif", EQUAL_DATA / "instances_ids.png"
        missing = [str(p) for p in (raw, mask, PREP_FROM_MASK) if not p.is_file()]
        if missing:
            print(f"skipped: {', '.join(missing)} not found (the real data and the checks live in ../shared/ of a "
                  f"development checkout); --quick runs on a simulated image")
            return None
        subprocess.run([sys.executable, str(PREP_FROM_MASK), str(raw), str(mask), str(job)], check=True,
                       stdout=subprocess.DEVNULL)
        shape = tifffile.imread(raw).shape
        description = (f"real {raw} {shape[0]}x{shape[1]}, labels and camera from prep_from_mask.py "
                       f"(1 % of pixels, seed 0)")
    return str(raw), description


def _loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "-"


def _noisestat_counts(summary: dict) -> tuple[int, list, dict]:
    """Objects per image from summary.json: raw, each of the N replicas, each codec image.

    A replica's or codec image's object count is its matched objects plus its objects without a
    partner (the one-to-one matching counts each of its objects once, as one or the other)."""
    def count(m):
        return int(m["matched"]) + int(m["unmatched_other"])

    per = (summary.get("replica_matching") or {}).get("per_replica") or []
    return (int(summary["n_objects_raw"]), [count(m) for m in per],
            {c["spec"]: count(c["matching"]) for c in summary["codecs"]})


def equal_model_main(args, replicas: int) -> int:
    """Run assess (the CLI, ``--jobs``) and the hand-written loop (threads, joblib), then report."""
    jobs = args.jobs or EQUAL_JOBS
    codecs = list(args.codec or EQUAL_CODECS)
    modes = ["threads", "joblib"] if args.loop == "both" else [args.loop]
    with tempfile.TemporaryDirectory() as tmp:
        job = Path(tmp)
        prepared = _prepare_equal_job(job, args.quick, args.seed)
        if prepared is None:
            return 0
        raw, description = prepared
        (job / "job.json").write_text(json.dumps({"raw": raw, "codecs": codecs}))
        labelled = int((np.asarray(__import__("tifffile").imread(job / "labels.tif")) > 0).sum())
        print(f"{description}; {labelled} labelled pixels; {replicas} replicas (+2 null pair); codecs: "
              f"{', '.join(codecs)}; jobs {jobs}; {os.cpu_count()} CPUs; python {sys.version.split()[0]}")
        out_dir = job / "assessment"
        command = [sys.executable, "-m", "noisestat", "assess", raw, "--camera", str(job / "camera.json"),
                   "--labels", str(job / "labels.tif"), "--replicas", str(replicas), "--seed", str(args.seed),
                   "--jobs", str(jobs), "--quiet", "-o", str(out_dir)]
        for c in codecs:
            command += ["--codec", c]
        print(f"running noisestat assess --jobs {jobs} ... (load {_loadavg()})", flush=True)
        t0 = time.perf_counter()
        # cwd: the job folder, so that `-m noisestat` imports the installed (or PYTHONPATH) package
        proc = subprocess.run(command, capture_output=True, text=True, cwd=job)
        cli_wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"noisestat assess failed (exit status {proc.returncode}): {proc.stderr.strip()}")
        summary = json.loads((out_dir / "summary.json").read_text())
        rows = [("noisestat assess", {"wall_s": summary["provenance"].get("seconds"), "cli_s": cli_wall,
                                      "load": _loadavg()})]
        loops = {}
        for mode in modes:
            print(f"running the loop ({mode}) ... (load {_loadavg()})", flush=True)
            result_path = job / f"loop_{mode}.json"
            proc = subprocess.run([sys.executable, os.path.abspath(__file__), "--_equal", mode, "--_job", str(job),
                                   "--_result", str(result_path), "--replicas", str(replicas), "--seed",
                                   str(args.seed), "--jobs", str(jobs)])
            if proc.returncode != 0:
                raise SystemExit(f"the loop ({mode}) failed (exit status {proc.returncode}); its error is above")
            loops[mode] = json.loads(result_path.read_text())
            loops[mode]["load"] = _loadavg()
    _print_equal_report(summary, rows, loops, jobs)
    return 0


def _is_count(name: str) -> bool:
    """Whether a key of provenance["timing"] holds a count or a fraction rather than seconds."""
    return name.endswith("_predicted") or any(word in name for word in ("evaluations", "evaluated", "fraction", "count"))


def _print_equal_report(summary, rows, loops, jobs):
    assess_s = rows[0][1]["wall_s"]
    print(f"\n{'side':<34} {'wall s':>8} {'loop/assess':>12} {'load after (1/5/15 min)':>24}")
    print(f"{'noisestat assess (work only)':<34} {assess_s:>8.1f} {'':>12} {rows[0][1]['load']:>24}")
    print(f"{'noisestat assess (whole command)':<34} {rows[0][1]['cli_s']:>8.1f}")
    labels = {"threads": f"loop, forest n_jobs={jobs}", "joblib": f"loop, joblib n_jobs={jobs} over images"}
    for mode, r in loops.items():
        print(f"{labels[mode]:<34} {r['wall_s']:>8.1f} {r['wall_s'] / assess_s:>12.2f} {r['load']:>24}")
    print("wall s: assess's own seconds (summary.json provenance 'seconds': inputs read, outputs not yet written) "
          "and the loop's, from its inputs read to its last table; the whole command adds interpreter start, "
          "imports, reading and writing the output folder.")

    n_raw, replica_counts, codec_counts = _noisestat_counts(summary)
    print("\nobjects per image (noisestat / loop):")
    seeds_note = ""
    for mode, r in loops.items():
        same_raw = n_raw == r["n_raw"]
        k = len(replica_counts)
        same_rep = replica_counts == r["replica_counts"][:k]
        same_cod = all(codec_counts.get(c) == n for c, n in r["codec_counts"].items())
        verdict = "agree" if same_raw and same_rep and same_cod else "DIFFER"
        print(f"  {labels[mode]}: {verdict}; raw {n_raw}/{r['n_raw']}; replicas "
              + " ".join(f"{a}/{b}" for a, b in zip(replica_counts, r["replica_counts"][:k]))
              + "; codecs " + ", ".join(f"{c} {codec_counts.get(c)}/{n}" for c, n in r["codec_counts"].items()))
        seed = summary["provenance"].get("classifier", {}).get("seed")
        if seed is not None and seed != r["forest_seed"]:
            seeds_note = (f"  the loop's forest seed {r['forest_seed']} is not assess's {seed}: the pipeline derives "
                          f"it differently now, so the two sides do not use the same forest")
    if seeds_note:
        print(seeds_note)

    timing = summary["provenance"].get("timing")
    loop = loops.get("joblib") or next(iter(loops.values()))
    loop_name = "joblib" if "joblib" in loops else next(iter(loops))
    print("\nper-stage seconds, summed over tasks:")
    if not timing:
        print("  noisestat: summary.json has no provenance 'timing' in this version")
    trees_loop = loop["stages"].get("trees") or float("nan")
    # timing also holds counts (pixels, tree evaluations, fractions) beside the seconds
    counts = {k: v for k, v in (timing or {}).items() if isinstance(v, (int, float)) and _is_count(k)}
    timing = {k: v for k, v in (timing or {}).items() if k not in counts}
    names = list(dict.fromkeys([*timing, *LOOP_STAGES]))
    print(f"  {'stage':<14} {'noisestat':>10} {'loop (' + loop_name + ')':>16} {'noisestat/loop':>15} "
          f"{'x loop trees':>13}")
    for name in names:
        ns = (timing or {}).get(name)
        ns = ns if isinstance(ns, (int, float)) else None
        lp = loop["stages"].get(name)
        ratio = f"{ns / lp:.2f}" if ns is not None and lp else "-"
        vs_trees = f"{ns / trees_loop:.2f}" if ns is not None else "-"
        print(f"  {name:<14} {'-' if ns is None else f'{ns:.1f}':>10} {'-' if lp is None else f'{lp:.1f}':>16} "
              f"{ratio:>15} {vs_trees:>13}")
    for name, value in (timing or {}).items():
        if not isinstance(value, (int, float)):
            print(f"  {name}: {json.dumps(value)[:200]}")
    if counts:
        print("  noisestat counts: " + ", ".join(f"{k} {v:.4g}" for k, v in counts.items()))
    print("  'x loop trees': the noisestat stage over the loop's summed forest.predict_proba (the trees' own "
          "traversal, one thread per image, the same images)")
    for mode, r in loops.items():
        print(f"  loop ({mode}) stages: " + ", ".join(f"{k} {v:.1f}" for k, v in r["stages"].items())
              + f"; {r['segmented']} images segmented")
    trav = next((r["traversal"] for r in loops.values() if "traversal" in r), None)
    if trav:
        per = trav["pixels"]
        print(f"  trees' own traversal of one raw image ({per} pixels, 1 thread, best of 2, after the loop): "
              f"forest.apply {trav['apply_s']:.2f} s, forest.predict_proba {trav['predict_proba_s']:.2f} s")
        n_img = loop["segmented"]
        if timing and isinstance(timing.get("trees"), (int, float)):
            print(f"  noisestat 'trees' {timing['trees']:.1f} s over {n_img} images = "
                  f"{timing['trees'] / n_img:.2f} s per image: {timing['trees'] / n_img / trav['apply_s']:.2f}x "
                  f"forest.apply, {timing['trees'] / n_img / trav['predict_proba_s']:.2f}x predict_proba")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, help=f"side of the simulated image (default {DEFAULT_SIZE}; "
                        f"with --real: crop to the top-left SIZE x SIZE)")
    parser.add_argument("--replicas", type=int, help=f"Monte-Carlo replicas (default {DEFAULT_REPLICAS})")
    parser.add_argument("--jobs", type=int,
                        help="workers for noisestat (default 1); with another value jobs=1 is run too. "
                             f"With --equal-model: assess's --jobs and the loop's n_jobs (default {EQUAL_JOBS})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke test: {QUICK_SIZE}x{QUICK_SIZE}, {QUICK_REPLICAS} replicas")
    parser.add_argument("--real", type=Path, help="a real uint 2D TIFF instead of the simulator")
    parser.add_argument("--mask", type=Path, help="instance mask of --real (default: instances_ids.png beside it)")
    parser.add_argument("--camera", type=Path, help="camera profile JSON for --real (default: the demo camera)")
    parser.add_argument("--skip-naive", action="store_true", help="time noisestat only")
    parser.add_argument("--equal-model", action="store_true",
                        help="noisestat assess (the CLI) against a hand-written loop with the same features, forest, "
                             "images and codecs (default input: the real phase-contrast set3; --quick: simulated)")
    parser.add_argument("--loop", choices=("both", "threads", "joblib"), default="both",
                        help="with --equal-model: the loop's parallelism (forest threads, joblib over images, or both)")
    parser.add_argument("--codec", action="append",
                        help=f"with --equal-model: a codec spec (repeat; default {' '.join(EQUAL_CODECS)})")
    # The measured processes: this script started again by measure().
    parser.add_argument("--_side", choices=("naive", "noisestat"), help=argparse.SUPPRESS)
    parser.add_argument("--_job", help=argparse.SUPPRESS)
    parser.add_argument("--_result", help=argparse.SUPPRESS)
    parser.add_argument("--_equal", choices=("threads", "joblib"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    replicas = args.replicas or (QUICK_REPLICAS if args.quick else DEFAULT_REPLICAS)
    if args._equal:
        _run_equal_side(args._equal, args._job, replicas, args.seed, args.jobs, args._result)
        return 0
    if args._side:
        _run_side(args._side, args._job, replicas, args.seed, args.jobs or 1, args._result)
        return 0
    if replicas < 2:
        parser.error("at least 2 replicas are needed for a spread")
    if args.equal_model:
        return equal_model_main(args, replicas)
    args.jobs = args.jobs or 1
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
