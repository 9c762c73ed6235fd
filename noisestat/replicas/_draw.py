"""Monte-Carlo raw-equivalent images drawn from one raw image and a camera profile.

Modes
-----
``pixel-as-mean`` (the method of Pomarico et al. 2022): every replica pixel scatters around the
observed value y with the camera's temporal variance at y (below). ``denoised-edges`` (the default,
:data:`MODE`): the same draw, moved near object edges by a fixed integer shift to the denoised value
of the pixel. Pixels elsewhere, volumes, and saturated pixels are drawn as in pixel-as-mean.

Why. A replica drawn around y lies twice the noise variance away from the noise-free scene (the raw's
noise plus the fresh draw), so its object boundaries are rougher than a real acquisition's, and
parameters that depend on the roughness vary more between replicas than between acquisitions:
measured against 30 true acquisitions of simulated dim scenes (benchmarks/bench_replica_width.py,
docs/replicas.md) Perim. 1.3x and Circ. 1.2-1.4x the true variance, Area right. Around a denoised
value the boundary carries the fresh draw's noise alone, as a real acquisition's does.

The shift, per pixel, from the pixels within :data:`CENTRE_REACH` (8) of it:

* the image is variance-stabilised (generalised Anscombe transform of the linear or pixel-maps
  model, continued linearly below V = 0; the integral of dy / sqrt(V(y)) for a noise map), so that
  its noise has unit variance;
* edges are where the stabilised image's Gaussian gradient (sigma 1.5 px) exceeds 5 times its noise
  standard deviation, widened by 3 px; pure noise passes at about 4e-6 of its pixels, so a flat or
  dark image is left as pixel-as-mean draws it (its statistics below hold unchanged);
* there, the shift is ``rint(T^-1(NLM(T(y)))) - y``: non-local means (scikit-image, 5 x 5 patches
  within 6 px, h 0.8 noise sd) transformed back and rounded to whole DN.

The shift is the same in every replica: the spread between replicas, and so sigma_raw of intensity
and size parameters, is pixel-as-mean's; only the point they scatter around moves. Simple filters
(a Gaussian of 0.5 or 1 px, a 3 x 3 median) as the centre were measured too: they blur the edges and
widen Area and the boundary parameters (1.2-1.6x). Near edges the denoiser also smooths fixed-pattern
noise, which a real acquisition repeats. The shift of a block is computed once per process for all
replicas of an image (kept by the content of the block).

Statistical meaning of pixel-as-mean
------------------------------------
Each raw pixel value y is taken as the mean of the pixel's noise distribution: a replica is
``y + D`` with D a zero-mean integer noise whose variance is the camera's temporal variance at y,

    V(y) = gain_dn_per_e * (y - offset_dn) + read_noise_dn**2        (made >= 0, see "Negative V(y)")

where ``read_noise_dn`` is the total temporal dark noise sigma_y.dark, quantisation included (the
one definition, see :class:`~noisestat.camera.CameraProfile`). The replica's pixels therefore
scatter around the *observed* image, pixel by pixel, with mean y and variance V(y).

Why this form. V(y) is linear in y, so over any region of constant signal mu its average is
``K * (mu - offset) + read_noise_dn**2``: exactly the variance a second acquisition has there, in
the dark as in the bright, and for the half of a dark region that lies below the offset as for the
half above it (the two halves' deviations cancel). The former chain
``offset + K * Poisson(max(y - offset, 0) / K) + N(0, read^2)`` did not have this property: it
clipped every dark pixel below the offset up to it (+0.8 DN of bias on a dark frame at K 0.5,
2 DN read noise) and turned read-noise excursions above the offset into shot noise (1.46x the
dark variance), and its final rounding added 1/12 DN^2 to a read noise that already holds it.

How D is drawn (linear and pixel-maps models), with ``e = max(y - offset, 0) / K``:

    d = K * (Poisson(e) - e) + N(0, v_g),   v_g = read_noise_dn**2 - 1/12 + K * min(y - offset, 0)
    D = rint(y + d) - y

(v_g as written where V(y) >= 0; see "Negative V(y)" below for the rest.)

The shot part keeps the Poisson shape (skewness, the K-DN lattice of electron counts) where there is
signal; the Gaussian part carries the read noise, reduced below the offset by what the shot term
would have removed, so that ``var(d) = V(y) - 1/12`` and the rounding to whole DN adds the 1/12
back. This holds once the noise before rounding spans about a DN: the variance of rint(N(0, s^2))
is ``s^2 + 1/12`` to 1.2e-5 relative for s >= 0.8 DN.

Quantisation-limited pixels. Where V(y) < ``F(0.8**2)`` = 0.723 DN^2 (a camera whose read noise
is below about half a DN, a datasheet profile with a tiny read noise, a dark pixel far below the
offset), rounding y + small noise adds less than 1/12 (nothing at all for noise much below 0.5 DN,
since y is already an integer). There D is ``rint(N(0, s^2))`` with s chosen so that the variance
of the *rounded* value is V(y) exactly: ``F(s^2) = var(rint(N(0, s^2)))`` is computed once on a
grid and inverted by interpolation. So a camera whose dark variance is 0.04 DN^2 gets replicas with
0.04 DN^2, not the 0.012 DN^2 that rounding N(0, 0.04) gives, nor 0 (the read variance minus 1/12 is
negative). A uniform dither (rint(y + d + U(-1/2, 1/2))) was the alternative: it makes the rounding
unbiased for any d but adds frac(d)(1 - frac(d)) of variance (1/6 on average, 0 for d = 0), so it
too needs a variance table, and its output is not what a camera with that noise reads. Below the
switch the Gaussian shape replaces the Poisson one: the noise there is under a DN, so its only
shape is how often it reaches +-1.

Noise models. The profile decides how V(y) is computed (``CameraProfile.noise_model``):

* ``linear`` (the four required keys): as above;
* ``pixel-maps`` (sCMOS): the same, with each pixel's own offset, gain and read variance (the
  per-pixel dark temporal variance, quantisation included, as the read noise);
* ``noise-map`` (non-linear cameras): V(y) is the measured variance at the pixel's value (the
  map's linear interpolation; above its last point constant; below its first point, the dark
  level, continued with the first segment's slope and floored at 0, so that the dark region's
  average is right as in the linear model), drawn as Gaussian noise rounded as above. The
  Poisson-to-DN relation no longer holds on a bent response curve, while the measured variance
  does; the Gaussian shape is exact up to the skewness of shot noise, negligible above a few tens
  of electrons.

What this gives, and what it does not:

* The spread *between* replicas is the spread a second acquisition would show, so the standard
  deviation of any measurement over replicas estimates sigma_raw, the Monte-Carlo predictive
  uncertainty of that measurement.
* A replica is *not* a second acquisition: it lies about twice the noise variance away from the
  noise-free scene (the raw's own noise plus the fresh draw) and its noise is correlated with the
  raw image's noise. Measurements on replicas may therefore be biased relative to the raw; only
  their spread is used.
* V(y) is right on average over pixels of equal signal, not pixel by pixel: a dark pixel that
  happens to read 3 DN above the offset gets 3 K DN^2 more than a second acquisition would have,
  one 3 DN below gets that much less.
* Negative V(y). A pixel more than ``read_noise_dn**2 / K`` DN below the offset (about the read
  noise in electrons, counted in read-noise standard deviations) has V(y) < 0, and no noise has
  negative variance. Flooring it at 0 alone would leave a dark region too much variance (measured
  on simulated dark frames: 8 % at K 0.5 DN/e- and 1 e- read noise, 6 % at K 1 and 1 e-, 39 % at
  K 2 and 0.5 e-, photon-counting sensors; under 1 % above 1.5 e-). So the negative part is taken
  from the pixel's 8 neighbours, in proportion to their own variance (three passes for what
  neighbours cannot give): the sum of V over the image, and so its average over any region of
  equal signal, stays that of the linear V(y) (measured after: within 0.5 % of a second
  acquisition in the same cases). Pixels whose V(y) is positive and who have no such neighbour,
  everything lit, are untouched.
* One offset for a sensor whose pixels' offsets spread by a few DN (DSNU) gives each pixel's
  V(y) a fixed error of K times its offset's deviation: right on average, wrong pixel by pixel; use
  per-pixel maps there.
* Fixed-pattern noise (DSNU, PRNU) is part of y and is never resampled: it is the same in every
  acquisition of the same camera.
* Saturated pixels, at or above the calibrated ``saturation_dn`` (``profile.extra``, when present)
  or the digitiser's maximum, have an unknown true signal and a second acquisition would saturate
  them again: they are copied unchanged. Every other replica value is clipped to the digitiser's
  range ``[0, 2**bit_depth - 1]`` (and the image dtype's): no replica value goes past the maximum.

Randomness: one root seed; replica ``i`` has its own child ``SeedSequence(seed).spawn(n)[i]``, and
within a replica the image is cut into a fixed grid of blocks (:func:`noise_block`: 256 pixels per
axis in an image, :data:`VOLUME_NOISE_BLOCK` = 64 voxels per axis in a volume, counted from the
origin), block ``b`` drawing from ``SeedSequence(child.entropy,
spawn_key=child.spawn_key + b)``. A replica's value at a pixel therefore depends only on the raw
image, the profile and the seed: not on the worker that draws it, the number of workers, the order,
nor the tile it is drawn for (:func:`draw_region` draws any part, equal to the same part of
:func:`draw_replica`). The deterministic part of a block (its variance, with the neighbour
redistribution below) is computed on the block plus :data:`SETTLE_HALO` pixels of its surroundings,
enough for the result to be that of the whole image. A :class:`BlockCache` keeps drawn blocks for
the next regions of the same replica (tiles overlap by their halos), so neighbouring regions do not
draw the blocks they share again.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections import OrderedDict

import numpy as np
from scipy import ndimage as ndi
from scipy.special import ndtr

from ..camera._profile import CameraProfile
from ..errors import InputError

__all__ = ["draw_replica", "draw_region", "generate_replicas", "replica_seeds", "noise_block", "BlockCache",
           "MODE", "MODES", "NOISE_BLOCK", "VOLUME_NOISE_BLOCK"]

# The replica modes (module docstring, "Modes"); MODE is the one drawn unless another is asked for,
# and the one the pipeline records in its provenance.
PIXEL_AS_MEAN = "pixel-as-mean"
DENOISED_EDGES = "denoised-edges"
MODES = (PIXEL_AS_MEAN, DENOISED_EDGES)
MODE = DENOISED_EDGES
# Edge of the fixed grid of noise blocks (pixels per axis) of an image, and of a volume (voxels per
# axis): a volume block of 64^3 (+ its settling halo) holds 0.5 M voxels, about as many as an image
# block's 256^2 with its halo times eight, so drawing one stays within ~40 MB of float64 temporaries
# (a 256^3 block would take over 1 GB). Changing either changes every replica of that dimension.
NOISE_BLOCK = 256
VOLUME_NOISE_BLOCK = 64


def noise_block(ndim: int) -> int:
    """Edge of the noise-block grid of an image (``ndim`` 2) or a volume (3)."""
    return NOISE_BLOCK if ndim == 2 else VOLUME_NOISE_BLOCK


class BlockCache:
    """Drawn noise blocks of one replica, kept for the next regions drawn from it (least recently
    used dropped first beyond ``max_bytes``). Pass the same cache only for the same image, profile,
    seed and mode: the key is the block's index alone."""

    # 16 MB hold 32 blocks of a volume (64^3 voxels of 2 bytes) or 128 of an image: the blocks that
    # the halos of a row of tiles share (a volume's blocks bordering the next slab of tiles are
    # drawn again there)
    def __init__(self, max_bytes: int = 16 << 20):
        self.max_bytes = int(max_bytes)
        self._blocks: OrderedDict = OrderedDict()
        self._bytes = 0
        self.drawn = 0      # blocks drawn (misses), for tests and timing

    def clear(self) -> None:
        """Drop every kept block (the counter stays)."""
        self._blocks.clear()
        self._bytes = 0

    def get(self, index: tuple, draw):
        values = self._blocks.get(index)
        if values is not None:
            self._blocks.move_to_end(index)
            return values
        values = draw()
        self.drawn += 1
        self._blocks[index] = values
        self._bytes += values.nbytes
        while self._bytes > self.max_bytes and len(self._blocks) > 1:
            _, old = self._blocks.popitem(last=False)
            self._bytes -= old.nbytes
        return values

