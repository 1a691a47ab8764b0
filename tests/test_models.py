"""Model tests in transformers' manner: tiny configs, every scale, save/load, init and reference values."""

import math
import re

import pytest
import torch
from torch.nn import functional as F

from hfmagic import (
    EDSR,
    SRCNN,
    DCGANConfig,
    DCGANDiscriminator,
    DCGANGenerator,
    EDSRConfig,
    MSRResNet,
    MSRResNetConfig,
    SRCNNConfig,
)
from tiny_configs import HFMAGIC_MODELS, SR_MODEL_TYPES, TINY_CONFIGS, tiny_model


def tiny(cls, cfg_cls, scale, **kw):
    defaults = {"mid_channels": 8, "num_blocks": 2} if cfg_cls is not SRCNNConfig else {"channels": (3, 8, 4, 3)}
    defaults.update(kw)
    return cls(cfg_cls(upscale_factor=scale, **defaults))


def test_every_registered_architecture_has_tiny_settings():
    missing = set(HFMAGIC_MODELS) - set(TINY_CONFIGS)
    assert not missing, f"add tiny settings for {sorted(missing)} to tests/tiny_configs.py"
    assert {"srcnn", "msrresnet", "edsr", "dcgan"} <= set(HFMAGIC_MODELS)


@pytest.mark.parametrize("model_type", SR_MODEL_TYPES)
def test_sr_shapes_and_loss(model_type):
    for scale in HFMAGIC_MODELS[model_type][0].supported_upscale_factors:
        model = tiny_model(model_type, upscale_factor=scale)
        m = model.input_multiple()  # RRDBNet x1/x2 pixel-unshuffle: sizes are multiples of 4/2
        x = torch.rand(2, 3, 5 * m, 7 * m)
        gt = torch.rand(2, 3, 5 * m * scale, 7 * m * scale)
        out = model(x, labels=gt)
        assert out.reconstruction.shape == gt.shape
        assert torch.allclose(out.loss, (out.reconstruction - gt).abs().mean())
        assert model(x).loss is None
        assert model(x, return_dict=False)[0].shape == gt.shape


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: MSRResNetConfig(upscale_factor=2.0), "upscale_factor must be an int, got 2.0"),
        (lambda: MSRResNetConfig(upscale_factor=True), "upscale_factor must be an int, got True"),
        (lambda: MSRResNetConfig(num_blocks=-2), "num_blocks must be >= 0"),
        (lambda: EDSRConfig(mid_channels=0), "mid_channels must be >= 1"),
        (lambda: DCGANConfig(noise_size=0), "noise_size must be >= 1"),
        (lambda: DCGANConfig(discriminator_output_scale=2), "discriminator_output_scale=2 is too small"),
    ],
)
def test_configs_refuse_values_that_would_fail_inside_a_layer(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make()


def test_loss_type_is_a_config_field():
    model = tiny(MSRResNet, MSRResNetConfig, 2, loss_type="mse")
    x, gt = torch.rand(1, 3, 4, 4), torch.rand(1, 3, 8, 8)
    out = model(x, labels=gt)
    assert torch.allclose(out.loss, F.mse_loss(out.reconstruction, gt))
    with pytest.raises(ValueError, match="loss_type"):
        MSRResNetConfig(loss_type="l3")


@pytest.mark.parametrize("cfg_cls,bad", [(MSRResNetConfig, 8), (EDSRConfig, 5), (MSRResNetConfig, 1)])
def test_unsupported_scale_names_the_supported_ones(cfg_cls, bad):
    with pytest.raises(ValueError, match=r"upscale_factor=.*choose one of \["):
        cfg_cls(upscale_factor=bad)


def test_bad_input_and_label_shapes():
    model = tiny(MSRResNet, MSRResNetConfig, 4)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        model(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="upscale_factor=4"):
        model(torch.rand(1, 3, 8, 8), labels=torch.rand(1, 3, 16, 16))
    for cls, cfg_cls in ((MSRResNet, MSRResNetConfig), (EDSR, EDSRConfig), (SRCNN, SRCNNConfig)):
        sr = tiny(cls, cfg_cls, 2)
        with pytest.raises(TypeError, match=r"float pixel_values in \[0, 1\], got torch.uint8.*float\(\) / 255"):
            sr(torch.randint(0, 256, (1, 3, 8, 8), dtype=torch.uint8))  # EDSR would silently take 0..255
        with pytest.raises(TypeError, match="got list.*SuperResolutionPipeline"):
            sr([torch.rand(3, 8, 8), torch.rand(3, 6, 6)])
    with pytest.raises(TypeError, match=r"float tensor of images in \[-1, 1\], got torch.uint8"):
        DCGANDiscriminator(tiny_gan_config())(torch.zeros(1, 3, 16, 16, dtype=torch.uint8))


def test_default_sizes_match_mmagic():
    assert sum(p.numel() for p in MSRResNet(MSRResNetConfig()).parameters()) == 1_517_571
    cfg = EDSRConfig()
    assert (cfg.mid_channels, cfg.num_blocks, cfg.res_scale, cfg.rgb_mean) == (64, 16, 1.0, [0.4488, 0.4371, 0.4040])
    assert SRCNNConfig().channels == [3, 64, 32, 3] and SRCNNConfig().kernel_sizes == [9, 1, 5]


def test_msrresnet_keys_and_init():
    model = MSRResNet(MSRResNetConfig(mid_channels=64, num_blocks=2))
    keys = set(model.state_dict())
    assert {"conv_first.weight", "trunk_net.1.conv2.bias", "upsample1.upsample_conv.weight",
            "upsample2.upsample_conv.weight", "conv_hr.weight", "conv_last.bias"} <= keys
    kaiming = lambda w: math.sqrt(2.0 / (w.shape[1] * w.shape[2] * w.shape[3]))
    for name, scale in [("conv_first", 0.1), ("conv_hr", 0.1), ("trunk_net.0.conv1", 0.1), ("upsample1.upsample_conv", 1.0)]:
        conv = model.get_submodule(name)
        assert conv.weight.std().item() == pytest.approx(kaiming(conv.weight) * scale, rel=0.15), name
        assert torch.all(conv.bias == 0), name


def _assert_torch_default_init(conv, name):
    """PyTorch's default Conv2d init: weight and bias uniform in +-1/sqrt(fan_in)."""
    bound = 1.0 / math.sqrt(conv.weight[0].numel())
    assert conv.weight.abs().max().item() <= bound, name
    assert conv.weight.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.15), name
    assert conv.bias.abs().max().item() <= bound and conv.bias.abs().max().item() > 0, name


