"""Benchmark `noisestat calibrate` against the EMVA 1288 reference implementation (emva1288).

Both implementations process the SAME EMVA 1288 descriptor: the real Basler CCD reference set
(``--emva``) and simulated cameras with known truth written by ``noisestat.simulate`` (linear; with
dark current; non-linear; with a per-pixel gain; an 8-bit CMOS with K = 0.02 DN/e- and a near-dark
level at exposure 0, "b 0.0 0.35"; a mildly non-linear camera with K = 0.1 DN/e- whose linearity error
stays inside +-1 %). For each data set a table gives, per quantity,
the truth (simulated cameras), noisestat's value and emva1288's value, then the wall time (best of
``--repeats``) and the peak resident memory of each side.

emva1288 (PyPI, 1.0.2) is a benchmark-only dependency: install it in a virtual environment of its
own, with noisestat, and run this script with that interpreter (see benchmarks/CALIBRATE.md)::

    python3 -m venv /tmp/emva-venv
    /tmp/emva-venv/bin/pip install emva1288==1.0.2 -e .
    /tmp/emva-venv/bin/python benchmarks/bench_calibrate.py --quick

emva1288 1.0.2 calls ``np.asfarray``, removed in NumPy 2; the script puts it back
(``np.asarray(a, dtype=float)``) before importing emva1288. That is the only change made to it.

Each side runs in a fresh interpreter (the script starts itself again with a hidden flag), so that
its peak memory (VmHWM) is its own; the time of one run is: read the descriptor and its images,
compute every quantity of the table. It measures and prints; it asserts nothing.

``--false-nonlinear SEEDS`` runs noisestat alone (no emva1288 needed) on truly linear simulated cameras
and counts how often each is called non-linear, and how often each test of the rule rejects.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_EMVA = ROOT / ".." / "shared" / "data" / "emva1288-basler-ccd12" / "EMVA1288_Data.txt"

# Simulated series: exposure times from T_MAX/levels to T_MAX at constant irradiance, the last level
# at OVERDRIVE times the saturation photons (as Basler's set, the series runs past saturation).
T_MAX_S = 0.040
OVERDRIVE = 1.3
FULL = {"size": 256, "levels": 30, "spatial_frames": 16}
QUICK = {"size": 128, "levels": 14, "spatial_frames": 8}

# Simulated cameras: CameraModel keyword arguments on top of COMMON.
COMMON = {"gain_dn_per_e": 0.5, "offset_dn": 100.0, "read_noise_e": 4.0, "bit_depth": 12,
          "quantum_efficiency": 0.6, "full_well_e": 6000.0, "dsnu_dn": 2.0, "prnu": 0.01}
CAMERAS = {
    "linear": {},
    "dark current": {"dark_current_e_per_s": 1000.0},
    "non-linear": {"nonlinearity": 0.5},
    "per-pixel gain": {"gain_spread": 0.05},
    "8-bit CMOS": {},
    "mild non-linear": {},
}
# The 8-bit CMOS replaces COMMON entirely and has a series of its own, shaped like the EMVA 1288
# descriptors of such cameras: K 0.02 DN/e- (50 e-/DN), 2 frames per level, exposures from 0 to
# CMOS8_T_MAX_S at constant irradiance up to OVERDRIVE x the full well, plus 0.35 photons of stray
# light at every exposure, so that the first level is "b 0.0 0.35": a near-dark level at exposure 0.
CMOS8 = {"gain_dn_per_e": 0.02, "offset_dn": 10.0, "read_noise_e": 25.0, "bit_depth": 8,
         "quantum_efficiency": 0.55, "full_well_e": 10700.0, "dark_current_e_per_s": 200.0, "dsnu_dn": 0.5,
         "prnu": 0.005}
CMOS8_T_MAX_S = 0.010
CMOS8_STRAY_PHOTONS = 0.35
# A mildly non-linear camera, K = 0.1 DN/e-, 10 bit, compressive: its EMVA 1288 linearity error stays
# just inside +-1 % (about -0.95 / +0.66 %) while the straight line's K is about 6 % low. It too
# replaces COMMON; its series is the standard one.
MILD = {"gain_dn_per_e": 0.1, "offset_dn": 100.0, "read_noise_e": 4.0, "bit_depth": 10, "quantum_efficiency": 0.6,
        "full_well_e": 8000.0, "dsnu_dn": 2.0, "prnu": 0.01, "nonlinearity": -0.05}
# --false-nonlinear: truly linear cameras (the mild one without its non-linearity among them)
LINEAR_CAMERAS = {"linear": {}, "8-bit CMOS": {}, "mild non-linear": {"nonlinearity": 0.0}}


def camera_params(name: str, extra: dict) -> dict:
    """CameraModel keyword arguments (shape aside) of a simulated camera of CAMERAS."""
    if name == "8-bit CMOS":
        return {**CMOS8, **extra}
    if name == "mild non-linear":
        return {**MILD, **extra}
    return {**COMMON, **extra}

# (key, label, unit, format)
ROWS = [
    ("K", "system gain K", "DN/e-", "{:.5g}"),
    ("mu_dark", "mean dark value mu_y.dark", "DN", "{:.3f}"),
    ("sigma_y_dark", "temporal dark noise sigma_y.dark", "DN", "{:.4f}"),
    ("sigma_d", "dark noise sigma_d", "e-", "{:.3f}"),
    ("qe_pct", "quantum efficiency", "%", "{:.2f}"),
    ("sat_e", "saturation capacity mu_e.sat", "e-", "{:.0f}"),
    ("le_min", "linearity error min", "%", "{:.3f}"),
    ("le_max", "linearity error max", "%", "{:.3f}"),
    ("dsnu_e", "DSNU1288", "e-", "{:.3f}"),
    ("prnu_pct", "PRNU1288", "%", "{:.3f}"),
    ("dark_current", "dark current (from the mean)", "e-/s", "{:.1f}"),
]


def shim_numpy() -> None:
    """emva1288 1.0.2 calls np.asfarray, removed in NumPy 2: put it back before importing it."""
    if not hasattr(np, "asfarray"):
        np.asfarray = lambda a, dtype=float: np.asarray(a, dtype=dtype)


def emva_importable() -> str | None:
    """None when emva1288's processing can be imported here, else the reason."""
    shim_numpy()
    try:
        from emva1288.process import Data1288, LoadImageData, ParseEmvaDescriptorFile, Results1288  # noqa: F401
    except Exception as exc:  # ImportError, or a dependency that fails at import
        return f"{type(exc).__name__}: {exc}"
    return None


