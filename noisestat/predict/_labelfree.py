"""Label-free models: a small 2D U-Net that predicts one image from another (a fluorescence channel
from bright field, as in Zhou et al. 2023), its training, its checkpoint and its predictor.

The network is a short U-Net written here (two levels by default): MONAI is not a dependency of
noisestat, and a U-Net this small is a few lines. Its input is normalised by the mean and standard
deviation of the training inputs, its output is in the target's units (the target's mean and standard
deviation, both stored in the checkpoint). It is 2D: a volume is predicted plane by plane, and the
planes of a training volume are training images.

torch is imported only when a function here needs it, so ``import noisestat`` works without it.

Checkpoint format
-----------------
A dict written by ``torch.save`` and read with ``torch.load(..., weights_only=True)`` (loading never
runs Python code)::

    {"format": "noisestat-labelfree", "version": 1,
     "arch": {"depth": int, "width": int},
     "normalisation": {"input_mean": float, "input_std": float, "target_mean": float, "target_std": float},
     "training": {plain values: steps, seed, hashes of the inputs and targets, codec, loss, ...},
     "state_dict": {name: float32 tensor}}

:func:`load_labelfree` checks every entry's type and range (depth and width are bounded, so a file
cannot ask for a huge network), and every tensor's name, shape, dtype and finiteness against the
network the header describes, before any weight is loaded.

Determinism
-----------
Training seeds torch's generator from ``seed`` (in a forked random state: the caller's is left as
it was) and draws the patches from a numpy Generator of the same seed; it runs with
``torch.use_deterministic_algorithms(True)`` on :data:`THREADS` CPU thread, so the same inputs,
settings and torch build give the same weights. Prediction runs on the same single thread, so a
model gives the same values in every process, whatever ``--jobs`` says.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import time
import zipfile
from pathlib import Path

import numpy as np

from ..errors import InputError, ModelError

__all__ = ["CHECKPOINT_FORMAT", "VERSION", "DEFAULT_STEPS", "LabelFreePredictor", "train_labelfree", "save_labelfree",
           "load_labelfree", "is_labelfree_file", "train_labelfree_files", "MISSING_TORCH"]

CHECKPOINT_FORMAT = "noisestat-labelfree"
VERSION = 1

#: Optimiser steps when none are given: a few minutes on one CPU thread (docs/predictors.md).
DEFAULT_STEPS = 1000

#: CPU threads used for training and prediction (results do not depend on the machine's cores).
THREADS = 1

#: Bounds on the architecture a checkpoint may ask for.
MAX_DEPTH = 4
MAX_WIDTH = 64
MAX_CHANNELS = 512  # width * 2**depth: the bottom block's channels
#: A checkpoint file larger than this is refused before it is read (the largest network allowed is ~36 MB).
MAX_CHECKPOINT_BYTES = 64 << 20

MISSING_TORCH = "label-free models need PyTorch: pip install torch (or the extra noisestat[learned])"

_TOP_KEYS = {"format", "version", "arch", "normalisation", "training", "state_dict"}
_NORMALISATION = ("input_mean", "input_std", "target_mean", "target_std")
_TORCH_SUFFIXES = (".pt", ".pth", ".ckpt")


def _torch():
    try:
        import torch
    except ImportError:
        raise ModelError(MISSING_TORCH) from None
    return torch


# --------------------------------------------------------------------------------------------------
# The network

@functools.lru_cache(maxsize=1)
def _unet_class():
    """The U-Net module class (defined once torch is imported)."""
    torch = _torch()
    from torch import nn
    import torch.nn.functional as F

    def block(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(),
                             nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU())

    class UNet(nn.Module):
        """Two 3x3 convolutions per level, max pooling down, transposed convolutions up, the
        encoder's maps concatenated on the way up, a 1x1 convolution to one output channel."""

        def __init__(self, depth: int, width: int):
            super().__init__()
            widths = [width * 2 ** k for k in range(depth + 1)]
            self.down = nn.ModuleList([block(1 if k == 0 else widths[k - 1], widths[k]) for k in range(depth)])
            self.bottom = block(widths[depth - 1], widths[depth])
            self.up = nn.ModuleList([nn.ConvTranspose2d(widths[k + 1], widths[k], 2, stride=2)
                                     for k in range(depth)])
            self.merge = nn.ModuleList([block(2 * widths[k], widths[k]) for k in range(depth)])
            self.out = nn.Conv2d(width, 1, 1)

        def forward(self, x):
            skips = []
            for level in self.down:
                x = level(x)
                skips.append(x)
                x = F.max_pool2d(x, 2)
            x = self.bottom(x)
            for k in reversed(range(len(skips))):
                x = self.merge[k](torch.cat([skips[k], self.up[k](x)], dim=1))
            return self.out(x)

    return UNet


