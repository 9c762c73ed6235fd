import json
import pickle

import numpy as np
import pytest
import tifffile

from noisestat.cli import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_codecs_lists_every_codec(capsys):
    code, out, _ = run(capsys, "codecs")
    assert code == 0
    for name in ("lossless", "bitdepth", "jpeg", "file"):
        assert f"\n{name}:" in "\n" + out


def test_train_then_assess_with_model(capsys, tmp_path, scene_files):
    code, out, _ = run(capsys, "train", scene_files / "raw.tif", "--labels", scene_files / "labels.tif",
                       "--trees", 20, "-o", tmp_path / "m.npz")
    assert code == 0 and "forest seed" in out
    code, out, err = run(capsys, "assess", scene_files / "raw.tif", "--camera", scene_files / "camera.json",
                         "--model", tmp_path / "m.npz", "--codec", "lossless",
                         "--codec", f"file:path={scene_files / 'raw_b.tif'}", "--replicas", 3, "-o", tmp_path / "o")
    assert code == 0, err
    assert "lossless" in out and "verdict: tolerable when" in out
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["provenance"]["classifier_trained_here"] is False
    assert s["provenance"]["inputs"]["model"]["sha256"]


def _bad_cases(d, tmp):
    tifffile.imwrite(tmp / "small.tif", np.zeros((10, 10), np.uint8))
    (tmp / "nogain.json").write_text(json.dumps({"offset_dn": 100, "read_noise_dn": 2, "bit_depth": 16}))
    (tmp / "notimage.tif").write_text("hello")
    tifffile.imwrite(tmp / "zeros.tif", np.zeros((64, 64), np.uint16))
    tifffile.imwrite(tmp / "float.tif", np.ones((64, 64), np.float32))
    (tmp / "evil.npz").write_bytes(pickle.dumps({"x": 1}))
    R, C, L = d / "raw.tif", d / "camera.json", d / "labels.tif"
    return {
        "labels of another shape": ([R, "--camera", C, "--labels", tmp / "small.tif"], "labels must have the image's shape"),
        "profile without gain": ([R, "--camera", tmp / "nogain.json", "--labels", L], "missing required key(s) gain_dn_per_e"),
        "unknown codec": ([R, "--camera", C, "--labels", L, "--codec", "nosuch:x=1"], "unknown codec 'nosuch'"),
        "unknown key": ([R, "--camera", C, "--labels", L, "--codec", "jpeg:nosuchkey=3"], "unknown key 'nosuchkey'"),
        "not an image": ([tmp / "notimage.tif", "--camera", C, "--labels", L], "not a readable image"),
        "all zero": ([tmp / "zeros.tif", "--camera", C, "--labels", L], "every pixel is zero"),
        "floating point": ([tmp / "float.tif", "--camera", C, "--labels", L], "expected integer pixel values"),
        "missing file": ([tmp / "missing.tif", "--camera", C, "--labels", L], "no such file"),
        "pickled model": ([R, "--camera", C, "--model", tmp / "evil.npz"], "not a noisestat model file"),
    }


@pytest.mark.parametrize("case", ["labels of another shape", "profile without gain", "unknown codec", "unknown key",
                                  "not an image", "all zero", "floating point", "missing file", "pickled model"])
def test_bad_input_is_one_line_exit_1_and_no_output(capsys, tmp_path, scene_files, case):
    argv, words = _bad_cases(scene_files, tmp_path)[case]
    if "--codec" not in argv:
        argv = argv + ["--codec", "lossless"]
    code, out, err = run(capsys, "assess", *argv, "--replicas", 2, "-o", tmp_path / "out")
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and words in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["assess", "x.tif"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["assess", "x.tif", "--camera", "c", "--labels", "l", "--codec", "lossless", "--replicas", "0", "-o", "o"])
    assert info.value.code == 2


def test_demo_runs_end_to_end(capsys, tmp_path):
    code, out, err = run(capsys, "demo", "-o", tmp_path / "demo", "--jobs", 2)
    assert code == 0, err
    s = json.loads((tmp_path / "demo" / "assessment" / "summary.json").read_text())
    specs = [c["spec"] for c in s["codecs"]]
    assert specs == ["lossless", "bitdepth:bits=8,mode=minmax", "bitdepth:bits=8,mode=shift", "jpeg:ratio=10",
                     "jpeg:ratio=100"]
    by = {c["spec"]: c for c in s["codecs"]}
    assert by["lossless"]["tolerable"] and not by["bitdepth:bits=8,mode=shift"]["tolerable"]
    for f in ("raw.tif", "labels.tif", "camera.json", "ptc.png"):
        assert (tmp_path / "demo" / f).exists()
    # the demo calibrates its camera before assessing: the gain is recovered
    assert "calibrated the simulated camera" in out
    assert s["provenance"]["demo"]["calibrated_gain_dn_per_e"] == pytest.approx(0.46, rel=0.02)