def _assert_kaiming_init(conv, scale, name):
    """MMagic's default_init_weights: kaiming normal (fan_in, relu) times ``scale``, bias 0."""
    std = math.sqrt(2.0 / conv.weight[0].numel()) * scale
    assert conv.weight.std().item() == pytest.approx(std, rel=0.15), name
    assert conv.weight.mean().abs().item() < 0.2 * std, name
    assert torch.all(conv.bias == 0), name


def test_edsr_init_follows_res_scale():
    torch.manual_seed(0)
    model = EDSR(EDSRConfig(mid_channels=64, num_blocks=2, upscale_factor=4))
    for name in ("conv_first", "conv_after_body", "conv_last"):
        _assert_torch_default_init(model.get_submodule(name), name)
    for name in ("body.0.conv1", "body.1.conv2"):  # ResidualBlockNoBN at res_scale 1: kaiming x 0.1
        _assert_kaiming_init(model.get_submodule(name), 0.1, name)
    for name in ("upsample.0.upsample_conv", "upsample.1.upsample_conv"):  # PixelShufflePack: kaiming x 1
        _assert_kaiming_init(model.get_submodule(name), 1.0, name)
    # res_scale != 1: the residual blocks keep PyTorch's default init (MMagic's rule)
    scaled = EDSR(EDSRConfig(mid_channels=64, num_blocks=2, upscale_factor=2, res_scale=0.1))
    for name in ("body.0.conv1", "body.1.conv2"):
        _assert_torch_default_init(scaled.get_submodule(name), name)


