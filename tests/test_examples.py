"""The examples run as documented."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import shared_data

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_phase_contrast_example_on_a_real_image(tmp_path):
    folder = shared_data("usiigaci-phase-contrast", "set14")
    out = tmp_path / "pc"
    proc = subprocess.run([sys.executable, str(EXAMPLES / "phase_contrast.py"), str(folder / "raw.tif"),
                           "--mask", str(folder / "instances_ids.png"), "--crop", "320", "--replicas", "4",
                           "--jobs", "2", "-o", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "rough estimate" in proc.stdout
    s = json.loads((out / "summary.json").read_text())
    assert [c["spec"] for c in s["codecs"]][0] == "lossless" and s["provenance"]["min_area"] == 20


def test_command_line_example(tmp_path):
    bindir = Path(sys.executable).parent
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    assert shutil.which("noisestat", path=env["PATH"]), "the noisestat command is not installed"
    proc = subprocess.run(["bash", str(EXAMPLES / "command_line.sh"), str(tmp_path / "cli")], capture_output=True,
                          text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr
    s = json.loads((tmp_path / "cli" / "assessment" / "summary.json").read_text())
    external = s["codecs"][2]
    assert external["spec"].startswith("file:path=") and external["compression_ratio"] > 1
    # the external tool wrote JPEG at quality 50, as jpeg:quality=50 does (without Huffman
    # optimisation), so both decoded images segment alike
    assert external["matching"]["matched"] > 0.9 * s["n_objects_raw"]
