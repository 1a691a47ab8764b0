"""SRVGGNetCompact (Real-ESRGAN's compact network): the forward against a functional reference written
here from Real-ESRGAN's published definition (realesrgan/archs/srvgg_arch.py), shapes, init, configs,
conversion of Real-ESRGAN-layout files (``params`` / ``params_ema`` .pth, bare .safetensors) through
``convert_checkpoint`` and ``hfmagic convert``, and exact tiling in the pipeline and ``hfmagic upscale``."""

import math

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from torch.nn import functional as F

import hfmagic.pipelines as pipelines
from hfmagic import (
    EDSR,
    EDSRConfig,
    MSRResNet,
    MSRResNetConfig,
    SRVGGNetCompact,
    SRVGGNetCompactConfig,
    SuperResolutionPipeline,
    convert_checkpoint,
)
from hfmagic.cli import main
from hfmagic.convert import detect_arch
from hfmagic.pipelines import probe_receptive_field, probe_split_receptive_fields, receptive_field, split_receptive_fields

# torch.backends.mkldnn.flags() (exact mode) warns about Intel GPUs on every use.
pytestmark = pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")

ACTS = ("prelu", "relu", "leakyrelu")


# ----------------------------------------------------------------------------- the published network
def realesrgan_state(in_ch=3, num_feat=8, num_conv=2, upscale=4, act_type="prelu", seed=0):
    """A state dict in Real-ESRGAN's layout, built by hand: ``body`` is a ModuleList of
    conv, act, num_conv x (conv, act), conv to in_ch * upscale^2; PReLU(num_parameters=num_feat)
    holds ``body.<odd>.weight``, ReLU / LeakyReLU hold nothing."""
    gen = torch.Generator().manual_seed(seed)
    state, index = {}, 0
    widths = [(in_ch, num_feat)] + [(num_feat, num_feat)] * num_conv + [(num_feat, in_ch * upscale * upscale)]
    for n, (cin, cout) in enumerate(widths):
        state[f"body.{index}.weight"] = torch.randn(cout, cin, 3, 3, generator=gen) / math.sqrt(9 * cin)
        state[f"body.{index}.bias"] = torch.randn(cout, generator=gen) * 0.1
        if n < len(widths) - 1 and act_type == "prelu":
            state[f"body.{index + 1}.weight"] = 0.25 + 0.2 * torch.randn(cout, generator=gen)
        index += 2 if n < len(widths) - 1 else 1
    return state


def reference_forward(x, state, act_type, upscale):
    """Real-ESRGAN's SRVGGNetCompact.forward in plain torch: every body entry in order, PixelShuffle,
    plus the nearest-upsampled input (each pixel repeated upscale x upscale times)."""
    convs = sorted(int(k.split(".")[1]) for k in state if k.endswith(".bias"))
    out = x
    for i in convs:
        out = F.conv2d(out, state[f"body.{i}.weight"], state[f"body.{i}.bias"], padding=1)
        if i != convs[-1]:
            if act_type == "prelu":
                out = F.prelu(out, state[f"body.{i + 1}.weight"])
            elif act_type == "relu":
                out = F.relu(out)
            else:
                out = F.leaky_relu(out, negative_slope=0.1)
    out = F.pixel_shuffle(out, upscale)
    return out + x.repeat_interleave(upscale, dim=2).repeat_interleave(upscale, dim=3)


def config_for(state_kwargs):
    return SRVGGNetCompactConfig(
        upscale_factor=state_kwargs.get("upscale", 4),
        in_channels=state_kwargs.get("in_ch", 3),
        out_channels=state_kwargs.get("in_ch", 3),
        mid_channels=state_kwargs.get("num_feat", 8),
        num_convs=state_kwargs.get("num_conv", 2),
        act_type=state_kwargs.get("act_type", "prelu"),
    )


