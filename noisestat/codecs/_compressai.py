"""Learned image codecs (CompressAI): 1-channel models, checkpoints, training and coding.

CompressAI's architectures take and give 3-channel images. Microscopy images are grey, so the
models trained here are 1-channel variants: the convolutions that read the input image and the
one that writes the output image are rebuilt for one channel, and every other layer keeps the
architecture's structure. Official CompressAI checkpoints (3 channels) are used as they are, on
the grey image replicated to 3 channels, the decoded channels averaged back to grey.

Every image is normalised by its own min..max to [0, 1] before coding, not by the full range
of its dtype: a 16-bit microscopy image that fills a few hundred of 65536 levels would otherwise
be coded as a near-black picture, which is what models trained on photographs handle worst.

torch and compressai are the optional extra ``noisestat[learned]``; they are imported only when
a function here needs them, so ``import noisestat.codecs`` always works.

Checkpoint format
-----------------
A dict read with ``torch.load(..., weights_only=True)``, so loading never runs Python code::

    {"format": "noisestat-learned-codec", "version": 1, "arch": str, "quality": int,
     "channels": 1, "state_dict": {name: tensor}, "training": {plain values}}

Stream format
-------------
:func:`encode` returns one ``bytes`` object, all the decoder needs besides the model:
a header (rows, cols, latent rows, latent cols as uint32; the number of entropy-coded strings
as uint8; the raw dtype as one character; the image min and max in the raw dtype; the length
of every string but the last as uint32), then the strings themselves.
"""

from __future__ import annotations

import math
import os
import re
import struct
import time
import warnings
from pathlib import Path

import numpy as np

from ..io._files import atomic_file, file_sha256, read_image
from ._base import to_dtype
from ..errors import CodecError, InputError

__all__ = ["ARCHS", "LAMBDAS", "QUALITIES", "FORMAT", "MISSING_EXTRA", "LoadedCodec", "build_model",
           "save_checkpoint", "load_checkpoint", "encode", "decode", "normalise", "train_codec"]

#: The CompressAI architectures this module builds and loads (names as in ``compressai.zoo``).
ARCHS = ("bmshj2018-factorized", "bmshj2018-hyperprior", "mbt2018-mean", "mbt2018",
         "cheng2020-anchor", "cheng2020-attn")

#: Quality levels CompressAI defines for each architecture.
QUALITIES = {arch: range(1, 7) if arch.startswith("cheng2020") else range(1, 9) for arch in ARCHS}

#: CompressAI's published rate-distortion weights per quality (MSE models).
LAMBDAS = {1: 0.0018, 2: 0.0035, 3: 0.0067, 4: 0.0130, 5: 0.0250, 6: 0.0483, 7: 0.0932, 8: 0.1800}

FORMAT = "noisestat-learned-codec"
VERSION = 1
MISSING_EXTRA = "compressai codecs need the optional extra: pip install 'noisestat[learned]'"

#: Every architecture here downsamples the hyper-latent by 2^6, so padded sides are multiples of 64.
PAD_MULTIPLE = 64

_HEADER = struct.Struct("<IIIIBc")  # rows, cols, latent rows, latent cols, n strings, dtype char
_LENGTH = struct.Struct("<I")


def _modules():
    """Import torch and compressai, or raise the one-line CodecError naming the extra."""
    try:
        import torch
        with warnings.catch_warnings():
            # compressai's import scripts some functions with torch.jit, which torch now reports as
            # deprecated; that is compressai's business, not something our users can act on.
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            import compressai.zoo  # noqa: F401
            from compressai.zoo import image as zoo_image
            from compressai.zoo.pretrained import load_pretrained
    except ImportError:
        raise CodecError(MISSING_EXTRA) from None
    return torch, zoo_image, load_pretrained


