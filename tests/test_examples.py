"""The examples run as documented."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DEADLINE_S, shared_data

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
# the noisestat of this checkout, in every process the examples start
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


@pytest.mark.process
@pytest.mark.slow
def test_phase_contrast_example_on_a_real_image(tmp_path):
    folder = shared_data("usiigaci-phase-contrast", "set14")
    out = tmp_path / "pc"
    proc = subprocess.run([sys.executable, str(EXAMPLES / "phase_contrast.py"), str(folder / "raw.tif"),
                           "--mask", str(folder / "instances_ids.png"), "--crop", "320", "--replicas", "4",
                           "--jobs", "2", "-o", str(out)], capture_output=True, text=True, timeout=2 * DEADLINE_S,
                          env=ENV)
    assert proc.returncode == 0, proc.stderr
    assert "rough estimate" in proc.stdout
    s = json.loads((out / "summary.json").read_text())
    assert [c["spec"] for c in s["codecs"]][0] == "lossless" and s["provenance"]["min_area"] == 20


# The noisestat command for the example, with the demo's scene (step 1, which makes the inputs of the
# steps after it) 320 x 320 instead of 640 x 640 and its own assessment, which the script does not
# read, on 3 replicas. The demo itself, at its size, runs in tests/test_cli.py; here every command
# of the script runs as written, through noisestat's own command line, on a quarter of the pixels.
_SMALL_DEMO = f"""#!{sys.executable}
import sys
import noisestat.demo
from noisestat.cli import main

full = noisestat.demo.run_demo
noisestat.demo.run_demo = lambda *args, **kwargs: full(*args, shape=(320, 320), replicas=3, **kwargs)
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.process
@pytest.mark.slow
def test_command_line_example(tmp_path):
    bindir = Path(sys.executable).parent
    path = f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"
    assert shutil.which("noisestat", path=path), "the noisestat command is not installed"
    small = tmp_path / "bin"
    small.mkdir()
    (small / "noisestat").write_text(_SMALL_DEMO)
    (small / "noisestat").chmod(0o755)
    env = dict(ENV, PATH=f"{small}{os.pathsep}{path}")
    proc = subprocess.run(["bash", str(EXAMPLES / "command_line.sh"), str(tmp_path / "cli")], capture_output=True,
                          text=True, timeout=2 * DEADLINE_S, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "calibrated the simulated camera" in proc.stdout and "trained 200 trees" in proc.stdout
    s = json.loads((tmp_path / "cli" / "assessment" / "summary.json").read_text())
    assert s["replicas"] == 10 and s["provenance"]["image_shape"] == [320, 320] and len(s["codecs"]) == 3
    assert s["provenance"]["classifier_trained_here"] is False  # the model of step 2
    external = s["codecs"][2]
    assert external["spec"].startswith("file:path=") and external["compression_ratio"] > 1
    # the external tool wrote JPEG at quality 50, as jpeg:quality=50 does (without Huffman
    # optimisation), so both decoded images segment alike
    assert s["n_objects_raw"] >= 20  # enough objects for the share matched to mean something
    assert external["matching"]["matched"] > 0.9 * s["n_objects_raw"]