# ----------------------------------------------------------------------------- the model
@pytest.mark.parametrize("act_type", ACTS)
@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_forward_equals_the_published_definition(act_type, scale):
    kw = {"upscale": scale, "act_type": act_type}
    state = realesrgan_state(**kw)
    model = SRVGGNetCompact(config_for(kw)).eval()
    model.load_state_dict(state, strict=True)  # Real-ESRGAN's keys, as they are
    x = torch.rand(2, 3, 7, 5)
    with torch.no_grad():
        out = model(x).reconstruction
    assert out.shape == (2, 3, 7 * scale, 5 * scale)
    torch.testing.assert_close(out, reference_forward(x, state, act_type, scale), rtol=0, atol=1e-5)
    # the two halves the pipeline tiles with compose into the network
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, 3 * scale * scale, 7, 5)
        assert torch.equal(model.forward_head(feats, x), out)


def test_defaults_and_keys_are_real_esrgans():
    config = SRVGGNetCompactConfig()
    assert (config.mid_channels, config.num_convs, config.act_type, config.upscale_factor) == (64, 16, "prelu", 4)
    model = SRVGGNetCompact(config)
    # realesr-animevideov3: SRVGGNetCompact(num_feat=64, num_conv=16, upscale=4, act_type='prelu')
    published = realesrgan_state(num_feat=64, num_conv=16, upscale=4)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == {k: tuple(v.shape) for k, v in published.items()}
    assert len(model.body) == 2 * 16 + 3 and model.body[-1].out_channels == 48
    general = SRVGGNetCompact(SRVGGNetCompactConfig(num_convs=32))  # realesr-general-x4v3
    assert sum(p.numel() for p in general.parameters()) == 1_213_296
    leaky = SRVGGNetCompact(SRVGGNetCompactConfig(mid_channels=4, num_convs=1, act_type="leakyrelu"))
    assert leaky.body[1].negative_slope == 0.1 and not [k for k in leaky.state_dict() if k.startswith("body.1.")]


def test_init_is_pytorchs_default():
    torch.manual_seed(0)
    model = SRVGGNetCompact(SRVGGNetCompactConfig(mid_channels=16, num_convs=2))
    assert torch.equal(model.body[1].weight, torch.full((16,), 0.25))  # nn.PReLU's init
    for conv in model.body[0::2]:
        bound = 1 / math.sqrt(conv.weight[0].numel())  # kaiming_uniform(a=sqrt(5)) and its bias bound
        assert conv.weight.abs().max() <= bound and conv.weight.abs().max() > 0.9 * bound
        assert conv.bias.abs().max() <= bound and conv.bias.abs().max() > 0.5 * bound


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"act_type": "gelu"}, r"Unknown act_type='gelu'; choose one of \['prelu', 'relu', 'leakyrelu'\]"),
        ({"out_channels": 1}, r"out_channels \(1\) must equal in_channels \(3\)"),
        ({"upscale_factor": 5}, r"does not support upscale_factor=5"),
        ({"num_convs": -1}, r"num_convs must be >= 0"),
    ],
)
def test_config_refuses_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SRVGGNetCompactConfig(**kwargs)


@pytest.mark.parametrize("act_type", ACTS)
def test_save_load_round_trip(tmp_path, act_type):
    model = SRVGGNetCompact(SRVGGNetCompactConfig(upscale_factor=3, mid_channels=4, num_convs=1, act_type=act_type)).eval()
    model.save_pretrained(tmp_path)
    loaded = SRVGGNetCompact.from_pretrained(tmp_path).eval()
    assert loaded.config.act_type == act_type and loaded.config.num_convs == 1
    x = torch.rand(1, 3, 5, 6)
    assert torch.equal(loaded(x).reconstruction, model(x).reconstruction)


# ----------------------------------------------------------------------------- conversion
def _check(folder_or_model, state, act_type, scale, in_ch=3):
    model = folder_or_model if isinstance(folder_or_model, SRVGGNetCompact) else SRVGGNetCompact.from_pretrained(folder_or_model)
    x = torch.rand(1, in_ch, 6, 5)
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x).reconstruction, reference_forward(x, state, act_type, scale), rtol=0, atol=1e-5)
    return model