# Noise standard deviation (DN) from which rounding to whole DN adds 1/12 DN^2 (to 1.2e-5 relative).
_SMOOTH_SD = 0.8


def _rounded_normal_variance(sd: np.ndarray) -> np.ndarray:
    """Variance of rint(N(0, sd^2)) for an integer mean: sum over k >= 1 of (2k - 1) P(|rint| >= k).

    Written by hand: no library gives the moments of a rounded normal. The sum by parts of
    k^2 P(|D| = k) is the series used; terms beyond k = 6 vanish for sd <= 0.8 DN.
    """
    k = np.arange(1, 12)[:, None]
    sd = np.asarray(sd, dtype=np.float64)[None, :]
    with np.errstate(divide="ignore"):
        z = np.where(sd > 0, (k - 0.5) / np.where(sd > 0, sd, 1.0), np.inf)
    return 2.0 * np.sum((2 * k - 1) * ndtr(-z), axis=0)


# F(s) on a grid, for inverting: the Gaussian variance s^2 whose rounding has variance V.
_GRID_SD = np.linspace(0.0, _SMOOTH_SD, 4001)
_GRID_VAR = _rounded_normal_variance(_GRID_SD)
_keep = np.concatenate([[True], np.diff(_GRID_VAR) > 0])  # F underflows to 0 below sd 0.013: one 0 kept
_GRID_SD, _GRID_VAR = _GRID_SD[_keep], _GRID_VAR[_keep]
del _keep
_SMOOTH_VAR = float(_GRID_VAR[-1])  # 0.7233 DN^2: below it the table decides the pre-rounding variance


