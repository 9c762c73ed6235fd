"""A value predictor (a value per pixel) through `noisestat assess --predictor-python FILE.py:FUNCTION
--predictor-output values`: its folder (pixels.csv, maps/, summary, report.html with its figures),
lossless scoring eps 0 exactly, the options of objects refused in one line before any work, and
nothing left behind by a run that fails."""

import json
import shutil

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

import noisestat.pipeline
from noisestat.cli import main
from noisestat.simulate import acquire, simulate_scene

from conftest import CAMERA

PREDICTOR = '''
import numpy as np
from scipy import ndimage as ndi


class Smooth:
    """The image smoothed by a Gaussian of 1 pixel: a value per pixel."""

    def halo(self, ndim):
        return (4,) * ndim

    def predict_values(self, region):
        return ndi.gaussian_filter(np.asarray(region, dtype=np.float64), 1.0, truncate=4.0).astype(np.float32)

    def describe(self):
        return {"predictor": "gaussian smoothing", "sigma": 1.0}


def smooth():
    return Smooth()
'''


class _Smooth:
    """The same predictor as PREDICTOR's, for a run that gives the object itself."""

    def halo(self, ndim):
        return (4,) * ndim

    def predict_values(self, region):
        return ndi.gaussian_filter(np.asarray(region, dtype=np.float64), 1.0, truncate=4.0).astype(np.float32)

    def describe(self):
        return {"predictor": "gaussian smoothing", "sigma": 1.0}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("values_cli")
    electrons, _ = simulate_scene((64, 64), background_e=30.0, object_e=800.0, rng=5)
    tifffile.imwrite(d / "raw.tif", acquire(electrons, CAMERA, 6))
    (d / "camera.json").write_text(json.dumps({"gain_dn_per_e": CAMERA.gain_dn_per_e, "offset_dn": CAMERA.offset_dn,
                                              "read_noise_dn": CAMERA.read_noise_dn, "bit_depth": CAMERA.bit_depth}))
    (d / "smooth.py").write_text(PREDICTOR)
    return d


def _assess(capsys, files, out, *extra):
    code = main(["assess", str(files / "raw.tif"), "--camera", str(files / "camera.json"),
                 "--predictor-python", f"{files / 'smooth.py'}:smooth", "--predictor-output", "values",
                 "--codec", "lossless", "--codec", "bitdepth:bits=6,mode=minmax", "--replicas", "3",
                 "--seed", "2", "--quiet", "-o", str(out), *map(str, extra)])
    stdout, stderr = capsys.readouterr()
    return code, stdout, stderr


@pytest.fixture(scope="module")
def run(files, tmp_path_factory):
    """One run through the command line, shared by the checks of its folder."""
    out = tmp_path_factory.mktemp("values_out") / "assessment"
    code, stdout, stderr = _assess(_Capture(), files, out)
    return code, stdout, stderr, out


class _Capture:
    """capsys for a module-scoped fixture: stdout and stderr of the run, read once."""

    def __init__(self):
        import contextlib
        import io

        self.out, self.err = io.StringIO(), io.StringIO()
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(contextlib.redirect_stdout(self.out))
        self._stack.enter_context(contextlib.redirect_stderr(self.err))

    def readouterr(self):
        self._stack.close()
        return self.out.getvalue(), self.err.getvalue()


def test_assess_writes_a_value_folder_and_says_so(run):
    code, stdout, stderr, out = run
    assert code == 0, stderr
    assert "per-pixel values" in stdout and "lossless" in stdout and "bitdepth:bits=6,mode=minmax" in stdout
    assert "pixels.csv" in stdout and "report.html" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kind"] == "values" and summary["replicas"] == 3 and summary["seed"] == 2
    assert summary["provenance"]["inputs"]["image"]["path"].endswith("raw.tif")
    predictor = summary["provenance"]["inputs"]["predictor"]  # the real --predictor-python route
    assert predictor["output"] == "values" and predictor["path"].endswith("smooth.py") and predictor["sha256"]
    assert [c["spec"] for c in summary["codecs"]] == ["lossless", "bitdepth:bits=6,mode=minmax"]
    rows = (out / "pixels.csv").read_text().splitlines()
    assert rows[0].startswith("codec,") and len(rows) == 3
    assert not (out / "objects.csv").exists()


def test_lossless_scores_eps_exactly_zero_and_the_maps_are_named_per_codec(run):
    out = run[3]
    maps = sorted(p.name for p in (out / "maps").iterdir())
    assert maps == ["00_raw_values.tif", "00_sigma_raw.tif", "01_lossless_eps.tif", "01_lossless_values.tif",
                    "02_bitdepth_bits=6_mode=minmax_eps.tif", "02_bitdepth_bits=6_mode=minmax_values.tif"]
    lossless = tifffile.imread(out / "maps" / "01_lossless_eps.tif")
    assert lossless.shape == (64, 64) and not lossless.any()
    coarse = tifffile.imread(out / "maps" / "02_bitdepth_bits=6_mode=minmax_eps.tif")
    assert np.abs(coarse).max() > 1  # 6 bits of a 16-bit range move the smoothed values beyond the noise
    assert tifffile.imread(out / "maps" / "01_lossless_values.tif").tolist() == \
        tifffile.imread(out / "maps" / "00_raw_values.tif").tolist()


@pytest.mark.parametrize("option, flag", [
    (("--matching", "centroid"), "--matching"), (("--min-area", "5"), "--min-area"),
    (("--model-seeds", "2"), "--model-seeds"),
    (("--primary", "Area"), "--primary"), (("--verdict-anyway",), "--verdict-anyway"),
    (("--threshold", "2=0.7"), "--threshold"), (("--operators",), "--operators"),
    (("--sample", "0.5"), "--sample"),
])
def test_options_of_objects_are_refused_in_one_line_before_any_work(capsys, files, tmp_path, option,
                                                                    flag):
    code, stdout, stderr = _assess(capsys, files, tmp_path / "out", *option)
    assert code == 1 and stdout == ""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0] and "value per pixel" in lines[0], stderr
    assert list(tmp_path.iterdir()) == []  # no folder, no temporary one