def _check_arch(arch, quality=None, *, error=InputError) -> None:
    if arch not in ARCHS:
        raise error(f"unknown arch {arch!r} (known: {', '.join(ARCHS)})")
    if quality is not None and quality not in QUALITIES[arch]:
        q = QUALITIES[arch]
        raise error(f"arch {arch}: quality must be an integer in [{q.start}, {q.stop - 1}]; got {quality!r}")


# --------------------------------------------------------------------------------------------------
# Models

def _rebuilt_conv(conv, in_channels: int, out_channels: int):
    """A fresh convolution like ``conv`` (same kind, kernel, stride, padding) with other channel counts."""
    import torch.nn as nn

    kwargs = dict(kernel_size=conv.kernel_size, stride=conv.stride, padding=conv.padding,
                  dilation=conv.dilation, groups=conv.groups, bias=conv.bias is not None)
    if isinstance(conv, nn.ConvTranspose2d):
        kwargs["output_padding"] = conv.output_padding
    return type(conv)(in_channels, out_channels, **kwargs)


def _set_child(root, dotted: str, module) -> None:
    parent, _, name = dotted.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, name, module)


def _to_single_channel(model):
    """Rebuild the layers of ``model`` that touch image channels for 1-channel images, in place.

    In the analysis transform ``g_a`` these are the convolutions that read the 3-channel input:
    the first convolution (Ballé, Minnen) or the first residual block's convolution and its
    1x1 skip (Cheng). In the synthesis transform ``g_s`` it is the last convolution: a
    transposed convolution to 3 channels, or (Cheng) a sub-pixel convolution to 3 r^2 channels
    followed by a pixel shuffle by r. Every other layer is left as the architecture defines it.
    """
    import torch.nn as nn

    convs = (nn.Conv2d, nn.ConvTranspose2d)
    inputs = [(name, m) for name, m in model.g_a.named_modules() if isinstance(m, convs) and m.in_channels == 3]
    if not inputs:
        raise CodecError(f"{type(model).__name__}: found no convolution reading 3 channels in g_a")
    for name, conv in inputs:
        _set_child(model.g_a, name, _rebuilt_conv(conv, 1, conv.out_channels))

    last = model.g_s[-1]
    if isinstance(last, convs) and last.out_channels == 3:
        model.g_s[-1] = _rebuilt_conv(last, last.in_channels, 1)
    elif (isinstance(last, nn.Sequential) and isinstance(last[0], nn.Conv2d)
          and isinstance(last[-1], nn.PixelShuffle) and last[0].out_channels == 3 * last[-1].upscale_factor ** 2):
        last[0] = _rebuilt_conv(last[0], last[0].in_channels, last[-1].upscale_factor ** 2)
    else:
        raise CodecError(f"{type(model).__name__}: the last layer of g_s is not a convolution to 3 channels")
    return model


def build_model(arch: str, quality: int, *, channels: int = 1):
    """An untrained CompressAI model of ``arch`` at ``quality``, for 1- or 3-channel images.

    Parameters
    ----------
    arch : str
        One of :data:`ARCHS`.
    quality : int
        CompressAI quality level; sets the channel counts N, M as ``compressai.zoo`` does.
    channels : {1, 3}
        1 rebuilds the input and output convolutions for grey images (see module docstring).

    Returns
    -------
    torch.nn.Module
        A ``compressai.models.CompressionModel``, on CPU, in training mode.
    """
    _check_arch(arch, quality)
    if channels not in (1, 3):
        raise InputError(f"channels must be 1 or 3; got {channels!r}")
    torch, zoo_image, _ = _modules()
    cls = zoo_image.model_architectures[arch]
    model = cls(*zoo_image.cfgs[arch][quality])
    return _to_single_channel(model) if channels == 1 else model


def _atomic_torch_save(obj, path: Path) -> None:
    import torch

    with atomic_file(path) as handle:
        torch.save(obj, handle)