def _pre_rounding_sd(variance: np.ndarray) -> np.ndarray:
    """Standard deviation s of the Gaussian noise whose rounded value has ``variance`` (< _SMOOTH_VAR)."""
    return np.interp(variance, _GRID_VAR, _GRID_SD)


def _noise_map_variance(noise_map, y: np.ndarray) -> np.ndarray:
    """The map's variance at ``y``, continued below its first point (the dark level) with the first
    segment's slope and floored at 0, so that a dark region's average variance is the map's dark
    variance (a flat continuation would give the pixels below the dark level too much)."""
    m, v = noise_map.mean_dn, noise_map.variance_dn2
    slope = (v[1] - v[0]) / (m[1] - m[0])
    inside = noise_map.variance(y)
    below = v[0] + slope * (y - m[0])      # may be < 0: settled by _settle_negative
    return np.where(y < m[0], below, inside)


def _box_sum(a: np.ndarray) -> np.ndarray:
    """Sum over each pixel's 3 x 3 (x 3) neighbourhood, pixels outside the array counting 0."""
    padded = np.pad(a, 1)
    return sum(padded[tuple(slice(o, o + n) for o, n in zip(offsets, a.shape))]
               for offsets in itertools.product(range(3), repeat=a.ndim))


_SETTLE_PASSES = 3
# Context a block's variance needs for the neighbour redistribution to equal the whole image's:
# 2 pixels per pass (see _settle_negative), with room to spare.
SETTLE_HALO = 2 * _SETTLE_PASSES + 2


