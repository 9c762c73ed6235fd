"""Camera calibration: from a flat-field series (or one image) to a camera profile.

    series = read_emva_descriptor("EMVA1288_Data.txt")        # or read_stacks(flats, darks)
    result = calibrate_series(series)                        # photon transfer, maps, profile
    save_profile(result.profile, "camera.json")

See :mod:`noisestat.calibrate._ptc` for the photon-transfer definitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..io._files import file_sha256
from ..camera._profile import CameraProfile, NoiseMap
from ._maps import MIN_DARK_DOF, MIN_DARK_FRAMES, MIN_GAIN_DOF, frame_counts, pixel_maps
from ._plot import plot_photon_transfer
from ._ptc import PhotonTransfer, photon_transfer
from ._readers import FlatFieldSeries, Level, read_emva_descriptor, read_stacks

__all__ = ["Calibration", "calibrate_series", "calibrate_image", "plot_noise_fit", "read_emva_descriptor", "read_stacks", "FlatFieldSeries", "Level",
           "PhotonTransfer", "photon_transfer", "plot_photon_transfer", "format_calibration"]


@dataclass(frozen=True)
class Calibration:
    """A calibration's photon transfer analysis and the camera profile built from it."""

    ptc: PhotonTransfer
    profile: CameraProfile
    warnings: tuple = ()


def calibrate_series(series: FlatFieldSeries, *, per_pixel: bool | None = None,
                     bit_depth: int | None = None) -> Calibration:
    """Photon transfer, optional per-pixel maps and the camera profile of a flat-field series.

    Parameters
    ----------
    series : FlatFieldSeries
    per_pixel : bool or None
        Compute per-pixel maps: None (default) when the series has enough frames
        (:data:`noisestat.calibrate._maps.MIN_DARK_FRAMES`, ``MIN_GAIN_DOF``), True to require them,
        False to skip.
    """
    from ..errors import InputError

    if len(series.levels) < 2:
        raise InputError(f"{series.source}: a photon transfer curve needs at least 2 light levels; "
                         f"got {len(series.levels)}")
    ptc = photon_transfer(series)
    warnings = list(ptc.warnings)
    maps = None
    if per_pixel is not False:
        levels = sorted(series.levels, key=lambda lv: float(lv.bright.mean()))
        maps = pixel_maps(levels, ptc.fit_mask, ptc.gain_dn_per_e)
        if maps is None and per_pixel:
            n = frame_counts(levels, ptc.fit_mask)
            raise InputError(f"{series.source}: too few frames for per-pixel maps: {n['dark_frames']} dark frame(s) in "
                             f"{n['dark_stacks']} distinct stack(s) ({n['dark_dof']} degrees of freedom, need "
                             f"{MIN_DARK_DOF}, e.g. {MIN_DARK_FRAMES} frames in one stack) and {n['gain_dof']} degrees "
                             f"of freedom over the fitted levels (need {MIN_GAIN_DOF})")
    bits = bit_depth or series.bit_depth or int(max(int(lv.bright.max()) for lv in series.levels)).bit_length()
    if series.kind == "EMVA 1288 descriptor" and Path(series.source).is_file():
        source = {"kind": series.kind, "file": Path(series.source).name, "sha256": file_sha256(series.source)}
    else:
        source = {"kind": "flat-field stacks", "files": [lv.name for lv in series.levels]}
    source["levels"] = len(series.levels)
    if series.spatial is not None:
        source["spatial_set"] = series.spatial.name
    extra = {
        "source": source,
        "noisestat": __version__,
        "gain_se_dn_per_e": ptc.gain_se,
        "read_noise_se_dn": ptc.read_noise_se,
        "dark_noise_e": ptc.sigma_d_e,
        "saturation_dn": ptc.saturation_dn,
        "saturation_capacity_e": ptc.saturation_capacity_e,
        "linearity": ptc.linearity,
    }
    if ptc.quantum_efficiency is not None:
        extra["quantum_efficiency"] = ptc.quantum_efficiency
    if ptc.dark_current_e_per_s is not None:
        extra["dark_current_e_per_s"] = ptc.dark_current_e_per_s
        extra["dark_current_se_e_per_s"] = ptc.extra.get("dark_current_se_e_per_s")
    if "dark_current_fit_e_per_s" in ptc.extra and ptc.extra["dark_current_fit_e_per_s"] != ptc.dark_current_e_per_s:
        extra["dark_current_fit_e_per_s"] = ptc.extra["dark_current_fit_e_per_s"]
    if warnings:
        extra["calibration_warnings"] = list(warnings)
    if ptc.spatial is not None:
        extra["spatial_nonuniformity"] = ptc.spatial
    noise_map = None
    if ptc.noise_map is not None:
        noise_map = NoiseMap.from_json(ptc.noise_map, "noise map")
        extra["noise_map"] = {"method": ptc.noise_map["method"]}
    if maps is not None:
        extra["pixel_maps"] = {"method": "offset and read variance from the dark frames; gain by weighted "
                                         "least squares over the fitted levels (Huang et al. 2013)"}
    profile = CameraProfile(ptc.gain_dn_per_e, ptc.offset_dn, ptc.read_noise_dn, int(bits), extra, noise_map, maps)
    return Calibration(ptc, profile, tuple(warnings))


