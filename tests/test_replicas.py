import numpy as np
import pytest

from noisestat import CameraProfile, InputError, draw_replica, generate_replicas
from noisestat.replicas import replica_seeds

CAM = CameraProfile(gain_dn_per_e=0.5, offset_dn=100.0, read_noise_dn=2.0, bit_depth=16)


def test_replica_variance_matches_camera_model():
    # Flat image at 2100 DN: 4000 e-, variance K^2 * 4000 + read_noise_dn^2 = 1004 DN^2 (read_noise_dn is
    # the total dark noise, rounding included: the replica's own rounding adds nothing on top).
    image = np.full((256, 256), 2100, np.uint16)
    stack = generate_replicas(image, CAM, 4, seed=1).astype(float)
    expected = 0.5 * 2000 + 4
    # sample variance of 262144 values has relative standard error sqrt(2/n) = 0.28 %
    assert stack.var() == pytest.approx(expected, rel=0.015)
    assert stack.mean() == pytest.approx(2100, abs=0.2)


def test_same_seed_same_replicas_and_children_independent_of_count():
    image = np.full((32, 32), 1000, np.uint16)
    a = generate_replicas(image, CAM, 5, seed=3)
    b = generate_replicas(image, CAM, 5, seed=3)
    np.testing.assert_array_equal(a, b)
    # replica i comes from child i, whichever way it is computed
    for i, s in enumerate(replica_seeds(3, 5)):
        np.testing.assert_array_equal(draw_replica(image, CAM, s), a[i])
    assert not np.array_equal(a[0], a[1])
    assert not np.array_equal(generate_replicas(image, CAM, 5, seed=4), a)


def test_dtype_range_and_saturation():
    cam12 = CameraProfile(gain_dn_per_e=1.0, offset_dn=10.0, read_noise_dn=3.0, bit_depth=12)
    image = np.array([[0, 10, 4095, 4090] * 8] * 8, np.uint16)
    stack = generate_replicas(image, cam12, 20, seed=0)
    assert stack.dtype == np.uint16
    assert stack.max() <= 4095 and stack.min() >= 0
    assert (stack[:, :, 2::4] == 4095).all()  # saturated pixels stay saturated


def test_needs_two_replicas_and_integer_image():
    with pytest.raises(InputError, match="at least 2"):
        generate_replicas(np.ones((8, 8), np.uint16), CAM, 1)
    with pytest.raises(InputError, match="integers"):
        draw_replica(np.ones((8, 8)), CAM, 0)
