"""The ilastik-style feature set, checked against analytic truth (ramps, Gaussian blobs, stripes),
exact halos and thread invariance."""

import numpy as np
import pytest
from scipy import ndimage as ndi

from noisestat.errors import InputError
from noisestat.predict import ILASTIK_SIGMAS, ilastik_feature_names, ilastik_features, ilastik_halo
from noisestat.predict._ilastik import _sym2, _sym3, derivative_kernel, derivative_radius


def _column(names, name):
    return names.index(name)


def _blob(shape, centre, width, amplitude=1000.0, step=(1.0, 1.0, 1.0)):
    """amplitude * exp(-|x - centre|^2 / (2 width^2)) sampled at ``step`` along each axis."""
    axes = [np.arange(n) * st for n, st in zip(shape, step)]
    grids = np.meshgrid(*axes, indexing="ij")
    r2 = sum((g - c) ** 2 for g, c in zip(grids, centre))
    return (amplitude * np.exp(-r2 / (2 * width * width))).astype(np.float32)


def test_feature_count_and_names():
    for ndim, per_scale in ((2, 8), (3, 10)):
        names = ilastik_feature_names(ILASTIK_SIGMAS, ndim)
        assert len(names) == per_scale * 6 and len(set(names)) == len(names)
        assert sum(n.startswith("hessian_eigenvalue") for n in names) == 6 * ndim
        assert sum(n.startswith("structure_tensor_eigenvalue") for n in names) == 6 * ndim
        assert names[0] == "gaussian_smoothing_0.7" and names[-1] == f"hessian_eigenvalue{ndim}_10"
        f = ilastik_features(np.zeros((12,) * ndim, np.uint16))
        assert f.shape == (12,) * ndim + (len(names),) and f.dtype == np.float32 and f.flags.c_contiguous
    assert ilastik_feature_names() == ilastik_feature_names(ILASTIK_SIGMAS, 3)


def test_constant_volume_has_only_its_level():
    f = ilastik_features(np.full((10, 12, 14), 300, np.uint16), sigmas=(1.0, 3.5))
    for k, name in enumerate(ilastik_feature_names((1.0, 3.5), 3)):
        expected = 300.0 if name.startswith("gaussian_smoothing") else 0.0
        np.testing.assert_allclose(f[..., k], expected, atol=1e-3, err_msg=name)


@pytest.mark.parametrize("ndim", [2, 3])
def test_gradient_magnitude_of_a_ramp_is_its_slope(ndim):
    # f = 2 y - 3 x (+ z in 3D): |grad f| = sqrt(13) (sqrt(14)) at every scale, even the smallest
    grids = np.indices((24,) * ndim).astype(np.float32)
    slopes = (1.0, 2.0, -3.0)[-ndim:]
    ramp = sum(s * g for s, g in zip(slopes, grids)) + 100
    sigmas = (0.7, 1.0, 2.0)
    f = ilastik_features(ramp, sigmas=sigmas)
    names = ilastik_feature_names(sigmas, ndim)
    inner = (slice(10, 14),) * ndim
    for s in sigmas:
        np.testing.assert_allclose(f[inner + (_column(names, f"gradient_magnitude_{s:g}"),)],
                                   np.sqrt(sum(v * v for v in slopes)), rtol=1e-5)
        # a plane has no curvature: LoG and Hessian vanish
        for name in (f"laplacian_of_gaussian_{s:g}", f"hessian_eigenvalue1_{s:g}", f"hessian_eigenvalue{ndim}_{s:g}"):
            np.testing.assert_allclose(f[inner + (_column(names, name),)], 0.0, atol=1e-4)


@pytest.mark.parametrize("ndim", [2, 3])
def test_bright_blob_is_a_hessian_maximum_of_known_curvature(ndim):
    # G(s) * blob of width w is a Gaussian of width W = sqrt(w^2 + s^2) and height A (w/W)^ndim; at
    # its centre every second derivative is -A (w/W)^ndim / W^2 and the LoG ndim times that
    width, amplitude, s = 3.0, 1000.0, 2.0
    img = _blob((41,) * ndim, (20.0,) * ndim, width, amplitude)
    f = ilastik_features(img, sigmas=(s,))
    names = ilastik_feature_names((s,), ndim)
    centre = (20,) * ndim
    big_w2 = width ** 2 + s ** 2
    height = amplitude * (width ** 2 / big_w2) ** (ndim / 2)
    curvature = -height / big_w2
    for i in range(1, ndim + 1):
        value = f[centre + (_column(names, f"hessian_eigenvalue{i}_2"),)]
        assert value < 0
        assert value == pytest.approx(curvature, rel=0.02)
    assert f[centre + (_column(names, "laplacian_of_gaussian_2"),)] == pytest.approx(ndim * curvature, rel=0.02)
    assert f[centre + (_column(names, "gaussian_smoothing_2"),)] == pytest.approx(height, rel=0.01)
    narrow = amplitude * (width ** 2 / (width ** 2 + (0.66 * s) ** 2)) ** (ndim / 2)
    assert f[centre + (_column(names, "difference_of_gaussians_2"),)] == pytest.approx(height - narrow, rel=0.02)
    assert f[centre + (_column(names, "gradient_magnitude_2"),)] == pytest.approx(0.0, abs=1e-3)


