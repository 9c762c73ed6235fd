"""The learned codec (CompressAI): training, checkpoints, real bitstreams, and its failure messages.

Skipped as a whole when the optional extra ``noisestat[learned]`` (torch, compressai) is absent.
Models here are trained for a few steps on small patches: they code badly, but with a real
entropy coder, which is what these tests are about.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile

pytest.importorskip("torch", reason="the learned codecs need the optional extra noisestat[learned] (torch)")

from noisestat import assess  # noqa: E402
from noisestat.codecs import _compressai as learned  # noqa: E402
from noisestat.codecs import REGISTRY, parse_spec  # noqa: E402
from noisestat.errors import CodecError, InputError  # noqa: E402
from noisestat.simulate._camera import acquire, simulate_scene  # noqa: E402

from conftest import CAMERA  # noqa: E402

try:
    learned._modules()
except CodecError as exc:  # torch without compressai
    pytest.skip(f"the learned codecs need the optional extra noisestat[learned]: {exc}", allow_module_level=True)

import torch  # noqa: E402

ARCH = "bmshj2018-factorized"


class Payload:
    """A Python object that a weights-only load must refuse to rebuild."""

    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """Two simulated acquisitions of 192x160 scenes, written as TIFF."""
    d = tmp_path_factory.mktemp("learned_images")
    paths = []
    for seed in (1, 2):
        electrons, _ = simulate_scene((192, 160), rng=seed)
        path = d / f"raw{seed}.tif"
        tifffile.imwrite(path, acquire(electrons, CAMERA, seed + 10))
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def trained(images, tmp_path_factory):
    """A 1-channel checkpoint trained for a few steps on small patches, and the training summary."""
    out = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    summary = learned.train_codec(images, arch=ARCH, quality=1, steps=4, seed=3, output=out, batch=2, patch=64)
    return out, summary


def one_line(exc_info) -> str:
    text = str(exc_info.value)
    assert "\n" not in text
    return text


def test_codec_is_registered_as_needing_the_extra():
    cls = REGISTRY["compressai"]
    assert cls.extra == "learned" and not cls.lossless and not cls.needs_profile
    assert [k.name for k in cls.keys] == ["arch", "checkpoint"]


def test_listing_and_missing_extra_without_torch(tmp_path, trained):
    """With torch unimportable the codec is still listed, and using it names the extra on one line."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] in ('torch', 'torchvision', 'compressai'):\n"
        "            raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from noisestat.codecs import describe_codecs, parse_spec\n"
        "from noisestat.errors import CodecError\n"
        "import numpy as np\n"
        "assert 'compressai:' in describe_codecs()\n"
        f"codec = parse_spec('compressai:checkpoint={trained[0]}')\n"
        "try:\n"
        "    codec.prepare(np.ones((8, 8), np.uint16), None)\n"
        "except CodecError as exc:\n"
        "    print(exc)\n"
        "assert 'torch' not in sys.modules\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == learned.MISSING_EXTRA


def test_codec_arch_choices_match_the_models():
    assert REGISTRY["compressai"].keys[0].choices == learned.ARCHS


def test_hyperprior_stream_with_two_strings(images, tmp_path):
    """Hyperprior models write two strings (y and z); the header's length field splits them again."""
    out = tmp_path / "hyper.ckpt"
    learned.train_codec(images[:1], arch="bmshj2018-hyperprior", quality=1, steps=1, seed=0, output=out,
                        batch=1, patch=64)
    loaded = learned.load_checkpoint(out, "bmshj2018-hyperprior")
    image = tifffile.imread(images[1])[:100, :90]
    stream, info = learned.encode(loaded, image)
    assert len(info["string_bytes"]) == 2 and info["header_bytes"] == 18 + 2 * 2 + 4
    decoded = learned.decode(loaded, stream)
    assert decoded.dtype == image.dtype and decoded.shape == image.shape
    assert learned.encode(learned.load_checkpoint(out), image)[0] == stream


def test_single_channel_models_keep_the_structure():
    for arch in ("bmshj2018-hyperprior", "cheng2020-anchor"):
        one, three = learned.build_model(arch, 1), learned.build_model(arch, 1, channels=3)
        assert [type(m) for m in one.modules()] == [type(m) for m in three.modules()]
        assert one(torch.rand(1, 1, 64, 64))["x_hat"].shape == (1, 1, 64, 64)