# --------------------------------------------------------------------------------------------
# One side, in its own interpreter
# --------------------------------------------------------------------------------------------

def _finite(v):
    v = None if v is None else float(v)
    return v if v is not None and math.isfinite(v) else None


def run_noisestat(descriptor: str, per_pixel) -> dict:
    from noisestat.calibrate import calibrate_series, read_emva_descriptor

    cal = calibrate_series(read_emva_descriptor(descriptor), per_pixel=per_pixel)
    ptc, p = cal.ptc, cal.profile
    lin, spatial = ptc.linearity, ptc.spatial or {}
    return {
        "K": p.gain_dn_per_e, "mu_dark": p.offset_dn, "sigma_y_dark": p.read_noise_dn, "sigma_d": ptc.sigma_d_e,
        "qe_pct": None if ptc.quantum_efficiency is None else 100 * ptc.quantum_efficiency,
        "sat_e": ptc.saturation_capacity_e,
        "le_min": lin.get("linearity_error_min_pct"), "le_max": lin.get("linearity_error_max_pct"),
        "dsnu_e": spatial.get("dsnu1288_e"), "prnu_pct": spatial.get("prnu1288_pct"),
        "dark_current": ptc.dark_current_e_per_s,
        "_notes": {"non-linear detected": ptc.nonlinear, "levels fitted for K": int(ptc.fit_mask.sum()),
                   "dark current SE (e-/s)": _finite(ptc.extra.get("dark_current_se_e_per_s")),
                   "warnings": len(cal.warnings),
                   "saturation level (photons)": _finite(ptc.photons[ptc.saturation_index]),
                   "per-pixel maps": p.pixel_maps is not None},
    }