@pytest.mark.parametrize("ndim", [2, 3])
def test_structure_tensor_of_stripes_has_zero_eigenvalues(ndim):
    # stripes varying along one axis only: the gradient points along that axis, so the tensor has
    # rank one: one positive eigenvalue, the other ndim - 1 zero
    shape = (20,) * ndim
    y = np.arange(shape[-2], dtype=np.float64).reshape((-1, 1))
    img = np.broadcast_to(500 + 200 * np.sin(2 * np.pi * y / 9.0), shape).astype(np.float32)
    sigmas = (1.0, 1.6)
    f = ilastik_features(img, sigmas=sigmas)
    names = ilastik_feature_names(sigmas, ndim)
    for s in sigmas:
        largest = f[..., _column(names, f"structure_tensor_eigenvalue1_{s:g}")]
        assert largest.min() > 0
        for i in range(2, ndim + 1):
            rest = f[..., _column(names, f"structure_tensor_eigenvalue{i}_{s:g}")]
            assert np.abs(rest).max() <= 1e-6 * largest.max()


def test_identical_planes_have_no_z_derivatives():
    # a volume made of one plane repeated along z: derivatives along z vanish, so the 3D gradient
    # magnitude and LoG are the plane's 2D ones, and the 3D Hessian has the 2D eigenvalues plus 0
    rng = np.random.default_rng(3)
    plane = ndi.gaussian_filter(rng.normal(0, 100, (30, 34)), 1.5).astype(np.float32) + 1000
    volume = np.repeat(plane[None], 12, axis=0)
    sigmas = (1.0, 2.0)
    f3 = ilastik_features(volume, sigmas=sigmas)
    f2 = ilastik_features(plane, sigmas=sigmas)
    n3, n2 = ilastik_feature_names(sigmas, 3), ilastik_feature_names(sigmas, 2)
    for s in sigmas:
        for kind in ("gaussian_smoothing", "gradient_magnitude", "laplacian_of_gaussian", "difference_of_gaussians"):
            name = f"{kind}_{s:g}"
            for z in (0, 5, 11):
                np.testing.assert_allclose(f3[z, ..., n3.index(name)], f2[..., n2.index(name)],
                                           rtol=1e-4, atol=1e-3, err_msg=name)
        h3 = np.sort(f3[6][..., [n3.index(f"hessian_eigenvalue{i}_{s:g}") for i in (1, 2, 3)]], axis=-1)
        h2 = f2[..., [n2.index(f"hessian_eigenvalue{i}_{s:g}") for i in (1, 2)]]
        expected = np.sort(np.concatenate([h2, np.zeros(h2.shape[:-1] + (1,), np.float32)], axis=-1), axis=-1)
        np.testing.assert_allclose(h3, expected, atol=1e-3)


def test_anisotropic_spacing_matches_isotropic_sampling():
    # one isotropic blob sampled every pixel along z, and every second pixel (spacing (2, 1, 1)):
    # with the spacing given, the features at the common points agree; treated as isotropic they do not
    width, centre = 4.0, (30.3, 20.6, 19.8)
    iso = _blob((62, 41, 41), centre, width)
    coarse = _blob((31, 41, 41), centre, width, step=(2.0, 1.0, 1.0))
    sigmas = (2.0, 3.5)
    f_iso = ilastik_features(iso, sigmas=sigmas)
    f_aniso = ilastik_features(coarse, sigmas=sigmas, spacing=(2.0, 1.0, 1.0))
    f_naive = ilastik_features(coarse, sigmas=sigmas)
    names = ilastik_feature_names(sigmas, 3)
    at_coarse = (slice(8, 23), slice(8, 33), slice(8, 33))
    at_iso = (slice(16, 46, 2), slice(8, 33), slice(8, 33))
    for k, name in enumerate(names):
        ref = f_iso[at_iso + (k,)]
        scale = np.abs(f_iso[..., k]).max()
        error = np.abs(f_aniso[at_coarse + (k,)] - ref).max() / scale
        naive = np.abs(f_naive[at_coarse + (k,)] - ref).max() / scale
        # the outer scale 0.5 * 2 = 1 pixel is half a z step: too coarse to sample, so the smallest
        # scale's structure tensor is left out
        if not name.startswith("structure_tensor") or name.endswith("_3.5"):
            assert error < 0.01, name
        assert naive > 0.1, name