def test_real_esrgan_params_pth_converts_by_function_and_cli(tmp_path, capsys):
    # realesr-general-x4v3 / realesr-animevideov3 hold {'params': ...}
    state = realesrgan_state(num_feat=8, num_conv=3, upscale=4)
    torch.save({"params": state}, tmp_path / "realesr.pth")
    model = _check(convert_checkpoint(tmp_path / "realesr.pth"), state, "prelu", 4)
    assert (model.config.num_convs, model.config.mid_channels, model.config.act_type) == (3, 8, "prelu")
    assert main(["convert", str(tmp_path / "realesr.pth"), str(tmp_path / "cli")]) == 0
    err = capsys.readouterr().err
    assert "Converted the BasicSR SRVGGNetCompact (x4, mid_channels=8, num_convs=3, act_type=prelu)" in err
    _check(tmp_path / "cli", state, "prelu", 4)
    card = (tmp_path / "cli" / "README.md").read_text()
    assert "realesr.pth" in card and "Real-ESRGAN's `SRVGGNetCompact`" in card
    # Real-ESRGAN's weights are BSD-3-Clause, and the card says whose license it is
    assert "\nlicense: bsd-3-clause\n" in card and "the license of Real-ESRGAN's released weights" in card
    # --arch checks and agrees
    assert main(["convert", str(tmp_path / "realesr.pth"), str(tmp_path / "arch"), "--arch", "srvggnet_compact"]) == 0


def test_params_ema_is_preferred_and_no_ema_takes_params(tmp_path):
    raw, ema = realesrgan_state(upscale=2, seed=1), realesrgan_state(upscale=2, seed=2)
    torch.save({"params": raw, "params_ema": ema}, tmp_path / "both.pth")
    _check(convert_checkpoint(tmp_path / "both.pth"), ema, "prelu", 2)
    _check(convert_checkpoint(tmp_path / "both.pth", ema=False), raw, "prelu", 2)


def test_safetensors_and_mmagic_style_files_convert(tmp_path):
    state = realesrgan_state(num_feat=6, num_conv=2, upscale=3)
    save_file(state, tmp_path / "compact.safetensors")
    assert main(["convert", str(tmp_path / "compact.safetensors"), str(tmp_path / "st")]) == 0
    _check(tmp_path / "st", state, "prelu", 3)
    mm = {"meta": {}, "state_dict": {f"generator_ema.module.{k}": v for k, v in state.items()}}
    _check(convert_checkpoint(mm), state, "prelu", 3)


@pytest.mark.parametrize(
    "kw, expected",
    [
        ({"num_feat": 4, "num_conv": 32, "upscale": 4}, (4, 4, 32)),  # realesr-general-x4v3's depth, tiny width
        ({"num_feat": 5, "num_conv": 0, "upscale": 1}, (1, 5, 0)),
        ({"num_feat": 4, "num_conv": 1, "upscale": 3, "in_ch": 1}, (3, 4, 1)),
        ({"num_feat": 4, "num_conv": 2, "upscale": 8}, (8, 4, 2)),
    ],
)
def test_hyper_parameters_come_from_the_tensors(tmp_path, kw, expected):
    state = realesrgan_state(**kw)
    model = _check(convert_checkpoint({"params": state}), state, "prelu", kw["upscale"], kw.get("in_ch", 3))
    config = model.config
    assert (config.upscale_factor, config.mid_channels, config.num_convs) == expected
    assert config.in_channels == config.out_channels == kw.get("in_ch", 3)


@pytest.mark.parametrize("act_type", ["relu", "leakyrelu"])
def test_activation_free_weights_need_act_type(tmp_path, capsys, act_type):
    state = realesrgan_state(num_feat=6, num_conv=2, upscale=2, act_type=act_type)
    torch.save({"params": state}, tmp_path / "plain.pth")
    with pytest.raises(ValueError, match=r"no activation tensors .* pass --act-type relu or --act-type leakyrelu"):
        convert_checkpoint(tmp_path / "plain.pth")
    assert main(["convert", str(tmp_path / "plain.pth"), str(tmp_path / "none")]) == 1
    assert "--act-type relu or --act-type leakyrelu" in capsys.readouterr().err
    _check(convert_checkpoint(tmp_path / "plain.pth", act_type=act_type), state, act_type, 2)
    assert main(["convert", str(tmp_path / "plain.pth"), str(tmp_path / "cli"), "--act-type", act_type]) == 0
    model = _check(tmp_path / "cli", state, act_type, 2)
    assert model.config.act_type == act_type
    # the option matters: the other activation gives another output
    other = convert_checkpoint(tmp_path / "plain.pth", act_type="relu" if act_type == "leakyrelu" else "leakyrelu")
    x = torch.rand(1, 3, 6, 5) - 0.5
    assert (other(x).reconstruction - reference_forward(x, state, act_type, 2)).abs().max() > 1e-4
    with pytest.raises(ValueError, match=r"--act-type prelu does not match the weights"):
        convert_checkpoint(tmp_path / "plain.pth", act_type="prelu")


