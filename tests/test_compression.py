"""noisestat.bench: compress-bench on simulated 12-bit images and on a real 12-bit image."""

import csv
import io
import json
import math

import numpy as np
import pytest
import tifffile
from conftest import shared_data

from noisestat.camera import CameraProfile
from noisestat.cli import main
from noisestat.bench import compress_bench, format_bench, noise_sigma_dn
from noisestat.errors import CodecError, InputError, ProfileError
from noisestat.simulate import acquire, simulate_scene

CAMERA12 = CameraProfile(gain_dn_per_e=0.5, offset_dn=100.0, read_noise_dn=2.0, bit_depth=12)
SPECS = ["lossless", "jpeg:ratio=10", "bitdepth:bits=8,mode=minmax"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Two simulated 12-bit images (different scenes) and their camera profile, as files."""
    d = tmp_path_factory.mktemp("bench")
    paths = []
    for i in range(2):
        electrons, _ = simulate_scene((192, 192), rng=100 + i)
        raw = acquire(electrons, CAMERA12, 200 + i)
        assert raw.max() <= 4095
        paths.append(d / f"img{i}.tif")
        tifffile.imwrite(paths[-1], raw)
    camera = d / "camera.json"
    camera.write_text(json.dumps({"gain_dn_per_e": 0.5, "offset_dn": 100.0, "read_noise_dn": 2.0, "bit_depth": 12}))
    return paths, camera


@pytest.fixture(scope="module")
def bench(files, tmp_path_factory):
    paths, camera = files
    out = tmp_path_factory.mktemp("run") / "out1"
    return compress_bench(paths, SPECS, out, camera_path=camera, jobs=1), out


def read_csv(path):
    return list(csv.DictReader(io.StringIO(path.read_text())))


def test_one_row_per_image_and_codec(bench, files):
    result, out = bench
    rows = read_csv(out / "metrics.csv")
    assert len(rows) == len(result.rows) == 2 * len(SPECS)
    assert {(r["image"], r["spec"]) for r in rows} == {(str(p), s) for p in files[0] for s in SPECS}
    for column in ("image", "spec", "compression_ratio", "n_bytes", "mse", "psnr", "ssim", "ms_ssim", "pearson",
                   "bias", "max_abs_error", "error_sigma_rms", "noise_inflation", "settings"):
        assert column in rows[0]
    jpeg = [r for r in rows if r["spec"] == "jpeg:ratio=10"]
    for r in jpeg:
        assert float(r["compression_ratio"]) == pytest.approx(10, rel=0.05)
        assert json.loads(r["settings"])["codec"] == "jpeg"


def test_lossless_is_exact(bench):
    result, out = bench
    for r in read_csv(out / "metrics.csv"):
        if r["spec"] == "lossless":
            assert float(r["mse"]) == 0.0 and r["psnr"] == "inf" and float(r["error_sigma_rms"]) == 0.0
    for row in result.rows:
        if row["spec"] == "lossless":
            assert row["mse"] == 0.0 and row["psnr"] == math.inf and row["noise_inflation"] == 1.0


def test_averages_are_over_both_images(bench):
    result, out = bench
    summary = json.loads((out / "summary.json").read_text())
    assert [c["spec"] for c in summary["codecs"]] == SPECS
    for avg in summary["codecs"]:
        rows = [r for r in result.rows if r["spec"] == avg["spec"]]
        assert avg["n_images"] == len(rows) == 2
        if avg["spec"] == "lossless":
            assert avg["psnr"] == "inf" and avg["mse"] == 0.0
            continue
        for key in ("compression_ratio", "mse", "psnr", "ssim", "ms_ssim", "pearson", "error_sigma_rms",
                    "noise_inflation"):
            if key != "compression_ratio":  # bitdepth's ratio depends only on the image size
                assert rows[0][key] != rows[1][key]  # two different images: the mean is not either one
            assert avg[key] == pytest.approx((rows[0][key] + rows[1][key]) / 2, rel=1e-12)
    prov = summary["provenance"]
    assert prov["noisestat"] and len(prov["images"]) == 2 and len(prov["images"][0]["sha256"]) == 64
    assert prov["camera"]["bit_depth"] == 12 and prov["images"][0]["data_range_dn"] == 4095.0


def test_jobs_do_not_change_results(bench, files, tmp_path):
    _, out1 = bench
    paths, camera = files
    compress_bench(paths, SPECS, tmp_path / "out2", camera_path=camera, jobs=2)
    assert (tmp_path / "out2" / "metrics.csv").read_bytes() == (out1 / "metrics.csv").read_bytes()
    assert (tmp_path / "out2" / "summary.json").read_bytes() == (out1 / "summary.json").read_bytes()


def test_format_bench_one_line_per_codec(bench):
    result, _ = bench
    lines = format_bench(result).splitlines()
    assert "ms_ssim" in lines[0] and "noise_infl" in lines[0] and "err/sigma_rms" in lines[0]
    assert [line.split()[0] for line in lines[1:1 + len(SPECS)]] == SPECS
    assert lines[1].split()[1] == "2" and lines[1].split()[3] == "inf"


def test_without_camera_no_sigma_columns(files, tmp_path):
    paths, _ = files
    result = compress_bench(paths[:1], ["lossless"], tmp_path / "o")
    header = (tmp_path / "o" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert "error_sigma_rms" not in header and "noise_inflation" not in format_bench(result)
    assert result.rows[0]["data_range_dn"] == 4095.0  # smallest standard depth holding a 12-bit max


def test_sigma_from_profile_and_pixel_maps():
    raw = np.array([[100, 300], [1100, 50]], dtype=np.uint16)
    sigma = noise_sigma_dn(raw, CAMERA12)
    assert sigma == pytest.approx(np.sqrt(0.5 * np.maximum(raw - 100.0, 0) + 4.0))
    from noisestat.camera import PixelMaps

    maps = PixelMaps(np.full((2, 2), 50.0), np.full((2, 2), 9.0), np.full((2, 2), 2.0))
    cam = CameraProfile(0.5, 100.0, 2.0, 12, pixel_maps=maps)
    assert noise_sigma_dn(raw, cam) == pytest.approx(np.sqrt(2.0 * (raw - 50.0) + 9.0))
    silent = CameraProfile(0.5, 100.0, 0.0, 12)  # no read noise: the floor keeps sigma > 0 at the offset
    assert noise_sigma_dn(raw, silent)[1, 1] == pytest.approx(math.sqrt(1 / 12))


@pytest.mark.parametrize("case", ["bad_spec", "bad_key", "bad_image", "missing_image", "bad_camera",
                                  "camera_does_not_fit", "duplicate"])
def test_bad_input_one_line_and_no_output(files, tmp_path, capsys, case):
    paths, camera = files
    images, specs, cam, err = list(paths), ["lossless"], camera, CodecError
    if case == "bad_spec":
        specs = ["lossless", "nocodec:x=1"]
    elif case == "bad_key":
        specs = ["jpeg:ratio=10,colour=1"]
    elif case == "bad_image":
        bad = tmp_path / "bad.tif"
        bad.write_text("not a tiff")
        images, err = [paths[0], bad], InputError
    elif case == "missing_image":
        images, err = [tmp_path / "none.tif"], InputError
    elif case == "bad_camera":
        cam = tmp_path / "cam.json"
        cam.write_text("{}")
        err = ProfileError
    elif case == "camera_does_not_fit":  # every pixel below the offset: refused as assess refuses it
        cam = tmp_path / "cam.json"
        cam.write_text(json.dumps({"gain_dn_per_e": 0.5, "offset_dn": 4000.0, "read_noise_dn": 2.0, "bit_depth": 12}))
        err = ProfileError
    else:
        specs = ["lossless", "lossless"]
    out = tmp_path / "out"
    with pytest.raises(err) as info:
        compress_bench(images, specs, out, camera_path=cam)
    assert "\n" not in str(info.value)
    assert not out.exists() and not list(tmp_path.glob(".out*"))
    argv = [str(p) for p in images] + sum((["--codec", s] for s in specs), []) + ["--camera", str(cam), "-o", str(out)]
    assert main(["compress-bench", *argv]) == 1
    _, stderr = capsys.readouterr()
    assert len(stderr.strip().splitlines()) == 1 and stderr.startswith("noisestat: error:")
    assert not out.exists()


def test_failed_run_leaves_existing_folder_alone(files, tmp_path, monkeypatch):
    from noisestat.bench import _run

    paths, _ = files
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    (out / ".noisestat-output").write_text('{"noisestat": "0", "files": ["keep.txt"]}')  # a previous output: may be replaced
    real = _run._run_pair

    def fails_on_jpeg(name, image, codec, *args):  # a codec library failing during the coding
        return ("error", f"{codec.spec} on {name}: RuntimeError: broken") if codec.name == "jpeg" else \
            real(name, image, codec, *args)

    monkeypatch.setattr(_run, "_run_pair", fails_on_jpeg)
    with pytest.raises(CodecError, match="RuntimeError: broken"):
        compress_bench(paths, ["lossless", "jpeg:quality=90"], out)
    assert sorted(p.name for p in out.iterdir()) == [".noisestat-output", "keep.txt"]


def test_an_unreachable_ratio_is_reported_and_the_other_settings_run(files, tmp_path, capsys):
    paths, camera = files
    specs = ["lossless", "jpeg:ratio=5000", "jpeg:ratio=10"]
    result = compress_bench(paths, specs, tmp_path / "out", camera_path=camera)
    rows = read_csv(tmp_path / "out" / "metrics.csv")
    assert [(r["image"], r["spec"]) for r in rows] == [(str(p), s) for p in paths for s in specs]
    for r in rows:
        if r["spec"] == "jpeg:ratio=5000":
            assert r["status"].startswith("not reachable: jpeg:ratio=5000: ratio 5000 cannot be reached")
            assert r["compression_ratio"] == r["psnr"] == r["error_sigma_rms"] == ""
        else:
            assert r["status"] == "ok" and float(r["compression_ratio"]) > 1
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    by_spec = {c["spec"]: c for c in summary["codecs"]}
    assert by_spec["jpeg:ratio=5000"]["n_images"] == 0 and by_spec["jpeg:ratio=5000"]["n_not_reachable"] == 2
    assert by_spec["jpeg:ratio=5000"]["psnr"] is None
    assert by_spec["jpeg:ratio=10"]["n_images"] == 2 and by_spec["jpeg:ratio=10"]["compression_ratio"] == \
        pytest.approx(10, rel=0.05)
    assert [(n["image"], n["spec"]) for n in summary["not_reachable"]] == [(str(p), "jpeg:ratio=5000") for p in paths]
    table = format_bench(result)
    assert "jpeg:ratio=5000: not reachable on 2 of 2 image(s) (ratio 5000 cannot be reached" in table
    argv = [*map(str, paths), *sum((["--codec", s] for s in specs), []), "-o", str(tmp_path / "cli")]
    assert main(["compress-bench", *argv]) == 0
    assert "not reachable on 2 of 2" in capsys.readouterr().out


def test_camera_profile_is_checked_against_each_image_as_assess_does(files, tmp_path, capsys):
    paths, _ = files
    image = tifffile.imread(paths[0])
    offset = float(np.quantile(image, 0.8))   # 80 % of the pixels below it: warned, not refused
    camera = tmp_path / "high_offset.json"
    camera.write_text(json.dumps({"gain_dn_per_e": 0.5, "offset_dn": offset, "read_noise_dn": 2.0, "bit_depth": 12}))
    result = compress_bench(paths[:1], ["noiseaware"], tmp_path / "out", camera_path=camera)
    assert len(result.warnings) == 1 and f"{paths[0]}: " in result.warnings[0]
    assert "below the offset" in result.warnings[0]
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["warnings"] == list(result.warnings)
    code = main(["compress-bench", str(paths[0]), "--codec", "noiseaware", "--camera", str(camera),
                 "-o", str(tmp_path / "cli")])
    _, err = capsys.readouterr()
    assert code == 0 and err.startswith("noisestat: warning: ") and "below the offset" in err


def test_real_12bit_image(tmp_path):
    path = shared_data("bbbc022-cellpainting-12bit", "IXMtest_A02_s9.tif")
    channel = tifffile.imread(path)[0]
    assert channel.ndim == 2 and channel.max() <= 4095
    tifffile.imwrite(tmp_path / "ch0.tif", channel)
    # (a quality, not a target ratio: JPEG's integer quality steps jump over some ratios on this image)
    result = compress_bench([tmp_path / "ch0.tif"], ["lossless", "jpeg:quality=90", "bitdepth:bits=8,mode=minmax"],
                            tmp_path / "out", jobs=2)
    lossless, jpeg, eight = result.rows
    assert lossless["mse"] == 0.0 and lossless["psnr"] == math.inf and lossless["compression_ratio"] > 1
    assert lossless["data_range_dn"] == 4095.0 and lossless["ms_ssim_scales"] == 5
    assert jpeg["compression_ratio"] > 10 and 0 < jpeg["mse"] and 30 < jpeg["psnr"] < math.inf
    assert 0.5 < jpeg["ms_ssim"] < 1 and 0.5 < jpeg["ssim"] < 1 and jpeg["pearson"] > 0.9
    # 8-bit minmax: steps of (max - min) / 255 DN (~5.2 DN here), errors within half a step rounded,
    # rmse about step / sqrt(12)
    step = (int(channel.max()) - int(channel.min())) / 255
    assert eight["max_abs_error"] <= math.ceil(step / 2) + 0.5
    assert eight["rmse"] == pytest.approx(math.sqrt(step**2 / 12 + 1 / 12), rel=0.15)
    assert eight["psnr"] > jpeg["psnr"] and eight["ms_ssim"] > jpeg["ms_ssim"]