def _check_arch(depth, width, *, error=InputError, where="") -> None:
    for name, value, high in (("depth", depth, MAX_DEPTH), ("width", width, MAX_WIDTH)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 1 <= value <= high:
            raise error(f"{where}{name} must be an integer in [1, {high}]; got {value!r}")
    if width * 2 ** depth > MAX_CHANNELS:
        raise error(f"{where}width * 2**depth must be at most {MAX_CHANNELS}; got {width} * 2**{depth}")


@contextlib.contextmanager
def _fixed_cpu(torch):
    """:data:`THREADS` threads and deterministic algorithms for the block; the previous settings after."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(THREADS)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.set_num_threads(threads)


def _padded(plane: np.ndarray, multiple: int) -> np.ndarray:
    """``plane`` padded at the bottom and right to a multiple of ``multiple`` by reflection (edge
    repetition along an axis of one pixel)."""
    pads = [(0, (-n) % multiple) for n in plane.shape]
    if not any(p for _, p in pads):
        return plane
    mode = "reflect" if min(plane.shape) > 1 else "edge"
    return np.pad(plane, pads, mode=mode)


# --------------------------------------------------------------------------------------------------
# The predictor

class LabelFreePredictor:
    """A trained label-free U-Net as a value predictor (:class:`~noisestat.predict.ValuePredictor`).

    It sees the whole image at once (``whole_image = True``, ``halo`` of zeros): pooling makes every
    value depend on a large neighbourhood. ``predict_values`` pads each plane to a multiple of
    ``2**depth`` by reflection, runs the network and crops back; a volume is predicted plane by
    plane. Values are float32 in the target's units.

    Build it with :func:`train_labelfree` or :func:`load_labelfree`. It pickles as its header and
    weights (numpy arrays), not as a torch module; the module is rebuilt on first use.

    Attributes
    ----------
    header : dict
        ``format``, ``version``, ``arch``, ``normalisation`` and ``training`` (plain values).
    """

    whole_image = True
    #: Seconds the training took, on a model just trained (None once loaded or unpickled: not saved).
    training_seconds = None

    shown = "the label-free model"  # what messages call it

    def __init__(self, header: dict, state: dict, *, source: dict | None = None):
        self.header = header
        self._state = {name: np.ascontiguousarray(a, dtype=np.float32) for name, a in state.items()}
        self.source = source
        self._net = None

    # pickling: the header and the weights only
    def __getstate__(self):
        return {"header": self.header, "state": self._state, "source": self.source}

    def __setstate__(self, state):
        self.header, self._state, self.source = state["header"], state["state"], state["source"]
        self._net = None

    @property
    def depth(self) -> int:
        return self.header["arch"]["depth"]

    @property
    def width(self) -> int:
        return self.header["arch"]["width"]

    def state_dict(self) -> dict:
        """The weights, name -> float32 numpy array (read-only views)."""
        views = {}
        for name, a in self._state.items():
            view = a.view()
            view.flags.writeable = False
            views[name] = view
        return views

    def _network(self, torch):
        if self._net is None:
            net = _unet_class()(self.depth, self.width)
            net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in self._state.items()}, strict=True)
            net.eval()
            self._net = net
        return self._net

    def halo(self, ndim: int) -> tuple[int, ...]:
        return (0,) * ndim

    def predict_values(self, region: np.ndarray) -> np.ndarray:
        """The predicted target for ``region`` (2D, or 3D plane by plane), float32, same shape."""
        region = np.asarray(region)
        if region.ndim not in (2, 3):
            raise ModelError(f"label-free model: predicts 2D images or 3D volumes; got shape {region.shape}")
        torch = _torch()
        norm = self.header["normalisation"]
        multiple = 2 ** self.depth
        planes = region[None] if region.ndim == 2 else region
        out = np.empty(planes.shape, np.float32)
        with _fixed_cpu(torch), torch.inference_mode():
            net = self._network(torch)
            for z, plane in enumerate(planes):
                x = ((plane.astype(np.float64) - norm["input_mean"]) / norm["input_std"]).astype(np.float32)
                y = net(torch.from_numpy(_padded(x, multiple))[None, None])[0, 0].numpy()
                y = y[:plane.shape[0], :plane.shape[1]].astype(np.float64)
                out[z] = y * norm["target_std"] + norm["target_mean"]
        return out[0] if region.ndim == 2 else out

    def describe(self) -> dict:
        d = {"predictor": "label-free U-Net", **json.loads(json.dumps(self.header))}
        if self.source is not None:
            d["file"] = dict(self.source)
        return d


# --------------------------------------------------------------------------------------------------
# Training

def _as_list(arrays, what: str) -> list:
    if isinstance(arrays, np.ndarray):
        return [arrays]
    arrays = list(arrays)
    if not arrays:
        raise InputError(f"give at least one {what} image")
    return [np.asarray(a) for a in arrays]


def _positive_int(name, value, low=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise InputError(f"{name} must be an integer >= {low}; got {value!r}")


def train_labelfree(inputs, targets, *, steps: int = DEFAULT_STEPS, seed: int = 0, codec=None, profile=None,
                    depth: int = 2, width: int = 16, patch: int = 64, batch: int = 4, lr: float = 2e-3,
                    names=None) -> LabelFreePredictor:
    """Train a label-free U-Net to predict ``targets`` from ``inputs``.

    Each step draws ``batch`` random patches (a seeded numpy Generator) from the training planes and
    takes one Adam step on the mean squared error between the network's output and the target, both
    normalised (the inputs' and the targets' mean and standard deviation over all training pixels).

    Parameters
    ----------
    inputs, targets : array or sequence of arrays
        Pairs in order, each pair of one shape: 2D images or 3D volumes (whose planes are training
        images). Inputs are camera images (integers when ``codec`` is given); targets any real values.
    steps : int
        Optimiser steps.
    seed : int
        Seeds the weights' initialisation and the patches.
    codec : str or Codec, optional
        Train on the inputs coded and decoded by this codec (:func:`noisestat.codecs.parse_spec`)
        instead of the raw inputs: does a model trained on compressed data recover?
    profile : CameraProfile, optional
        The camera profile, for codecs that need one.
    depth, width : int
        The U-Net's levels and its first level's channels (doubled at each level).
    patch, batch : int
        Patches' side (lowered to the smallest plane, a multiple of ``2**depth``) and patches per step.
    lr : float
        Adam's learning rate.
    names : sequence of (str, str), optional
        The pairs' names (files), for messages and the training record.

    Returns
    -------
    LabelFreePredictor
        Its ``header["training"]`` records steps, seed, the hashes of inputs and targets, the codec,
        the final loss (mean normalised MSE over the last tenth of the steps) and threads; no clock
        time, so a checkpoint of the same training is the same file. ``training_seconds``, an attribute
        of the returned model (not saved), says how long the training took.
    """
    from ..codecs._base import code_image, parse_spec, prepare_image
    from ..io._hashing import array_sha256

    _check_arch(depth, width)
    _positive_int("steps", steps)
    _positive_int("batch", batch)
    _positive_int("patch", patch, 2 ** depth)
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise InputError(f"lr must be a positive number; got {lr!r}")
    inputs, targets = _as_list(inputs, "input"), _as_list(targets, "target")
    names = list(names) if names is not None else [(f"input {i}", f"target {i}") for i in range(len(inputs))]
    if len(inputs) != len(targets):
        raise InputError(f"give one target per input: {len(inputs)} inputs, {len(targets)} targets")
    if isinstance(codec, str):
        codec = parse_spec(codec)
    planes_in, planes_out, hashes = [], [], []
    for (name_in, name_out), a, b in zip(names, inputs, targets):
        if a.ndim not in (2, 3):
            raise InputError(f"{name_in}: expected a 2D image or a 3D volume; got shape {a.shape}")
        if b.shape != a.shape:
            raise InputError(f"{name_out}: shape {b.shape} differs from its input {name_in} {a.shape}")
        for arr, name in ((a, name_in), (b, name_out)):
            if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
                raise InputError(f"{name}: values must be real numbers; got dtype {arr.dtype}")
            if not np.isfinite(arr).all():
                raise InputError(f"{name}: holds NaN or infinite values")
        hashes.append({"input_sha256": array_sha256(a), "target_sha256": array_sha256(b)})
        if codec is not None:
            prepare_image(codec, a, profile)
            a = code_image(codec, a, profile).decoded
        planes_in += list(a) if a.ndim == 3 else [a]
        planes_out += list(b) if b.ndim == 3 else [b]
    multiple = 2 ** depth
    side = min(min(p.shape) for p in planes_in)
    patch = min(patch, side) // multiple * multiple
    if patch < multiple:
        raise InputError(f"training planes must be at least {multiple} pixels a side for a U-Net of depth {depth}; "
                         f"the smallest is {side}")
    norm = {}
    for key, planes in (("input", planes_in), ("target", planes_out)):
        values = np.concatenate([p.astype(np.float64).ravel() for p in planes])
        mean, std = float(values.mean()), float(values.std())
        if not std > 0:
            raise InputError(f"the training {key}s are constant ({mean:g} everywhere); nothing to learn")
        norm[f"{key}_mean"], norm[f"{key}_std"] = mean, std
    xs = [((p.astype(np.float64) - norm["input_mean"]) / norm["input_std"]).astype(np.float32) for p in planes_in]
    ys = [((p.astype(np.float64) - norm["target_mean"]) / norm["target_std"]).astype(np.float32) for p in planes_out]

    torch = _torch()
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    losses = []
    with _fixed_cpu(torch), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = _unet_class()(depth, width)
        net.train()
        optimiser = torch.optim.Adam(net.parameters(), lr=lr)
        for _ in range(steps):
            picks = rng.integers(len(xs), size=batch)
            px, py = [], []
            for k in picks:
                r = rng.integers(xs[k].shape[0] - patch + 1)
                c = rng.integers(xs[k].shape[1] - patch + 1)
                px.append(xs[k][r:r + patch, c:c + patch])
                py.append(ys[k][r:r + patch, c:c + patch])
            x = torch.from_numpy(np.stack(px))[:, None]
            y = torch.from_numpy(np.stack(py))[:, None]
            loss = torch.nn.functional.mse_loss(net(x), y)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(float(loss.item()))
        net.eval()
    seconds = time.perf_counter() - started
    tail = losses[-max(1, steps // 10):]
    training = {"steps": int(steps), "seed": int(seed), "batch": int(batch), "patch": int(patch), "lr": float(lr),
                "optimiser": "Adam", "loss_function": "MSE of the normalised target",
                "loss": float(np.mean(tail)), "first_loss": losses[0],
                "threads": THREADS, "torch": str(torch.__version__), "planes": len(xs),
                "pairs": [{"input": n_in, "target": n_out, **h} for (n_in, n_out), h in zip(names, hashes)],
                "codec": None if codec is None else codec.spec}
    header = {"format": CHECKPOINT_FORMAT, "version": VERSION, "arch": {"depth": int(depth), "width": int(width)},
              "normalisation": norm, "training": training}
    state = {k: v.detach().cpu().numpy().copy() for k, v in net.state_dict().items()}
    model = LabelFreePredictor(header, state)
    model.training_seconds = seconds
    return model


# --------------------------------------------------------------------------------------------------
# Checkpoints

def save_labelfree(model: LabelFreePredictor, path) -> None:
    """Write ``model`` as a weights-only checkpoint (see the module docstring), atomically."""
    from ..io._atomic import atomic_file

    torch = _torch()
    if not isinstance(model, LabelFreePredictor):
        raise ModelError(f"save_labelfree writes a LabelFreePredictor; got {type(model).__name__}")
    obj = {**json.loads(json.dumps(model.header)),
           "state_dict": {k: torch.from_numpy(v.copy()) for k, v in model._state.items()}}
    with atomic_file(path) as handle:
        torch.save(obj, handle)


def is_labelfree_file(path) -> bool:
    """Whether ``path`` looks like a PyTorch checkpoint (a torch zip archive, or a file named .pt,
    .pth or .ckpt that is not a zip archive) rather than a forest model file. Reads only the zip
    directory; imports no torch."""
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
            return any(n.endswith("/data.pkl") for n in names) and "header.npy" not in names
    except (OSError, zipfile.BadZipFile):
        return False
    return path.suffix.lower() in _TORCH_SUFFIXES


def _torch_load(path: Path, torch):
    import pickle

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "GLOBAL" in str(exc) or "global" in str(exc):
            raise ModelError(f"{path}: refused: the file holds Python objects besides tensors and plain data; "
                             f"only weights-only checkpoints are loaded") from None
        raise ModelError(f"{path}: not a PyTorch checkpoint (the weights-only unpickler rejects it)") from None
    except Exception as exc:  # zip, EOF and format errors: not a checkpoint we can read
        text = str(exc).strip().splitlines()
        raise ModelError(f"{path}: not a PyTorch checkpoint ({type(exc).__name__}"
                         f"{': ' + text[0][:160] if text else ''})") from None


def _finite_number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _check_header(obj, torch) -> None:
    """Raise ModelError's text (as ValueError) for anything but a valid header and state dict."""
    extra = sorted(set(obj) - _TOP_KEYS, key=str)
    missing = sorted(_TOP_KEYS - set(obj))
    if extra or missing:
        raise ValueError(", ".join(x for x in (f"lacks {missing}" if missing else "",
                                               f"has unexpected entries {[str(e)[:40] for e in extra[:3]]}"
                                               if extra else "") if x))
    arch = obj["arch"]
    if not isinstance(arch, dict) or set(arch) != {"depth", "width"}:
        raise ValueError("arch must be {'depth': int, 'width': int}")
    _check_arch(arch["depth"], arch["width"], error=ValueError, where="arch: ")
    norm = obj["normalisation"]
    if not isinstance(norm, dict) or set(norm) != set(_NORMALISATION):
        raise ValueError(f"normalisation must hold exactly {', '.join(_NORMALISATION)}")
    for key in _NORMALISATION:
        if not _finite_number(norm[key]) or (key.endswith("_std") and not norm[key] > 0):
            raise ValueError(f"normalisation {key} must be a finite number{' > 0' if key.endswith('_std') else ''}; "
                             f"got {norm[key]!r}")
    if not isinstance(obj["training"], dict):
        raise ValueError("training must be a dict of plain values")
    try:
        json.dumps(obj["training"], allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"training must hold plain values only ({str(exc)[:80]})") from None


def _check_state(state, expected: dict, torch) -> None:
    if not isinstance(state, dict):
        raise ValueError(f"state_dict must be a dict of tensors; got {type(state).__name__}")
    missing = sorted(set(expected) - set(state))
    extra = sorted((str(k)[:60] for k in set(state) - set(expected)))
    if missing or extra:
        raise ValueError("the weights do not fit the architecture: "
                         + ", ".join(x for x in (f"missing {missing[:3]}" if missing else "",
                                                 f"unexpected {extra[:3]}" if extra else "") if x))
    for name, want in expected.items():
        t = state[name]
        if not isinstance(t, torch.Tensor) or t.layout != torch.strided or t.is_quantized:
            raise ValueError(f"{name} is not a dense tensor")
        if t.dtype != torch.float32:
            raise ValueError(f"{name} has dtype {t.dtype}; expected torch.float32")
        if tuple(t.shape) != tuple(want.shape):
            raise ValueError(f"{name} has shape {tuple(t.shape)}; the architecture needs {tuple(want.shape)}")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} holds NaN or infinite weights")