def save_checkpoint(model, path, *, arch: str, quality: int, training: dict | None = None) -> None:
    """Write a 1-channel model as a noisestat checkpoint, atomically.

    Parameters
    ----------
    model : CompressionModel
        Built by :func:`build_model` with ``channels=1`` (and trained).
    path : path-like
    arch, quality
        What the model was built as; stored so that loading needs no other setting.
    training : dict, optional
        Plain values (numbers, strings, lists, dicts) describing how it was trained.
    """
    _check_arch(arch, quality)
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(f"{path}: folder {path.parent} does not exist")
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    _atomic_torch_save({"format": FORMAT, "version": VERSION, "arch": arch, "quality": int(quality), "channels": 1,
                        "state_dict": state, "training": dict(training or {})}, path)


class LoadedCodec:
    """A model ready to code, with what is known about it.

    Attributes
    ----------
    model : CompressionModel
        In eval mode, entropy-coder tables updated.
    arch : str
    quality : int or None
        None for an official checkpoint whose file name does not give it.
    channels : int
        1 (noisestat checkpoint) or 3 (CompressAI checkpoint; grey is replicated).
    source : str
        ``"noisestat"`` or ``"compressai"``.
    sha256 : str
        Of the checkpoint file.
    """

    def __init__(self, model, arch, quality, channels, source, sha256):
        self.model, self.arch, self.quality = model, arch, quality
        self.channels, self.source, self.sha256 = channels, source, sha256


def _torch_load(path: Path):
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's weights-only unpickler names the first global it will not rebuild; anything else
        # it stops at (an unknown opcode, a truncated stream) means the file is no checkpoint at all.
        unsafe = re.search(r"GLOBAL (\S+) was not an allowed global", str(exc))
        if unsafe or "Unsupported global" in str(exc):
            what = f" ({unsafe.group(1)})" if unsafe else ""
            raise CodecError(f"{path}: refused: the checkpoint holds a Python object{what} besides tensors and "
                             f"plain data; only weights-only checkpoints are loaded") from None
        raise CodecError(f"{path}: not a PyTorch checkpoint (the weights-only unpickler rejects it)") from None
    except Exception as exc:  # zip, EOF and format errors all mean "not a checkpoint we can read"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CodecError(f"{path}: not a PyTorch checkpoint ({type(exc).__name__}: {first})") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _load_into(model, state_dict, what: str):
    try:
        model.load_state_dict(state_dict)
    except (RuntimeError, KeyError, ValueError) as exc:
        raise CodecError(f"{what}: the weights do not fit the model ({_first_line(exc)[:200]})") from None
    return model