def _settle_negative(variance: np.ndarray, saturated: np.ndarray, passes: int = _SETTLE_PASSES) -> np.ndarray:
    """V(y) made >= 0 without changing its sum: each pixel's negative part is taken from its
    neighbours' positive variance, in proportion to it (module docstring).

    Written by hand (a normalised 3 x 3 box redistribution) because no library call moves a
    quantity between neighbours while conserving it. Saturated pixels neither give nor take.
    Debt left where the neighbours have too little is passed on again, up to ``passes`` times;
    what still remains is dropped (the replica's variance there is then a little too high).
    A pass moves variance by at most two pixels, so ``passes`` passes reach ``2 * passes`` pixels
    (:data:`SETTLE_HALO`).
    """
    v = np.where(saturated, 0.0, variance)
    pos, debt = np.maximum(v, 0.0), np.maximum(-v, 0.0)
    for _ in range(passes):
        if not debt.any():
            break
        capacity = _box_sum(pos)
        share = np.divide(debt, capacity, out=np.zeros_like(debt), where=capacity > 0)
        taken = pos * _box_sum(share)
        # over-taken neighbours and debtors with nothing around them keep the rest as debt
        debt = np.maximum(taken - pos, 0.0) + np.where(capacity > 0, 0.0, debt)
        pos = np.maximum(pos - taken, 0.0)
    return pos