#: Real sensors' dark currents lie between about 0.001 e-/s (cooled) and a few hundred e-/s (warm):
#: an estimate whose standard error exceeds both its own value and this says nothing about the sensor
#: (exposures of nanoseconds give standard errors of 1e5 e-/s) and is not printed as a number.
DARK_CURRENT_RESOLVED_E_PER_S = 100.0


def _dark_current_resolved(value: float | None, se: float | None) -> bool:
    """Whether a dark current estimate is worth printing as a number: its standard error is at most
    its value or :data:`DARK_CURRENT_RESOLVED_E_PER_S`.

    Examples
    --------
    >>> _dark_current_resolved(23.4, 5.2), _dark_current_resolved(0.0, 2.3e5), _dark_current_resolved(4e5, 1e5)
    (True, False, True)
    """
    if value is None:
        return False
    if se is None:
        return True
    return bool(np.isfinite(se)) and se <= max(abs(value), DARK_CURRENT_RESOLVED_E_PER_S)


def _duration(seconds: float) -> str:
    """``seconds`` in the unit that gives 1 to 999 of it (ns, µs, ms, s)."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_calibration(cal: Calibration) -> str:
    """The summary table printed by ``noisestat calibrate``."""
    p, ptc = cal.profile, cal.ptc
    lin = ptc.linearity
    rows = [("system gain K", f"{p.gain_dn_per_e:.5g} ± {ptc.gain_se:.2g}", "DN/e-")]
    if ptc.nonlinear:
        rows = [("system gain K (slope at zero)", f"{p.gain_dn_per_e:.5g} ± {ptc.gain_se:.2g}", "DN/e-"),
                ("K, EMVA 1288 straight line", f"{lin['gain_emva_dn_per_e']:.5g} ± "
                                               f"{lin['gain_emva_se_dn_per_e']:.2g}", "DN/e-")]
    rows += [
        ("inverse gain 1/K", f"{1 / p.gain_dn_per_e:.4g}", "e-/DN"),
        ("mean dark value mu_y.dark", f"{p.offset_dn:.3f}", "DN"),
        ("temporal dark noise sigma_y.dark", f"{p.read_noise_dn:.4g} ± {ptc.read_noise_se:.2g}", "DN"),
        ("dark noise sigma_d", f"{ptc.sigma_d_e:.4g}", "e-"),
        ("saturation (variance peak)", f"{ptc.saturation_dn:.1f}", "DN"),
        ("saturation capacity", f"{ptc.saturation_capacity_e:.0f}", "e-"),
        ("levels fitted / excluded", f"{int(ptc.fit_mask.sum())} / {int(ptc.excluded.sum())}", ""),
        ("non-linear", "yes (noise map stored)" if ptc.nonlinear else "no", "")]
    if ptc.quantum_efficiency is not None:
        rows.append(("quantum efficiency", f"{100 * ptc.quantum_efficiency:.1f}", "%"))
    if "linearity_error_min_pct" in lin:
        rows.append(("linearity error min / max", f"{lin['linearity_error_min_pct']:.2f} / "
                                                  f"{lin['linearity_error_max_pct']:.2f}", "%"))
    if ptc.dark_current_e_per_s is not None:
        se = ptc.extra.get("dark_current_se_e_per_s")
        if _dark_current_resolved(ptc.dark_current_e_per_s, se):
            rows.append(("dark current (from the mean)", f"{ptc.dark_current_e_per_s:.3g}"
                         + (f" ± {se:.2g}" if se is not None else ""), "e-/s"))
        else:
            times = ptc.exposure_s[np.isfinite(ptc.exposure_s)]
            rows.append(("dark current (from the mean)", "not resolved",
                         f"(± {se:.2g} e-/s: exposures {_duration(times.min())} to {_duration(times.max())} "
                         f"are too short to measure it)"))
    if ptc.spatial:
        rows.append(("DSNU1288", f"{ptc.spatial['dsnu1288_e']:.3g}", "e-"))
        if "prnu1288_pct" in ptc.spatial:
            rows.append(("PRNU1288", f"{ptc.spatial['prnu1288_pct']:.3g}", "%"))
    if p.pixel_maps is not None:
        g = p.pixel_maps.gain_dn_per_e
        rows.append(("per-pixel gain (median, sd)", f"{float(__import__('numpy').median(g)):.4g}, "
                                                    f"{float(g.std()):.2g}", "DN/e-"))
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{name:<{width}}  {value:>22} {unit}" for name, value, unit in rows)


def calibrate_image(path, *, bit_depth: int | None = None, offset_dn: float | None = None,
                    channel: int | None = None, plane: int | None = None):
    """Single-image noise estimate (Foi-style, clipping-aware) as a camera profile.

    The profile is marked ``"estimate": "single-image"``: it is a fit of var(y) = a*y + b to one
    image, not a calibration. Gain and read noise cannot be separated from the offset without dark
    frames; ``offset_dn`` (a measured mean dark value) makes the split exact.

    The bit depth is ``bit_depth`` when given, else the file's integer container (uint8 -> 8,
    uint16 -> 16): the values an image holds say little about its camera's digitiser (a 16-bit
    camera's image of a dim scene may never pass 2048). A ``bit_depth`` below the container is
    used as given and named in ``profile.extra["calibration_warnings"]``, with every floored
    value of :func:`~noisestat.calibrate._single_image.profile_from_fit`. ``channel`` and ``plane``
    choose one 2D plane of a multi-channel file or stack (as for :func:`~noisestat.io.read_image`).
    Every refusal (InputError) names the file.

    Returns
    -------
    profile : CameraProfile
    fit : NoiseFit
    """
    from ..io._files import read_image
    from ._single_image import estimate_noise, profile_from_fit

    from ..errors import InputError

    image = read_image(path, channel=channel, plane=plane)
    if image.ndim != 2:
        raise InputError(f"{path}: is a volume of shape {image.shape}; a single-image estimate needs one 2D "
                         f"plane: choose it with --plane N (0 to {image.shape[0] - 1})")
    container = image.dtype.itemsize * 8 - (1 if image.dtype.kind == "i" else 0)
    warnings = []
    if bit_depth is None:
        bits, bits_source = container, f"the file's container ({image.dtype})"
    else:
        bits, bits_source = int(bit_depth), "given"
        if bits < container:
            warnings.append(f"{Path(path).name}: bit depth {bits} (given) is below the file's {image.dtype} "
                            f"container ({container} bits); values above {2**bits - 1} DN would be refused")
    try:
        fit = estimate_noise(image, bit_depth=bits)
        keys = profile_from_fit(fit, bit_depth=bits, offset_dn=offset_dn)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    warnings += keys.pop("calibration_warnings")
    extra = {k: v for k, v in keys.items() if k not in ("gain_dn_per_e", "offset_dn", "read_noise_dn", "bit_depth")}
    extra["bit_depth_source"] = bits_source
    if warnings:
        extra["calibration_warnings"] = warnings
    extra["source"] = {"kind": "single image", "file": Path(path).name, "sha256": file_sha256(path)}
    if channel is not None or plane is not None:
        extra["source"].update({k: v for k, v in (("channel", channel), ("plane", plane)) if v is not None})
    extra["noisestat"] = __version__
    profile = CameraProfile(float(keys["gain_dn_per_e"]), float(keys["offset_dn"]), float(keys["read_noise_dn"]),
                            int(keys["bit_depth"]), extra)
    return profile, fit


def plot_noise_fit(fit, path) -> None:
    """PNG of a single-image fit: level-set variances against means, and the fitted line."""
    import matplotlib
    import numpy as np

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.plot(fit.levels_mean, fit.levels_var, "o", label="level sets (smooth regions)")
    grid = np.linspace(0, float(np.max(fit.levels_mean)) * 1.05, 100)
    ax.plot(grid, fit.a * grid + fit.b, "-", label=f"var = {fit.a:.4g} y + {fit.b:.4g}")
    ax.set_xlabel("local mean y (DN)")
    ax.set_ylabel("noise variance (DN²)")
    ax.set_title("Single-image noise estimate (not a calibration)")
    ax.legend()
    from ..io._files import atomic_file

    with atomic_file(path) as handle:
        fig.savefig(handle, format="png", dpi=110)