def test_a_reconstruction_is_refused_for_a_value_predictor(capsys, files, tmp_path):
    stack = tmp_path / "projections.tif"
    tifffile.imwrite(stack, np.full((12, 4, 16), 300, dtype=np.uint16))  # angles, rows, width
    code = main(["assess", str(stack), "--camera", str(files / "camera.json"), "--predictor-python",
                 f"{files / 'smooth.py'}:smooth", "--predictor-output", "values", "--codec", "lossless",
                 "--reconstruct", "fbp", "-o", str(tmp_path / "out")])
    _, stderr = capsys.readouterr()
    assert code == 1 and len(stderr.strip().splitlines()) == 1
    assert "--reconstruct applies to objects" in stderr and not (tmp_path / "out").exists()


def test_several_refused_options_are_named_in_the_one_line(capsys, files, tmp_path):
    code, _, stderr = _assess(capsys, files, tmp_path / "out", "--operators", "--min-area", "3")
    assert code == 1 and len(stderr.strip().splitlines()) == 1
    assert "--min-area and --operators apply to objects" in stderr


def test_a_failing_run_leaves_the_previous_folder_as_it_was(capsys, files, tmp_path, monkeypatch, run):
    out = tmp_path / "out"
    shutil.copytree(run[3], out)  # a finished folder of noisestat's, which a new run may replace
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("noisestat.report._values.write_float_map", broken)
    code, stdout, stderr = _assess(capsys, files, out)
    assert code == 1 and len(stderr.strip().splitlines()) == 1 and str(out) in stderr
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no temporary folder beside it


def test_assess_files_returns_the_value_assessment_judged_with_the_margins(files, tmp_path, monkeypatch):
    monkeypatch.setattr("noisestat.report._values_page.write_value_report", lambda a, tmp: [])  # figures: above
    a = noisestat.pipeline.assess_files(files / "raw.tif", files / "camera.json", ["lossless"], tmp_path / "o",
                                        predictor_python=f"{files / 'smooth.py'}:smooth", predictor_output="values",
                                        replicas=2, seed=1,
                                        margins="shift=0.5,global=3")
    assert type(a).__name__ == "ValueAssessment" and not a.codecs[0].eps.any()
    assert a.codecs[0].verdict.margins["shift"] == 0.5 and a.codecs[0].verdict.margins["global"] == 3
    assert json.loads((tmp_path / "o" / "summary.json").read_text())["kind"] == "values"


def test_report_embeds_the_maps_and_the_tables(run):
    out = run[3]
    page = (out / "report.html").read_text()
    assert "http://" not in page and "https://" not in page and "<script" not in page  # self-contained
    embedded = page.count('src="data:image/png;base64,')
    assert embedded == 4  # raw + sigma_raw, one per codec, the per-pixel summary
    for name in ("00_raw", "01_lossless", "02_bitdepth_bits=6_mode=minmax", "eps_summary"):
        assert f'<figure id="{name}">' in page
        for fmt in ("png", "svg", "pdf"):
            assert (out / "figures" / f"{name}.{fmt}").stat().st_size > 0
    assert "second acquisition (simulated null pair)" in page and "beyond_<wbr>null_<wbr>q99" in page
    assert "Provenance" in page and "raw.tif" in page


def test_eps_figure_has_fixed_symmetric_limits_and_a_colour_bar(files):
    from noisestat import assess_values
    from noisestat.report._values_page import EPS_LIMIT, _codec_figure, value_figure_names

    raw = tifffile.imread(files / "raw.tif")
    a = assess_values(raw, CAMERA, ["lossless", "bitdepth:bits=6,mode=minmax"], _Smooth(), replicas=3, seed=1)
    drawing = _codec_figure(a, 2, a.codecs[1], (-1.0, 1.0))
    eps_axes = [ax for ax in drawing.figure.axes if ax.get_title().startswith("ε")]
    assert len(eps_axes) == 1
    image = eps_axes[0].get_images()[0]
    assert image.get_clim() == (-EPS_LIMIT, EPS_LIMIT) and image.colorbar is not None
    assert image.get_cmap().name == "RdBu_r"
    assert value_figure_names(a) == ["00_raw", "01_lossless", "02_bitdepth_bits=6_mode=minmax", "eps_summary"]


def test_report_shows_the_verdict_and_the_metrics_against_a_target(files):
    from noisestat import assess_values
    from noisestat.report._values_page import value_report_html

    raw = tifffile.imread(files / "raw.tif")
    target = ndi.gaussian_filter(raw.astype(np.float64), 2.0)  # a truth the prediction nearly matches
    a = assess_values(raw, CAMERA, ["lossless", "bitdepth:bits=6,mode=minmax"], _Smooth(), replicas=3, seed=1,
                      target=target)
    page = value_report_html(a, [])
    assert '<h2 id="verdict">' in page and '<span class="ok">tolerable</span>' in page  # lossless
    metrics = page[page.index('<h2 id="metrics">'):page.index('<h2 id="globals">')]
    assert metrics.count("<h3>") == 2
    for name in ("MSE", "PSNR", "SSIM"):
        assert f"<td>{name}</td>" in metrics
    assert "second acquisition (simulated)" in page and "What was judged" in page
    assert "Verdict rule." in page and a.codecs[1].outcome in page.replace("NOT tolerable", "not tolerable")