# -- mode "denoised-edges": the mean of the replicas moved to a denoised value near edges ----------------

# Non-local means on the variance-stabilised image (unit noise): 5 x 5 patches searched within 6 pixels,
# filtering strength h = 0.8 noise sd (benchmarks/bench_replica_width.py chose these against true
# acquisitions). A pixel's denoised value depends on the pixels within 6 + 2 of it.
_NLM_PATCH, _NLM_DISTANCE, _NLM_H = 5, 6, 0.8
# The edge gate: the stabilised image's gradient (Gaussian derivatives, sigma 1.5 px, cut at 3 sigma:
# 5 px) above _GATE_Z of its noise sd, widened by _GATE_GROW px. Pure noise passes the threshold at
# exp(-_GATE_Z**2 / 2) = 4e-6 of its pixels (the squared magnitude is chi-squared with 2 degrees of
# freedom), so a flat region is left as it is.
_GATE_SIGMA, _GATE_TRUNCATE, _GATE_Z, _GATE_GROW = 1.5, 3.0, 5.0, 3
# How far the shift of a pixel looks: the larger of the two supports above.
CENTRE_REACH = max(_NLM_DISTANCE + _NLM_PATCH // 2, int(_GATE_TRUNCATE * _GATE_SIGMA + 0.5) + _GATE_GROW)


def _gradient_noise_sd() -> float:
    """Standard deviation of one Gaussian-derivative component of unit white noise (the kernel's norm)."""
    delta = np.zeros((41, 41))
    delta[20, 20] = 1.0
    return float(np.sqrt(np.sum(ndi.gaussian_filter(delta, _GATE_SIGMA, order=(0, 1), truncate=_GATE_TRUNCATE) ** 2)))


_GRADIENT_SD = _gradient_noise_sd()


def _linear_stabiliser(offset, gain, read_var):
    """Forward and inverse variance-stabilising transforms of the linear model, V(y) = K (y - o) + r^2:
    T(y) = (2 / K) sqrt(V + 3 K^2 / 8) (the generalised Anscombe transform, in DN), continued below
    V = 0 as the straight line of the same slope, so that T is increasing and invertible everywhere."""
    a = 3.0 / 8.0 * np.square(gain)
    t0 = 2.0 * np.sqrt(a) / gain

    def forward(y):
        v = gain * (y - offset) + read_var
        return np.where(v >= 0, 2.0 / gain * np.sqrt(np.maximum(v, 0.0) + a), t0 + v / (gain * np.sqrt(a)))

    def inverse(t):
        v = np.where(t >= t0, np.square(gain * t / 2.0) - a, (t - t0) * gain * np.sqrt(a))
        return offset + (v - read_var) / gain

    return forward, inverse


def _curve_stabiliser(noise_map, top: int):
    """The same for a measured noise map: T(y) = integral of dy / sqrt(V(y)) over the DN scale,
    V floored at 1/12 DN^2 (rounding) so that T stays finite and increasing."""
    grid = np.arange(0.0, float(top) + 2.0)
    inv_sd = 1.0 / np.sqrt(np.maximum(_noise_map_variance(noise_map, grid), 1.0 / 12.0))
    t = np.concatenate([[0.0], np.cumsum((inv_sd[1:] + inv_sd[:-1]) / 2.0)])
    return (lambda y: np.interp(y, grid, t)), (lambda z: np.interp(z, t, grid))


def _edge_shift(y_ext: np.ndarray, saturated_ext: np.ndarray, profile: CameraProfile, plane: tuple,
                core: tuple, bottom: int, top: int) -> np.ndarray:
    """Integer shift (DN) from the observed value to the replicas' mean on ``core`` of ``y_ext``: the
    denoised value minus the observed one at pixels near an edge, 0 elsewhere and at saturated pixels.
    Depends on the pixels within :data:`CENTRE_REACH` only."""
    from skimage.restoration import denoise_nl_means

    if profile.noise_model == "noise-map":
        forward, inverse = _curve_stabiliser(profile.noise_map, top)
    elif profile.noise_model == "pixel-maps":
        maps = profile.pixel_maps
        forward, inverse = _linear_stabiliser(*(np.asarray(m, dtype=np.float64)[plane] for m in
                                                (maps.offset_dn, maps.gain_dn_per_e, maps.read_variance_dn2)))
    else:
        forward, inverse = _linear_stabiliser(profile.offset_dn, profile.gain_dn_per_e, profile.read_noise_dn ** 2)
    z = forward(y_ext)
    gy = ndi.gaussian_filter(z, _GATE_SIGMA, order=(1, 0), truncate=_GATE_TRUNCATE)
    gx = ndi.gaussian_filter(z, _GATE_SIGMA, order=(0, 1), truncate=_GATE_TRUNCATE)
    edge = np.hypot(gy, gx) > _GATE_Z * _GRADIENT_SD
    edge = ndi.binary_dilation(edge, iterations=_GATE_GROW)[core] & ~saturated_ext[core]
    shift = np.zeros(edge.shape, dtype=np.float64)
    if edge.any():
        denoised = denoise_nl_means(z, patch_size=_NLM_PATCH, patch_distance=_NLM_DISTANCE, h=_NLM_H, sigma=1.0,
                                    fast_mode=True)
        centre = np.clip(np.rint(inverse(denoised)[core]), bottom, top)
        shift[edge] = centre[edge] - y_ext[core][edge]
    return shift


class _ShiftCache:
    """The shifts of the noise blocks last computed in this process, by the content they come from
    (the stabilised pixels are hashed), so that the replicas of one image denoise each block once."""

    def __init__(self, max_bytes: int = 64 << 20):
        self.max_bytes = max_bytes
        self._items: OrderedDict = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key, compute):
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
                return value
        value = compute()
        with self._lock:
            if key not in self._items:
                self._items[key] = value
                self._bytes += value.nbytes
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                self._bytes -= old.nbytes
        return value