def test_srcnn_keeps_pytorch_default_init():
    torch.manual_seed(0)
    model = SRCNN(SRCNNConfig(upscale_factor=4))
    for name in ("conv1", "conv2", "conv3"):
        _assert_torch_default_init(model.get_submodule(name), name)


def _msrresnet_reference(sd, x, scale, upsample_lrelu=False):
    """MSRResNet written with functional ops straight from REFERENCE.md, for comparison."""
    lrelu = lambda t: F.leaky_relu(t, 0.1)
    conv = lambda t, n: F.conv2d(t, sd[n + ".weight"], sd[n + ".bias"], padding=1)
    feat = lrelu(conv(x, "conv_first"))
    i = 0
    while f"trunk_net.{i}.conv1.weight" in sd:
        feat = feat + conv(F.relu(conv(feat, f"trunk_net.{i}.conv1")), f"trunk_net.{i}.conv2")
        i += 1
    stages = [("upsample1", 2), ("upsample2", 2)] if scale == 4 else [("upsample1", scale)]
    for name, factor in stages:
        feat = F.pixel_shuffle(conv(feat, name + ".upsample_conv"), factor)
        if upsample_lrelu:
            feat = lrelu(feat)
    out = conv(lrelu(conv(feat, "conv_hr")), "conv_last")
    return out + F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("upsample_lrelu", [False, True])
def test_msrresnet_matches_functional_reference(scale, upsample_lrelu):
    torch.manual_seed(0)
    model = tiny(MSRResNet, MSRResNetConfig, scale, upsample_lrelu=upsample_lrelu).eval()
    for p in model.parameters():  # non-zero biases so that they are exercised
        p.data.normal_(0, 0.05)
    x = torch.rand(1, 3, 6, 5)
    with torch.no_grad():
        ours = model(x).reconstruction
        ref = _msrresnet_reference(model.state_dict(), x, scale, upsample_lrelu)
    assert (ours - ref).abs().max() < 1e-5


def test_edsr_matches_functional_reference():
    torch.manual_seed(0)
    model = tiny(EDSR, EDSRConfig, 4, res_scale=0.1, rgb_std=(0.5, 1.0, 2.0)).eval()
    sd, x = model.state_dict(), torch.rand(1, 3, 5, 6)
    assert "mean" not in sd and "std" not in sd
    mean = torch.tensor([0.4488, 0.4371, 0.4040]).view(1, 3, 1, 1)
    std = torch.tensor([0.5, 1.0, 2.0]).view(1, 3, 1, 1)
    conv = lambda t, n: F.conv2d(t, sd[n + ".weight"], sd[n + ".bias"], padding=1)
    h = conv((x - mean) / std, "conv_first")
    body = h
    for i in range(2):
        body = body + 0.1 * conv(F.relu(conv(body, f"body.{i}.conv1")), f"body.{i}.conv2")
    res = conv(body, "conv_after_body") + h
    for i in range(2):
        res = F.pixel_shuffle(conv(res, f"upsample.{i}.upsample_conv"), 2)
    ref = conv(res, "conv_last") * std + mean
    with torch.no_grad():
        assert (model(x).reconstruction - ref).abs().max() < 1e-5


def test_srcnn_matches_functional_reference():
    torch.manual_seed(0)
    model = SRCNN(SRCNNConfig(upscale_factor=3)).eval()
    sd, x = model.state_dict(), torch.rand(1, 3, 7, 6)
    up = F.interpolate(x, scale_factor=3, mode="bicubic", align_corners=False)
    h = F.relu(F.conv2d(up, sd["conv1.weight"], sd["conv1.bias"], padding=4))
    h = F.relu(F.conv2d(h, sd["conv2.weight"], sd["conv2.bias"]))
    ref = F.conv2d(h, sd["conv3.weight"], sd["conv3.bias"], padding=2)
    with torch.no_grad():
        assert (model(x).reconstruction - ref).abs().max() < 1e-5


def test_save_load_roundtrip_is_bitwise_and_keeps_buffers(tmp_path):
    model = tiny(EDSR, EDSRConfig, 2, rgb_mean=(0.1, 0.2, 0.3))
    model.save_pretrained(tmp_path)
    loaded = EDSR.from_pretrained(tmp_path)
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k
    assert torch.equal(loaded.mean.flatten(), torch.tensor([0.1, 0.2, 0.3]))
    x = torch.rand(1, 3, 4, 4)
    assert torch.equal(model(x).reconstruction, loaded(x).reconstruction)


