"""A model given on the command line as Python: ``--predictor-python MODULE:NAME`` or
``--predictor-python path/to/file.py:NAME``.

``NAME`` is one of two things, told apart by its signature alone (:func:`callable_form`):

* a **factory**: callable with no argument (every parameter has a default, or it is a class whose
  constructor needs none). noisestat calls it once per process and uses what it returns, which must
  be a predictor of the protocol (:mod:`noisestat.predict._protocol`); ``--predictor-output`` does
  not apply, the predictor's own methods say what it gives;
* a **function of the image**: exactly one required positional parameter, the image (2D, or a 3D
  volume, as an array of integers). It is called on whole images and its array is read as
  ``--predictor-output`` says: ``labels`` (integer ids, 0 background), ``mask`` (boolean foreground,
  labelled by noisestat 8-connected in 2D, 26-connected in 3D) or ``values`` (a real value per
  pixel).

Anything else (required keyword-only parameters, two required parameters) is refused. The
predictor travels to workers (``--jobs``, ``--scheduler``) as the spec, not as the function: each
worker imports the module once and checks that the file is still the one recorded.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
import traceback
from pathlib import Path

import numpy as np

from ..errors import InputError, ModelError
from ..io._hashing import file_sha256
from ._protocol import check_predictor_output, predictor_kind

__all__ = ["callable_predictor", "callable_form", "parse_python_spec", "python_fingerprint"]

OUTPUTS = ("labels", "mask", "values")

# what this process has loaded: a module per (file or name, sha256), a predictor per (spec, output)
_MODULES: dict = {}
_PREDICTORS: dict = {}


def python_fingerprint(spec: str) -> dict:
    """What ``--predictor-python spec``'s results depend on besides its inputs, without importing it: the
    SHA-256 of its file (the given ``.py``, or the module's file found on the path; None where there is
    none). A dataset's record of a field: an edited module makes its fields run again."""
    import importlib.util

    module, _, is_file = parse_python_spec(spec)
    if is_file:
        path = Path(module).expanduser()
    else:
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            found = None
        path = Path(found.origin) if found is not None and found.origin else None
    return {"sha256": file_sha256(path) if path is not None and path.is_file() else None}


def parse_python_spec(spec: str) -> tuple[str, str, bool]:
    """``(module, name, is_file)`` of ``MODULE:NAME`` or ``path/to/file.py:NAME`` (``NAME`` may be
    dotted, ``Class.method``); a one-line :class:`~noisestat.errors.InputError` otherwise."""
    usage = f"--predictor-python must be MODULE:NAME or path/to/file.py:NAME; got {spec!r}"
    if not isinstance(spec, str) or ":" not in spec:
        raise InputError(usage)
    module, name = spec.rsplit(":", 1)
    if not module or not name or not all(part.isidentifier() for part in name.split(".")):
        raise InputError(usage)
    is_file = module.endswith(".py") or "/" in module or os.sep in module
    if not is_file and not all(part.isidentifier() for part in module.split(".")):
        raise InputError(usage)
    return module, name, is_file


