"""SR evaluation loop and the ``hfmagic evaluate`` / ``hfmagic evaluate-gan`` commands, with tiny
models saved to tmp_path and tiny image folders generated here."""

import copy
import re
import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from hfmagic import (
    DCGANConfig,
    DCGANGenerator,
    MSRResNet,
    MSRResNetConfig,
)
from hfmagic.cli import main
from hfmagic.data import imresize
from hfmagic.evaluation import evaluate_sr, metrics_for_card, upscale_image
from hfmagic.metrics import ms_ssim, psnr, ssim


def smooth_image(height, width, seed):
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    img = np.stack(
        [128 + 90 * np.sin(xx / (5 + c) + rng.uniform(0, 6)) * np.cos(yy / (7 - c)) for c in range(3)], axis=-1
    )
    return np.clip(img + rng.normal(0, 5, img.shape), 0, 255).astype(np.uint8)


def make_triples(scale, sizes=((24, 32), (32, 24)), seed=0):
    triples = []
    for i, (h, w) in enumerate(sizes):
        hr = smooth_image(h, w, seed + i)
        lr = imresize(hr, 1 / scale, round_uint8=True)
        triples.append((f"img{i}", lr, hr))
    return triples


@pytest.fixture(scope="module")
def tiny_sr():
    torch.manual_seed(0)
    model = MSRResNet(MSRResNetConfig(upscale_factor=2, mid_channels=8, num_blocks=1))
    return model


