"""Ctrl-C and SIGTERM at the awkward moments: while noisestat starts (its imports) and while a
local dask cluster starts. Each gives one line, exit code 130 or 143, and leaves nothing behind.

The tests stop each run at a known point (an import hook or a patched start that touches a file
and then waits) and signal it once that file exists: no timing is assumed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tifffile

from conftest import CAMERA, as_in_a_terminal, wait_until

pytestmark = pytest.mark.process

_ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}

# The command line as the `noisestat` script runs it, stopped when it first imports numpy: with
# every command that is the start of its real work, within its first second.
_AT_FIRST_IMPORT = textwrap.dedent("""
    import sys, time
    from pathlib import Path

    class Stop:
        def find_spec(self, name, path=None, target=None):
            if name == "numpy":
                sys.meta_path.remove(self)
                Path(sys.argv[1]).touch()   # the test signals once this file exists
                while True:                 # until the signal, in short sleeps (a signal another
                    time.sleep(0.05)        # thread receives does not cut a sleep short)
            return None

    sys.meta_path.insert(0, Stop())
    from noisestat.cli import main
    sys.exit(main(sys.argv[2:]))
""")

# A local dask cluster stopped while its worker processes start.
_IN_CLUSTER_START = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path

    import distributed

    async def instantiate(self):
        Path(sys.argv[1]).touch()           # the test signals once this file exists
        await asyncio.sleep(3600)

    distributed.Nanny.instantiate = instantiate
    from noisestat.cli import main
    if __name__ == "__main__":
        sys.exit(main(sys.argv[2:]))
""")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("signals")
    from noisestat.simulate import acquire, simulate_scene, sparse_labels

    electrons, truth = simulate_scene((96, 96), rng=3)
    tifffile.imwrite(d / "raw.tif", acquire(electrons, CAMERA, 4))
    tifffile.imwrite(d / "labels.tif", sparse_labels(truth, rng=5))
    (d / "camera.json").write_text('{"gain_dn_per_e": 0.5, "offset_dn": 100.0, "read_noise_dn": 2.0, '
                                   '"bit_depth": 16}')
    return d


def _run_and_signal(script: str, argv: list, tmp_path: Path, sig) -> tuple[int, str]:
    """Run ``script`` with ``argv``, send ``sig`` once it has touched its marker; its exit code and
    error output."""
    path, marker, log = tmp_path / "run.py", tmp_path / "reached", tmp_path / "err.txt"
    path.write_text(script)
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, str(path), str(marker), *map(str, argv)], cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=err, env=_ENV, preexec_fn=as_in_a_terminal)
    try:
        def exited():
            if proc.poll() is None:
                return None
            return f"the run exited with code {proc.returncode} first: {log.read_text()[-2000:]}"

        wait_until(marker.exists, "the run reaching the point to interrupt", failed=exited)
        proc.send_signal(sig)
        wait_until(lambda: proc.poll() is not None, f"noisestat ending after {sig.name}")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    return proc.returncode, log.read_text()


def _left_behind(folder: Path, out: str) -> list[str]:
    """Outputs or staging leftovers named after ``out`` in ``folder``."""
    return [n for n in os.listdir(folder) if n == out or n.startswith(f".{out}.")]


def _commands(d: Path) -> dict:
    return {
        "assess": ["assess", d / "raw.tif", "--camera", d / "camera.json", "--labels", d / "labels.tif",
                   "--codec", "lossless", "--replicas", 2, "--quiet", "-o", "out"],
        "train": ["train", d / "raw.tif", "--labels", d / "labels.tif", "-o", "out"],
        "calibrate": ["calibrate", "--from-image", d / "raw.tif", "-o", "out"],
        "compress-bench": ["compress-bench", d / "raw.tif", "--codec", "lossless", "-o", "out"],
    }


@pytest.mark.parametrize("command", ["assess", "train", "calibrate", "compress-bench"])
def test_ctrl_c_while_noisestat_starts_is_one_line(inputs, tmp_path, command):
    code, err = _run_and_signal(_AT_FIRST_IMPORT, _commands(inputs)[command], tmp_path, signal.SIGINT)
    assert code == 130, err
    assert err.strip().splitlines() == ["noisestat: interrupted; no partial output was left"], err
    assert _left_behind(tmp_path, "out") == []


def test_sigterm_while_noisestat_starts_is_one_line(inputs, tmp_path):
    code, err = _run_and_signal(_AT_FIRST_IMPORT, _commands(inputs)["assess"], tmp_path, signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, err
    assert err.strip().splitlines() == ["noisestat: terminated; no partial output was left"], err
    assert _left_behind(tmp_path, "out") == []


@pytest.mark.parametrize("sig, code, word", [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")])
def test_a_signal_while_a_local_dask_cluster_starts_is_one_line(inputs, tmp_path, sig, code, word):
    pytest.importorskip("distributed", reason="--scheduler local:N needs dask.distributed")
    argv = [*_commands(inputs)["assess"], "--scheduler", "local:2"]
    returncode, err = _run_and_signal(_IN_CLUSTER_START, argv, tmp_path, sig)
    assert returncode == code, err
    assert err.strip().splitlines() == [f"noisestat: {word}; no partial output was left"], err
    assert _left_behind(tmp_path, "out") == []