def test_act_type_errors(tmp_path):
    prelu = realesrgan_state()
    with pytest.raises(ValueError, match=r"--act-type relu \(act_type='relu'\) does not match the weights: they hold PReLU"):
        convert_checkpoint({"params": prelu}, act_type="relu")
    assert convert_checkpoint({"params": prelu}, act_type="prelu").config.act_type == "prelu"  # agrees: fine
    with pytest.raises(ValueError, match=r"Unknown act_type 'gelu'"):
        convert_checkpoint({"params": realesrgan_state(act_type="relu")}, act_type="gelu")
    msr = MSRResNet(MSRResNetConfig(mid_channels=4, num_blocks=1))
    with pytest.raises(ValueError, match=r"--act-type \(act_type=...\) only applies to SRVGGNetCompact, not MSRResNet"):
        convert_checkpoint(msr.state_dict(), act_type="relu")
    with pytest.raises(SystemExit):  # argparse's choices
        main(["convert", "x.pth", str(tmp_path / "o"), "--act-type", "gelu"])


def test_identification_does_not_collide_with_basicsr_body_layouts():
    compact = realesrgan_state(act_type="relu")
    assert detect_arch(compact) == detect_arch(realesrgan_state()) == "srvggnet_compact"
    # BasicSR's MSRResNet and EDSR also name their trunk `body.` (blocks inside it)
    msr = {k.replace("trunk_net.", "body.").replace("upsample1.upsample_conv.", "upconv1."): v
           for k, v in MSRResNet(MSRResNetConfig(mid_channels=4, num_blocks=2, upscale_factor=2)).state_dict().items()}
    assert detect_arch(msr) == "msrresnet"
    assert detect_arch(EDSR(EDSRConfig(mid_channels=4, num_blocks=2)).state_dict()) == "edsr"
    assert detect_arch({**compact, "conv_first.weight": torch.zeros(1)}) is None
    with pytest.raises(ValueError, match=r"--arch msrresnet does not match the checkpoint: its tensors are those of "
                                         r"SRVGGNetCompact \(x4, mid_channels=8, num_convs=2, act_type=prelu\)"):
        convert_checkpoint({"params": realesrgan_state()}, arch="msrresnet")


def test_malformed_compact_weights_are_named():
    state = realesrgan_state()
    del state["body.6.weight"], state["body.6.bias"]  # the last conv is gone: the body ends on a PReLU
    with pytest.raises(ValueError, match=r"The last body entry is body.5.weight"):
        convert_checkpoint({"params": state})
    state = realesrgan_state(upscale=2)
    state["body.6.weight"], state["body.6.bias"] = torch.zeros(10, 8, 3, 3), torch.zeros(10)
    with pytest.raises(ValueError, match=r"body.6.weight has 10 output channels: not 3\*s\^2"):
        convert_checkpoint({"params": state})


# ----------------------------------------------------------------------------- tiling
@pytest.mark.parametrize("num_convs", [0, 3])
@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_receptive_fields_equal_the_nan_probe(num_convs, scale):
    model = SRVGGNetCompact(SRVGGNetCompactConfig(upscale_factor=scale, mid_channels=4, num_convs=num_convs)).eval()
    assert receptive_field(model) == probe_receptive_field(model) == num_convs + 2
    assert split_receptive_fields(model) == probe_split_receptive_fields(model) == (num_convs + 2, 0)
    assert SRVGGNetCompact(SRVGGNetCompactConfig(num_convs=32)).receptive_field() == 34  # realesr-general-x4v3