def test_evaluate_sr_matches_direct_computation(tiny_sr):
    triples = make_triples(2)
    tiny_sr.train()
    results = evaluate_sr(tiny_sr, {"toy": triples}, per_image=True)
    assert tiny_sr.training  # mode restored
    r = results["toy"]
    assert r["num_images"] == 2 and [row["name"] for row in r["images"]] == ["img0", "img1"]
    tiny_sr.eval()
    ps, ss, bps, bss = [], [], [], []
    for _, lr, hr in triples:
        with torch.no_grad():
            out = tiny_sr(torch.from_numpy(lr).permute(2, 0, 1)[None].float() / 255).reconstruction
        sr = (out[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)  # MMagic's tensor2img
        bic = imresize(lr, 2, round_uint8=True)
        ps.append(psnr(hr, sr, 2)), ss.append(ssim(hr, sr, 2))
        bps.append(psnr(hr, bic, 2)), bss.append(ssim(hr, bic, 2))
    assert r["psnr"] == pytest.approx(np.mean(ps), abs=1e-9)
    assert r["ssim"] == pytest.approx(np.mean(ss), abs=1e-9)
    assert r["bicubic_psnr"] == pytest.approx(np.mean(bps), abs=1e-9)
    assert r["bicubic_ssim"] == pytest.approx(np.mean(bss), abs=1e-9)
    assert 15 < r["bicubic_psnr"] < 45
    # MMagic 1.x scores the clamped float output, unrounded
    floats = evaluate_sr(tiny_sr, {"toy": triples}, quantize=False)["toy"]
    expected = []
    for _, lr, hr in triples:
        with torch.no_grad():
            out = tiny_sr(torch.from_numpy(lr).permute(2, 0, 1)[None].float() / 255).reconstruction
        expected.append(psnr(hr, out[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255, 2))
    assert floats["psnr"] == pytest.approx(np.mean(expected), abs=1e-4)
    assert floats["psnr"] != r["psnr"] and abs(floats["psnr"] - r["psnr"]) < 0.05
    bic = [psnr(hr, np.clip(imresize(lr, 2), 0, 255), 2) for _, lr, hr in triples]
    assert floats["bicubic_psnr"] == pytest.approx(np.mean(bic), abs=1e-6)
    # the Y channel and another crop give other numbers
    y = evaluate_sr(tiny_sr, {"toy": triples}, crop_border=0, y_channel=True, bicubic=False)["toy"]
    assert "bicubic_psnr" not in y and y["psnr"] != pytest.approx(r["psnr"], abs=1e-3)


def test_tiled_evaluation_equals_whole_image(tiny_sr):
    triples = make_triples(2, sizes=((40, 36),))
    whole = evaluate_sr(tiny_sr, {"t": triples}, bicubic=False)["t"]
    tiled = evaluate_sr(tiny_sr, {"t": triples}, tile_size=7, bicubic=False)["t"]
    assert tiled["psnr"] == pytest.approx(whole["psnr"], abs=1e-6)
    assert np.array_equal(upscale_image(tiny_sr, triples[0][1]), upscale_image(tiny_sr, triples[0][1], tile_size=9))


def test_evaluate_sr_on_a_folder_and_bad_pairs(tiny_sr, tmp_path):
    folder = tmp_path / "MySet"
    folder.mkdir()
    for i, (h, w) in enumerate(((27, 30), (32, 32))):  # 27 rows: HR is cropped to a multiple of the scale
        Image.fromarray(smooth_image(h, w, i)).save(folder / f"im{i}.png")
    results = evaluate_sr(tiny_sr, [str(folder)])
    (name,) = results
    assert results[name]["num_images"] == 2 and np.isfinite(results[name]["psnr"])
    lr, hr = make_triples(2)[0][1:]
    with pytest.raises(ValueError, match="does not belong"):
        evaluate_sr(tiny_sr, {"bad": [("x", lr, hr[:-4])]})


def test_metrics_for_card():
    metrics = metrics_for_card(
        {"Set5": {"psnr": 30.123456, "ssim": 0.85, "bicubic_psnr": 28.0}, "my_photos": {"psnr": 25.0, "ssim": 0.7}},
        y_channel=False,
        crop_border=4,
    )
    assert metrics[:2] == [
        {
            "dataset": "Set5",
            "dataset_id": "eugenesiow/Set5",  # the Hub repo load_eval_set reads
            "name": "PSNR",
            "value": 30.1235,
            "type": "psnr",
            "split": "test",
            "config": "RGB, crop_border=4",
            "bicubic": 28.0,  # bicubic on the same images, for the card's table
        },
        {
            "dataset": "Set5",
            "dataset_id": "eugenesiow/Set5",
            "name": "SSIM",
            "value": 0.85,
            "type": "ssim",
            "split": "test",
            "config": "RGB, crop_border=4",
        },
    ]
    # a local folder has no Hub id: "imagefolder", as transformers' Trainer names local data
    assert {m["dataset_id"] for m in metrics[2:]} == {"imagefolder"} and "bicubic" not in metrics[2]


def card_yaml(path):
    text = path.read_text()
    return yaml.safe_load(text.split("---")[1])


def test_evaluate_command_prints_table_and_writes_card(tiny_sr, tmp_path, capsys):
    model_dir = tmp_path / "model"
    tiny_sr.save_pretrained(model_dir)
    folder = tmp_path / "Toy"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(smooth_image(24, 28, i)).save(folder / f"{i}.png")
    argv = ["evaluate", "--model", str(model_dir), "--dataset", str(folder), "--crop-border", "2", "--device", "cpu"]
    assert main(argv + ["--float-output"]) == 0
    float_row = capsys.readouterr().out.strip().splitlines()[3]
    assert main(argv + ["--write-card"]) == 0
    out = capsys.readouterr().out
    assert "MSRResNet x2, RGB, crop_border=2" in out
    header, _, row = out.strip().splitlines()[1:4]
    assert header.split()[:4] == ["dataset", "images", "PSNR", "SSIM"]
    expected = evaluate_sr(tiny_sr, [str(folder)], crop_border=2)
    (dataset,) = expected
    assert row.split()[0] == dataset and float(row.split()[2]) == pytest.approx(expected[dataset]["psnr"], abs=1e-4)
    # the plain MATLAB-bicubic baseline, next to the model
    assert header.split()[4:] == ["bicubic", "PSNR", "bicubic", "SSIM"]
    assert float(row.split()[4]) == pytest.approx(expected[dataset]["bicubic_psnr"], abs=1e-4)
    assert float(row.split()[5]) == pytest.approx(expected[dataset]["bicubic_ssim"], abs=1e-4)
    floats = evaluate_sr(tiny_sr, [str(folder)], crop_border=2, quantize=False)[dataset]
    assert float(float_row.split()[2]) == pytest.approx(floats["psnr"], abs=1e-4)
    results = card_yaml(model_dir / "README.md")["model-index"][0]["results"]
    values = {(r["dataset"]["name"], m["name"]): m["value"] for r in results for m in r["metrics"]}
    assert values[(dataset, "PSNR")] == pytest.approx(expected[dataset]["psnr"], abs=1e-4)
    assert values[(dataset, "SSIM")] == pytest.approx(expected[dataset]["ssim"], abs=1e-4)
    # a local folder is named, not given a made-up Hub id; bicubic is in the table, not the model-index
    assert {r["dataset"]["type"] for r in results} == {"imagefolder"}
    assert len(results) == 1 and {m["name"] for m in results[0]["metrics"]} == {"PSNR", "SSIM"}
    text = (model_dir / "README.md").read_text()
    psnr, bicubic = expected[dataset]["psnr"], expected[dataset]["bicubic_psnr"]
    assert f"| {dataset} | test | PSNR | {psnr:.4f} | {bicubic:.4f} | {round(psnr, 4) - round(bicubic, 4):+.4f} | RGB, crop_border=2 |" in text
    # a second run with the Y channel adds results, it does not duplicate the RGB ones
    assert main(argv + ["--write-card", "--y-channel"]) == 0
    results = card_yaml(model_dir / "README.md")["model-index"][0]["results"]
    configs = sorted(m.get("config") for r in results for m in r["metrics"] if m["name"] == "PSNR")
    assert configs == ["RGB, crop_border=2", "Y, crop_border=2"]


def test_evaluate_command_errors(tmp_path, capsys):
    assert main(["evaluate", "--model", "org/not-local", "--dataset", "Set5", "--write-card"]) == 1
    assert "local model folder" in capsys.readouterr().err
    assert main(["evaluate", "--model", str(tmp_path / "missing"), "--dataset", "Set5"]) == 1
    assert "cannot load --model" in capsys.readouterr().err


# ------------------------------------------------------------------ GAN evaluation
class TinyInception(torch.nn.Module):
    """StyleGAN-detector-like: features with return_features, class probabilities otherwise."""

    def forward(self, x: torch.Tensor, return_features: bool = False, no_output_bias: bool = False) -> torch.Tensor:
        feats = torch.nn.functional.adaptive_avg_pool2d(x.to(torch.float32) / 255.0, 2).flatten(1)
        return feats if return_features else torch.softmax(8.0 * feats, dim=1)


@pytest.fixture(scope="module")
def tiny_gan(tmp_path_factory):
    torch.manual_seed(0)
    config = DCGANConfig(image_size=16, generator_base_channels=16, discriminator_base_channels=8, noise_size=8)
    generator = DCGANGenerator(config)
    folder = tmp_path_factory.mktemp("gan") / "model"
    generator.save_pretrained(folder)
    return generator, folder


def test_evaluate_gan_matches_direct_metric_calls(tiny_gan, tmp_path):
    from hfmagic.evaluation import evaluate_gan, gan_metrics_for_card
    from hfmagic.metrics import fid, inception_score, swd

    generator = copy.deepcopy(tiny_gan[0])
    with torch.no_grad():  # fresh init makes near-gray images; spread them so the metrics see differences
        generator.output_layer.conv.weight.mul_(100.0)
    inception = tmp_path / "inception.pt"
    torch.jit.script(TinyInception()).save(str(inception))
    real = torch.rand(8, 3, 16, 16) * 2 - 1
    results = evaluate_gan(
        generator, real, num_images=8, batch_size=3, seed=4, inception_path=inception, ms_ssim_images=4,
        inception_score_splits=2,
    )
    assert results["num_images"] == 8 and results["ms_ssim_images"] == 4 and list(results["swd"]) == ["16", "avg"]
    # by hand: the same noise, MMagic's conversions, the metric functions
    generator.eval()
    with torch.no_grad():
        fake = (generator(noise=generator.sample_noise(8, generator=torch.Generator().manual_seed(4))) + 1) * 127.5
    real255 = ((real + 1) * 127.5).round()
    assert results["swd"] == pytest.approx(swd(real255, fake, seed=4), rel=1e-5)
    assert results["ms_ssim"] == pytest.approx(ms_ssim(fake[:4]), rel=1e-6)  # the first 4 generated images
    assert results["ms_ssim"] != pytest.approx(ms_ssim(fake), rel=1e-6)
    assert results["fid"] == pytest.approx(fid(real255, fake, inception), rel=1e-6)
    assert results["inception_score"] == pytest.approx(inception_score(fake, inception, splits=2), rel=1e-6)
    assert results["inception_score"][0] > 1.0
    card = {m["name"]: (m["value"], m["config"]) for m in gan_metrics_for_card(results, "toy")}
    assert card["IS"] == (round(results["inception_score"][0], 4), "8 images") and card["MS-SSIM"][1] == "4 images"
    assert evaluate_gan(generator, real, num_images=8, batch_size=3, seed=4)["inception_score"] is None
    with pytest.raises(ValueError, match="ms_ssim_images must be an even number"):
        evaluate_gan(generator, real, num_images=8, ms_ssim_images=10)
    with pytest.warns(UserWarning, match="IS is skipped"):  # 8 images, 10 parts: FID only
        fid_only = evaluate_gan(generator, real, num_images=8, batch_size=3, seed=4, inception_path=inception)
    assert fid_only["inception_score"] is None and fid_only["fid"] == pytest.approx(results["fid"], rel=1e-9)
    no_is = evaluate_gan(generator, real, num_images=8, seed=4, inception_path=inception, inception_score_splits=None)
    assert no_is["inception_score"] is None and no_is["fid"] is not None
    with pytest.raises(ValueError, match="even number"):
        evaluate_gan(generator, real, num_images=7)
    with pytest.raises(ValueError, match="fewer than the 10"):
        evaluate_gan(generator, list(real), num_images=10)
    with pytest.raises(ValueError, match="generator makes"):
        evaluate_gan(generator, torch.rand(4, 3, 32, 32), num_images=4)


def test_evaluate_gan_command(tiny_gan, tmp_path, capsys):
    _, model_dir = tiny_gan
    images = tmp_path / "real"
    images.mkdir()
    for i in range(10):
        Image.fromarray(smooth_image(20, 24, i)).save(images / f"{i}.png")
    argv = ["evaluate-gan", "--model", str(model_dir), "--dataset", str(images), "--device", "cpu"]
    assert main(argv + ["--num-images", "8", "--batch-size", "4", "--write-card"]) == 0
    out = capsys.readouterr().out
    assert "DCGANGenerator 16x16, 8 real and generated images, seed 0" in out
    swd_line = next(line for line in out.splitlines() if line.startswith("SWD"))
    assert "16:" in swd_line and "avg:" in swd_line
    ms = float(next(line for line in out.splitlines() if line.startswith("MS-SSIM")).split()[1])
    assert 0 < ms <= 1
    results = card_yaml(model_dir / "README.md")["model-index"][0]["results"]
    names = {m["name"]: m["value"] for r in results for m in r["metrics"]}
    assert set(names) == {"SWD (16px)", "SWD (avg)", "MS-SSIM"}
    assert names["MS-SSIM"] == pytest.approx(ms, abs=1e-4)
    assert main(argv + ["--num-images", "12"]) == 1
    assert "fewer than the 12" in capsys.readouterr().err
    assert main(argv + ["--num-images", "4", "--inception", str(tmp_path / "none.pt")]) == 1
    assert "inception-2015-12-05.pt" in capsys.readouterr().err
    assert main(argv + ["--num-images", "8", "--ms-ssim-images", "6", "--batch-size", "4"]) == 0
    out = capsys.readouterr().out
    assert "8 real and generated images (MS-SSIM on 6)" in out
    assert main(argv + ["--num-images", "8", "--ms-ssim-images", "5"]) == 1
    assert "--ms-ssim-images must be an even number" in capsys.readouterr().err
    inception = tmp_path / "inception.pt"
    torch.jit.script(TinyInception()).save(str(inception))
    assert main(argv + ["--num-images", "8", "--inception", str(inception), "--inception-score-splits", "0"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^FID +[0-9.]+$", out, re.M) and not re.search(r"^IS ", out, re.M)
    assert main(argv + ["--num-images", "10", "--inception", str(inception)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^FID +[0-9.]+$", out, re.M) and re.search(r"^IS +[0-9.]+ \+- [0-9.]+$", out, re.M)
    assert main(argv + ["--num-images", "10", "--inception-score-splits", "-1"]) == 1
    assert "--inception-score-splits must be >= 0" in capsys.readouterr().err


def test_evaluate_command_computes_in_float32_on_bf16_hardware(tiny_sr, tmp_path, capsys, monkeypatch):
    # PSNR/SSIM are compared with MMagic's (float32) tables: dtype="auto" must not pick bf16 here
    import hfmagic.evaluation
    import hfmagic.pipelines.device

    monkeypatch.setattr(hfmagic.pipelines.device, "native_bf16", lambda device: True)
    seen = []
    real = hfmagic.evaluation.evaluate_sr
    monkeypatch.setattr(hfmagic.evaluation, "evaluate_sr", lambda model, *a, **k: seen.append(next(model.parameters()).dtype) or real(model, *a, **k))
    tiny_sr.save_pretrained(tmp_path / "model")
    folder = tmp_path / "Toy"
    folder.mkdir()
    Image.fromarray(smooth_image(24, 28, 0)).save(folder / "0.png")
    assert main(["evaluate", "--model", str(tmp_path / "model"), "--dataset", str(folder), "--device", "cpu"]) == 0
    assert seen == [torch.float32]