_SHIFTS = _ShiftCache()


def _shift_key(raw: np.ndarray, profile: CameraProfile, plane: tuple, core: tuple) -> tuple:
    """What a block's shift depends on: its pixels, the profile's noise model and numbers, and where the
    block lies in its extended region."""
    h = hashlib.blake2b(np.ascontiguousarray(raw).view(np.uint8), digest_size=20)
    h.update(str((raw.shape, raw.dtype.str, core, profile.noise_model, profile.offset_dn, profile.gain_dn_per_e,
                  profile.read_noise_dn, profile.max_dn)).encode())
    if profile.noise_model == "pixel-maps":
        for m in (profile.pixel_maps.offset_dn, profile.pixel_maps.gain_dn_per_e, profile.pixel_maps.read_variance_dn2):
            h.update(np.ascontiguousarray(np.asarray(m, dtype=np.float64)[plane]).view(np.uint8))
    elif profile.noise_model == "noise-map":
        h.update(np.asarray(profile.noise_map.mean_dn, dtype=np.float64).tobytes())
        h.update(np.asarray(profile.noise_map.variance_dn2, dtype=np.float64).tobytes())
    return h.digest()


def replica_seeds(seed: int | np.random.SeedSequence, n: int) -> list[np.random.SeedSequence]:
    """The child seed sequences of ``n`` replicas, from one root seed."""
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return root.spawn(n)