def run_emva(descriptor: str) -> dict:
    import logging

    shim_numpy()
    from emva1288.process import Data1288, LoadImageData, ParseEmvaDescriptorFile, Results1288

    quiet = logging.WARNING
    parser = ParseEmvaDescriptorFile(descriptor, loglevel=quiet)
    images = LoadImageData(parser.images, loglevel=quiet)
    data = Data1288(images.data, loglevel=quiet)
    res = Results1288(data.data, loglevel=quiet)
    temporal = data.data["temporal"]
    lin = res.linearity()
    return {
        # emva1288 has no single mean dark value: the dark mean of its shortest exposure time is shown
        # (temporal['u_ydark'][0], exposures sorted), the dark reference of the lowest levels.
        "K": res.K, "mu_dark": float(temporal["u_ydark"][0]), "sigma_y_dark": res.sigma_y_dark,
        "sigma_d": res.sigma_d, "qe_pct": res.QE, "sat_e": res.u_e_sat,
        "le_min": lin["linearity_error_min"], "le_max": lin["linearity_error_max"],
        "dsnu_e": res.DSNU1288, "prnu_pct": res.PRNU1288, "dark_current": res.u_I_mean,
        "_notes": {"levels fitted for K": int(res.index_sensitivity_max - res.index_sensitivity_min + 1),
                   "saturation level (photons)": float(res.u_p_sat)},
    }


def memory_mib(field: str) -> float:
    """VmRSS or VmHWM (peak) of this process from /proc, in MiB; ru_maxrss where /proc is missing.

    Not ru_maxrss on Linux: it survives exec, so a child started from a big parent would report the
    parent's size (the kernel keeps the high-water mark of the memory it had before exec).
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024 if sys.platform == "darwin" else 1024)


def reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux: write 5 to /proc/self/clear_refs), so the peak is the runs'."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def worker(side: str, descriptor: str, repeats: int) -> dict:
    """Import the side, then run it ``repeats`` times; times, values of the last run, peak RSS."""
    if side == "emva1288":
        shim_numpy()
        import emva1288.process  # noqa: F401  (imports are not timed)

        def job():
            return run_emva(descriptor)
    else:
        import noisestat.calibrate  # noqa: F401

        per_pixel = False if side == "noisestat-nomaps" else None

        def job():
            return run_noisestat(descriptor, per_pixel)
    rss_imports = memory_mib("VmRSS")
    reset_peak()
    times, values = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        values = job()
        times.append(time.perf_counter() - t0)
    rss_peak = memory_mib("VmHWM")
    values = {k: (v if k == "_notes" else _finite(v)) for k, v in values.items()}
    return {"times": times, "values": values, "rss_imports_mib": rss_imports, "rss_peak_mib": rss_peak}


def run_side(side: str, descriptor: Path, repeats: int) -> dict:
    """Run one side in a fresh interpreter; its JSON answer or {'error': ...}."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = Path(f.name)
    try:
        command = [sys.executable, str(Path(__file__).resolve()), "--_side", side, "--_descriptor",
                   str(descriptor), "--_result", str(out), "--repeats", str(repeats)]
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0 or out.stat().st_size == 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            return {"error": f"exit {proc.returncode}: " + " | ".join(tail)}
        return json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)


def run_sides(descriptor: Path, repeats: int) -> dict:
    """noisestat and emva1288 on one descriptor; noisestat again with per_pixel=False when its
    default run computed per-pixel maps (work emva1288 does not do), to show what they cost."""
    results = {"noisestat": run_side("noisestat", descriptor, repeats)}
    if results["noisestat"].get("values", {}).get("_notes", {}).get("per-pixel maps"):
        results["noisestat-nomaps"] = run_side("noisestat-nomaps", descriptor, repeats)
    results["emva1288"] = run_side("emva1288", descriptor, repeats)
    return results


# --------------------------------------------------------------------------------------------
# Simulated cameras and their truth
# --------------------------------------------------------------------------------------------

def saturation_e(model) -> float:
    """Electrons at which the typical pixel saturates: the full well, or the ADC's top if sooner."""
    top_lin = float(model.inverse_response_dn(model.max_dn - model.offset_dn))
    return min(model.full_well_e, top_lin / model.gain_dn_per_e)


def emva_linearity_error(photons, net, sat_net) -> tuple[float, float]:
    """EMVA 1288 linearity error of a curve: fit net = a*photons + b minimising relative deviations,
    over the levels between 5 % and 95 % of ``sat_net``; extreme deviations in percent."""
    use = (net >= 0.05 * sat_net) & (net <= 0.95 * sat_net)
    x, y = photons[use], net[use]
    design = np.column_stack([x, np.ones_like(x)]) / y[:, None]
    (a, b), *_ = np.linalg.lstsq(design, np.ones_like(y), rcond=None)
    dev = 100 * (y - (a * x + b)) / (a * x + b)
    return float(dev.min()), float(dev.max())