def test_partial_checkpoint_inits_missing_weights_with_mmagic_scheme(tmp_path):
    from safetensors.torch import load_file, save_file

    model = MSRResNet(MSRResNetConfig(mid_channels=64, num_blocks=1))
    model.save_pretrained(tmp_path)
    sd = load_file(tmp_path / "model.safetensors")
    del sd["conv_first.weight"]
    save_file(sd, tmp_path / "model.safetensors", metadata={"format": "pt"})
    loaded, info = MSRResNet.from_pretrained(tmp_path, output_loading_info=True)
    assert info["missing_keys"] == {"conv_first.weight"} or set(info["missing_keys"]) == {"conv_first.weight"}
    assert torch.equal(loaded.conv_last.weight, model.conv_last.weight)  # loaded: untouched
    w = loaded.conv_first.weight
    assert w.std().item() == pytest.approx(math.sqrt(2 / 27) * 0.1, rel=0.2)


def test_auto_classes():
    from transformers import AutoConfig, AutoModel, AutoModelForImageToImage

    assert isinstance(AutoModelForImageToImage.from_config(MSRResNetConfig(num_blocks=1)), MSRResNet)
    assert isinstance(AutoModel.from_config(AutoConfig.for_model("edsr", num_blocks=1)), EDSR)
    assert isinstance(AutoModel.from_config(DCGANConfig(generator_base_channels=16)), DCGANGenerator)


def tiny_gan_config(**kw):
    return DCGANConfig(image_size=16, generator_base_channels=32, discriminator_base_channels=8, **kw)


def test_dcgan_shapes_keys_and_range():
    config = DCGANConfig()
    g, d = DCGANGenerator(config), DCGANDiscriminator(config)
    assert g.noise2feat.conv.weight.shape == (100, 1024, 4, 4)
    assert [g.upsampling[i].conv.weight.shape[1] for i in range(3)] == [512, 256, 128]
    assert g.output_layer.conv.bias is not None and g.noise2feat.conv.bias is None
    assert d.downsamples[0].bn is None and d.downsamples[0].conv.bias is not None
    assert [d.downsamples[i].conv.weight.shape[0] for i in range(4)] == [128, 256, 512, 1024]
    assert d.downsamples[1].activate.negative_slope == 0.01
    images = g(num_batches=2)
    assert images.shape == (2, 3, 64, 64) and images.abs().max() <= 1
    assert d(images).shape == (2, 1)