def draw_replica(image: np.ndarray, profile: CameraProfile,
                 rng: np.random.Generator | np.random.SeedSequence | int | None, *, mode: str = MODE) -> np.ndarray:
    """Draw one raw-equivalent replica of ``image``.

    Each pixel becomes ``y + S + D``, D an integer noise of mean 0 and variance the camera's temporal
    variance at y, S 0 except near object edges in mode ``denoised-edges``, where it moves the pixel
    to its denoised value (module docstring); saturated pixels (at or above ``profile.saturation_dn``)
    are copied unchanged and the rest are clipped to the digitiser's range.

    Parameters
    ----------
    image : ndarray of int, shape (rows, cols) or (planes, rows, cols)
        The raw image in DN (a volume's planes share the sensor's per-pixel maps, if any).
    profile : CameraProfile
        The camera's gain, offset, read noise and bit depth.
    rng : SeedSequence, int, numpy.random.Generator or None
        Source of randomness: the replica's seed (a Generator gives one seed drawn from it).
    mode : {"denoised-edges", "pixel-as-mean"}
        :data:`MODE` unless given (module docstring, "Modes").

    Returns
    -------
    replica : ndarray, same shape and dtype as ``image``

    Examples
    --------
    >>> import numpy as np
    >>> from noisestat import CameraProfile, draw_replica
    >>> cam = CameraProfile(gain_dn_per_e=0.5, offset_dn=100, read_noise_dn=2, bit_depth=12)
    >>> r = draw_replica(np.full((64, 64), 1100, np.uint16), cam, 0)
    >>> r.dtype, bool(abs(r.mean() - 1100) < 1)
    (dtype('uint16'), True)
    """
    return draw_region(image, profile, rng, tuple(slice(0, n) for n in np.shape(image)), mode=mode)


def _as_seed(rng) -> np.random.SeedSequence:
    if isinstance(rng, np.random.SeedSequence):
        return rng
    if isinstance(rng, np.random.Generator):
        return np.random.SeedSequence(int(rng.integers(2**63)))
    return np.random.SeedSequence(rng)