def series_levels(model, cmos8: bool, levels: int):
    """Photons and exposure times of the temporal levels, and the irradiance (photons per second)."""
    sat_e = saturation_e(model)
    if cmos8:
        irradiance = OVERDRIVE * sat_e / model.quantum_efficiency / CMOS8_T_MAX_S
        exposures = np.linspace(0.0, CMOS8_T_MAX_S, levels)
        photons = [round(float(CMOS8_STRAY_PHOTONS + irradiance * t), 2) for t in exposures]
    else:
        irradiance = OVERDRIVE * sat_e / model.quantum_efficiency / T_MAX_S  # photons per pixel per second
        exposures = np.linspace(T_MAX_S / levels, T_MAX_S, levels)
        photons = [round(float(irradiance * t), 3) for t in exposures]
    return photons, exposures, irradiance


def false_nonlinear(seeds: int, size: int, levels: int) -> None:
    """How often truly linear simulated cameras are called non-linear (and how often each test of the
    rule alone rejects its straight line), over ``seeds`` series each (rng 1000, 1001, ...)."""
    from noisestat.calibrate import FlatFieldSeries, Level, calibrate_series
    from noisestat.calibrate._ptc import NONLINEAR_LEVEL
    from noisestat.simulate import CameraModel, CameraSimulator

    print(f"linear cameras called non-linear: {size}x{size}, {levels} levels of 2 + 2 frames, "
          f"seeds 1000..{999 + seeds}; test level {NONLINEAR_LEVEL:g}")
    for name, extra in LINEAR_CAMERAS.items():
        model = CameraModel(shape=(size, size), **camera_params(name, extra))
        sim = CameraSimulator(model)
        photons, exposures, _ = series_levels(model, name == "8-bit CMOS", levels)
        called, p_ptc, p_resp = 0, [], []
        t0 = time.perf_counter()
        for seed in range(1000, 1000 + seeds):
            data = sim.photon_series(photons, exposures, 2, 2, seed)
            series = FlatFieldSeries(tuple(Level(d["bright"], d["dark"], d["exposure_s"], d["photons"], f"level {k}")
                                           for k, d in enumerate(data)), model.bit_depth, None, name, "stacks")
            ptc = calibrate_series(series, per_pixel=False).ptc
            called += ptc.nonlinear
            p_ptc.append(ptc.linearity["ptc_bend_p"])
            p_resp.append(ptc.linearity["response_bend_p"])
        counts = lambda ps: " / ".join(str(sum(p < a for p in ps)) for a in (NONLINEAR_LEVEL, 0.01, 0.05))  # noqa: E731
        print(f"  {name:<16} non-linear {called} of {seeds}; rejections at {NONLINEAR_LEVEL:g} / 0.01 / 0.05: "
              f"photon transfer curve {counts(p_ptc)}, response {counts(p_resp)} ({time.perf_counter() - t0:.0f} s)")


