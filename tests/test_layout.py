"""The package's layout rules (docs/architecture.md): public surfaces, where the engine's
dependencies may be imported, and every definition in one place."""

import ast
import importlib
import math
import re
from pathlib import Path

import numpy as np
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "noisestat"
ROOT = PACKAGE.parent
SUBPACKAGES = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
MODULES = sorted(PACKAGE.rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _imported_roots(tree: ast.Module) -> dict:
    """Top-level package name of every absolute import anywhere in a module (functions included),
    with the line of its first occurrence."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            found.setdefault(name.split(".")[0], node.lineno)
    return found


def test_subpackages_found():
    # the stages of the flow; a rename must update docs/architecture.md and this list
    assert {"io", "camera", "calibrate", "replicas", "predict", "measure", "codecs", "score", "report",
            "engine", "simulate", "bench"} <= set(SUBPACKAGES)


@pytest.mark.parametrize("name", ["noisestat", *(f"noisestat.{s}" for s in SUBPACKAGES)])
def test_subpackage_has_docstring_and_importable_all(name):
    module = importlib.import_module(name)
    assert (module.__doc__ or "").strip(), f"{name}/__init__.py has no docstring"
    exported = getattr(module, "__all__", None)
    assert exported, f"{name}/__init__.py has no __all__"
    assert len(set(exported)) == len(exported), f"{name}.__all__ lists a name twice"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names that do not import: {missing}"


def test_every_folder_of_modules_is_a_subpackage():
    folders = {p.parent for p in MODULES} - {PACKAGE}
    without = [_rel(f) for f in folders if not (f / "__init__.py").is_file()]
    assert not without, f"folders of modules without __init__.py: {without}"


PARALLEL_LIBRARIES = {"joblib", "dask", "distributed", "dask_jobqueue", "loky"}


def _parallel_imports() -> dict:
    out = {}
    for path in MODULES:
        rel = _rel(path)
        if rel.startswith("noisestat/engine/"):
            continue
        hits = {k: v for k, v in _imported_roots(_tree(path)).items() if k in PARALLEL_LIBRARIES}
        if hits:
            out[rel] = hits
    return out


def test_parallel_libraries_only_in_engine():
    """Where tasks run is the engine's business: no other module imports joblib or dask."""
    offenders = _parallel_imports()
    assert not offenders, f"only noisestat/engine/ may import joblib or dask; also imported in {offenders}"


_WRITE_CALLS = {("os", "replace"), ("os", "rename"), ("os", "renames"), ("shutil", "move")}


def test_atomic_writing_only_in_io():
    """Renaming into place and temporary files are the one atomic writer's job (noisestat/io)."""
    offenders = []
    for path in MODULES:
        rel = _rel(path)
        if rel.startswith("noisestat/io/"):
            continue
        tree = _tree(path)
        if "tempfile" in _imported_roots(tree):
            offenders.append(f"{rel}: imports tempfile")
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                base = node.func.value
                if isinstance(base, ast.Name) and (base.id, node.func.attr) in _WRITE_CALLS:
                    offenders.append(f"{rel}:{node.lineno}: {base.id}.{node.func.attr}")
                elif node.func.attr in ("replace", "rename") and isinstance(base, ast.Call) \
                        and getattr(base.func, "id", getattr(base.func, "attr", "")) == "Path":
                    offenders.append(f"{rel}:{node.lineno}: Path(...).{node.func.attr}")
    assert not offenders, f"atomic writes outside noisestat/io (use noisestat.io.atomic_file): {offenders}"


def _public_constants() -> dict:
    """name -> [(module, line, value)] of every public UPPER_CASE module-level constant whose value
    is a literal."""
    out = {}
    for path in MODULES:
        for node in _tree(path).body:
            if isinstance(node, ast.Assign):
                targets, value = [t for t in node.targets if isinstance(t, ast.Name)], node.value
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
                targets, value = [node.target], node.value
            else:
                continue
            for t in targets:
                if t.id.startswith("_") or not t.id.isupper():
                    continue
                try:
                    literal = ast.literal_eval(value)
                except ValueError:
                    continue
                out.setdefault(t.id, []).append((_rel(path), node.lineno, literal))
    return out


def test_no_constant_defined_twice_with_different_values():
    clashes = {name: defs for name, defs in _public_constants().items()
               if len({repr(v) for _, _, v in defs}) > 1}
    assert not clashes, f"one name, several values: {clashes}"


# Every definition in one place (docs/architecture.md): the copies that existed under other names
# are gone, and these tests fail if one comes back.

def _strings(tree: ast.Module):
    """(line, text) of every string constant that is not a docstring (f-strings' literal parts included)."""
    docstrings = {id(node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                  and isinstance(node.value.value, str)}
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings]


def _literal_copies(names, home: str) -> list:
    """Tuple, list and set literals outside ``home`` made of two or more of ``names`` and nothing else:
    a hand-kept copy of that definition."""
    names = set(names)
    found = []
    for path in MODULES:
        if _rel(path) == home:
            continue
        for node in ast.walk(_tree(path)):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)) and len(node.elts) >= 2 \
                    and all(isinstance(e, ast.Constant) and e.value in names for e in node.elts):
                found.append(f"{_rel(path)}:{node.lineno}")
    return found


def _words(text: str) -> set:
    return set(re.findall(r"[A-Za-z_.]+", text))