@pytest.mark.parametrize("sd", [0.05, 0.7, 1.0, 2.3, 10.0])
def test_derivative_kernels_have_zero_sum_and_unit_moment(sd):
    # correlating with the kernel: a constant gives 0, x gives 1 (order 1), x^2 / 2 gives 1 (order 2)
    for order, moment in ((1, lambda x: x), (2, lambda x: 0.5 * x * x)):
        k = derivative_kernel(sd, order, factor=0.5)
        r = derivative_radius(sd, order)
        assert k.size == 2 * r + 1 and r >= 1
        x = np.arange(-r, r + 1, dtype=np.float64)
        assert abs(k.sum()) < 1e-12
        assert np.sum(k * moment(x)) == pytest.approx(0.5 ** order, rel=1e-12)
    # close to scipy's own (uncorrected) kernel where sampling is fine; the two differ by the
    # truncated tails' share of the moments, under 1 %
    line = np.zeros(81)
    line[40] = 1.0
    if sd >= 2:
        for order in (1, 2):
            scipy_kernel = ndi.gaussian_filter1d(line, sd, order=order, mode="nearest")
            np.testing.assert_allclose(ndi.correlate1d(line, derivative_kernel(sd, order), mode="nearest"),
                                       scipy_kernel, atol=0.01 * np.abs(scipy_kernel).max())


def test_eigenvalue_closed_forms_match_numpy():
    rng = np.random.default_rng(5)
    m = rng.normal(size=(4000, 3, 3))
    m = m + m.transpose(0, 2, 1)
    m[:1000] += 50 * np.eye(3)                          # nearly isotropic
    m[1000:2000] = 5 * np.eye(3) + 1e-5 * m[1000:2000]  # nearly degenerate
    m[2000:2100] = 0.0                                  # zero tensor
    m[2100:2200] = np.diag([3.0, 3.0, -1.0])            # exact double eigenvalue
    expected = np.linalg.eigvalsh(m)[:, ::-1]
    got = np.stack(_sym3(m[:, 0, 0], m[:, 0, 1], m[:, 0, 2], m[:, 1, 1], m[:, 1, 2], m[:, 2, 2]), axis=1)
    # within float32 resolution (the features are stored in float32); at an exact double eigenvalue
    # the trigonometric form in float64 is good to ~sqrt(2e-16) relative, 1e-8
    np.testing.assert_allclose(got, expected, rtol=0, atol=6e-8 * max(1.0, np.abs(expected).max()))
    m2 = m[:, :2, :2]
    got2 = np.stack(_sym2(m2[:, 0, 0], m2[:, 0, 1], m2[:, 1, 1]), axis=1)
    np.testing.assert_allclose(got2, np.linalg.eigvalsh(m2)[:, ::-1], rtol=0, atol=1e-12 * np.abs(m2).max())


@pytest.mark.parametrize("ndim", [2, 3])
def test_hessian_eigenvalues_are_sorted_and_sum_to_the_log(ndim):
    rng = np.random.default_rng(5)
    img = rng.normal(1000, 50, (16, 18, 20)[-ndim:]).astype(np.float32)
    f = ilastik_features(img, sigmas=(1.0,))
    names = ilastik_feature_names((1.0,), ndim)
    for kind in ("hessian_eigenvalue", "structure_tensor_eigenvalue"):
        values = f[..., [names.index(f"{kind}{i}_1") for i in range(1, ndim + 1)]]
        assert np.all(np.diff(values, axis=-1) <= 0), kind
    values = f[..., [names.index(f"hessian_eigenvalue{i}_1") for i in range(1, ndim + 1)]]
    log = f[..., names.index("laplacian_of_gaussian_1")]
    np.testing.assert_allclose(values.sum(axis=-1), log, rtol=1e-4, atol=1e-4 * np.abs(log).max())


def test_halo_follows_the_filter_radii():
    # structure tensor: inner radius int(4 s + 0.5) plus outer radius int(4 * 0.5 s + 0.5)
    assert ilastik_halo() == (40 + 20,) * 3
    assert ilastik_halo((1.0, 1.6), ndim=2) == (6 + 3, 6 + 3)
    # spacing (2, 0.5, 0.5): along z the standard deviation is s / 4
    assert ilastik_halo((1.6,), spacing=(2.0, 0.5, 0.5)) == (2 + 1, 6 + 3, 6 + 3)


