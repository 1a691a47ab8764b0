"""StyleGAN2: the ops and layers against functional references written here from the published
definitions (upfirdn2d as a direct sum, modulated convolution sample by sample, the mapping network,
truncation), shapes, style mixing, noise, save/load in the GAN layout, conversion of a tiny
MMagic-layout checkpoint (function and CLI), sampling; and, when MMagic's source is available
($HFMAGIC_MMAGIC_SOURCE), MMagic's own modules with the same weights."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.nn import functional as F

from hfmagic import StyleGAN2Config, StyleGAN2Discriminator, StyleGAN2Generator, convert_checkpoint
from hfmagic.cli import main
from hfmagic.models.stylegan2.ops_stylegan2 import Blur, UpsampleUpFIRDn, fused_bias_leakyrelu, upfirdn2d

TINY = dict(out_size=16, style_channels=8, num_mlps=2, max_channels=8)


def randomize(model, seed, std=0.3):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            tensor.add_(torch.randn(tensor.shape, generator=gen) * std)
    return model.eval()


def tiny_pair(seed=0, **overrides):
    config = StyleGAN2Config(**{**TINY, **overrides})
    return randomize(StyleGAN2Generator(config), seed), randomize(StyleGAN2Discriminator(config), seed + 1)


# ----------------------------------------------------------------------------- references
def upfirdn_direct(x, f, up, down, pad):
    """The definition, summed directly: zero-insert by ``up``, pad (px0, px1, py0, py1), then
    out[o] = sum_k f[k] * padded[o * down + K - 1 - k] (a convolution), per channel."""
    x, f = x.double().numpy(), f.double().numpy()
    n, c, h, w = x.shape
    px0, px1, py0, py1 = pad
    big = np.zeros((n, c, h * up + py0 + py1, w * up + px0 + px1))
    for i in range(h):
        for j in range(w):
            yy, xx = i * up + py0, j * up + px0
            if 0 <= yy < big.shape[2] and 0 <= xx < big.shape[3]:
                big[:, :, yy, xx] = x[:, :, i, j]
    kh, kw = f.shape
    oh, ow = (big.shape[2] - kh) // down + 1, (big.shape[3] - kw) // down + 1
    out = np.zeros((n, c, oh, ow))
    for oy in range(oh):
        for ox in range(ow):
            for a in range(kh):
                for b in range(kw):
                    out[:, :, oy, ox] += f[a, b] * big[:, :, oy * down + kh - 1 - a, ox * down + kw - 1 - b]
    return torch.from_numpy(out).float()


def blur2d(taps, gain=1.0):
    k = torch.tensor(taps, dtype=torch.float64)
    return (torch.outer(k, k) / k.sum() ** 2 * gain).float()


def modulated_conv_ref(layer, x, style):
    """Sample by sample: w' = w / sqrt(in k k) * s (s = affine(style), bias 1), demodulated
    w'' = w' / sqrt(sum w'^2 + 1e-8); upsampling: stride-2 transposed conv, then the FIR blur."""
    out = []
    for n in range(x.shape[0]):
        mod = layer.style_modulation
        s = style[n] @ (mod.linear.weight / math.sqrt(mod.linear.in_features)).T + mod.bias
        w = layer.weight[0] / math.sqrt(layer.weight[0, 0].numel()) * s[None, :, None, None]
        if layer.demodulate:
            w = w / torch.sqrt(w.pow(2).sum([1, 2, 3], keepdim=True) + 1e-8)
        if layer.upsample:
            y = F.conv_transpose2d(x[n : n + 1], w.transpose(0, 1), stride=2)
            y = upfirdn_direct(y, blur2d([1, 3, 3, 1], 4.0), 1, 1, (1, 1, 1, 1))
        else:
            y = F.conv2d(x[n : n + 1], w, padding=w.shape[-1] // 2)
        out.append(y)
    return torch.cat(out)


def mapping_ref(generator, z):
    """Pixel norm, then per layer leaky_relu(z W^T * lr / sqrt(in) + b * lr, 0.2) * sqrt(2)."""
    lr = generator.config.lr_mlp
    x = z / (z.norm(dim=1, keepdim=True) / math.sqrt(z.shape[1]) + 1e-6)
    for layer in list(generator.style_mapping)[1:]:
        x = x @ (layer.linear.weight * lr / math.sqrt(x.shape[1])).T + layer.bias * lr
        x = F.leaky_relu(x, 0.2) * math.sqrt(2)
    return x


# ----------------------------------------------------------------------------- ops
@pytest.mark.parametrize(
    "up,down,pad,separable",
    [(1, 1, (1, 1, 1, 1), True), (2, 1, (2, 1, 2, 1), True), (1, 2, (1, 1, 1, 1), True), (2, 2, (1, 2, 0, 3), True),
     (1, 1, (-1, 2, 1, -2), True), (3, 1, (2, 2, 1, 1), True), (1, 1, (2, 1, 1, 0), False), (2, 1, (2, 1, 2, 1), False),
     (1, 2, (1, 1, 2, 2), False)],
)
def test_upfirdn2d_equals_the_direct_sum(up, down, pad, separable):
    x = torch.randn(2, 3, 5, 6, generator=torch.Generator().manual_seed(0))
    taps = torch.tensor([1.0, 3.0, 2.0, 1.0]) / 7
    f2d = torch.outer(taps, taps) if separable else torch.rand(4, 3, generator=torch.Generator().manual_seed(1))
    got = upfirdn2d(x, taps if separable else f2d, up=up, down=down, padding=pad)
    expected = upfirdn_direct(x, f2d, up, down, pad)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-6)


def test_upfirdn2d_padding_forms_and_errors():
    x, f = torch.randn(1, 2, 4, 4), torch.ones(2) / 2
    assert torch.equal(upfirdn2d(x, f, padding=1), upfirdn2d(x, f, padding=(1, 1, 1, 1)))
    assert torch.equal(upfirdn2d(x, f, padding=(1, 0)), upfirdn2d(x, f, padding=(1, 1, 0, 0)))  # mmcv: (px, py)
    with pytest.raises(ValueError, match="padding"):
        upfirdn2d(x, f, padding=(1, 2, 3))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        upfirdn2d(x[0], f)


def test_fused_bias_leakyrelu_formula():
    x, b = torch.tensor([[-2.0, 3.0], [1.0, -1.0]]), torch.tensor([0.5, -4.0])
    expected = torch.tensor([[-1.5 * 0.2, -1.0 * 0.2], [1.5, -5.0 * 0.2]]) * math.sqrt(2)
    assert torch.allclose(fused_bias_leakyrelu(x, b), expected)


# ----------------------------------------------------------------------------- layers
@pytest.mark.parametrize("index", [None, 0, 1])
def test_modulated_conv_matches_reference(index):
    g, _ = tiny_pair(seed=3)
    layer = g.conv1.conv if index is None else g.convs[index].conv  # plain, upsampling, plain
    x = torch.randn(2, layer.in_channels, 4, 4, generator=torch.Generator().manual_seed(2))
    style = torch.randn(2, 8, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.allclose(layer(x, style), modulated_conv_ref(layer, x, style), atol=1e-5)
    rgb = g.to_rgb1.conv  # 1x1, no demodulation
    with torch.no_grad():
        assert torch.allclose(rgb(x, style), modulated_conv_ref(rgb, x, style), atol=1e-5)


def test_mapping_network_mean_latent_and_truncation():
    g, _ = tiny_pair(seed=4)
    z = torch.randn(3, 8, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        w = mapping_ref(g, z)
        assert torch.allclose(g.style_mapping(z), w, atol=1e-5)
        mean = g.get_mean_latent(num_samples=64, bs_per_repeat=32, generator=torch.Generator().manual_seed(6))
        zs = torch.randn(64, 8, generator=torch.Generator().manual_seed(6))
        assert torch.allclose(mean, mapping_ref(g, zs).mean(0, keepdim=True), atol=1e-5)
        latent = g(z, truncation=0.5, truncation_latent=mean, return_latent_only=True)
        assert latent.shape == (3, g.num_latents, 8)
        assert torch.allclose(latent, (mean + 0.5 * (w - mean))[:, None].expand_as(latent), atol=1e-5)
    with pytest.raises(ValueError, match="multiple of bs_per_repeat"):
        g.get_mean_latent(num_samples=100, bs_per_repeat=32)


def test_init_follows_mmagic():
    g = StyleGAN2Generator(StyleGAN2Config(out_size=32, style_channels=64, max_channels=64))
    d = StyleGAN2Discriminator(StyleGAN2Config(out_size=32, max_channels=64))
    assert abs(g.style_mapping[1].linear.weight.std().item() - 100.0) < 5  # N(0, 1 / lr_mlp)
    assert abs(g.convs[0].conv.weight.std().item() - 1.0) < 0.05 and abs(d.convs[1].conv1[0].conv.weight.std().item() - 1.0) < 0.05
    assert torch.equal(g.convs[0].conv.style_modulation.bias, torch.ones(64))
    assert g.convs[0].noise_injector.weight.item() == 0 and not g.to_rgbs[0].bias.any() and not d.final_conv[1].bias.any()
    assert abs(g.injected_noise_3.std().item() - 1) < 0.3 and abs(g.constant_input.input.std().item() - 1) < 0.2


# ----------------------------------------------------------------------------- generator / discriminator
@pytest.mark.parametrize("size", [16, 32])
def test_shapes_and_discriminator(size):
    g, d = tiny_pair(out_size=size)
    assert g.num_latents == 2 * int(math.log2(size)) - 2 and len(g.make_injected_noise()) == g.num_injected_noises
    assert [n.shape[-1] for n in g.make_injected_noise()] == [4] + [2**i for i in range(3, int(math.log2(size)) + 1) for _ in range(2)]
    with torch.no_grad():
        images = g(num_batches=4)
        assert images.shape == (4, 3, size, size)
        assert d(images).shape == (4, 1) and d(images[:3]).shape == (3, 1)
    with pytest.raises(ValueError, match="multiple of 4"):
        d(torch.zeros(6, 3, size, size))
    with pytest.raises(ValueError, match=r"\(N, 3, %d, %d\)" % (size, size)):
        d(torch.zeros(2, 3, size // 2, size // 2))
    with pytest.raises(ValueError, match="num_batches"):
        g()


def test_style_mixing_and_return_latents():
    g, _ = tiny_pair(seed=6)
    z1, z2 = torch.randn(2, 8), torch.randn(2, 8)
    with torch.no_grad():
        out = g([z1, z2], inject_index=3, return_latents=True, randomize_noise=False)
        w1, w2 = g.style_mapping(z1), g.style_mapping(z2)
        assert out["inject_index"] == 3 and out["noise_batch"][0] is z1
        assert torch.allclose(out["latent"][:, :3], w1[:, None].expand(2, 3, 8))
        assert torch.allclose(out["latent"][:, 3:], w2[:, None].expand(2, g.num_latents - 3, 8))
        # latents back in (input_is_latent) give the same images
        again = g(out["latent"], input_is_latent=True, randomize_noise=False)
        assert torch.allclose(again, out["fake_img"], atol=1e-6)
        grid = g.style_mixing(n_source=2, n_target=3, truncation=1.0, randomize_noise=False)
        assert grid.shape == (12, 3, 16, 16) and torch.all(grid[0] == -1)
        # in training mode with mix_prob=1 a drawn batch is always mixed at a random layer
        g.config.mix_prob = 1.0
        mixed = g.train()(num_batches=2, return_latents=True, generator=torch.Generator().manual_seed(0))
        assert 1 <= mixed["inject_index"] < g.num_latents and len(mixed["noise_batch"]) == 2


def test_injected_noise_is_reproducible():
    g, _ = tiny_pair(seed=7)
    z = torch.randn(2, 8)
    with torch.no_grad():
        noise = g.make_injected_noise(generator=torch.Generator().manual_seed(1))
        assert torch.equal(g(z, injected_noise=noise), g(z, injected_noise=noise))
        assert torch.equal(g(z, randomize_noise=False), g(z, injected_noise=[getattr(g, f"injected_noise_{i}") for i in range(g.num_injected_noises)]))
        assert not torch.equal(g(z), g(z))  # fresh noise each call
        a = g(num_batches=2, generator=torch.Generator().manual_seed(5))
        assert torch.equal(a, g(num_batches=2, generator=torch.Generator().manual_seed(5)))
        assert torch.equal(g(z, add_noise=False), g(z, add_noise=False))
    with pytest.raises(ValueError, match="injected_noise must hold"):
        g(z, injected_noise=noise[:2])


def test_save_load_gan_layout_roundtrip(tmp_path):
    from hfmagic.hub import save_gan_pretrained

    g, d = tiny_pair(seed=8)
    save_gan_pretrained(g, d, tmp_path)
    g2 = StyleGAN2Generator.from_pretrained(tmp_path).eval()
    d2 = StyleGAN2Discriminator.from_pretrained(tmp_path, subfolder="discriminator").eval()
    z, x = torch.randn(2, 8), torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(g2(z, randomize_noise=False), g(z, randomize_noise=False))
        assert torch.equal(d2(x), d(x))
    assert torch.equal(g2.convs[0].conv.blur.kernel, g.convs[0].conv.blur.kernel)  # non-persistent, rebuilt
    assert "StyleGAN2Pipeline" in (tmp_path / "README.md").read_text()


def test_config_checks():
    with pytest.raises(ValueError, match="power of two"):
        StyleGAN2Config(out_size=48)
    with pytest.raises(ValueError, match="even number of taps"):
        StyleGAN2Config(blur_kernel=[1, 2, 1])
    with pytest.raises(ValueError, match="'mix' or 'single'"):
        StyleGAN2Config(default_style_mode="mixed")
    config = StyleGAN2Config()
    assert [config.channels(2**i) for i in range(2, 11)] == [512, 512, 512, 512, 512, 256, 128, 64, 32]


# ----------------------------------------------------------------------------- conversion
def mmagic_state(model):
    """hfmagic's state dict in MMagic's names, written out here: equalized-lr tensors are
    ``weight_orig``; MMagic stores its blur kernels (2-D, normalised, x4 when upsampling)."""
    state = {}
    for key, value in model.state_dict().items():
        if key.endswith((".linear.weight", "conv.weight")) and "noise_injector" not in key:
            key += "_orig"
        state[key] = value.clone()
    for name, module in model.named_modules():
        if isinstance(module, (Blur, UpsampleUpFIRDn)):  # the generator's upsample x4, the discriminator's blur x1
            state[f"{name}.kernel"] = blur2d([1, 3, 3, 1], 4.0 if isinstance(model, StyleGAN2Generator) else 1.0)
    return state


def test_conversion_round_trip_function_and_cli(tmp_path, caplog):
    g, d = tiny_pair(seed=10, out_size=16)
    ema, _ = tiny_pair(seed=20, out_size=16)
    state = {f"generator.{k}": v for k, v in mmagic_state(g).items()}
    state.update({f"generator_ema.module.{k}": v for k, v in mmagic_state(ema).items()})
    state.update({f"discriminator.{k}": v for k, v in mmagic_state(d).items()})
    state["generator_ema.steps"] = torch.tensor([7])
    path = tmp_path / "ckpt.pth"
    torch.save({"meta": {"mmagic_version": "1.2.0"}, "state_dict": state}, path)
    z, x = torch.randn(2, 8), torch.randn(2, 3, 16, 16)

    gc, dc = convert_checkpoint(path, tmp_path / "fn", return_discriminator=True)  # detected, EMA preferred
    assert type(gc) is StyleGAN2Generator and {k: getattr(gc.config, k) for k in TINY} == TINY
    assert main(["convert", str(path), str(tmp_path / "cli")]) == 0
    assert main(["convert", str(path), str(tmp_path / "rgb"), "--no-ema", "--no-bgr-to-rgb"]) == 0
    with torch.no_grad():
        for folder in ("fn", "cli"):
            g2 = StyleGAN2Generator.from_pretrained(tmp_path / folder).eval()
            d2 = StyleGAN2Discriminator.from_pretrained(tmp_path / folder, subfolder="discriminator").eval()
            # BGR -> RGB: the converted generator draws MMagic's image with its channels reversed
            assert torch.allclose(g2(z, randomize_noise=False), ema(z, randomize_noise=False).flip(1), atol=1e-6)
            assert torch.allclose(d2(x), d(x.flip(1)), atol=1e-6)
        g3 = StyleGAN2Generator.from_pretrained(tmp_path / "rgb").eval()
        assert torch.equal(g3(z, randomize_noise=False), g(z, randomize_noise=False))
        assert torch.equal(StyleGAN2Discriminator.from_pretrained(tmp_path / "rgb", subfolder="discriminator")(x), d(x))


def test_conversion_reads_the_architecture_and_old_ema_layout(tmp_path):
    g = randomize(StyleGAN2Generator(StyleGAN2Config(out_size=64, max_channels=16, channel_multiplier=1, num_mlps=3, style_channels=4)), 1)
    # MMGeneration's layout: the EMA copy under "generator_ema." (no ".module.")
    state = {f"generator_ema.{k}": v for k, v in mmagic_state(g).items()}
    gc, _ = convert_checkpoint({"state_dict": state}, bgr_to_rgb=False)
    c = gc.config
    assert (c.out_size, c.max_channels, c.channel_multiplier, c.num_mlps, c.style_channels, c.blur_kernel) == (64, 16, 1, 3, 4, [1, 3, 3, 1])
    z = torch.randn(1, 4)
    with torch.no_grad():
        assert torch.equal(gc(z, randomize_noise=False), g(z, randomize_noise=False))
    bad = dict(state)
    bad["generator_ema.to_rgbs.0.upsample.kernel"] = blur2d([1, 2, 2, 1], 4.0)
    with pytest.raises(ValueError, match="is not the blur kernel"):
        convert_checkpoint({"state_dict": bad})


def test_sampling_with_truncation_through_the_pipeline_and_cli(tmp_path):
    from hfmagic.hub import save_gan_pretrained
    from hfmagic.pipelines import GANPipeline

    g, d = tiny_pair(seed=12)
    save_gan_pretrained(g, d, tmp_path / "gan")
    pipe = GANPipeline.from_pretrained(tmp_path / "gan", device="cpu")
    a = pipe(num_images=3, seed=1, truncation=0.5, batch_size=2)
    b = pipe(num_images=3, seed=1, truncation=0.5)
    assert all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))  # the seed fixes them
    assert not np.array_equal(np.asarray(a[0]), np.asarray(pipe(num_images=1, seed=1)[0]))
    out = tmp_path / "samples"
    assert main(["sample", "--model", str(tmp_path / "gan"), "--output", str(out), "--num-images", "3", "--seed", "1",
                 "--truncation", "0.5", "--grid", "--device", "cpu"]) == 0
    assert np.array_equal(np.asarray(Image.open(out / "sample_00000.png")), np.asarray(a[0]))
    assert main(["sample", "--model", str(tmp_path / "gan"), "--output", str(out), "--truncation", "2", "--device", "cpu"]) == 1
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        pipe(num_images=1, truncation=1.5)


# ----------------------------------------------------------------------------- MMagic's own modules
def test_outputs_equal_mmagics_modules():
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    from _mmagic_stylegan2 import load_mmagic_stylegan2, mmagic_twins

    networks = load_mmagic_stylegan2()
    if networks is None:
        pytest.skip("MMagic's source not found: set HFMAGIC_MMAGIC_SOURCE to the mmagic 1.2.0 wheel")
    config = StyleGAN2Config(out_size=8, style_channels=16, num_mlps=2)  # MMagic's widths: 512 at 4x4 / 8x8
    g = randomize(StyleGAN2Generator(config), 1, std=0.1)
    d = randomize(StyleGAN2Discriminator(config), 2, std=0.1)
    mg, md = mmagic_twins(g, d, networks)
    z, z2, x = torch.randn(4, 16), torch.randn(4, 16), torch.randn(4, 3, 8, 8)
    noise = g.make_injected_noise()
    with torch.no_grad():
        assert (g(z, injected_noise=noise) - mg(z, injected_noise=noise)).abs().max() < 1e-5
        kw = dict(injected_noise=noise, inject_index=1, truncation=0.7, truncation_latent=torch.randn(1, 16))
        assert (g([z, z2], **kw) - mg([z, z2], **kw)).abs().max() < 1e-5
        assert (g(z, randomize_noise=False) - mg(z, randomize_noise=False)).abs().max() < 1e-5
        assert (d(x) - md(x)).abs().max() < 1e-5
