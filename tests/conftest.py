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


def as_in_a_terminal() -> None:
    """``preexec_fn`` of a child a test interrupts: SIGINT and SIGQUIT back to their default, as a terminal's
    foreground job has them. A shell ignores them in a job it starts in the background (``pytest &``), the
    child would inherit that, and Python then installs no KeyboardInterrupt handler at all."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


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


# The markers (registered in pyproject.toml) of tests in modules that do not set them themselves: a
# module, a test (all its parametrisations) or one parametrisation. "process": the test starts
# other processes and waits for them; "slow": it took 20 s or more in a run of the whole suite on a
# busy 2-core machine (python -m pytest --durations=40). The README's command runs them all.
MARKED = {
    "process": (
        "tests/test_signals.py",
        "tests/test_values.py::test_values_do_not_depend_on_tile_or_workers",
        "tests/test_values.py::test_local_dask_cluster_gives_the_same_values",
        "tests/test_model_files.py::test_fuzzed_model_files_are_refused_or_predict_validly",
        "tests/test_model_files.py::test_harness_sees_a_crash",
        "tests/test_model_files.py::test_unvalidated_table_is_really_dangerous",
        "tests/test_report.py::test_report_renders_in_headless_chromium",
        "tests/test_report.py::test_dom_holds_every_figure",
        "tests/test_learned.py::test_listing_and_missing_extra_without_torch",
        "tests/test_compression.py::test_jobs_do_not_change_results",
        "tests/test_compression.py::test_real_12bit_image",
        "tests/test_predictors.py::test_mask_predictor_same_labels_in_worker_processes",
    ),
    "slow": (
        "tests/test_realdata.py",
        "tests/test_cli.py::test_demo_runs_end_to_end",
        "tests/test_values.py::test_local_dask_cluster_gives_the_same_values",
        "tests/test_pipeline.py::test_second_independent_acquisition_is_inside_the_raw_noise",
        "tests/test_outputs.py::test_assess_marks_its_folder_and_replaces_only_its_own",
        "tests/test_outputs.py::test_a_write_refused_at_the_end_keeps_the_previous_result",
        "tests/test_outputs_measured.py::test_a_codec_that_fragments_or_floods_is_warned_in_summary_printed_summary_and_report",
        "tests/test_compression.py::test_jobs_do_not_change_results",
        "tests/test_image_planes.py::test_assess_channel_end_to_end",
        "tests/test_model_files.py::test_fuzzed_model_files_are_refused_or_predict_validly",
        "tests/test_engine.py::test_cli_tile_gives_the_same_objects_and_records_it",
        "tests/test_engine.py::test_early_stopped_decision_equals_scikit_learns_mask[200]",
        "tests/test_engine.py::test_assessment_is_byte_identical_for_any_tile[16]",
        "tests/test_engine.py::test_volume_assessment_counts_objects_and_is_tile_invariant",
        "tests/test_verdict.py::test_a_second_acquisition_is_rarely_called_not_tolerable",
        "tests/test_report.py::test_rewriting_replaces_the_files_and_leaves_no_temporaries",
        "tests/test_report.py::test_figures_are_deterministic",
    ),
}


@pytest.hookimpl(tryfirst=True)  # before -m and -k choose
def pytest_collection_modifyitems(config, items):
    names = {}
    for item in items:
        module, _, test = item.nodeid.partition("::")
        names.setdefault(module, set()).update({test.split("[")[0], test})
        for marker, where in MARKED.items():
            if module in where or f"{module}::{test}" in where or f"{module}::{test.split('[')[0]}" in where:
                item.add_marker(marker)
    # a test renamed or removed would silently lose its marker: say so (only when whole modules
    # were collected, not single tests named on the command line)
    if any("::" in arg for arg in config.args):
        return
    stale = [entry for where in MARKED.values() for entry in where
             if "::" in entry and entry.split("::")[0] in names and entry.split("::", 1)[1] not in names[entry.split("::")[0]]]
    if stale:
        raise pytest.UsageError(f"tests/conftest.py MARKED names tests that were not collected: {', '.join(stale)}")


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
