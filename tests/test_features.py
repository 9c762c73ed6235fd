import numpy as np

from noisestat.predict import feature_names, weka_features


def test_seventy_features_with_names():
    names = feature_names()
    assert len(names) == 70 and len(set(names)) == 70
    assert names[0] == "original"
    assert sum(n.startswith("dog_") for n in names) == 10
    assert sum(n.startswith("hessian_") for n in names) == 48


def test_constant_image_has_no_structure():
    f = weka_features(np.full((40, 40), 500, np.uint16))
    names = feature_names()
    for k, name in enumerate(names):
        expected = 500.0 if name == "original" or name.startswith("gaussian") else 0.0
        np.testing.assert_allclose(f[..., k], expected, atol=1e-3, err_msg=name)


def test_ramp_gradient_and_hessian():
    # f(x, y) = 3 x: the unnormalised 3x3 Sobel gives 8 * 3 = 24 inside, the Hessian vanishes.
    ramp = np.tile(np.arange(30, dtype=np.float32) * 3, (30, 1))
    f = weka_features(ramp)
    names = feature_names()
    inner = (slice(8, -8), slice(8, -8))
    np.testing.assert_allclose(f[..., names.index("sobel_0")][inner], 24.0, rtol=1e-5)
    np.testing.assert_allclose(f[..., names.index("hessian_module_0")][inner], 0.0, atol=1e-3)


def test_bright_spot_is_a_hessian_minimum():
    img = np.zeros((33, 33), np.float32)
    img[16, 16] = 1000
    f = weka_features(img)
    names = feature_names()
    # at a bright blob both eigenvalues are negative and the trace too (sigma 2 -> Gaussian 0.8)
    assert f[16, 16, names.index("hessian_eigenvalue1_2")] < 0
    assert f[16, 16, names.index("hessian_trace_2")] < 0
    assert f[16, 16, names.index("dog_1_2")] > 0