def test_training_summary_and_checkpoint_format(trained):
    path, summary = trained
    assert summary["steps"] == 4 and summary["seed"] == 3 and summary["lambda"] == learned.LAMBDAS[1]
    for key in ("loss", "bpp", "mse", "seconds"):
        assert np.isfinite(summary[key])
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    assert ckpt["format"] == learned.FORMAT and ckpt["version"] == 1
    assert (ckpt["arch"], ckpt["quality"], ckpt["channels"]) == (ARCH, 1, 1)
    assert ckpt["state_dict"]["g_a.0.weight"].shape[1] == 1
    assert ckpt["training"]["images"] and ckpt["training"]["sha256"]
    assert not list(path.parent.glob(".*.tmp"))  # the atomic write left no temporary file


def test_training_is_seeded(images, trained, tmp_path):
    again = learned.train_codec(images, arch=ARCH, quality=1, steps=4, seed=3, output=tmp_path / "b.ckpt",
                                batch=2, patch=64)
    assert again["loss"] == trained[1]["loss"]
    a = torch.load(trained[0], weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "b.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_round_trip_real_bitstream_and_determinism(trained, images):
    image = tifffile.imread(images[0])
    spec = f"compressai:arch={ARCH},checkpoint={trained[0]}"
    first, second = parse_spec(spec), parse_spec(spec)
    first.prepare(image, None)
    a, b = first.apply(image, None), second.apply(image, None)
    assert a.decoded.dtype == image.dtype and a.decoded.shape == image.shape
    assert a.n_bytes == len(learned.encode(first._model(), image)[0])
    assert a.compression_ratio > 1
    assert a.n_bytes == b.n_bytes and np.array_equal(a.decoded, b.decoded)
    stream_a, _ = learned.encode(first._model(), image)
    stream_b, _ = learned.encode(second._model(), image)
    assert stream_a == stream_b
    info = a.info
    assert (info["arch"], info["quality"], info["channels"]) == (ARCH, 1, 1)
    assert (info["min"], info["max"]) == (int(image.min()), int(image.max()))
    assert info["padding"] == {"bottom": 0, "right": 32, "mode": "replicate", "multiple": 64}
    assert a.n_bytes == info["header_bytes"] + sum(info["string_bytes"])
    assert info["side_info_bytes"] == 4 and "min..max" in info["normalisation"]
    json.dumps(info)
    # The decoder needs only the stream and the model; decoding rounds within the image's range.
    decoded = learned.decode(first._model(), stream_a)
    assert np.array_equal(decoded, a.decoded)
    assert a.decoded.min() >= image.min() and a.decoded.max() <= image.max()


def test_decode_rounds_to_nearest(trained):
    """A constant image decodes to itself: un-normalised values are rounded, not truncated."""
    loaded = learned.load_checkpoint(trained[0])
    image = np.full((70, 50), 1234, np.uint16)
    stream, info = learned.encode(loaded, image)
    assert np.array_equal(learned.decode(loaded, stream), image)
    assert info["padding"]["bottom"] == 58 and info["padding"]["right"] == 14


def test_through_assess(trained):
    electrons, truth = simulate_scene((128, 128), rng=5)
    raw = acquire(electrons, CAMERA, 6)
    from noisestat.simulate import sparse_labels

    result = assess(raw, CAMERA, [f"compressai:checkpoint={trained[0]}"], labels=sparse_labels(truth, rng=7),
                    replicas=3, seed=0)
    (coded,) = result.codecs
    assert coded.compression_ratio > 1 and coded.info["codec"] == "compressai"


def test_unsafe_checkpoint_is_refused(tmp_path, capsys):
    path = tmp_path / "unsafe.ckpt"
    model = learned.build_model(ARCH, 1)
    torch.save({"format": learned.FORMAT, "version": 1, "arch": ARCH, "quality": 1, "channels": 1,
                "state_dict": model.state_dict(), "payload": Payload()}, path)
    with pytest.raises(CodecError) as exc:
        learned.load_checkpoint(path)
    assert "refused" in one_line(exc)
    assert "must never run" not in capsys.readouterr().out


@pytest.mark.parametrize("content, message", [
    ({"format": "other-format", "state_dict": {}}, "unknown checkpoint format"),
    ({"format": learned.FORMAT, "version": 2}, "version 2"),
    ({"weights": "not tensors"}, "not a codec checkpoint"),
    ([1, 2, 3], "not a codec checkpoint"),
])
def test_wrong_format_checkpoints(tmp_path, content, message):
    path = tmp_path / "wrong.ckpt"
    torch.save(content, path)
    with pytest.raises(CodecError) as exc:
        learned.load_checkpoint(path, ARCH)
    assert message in one_line(exc)


def test_not_a_checkpoint_and_missing_and_mismatched(tmp_path, trained):
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint\n")
    with pytest.raises(CodecError) as exc:
        learned.load_checkpoint(text)
    assert "not a PyTorch checkpoint" in one_line(exc)
    with pytest.raises(CodecError) as exc:
        parse_spec(f"compressai:checkpoint={tmp_path / 'missing.ckpt'}")
    assert "no such file" in one_line(exc)
    with pytest.raises(CodecError) as exc:
        parse_spec("compressai:arch=resnet50,checkpoint=x")
    assert "arch must be one of" in one_line(exc)
    with pytest.raises(CodecError) as exc:
        parse_spec("compressai:arch=mbt2018").prepare(np.ones((8, 8), np.uint16), None)
    assert "needs checkpoint=" in one_line(exc)
    with pytest.raises(CodecError) as exc:
        parse_spec(f"compressai:arch=bmshj2018-hyperprior,checkpoint={trained[0]}").prepare(
            np.ones((8, 8), np.uint16), None)
    assert "holds a bmshj2018-factorized model" in one_line(exc)


def test_training_input_errors(images, tmp_path):
    out = tmp_path / "x.ckpt"
    with pytest.raises(InputError) as exc:
        learned.train_codec(images, arch="resnet50", quality=1, steps=1, seed=0, output=out)
    assert "unknown arch" in one_line(exc)
    with pytest.raises(InputError) as exc:
        learned.train_codec(images, arch=ARCH, quality=1, steps=0, seed=0, output=out)
    assert "steps" in one_line(exc)
    with pytest.raises(InputError) as exc:
        learned.train_codec(images, arch="cheng2020-anchor", quality=7, steps=1, seed=0, output=out)
    assert "quality" in one_line(exc)
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"not a tiff")
    with pytest.raises(InputError) as exc:
        learned.train_codec([bad], arch=ARCH, quality=1, steps=1, seed=0, output=out)
    assert "not a readable image" in one_line(exc)
    with pytest.raises(InputError) as exc:
        learned.train_codec(images, arch=ARCH, quality=1, steps=1, seed=0, output=out, patch=256)
    assert "smaller than" in one_line(exc)
    assert not out.exists()