def test_dcgan_init_and_reproducible_noise():
    g, d = DCGANGenerator(DCGANConfig()), DCGANDiscriminator(DCGANConfig())
    convs = [m for m in [*g.modules(), *d.modules()] if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    norms = [m for m in [*g.modules(), *d.modules()] if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(convs) == 5 + 5 and len(norms) == 4 + 3
    for conv in convs:  # N(0, 0.02), bias 0 where there is one
        assert conv.weight.std().item() == pytest.approx(0.02, rel=0.05)
        assert conv.weight.mean().abs().item() < 0.002
        assert conv.bias is None or torch.all(conv.bias == 0)
    for norm in norms:  # weight N(0, 1) (sic, MMagic), bias 0, fresh running statistics
        assert norm.weight.std().item() == pytest.approx(1.0, rel=0.25)
        assert torch.all(norm.bias == 0) and torch.all(norm.running_mean == 0) and torch.all(norm.running_var == 1)
    assert d.downsamples[0].conv.bias is not None and d.output_layer.conv.bias is not None
    small = DCGANGenerator(tiny_gan_config()).eval()
    a = small(num_batches=3, generator=torch.Generator().manual_seed(1))
    b = small(num_batches=3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    noise = torch.randn(3, 100)
    assert torch.equal(small(noise), small(noise[:, :, None, None]))


def test_dcgan_matches_functional_reference():
    """Generator and discriminator written with functional ops from REFERENCE.md: ConvT/Conv -> BN ->
    activation, Tanh at the end of G, LeakyReLU 0.01 in D, no activation on D's output."""
    torch.manual_seed(0)
    cfg = tiny_gan_config()
    g, d = DCGANGenerator(cfg).train(), DCGANDiscriminator(cfg).train()
    for p in [*g.parameters(), *d.parameters()]:  # non-trivial BN affine terms and biases
        p.data.normal_(0, 0.3)
    bn = lambda t, sd, n: F.batch_norm(t, None, None, sd[n + ".bn.weight"], sd[n + ".bn.bias"], training=True)
    gsd, dsd = g.state_dict(), d.state_dict()
    noise = torch.randn(4, cfg.noise_size)
    h = F.relu(bn(F.conv_transpose2d(noise[:, :, None, None], gsd["noise2feat.conv.weight"]), gsd, "noise2feat"))
    for i in range(len(g.upsampling)):
        name = f"upsampling.{i}"
        h = F.relu(bn(F.conv_transpose2d(h, gsd[name + ".conv.weight"], stride=2, padding=1), gsd, name))
    fake_ref = torch.tanh(
        F.conv_transpose2d(h, gsd["output_layer.conv.weight"], gsd["output_layer.conv.bias"], stride=2, padding=1)
    )
    with torch.no_grad():
        fake = g(noise)
    assert fake.shape == (4, 3, cfg.image_size, cfg.image_size)
    assert (fake - fake_ref).abs().max() < 1e-5

    h = F.leaky_relu(F.conv2d(fake_ref, dsd["downsamples.0.conv.weight"], dsd["downsamples.0.conv.bias"], stride=2, padding=1), 0.01)
    for i in range(1, len(d.downsamples)):
        name = f"downsamples.{i}"
        h = F.leaky_relu(bn(F.conv2d(h, dsd[name + ".conv.weight"], stride=2, padding=1), dsd, name), 0.01)
    logits_ref = F.conv2d(h, dsd["output_layer.conv.weight"], dsd["output_layer.conv.bias"]).view(4, -1)
    with torch.no_grad():
        logits = d(fake_ref)
    assert logits.shape == (4, 1) and (logits < 0).any()  # raw logits: no sigmoid, no activation
    assert (logits - logits_ref).abs().max() < 1e-4


def test_dcgan_bad_inputs():
    g, d = DCGANGenerator(tiny_gan_config()), DCGANDiscriminator(tiny_gan_config())
    with pytest.raises(ValueError, match="noise_size|noise"):
        g(torch.randn(2, 7))
    with pytest.raises(ValueError, match="num_batches"):
        g()
    with pytest.raises(ValueError, match=r"\(N, 3, 16, 16\)"):
        d(torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match="power of two"):
        DCGANConfig(image_size=48)
    with pytest.raises(ValueError, match="generator_input_scale=8"):
        DCGANConfig(image_size=64, generator_input_scale=8)


def test_dcgan_grayscale_and_roundtrip(tmp_path):
    cfg = tiny_gan_config(num_channels=1)
    g = DCGANGenerator(cfg)
    g.save_pretrained(tmp_path)
    loaded = DCGANGenerator.from_pretrained(tmp_path)
    noise = torch.randn(2, 100)
    g.eval(), loaded.eval()
    assert torch.equal(g(noise), loaded(noise))
    assert g(noise).shape == (2, 1, 16, 16)
    assert DCGANDiscriminator(cfg)(g(noise)).shape == (2, 1)


@pytest.mark.parametrize("model_type", list(HFMAGIC_MODELS))
def test_save_load_roundtrip_of_every_architecture(tmp_path, model_type):
    """Common test: save_pretrained / from_pretrained is bitwise, config included, with a card."""
    model = tiny_model(model_type).eval()
    model.save_pretrained(tmp_path)
    assert (tmp_path / "README.md").is_file()
    loaded = type(model).from_pretrained(tmp_path).eval()
    saved = {k: v for k, v in model.config.to_dict().items() if k != "_name_or_path"}
    assert {k: v for k, v in loaded.config.to_dict().items() if k != "_name_or_path"} == saved
    for (key, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), key


@pytest.mark.parametrize("cfg_cls", [pair[0] for pair in HFMAGIC_MODELS.values()])
def test_config_docstrings_list_every_field_with_its_real_default(cfg_cls):
    """The docstring's ``defaults to X`` must agree with the code (a classic drift)."""
    import ast
    import dataclasses
    import re

    from transformers import PretrainedConfig

    base_fields = {f.name for f in dataclasses.fields(PretrainedConfig)}
    documented = {
        name: ast.literal_eval(value.strip("`"))
        for name, value in re.findall(r"^\s+(\w+) \(`[^`]+`, \*optional\*, defaults to (.+)\):\s*$", cfg_cls.__doc__, re.M)
    }
    own = [f for f in dataclasses.fields(cfg_cls) if f.name not in base_fields]
    assert own, cfg_cls
    normalise = lambda v: list(v) if isinstance(v, (tuple, list)) else v
    for field in own:
        if field.name in ("in_channels", "out_channels") and cfg_cls is SRCNNConfig:
            continue  # derived from `channels`
        assert field.name in documented, f"{cfg_cls.__name__}.{field.name} is not documented"
        assert normalise(documented[field.name]) == normalise(field.default), field.name


@pytest.mark.parametrize("model_type", SR_MODEL_TYPES)
def test_models_trace_into_one_graph_for_torch_compile(model_type):
    # a graph break (e.g. reading exact mode's ContextVar) would split torch.compile's work
    import torch._dynamo

    model = tiny_model(model_type, upscale_factor=4).eval()
    explained = torch._dynamo.explain(lambda x: model(pixel_values=x).reconstruction)(torch.rand(1, 3, 8, 8))
    assert explained.graph_break_count == 0, explained.break_reasons


def test_config_checks_leave_user_fields_alone_and_take_numpy_ints():
    import numpy as np

    from hfmagic import SuperResolutionConfig

    class UserConfig(SuperResolutionConfig):
        model_type = "user-config-checks-test"
        window_size: int = -1  # the user's own meaning of -1 (and of None below)
        mid_channels: int = None

    config = UserConfig(upscale_factor=np.int64(2))
    assert (config.window_size, config.mid_channels) == (-1, None)
    assert type(config.upscale_factor) is int and config.to_dict()["upscale_factor"] == 2
    with pytest.raises(ValueError, match="UserConfig.upscale_factor must be an int"):
        UserConfig(upscale_factor=2.0)  # hfmagic's own field, in a subclass too


def test_from_pretrained_refuses_a_folder_saved_by_another_class(tmp_path):
    """transformers would load these with random (or mismatched) weights and a long report."""
    from hfmagic.hub import save_gan_pretrained

    EDSR(EDSRConfig(num_blocks=1, mid_channels=8)).save_pretrained(tmp_path / "edsr")
    with pytest.raises(ValueError, match=r"was saved as EDSR .*not MSRResNet: load it with EDSR.from_pretrained"):
        MSRResNet.from_pretrained(tmp_path / "edsr")
    assert type(EDSR.from_pretrained(tmp_path / "edsr")) is EDSR
    cfg = tiny_gan_config()
    save_gan_pretrained(DCGANGenerator(cfg), DCGANDiscriminator(cfg), tmp_path / "gan")
    with pytest.raises(ValueError, match=r"saved as DCGANDiscriminator.*subfolder='discriminator'"):
        DCGANGenerator.from_pretrained(tmp_path / "gan" / "discriminator")
    with pytest.raises(ValueError, match=r"saved as DCGANGenerator.*DCGANDiscriminator.from_pretrained\(path, subfolder='discriminator'\)"):
        DCGANDiscriminator.from_pretrained(tmp_path / "gan")
    assert type(DCGANDiscriminator.from_pretrained(tmp_path / "gan", subfolder="discriminator")) is DCGANDiscriminator

    class MyMSRResNet(MSRResNet):  # a user's subclass still loads the base class's folder
        pass

    MSRResNet(MSRResNetConfig(num_blocks=1, mid_channels=8)).save_pretrained(tmp_path / "msr")
    assert type(MyMSRResNet.from_pretrained(tmp_path / "msr")) is MyMSRResNet