def draw_region(image: np.ndarray, profile: CameraProfile, rng, region: tuple,
                cache: BlockCache | None = None, *, mode: str = MODE) -> np.ndarray:
    """The part ``region`` (a tuple of slices with steps of 1) of the replica :func:`draw_replica`
    draws from the same ``rng``: ``draw_region(image, p, s, r) == draw_replica(image, p, s)[r]``,
    computed from the noise blocks the region touches only (taken from ``cache`` when it holds them).

    ``image`` may be any array that slices to NumPy (a memory-mapped or lazily read file).
    """
    if not np.issubdtype(image.dtype, np.integer):
        raise InputError(f"raw image must hold integers; got dtype {image.dtype}")
    if mode not in MODES:
        raise InputError(f"replica mode must be one of {', '.join(MODES)}; got {mode!r}")
    profile.check_image(image)
    seed = _as_seed(rng)
    shape = tuple(image.shape)
    region = tuple(slice(*r.indices(n)[:2]) for r, n in zip(region, shape))
    out = np.empty(tuple(r.stop - r.start for r in region), dtype=image.dtype)
    edge = noise_block(len(shape))
    per_axis = [range(r.start // edge, -(-r.stop // edge)) if r.stop > r.start else range(0) for r in region]
    for index in itertools.product(*per_axis):
        block = tuple(slice(b * edge, min((b + 1) * edge, n)) for b, n in zip(index, shape))
        if cache is None:
            values = _draw_block(image, profile, seed, index, block, mode)
        else:
            values = cache.get(index, lambda: _draw_block(image, profile, seed, index, block, mode))
        inter = tuple(slice(max(b.start, r.start), min(b.stop, r.stop)) for b, r in zip(block, region))
        out[tuple(slice(i.start - r.start, i.stop - r.start) for i, r in zip(inter, region))] = \
            values[tuple(slice(i.start - b.start, i.stop - b.start) for i, b in zip(inter, block))]
    return out


def _draw_block(image, profile: CameraProfile, seed: np.random.SeedSequence, index: tuple,
                block: tuple, mode: str = MODE) -> np.ndarray:
    """One noise block of the replica: the variance (and in mode denoised-edges the shift) on the
    block plus its surroundings (:data:`SETTLE_HALO`, :data:`CENTRE_REACH`), the noise from the
    block's own generator."""
    rng = np.random.default_rng(np.random.SeedSequence(seed.entropy, spawn_key=seed.spawn_key + tuple(index)))
    shape = tuple(image.shape)
    halo = max(SETTLE_HALO, CENTRE_REACH)
    ext = tuple(slice(max(b.start - halo, 0), min(b.stop + halo, n)) for b, n in zip(block, shape))
    core = tuple(slice(b.start - e.start, b.stop - e.start) for b, e in zip(block, ext))
    raw = np.asarray(image[ext])
    top = min(profile.max_dn, np.iinfo(raw.dtype).max)
    bottom = max(0, np.iinfo(raw.dtype).min)
    y_ext = raw.astype(np.float64)
    saturated_ext = raw >= min(top, profile.saturation_dn)
    y, saturated = y_ext[core], saturated_ext[core]
    if profile.noise_model == "noise-map":
        variance = _settle_negative(_noise_map_variance(profile.noise_map, y_ext), saturated_ext)[core]
        noise = rng.standard_normal(y.shape) * np.sqrt(np.maximum(variance - 1.0 / 12.0, 0.0))
    else:
        if profile.noise_model == "pixel-maps":
            maps = profile.pixel_maps
            plane = ext[-2:]   # a volume's planes share the sensor's maps
            offset, gain, read_var = (np.asarray(m)[plane] for m in
                                      (maps.offset_dn, maps.gain_dn_per_e, maps.read_variance_dn2))
        else:
            offset, gain, read_var = profile.offset_dn, profile.gain_dn_per_e, profile.read_noise_dn ** 2
        variance = _settle_negative(gain * (y_ext - offset) + read_var, saturated_ext)[core]
        if np.ndim(gain):
            offset, gain = np.broadcast_to(offset, y_ext.shape)[core], np.broadcast_to(gain, y_ext.shape)[core]
        signal = y - offset
        shot_var = gain * np.maximum(signal, 0.0)          # K^2 e, e = max(y - offset, 0) / K
        electrons = np.maximum(signal, 0.0) / gain
        shot = gain * (rng.poisson(electrons) - electrons)
        gauss_var = variance - 1.0 / 12.0 - shot_var      # read_var - 1/12 + K min(y - offset, 0)
        # A read variance below 1/12 (a profile with almost no read noise) leaves no room for the
        # Gaussian part in the bright: there the shot part is scaled to var V - 1/12 instead.
        short = (gauss_var < 0) & (shot_var > 0)
        if short.any():
            shot[short] *= np.sqrt(np.maximum(variance[short] - 1.0 / 12.0, 0.0) / shot_var[short])
        noise = shot + rng.standard_normal(y.shape) * np.sqrt(np.maximum(gauss_var, 0.0))
    # Quantisation-limited pixels: Gaussian noise whose rounded value has the variance V exactly.
    small = variance < _SMOOTH_VAR
    if small.any():
        noise[small] = rng.standard_normal(int(small.sum())) * _pre_rounding_sd(variance[small])
    out = np.rint(y + noise)
    if mode == DENOISED_EDGES and len(shape) == 2:
        plane = ext[-2:]
        shift = _SHIFTS.get(_shift_key(raw, profile, plane, core),
                            lambda: _edge_shift(y_ext, saturated_ext, profile, plane, core, bottom, top))
        out += shift
    out = np.clip(out, bottom, top)
    out[saturated] = raw[core][saturated]
    return out.astype(raw.dtype)


def generate_replicas(image: np.ndarray, profile: CameraProfile, n: int = 10,
                      seed: int | np.random.SeedSequence = 0, *, mode: str = MODE) -> np.ndarray:
    """Draw ``n`` replicas, replica ``i`` from child generator ``i`` of ``seed``, in ``mode``.

    Returns
    -------
    stack : ndarray, shape (n, rows, cols), dtype of ``image``
    """
    if n < 2:
        raise InputError(f"replicas: at least 2 are needed to estimate a spread; got {n}")
    return np.stack([draw_replica(image, profile, s, mode=mode) for s in replica_seeds(seed, n)])