def test_progress_bar_only_on_a_terminal():
    import io

    from noisestat.cli import _Progress

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    with _Progress("assess", stream=tty) as p:
        p("replica 1", 1, 4)
    assert "1/4" in tty.getvalue()
    quiet = Tty()
    with _Progress("assess", quiet=True, stream=quiet) as p:
        p("replica 1", 1, 4)
    assert quiet.getvalue() == ""
    plain = io.StringIO()
    with _Progress("assess", stream=plain) as p:
        p("replica 1", 1, 4)
    assert plain.getvalue() == ""


class _Tty:
    """A terminal stand-in: what was written, and isatty() True."""

    def __init__(self):
        import io

        self.buffer = io.StringIO()

    def isatty(self):
        return True

    def write(self, text):
        self.buffer.write(text)

    def flush(self):
        pass

    def lines(self):
        """Every line drawn (the text between carriage returns), stripped."""
        return [part.strip() for part in self.buffer.getvalue().split("\r") if part.strip()]


def test_progress_line_is_drawn_at_the_start_with_elapsed_time():
    from noisestat.cli import _Progress

    now = [100.0]
    tty = _Tty()
    with _Progress("assess", stream=tty, clock=lambda: now[0], tick_s=None) as progress:
        assert tty.lines() == ["assess: starting, 0:00 elapsed"]   # before any task has finished
        now[0] += 75.0
        progress._draw()                                          # what the ticker does every second
        assert tty.lines()[-1] == "assess: starting, 1:15 elapsed"


def test_progress_eta_is_revised_from_the_finished_tasks_rate():
    from noisestat.cli import _Progress

    now = [0.0]
    tty = _Tty()
    with _Progress("assess", stream=tty, clock=lambda: now[0], tick_s=None) as progress:
        now[0] = 60.0
        progress("replica 1", 1, 10)           # 60 s per task so far: 9 left
        assert tty.lines()[-1].endswith("1/10 replica 1                      1:00 elapsed, ETA 9:00")
        now[0] = 90.0
        progress("replica 2", 2, 10)           # faster now: 45 s per task, 8 left
        assert tty.lines()[-1].endswith("1:30 elapsed, ETA 6:00")
        now[0] = 100.0
        progress._draw()                       # between tasks the ETA counts down
        assert tty.lines()[-1].endswith("1:40 elapsed, ETA 5:50")
        for k in range(3, 11):
            now[0] += 45.0
            progress(f"replica {k}", k, 10)
        assert tty.lines()[-1].endswith("7:40 elapsed")  # batch done: no ETA
        now[0] += 3600.0                                 # a long step between two batches (training)
        progress("image 1", 1, 4)                        # a new batch: its rate starts where the last ended
        assert tty.lines()[-1].endswith("1:07:40 elapsed, ETA 3:00:00")
    assert tty.buffer.getvalue().endswith("\r" + " " * _Progress.WIDTH + "\r")  # the line is cleared at the end


def test_progress_ticker_redraws_while_a_task_runs():
    from noisestat.cli import _Progress

    from conftest import wait_until

    tty = _Tty()
    with _Progress("assess", stream=tty, tick_s=0.01):
        wait_until(lambda: len(tty.lines()) >= 3, "the progress line being redrawn without a finished task")
    assert all(line.startswith("assess: starting") for line in tty.lines())


@pytest.mark.parametrize("option, message", [
    (("--margin", "shift=x"), "--margin shift must be a number; got 'x'"),
    (("--margin", "size=1"), "--margin takes key=value pairs"),
    (("--margin", "spread=0.5"), "margin spread must be >= 1"),
    (("--primary", "Area,Bogus"), "--primary takes parameter names"),
])
def test_bad_verdict_options_are_one_line_before_any_work(capsys, tmp_path, scene_files, monkeypatch, option, message):
    monkeypatch.setattr("noisestat.pipeline.assess", lambda *a, **k: pytest.fail("work started"))
    code, _, err = run(capsys, "assess", scene_files / "raw.tif", "--camera", scene_files / "camera.json",
                       "--labels", scene_files / "labels.tif", "--codec", "lossless", *option, "-o", tmp_path / "o")
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_verdict_options_reach_the_summary(capsys, tmp_path, scene_files):
    code, out, err = run(capsys, "assess", scene_files / "raw.tif", "--camera", scene_files / "camera.json",
                         "--labels", scene_files / "labels.tif", "--codec", "lossless", "--replicas", 3,
                         "--margin", "shift=0.5,loss_floor=0.2", "--primary", "Area,Mean", "-o", tmp_path / "o")
    assert code == 0, err
    s = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert s["verdict"]["margins"]["shift"] == 0.5 and s["verdict"]["margins"]["loss_floor"] == 0.2
    assert s["verdict"]["primary"] == ["Area", "Mean"]
    assert "a systematic shift under 0.5 sigma_raw" in out
    c = s["codecs"][0]
    assert c["outcome"] == "tolerable" and c["tolerable"] is True   # lossless: identical to the raw image
    assert [k["parameter"] for k in c["verdict"]["criteria"] if k["criterion"] == "shift"] == ["Area", "Mean"]
