"""The estimate said before a batch, and the revised estimate said once when the batch's first images
take more than twice as long as estimated (or less than half), on a fake clock: no sleeping, no
timing asserted."""

import numpy as np
import pytest

from noisestat.engine import JoblibExecutor
from noisestat.engine._estimate import EstimateCheck, notice_estimate


class _Clock:
    """Seconds that pass only when a task says so."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _run_batch(check, clock, n_tasks, seconds_per_task):
    """``n_tasks`` tasks on one worker, each advancing the clock by ``seconds_per_task``."""
    def task(i):
        clock.now += seconds_per_task
        return i

    executor = JoblibExecutor(1)
    out = executor.map(task, [(i,) for i in range(n_tasks)], [f"image {i + 1}" for i in range(n_tasks)],
                       started=lambda: check)
    assert out == list(range(n_tasks))


@pytest.mark.parametrize("slowdown, lines", [(5.0, 1), (1.9, 0), (0.6, 0), (1.0, 0), (0.3, 1)])
def test_a_batch_off_by_more_than_twice_the_estimate_gets_one_revised_line(slowdown, lines):
    clock, said = _Clock(), []
    # 10 s an image estimated, 8 images on one worker: 80 s
    check = EstimateCheck(lambda m, s: said.append((m, s)), 80.0, 8, 1, clock=clock)
    _run_batch(check, clock, 8, 10.0 * slowdown)
    assert len(said) == lines
    if lines:
        (message, seconds), = said
        assert seconds == pytest.approx(80.0 * slowdown)
        assert message.startswith("revised estimate: about ")
        assert "(the first image took" in message and "not 10 s)" in message


def test_the_revised_line_waits_for_a_round_and_names_the_images_of_parts():
    clock, said = _Clock(), []
    # 6 images in 2 parts each (12 tasks) on 3 workers: 60 s estimated, 30 s an image on one worker
    check = EstimateCheck(lambda m, s: said.append((m, s)), 60.0, 6, 3, clock=clock)
    clock.now += 500.0  # the first round: the workers' first three images (six parts) took 500 s
    for done in range(1, 6):
        check.task_done(done, 12)
    assert said == []  # two and a half images done: the round is not over
    check.task_done(6, 12)
    (message, seconds), = said
    assert seconds == pytest.approx(1000.0)
    assert message == "revised estimate: about 17 min (the first 3 images took 8 min each, not 30 s)"
    clock.now += 5000.0
    for done in range(7, 12):
        check.task_done(done, 12)
    assert len(said) == 1  # once only


def test_a_batch_within_its_round_or_finished_says_nothing_more():
    clock, said = _Clock(), []
    check = EstimateCheck(lambda m, s: said.append((m, s)), 10.0, 2, 4, clock=clock)
    clock.now += 100.0
    check.task_done(1, 2)  # one image of two on four workers: still the first round
    check.task_done(2, 2)  # the batch is over: nothing left to estimate
    assert said == []


def test_notice_estimate_returns_the_check_an_executor_feeds():
    class Above:
        def halo(self, ndim):
            return (0,) * ndim

        def predict_mask(self, region):
            return region > 5

        def describe(self):
            return {}

    clock, said = _Clock(), []
    image = np.zeros((64, 64), np.uint16)
    # the raw image took 4 s with 2 threads; 5 images on 1 worker of 2 threads: 20 s estimated
    raw = ({"features": 3.0, "trees": 1.0}, 2)
    check = notice_estimate(lambda m, s: said.append((m, s)), image, Above(), 64, 2, raw, {}, 5, 1, clock=clock)
    assert isinstance(check, EstimateCheck)
    assert said[0][0].startswith("estimated time: 20 s for 5 images") and said[0][1] == pytest.approx(20.0)
    _run_batch(check, clock, 5, 20.0)  # each image took 20 s, not 4
    assert [m for m, _ in said[1:]] == ["revised estimate: about 2 min (the first image took 20 s, not 4 s)"]


def _identity(i):
    return i


@pytest.mark.slow
@pytest.mark.process
def test_a_dask_batch_feeds_the_check_its_started_hook_returns():
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    from noisestat.engine import DaskExecutor

    class Ticking:
        """Each reading is 50 s after the last: tasks "take" 50 s where 10 s were estimated."""

        def __init__(self):
            self.now = 0.0

        def __call__(self):
            self.now += 50.0
            return self.now

    said = []
    check = EstimateCheck(lambda m, s: said.append(m), 40.0, 4, 1, clock=Ticking())
    with DaskExecutor("local:1") as executor:
        out = executor.map(_identity, [(i,) for i in range(4)], [f"image {i + 1}" for i in range(4)],
                           started=lambda: check)
    assert out == [0, 1, 2, 3]
    assert len(said) == 1 and said[0].startswith("revised estimate: about ")


def test_an_assessment_hands_its_batch_to_the_estimates_check(monkeypatch):
    # the estimate said before the batch comes with the check that may revise it: every finished image
    # of the batch reaches it
    import noisestat
    from noisestat import _reference
    from noisestat.simulate import acquire, simulate_scene, sparse_labels

    from conftest import CAMERA

    seen = []

    class Recorder:
        def task_done(self, done, total):
            seen.append((done, total))

    monkeypatch.setattr(_reference, "notice_estimate", lambda *args, **kwargs: Recorder())
    electrons, truth = simulate_scene((96, 96), n_objects=8, radius=(3.0, 6.0), rng=2)
    raw = acquire(electrons, CAMERA, 3)
    noisestat.assess(raw, CAMERA, ["lossless"], labels=sparse_labels(truth, rng=4), replicas=2,
                     notice=lambda message, seconds: None)
    assert seen and seen[-1][0] == seen[-1][1] == len(seen)