def callable_form(obj) -> str:
    """``"factory"`` when ``obj`` can be called with no argument, ``"function"`` when it takes
    exactly one required positional argument (the image); a :class:`~noisestat.errors.ModelError`
    otherwise. An object whose signature Python cannot tell (some built-ins) is a function."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return "function"
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    required = [p for p in signature.parameters.values()
                if p.default is inspect.Parameter.empty and p.kind not in (inspect.Parameter.VAR_POSITIONAL,
                                                                           inspect.Parameter.VAR_KEYWORD)]
    if not required:
        return "factory"
    if len(required) == 1 and required[0].kind in positional and not inspect.isclass(obj):
        return "function"
    names = ", ".join(p.name for p in required)
    raise ModelError(f"{_label(obj)} needs the arguments ({names}): --predictor-python takes a factory called with "
                     f"no argument or a function of one argument, the image")


def callable_predictor(spec: str, *, output: str = "labels"):
    """``(predictor, record)`` for ``--predictor-python spec``: the factory's predictor, or the
    function of the image wrapped as ``output`` says (module docstring); ``record`` is the
    provenance (the spec, the form, the module's file and its sha256, the version of the module's
    top-level package where it has one).

    The predictor pickles as its spec (the module is imported again in the worker, once per
    process). Every fault (a malformed spec, a missing file, a module that fails to import, a
    missing or uncallable name, a factory that returns no predictor) is a one-line
    :class:`~noisestat.errors.InputError` or :class:`~noisestat.errors.ModelError`.
    """
    if output not in OUTPUTS:
        raise InputError(f"--predictor-output must be one of {', '.join(OUTPUTS)}; got {output!r}")
    module_name, name, is_file = parse_python_spec(spec)
    if is_file:
        path = Path(module_name).expanduser()
        if not path.is_file():
            raise InputError(f"--predictor-python {spec}: no such file: {path}")
        path = path.resolve()
        resolved = f"{path}:{name}"
    else:
        resolved = spec
    module = _import(resolved)
    source = getattr(module, "__file__", None)
    sha = file_sha256(source) if source and os.path.isfile(source) else None
    predictor = _restore(resolved, output, sha)
    if isinstance(predictor, _Factory) and isinstance(predictor.inner(), _forest_class()):
        # noisestat's own forest, built by the user's code: it travels as itself
        predictor = predictor.inner()
    record = {"python": spec, "form": "function" if isinstance(predictor, _Function) else "factory",
              "output": output if isinstance(predictor, _Function) else predictor_kind(predictor),
              "module": None if is_file else module_name, "path": str(Path(source).resolve()) if source else None,
              "sha256": sha, "version": _version(module, None if is_file else module_name)}
    return predictor, record


def _forest_class():
    from ._forest import PixelClassifier

    return PixelClassifier


def _version(module, name: str | None):
    """``__version__`` of the module's top-level package (of the module itself for a file), or None."""
    top = sys.modules.get(name.split(".")[0]) if name else module
    version = getattr(top, "__version__", None)
    return str(version) if version is not None else None


def _last_line(exc: BaseException) -> str:
    """The exception's last line, as Python prints it (``ValueError: bad value``)."""
    lines = traceback.format_exception_only(type(exc), exc)
    return lines[-1].strip() if lines else type(exc).__name__


def _label(obj) -> str:
    return getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or type(obj).__name__


def _import(resolved: str):
    """The module of a resolved spec (an absolute file path or a module name), loaded once per process
    (a file again when its bytes changed)."""
    module_name, _, is_file = parse_python_spec(resolved)
    if not is_file:
        if module_name in _MODULES:
            return _MODULES[module_name]
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # noqa: BLE001 - the user's module: any failure is told in one line
            raise ModelError(f"--predictor-python: importing {module_name} failed: {_last_line(exc)}") from None
        _MODULES[module_name] = module
        return module
    path = Path(module_name)
    if not path.is_file():
        raise InputError(f"--predictor-python: no such file: {path}")
    key = (str(path), file_sha256(path))
    if key in _MODULES:
        return _MODULES[key]
    # a name of its own per file, so that two files called model.py do not meet in sys.modules
    unique = f"_noisestat_predictor_{hashlib.sha256(str(path).encode()).hexdigest()[:16]}"
    spec = importlib.util.spec_from_file_location(unique, path)
    if spec is None or spec.loader is None:
        raise InputError(f"--predictor-python: {path} is not a Python file noisestat can import")
    module = importlib.util.module_from_spec(spec)
    sys.modules[unique] = module  # classes and dataclasses defined in the file look their module up there
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - the user's file: any failure is told in one line
        sys.modules.pop(unique, None)
        raise ModelError(f"--predictor-python: importing {path} failed: {_last_line(exc)}") from None
    _MODULES[key] = module
    return module


