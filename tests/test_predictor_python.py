"""A Python model from the command line: ``--predictor-python MODULE:NAME`` or ``file.py:NAME``
(noisestat/predict/_callable.py), and the determinism check every predictor but the forest gets
(noisestat/_reference.py).

The models are a few lines of scipy in a file written here (MODELS): a threshold on the image
smoothed by a Gaussian of 1 px, half-way between the simulated background and cells, as labels, a
mask, values, a factory class, a factory function returning a tiled mask predictor; and faulty or
non-deterministic ones.
"""

import json
import pickle
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

import noisestat
from noisestat.cli import main
from noisestat.errors import InputError, ModelError
from noisestat.predict._callable import callable_form, callable_predictor
from noisestat.simulate import acquire, simulate_scene

from conftest import CAMERA, DEADLINE_S

DOCS = Path(__file__).resolve().parents[1] / "docs" / "predictors.md"
BACKGROUND_E, OBJECT_E = 300.0, 1500.0  # simulate_scene's defaults
THRESHOLD_DN = CAMERA.offset_dn + CAMERA.gain_dn_per_e * (BACKGROUND_E + OBJECT_E / 2)

MODELS = f'''
"""Models for tests/test_predictor_python.py."""
import numpy as np
from scipy import ndimage as ndi

__version__ = "1.2.3"
THRESHOLD_DN = {THRESHOLD_DN!r}
RUNS = [0]


def smooth(image):
    return ndi.gaussian_filter(np.asarray(image, dtype=np.float64), 1.0)


def cells(image):
    return ndi.label(smooth(image) > THRESHOLD_DN, structure=np.ones((3,) * image.ndim))[0]


def foreground(image):
    return smooth(image) > THRESHOLD_DN


def brightness(image):
    return smooth(image).astype(np.float32)


class Cells:
    def segment(self, image):
        return cells(image)

    def describe(self):
        return {{"threshold_dn": THRESHOLD_DN}}


class Tiled:
    def halo(self, ndim):
        return (4,) * ndim

    def predict_mask(self, region):
        return smooth(region) > THRESHOLD_DN

    def describe(self):
        return {{"threshold_dn": THRESHOLD_DN, "tiled": True}}


def tiled(scale=1.0):
    return Tiled()


def shaky(image):
    # not deterministic: every call raises the threshold (by 20 DN, a tenth of the cells' contrast)
    RUNS[0] += 1
    return ndi.label(smooth(image) > THRESHOLD_DN + 20.0 * RUNS[0])[0]


def drifting(image):
    # values that are not deterministic: every call adds a little more
    RUNS[0] += 1
    return (smooth(image) + 0.5 * RUNS[0]).astype(np.float32)


def not_a_predictor():
    return 3


def two(image, other):
    return image


def cropped(image):
    return cells(image)[1:]


def boom(image):
    raise ValueError("the model refuses this image")
'''


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """The models' file, a camera, a 2D scene (two acquisitions) and a volume (two acquisitions)."""
    d = tmp_path_factory.mktemp("python_models")
    (d / "models.py").write_text(MODELS)
    (d / "broken.py").write_text("import no_such_module_for_noisestat\n")
    (d / "camera.json").write_text(json.dumps({"gain_dn_per_e": CAMERA.gain_dn_per_e, "offset_dn": CAMERA.offset_dn,
                                               "read_noise_dn": CAMERA.read_noise_dn, "bit_depth": CAMERA.bit_depth}))
    # 2D: small cells, dense enough (about 170) for 4 replicas to judge a second acquisition
    electrons, _ = simulate_scene((320, 320), n_objects=250, radius=(3.0, 5.0), rng=1)
    tifffile.imwrite(d / "raw.tif", acquire(electrons, CAMERA, 2))
    tifffile.imwrite(d / "raw_b.tif", acquire(electrons, CAMERA, 3))
    tifffile.imwrite(d / "small.tif", acquire(electrons[:96, :96], CAMERA, 4))
    # 3D: balls in a small volume
    z, y, x = np.mgrid[:12, :40, :40]
    volume = np.full(z.shape, BACKGROUND_E)
    for cz, cy, cx in [(6, 10, 10), (5, 28, 12), (6, 12, 29), (7, 29, 28)]:
        volume[(z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= 16] += OBJECT_E
    tifffile.imwrite(d / "volume.tif", acquire(volume, CAMERA, 5))
    return d


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assess(capsys, d, image, spec, out, *more, output="labels", replicas=3, codecs=("lossless",)):
    argv = ["assess", d / image, "--camera", d / "camera.json", "--predictor-python", spec,
            "--predictor-output", output, "--replicas", replicas, "--quiet", "-o", out, *more]
    for c in codecs:
        argv += ["--codec", c]
    code, out_text, err = run(capsys, *argv)
    assert code == 0, err
    return json.loads((out / "summary.json").read_text())


def _codec(summary, spec):
    return next(c for c in summary["codecs"] if c["spec"] == spec)


def _lossless_eps_is_zero(folder):
    """Every eps of the lossless codec in objects.csv is exactly 0 (NaN only where a parameter is not measured)."""
    import csv

    with open(folder / "objects.csv", newline="") as handle:
        eps = [float(r["eps"]) for r in csv.DictReader(handle) if r["codec"] == "lossless"]
    finite = [e for e in eps if np.isfinite(e)]
    return len(finite) > 0 and all(e == 0 for e in finite)


@pytest.mark.slow
def test_function_scored_end_to_end_in_2d(capsys, inputs, tmp_path):
    d = inputs
    second = f"file:path={d / 'raw_b.tif'}"
    s = assess(capsys, d, "raw.tif", f"{d / 'models.py'}:cells", tmp_path / "o", replicas=4,
               codecs=("lossless", second))
    assert s["n_objects_raw"] > 100
    assert _codec(s, "lossless")["outcome"] == "tolerable" and _lossless_eps_is_zero(tmp_path / "o")
    assert _codec(s, second)["outcome"] == "tolerable"  # a second acquisition of the scene
    record = s["provenance"]["inputs"]["predictor"]
    assert record["form"] == "function" and record["output"] == "labels" and record["version"] == "1.2.3"
    assert record["path"] == str(d / "models.py") and len(record["sha256"]) == 64
    assert s["provenance"]["deterministic"] is True and s["sigma_model"] is None


def test_mask_function_scored_end_to_end_in_3d(capsys, inputs, tmp_path):
    s = assess(capsys, inputs, "volume.tif", f"{inputs / 'models.py'}:foreground", tmp_path / "o", output="mask")
    assert s["n_objects_raw"] == 4  # the four balls, labelled by noisestat (26-connected)
    assert _lossless_eps_is_zero(tmp_path / "o")
    assert s["provenance"]["inputs"]["predictor"]["output"] == "mask"
    assert s["provenance"]["deterministic"] is True


@pytest.mark.process
@pytest.mark.slow
def test_factory_in_two_worker_processes_equals_the_function(capsys, inputs, tmp_path):
    """The factory class in two worker processes (it travels as its spec: the file's module exists in
    no worker) gives the function's numbers in one process."""
    d = inputs
    one = assess(capsys, d, "raw.tif", f"{d / 'models.py'}:cells", tmp_path / "one")
    two = assess(capsys, d, "raw.tif", f"{d / 'models.py'}:Cells", tmp_path / "two", "--jobs", 2)
    assert two["provenance"]["inputs"]["predictor"]["form"] == "factory"
    assert two["provenance"]["jobs"] == 2 and two["provenance"]["engine"]["workers_are"] == "processes"
    assert two["raw"] == one["raw"] and two["n_objects_raw"] == one["n_objects_raw"]
    assert (tmp_path / "two" / "objects.csv").read_text() == (tmp_path / "one" / "objects.csv").read_text()


def test_factory_function_gives_a_tiled_mask_predictor(inputs):
    image = tifffile.imread(inputs / "small.tif")
    predictor, record = callable_predictor(f"{inputs / 'models.py'}:tiled", output="values")
    assert record["form"] == "factory" and record["output"] == "mask"  # its methods say what it gives
    assert type(predictor).__name__ == "Tiled" and predictor.halo(2) == (4, 4)
    labels = noisestat.engine.segment(image, predictor, tile=32)
    whole, _ = callable_predictor(f"{inputs / 'models.py'}:cells")
    assert np.array_equal(labels > 0, whole.segment(image) > 0)


def test_values_function_is_a_whole_image_value_predictor(inputs):
    image = tifffile.imread(inputs / "small.tif")
    predictor, record = callable_predictor(f"{inputs / 'models.py'}:brightness", output="values")
    assert predictor.whole_image and predictor.halo(2) == (0, 0)
    result = noisestat.assess_values(image, CAMERA, ["lossless"], predictor, replicas=3, seed=0)
    assert np.all(result.codecs[0].eps == 0)
    assert result.provenance["deterministic"] is True and not any("deterministic" in w for w in result.warnings)
    assert result.summary()["sigma_model"] is None


def test_values_that_differ_between_runs_are_warned(inputs):
    image = tifffile.imread(inputs / "small.tif")
    predictor, _ = callable_predictor(f"{inputs / 'models.py'}:drifting", output="values")
    result = noisestat.assess_values(image, CAMERA, ["lossless"], predictor, replicas=3, seed=0)
    assert result.provenance["deterministic"] is False
    assert any("models.py:drifting is not deterministic" in w and f"of {image.size} pixels" in w
               for w in result.warnings)
    # its own spread from the two runs is reported beside sigma_raw
    model = result.summary()["sigma_model"]
    assert model["pixels_differing"] > 0 and model["max"] >= model["median"] >= 0
    assert model["median_sigma_model_over_sigma_raw"] is not None


def test_pickles_as_its_spec_and_is_loaded_once_per_process(inputs):
    spec = f"{inputs / 'models.py'}:cells"
    predictor, _ = callable_predictor(spec)
    data = pickle.dumps(predictor)
    assert b"models.py:cells" in data and b"gaussian_filter" not in data and len(data) < 500
    assert pickle.loads(data) is predictor  # the same process: the predictor it already made
    # a fresh interpreter imports the file again from the spec
    code = (f"import pickle, sys, numpy as np; p = pickle.loads(sys.stdin.buffer.read()); "
            f"print(int(p.segment(np.full((8, 8), 900, np.uint16)).max()))")
    proc = subprocess.run([sys.executable, "-c", code], input=data, capture_output=True, timeout=DEADLINE_S)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().strip() == "1"


def test_module_spec_imports_by_name(inputs, monkeypatch):
    monkeypatch.syspath_prepend(str(inputs))
    predictor, record = callable_predictor("models:Cells")
    assert record["module"] == "models" and record["version"] == "1.2.3" and record["form"] == "factory"
    assert predictor.describe()["threshold_dn"] == THRESHOLD_DN


def test_factory_or_function_by_signature():
    def factory(scale=1.0):
        return scale

    def function(image, *, sigma=1.0):
        return image

    class Built:
        pass

    assert callable_form(factory) == "factory" and callable_form(Built) == "factory"
    assert callable_form(function) == "function" and callable_form(np.asarray) == "function"
    with pytest.raises(ModelError, match=r"needs the arguments \(a, b\)"):
        callable_form(lambda a, b: a)


# --- the determinism check: the raw image segmented twice -------------------------------------

class Flicker:
    """A Python object predictor that is not deterministic: each call moves its threshold."""

    def __init__(self):
        self.calls = 0

    def segment(self, image):
        from scipy import ndimage as ndi

        self.calls += 1
        smooth = ndi.gaussian_filter(image.astype(np.float64), 1.0)
        return ndi.label(smooth > THRESHOLD_DN + 20.0 * self.calls)[0]

    def describe(self):
        return {"predictor": "flicker"}


@pytest.fixture(scope="module")
def scene():
    electrons, _ = simulate_scene((128, 128), n_objects=14, rng=7)
    return acquire(electrons, CAMERA, 8)


def test_a_non_deterministic_callable_is_warned_and_its_spread_reported(inputs, scene):
    predictor, _ = callable_predictor(f"{inputs / 'models.py'}:shaky")
    result = noisestat.assess(scene, CAMERA, ["lossless"], model=predictor, replicas=3, seed=0)
    assert result.provenance["deterministic"] is False
    assert any("not deterministic" in w and "models.py:shaky" in w for w in result.warnings)
    assert result.sigma_model is not None and np.nanmax(result.sigma_model) > 0
    summary = result.summary()["sigma_model"]
    assert summary["runs"] == 2 and summary["seeds"] is None and "two runs" in summary["note"]


def test_a_non_deterministic_python_object_is_warned(scene):
    result = noisestat.assess(scene, CAMERA, ["lossless"], model=Flicker(), replicas=3, seed=0)
    assert result.provenance["deterministic"] is False
    assert any("Flicker is not deterministic" in w for w in result.warnings)


def test_a_deterministic_callable_is_recorded_so(inputs, scene):
    predictor, _ = callable_predictor(f"{inputs / 'models.py'}:cells")
    result = noisestat.assess(scene, CAMERA, ["lossless"], model=predictor, replicas=3, seed=0)
    assert result.provenance["deterministic"] is True
    assert result.sigma_model is None and not any("deterministic" in w for w in result.warnings)


# --- every fault in one line ---------------------------------------------------------------------

ERRORS = {
    "no colon": ("{d}/models.py", "labels", "must be MODULE:NAME or path/to/file.py:NAME"),
    "empty name": ("{d}/models.py:", "labels", "must be MODULE:NAME"),
    "missing file": ("{d}/nosuch.py:cells", "labels", "no such file"),
    "import error in a file": ("{d}/broken.py:cells", "labels",
                               "broken.py failed: ModuleNotFoundError: No module named 'no_such_module_for_noisestat'"),
    "import error of a module": ("no_such_package_for_noisestat.models:cells", "labels",
                                 "importing no_such_package_for_noisestat.models failed: ModuleNotFoundError"),
    "missing attribute": ("{d}/models.py:nothing", "labels", "has no attribute 'nothing'"),
    "not callable": ("{d}/models.py:THRESHOLD_DN", "labels", "is a float, not a callable"),
    "not a predictor": ("{d}/models.py:not_a_predictor", "labels", "not_a_predictor() returned a int, which is not "
                                                                   "a predictor"),
    "two arguments": ("{d}/models.py:two", "labels", "needs the arguments (image, other)"),
    "wrong shape": ("{d}/models.py:cropped", "labels", "models.py:cropped (--predictor-output labels) returned an "
                                                      "array of shape (95, 96) for an input of shape (96, 96)"),
    "wrong dtype": ("{d}/models.py:brightness", "labels", "models.py:brightness (--predictor-output labels) must "
                                                         "return integer labels; got dtype float32"),
    "mask not boolean": ("{d}/models.py:cells", "mask", "must return a boolean mask; got dtype int32"),
    "raises": ("{d}/models.py:boom", "labels", "models.py:boom failed on an image of shape (96, 96): ValueError: "
                                              "the model refuses this image"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_every_fault_is_one_line(capsys, inputs, tmp_path, case):
    spec, output, words = ERRORS[case]
    code, out, err = run(capsys, "assess", inputs / "small.tif", "--camera", inputs / "camera.json",
                         "--predictor-python", spec.format(d=inputs), "--predictor-output", output,
                         "--codec", "lossless", "--replicas", 2, "-o", tmp_path / "out")
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert words in err
    assert not (tmp_path / "out" / "summary.json").exists()


def test_errors_raised_from_python_are_noisestat_errors(inputs):
    with pytest.raises(InputError, match="must be MODULE:NAME"):
        callable_predictor("no-colon")
    with pytest.raises(InputError, match="--predictor-output must be one of labels, mask, values"):
        callable_predictor(f"{inputs / 'models.py'}:cells", output="probabilities")
    with pytest.raises(ModelError, match="not a callable"):
        callable_predictor(f"{inputs / 'models.py'}:RUNS")


# --- docs/predictors.md -------------------------------------------------------------------------

def _runnable(text):
    """The files and commands of the part of docs/predictors.md marked runnable."""
    part = re.search(r"<!-- runnable -->(.*?)<!-- /runnable -->", text, flags=re.S)
    assert part, f"{DOCS} has no part marked runnable"
    files = re.findall(r"```python file=(\S+)\n(.*?)```", part.group(1), flags=re.S)
    commands = re.findall(r"```sh\n(.*?)```", part.group(1), flags=re.S)
    return files, [line for block in commands for line in block.replace("\\\n", " ").splitlines() if line.strip()]


@pytest.mark.process
@pytest.mark.slow
def test_docs_runnable_example_runs(capsys, tmp_path, monkeypatch):
    """The command-line example of docs/predictors.md, run as written: its files written, its
    ``python`` commands run in this interpreter, its ``noisestat`` commands through noisestat.cli."""
    text = DOCS.read_text(encoding="utf-8")
    files, commands = _runnable(text)
    assert files and any(c.startswith("noisestat assess") for c in commands)
    monkeypatch.chdir(tmp_path)
    for name, code in files:
        (tmp_path / name).write_text(code)
    for command in commands:
        argv = shlex.split(command)
        if argv[0] == "python":
            proc = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True, timeout=DEADLINE_S)
            assert proc.returncode == 0, proc.stderr
        else:
            assert argv[0] == "noisestat", command
            code, out, err = run(capsys, *argv[1:])
            assert code == 0, err
    summaries = list(tmp_path.glob("*/summary.json"))
    assert summaries
    for path in summaries:
        s = json.loads(path.read_text())
        assert s["provenance"]["inputs"]["predictor"]["python"] and s["provenance"]["deterministic"] is True


def test_docs_wrappers_are_valid_python():
    """The wrapper files for cellpose, StarDist and bioimage.io (their packages are not installed here):
    valid Python, each with the function the docs point --predictor-python at."""
    text = DOCS.read_text(encoding="utf-8")
    wrappers = dict(re.findall(r"```python file=(\S+)\n(.*?)```", text, flags=re.S))
    for name in ("cellpose_model.py", "stardist_model.py", "bioimageio_model.py"):
        assert name in wrappers, f"{DOCS} has no {name}"
        compile(wrappers[name], name, "exec")
        for spec in re.findall(rf"--predictor-python {re.escape(name)}:(\w+)", text):
            assert re.search(rf"^def {spec}\(|^class {spec}\b", wrappers[name], flags=re.M), (name, spec)


@pytest.mark.parametrize("ids", [lambda l: l + (l > 0) * 3_000_000_000, lambda l: l * 2 ** 32,
                                 lambda l: np.where(l == 2, 2 ** 32 + 1, l)])
def test_label_ids_of_any_size_keep_their_objects(ids):
    """A predictor's ids at or beyond 2^31 (uint32, uint64: a tool's own numbering) are renumbered as they
    are: no object wraps to a negative id, vanishes or merges with another."""
    from noisestat.engine._tiles import checked_labels

    class Given:
        def segment(self, image):
            return None

    base = np.zeros((12, 12), np.uint64)
    base[1:3, 1:3], base[5:7, 5:7], base[9, 9] = 1, 2, 3
    got = checked_labels(Given(), ids(base.copy()).astype(np.uint64), (12, 12))
    assert got.dtype == np.int32 and got.max() == 3
    # the same three objects, each one id (renumbered in the order of the predictor's ids)
    pairs = {(int(a), int(b)) for a, b in zip(base.ravel(), got.ravel())}
    assert len(pairs) == 4 and (0, 0) in pairs and len({b for _, b in pairs}) == 4


def test_a_timeout_is_refused_for_a_python_function(inputs):
    from noisestat.predict._choose import predictor_from_options

    with pytest.raises(InputError, match="--predictor-timeout stops a --predictor-command's process") as info:
        predictor_from_options(python=f"{inputs / 'models.py'}:cells", timeout=5)
    assert "\n" not in str(info.value)
