"""``hfmagic upscale`` and ``hfmagic sample`` end to end, and a CLI that does not import torch to parse."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hfmagic import EDSR, DCGANConfig, DCGANGenerator, EDSRConfig, SuperResolutionPipeline
from hfmagic.cli import main
from hfmagic.pipelines import DCGANPipeline

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sr_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("edsr")
    torch.manual_seed(0)
    EDSR(EDSRConfig(upscale_factor=2, mid_channels=4, num_blocks=1)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def gan_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dcgan")
    torch.manual_seed(0)
    DCGANGenerator(DCGANConfig(image_size=8, noise_size=4, generator_base_channels=8, discriminator_base_channels=4)).save_pretrained(folder)
    return folder


def write_image(path, h, w, mode="RGB", seed=0):
    channels = {"RGB": 3, "RGBA": 4, "L": None}[mode]
    shape = (h, w) if channels is None else (h, w, channels)
    Image.fromarray(np.random.RandomState(seed).randint(0, 256, shape, dtype=np.uint8)).save(path)


def test_upscale_goes_on_after_an_unreadable_image(sr_model, tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    write_image(inputs / "a.png", 8, 6)
    write_image(inputs / "b.jpg", 5, 7, mode="L")
    (inputs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    (inputs / "notes.txt").write_text("not an image, and not picked up from a folder")
    single = tmp_path / "c.png"
    write_image(single, 4, 4, mode="RGBA")
    out = tmp_path / "out"

    code = main(["upscale", str(inputs), str(single), "--model", str(sr_model), "--output", str(out), "--device", "cpu"])

    assert code == 1
    err = capsys.readouterr().err
    assert "broken.png" in err and "error" in err
    assert "wrote 3 image(s)" in err and "1 failed" in err
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.png", "c.png"]
    pipe = SuperResolutionPipeline.from_pretrained(sr_model, device="cpu")
    for name, size, mode in (("a", (12, 16), "RGB"), ("b", (14, 10), "L"), ("c", (8, 8), "RGBA")):
        result = Image.open(out / f"{name}.png")
        assert result.size == size and result.mode == mode
        source = single if name == "c" else next(inputs.glob(f"{name}.*"))
        assert np.array_equal(np.asarray(result), np.asarray(pipe(source)))


def test_upscale_with_tiles_exit_code_zero(sr_model, tmp_path, capsys):
    write_image(tmp_path / "x.png", 11, 9, seed=3)
    write_image(tmp_path / "sub_x.png", 6, 6, seed=4)
    whole, tiled = tmp_path / "whole", tmp_path / "tiled"
    common = ["--model", str(sr_model), "--device", "cpu"]
    assert main(["upscale", str(tmp_path / "x.png"), "--output", str(whole), *common]) == 0
    args = ["upscale", str(tmp_path / "x.png"), str(tmp_path / "sub_x.png"), "--output", str(tiled), "--tile", "4"]
    assert main([*args, "--tile-overlap", "6", "--batch-size", "2", *common]) == 0  # 6 = receptive field
    a, b = np.asarray(Image.open(whole / "x.png")), np.asarray(Image.open(tiled / "x.png"))
    assert a.shape == b.shape == (22, 18, 3)
    assert np.abs(a.astype(int) - b).max() <= 1  # default kernels: a rare one-step flip
    exact_whole, exact_tiled = tmp_path / "exact_whole", tmp_path / "exact_tiled"
    assert main(["upscale", str(tmp_path / "x.png"), "--output", str(exact_whole), "--exact", *common]) == 0
    assert main(["upscale", str(tmp_path / "x.png"), "--output", str(exact_tiled), "--tile", "4", "--exact", *common]) == 0
    c, d = np.asarray(Image.open(exact_whole / "x.png")), np.asarray(Image.open(exact_tiled / "x.png"))
    assert np.array_equal(c, d) and np.abs(c.astype(int) - a).max() <= 1
    assert (tiled / "sub_x.png").exists()


def test_upscale_writes_16bit_pngs_for_16bit_inputs(sr_model, tmp_path, capsys):
    from test_image16 import write_tiff

    from hfmagic.data import read_image, save_image

    y, x = np.mgrid[0:9, 0:7]
    rgba = np.stack([(y * 4099 + x * 2311 + k * 6007) * 7 % 65536 for k in range(4)], axis=2).astype(np.uint16)
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.fromarray(rgba[:, :, 0]).save(inputs / "gray.png")  # Pillow: 16-bit grayscale "I;16"
    save_image(rgba[:, :, :3], inputs / "rgb.png")
    (inputs / "rgba.tif").write_bytes(write_tiff(rgba, compression=8, predictor=2))
    common = ["--model", str(sr_model), "--device", "cpu", "--dtype", "float32"]
    assert main(["upscale", str(inputs), "--output", str(tmp_path / "out"), *common]) == 0
    assert "wrote 3 image(s)" in capsys.readouterr().err
    pipe = SuperResolutionPipeline.from_pretrained(sr_model, device="cpu", dtype="float32")
    for name, channels in (("gray", 0), ("rgb", 3), ("rgba", 4)):
        data = (tmp_path / "out" / f"{name}.png").read_bytes()
        assert data[24] == 16  # IHDR bit depth
        result = np.asarray(read_image(data))
        assert result.dtype == np.uint16 and result.shape == ((18, 14, channels) if channels else (18, 14))
        source = next(inputs.glob(f"{name}.*"))
        np.testing.assert_array_equal(result, pipe(source))
        assert (result % 257 != 0).mean() > 0.9  # not 8-bit levels
    # exact mode: tiled output equals the whole-image output bit for bit, in 16 bits too
    for folder, extra in (("whole", []), ("tiled", ["--tile", "4"])):
        assert main(["upscale", str(inputs / "rgba.tif"), "--output", str(tmp_path / folder), "--exact", *extra, *common]) == 0
    whole, tiled = (read_image(tmp_path / folder / "rgba.png") for folder in ("whole", "tiled"))
    assert whole.dtype == np.uint16 and np.array_equal(whole, tiled)


def test_upscale_name_clashes_and_missing_inputs(sr_model, tmp_path, capsys):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    (tmp_path / "empty").mkdir()
    write_image(tmp_path / "one" / "img.png", 4, 4)
    write_image(tmp_path / "two" / "img.bmp", 4, 4)
    out = tmp_path / "out"
    args = [str(tmp_path / "one"), str(tmp_path / "two"), str(tmp_path / "empty"), str(tmp_path / "nope.png")]
    code = main(["upscale", *args, "--model", str(sr_model), "--output", str(out), "--device", "cpu"])
    assert code == 1
    err = capsys.readouterr().err
    assert "nope.png: no such file or folder" in err and "empty: no images" in err
    assert sorted(p.name for p in out.iterdir()) == ["img.png", "img_2.png"]


def test_upscale_bad_model_and_output(sr_model, gan_model, tmp_path, capsys):
    write_image(tmp_path / "a.png", 4, 4)
    assert main(["upscale", str(tmp_path / "a.png"), "--model", str(tmp_path / "no-model"), "--output", str(tmp_path / "o")]) == 1
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "empty-model").mkdir()
    assert main(["upscale", str(tmp_path / "a.png"), "--model", str(tmp_path / "empty-model"), "--output", str(tmp_path / "o")]) == 1
    assert "cannot load --model" in capsys.readouterr().err
    assert main(["upscale", str(tmp_path / "a.png"), "--model", str(gan_model), "--output", str(tmp_path / "o")]) == 1
    assert "DCGANPipeline" in capsys.readouterr().err
    assert main(["upscale", str(tmp_path / "a.png"), "--model", str(sr_model), "--output", str(tmp_path / "a.png")]) == 1
    assert "not a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["upscale", str(tmp_path / "a.png"), "--model", str(sr_model), "--output", "o", "--dtype", "float64"])


def test_sample_writes_deterministic_images_and_grid(gan_model, tmp_path, capsys):
    first, second = tmp_path / "first", tmp_path / "second"
    base = ["sample", "--model", str(gan_model), "--num-images", "5", "--seed", "3", "--device", "cpu"]
    assert main([*base, "--output", str(first), "--grid", "--batch-size", "2"]) == 0
    assert main([*base, "--output", str(second)]) == 0
    names = sorted(p.name for p in first.iterdir())
    assert names == ["grid.png"] + [f"sample_{i:05d}.png" for i in range(5)]
    assert not (second / "grid.png").exists()
    expected = DCGANPipeline.from_pretrained(gan_model, device="cpu")(num_images=5, seed=3)
    for i, image in enumerate(expected):
        a, b = np.asarray(Image.open(first / f"sample_{i:05d}.png")), np.asarray(Image.open(second / f"sample_{i:05d}.png"))
        assert np.array_equal(a, np.asarray(image)) and np.array_equal(a, b)
    grid = Image.open(first / "grid.png")
    assert grid.size == (3 * (8 + 2) + 2, 2 * (8 + 2) + 2)  # 5 images, ceil(sqrt(5)) = 3 per row
    assert np.array_equal(np.asarray(grid)[2:10, 2 + 10 : 10 + 10], np.asarray(expected[1]))


def test_sample_errors(sr_model, gan_model, tmp_path, capsys):
    assert main(["sample", "--model", str(sr_model), "--output", str(tmp_path / "o"), "--device", "cpu"]) == 1
    assert "sample_noise" in capsys.readouterr().err
    assert main(["sample", "--model", str(gan_model), "--output", str(tmp_path / "o"), "--num-images", "0"]) == 1
    assert "--num-images" in capsys.readouterr().err
    assert main(["sample", "--model", str(gan_model), "--output", str(tmp_path / "o"), "--seed", str(10**23)]) == 1
    assert "--seed must be in [-2**63, 2**64)" in capsys.readouterr().err


def test_upscale_checks_its_numbers_and_a_missing_model_folder_once(sr_model, tmp_path, capsys):
    for i in range(3):
        write_image(tmp_path / f"{i}.png", 4, 4)
    base = ["upscale", str(tmp_path), "--output", str(tmp_path / "o")]
    for flags, message in ((["--tile", "0"], "--tile must be >= 1, got 0"), (["--batch-size", "0"], "--batch-size must be >= 1"),
                           (["--tile-overlap", "-1"], "--tile-overlap must be >= 0")):
        assert main([*base, "--model", str(sr_model), *flags]) == 1
        assert capsys.readouterr().err.count(message) == 1  # once, not once per image
    assert main([*base, "--model", str(tmp_path / "no" / "such")]) == 1
    assert "no such folder (a Hub id looks like 'org/name')" in capsys.readouterr().err


def test_bad_devices_and_a_discriminator_folder_are_errors_not_tracebacks(sr_model, gan_model, tmp_path, capsys):
    from hfmagic import DCGANDiscriminator

    write_image(tmp_path / "a.png", 4, 4)
    upscale = ["upscale", str(tmp_path / "a.png"), "--model", str(sr_model), "--output", str(tmp_path / "o")]
    sample = ["sample", "--model", str(gan_model), "--output", str(tmp_path / "s")]
    for command in (upscale, sample):
        assert main([*command, "--device", "foo"]) == 1
        assert "--device: Unknown device 'foo'" in capsys.readouterr().err
        if not torch.cuda.is_available():
            assert main([*command, "--device", "cuda"]) == 1
            assert "CUDA is not available here" in capsys.readouterr().err
    config = DCGANConfig(image_size=8, noise_size=4, generator_base_channels=8, discriminator_base_channels=4)
    DCGANDiscriminator(config).save_pretrained(tmp_path / "gan" / "discriminator")
    assert main(["sample", "--model", str(tmp_path / "gan" / "discriminator"), "--output", str(tmp_path / "s"), "--device", "cpu"]) == 1
    assert "holds a GAN discriminator (DCGANDiscriminator)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not (tmp_path / "s").exists()


def test_cli_parses_without_importing_torch():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    check = "import hfmagic.cli, sys; hfmagic.cli.build_parser(); assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", check], check=True, env=env, cwd=REPO, timeout=120)
    help_text = subprocess.run(
        [sys.executable, "-m", "hfmagic", "upscale", "--help"], check=True, env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    ).stdout
    assert "--tile-overlap" in help_text and "--model" in help_text
    top = subprocess.run(
        [sys.executable, "-m", "hfmagic", "--help"], check=False, env=env, cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert top.returncode == 0 and "upscale" in top.stdout and "sample" in top.stdout


def test_upscale_dtype_auto_says_what_it_chose(sr_model, tmp_path, capsys, monkeypatch):
    import hfmagic.pipelines.device

    monkeypatch.setattr(hfmagic.pipelines.device, "native_bf16", lambda device: True)  # as on an AMX / AVX512-BF16 CPU
    write_image(tmp_path / "x.png", 7, 6, seed=5)
    common = [str(tmp_path / "x.png"), "--model", str(sr_model), "--device", "cpu"]
    assert main(["upscale", *common, "--output", str(tmp_path / "auto")]) == 0
    assert "hfmagic upscale: dtype='auto' -> bfloat16 (cpu computes bf16 natively" in capsys.readouterr().err
    bf16 = SuperResolutionPipeline.from_pretrained(sr_model, device="cpu", dtype="bfloat16")(tmp_path / "x.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "auto" / "x.png")), np.asarray(bf16))
    assert main(["upscale", *common, "--output", str(tmp_path / "exact"), "--exact"]) == 0
    assert "dtype='auto' -> float32 (exact mode computes in float32)" in capsys.readouterr().err
    assert main(["upscale", *common, "--output", str(tmp_path / "fp32"), "--dtype", "float32"]) == 0
    assert "dtype='auto'" not in capsys.readouterr().err
    fp32 = SuperResolutionPipeline.from_pretrained(sr_model, device="cpu", dtype="float32")(tmp_path / "x.png")
    assert np.array_equal(np.asarray(Image.open(tmp_path / "fp32" / "x.png")), np.asarray(fp32))
    with pytest.raises(SystemExit) as exit_info:
        main(["upscale", *common, "--output", str(tmp_path / "o"), "--dtype", "fp64"])
    assert exit_info.value.code == 2 and "'auto', 'float32', 'float16', 'bfloat16'" in capsys.readouterr().err
