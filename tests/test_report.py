"""The HTML report: self-contained, every figure drawn, user strings escaped, edge cases survive,
and the page renders in a real headless browser."""

from __future__ import annotations

import dataclasses
import html
import itertools
import math
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import tifffile
from matplotlib import image as mpimg
from matplotlib.text import Text

import noisestat
from noisestat.camera import CameraProfile
from noisestat.measure import PARAMETERS, ObjectMeasurements
from noisestat.report import FIGURE_NAMES, render_figures, report_html, write_report
from noisestat.report import _draw, _figures
from noisestat.score import summarise_eps
from noisestat.simulate import acquire, simulate_scene, sparse_labels

# A decoded-image file whose name needs escaping in HTML: the spec (and so the page) carries the path.
_ODD_NAME = "decoded <a&b>.tif"


@pytest.fixture(scope="module")
def assessment(tmp_path_factory):
    electrons, truth = simulate_scene((256, 256), rng=1)
    camera = CameraProfile(0.5, 100, 2, 16)
    image = acquire(electrons, camera, 2)
    decoded = tmp_path_factory.mktemp("decoded") / _ODD_NAME
    tifffile.imwrite(decoded, image)
    codecs = ["lossless", "jpeg:ratio=20", "bitdepth:bits=8,mode=shift", f"file:path={decoded}"]
    return noisestat.assess(image, camera, codecs, labels=sparse_labels(truth, rng=3), replicas=4)


@pytest.fixture(scope="module")
def report(assessment, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return out, write_report(assessment, out)


def _has_field(obj, name: str) -> bool:
    return name in {f.name for f in dataclasses.fields(obj)}


def _replace(obj, **changes):
    """``dataclasses.replace`` with only the fields this version of the pipeline has."""
    return dataclasses.replace(obj, **{k: v for k, v in changes.items() if _has_field(obj, k)})


def _with_eps(codec, eps, values=None, partner=None, ratio="keep"):
    objects = codec.objects
    if values is not None:
        objects = _replace(objects, values=values, partner=partner)
    changes = {"eps": eps, "objects": objects,
               "parameters": {p: summarise_eps(eps[:, j]) for j, p in enumerate(PARAMETERS)}}
    if ratio != "keep":
        changes["compression_ratio"] = ratio
    return _replace(codec, **changes)


_FORMATS = ("png", "svg", "pdf")


def _assert_renders(assessment, tmp_path):
    paths = write_report(assessment, tmp_path)
    assert [p.name for p in paths] == ["report.html"] + [f"{n}.{fmt}" for fmt in _FORMATS for n in FIGURE_NAMES]
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths)
    assert paths[0].read_text(encoding="utf-8").count('<img src="data:image/png;base64,') == len(FIGURE_NAMES)
    return paths


# --------------------------------------------------------------------------------------------------
# The page and the figures
# --------------------------------------------------------------------------------------------------

def test_html_is_self_contained_with_every_figure_embedded(report):
    out, paths = report
    page = paths[0].read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page.lower()
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == len(FIGURE_NAMES) and all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r"<link\b", page)
    for name in FIGURE_NAMES:
        assert f'id="{name}"' in page


def test_html_shows_verdicts_rule_and_tables(report, assessment):
    page = report[1][0].read_text(encoding="utf-8")
    assert "tolerable</span>" in page
    assert "NOT tolerable" in page  # an 8-bit shift of a 16-bit image moves every area
    rule = assessment.summary()["verdict_rule"]
    assert html.escape(rule) in page
    for heading in ("Verdict per codec", "Scores per codec and parameter", "Null reference", "Provenance"):
        assert heading in page
    assert assessment.provenance["image_sha256"] in page
    assert page.count("<table") >= len(assessment.codecs) + 3


def test_every_table_scrolls_in_its_own_box_not_the_page(report):
    page = report[1][0].read_text(encoding="utf-8")
    css = re.search(r"<style>(.*?)</style>", page, re.S).group(1)
    # Every table is a block no wider than the page that scrolls sideways itself.
    rule = re.search(r"(?:^|\})\s*table\{([^}]*)\}", css).group(1)
    assert {"display:block", "max-width:100%", "overflow-x:auto"} <= set(rule.split(";"))
    assert not re.search(r"(?:^|\})\s*table[.\w]*\{[^}]*(?:display:table|overflow[^;]*visible)", css)
    assert page.count("<table") > 5
    # The matching table's long column titles may break after their underscores.
    assert "<th>unmatched_<wbr>reference</th>" in page