def _region(img, core, halo):
    region = tuple(slice(max(c.start - h, 0), min(c.stop + h, n)) for c, h, n in zip(core, halo, img.shape))
    inner = tuple(slice(c.start - r.start, c.stop - r.start) for c, r in zip(core, region))
    return region, inner


@pytest.mark.parametrize("sigmas,spacing,shape", [
    (ILASTIK_SIGMAS, None, (170, 180)),
    ((0.7, 2.3), (1.0, 0.4), (60, 90)),
    ((1.0, 2.0), None, (36, 40, 38)),
    ((0.7, 1.6), (2.0, 0.5, 0.5), (24, 44, 40)),
    ((0.7, 3.0), (8.0, 1.0, 1.0), (12, 44, 42)),  # z scales under a pixel: smoothing radius 0
])
def test_halo_makes_region_features_bitwise_exact(sigmas, spacing, shape):
    rng = np.random.default_rng(6)
    img = rng.integers(0, 4096, shape).astype(np.uint16)
    whole = ilastik_features(img, sigmas=sigmas, spacing=spacing)
    halo = ilastik_halo(sigmas, spacing, len(shape))
    for _ in range(5):
        # random cores, some touching the border (the region is clipped there)
        start = [int(rng.integers(0, n - 1)) for n in shape]
        core = tuple(slice(s, int(rng.integers(s + 1, min(s + 12, n) + 1))) for s, n in zip(start, shape))
        region, inner = _region(img, core, halo)
        part = ilastik_features(img[region], sigmas=sigmas, spacing=spacing)
        np.testing.assert_array_equal(part[inner], whole[core])
    # one pixel less along an axis is not enough for a core away from the border: along every axis
    # for square pixels; along some for fine z scales (their outermost taps, ~1e-6 of the centre
    # squared, can vanish below float32 resolution)
    core = tuple(slice(h + 1, h + 4) for h in halo)
    short_fails = []
    for axis in range(len(shape)):
        short = tuple(h - (a == axis) for a, h in enumerate(halo))
        region, inner = _region(img, core, short)
        assert all(r.start > 0 and r.stop < n for r, n in zip(region, shape))
        part = ilastik_features(img[region], sigmas=sigmas, spacing=spacing)
        short_fails.append(not np.array_equal(part[inner], whole[core]))
    assert all(short_fails) if spacing is None else any(short_fails), short_fails


@pytest.mark.parametrize("ndim", [2, 3])
def test_threads_give_bitwise_the_same_stack(ndim):
    rng = np.random.default_rng(7)
    img = rng.integers(0, 4096, (40, 37, 33)[-ndim:]).astype(np.uint16)
    sigmas = (0.7, 1.0, 1.6, 3.5)
    spacing = (2.0, 1.0, 1.0)[-ndim:]
    one = ilastik_features(img, sigmas=sigmas, spacing=spacing)
    for threads in (2, 3):
        np.testing.assert_array_equal(ilastik_features(img, sigmas=sigmas, spacing=spacing, threads=threads), one)


@pytest.mark.parametrize("ndim", [2, 3])
def test_features_of_a_core_are_the_region_features_cut_there(ndim):
    # a tile's features come from its region with the per-voxel work on the core only: same bits
    rng = np.random.default_rng(8)
    img = rng.integers(0, 4096, (30, 41, 36)[-ndim:]).astype(np.uint16)
    spacing = (2.0, 1.0, 1.0)[-ndim:]
    whole = ilastik_features(img, spacing=spacing)
    for inner in [(slice(3, 21), slice(10, 41), slice(0, 36)), (slice(0, 30), slice(5, 6), slice(7, 30))]:
        inner = inner[-ndim:]
        for threads in (1, 2):
            core = ilastik_features(img, spacing=spacing, threads=threads, inner=inner)
            assert core.shape == whole[inner].shape
            np.testing.assert_array_equal(core, whole[inner])


def test_bad_arguments_are_input_errors():
    img = np.zeros((8, 8, 8), np.uint16)
    with pytest.raises(InputError, match="spacing must be 3 positive"):
        ilastik_features(img, spacing=(1.0, 1.0))
    with pytest.raises(InputError, match="spacing must be 3 positive"):
        ilastik_features(img, spacing=(1.0, 0.0, 1.0))
    with pytest.raises(InputError, match="sigmas must be"):
        ilastik_features(img, sigmas=(1.0, -2.0))
    with pytest.raises(InputError, match="2D image or a 3D volume"):
        ilastik_features(np.zeros((4, 4, 4, 4)))
    with pytest.raises(InputError, match="threads must be a positive integer"):
        ilastik_features(img, threads=0)
    with pytest.raises(InputError, match="2 or 3 dimensions"):
        ilastik_halo(ndim=4)