def load_checkpoint(path, arch: str | None = None) -> LoadedCodec:
    """Load a noisestat or an official CompressAI checkpoint, ready to code.

    Parameters
    ----------
    path : path-like
        A checkpoint written by :func:`save_checkpoint` / ``noisestat codec-train``, or a
        CompressAI state dict (as distributed by CompressAI, or ``{"state_dict": ...}`` as
        CompressAI's training example saves it).
    arch : str, optional
        The architecture. Required for a CompressAI state dict; for a noisestat checkpoint it
        is checked against the stored one.

    Returns
    -------
    LoadedCodec

    Raises
    ------
    CodecError
        Missing file, a file that is not a weights-only PyTorch checkpoint, a checkpoint of
        another format or architecture, or missing torch/compressai.
    """
    path = Path(path)
    if not path.is_file():
        raise CodecError(f"{path}: no such checkpoint file")
    if arch is not None:
        _check_arch(arch, error=CodecError)
    torch, zoo_image, load_pretrained = _modules()
    obj = _torch_load(path)
    if not isinstance(obj, dict):
        raise CodecError(f"{path}: not a codec checkpoint (holds a {type(obj).__name__}, expected a dict)")
    if obj.get("format") == FORMAT:
        if obj.get("version") != VERSION:
            raise CodecError(f"{path}: {FORMAT} version {obj.get('version')!r}; this noisestat reads version {VERSION}")
        stored, quality = obj.get("arch"), obj.get("quality")
        if stored not in ARCHS or not isinstance(quality, int) or quality not in QUALITIES[stored]:
            raise CodecError(f"{path}: bad arch {stored!r} or quality {quality!r} in the checkpoint")
        if arch is not None and arch != stored:
            raise CodecError(f"{path}: holds a {stored} model, not {arch}")
        if obj.get("channels") != 1 or not isinstance(obj.get("state_dict"), dict):
            raise CodecError(f"{path}: expected a 1-channel model and its state_dict")
        model = _load_into(build_model(stored, quality, channels=1), obj["state_dict"], str(path))
        loaded = LoadedCodec(model, stored, quality, 1, "noisestat", file_sha256(path))
    else:
        if "format" in obj:
            raise CodecError(f"{path}: unknown checkpoint format {obj['format']!r} (expected {FORMAT!r} "
                             f"or a CompressAI state dict)")
        state = obj["state_dict"] if isinstance(obj.get("state_dict"), dict) else obj
        if not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
            raise CodecError(f"{path}: not a codec checkpoint (expected {FORMAT!r} or a CompressAI state dict of tensors)")
        if arch is None:
            raise CodecError(f"{path}: a CompressAI state dict; say which architecture it is with arch=")
        state = load_pretrained(state)  # renames keys of older CompressAI releases
        cls = zoo_image.model_architectures[arch]
        try:
            model = cls.from_state_dict(state)
        except (RuntimeError, KeyError, ValueError, IndexError, AttributeError) as exc:
            raise CodecError(f"{path}: not a {arch} state dict ({_first_line(exc)[:200]})") from None
        first = next(m for m in model.g_a.modules() if isinstance(m, torch.nn.Conv2d))
        if first.in_channels != 3:
            raise CodecError(f"{path}: a {first.in_channels}-channel state dict without noisestat metadata")
        # Official files are named ARCH-QUALITY-HASH.pth.tar; the quality is not in the weights.
        match = re.search(r"-(\d)-[0-9a-f]{8}\.pth", path.name)
        loaded = LoadedCodec(model, arch, int(match.group(1)) if match else None, 3, "compressai", file_sha256(path))
    loaded.model.eval()
    # The entropy coder's tables must be derived from the weights just loaded, whatever the file held.
    loaded.model.update(force=True)
    return loaded


# --------------------------------------------------------------------------------------------------
# Coding

def normalise(image: np.ndarray):
    """Map ``image``'s own min..max to [0, 1].

    Returns
    -------
    x : ndarray of float32
    lo, hi : int or float
        The image's min and max (the side information the decoder needs).
    """
    lo, hi = image.min().item(), image.max().item()
    span = max(hi - lo, 1)
    return ((image.astype(np.float64) - lo) / span).astype(np.float32), lo, hi


def _padding(rows: int, cols: int) -> tuple[int, int]:
    return (-rows) % PAD_MULTIPLE, (-cols) % PAD_MULTIPLE