def _restore(resolved: str, output: str, sha256: str | None):
    """The predictor of a resolved spec, made once per process (what a pickled predictor becomes in
    a worker): the module imported, its file checked against ``sha256``, the name looked up."""
    key = (resolved, output)
    if key in _PREDICTORS:
        return _PREDICTORS[key]
    module = _import(resolved)
    source = getattr(module, "__file__", None)
    if sha256 is not None and source and file_sha256(source) != sha256:
        raise ModelError(f"--predictor-python: {source} changed while the assessment ran (its sha256 is no longer "
                         f"{sha256[:12]}...)")
    module_name, name, _ = parse_python_spec(resolved)
    obj = module
    for part in name.split("."):
        if not hasattr(obj, part):
            where = module_name if obj is module else f"{module_name}:{name.rsplit('.', 1)[0]}"
            raise ModelError(f"--predictor-python: {where} has no attribute {part!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ModelError(f"--predictor-python: {module_name}:{name} is a {type(obj).__name__}, not a callable (a "
                         f"factory or a function of the image)")
    shown = f"{Path(module_name).name}:{name}" if parse_python_spec(resolved)[2] else resolved
    if callable_form(obj) == "function":
        predictor = _FUNCTIONS[output](resolved, output, sha256, obj, shown)
    else:
        try:
            inner = obj()
        except Exception as exc:  # noqa: BLE001 - the user's factory
            raise ModelError(f"--predictor-python: calling {shown}() failed: {_last_line(exc)}") from None
        try:
            kind = predictor_kind(inner)
        except ModelError as exc:
            raise ModelError(f"--predictor-python: {shown}() returned a {type(inner).__name__}, which is not a "
                             f"predictor ({exc}); or give a function of the image with --predictor-output") from None
        # the predictor under the name of its own class, so that noisestat's messages name it
        cls = type(type(inner).__name__, (_Factory,), {"__module__": __name__})
        predictor = cls(resolved, output, sha256, inner, kind)
    _PREDICTORS[key] = predictor
    return predictor


class _BySpec:
    """A predictor that pickles as its spec: a worker imports the module again (once per process)."""

    def __init__(self, resolved: str, output: str, sha256: str | None):
        self.spec = resolved
        self.output = output
        self.sha256 = sha256

    def __reduce__(self):
        return _restore, (self.spec, self.output, self.sha256)


class _Factory(_BySpec):
    """What a factory returned, with the methods it has (``predictor_kind`` sees them through)."""

    def __init__(self, resolved, output, sha256, inner, kind):
        super().__init__(resolved, output, sha256)
        self._inner = inner
        self.kind = kind

    def inner(self):
        return self._inner

    def __getattr__(self, name):
        # only reached for names this object lacks: the factory's predictor's methods and attributes
        if name.startswith("__") or name == "_inner":
            raise AttributeError(name)
        return getattr(self._inner, name)

    def describe(self) -> dict:
        return {**self._inner.describe(), "python": self.spec}


class _Function(_BySpec):
    """A function of the whole image, called on whole images."""

    def __init__(self, resolved, output, sha256, function, shown):
        super().__init__(resolved, output, sha256)
        self.function = function
        self.shown = shown

    def _call(self, image: np.ndarray, kind: str) -> np.ndarray:
        try:
            result = self.function(image)
        except Exception as exc:  # noqa: BLE001 - the user's function: one line, with what it was given
            raise ModelError(f"{self.shown} failed on an image of shape {image.shape}: {_last_line(exc)}") from None
        return check_predictor_output(self, result, image.shape, kind,
                                      name=f"{self.shown} (--predictor-output {self.output})")

    def describe(self) -> dict:
        return {"predictor": "python function", "python": self.spec, "output": self.output}


class _Labels(_Function):
    def segment(self, image):
        return self._call(image, "labels")


class _Mask(_Function):
    def segment(self, image):
        from ..engine._tiles import label_mask

        return label_mask(self._call(image, "mask"))


class _Values(_Function):
    whole_image = True  # a function of the whole image: one tile, whatever --tile says

    def halo(self, ndim: int) -> tuple:
        return (0,) * ndim

    def predict_values(self, region):
        return self._call(region, "values")


_FUNCTIONS = {"labels": _Labels, "mask": _Mask, "values": _Values}
