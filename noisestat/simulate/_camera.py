"""A seeded camera and scene simulator, for the demo and for tests with known truth.

Two cameras live here:

* :func:`acquire` is the linear Poisson-Gaussian chain of :class:`~noisestat.camera.CameraProfile`:
  electrons ~ Poisson(signal), times the gain K, plus the offset and Gaussian read noise, quantised
  once (rounded to whole DN) and clipped to the bit depth. The demo and the pipeline tests use it.
* :class:`CameraSimulator` is a fuller EMVA 1288 style camera (:class:`CameraModel`) with quantum
  efficiency, dark current, full-well saturation, fixed-pattern maps (DSNU, PRNU, per-pixel gain)
  and an optional non-linearity, which writes EMVA 1288 descriptor sets and TIFF stacks, so that a
  calibration can be tested against a camera whose truth is known.

Unlike the EMVA 1288 reference simulator, :class:`CameraSimulator` quantises once (rounding the
analogue value, no extra Gaussian "quantisation noise"), lets read noise take electrons below zero
before the ADC (a real readout chain is not clipped there; clipping would bias the dark mean up
and its variance down), and draws a gain per pixel when asked (sCMOS).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from ..camera._profile import CameraProfile

__all__ = ["simulate_scene", "acquire", "sparse_labels", "DEMO_CAMERA", "CameraModel", "CameraSimulator"]

DEMO_CAMERA = CameraProfile(gain_dn_per_e=0.46, offset_dn=100.0, read_noise_dn=1.6, bit_depth=16)


def simulate_scene(shape=(512, 512), *, n_objects=None, radius=(4.0, 11.0), background_e=300.0,
                   object_e=1500.0, rng=None):
    """A field of elliptical cells on a slowly varying background.

    Parameters
    ----------
    shape : (rows, cols)
    n_objects : int, optional
        Default: one per 2500 pixels.
    radius : (min, max)
        Semi-axis range of the ellipses, in pixels.
    background_e, object_e : float
        Mean photo-electrons of the background and extra electrons inside a cell.
    rng : Generator, int or None

    Returns
    -------
    electrons : ndarray of float, shape ``shape``
        Noise-free expected photo-electrons per pixel.
    truth : ndarray of bool
        The cells' true footprint.
    """
    rng = np.random.default_rng(rng)
    rows, cols = shape
    if n_objects is None:
        n_objects = rows * cols // 2500
    yy, xx = np.mgrid[:rows, :cols]
    truth = np.zeros(shape, dtype=bool)
    for _ in range(n_objects):
        cy, cx = rng.uniform(0, rows), rng.uniform(0, cols)
        a, b = rng.uniform(*radius, size=2)
        t = rng.uniform(0, np.pi)
        u = (yy - cy) * np.cos(t) + (xx - cx) * np.sin(t)
        v = -(yy - cy) * np.sin(t) + (xx - cx) * np.cos(t)
        truth |= (u / a) ** 2 + (v / b) ** 2 < 1
    electrons = (ndi.gaussian_filter(truth.astype(float), 1.2) * object_e + background_e
                 + 0.2 * background_e * np.sin(xx / cols * 4))
    return electrons, truth


def acquire(electrons: np.ndarray, profile: CameraProfile, rng=None, *, dtype=np.uint16) -> np.ndarray:
    """One acquisition of a scene of expected ``electrons`` by the camera ``profile``.

    ``profile.read_noise_dn`` is the total temporal dark noise, quantisation included (the
    definition of calibration/README.md), so the analog read noise added before rounding has the
    variance ``read_noise_dn**2 - 1/12``: a dark frame then has the profile's dark variance.
    """
    rng = np.random.default_rng(rng)
    y = profile.offset_dn + profile.gain_dn_per_e * rng.poisson(electrons)
    analog_sd = math.sqrt(max(profile.read_noise_dn ** 2 - 1.0 / 12.0, 0.0))
    y = y + rng.normal(0.0, analog_sd, electrons.shape)
    return np.clip(np.rint(y), 0, profile.max_dn).astype(dtype)


def sparse_labels(truth: np.ndarray, *, fraction=0.02, rng=None) -> np.ndarray:
    """Scribble-like sparse labels from a true mask: 1 background, 2 object, 0 unlabelled.

    A random ``fraction`` of pixels is labelled, only well inside cells (eroded by 2 px) or well
    outside (3 px away), as a user's scribbles would be.
    """
    rng = np.random.default_rng(rng)
    pick = rng.random(truth.shape) < fraction
    labels = np.zeros(truth.shape, dtype=np.uint8)
    labels[pick & ~ndi.binary_dilation(truth, iterations=3)] = 1
    labels[pick & ndi.binary_erosion(truth, iterations=2)] = 2
    return labels


# --------------------------------------------------------------------------------------------------
# EMVA 1288 style camera with known truth
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CameraModel:
    """Truth of a simulated camera (all per-pixel spreads are standard deviations).

    The chain, per pixel and frame (see :meth:`CameraSimulator.acquire`)::

        n_e   = Poisson(QE * s_ij * photons + dark_current_e_per_s * exposure_s)
        n_e   = min(n_e, full_well_e)                       # saturation of the well
        n_e  += Normal(0, read_noise_e)                     # may go below 0: not clipped
        lin   = g_ij * n_e                                  # DN above the offset
        y     = o_ij + response_dn(lin)                     # non-linearity on the part above offset
        y     = clip(rint(y), 0, 2**bit_depth - 1)          # quantised once, then the ADC range

    with the fixed-pattern maps ``o_ij`` (offset, mean ``offset_dn``, spread ``dsnu_dn``),
    ``s_ij`` (sensitivity, mean 1, spread ``prnu``) and ``g_ij`` (gain, mean ``gain_dn_per_e``,
    spread ``gain_spread * gain_dn_per_e``).

    Attributes
    ----------
    shape : (rows, cols)
    gain_dn_per_e : float
        Mean system gain K (DN per electron).
    offset_dn : float
        Mean dark value at zero exposure, before dark current (DN).
    read_noise_e : float
        Temporal dark noise, Gaussian, in electrons, added before the ADC.
    bit_depth : int
        ADC bits, 1 to 16 (frames are uint16); the ADC clips at ``2**bit_depth - 1``.
    quantum_efficiency : float
        Mean electrons per photon, 0 to 1.
    full_well_e : float
        The well holds at most this many electrons (saturation).
    dark_current_e_per_s : float
        Mean dark electrons per second; Poisson, so it adds shot noise as well as signal.
    dsnu_dn : float
        Spread of the per-pixel offset (dark signal non-uniformity), DN.
    prnu : float
        Relative spread of the per-pixel sensitivity (photo response non-uniformity).
    gain_spread : float
        Relative spread of the per-pixel gain (sCMOS: each pixel its own K).
    nonlinearity : float
        Coefficient ``a`` of the response curve ``response_dn(lin) = lin + a * lin**2 / 2**bit_depth``
        (``a > 0`` expansive, ``a < 0`` compressive, ``|a| <= 1``). Beyond the curve's extremum
        (``|lin| > 2**bit_depth / (2 |a|)``, on the side where it would turn back) the output is held
        at the extremum so that the curve stays monotone.
    pattern_seed : int
        Seeds the fixed-pattern maps: same model, same maps.
    """

    shape: tuple[int, int] = (128, 128)
    gain_dn_per_e: float = 0.5
    offset_dn: float = 100.0
    read_noise_e: float = 4.0
    bit_depth: int = 12
    quantum_efficiency: float = 0.6
    full_well_e: float = 6000.0
    dark_current_e_per_s: float = 0.0
    dsnu_dn: float = 0.0
    prnu: float = 0.0
    gain_spread: float = 0.0
    nonlinearity: float = 0.0
    pattern_seed: int = 0

    def __post_init__(self):
        shape = tuple(int(n) for n in self.shape)
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"shape must be two positive integers (rows, cols); got {self.shape!r}")
        object.__setattr__(self, "shape", shape)
        bits = self.bit_depth
        if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 16:
            raise ValueError(f"bit_depth must be an integer from 1 to 16 (frames are uint16); got {bits!r}")
        checks = {
            "gain_dn_per_e": self.gain_dn_per_e > 0,
            "full_well_e": self.full_well_e > 0,
            "quantum_efficiency": 0 <= self.quantum_efficiency <= 1,
            "nonlinearity": abs(self.nonlinearity) <= 1,
            "offset_dn": 0 <= self.offset_dn < 2**bits,
        }
        for name in ("read_noise_e", "dark_current_e_per_s", "dsnu_dn", "prnu", "gain_spread"):
            checks[name] = getattr(self, name) >= 0
        for name, ok in checks.items():
            value = getattr(self, name)
            if not (math.isfinite(value) and ok):
                raise ValueError(f"CameraModel.{name} is out of range: {value!r}")

    @property
    def max_dn(self) -> int:
        """Largest value the ADC outputs, ``2**bit_depth - 1``."""
        return 2 ** int(self.bit_depth) - 1

    # The curve and its inverse are written for arrays so that the simulator, the truth methods
    # and the tests share one definition.
    def _curve_c(self) -> float:
        return self.nonlinearity / 2.0 ** self.bit_depth

    def _clamp_lin(self, lin_dn):
        c = self._curve_c()
        if c == 0:
            return lin_dn
        peak = -1.0 / (2.0 * c)  # extremum of lin + c lin^2
        return np.minimum(lin_dn, peak) if c < 0 else np.maximum(lin_dn, peak)

    def response_dn(self, lin_dn):
        """Output DN above the offset for ``lin_dn`` DN of linear signal above the offset.

        ``lin + a * lin**2 / 2**bit_depth``, held flat beyond its extremum (see ``nonlinearity``).
        The identity when ``nonlinearity == 0``.
        """
        lin = self._clamp_lin(np.asarray(lin_dn, dtype=np.float64))
        return lin + self._curve_c() * lin * lin

    def response_slope(self, lin_dn):
        """Derivative of :meth:`response_dn` (dimensionless)."""
        lin = np.asarray(lin_dn, dtype=np.float64)
        return np.maximum(1.0 + 2.0 * self._curve_c() * self._clamp_lin(lin), 0.0)

    def inverse_response_dn(self, out_dn):
        """Linear DN above the offset that :meth:`response_dn` maps to ``out_dn``.

        Outputs beyond the curve's extremum map to the extremum.
        """
        y = np.asarray(out_dn, dtype=np.float64)
        c = self._curve_c()
        # Root of c l^2 + l - y = 0 that is continuous at c = 0, written so that it does not
        # cancel for small c: l = 2y / (1 + sqrt(1 + 4cy)).
        return 2.0 * y / (1.0 + np.sqrt(np.maximum(1.0 + 4.0 * c * y, 0.0)))

    def mean_dn(self, photons, exposure_s: float = 0.0):
        """Noise-free output (DN) of a typical pixel: ``offset + response(K * (QE*photons + dark_e))``.

        Uses the model's mean offset, gain and sensitivity, and ignores saturation and the ADC range.
        The measured mean of a non-linear camera differs from it by about
        ``a / 2**bit_depth * variance_lin`` (the curvature times the variance before the curve).
        """
        mean_e = self.quantum_efficiency * np.asarray(photons, dtype=np.float64) \
            + self.dark_current_e_per_s * exposure_s
        return self.offset_dn + self.response_dn(self.gain_dn_per_e * mean_e)

    def variance_dn2(self, mean_dn):
        """True temporal variance (DN^2) of a typical pixel whose noise-free output is ``mean_dn``.

        Defined as::

            lin = inverse_response_dn(mean_dn - offset_dn)          # linear DN above the offset
            var = response_slope(lin)**2 * (K * max(lin, 0) + K**2 * read_noise_e**2) + 1/12

        i.e. shot noise of all collected electrons (photo-electrons and dark current, both Poisson,
        so ``K * lin``), read noise, both carried through the non-linearity to first order (delta
        method), plus the variance of one rounding to integer DN, added after the curve. For a linear
        camera this is exact: ``K (mu - offset) + K^2 read^2 + 1/12``.

        Not included: fixed pattern (it is not temporal); per-pixel gain and offset spreads (the
        model's means are used; per-pixel truth is :meth:`CameraSimulator.expected_variance_dn2`);
        saturation and ADC clipping (valid well below both); the second-order term of the
        non-linearity, ``2 (a / 2**bit_depth)**2 var_lin**2``, negligible for ``|a| <= 1``. The 1/12 is
        the rounding variance when the noise before rounding is at least ~0.5 DN; with less, the
        rounding variance depends on where the mean falls between two integers.

        Parameters
        ----------
        mean_dn : float or array
            Noise-free mean output, DN (:meth:`mean_dn`).
        """
        lin = self.inverse_response_dn(np.asarray(mean_dn, dtype=np.float64) - self.offset_dn)
        k = self.gain_dn_per_e
        var_lin = k * np.maximum(lin, 0.0) + (k * self.read_noise_e) ** 2
        return self.response_slope(lin) ** 2 * var_lin + 1.0 / 12.0


def _standard_normal_map(seed_seq: np.random.SeedSequence, shape) -> np.ndarray:
    """A map of standard normal values standardised to sample mean 0 and sample std 1 exactly.

    Standardising makes the simulated camera's maps have exactly the requested mean and spread, so
    a calibration can be compared with the truth without the sampling error of the map itself.
    """
    z = np.random.default_rng(seed_seq).standard_normal(shape)
    z -= z.mean()
    std = z.std()
    return z / std if std > 0 else z


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


class CameraSimulator:
    """A seeded camera following :class:`CameraModel`.

    The fixed-pattern maps are drawn once, here, from ``model.pattern_seed``: every acquisition and
    every simulator of the same model sees the same maps. Each map has its own random stream, so
    turning on one spread does not change the pattern of another.

    Parameters
    ----------
    model : CameraModel

    Attributes
    ----------
    model : CameraModel
    offset_map_dn : ndarray, read-only
        Per-pixel offset (DN); mean ``offset_dn``, spread ``dsnu_dn``.
    sensitivity_map : ndarray, read-only
        Per-pixel relative sensitivity; mean 1, spread ``prnu`` (floored at 0).
    gain_map_dn_per_e : ndarray, read-only
        Per-pixel gain (DN/e-); mean ``gain_dn_per_e``, spread ``gain_spread * gain_dn_per_e``
        (floored at 1e-6 K, which matters only for spreads near 1).

    Examples
    --------
    >>> sim = CameraSimulator(CameraModel(shape=(4, 6)))
    >>> sim.acquire(1000.0, frames=3, rng=1).shape
    (3, 4, 6)
    """

    def __init__(self, model: CameraModel):
        self.model = model
        shape = model.shape
        s_offset, s_sens, s_gain = np.random.SeedSequence(model.pattern_seed).spawn(3)
        # Sample standard deviations are exactly the requested spreads (see _standard_normal_map);
        # only the non-physical floors below can change them, for spreads near 1.
        self._offset_map = _readonly(model.offset_dn + model.dsnu_dn * _standard_normal_map(s_offset, shape))
        self._sensitivity_map = _readonly(np.maximum(1.0 + model.prnu * _standard_normal_map(s_sens, shape), 0.0))
        gain = model.gain_dn_per_e * (1.0 + model.gain_spread * _standard_normal_map(s_gain, shape))
        self._gain_map = _readonly(np.maximum(gain, 1e-6 * model.gain_dn_per_e))

    @property
    def offset_map_dn(self) -> np.ndarray:
        return self._offset_map

    @property
    def sensitivity_map(self) -> np.ndarray:
        return self._sensitivity_map

    @property
    def gain_map_dn_per_e(self) -> np.ndarray:
        return self._gain_map

    def __repr__(self):
        return f"CameraSimulator({self.model!r})"

    # -- truth per pixel -------------------------------------------------------------------------

    def _mean_e(self, photons, exposure_s):
        photons = np.asarray(photons, dtype=np.float64)
        if np.any(photons < 0) or not np.all(np.isfinite(photons)):
            raise ValueError("photons must be finite and >= 0")
        if not (math.isfinite(exposure_s) and exposure_s >= 0):
            raise ValueError(f"exposure_s must be finite and >= 0; got {exposure_s!r}")
        m = self.model
        return np.broadcast_to(m.quantum_efficiency * self._sensitivity_map * photons
                               + m.dark_current_e_per_s * exposure_s, m.shape)

    def expected_mean_dn(self, photons, exposure_s: float = 0.01) -> np.ndarray:
        """Per-pixel noise-free output (DN), ignoring saturation and the ADC range (first order)."""
        lin = self._gain_map * self._mean_e(photons, exposure_s)
        return self._offset_map + self.model.response_dn(lin)

    def expected_variance_dn2(self, photons, exposure_s: float = 0.01) -> np.ndarray:
        """Per-pixel temporal variance (DN^2): :meth:`CameraModel.variance_dn2` with each pixel's gain.

        ``slope(lin)**2 * (g_ij**2 * (mean_e + read_noise_e**2)) + 1/12``; below saturation only.
        """
        m = self.model
        mean_e = self._mean_e(photons, exposure_s)
        lin = self._gain_map * mean_e
        var_lin = self._gain_map ** 2 * (mean_e + m.read_noise_e ** 2)
        return m.response_slope(lin) ** 2 * var_lin + 1.0 / 12.0

    # -- acquisition -----------------------------------------------------------------------------

    def acquire(self, photons, exposure_s: float = 0.01, frames: int = 2, rng=None) -> np.ndarray:
        """Acquire ``frames`` frames of a scene.

        Parameters
        ----------
        photons : float or ndarray
            Mean photons per pixel during the exposure (0 = dark); a scalar (flat field) or an
            array broadcastable to ``model.shape``.
        exposure_s : float
            Exposure time, seconds; only the dark current depends on it (``photons`` is already the
            count during the exposure, as in an EMVA 1288 descriptor).
        frames : int
            Number of frames.
        rng : Generator, int or None
            Temporal noise source. Draw order: all Poisson draws for the ``frames`` frames, then all
            read-noise draws (skipped when ``read_noise_e == 0``).

        Returns
        -------
        ndarray of uint16, shape ``(frames, rows, cols)``
        """
        frames = int(frames)
        if frames < 1:
            raise ValueError(f"frames must be >= 1; got {frames}")
        rng = np.random.default_rng(rng)
        m = self.model
        size = (frames, *m.shape)
        # One Poisson draw for photo-electrons and dark electrons together: the sum of independent
        # Poisson variables is Poisson with the summed mean.
        electrons = rng.poisson(self._mean_e(photons, exposure_s), size=size).astype(np.float64)
        np.minimum(electrons, m.full_well_e, out=electrons)
        if m.read_noise_e > 0:
            # Read noise is added to the analogue signal and is NOT clipped at 0: a real readout
            # chain goes below the dark level, and clipping would bias the dark mean upwards.
            electrons += rng.normal(0.0, m.read_noise_e, size=size)
        lin_dn = electrons * self._gain_map
        if m.nonlinearity:
            lin_dn = m.response_dn(lin_dn)
        dn = lin_dn + self._offset_map
        # The only quantisation: one rounding of the analogue value to integer DN.
        np.rint(dn, out=dn)
        np.clip(dn, 0, m.max_dn, out=dn)
        return dn.astype(np.uint16)

    def photon_series(self, photons: Sequence[float], exposure_s: Sequence[float] | float, frames: int = 2,
                      dark_frames: int = 2, rng=None) -> list[dict]:
        """A photon-transfer series: bright and dark stacks for each light level.

        Parameters
        ----------
        photons : sequence of float
            Mean photons per pixel during the exposure, one per level.
        exposure_s : float or sequence of float
            Exposure time(s), seconds; one for all levels or one per level.
        frames, dark_frames : int
            Frames per bright and per dark stack.
        rng : Generator, int or None
            Draw order: for each level, its bright stack then its dark stack.

        Returns
        -------
        list of dict
            Per level ``{"photons", "exposure_s", "bright": (frames, rows, cols) uint16,
            "dark": (dark_frames, rows, cols) uint16}``.
        """
        rng = np.random.default_rng(rng)
        photons, exposures = _levels(photons, exposure_s)
        out = []
        for p, t in zip(photons, exposures):
            bright = self.acquire(p, t, frames, rng)
            dark = self.acquire(0.0, t, dark_frames, rng)
            out.append({"photons": p, "exposure_s": t, "bright": bright, "dark": dark})
        return out

    # -- files -----------------------------------------------------------------------------------

    def write_emva(self, folder, photons, exposure_s, *, frames: int = 2, spatial_frames: int = 0,
                   spatial_photons: float | None = None, spatial_exposure_s: float | None = None,
                   rng=None, fmt: str = "png") -> Path:
        """Write an EMVA 1288 release 3.0 style measurement: descriptor plus 16-bit image files.

        Mirrors the layout of Basler's reference set 001: ``folder/EMVA1288_Data.txt`` and
        ``folder/images/``; bright frames ``b_LLL_snap_001...``, dark frames ``d_LLL_snap_001...``
        (``LLL`` the level index, snaps numbered from 1), spatial frames ``b_s_000_snap_000...``
        and ``d_s_000_snap_000...`` (numbered from 0). The descriptor lists, as the upstream file
        does, ``v 3.0``, ``n BITS WIDTH HEIGHT``, every bright level (``b EXPOSURE_NS PHOTONS`` and
        its ``i`` lines), then the spatial bright set, then one dark set per distinct exposure time
        (``d EXPOSURE_NS``), then the spatial dark set. Paths use ``/``.

        The reference parser tells temporal from spatial sets by their frame count (exactly 2 is
        temporal) and accepts one dark set per exposure and one bright set per (exposure, photons);
        this writer keeps to those rules with the defaults and refuses what would break them.

        Parameters
        ----------
        folder : path
            Created if missing; existing files of the same names are overwritten.
        photons : sequence of float
            Mean photons per pixel during the exposure, one per temporal level.
        exposure_s : float or sequence of float
            Exposure time(s) in seconds (written in ns).
        frames : int
            Bright and dark frames per temporal level (>= 2; the standard uses 2).
        spatial_frames : int
            Frames of the spatial (fixed-pattern) set, bright and dark; 0 for none, else >= 3 and
            different from ``frames`` so that the sets can be told apart by count.
        spatial_photons : float, optional
            Photons of the spatial set; default 50 % of saturation, as the standard asks:
            ``0.5 * min(full_well_e, (max_dn - offset_dn) / K) / QE`` (linear response assumed).
        spatial_exposure_s : float, optional
            Exposure of the spatial set; default interpolated from the temporal levels' photons
            and exposures (constant exposure stays constant; constant irradiance stays constant).
        rng : Generator, int or None
            Draw order: for each level in order, its bright frames, then its dark frames if its
            exposure time has not had a dark set yet; then the spatial bright frames and the spatial
            dark frames. Each set is one :meth:`acquire` call.
        fmt : {"png", "tif"}
            Image format: 16-bit grayscale PNG (as the reference sets) or TIFF.

        Returns
        -------
        Path
            The descriptor, ``folder/EMVA1288_Data.txt``.
        """
        fmt = fmt.lower().lstrip(".")
        if fmt == "tiff":
            fmt = "tif"
        if fmt not in ("png", "tif"):
            raise ValueError(f"fmt must be 'png' or 'tif'; got {fmt!r}")
        frames, spatial_frames = int(frames), int(spatial_frames)
        if frames < 2:
            raise ValueError(f"frames must be >= 2 (an EMVA 1288 series has at least two images); got {frames}")
        if spatial_frames and (spatial_frames < 3 or spatial_frames == frames):
            raise ValueError("spatial_frames must be 0, or >= 3 and different from frames "
                             f"(parsers tell spatial from temporal sets by frame count); got {spatial_frames}")
        photons, exposures = _levels(photons, exposure_s)
        exposures_ns = [_ns(t) for t in exposures]
        pairs = list(zip(exposures_ns, photons))
        if len(set(pairs)) != len(pairs):
            raise ValueError("two levels have the same exposure time and photons; "
                             "an EMVA 1288 descriptor holds one set per (exposure, photons)")
        m = self.model
        rng = np.random.default_rng(rng)
        folder = Path(folder)
        (folder / "images").mkdir(parents=True, exist_ok=True)

        def save(name: str, stack: np.ndarray) -> list[str]:
            rel = []
            for k, frame in enumerate(stack):
                path = f"images/{name}_snap_{k + start:03d}.{fmt}"
                _write_frame(folder / path, frame, fmt)
                rel.append(path)
            return rel

        bright_lines, dark_lines = [], []
        dark_done = set()
        start = 1  # temporal snaps are numbered from 1, spatial from 0, as in the reference set
        for i, (p, t, t_ns) in enumerate(zip(photons, exposures, exposures_ns)):
            files = save(f"b_{i:03d}", self.acquire(p, t, frames, rng))
            bright_lines += [f"b {t_ns!r} {p!r}"] + [f"i {f}" for f in files]
            if t_ns not in dark_done:
                dark_done.add(t_ns)
                files = save(f"d_{i:03d}", self.acquire(0.0, t, frames, rng))
                dark_lines += [f"d {t_ns!r}"] + [f"i {f}" for f in files]
        if spatial_frames:
            if spatial_photons is None:
                sat_e = min(m.full_well_e, (m.max_dn - m.offset_dn) / m.gain_dn_per_e)
                spatial_photons = 0.5 * sat_e / max(m.quantum_efficiency, 1e-12)
            spatial_photons = float(spatial_photons)
            if spatial_exposure_s is None:
                order = np.argsort(photons, kind="stable")
                spatial_exposure_s = float(np.interp(spatial_photons, np.asarray(photons)[order],
                                                     np.asarray(exposures)[order]))
            t_ns = _ns(spatial_exposure_s)
            start = 0
            files = save("b_s_000", self.acquire(spatial_photons, spatial_exposure_s, spatial_frames, rng))
            bright_lines += [f"b {t_ns!r} {spatial_photons!r}"] + [f"i {f}" for f in files]
            files = save("d_s_000", self.acquire(0.0, spatial_exposure_s, spatial_frames, rng))
            dark_lines += [f"d {t_ns!r}"] + [f"i {f}" for f in files]

        rows, cols = m.shape
        header = ["# Simulated measurement for EMVA1288 Standard Release 3.0, written by noisestat.simulate",
                  "# Truth: " + ", ".join(f"{k}={v!r}" for k, v in asdict(m).items()),
                  "# Exposure times in ns, photons = mean photons per pixel during the exposure",
                  "v 3.0", f"n {m.bit_depth} {cols} {rows}"]
        descriptor = folder / "EMVA1288_Data.txt"
        descriptor.write_text("\n".join(header + bright_lines + dark_lines) + "\n", encoding="utf-8")
        return descriptor

    def write_stacks(self, folder, photons, exposure_s, *, frames: int = 8, rng=None) -> dict:
        """Write one multi-page TIFF per light level and one dark stack per level, plus a sidecar.

        Files: ``level_00.tif``, ``level_01.tif``... (bright), ``dark_00.tif``... (dark, same
        exposure as the level of the same index), each ``frames`` pages of uint16, and
        ``levels.json``::

            {"format": "noisestat-simulated-stacks", "version": 1,
             "levels": [{"index": 0, "file": "level_00.tif", "dark_file": "dark_00.tif",
                         "photons": ..., "exposure_s": ..., "frames": ...}, ...],
             "camera": {CameraModel fields: the truth}}

        Parameters
        ----------
        folder : path
            Created if missing.
        photons, exposure_s
            As in :meth:`photon_series`.
        frames : int
            Pages per stack, bright and dark.
        rng : Generator, int or None
            Draw order as in :meth:`photon_series` (per level, bright then dark).

        Returns
        -------
        dict
            ``{"levels": [Path, ...], "darks": [Path, ...], "sidecar": Path}``.
        """
        import tifffile

        from ..io._files import write_json_atomic

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        series = self.photon_series(photons, exposure_s, frames=frames, dark_frames=frames, rng=rng)
        width = max(2, len(str(len(series) - 1)))
        levels, darks, entries = [], [], []
        for i, level in enumerate(series):
            bright_path = folder / f"level_{i:0{width}d}.tif"
            dark_path = folder / f"dark_{i:0{width}d}.tif"
            # photometric given so that a 3- or 4-frame stack is never taken for an RGB image.
            tifffile.imwrite(bright_path, level["bright"], photometric="minisblack")
            tifffile.imwrite(dark_path, level["dark"], photometric="minisblack")
            levels.append(bright_path)
            darks.append(dark_path)
            entries.append({"index": i, "file": bright_path.name, "dark_file": dark_path.name,
                            "photons": level["photons"], "exposure_s": level["exposure_s"], "frames": int(frames)})
        sidecar = folder / "levels.json"
        write_json_atomic(sidecar, {"format": "noisestat-simulated-stacks", "version": 1, "levels": entries,
                                    "camera": asdict(self.model)})
        return {"levels": levels, "darks": darks, "sidecar": sidecar}


def _levels(photons, exposure_s) -> tuple[list[float], list[float]]:
    """Photons and exposure times as two equal-length lists of float, checked."""
    photons = [float(p) for p in np.atleast_1d(np.asarray(photons, dtype=np.float64))]
    if np.ndim(exposure_s) == 0:
        exposures = [float(exposure_s)] * len(photons)
    else:
        exposures = [float(t) for t in exposure_s]
    if len(exposures) != len(photons):
        raise ValueError(f"{len(photons)} photon levels but {len(exposures)} exposure times")
    if not photons:
        raise ValueError("no light levels given")
    for p, t in zip(photons, exposures):
        if not (math.isfinite(p) and p >= 0 and math.isfinite(t) and t >= 0):
            raise ValueError(f"photons and exposure_s must be finite and >= 0; got {p!r}, {t!r}")
    return photons, exposures


def _ns(exposure_s: float) -> float:
    """Seconds to nanoseconds, rounded to 1 ps so that 0.00004 s is written as 40000.0, not 40000.00000000001."""
    return round(float(exposure_s) * 1e9, 3)


def _write_frame(path: Path, frame: np.ndarray, fmt: str) -> None:
    if fmt == "png":
        import imagecodecs

        Path(path).write_bytes(imagecodecs.png_encode(np.ascontiguousarray(frame, dtype=np.uint16)))
    else:
        import tifffile

        tifffile.imwrite(path, frame, photometric="minisblack")