def write_camera(folder: Path, name: str, extra: dict, cfg: dict, seed: int):
    """Write one simulated camera's EMVA descriptor; return (descriptor, truth, description)."""
    from noisestat.simulate import CameraModel, CameraSimulator

    size, levels, spatial_frames = cfg["size"], cfg["levels"], cfg["spatial_frames"]
    cmos8 = name == "8-bit CMOS"
    params = camera_params(name, extra)
    model = CameraModel(shape=(size, size), **params)
    sim = CameraSimulator(model)
    sat_e = saturation_e(model)
    photons, exposures, irradiance = series_levels(model, cmos8, levels)
    # Spatial set at 50 % of saturation (electrons), its exposure at the same irradiance.
    spatial_photons = 0.5 * sat_e / model.quantum_efficiency
    spatial_exposure = spatial_photons / irradiance
    descriptor = sim.write_emva(folder / name.replace(" ", "-"), photons, list(exposures), frames=2,
                                spatial_frames=spatial_frames, spatial_photons=spatial_photons,
                                spatial_exposure_s=spatial_exposure, rng=seed)

    # Truth. Per-pixel maps of the noise-free output (first order, below saturation).
    bright = sim.expected_mean_dn(spatial_photons, spatial_exposure)
    dark = sim.expected_mean_dn(0.0, spatial_exposure)
    net_map = bright - dark
    g2 = float(np.mean(sim.gain_map_dn_per_e ** 2))
    sigma_y_dark = math.sqrt(g2 * model.read_noise_e ** 2 + 1 / 12)
    # Linearity: the noise-free curve of the typical pixel at the descriptor's levels below saturation.
    ph = np.asarray(photons)
    net = np.array([model.mean_dn(p, t) - model.mean_dn(0.0, t) for p, t in zip(ph, exposures)])
    below = model.quantum_efficiency * ph + model.dark_current_e_per_s * exposures <= sat_e
    le_min, le_max = (round(v, 9) + 0.0 for v in emva_linearity_error(ph[below], net[below], net[below].max()))
    truth = {
        "K": model.gain_dn_per_e,                         # mean gain; slope at zero signal
        "mu_dark": model.offset_dn,                       # at zero exposure
        "sigma_y_dark": sigma_y_dark,                     # at zero exposure, with the 1/12 of rounding
        "sigma_d": model.read_noise_e,
        "qe_pct": 100 * model.quantum_efficiency,
        "sat_e": sat_e,
        "le_min": le_min, "le_max": le_max,
        "dsnu_e": float(dark.std() / model.gain_dn_per_e),
        "prnu_pct": float(100 * net_map.std() / net_map.mean()),
        "dark_current": model.dark_current_e_per_s,
    }
    own = name in ("8-bit CMOS", "mild non-linear")   # cameras that replace COMMON: all their parameters
    spread = ", ".join(f"{k}={v}" for k, v in (params if own else extra).items()) or "linear"
    description = (f"simulated '{name}' ({spread}): {size}x{size}, {levels} levels x 2 frames "
                   f"(exposure {1e3 * exposures[0]:.2f}..{1e3 * exposures[-1]:.0f} ms, up to {OVERDRIVE:g} x saturation"
                   + (f", first level 'b 0.0 {photons[0]:g}'" if cmos8 else "")
                   + f"), spatial {spatial_frames}+{spatial_frames} frames, seed {seed}")
    return descriptor, truth, description


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------

def fmt(value, spec) -> str:
    if value is None:
        return "-"
    return spec.format(value)


