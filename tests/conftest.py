import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from noisestat.camera import CameraProfile
from noisestat.simulate import acquire, simulate_scene, sparse_labels

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CAMERA = CameraProfile(gain_dn_per_e=0.5, offset_dn=100.0, read_noise_dn=2.0, bit_depth=16)

# How long a test waits for something another process or thread should do (a worker to start or to
# die, a run to reach a stage, a call to return) before it fails. It is a deadline, never a measure:
# the wait ends as soon as the condition holds, so it costs nothing on an idle machine and gives a
# machine busy with other work minutes of slack. Tests never assert how long anything took.
DEADLINE_S = 300.0


def wait_until(condition, what: str, *, seconds: float = DEADLINE_S, interval: float = 0.1,
               failed=None):
    """Poll ``condition()`` until it returns something true and return that; fail the test with
    "``what`` did not happen within ``seconds`` s" at the deadline. ``failed()``, polled too, may
    return a reason to fail at once (the process that should do it has exited)."""
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        reason = failed() if failed is not None else None
        if reason:
            pytest.fail(f"{what} did not happen: {reason}")
        if time.monotonic() >= deadline:
            pytest.fail(f"{what} did not happen within {seconds:.0f} s")
        time.sleep(interval)


def returns_within(seconds: float, what: str, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, run in a daemon thread: its result, or its exception raised here; a
    call still running after ``seconds`` fails the test instead of hanging the suite."""
    outcome: dict = {}

    def call():
        try:
            outcome["result"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - raised again in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=call, name="noisestat-test-call", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"{what} did not return within {seconds:.0f} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


@pytest.fixture(scope="session")
def small_scene():
    """A 192x192 simulated scene, one acquisition of it and sparse labels from its truth."""
    electrons, truth = simulate_scene((192, 192), rng=11)
    raw = acquire(electrons, CAMERA, 12)
    labels = sparse_labels(truth, rng=13)
    return raw, labels, truth, electrons


@pytest.fixture(scope="session")
def scene_files(tmp_path_factory, small_scene):
    """The small scene written as files, as a user would have them."""
    raw, labels, _, electrons = small_scene
    d = tmp_path_factory.mktemp("scene")
    tifffile.imwrite(d / "raw.tif", raw)
    tifffile.imwrite(d / "labels.tif", labels)
    tifffile.imwrite(d / "raw_b.tif", acquire(electrons, CAMERA, 99))
    (d / "camera.json").write_text(json.dumps({"gain_dn_per_e": CAMERA.gain_dn_per_e, "offset_dn": CAMERA.offset_dn,
                                              "read_noise_dn": CAMERA.read_noise_dn, "bit_depth": CAMERA.bit_depth}))
    return d


def shared_data(*parts):
    """Path under ../shared/data, or skip the test with the reason when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real data not found at {path} (the shared data folder is not present)")
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(0)