def test_parameter_families_defined_only_in_score():
    from noisestat.measure import PARAMETERS, VOLUME_PARAMETERS
    from noisestat.report import _html
    from noisestat.score import FAMILIES

    assert _html.FAMILY is FAMILIES["AR"][1], "noisestat.report.FAMILY must be FAMILIES['AR'] itself, not a copy"
    for rep, members in FAMILIES.values():
        assert rep in members and (set(members) <= set(PARAMETERS) or set(members) <= set(VOLUME_PARAMETERS))
        copies = _literal_copies(members, "noisestat/score/_tests.py")
        assert not copies, f"the family {members} is written out again (import FAMILIES): {copies}"
        # ... nor named in words: text about a family is built from FAMILIES.
        named = [f"{_rel(path)}:{line}: {text[:60]!r}" for path in MODULES
                 if _rel(path) != "noisestat/score/_tests.py" and not _rel(path).startswith("noisestat/measure/")
                 for line, text in _strings(_tree(path)) if len(_words(text) & set(members)) >= 2]
        assert not named, f"the family {members} is spelt out in a string (build it from FAMILIES): {named}"


def test_verdict_rule_is_built_from_the_constants():
    from noisestat.score import FAMILIES, TRIM, Margins, rule_text

    rule = rule_text(Margins(), 10, ("Area",))
    trim = f"{TRIM * 100:g} %"
    assert trim in rule
    for rep, members in FAMILIES.values():
        assert all(m in rule for m in members), f"the verdict rule does not name the family {members}"
        assert f"tested through {rep}" in rule
    literal = [text for _, text in _strings(_tree(PACKAGE / "score" / "_verdict.py"))]
    assert not [t for t in literal if trim in t], f"the verdict rule writes {trim!r} out instead of using TRIM"


def test_global_parameters_defined_only_in_results():
    from noisestat.report import _html
    from noisestat.results import GLOBAL_PARAMETERS

    assert not hasattr(_html, "_GLOBALS")
    assert _html.GLOBAL_PARAMETERS is GLOBAL_PARAMETERS
    copies = _literal_copies(GLOBAL_PARAMETERS, "noisestat/results.py")
    assert not copies, f"the global parameters are written out again (import GLOBAL_PARAMETERS): {copies}"


def test_null_distribution_computed_only_in_score():
    """The Student t of a second acquisition is evaluated in noisestat/score alone; the report shows
    what null_reference gives."""
    offenders = []
    for path in MODULES:
        rel = _rel(path)
        if rel.startswith("noisestat/score/"):
            continue
        for node in ast.walk(_tree(path)):
            if isinstance(node, ast.Attribute) and node.attr == "t" and getattr(node.value, "id", "") == "stats":
                offenders.append(f"{rel}:{node.lineno}: stats.t")
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("scipy.stats") \
                    and any(a.name == "t" for a in node.names):
                offenders.append(f"{rel}:{node.lineno}: from {node.module} import t")
    assert not offenders, f"the null distribution evaluated outside noisestat/score: {offenders}"


@pytest.mark.parametrize("n_replicas", [1, 3, 4, 5, 10, 20, 50])
def test_report_shows_the_null_reference(n_replicas):
    from noisestat.report import _html
    from noisestat.score import null_reference

    shown = _html._null_theory(n_replicas)
    if n_replicas < 2:
        assert shown["label"] == "n/a" and math.isnan(shown["sd"])
        return
    ref = null_reference(n_replicas)
    assert shown["sd"] == ref["sd"] and shown["frac_outside"] == 1 - ref["frac_abs_eps_lt_1"]
    assert f"t({n_replicas - 1})" in shown["label"] and f"t({n_replicas - 1})" in ref["distribution"]
    # the median |eps| of sqrt(2) t(N - 1), against a sample of that distribution
    sample = math.sqrt(2) * np.random.default_rng(n_replicas).standard_t(n_replicas - 1, 200_000)
    assert shown["median_abs"] == pytest.approx(np.median(np.abs(sample)), rel=0.02)


def test_learned_architectures_defined_only_in_the_models():
    from noisestat.codecs import REGISTRY
    from noisestat.codecs import _compressai, _learned

    assert not hasattr(_learned, "_ARCHS")
    assert _learned.ARCHS is _compressai.ARCHS
    arch = {k.name: k for k in REGISTRY["compressai"].keys}["arch"]
    assert tuple(arch.choices) == _compressai.ARCHS
    copies = _literal_copies(_compressai.ARCHS, "noisestat/codecs/_compressai.py")
    assert not copies, f"the learned architectures are written out again (import ARCHS): {copies}"


def test_number_of_parameters_not_written_out():
    """Text that counts the parameters takes len(PARAMETERS) (docstrings aside)."""
    from noisestat.measure import PARAMETERS

    count = re.compile(rf"\b{len(PARAMETERS)}\s+(?:\S+\s+)?parameters\b")
    written = [f"{_rel(path)}:{line}: {text[:60]!r}" for path in MODULES
               for line, text in _strings(_tree(path)) if count.search(text)]
    assert not written, f"the number of parameters written out (use len(PARAMETERS)): {written}"


def test_classifier_threshold_recorded_is_the_forest_threshold():
    """pipeline.py writes "threshold" into the provenance; it must be the forest's decision threshold."""
    from noisestat.predict._forest import THRESHOLD

    tree = _tree(PACKAGE / "pipeline.py")
    written = [ast.literal_eval(v) for node in ast.walk(tree) if isinstance(node, ast.Dict)
               for k, v in zip(node.keys, node.values)
               if isinstance(k, ast.Constant) and k.value == "threshold" and isinstance(v, ast.Constant)]
    assert all(w == THRESHOLD for w in written)