def print_table(title: str, truth: dict | None, results: dict) -> None:
    print(f"\n=== {title}")
    sides = [s for s in ("noisestat", "emva1288") if s in results]
    for side in results:
        if "error" in results[side]:
            print(f"  {side}: FAILED: {results[side]['error']}")
    header = ["quantity", "unit"] + (["truth"] if truth else []) + sides
    rows = []
    for key, label, unit, spec in ROWS:
        vals = [fmt(results[s].get("values", {}).get(key), spec) if "error" not in results[s] else "error"
                for s in sides]
        if truth is None and all(v == "-" for v in vals):
            continue
        rows.append([label, unit] + ([fmt(truth.get(key), spec)] if truth else []) + vals)

    def timing(side):
        r = results.get(side)
        if not r or "error" in r:
            return "-"
        return f"{min(r['times']):.3f}"

    def memory(side):
        r = results.get(side)
        if not r or "error" in r:
            return "-"
        return f"{r['rss_peak_mib']:.0f} (+{r['rss_peak_mib'] - r['rss_imports_mib']:.0f})"

    rows.append(["wall time, best of %d" % max(len(r.get("times", [])) for r in results.values()), "s"]
                + (["" ] if truth else []) + [timing(s) for s in sides])
    if "noisestat-nomaps" in results:
        rows.append(["  noisestat without per-pixel maps", "s"] + ([""] if truth else [])
                    + [timing("noisestat-nomaps")] + [""] * (len(sides) - 1))
    rows.append(["peak RSS (+ over imports)", "MiB"] + ([""] if truth else []) + [memory(s) for s in sides])
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = lambda r: "  " + "  ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w)  # noqa: E731
                                      for i, (c, w) in enumerate(zip(r, widths)))
    print(line(header))
    print("  " + "  ".join("-" * w for w in widths))
    for r in rows:
        print(line(r))
    for side in sides:
        notes = results[side].get("values", {}).get("_notes")
        if notes:
            print(f"  {side}: " + ", ".join(f"{k}: {v}" for k, v in notes.items()))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emva", type=Path, default=DEFAULT_EMVA,
                        help="real EMVA 1288 descriptor (default: the Basler CCD set in ../shared/data)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: {QUICK['size']}x{QUICK['size']} cameras, {QUICK['levels']} levels, "
                             f"{QUICK['spatial_frames']} spatial frames, 1 run per side")
    parser.add_argument("--repeats", type=int, help="runs per side, best time reported (default 3; --quick 1)")
    parser.add_argument("--size", type=int, help=f"side of the simulated sensor (default {FULL['size']})")
    parser.add_argument("--levels", type=int, help=f"temporal levels of the simulated series (default {FULL['levels']})")
    parser.add_argument("--spatial-frames", type=int,
                        help=f"bright and dark frames of the simulated spatial set (default {FULL['spatial_frames']})")
    parser.add_argument("--cameras", default=",".join(CAMERAS),
                        help="simulated cameras to run, comma-separated (default: all: %(default)s)")
    parser.add_argument("--skip-real", action="store_true", help="simulated cameras only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="write the simulated sets here and keep them (default: a temp dir)")
    parser.add_argument("--false-nonlinear", type=int, metavar="SEEDS",
                        help="only count how often truly linear simulated cameras are called non-linear over SEEDS "
                             "series each (--size default 64, --levels default 30); needs no emva1288")
    parser.add_argument("--_side", choices=("noisestat", "noisestat-nomaps", "emva1288"), help=argparse.SUPPRESS)
    parser.add_argument("--_descriptor", help=argparse.SUPPRESS)
    parser.add_argument("--_result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args._side:
        try:
            answer = worker(args._side, args._descriptor, args.repeats or 1)
        except Exception:
            print(traceback.format_exc(), file=sys.stderr)
            return 1
        Path(args._result).write_text(json.dumps(answer))
        return 0

    if args.false_nonlinear:
        false_nonlinear(args.false_nonlinear, args.size or 64, args.levels or FULL["levels"])
        return 0

    why = emva_importable()
    if why is not None:
        print("bench_calibrate: the EMVA 1288 reference implementation (emva1288) cannot be imported with "
              f"{sys.executable} ({why}).\nInstall it in a separate virtual environment and run this script "
              "with that interpreter, e.g.\n"
              "  python3 -m venv /tmp/emva-venv && /tmp/emva-venv/bin/pip install emva1288==1.0.2 -e .\n"
              "  /tmp/emva-venv/bin/python benchmarks/bench_calibrate.py --quick\n"
              "Nothing was measured.")
        return 0
    import emva1288
    import noisestat

    cfg = dict(QUICK if args.quick else FULL)
    for key in ("size", "levels", "spatial_frames"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    repeats = args.repeats or (1 if args.quick else 3)
    cameras = [c.strip() for c in args.cameras.split(",") if c.strip()]
    unknown = [c for c in cameras if c not in CAMERAS]
    if unknown:
        parser.error(f"unknown camera(s) {unknown}; choose from {list(CAMERAS)}")
    print(f"noisestat {noisestat.__version__} vs emva1288 {emva1288.__version__} (numpy {np.__version__}, "
          f"np.asfarray shimmed for emva1288); python {sys.version.split()[0]}; {os.cpu_count()} CPUs")
    print(f"each side in a fresh interpreter; wall time = read descriptor + images + compute, "
          f"best of {repeats}; peak RSS = VmHWM of that interpreter over the runs (+ = above its RSS after imports)")

    if not args.skip_real:
        path = args.emva.resolve() if args.emva.exists() else args.emva
        if not args.emva.is_file():
            print(f"\n=== real data set: skipped, {args.emva} not found (give one with --emva PATH)")
        else:
            results = run_sides(path, repeats)
            print_table(f"real data set {path}", None, results)

    with tempfile.TemporaryDirectory(prefix="bench_calibrate_") as tmp:
        folder = args.keep or Path(tmp)
        for i, name in enumerate(cameras):
            t0 = time.perf_counter()
            descriptor, truth, description = write_camera(folder, name, CAMERAS[name], cfg, args.seed + i)
            written = time.perf_counter() - t0
            results = run_sides(descriptor, repeats)
            print_table(f"{description} (written in {written:.1f} s)", truth, results)
    if args.keep:
        print(f"\nsimulated sets kept in {args.keep}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