# The statuses of a raw object (noisestat.measure.STATUSES): "lost" is one of them, never a name for
# "without a partner" in general. Where the page says "lost", it is in one of these phrases.
_LOST_PHRASES = (r"lost, split or merged", r"lost \+ split \+ merged", r"lost \(none of these\)",
                 r"lost\s*: raw objects without a partner that are neither split nor merged")


def _prose(page: str) -> str:
    """The page's words outside its tables and style (table cells hold the status itself)."""
    page = re.sub(r"<style>.*?</style>|<table.*?</table>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def test_lost_means_the_status_only(report):
    out, paths = report
    texts = {"report.html": _prose(paths[0].read_text(encoding="utf-8"))}
    for name in FIGURE_NAMES:
        svg = ET.parse(out / "figures" / f"{name}.svg").getroot()
        texts[f"{name}.svg"] = " ".join("".join(e.itertext()) for e in svg.iter(f"{_SVG}text"))
    allowed = re.compile("|".join(_LOST_PHRASES))
    misused = []
    for name, text in texts.items():
        spans = [m.span() for m in allowed.finditer(text)]
        for m in re.finditer(r"(?i)\blos(?:t|e|es|ing)\b", text):
            if not any(lo <= m.start() < hi for lo, hi in spans):
                misused.append(f"{name}: …{text[max(0, m.start() - 60):m.end() + 30]}…")
    assert misused == []
    # the words are there, with their meaning: the check above is not vacuous
    assert re.search(_LOST_PHRASES[0], texts["report.html"])
    assert "without a partner" in texts["report.html"] and "without a partner" in texts["outside_band.svg"]


def test_codec_spec_with_a_path_is_escaped(report):
    page = report[1][0].read_text(encoding="utf-8")
    assert "decoded &lt;a&amp;b&gt;.tif" in page
    assert "<a&b>" not in page


def test_figure_files_exist_and_are_not_blank(report):
    out, paths = report
    assert paths[1:] == [out / "figures" / f"{n}.{fmt}" for fmt in _FORMATS for n in FIGURE_NAMES]
    for path in paths[1:1 + len(FIGURE_NAMES)]:
        pixels = mpimg.imread(path)
        assert pixels.ndim == 3 and min(pixels.shape[:2]) > 200, path.name
        assert pixels[..., :3].var() > 0, path.name


def test_figures_are_deterministic(assessment):
    first = [(f.png, f.svg, f.pdf) for f in render_figures(assessment)]
    second = [(f.png, f.svg, f.pdf) for f in render_figures(assessment)]
    assert all(len(b) > 1000 for files in first for b in files)
    assert first == second


_SVG = "{http://www.w3.org/2000/svg}"


def test_every_figure_is_also_a_vector_svg_and_pdf(report):
    out, _ = report
    for name in FIGURE_NAMES:
        svg = ET.parse(out / "figures" / f"{name}.svg").getroot()
        assert svg.tag == f"{_SVG}svg", name
        # Text stays text (editable in a vector editor), not glyph outlines.
        words = " ".join("".join(e.itertext()) for e in svg.iter(f"{_SVG}text"))
        assert len(words) > 20, name
        assert float(svg.get("width").removesuffix("pt")) <= _draw._WIDTH_IN * 72 + 1, name
        pdf = (out / "figures" / f"{name}.pdf").read_bytes()
        assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF"), name
        # The fonts embedded as TrueType (Type 42), not Type 3 bitmaps.
        assert b"/FontFile2" in pdf and b"/Type3" not in pdf, name
    titles = " ".join("".join(e.itertext()) for e in ET.parse(out / "figures" / "globals.svg").iter(f"{_SVG}text"))
    assert "N_tot / N_tot of raw" in titles


# --------------------------------------------------------------------------------------------------
# Figures for print: column width, readable text, no text on text, units
# --------------------------------------------------------------------------------------------------

def _shown_ticks(axis) -> list[Text]:
    """The tick labels matplotlib draws: non-empty, at a tick inside the view."""
    lo, hi = sorted(axis.get_view_interval())
    out = []
    for tick in axis.get_major_ticks() + axis.get_minor_ticks():
        loc = tick.get_loc()
        if loc is not None and lo - 1e-9 <= loc <= hi + 1e-9:
            out += [label for label in (tick.label1, tick.label2) if label.get_visible() and label.get_text()]
    return out


def _is_number(text: str) -> bool:
    try:
        float(text.replace("−", "-"))
    except ValueError:
        return False
    return True


def _layout_problems(drawing) -> tuple[list[str], int]:
    """What makes a figure unfit for print, and how many texts were checked."""
    fig = drawing.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    width_px, height_px = fig.bbox.width, fig.bbox.height
    problems = []
    if fig.get_figwidth() > _draw._WIDTH_IN + 1e-6:
        problems.append(f"{fig.get_figwidth():.2f} in wide")
    upright, rotated = [], []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            ticks = _shown_ticks(axis)
            (rotated if any(t.get_rotation() % 180 for t in ticks) else upright).extend(
                (f"tick {t.get_text()!r}", t) for t in ticks)
            if ticks and all(_is_number(t.get_text()) for t in ticks) and ax.get_visible():
                if not re.search(r"\(.+\)", axis.label.get_text()):
                    problems.append(f"numbers without a unit in the axis label {axis.label.get_text()!r}")
            if axis.label.get_text():
                upright.append((f"axis label {axis.label.get_text()!r}", axis.label))
        if ax.get_title():
            upright.append((f"title {ax.get_title()!r}", ax.title))
        if not ax.images:  # the ranks over an image's objects may sit close, as the objects do
            upright += [(f"text {t.get_text()!r}", t) for t in ax.texts if t.get_text()]
        if ax.get_legend():
            upright += [(f"legend {t.get_text()!r}", t) for t in ax.get_legend().get_texts()]
    for legend in fig.legends:
        upright += [(f"legend {t.get_text()!r}", t) for t in legend.get_texts()]
    upright += [(f"text {t.get_text()!r}", t) for t in fig.texts if t.get_text()]
    boxes = [(name, t.get_window_extent(renderer)) for name, t in upright if t.get_visible()]
    for name, t in upright + rotated:
        if t.get_fontsize() < _draw._MIN_FONT_PT:
            problems.append(f"{name} at {t.get_fontsize()} pt")
    for name, box in boxes + [(n, t.get_window_extent(renderer)) for n, t in rotated]:
        if box.x0 < -1 or box.y0 < -1 or box.x1 > width_px + 1 or box.y1 > height_px + 1:
            problems.append(f"{name} runs off the figure")
    for (name_a, a), (name_b, b) in itertools.combinations(boxes, 2):
        # One pixel of slack: neighbouring boxes may touch.
        if min(a.x1, b.x1) - max(a.x0, b.x0) > 1 and min(a.y1, b.y1) - max(a.y0, b.y0) > 1:
            problems.append(f"{name_a} overlaps {name_b}")
    # Rotated tick labels (all at one angle) are parallel strips: apart when their anchors are
    # farther apart across the text direction than one line of text.
    by_axis = {}
    for name, t in rotated:
        by_axis.setdefault(id(t.axes), []).append(t)
    for labels in by_axis.values():
        xs = sorted(fig.dpi_scale_trans.inverted().transform(t.get_window_extent(renderer))[1][0] for t in labels)
        angle = math.radians(labels[0].get_rotation())
        line_in = labels[0].get_fontsize() / 72
        for x0, x1 in zip(xs, xs[1:]):
            if (x1 - x0) * abs(math.sin(angle)) < line_in:
                problems.append(f"rotated tick labels {line_in * 72:g} pt tall only {x1 - x0:.3f} in apart")
    return problems, len(upright) + len(rotated)


@pytest.mark.parametrize("draw", _figures._DRAWERS, ids=lambda f: f.__name__)
def test_figures_fit_a_page_width_with_readable_unclashing_text(assessment, draw):
    # Long codec specs and more codecs than the fixture's, so that names and panels crowd.
    codecs = tuple(_replace(c, spec=f"{c.spec},level={k}") for k, c in enumerate(assessment.codecs * 2))
    problems, checked = _layout_problems(draw(_replace(assessment, codecs=codecs)))
    assert checked > 8
    assert problems == []


def test_rewriting_replaces_the_files_and_leaves_no_temporaries(assessment, tmp_path):
    write_report(assessment, tmp_path)
    write_report(assessment, tmp_path)
    leftovers = [p.name for p in tmp_path.rglob("*") if p.name.startswith(".")]
    assert leftovers == []


# --------------------------------------------------------------------------------------------------
# Edge cases
# --------------------------------------------------------------------------------------------------

def test_zero_raw_objects(assessment, tmp_path):
    n_par = len(PARAMETERS)
    empty = ObjectMeasurements(np.empty(0, dtype=np.int64), np.empty((0, n_par)))
    raw_objects = _replace(assessment.raw_objects, values=np.empty((0, n_par)), partner=np.empty(0, np.int64),
                           n_objects=0, area_total=0)
    codecs = tuple(_with_eps(c, np.empty((0, n_par)), np.empty((0, n_par)), np.empty(0, np.int64))
                   for c in assessment.codecs)
    a = _replace(assessment, raw=empty, raw_objects=raw_objects, sigma_raw=np.empty((0, n_par)),
                 n_replicas_matched=np.empty(0, np.int64), codecs=codecs,
                 replica_values=np.empty((assessment.n_replicas, 0, n_par)), null_eps=np.empty((0, n_par)),
                 raw_labels=None if getattr(assessment, "raw_labels", None) is None
                 else np.zeros_like(assessment.raw_labels))
    _assert_renders(a, tmp_path)


def test_unmatched_codec_nan_and_infinite_eps_and_no_ratio(assessment, tmp_path):
    n, n_par = assessment.sigma_raw.shape
    lossless, jpeg = assessment.codecs[:2]
    # A codec whose decoded image matched no raw object: all values and eps NaN.
    unmatched = _with_eps(lossless, np.full((n, n_par), np.nan), np.full((n, n_par), np.nan),
                          np.zeros(n, np.int64), ratio=None)
    # A codec with infinite eps (sigma_raw = 0 and the value changed) in every other cell.
    eps = np.asarray(jpeg.eps, dtype=float).copy()
    eps[::2] = np.inf
    eps[1::2, ::3] = -np.inf
    infinite = _with_eps(jpeg, eps, ratio=None)
    a = _replace(assessment, codecs=(unmatched, infinite))
    paths = _assert_renders(a, tmp_path)
    page = paths[0].read_text(encoding="utf-8")
    assert "+∞" in page and "not plotted" in page


def test_one_codec_without_the_optional_fields(assessment, tmp_path):
    # What an assessment from before the pipeline carried pixels, replica values and the null looks like:
    # the figures fall back (ellipses, theoretical null, codecs only) instead of failing.
    a = _replace(assessment, codecs=assessment.codecs[:1], image=None, raw_labels=None, replica_values=None,
                 null_eps=None, sigma_model=None)
    paths = _assert_renders(a, tmp_path)
    assert "theory" in paths[0].read_text(encoding="utf-8")


def test_infinite_eps_for_every_object_of_one_codec(assessment, tmp_path):
    n, n_par = assessment.sigma_raw.shape
    a = _replace(assessment, codecs=(_with_eps(assessment.codecs[2], np.full((n, n_par), np.inf)),))
    _assert_renders(a, tmp_path)


# --------------------------------------------------------------------------------------------------
# The page in a real browser
# --------------------------------------------------------------------------------------------------

def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


_BROWSER_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


@pytest.fixture(scope="module")
def browser():
    path = _browser()
    if path is None:
        pytest.skip("no chromium, chromium-browser or google-chrome on PATH (CI installs Debian's chromium)")
    return path


def test_report_renders_in_headless_chromium(browser, report, tmp_path):
    page = report[1][0]
    shot = tmp_path / "shot.png"
    subprocess.run([browser, *_BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                    "--window-size=1280,4000", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=90, check=False)
    assert shot.is_file(), "chromium wrote no screenshot"
    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape[:2] == (4000, 1280)
    non_white = (pixels < 0.95).any(axis=2)
    # A blank or broken page is white (or one colour); the report is text, tables and figures.
    assert non_white.mean() > 0.05
    assert non_white.any(axis=1).mean() > 0.5, "content does not reach down the page"
    colours = np.unique((pixels * 15).round().astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 100
    # The figures' own colours: the codecs' blue and orange and viridis' yellow of |eps| >= 3.
    for rgb in ((0.12, 0.47, 0.71), (1.0, 0.50, 0.05), (0.99, 0.91, 0.14)):
        close = (np.abs(pixels - np.array(rgb)) < 0.06).all(axis=2)
        assert close.sum() > 20, rgb


def test_dom_holds_every_figure(browser, report, tmp_path):
    result = subprocess.run([browser, *_BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
                             report[1][0].as_uri()], capture_output=True, text=True, timeout=90, check=False)
    images = re.findall(r'<img src="data:image/png;base64,', result.stdout)
    assert len(images) == len(FIGURE_NAMES)
    assert "Verdict per codec" in result.stdout


def test_report_html_escapes_reasons(assessment):
    codec = _replace(assessment.codecs[0], tolerable=False, reasons=("<b>bold</b> & more",))
    page = report_html(_replace(assessment, codecs=(codec,)), render_figures(assessment)[:0])
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; more" in page


def test_classifier_spread_panel_when_sigma_model_is_there(assessment, tmp_path):
    if not _has_field(assessment, "sigma_model"):
        pytest.skip("this pipeline has no sigma_model")
    # Half of sigma_raw everywhere; sigma_raw = 0 for some objects gives 0 / 0, which must not warn.
    a = _replace(assessment, sigma_model=np.asarray(assessment.sigma_raw) * 0.5)
    page = _assert_renders(a, tmp_path)[0].read_text(encoding="utf-8")
    assert "retrained with other seeds" in page