def load_labelfree(path) -> LabelFreePredictor:
    """Load a checkpoint written by :func:`save_labelfree` (``noisestat train-labelfree``).

    The file is read with ``torch.load(weights_only=True)`` (no Python code runs), after checking
    its size (:data:`MAX_CHECKPOINT_BYTES`). The header's types and ranges are checked, then the
    network it describes is built and every tensor's name, shape, dtype and finiteness is compared
    with it before ``load_state_dict(strict=True)``.

    Raises
    ------
    ModelError
        One line naming ``path``: missing torch, a missing file, a file that is not a weights-only
        PyTorch checkpoint (a pickle holding code, a truncated file, a forest model file), a
        checkpoint of another format, or a header or weights that fail the checks.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    torch = _torch()
    size = path.stat().st_size
    if size > MAX_CHECKPOINT_BYTES:
        raise ModelError(f"{path}: {size} bytes; a label-free checkpoint is at most {MAX_CHECKPOINT_BYTES} bytes")
    obj = _torch_load(path, torch)
    if not isinstance(obj, dict):
        raise ModelError(f"{path}: not a label-free model (the checkpoint holds a {type(obj).__name__}, "
                         f"not a dict)")
    if obj.get("format") != CHECKPOINT_FORMAT:
        kind = obj.get("format")
        what = f"a {kind!r} checkpoint" if isinstance(kind, str) else "a checkpoint without noisestat's header"
        raise ModelError(f"{path}: not a label-free model ({what[:120]}; expected {CHECKPOINT_FORMAT!r})")
    if obj.get("version") != VERSION or isinstance(obj.get("version"), bool):
        raise ModelError(f"{path}: {CHECKPOINT_FORMAT} version {str(obj.get('version'))[:40]}; this noisestat reads version "
                         f"{VERSION}")
    try:
        _check_header(obj, torch)
        net = _unet_class()(obj["arch"]["depth"], obj["arch"]["width"])
        _check_state(obj["state_dict"], net.state_dict(), torch)
        net.load_state_dict(obj["state_dict"], strict=True)
    except (ValueError, RuntimeError) as exc:
        text = str(exc).strip().splitlines()
        raise ModelError(f"{path}: damaged label-free model: {text[0][:300] if text else type(exc).__name__}") from None
    header = {k: obj[k] for k in ("format", "version", "arch", "normalisation", "training")}
    header["normalisation"] = {k: float(v) for k, v in header["normalisation"].items()}
    from ..io._hashing import file_sha256

    state = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
    return LabelFreePredictor(header, state, source={"path": str(path), "sha256": file_sha256(path)})


# --------------------------------------------------------------------------------------------------
# From files (the command line)

def train_labelfree_files(inputs, targets, output, *, steps: int = DEFAULT_STEPS, seed: int = 0, codec=None,
                          camera=None) -> tuple[LabelFreePredictor, list[str]]:
    """Read the pairs (``inputs[i]`` -> ``targets[i]``, 2D images or volumes), train, write ``output``.

    Inputs are read as camera images (integers), targets as any real values. ``codec``: a spec
    string, trained on the inputs coded and decoded by it; ``camera``: the camera profile's path, for
    codecs that need one (checked against every input as ``assess`` does). The output file is never
    one of the inputs and is written atomically. Returns the model and the profile's warnings.
    """
    from ..camera._profile import load_profile
    from ..codecs._base import parse_spec
    from ..io._files import file_sha256, prepare_output_file, read_image_info
    from ..io._readers import read_array_info

    inputs, targets = [os.fspath(p) for p in inputs], [os.fspath(p) for p in targets]
    if len(inputs) != len(targets):
        raise InputError(f"give one --target per --input, in the same order: {len(inputs)} inputs, "
                         f"{len(targets)} targets")
    if camera is not None and codec is None:
        raise InputError("--camera is for the codec of --train-codec; give --train-codec too, or no --camera")
    spec = parse_spec(codec) if isinstance(codec, str) else codec
    prepare_output_file(output, inputs=[*inputs, *targets, *([camera] if camera else [])])
    profile = load_profile(camera) if camera is not None else None
    arrays_in, arrays_out, warnings = [], [], []
    for a, b in zip(inputs, targets):
        image = read_image_info(a)[0]
        target = read_array_info(b)[0]
        if target.shape != image.shape:
            raise InputError(f"{b}: shape {target.shape} differs from its input {a} {image.shape}")
        if profile is not None:
            warnings += [w for w in profile.fit_warnings(image, a) if w not in warnings]
        arrays_in.append(image)
        arrays_out.append(target)
    model = train_labelfree(arrays_in, arrays_out, steps=steps, seed=seed, codec=spec, profile=profile,
                            names=list(zip(inputs, targets)))
    # the files by name and content, not by the path typed: the same training from another working folder
    # writes the same bytes
    for pair, a, b in zip(model.header["training"]["pairs"], inputs, targets):
        pair["input"], pair["target"] = os.path.basename(a), os.path.basename(b)
        pair["input_file_sha256"], pair["target_file_sha256"] = file_sha256(a), file_sha256(b)
    if camera is not None:
        model.header["training"]["camera"] = {"path": os.path.basename(camera), "sha256": file_sha256(camera)}
    save_labelfree(model, output)
    return model, warnings