def _tiny(scale, act_type="prelu"):
    torch.manual_seed(scale)
    model = SRVGGNetCompact(SRVGGNetCompactConfig(upscale_factor=scale, mid_channels=8, num_convs=2, act_type=act_type))
    model.load_state_dict(realesrgan_state(upscale=scale, act_type=act_type, seed=scale))
    return model


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_exact_tiles_equal_the_whole_image_bitwise(scale):
    pipe = SuperResolutionPipeline(_tiny(scale), device="cpu", exact=True)
    x = torch.rand(1, 3, 13, 11, generator=torch.Generator().manual_seed(scale))
    whole = pipe.upscale_tensor(x)
    for tile_size in (4, 5):  # neither divides 13 or 11
        assert torch.equal(pipe.upscale_tensor(x, tile_size=tile_size), whole), tile_size
    image = Image.fromarray(np.random.RandomState(scale).randint(0, 256, (13, 11, 3), dtype=np.uint8))
    assert np.array_equal(np.asarray(pipe(image, tile_size=4)), np.asarray(pipe(image)))


@pytest.mark.parametrize("scale", [2, 4])
def test_two_stage_tiling_equals_the_whole_image(scale, monkeypatch):
    monkeypatch.setattr(pipelines.tiling, "_MIN_FEATURE_REGION", 4)  # several feature regions on a small image
    pipe = SuperResolutionPipeline(_tiny(scale, "leakyrelu"), device="cpu", dtype="float32")
    heads = []
    head = pipe.model.forward_head
    monkeypatch.setattr(pipe.model, "forward_head", lambda f, x: heads.append(f.shape) or head(f, x))
    x = torch.rand(1, 3, 13, 11, generator=torch.Generator().manual_seed(0))
    whole = pipe.upscale_tensor(x)
    heads.clear()
    torch.testing.assert_close(pipe.upscale_tensor(x, tile_size=3), whole, rtol=0, atol=1e-5)
    assert len(heads) > 1 and max(s[-1] for s in heads) <= 3  # head tiles carry no context
    state = realesrgan_state(upscale=scale, act_type="leakyrelu", seed=scale)  # what _tiny loaded
    torch.testing.assert_close(whole, reference_forward(x, state, "leakyrelu", scale), rtol=0, atol=1e-5)


def test_upscale_cli_tiles_equal_the_whole_image(tmp_path, capsys):
    torch.save({"params": realesrgan_state(upscale=2)}, tmp_path / "realesr.pth")
    assert main(["convert", str(tmp_path / "realesr.pth"), str(tmp_path / "model")]) == 0
    Image.fromarray(np.random.RandomState(0).randint(0, 256, (13, 11, 3), dtype=np.uint8)).save(tmp_path / "x.png")
    common = ["--model", str(tmp_path / "model"), "--device", "cpu", "--exact"]
    assert main(["upscale", str(tmp_path / "x.png"), "--output", str(tmp_path / "whole"), *common]) == 0
    assert main(["upscale", str(tmp_path / "x.png"), "--output", str(tmp_path / "tiled"), "--tile", "4", *common]) == 0
    whole, tiled = (np.asarray(Image.open(tmp_path / d / "x.png")) for d in ("whole", "tiled"))
    assert whole.shape == (26, 22, 3) and np.array_equal(whole, tiled)


def test_denoise_strength_mix_recipe(tmp_path):
    """Real-ESRGAN's inference for realesr-general-x4v3 mixes it with realesr-general-wdn-x4v3
    (``-dn`` denoise strength s, 0.5 by default: s * general + (1 - s) * wdn, key by key); the recipe
    the docs give converts the mixed state dict."""
    general, wdn = realesrgan_state(num_conv=3, seed=1), realesrgan_state(num_conv=3, seed=2)
    s = 0.5
    mixed = {k: s * general[k] + (1 - s) * wdn[k] for k in general}
    _check(convert_checkpoint({"params": mixed}, tmp_path / "mixed"), mixed, "prelu", 4)