def encode(loaded: LoadedCodec, image: np.ndarray) -> tuple[bytes, dict]:
    """Encode a 2D integer image into one stream.

    Returns
    -------
    stream : bytes
        Header and entropy-coded strings (see the module docstring); its length is the
        compressed size.
    info : dict
        How it was coded: normalisation, padding, header and string bytes.
    """
    torch, _, _ = _modules()
    import torch.nn.functional as F

    image = np.asarray(image)
    if image.ndim != 2 or not np.issubdtype(image.dtype, np.integer):
        raise CodecError(f"learned codecs code 2D integer images; got {image.ndim}D {image.dtype}")
    rows, cols = image.shape
    x, lo, hi = normalise(image)
    pad_rows, pad_cols = _padding(rows, cols)
    tensor = torch.from_numpy(x)[None, None]
    if pad_rows or pad_cols:
        # Replicate the edge rather than pad with zeros: a step at the border would cost bits.
        tensor = F.pad(tensor, (0, pad_cols, 0, pad_rows), mode="replicate")
    if loaded.channels == 3:
        tensor = tensor.expand(-1, 3, -1, -1).contiguous()
    with torch.inference_mode():
        out = loaded.model.compress(tensor)
    # compress() gives one list of strings (one per batch item) per entropy model.
    strings = [bytes(s[0]) for s in out["strings"]]
    latent = tuple(int(v) for v in out["shape"])
    dtype = image.dtype.newbyteorder("<")
    header = (_HEADER.pack(rows, cols, latent[0], latent[1], len(strings), image.dtype.char.encode())
              + np.array([lo, hi], dtype=dtype).tobytes()
              + b"".join(_LENGTH.pack(len(s)) for s in strings[:-1]))
    stream = header + b"".join(strings)
    info = {"arch": loaded.arch, "quality": loaded.quality, "channels": loaded.channels,
            "checkpoint_source": loaded.source, "checkpoint_sha256": loaded.sha256,
            "normalisation": "per-image min..max to [0, 1]", "min": lo, "max": hi,
            "padding": {"bottom": pad_rows, "right": pad_cols, "mode": "replicate", "multiple": PAD_MULTIPLE},
            "header_bytes": len(header), "side_info_bytes": 2 * image.itemsize,
            "string_bytes": [len(s) for s in strings]}
    return stream, info


def decode(loaded: LoadedCodec, stream: bytes) -> np.ndarray:
    """Decode a stream from :func:`encode` with the same model; the image in its raw dtype.

    Values are un-normalised and rounded to the nearest integer (not truncated).
    """
    torch, _, _ = _modules()
    try:
        rows, cols, lat_rows, lat_cols, n_strings, char = _HEADER.unpack_from(stream, 0)
        dtype = np.dtype(char.decode()).newbyteorder("<")
        offset = _HEADER.size
        lo, hi = np.frombuffer(stream, dtype=dtype, count=2, offset=offset).tolist()
        offset += 2 * dtype.itemsize
        lengths = [_LENGTH.unpack_from(stream, offset + 4 * i)[0] for i in range(n_strings - 1)]
        offset += 4 * (n_strings - 1)
    except (struct.error, TypeError, ValueError) as exc:
        raise CodecError(f"not a learned-codec stream ({_first_line(exc)})") from None
    strings = []
    for length in lengths:
        strings.append(stream[offset:offset + length])
        offset += length
    strings.append(stream[offset:])
    with torch.inference_mode():
        out = loaded.model.decompress([[s] for s in strings], [lat_rows, lat_cols])
    x_hat = out["x_hat"][0].mean(dim=0)  # 3-channel models: average the channels back to grey
    x_hat = x_hat[:rows, :cols].double().numpy()
    values = lo + x_hat * max(hi - lo, 1)
    return to_dtype(values, np.dtype(char.decode()))  # rounds to nearest, clips to the dtype


# --------------------------------------------------------------------------------------------------
# Training

def _rate(likelihoods: dict, n_pixels: int):
    import torch

    return sum(torch.log2(v).sum() for v in likelihoods.values()) / -n_pixels