def test_official_three_channel_state_dict(tmp_path):
    """A CompressAI state dict (as its zoo distributes it) codes grey images replicated to 3 channels."""
    from compressai.zoo import bmshj2018_factorized

    torch.manual_seed(0)
    model = bmshj2018_factorized(quality=2, pretrained=False)
    path = tmp_path / "bmshj2018-factorized-prior-2-87279a02.pth.tar"  # CompressAI's naming: quality 2
    torch.save(model.state_dict(), path)
    with pytest.raises(CodecError) as exc:
        learned.load_checkpoint(path)
    assert "arch=" in one_line(exc)
    electrons, _ = simulate_scene((100, 90), rng=8)
    image = acquire(electrons, CAMERA, 9)
    codec = parse_spec(f"compressai:arch={ARCH},checkpoint={path}")
    codec.prepare(image, None)
    result = codec.apply(image, None)
    assert result.decoded.dtype == image.dtype and result.decoded.shape == image.shape
    assert result.n_bytes > 0 and np.isfinite(result.compression_ratio)
    assert (result.info["channels"], result.info["quality"], result.info["checkpoint_source"]) == (3, 2, "compressai")
    again = parse_spec(f"compressai:arch={ARCH},checkpoint={path}").apply(image, None)
    assert np.array_equal(again.decoded, result.decoded) and again.n_bytes == result.n_bytes
    with pytest.raises(CodecError) as exc:
        learned.load_checkpoint(path, "bmshj2018-hyperprior")
    assert "not a bmshj2018-hyperprior state dict" in one_line(exc)


def test_cli_codec_train(images, tmp_path, capsys):
    from noisestat.cli import main

    out = tmp_path / "cli.ckpt"
    assert main(["codec-train", *map(str, images), "--arch", ARCH, "--quality", "1", "--steps", "1",
                 "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "bpp" in printed and out.exists()
    assert main(["codec-train", str(images[0]), "--arch", "nope", "--quality", "1", "--steps", "1",
                 "-o", str(out)]) == 1
    assert "unknown arch" in capsys.readouterr().err