def train_codec(images, *, arch: str, quality: int, steps: int, seed: int, output, batch: int = 8,
                patch: int = 128, lr: float = 1e-4) -> dict:
    """Train a 1-channel learned codec on random patches of ``images``; write its checkpoint.

    Each image is normalised by its own min..max (as the codec does), and the model minimises
    CompressAI's rate-distortion loss ``lambda * 255^2 * MSE + bpp`` with the lambda that
    CompressAI publishes for ``quality``. The main parameters are trained with Adam at ``lr``;
    the entropy bottleneck's quantiles with a separate Adam on the auxiliary loss. Runs on CPU;
    the same inputs, ``seed`` and thread count give the same checkpoint.

    Parameters
    ----------
    images : sequence of path-like
        2D raw images (read with :func:`noisestat.io.read_image`), each at least ``patch`` a side.
    arch : str
        One of :data:`ARCHS`.
    quality : int
        CompressAI quality level (1-8; 1-6 for cheng2020-*).
    steps : int
        Optimiser steps, >= 1.
    seed : int
        Seeds the weight initialisation, the quantisation noise and the patch positions.
    output : path-like
        Checkpoint to write (atomically).
    batch, patch : int
        Patches per step and their side in pixels (a multiple of 64).
    lr : float
        Learning rate of the main optimiser.

    Returns
    -------
    dict
        ``arch``, ``quality``, ``lambda``, ``steps``, ``seed``, the last step's ``loss``,
        ``bpp``, ``mse`` and ``aux_loss``, ``seconds``, ``threads`` and ``output``.
    """
    _check_arch(arch, quality)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise InputError(f"steps must be an integer >= 1; got {steps!r}")
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise InputError(f"batch must be an integer >= 1; got {batch!r}")
    if isinstance(patch, bool) or not isinstance(patch, (int, np.integer)) or patch < PAD_MULTIPLE \
            or patch % PAD_MULTIPLE:
        raise InputError(f"patch must be a positive multiple of {PAD_MULTIPLE}; got {patch!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise InputError(f"lr must be a positive number; got {lr!r}")
    if isinstance(images, (str, os.PathLike)) or len(images) == 0:
        raise InputError("give at least one training image (a list of paths)")
    output = Path(output)
    if output.is_dir():
        raise InputError(f"{output}: is a folder, expected a checkpoint file name")
    if not output.parent.is_dir():
        raise InputError(f"{output}: folder {output.parent} does not exist")
    arrays = []
    for path in images:
        image = read_image(path)
        if min(image.shape) < patch:
            raise InputError(f"{path}: {image.shape[0]}x{image.shape[1]} is smaller than the {patch}-pixel patches")
        arrays.append(normalise(image)[0])
    torch, _, _ = _modules()
    import torch.nn.functional as F

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    # fork_rng: seed torch's global generator (weight init, quantisation noise) without changing
    # the caller's random state.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(arch, quality, channels=1)
        model.train()
        main = [p for n, p in model.named_parameters() if not n.endswith("quantiles")]
        aux = [p for n, p in model.named_parameters() if n.endswith("quantiles")]
        optimiser = torch.optim.Adam(main, lr=lr)
        aux_optimiser = torch.optim.Adam(aux, lr=1e-3)
        lmbda = LAMBDAS[quality]
        for _ in range(steps):
            picks = rng.integers(len(arrays), size=batch)
            patches = []
            for k in picks:
                a = arrays[k]
                r = rng.integers(a.shape[0] - patch + 1)
                c = rng.integers(a.shape[1] - patch + 1)
                patches.append(a[r:r + patch, c:c + patch])
            x = torch.from_numpy(np.stack(patches))[:, None]
            out = model(x)
            bpp = _rate(out["likelihoods"], batch * patch * patch)
            mse = F.mse_loss(out["x_hat"], x)
            loss = lmbda * 255 ** 2 * mse + bpp
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(main, 1.0)  # as CompressAI's training example: early steps can blow up
            optimiser.step()
            aux_loss = model.aux_loss()
            aux_optimiser.zero_grad()
            aux_loss.backward()
            aux_optimiser.step()
        model.eval()
        model.update(force=True)
    seconds = time.perf_counter() - started
    summary = {"arch": arch, "quality": int(quality), "lambda": lmbda, "steps": int(steps), "seed": int(seed),
               "loss": float(loss.item()), "bpp": float(bpp.item()), "mse": float(mse.item()),
               "aux_loss": float(aux_loss.item()), "seconds": round(seconds, 3), "threads": torch.get_num_threads(),
               "batch": int(batch), "patch": int(patch), "lr": float(lr)}
    training = {**summary, "images": [str(p) for p in images], "sha256": [file_sha256(p) for p in images]}
    save_checkpoint(model, output, arch=arch, quality=quality, training=training)
    return {**summary, "output": str(output)}
