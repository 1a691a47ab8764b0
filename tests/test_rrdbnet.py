"""RRDBNet (ESRGAN / Real-ESRGAN generator): a functional reference written here from the published
layer definitions (the original ESRGAN repository's ``nn.Sequential`` names), init, save/load, every
checkpoint layout through ``convert_checkpoint`` and ``hfmagic convert``, and exact tiling of any
image size at x1/x2/x4 (pixel-unshuffled inputs)."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch.nn import functional as F

import hfmagic.pipelines as pipelines
from hfmagic import RRDBNet, RRDBNetConfig, SuperResolutionPipeline, convert_checkpoint
from hfmagic.cli import main
from hfmagic.convert import detect_arch
from hfmagic.pipelines import probe_receptive_field, probe_split_receptive_fields

pytestmark = pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")

TINY = {"mid_channels": 8, "num_blocks": 2, "growth_channels": 4}
ATOL = 1e-5


def tiny(scale, seed=0, random_weights=False, **kw):
    torch.manual_seed(seed)
    model = RRDBNet(RRDBNetConfig(upscale_factor=scale, **{**TINY, **kw})).eval()
    if random_weights:  # larger than the 0.1-scaled init, whose outputs are ~1e-5: seams show
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0, 0.15)
    return model


# ----------------------------------------------------------------------------- reference
def esrgan_weights(scale, mid=8, growth=4, blocks=2, channels=3, seed=0):
    """Random weights in the original ESRGAN layout (model.0, model.1.sub.N.RDBj.convk.0, ...)."""
    gen = torch.Generator().manual_seed(seed)
    unshuffle = 4 // scale

    def conv(out_ch, in_ch):
        return {"weight": torch.randn(out_ch, in_ch, 3, 3, generator=gen) * 0.1, "bias": torch.randn(out_ch, generator=gen) * 0.1}

    layers = {"model.0": conv(mid, channels * unshuffle**2)}
    for b in range(blocks):
        for j in (1, 2, 3):
            for k in range(1, 6):
                out_ch = mid if k == 5 else growth
                layers[f"model.1.sub.{b}.RDB{j}.conv{k}.0"] = conv(out_ch, mid + (k - 1) * growth)
    layers[f"model.1.sub.{blocks}"] = conv(mid, mid)
    for index in (3, 6, 8):
        layers[f"model.{index}"] = conv(mid, mid)
    layers["model.10"] = conv(channels, mid)
    return {f"{name}.{kind}": t for name, pair in layers.items() for kind, t in pair.items()}


def reference(sd, x, scale):
    """ESRGAN's RRDBNet from its definition (Wang et al. 2018; MMagic/BasicSR for x1/x2):
    LeakyReLU 0.2, dense blocks x + 0.2 * conv5(...), RRDB x + 0.2 * rdb3(rdb2(rdb1(x))),
    trunk residual, nearest x2 + conv + lrelu twice, conv_hr + lrelu, conv_last."""
    def conv(name, t):
        return F.conv2d(t, sd[f"{name}.weight"], sd[f"{name}.bias"], padding=1)

    lrelu = lambda t: F.leaky_relu(t, 0.2)
    s = 4 // scale
    if s > 1:  # pixel unshuffle: (b, c, h, w) -> (b, c*s*s, h/s, w/s), channel index c*s*s + dy*s + dx
        b, c, h, w = x.shape
        x = x.view(b, c, h // s, s, w // s, s).permute(0, 1, 3, 5, 2, 4).reshape(b, c * s * s, h // s, w // s)
    fea = conv("model.0", x)
    trunk = fea
    blocks = len({k.split(".")[3] for k in sd if ".RDB1." in k})
    for b in range(blocks):
        block_in = trunk
        for j in (1, 2, 3):
            feats = [trunk]
            for k in range(1, 5):
                feats.append(lrelu(conv(f"model.1.sub.{b}.RDB{j}.conv{k}.0", torch.cat(feats, 1))))
            trunk = trunk + 0.2 * conv(f"model.1.sub.{b}.RDB{j}.conv5.0", torch.cat(feats, 1))
        trunk = block_in + 0.2 * trunk
    fea = fea + conv(f"model.1.sub.{blocks}", trunk)
    fea = lrelu(conv("model.3", F.interpolate(fea, scale_factor=2, mode="nearest")))
    fea = lrelu(conv("model.6", F.interpolate(fea, scale_factor=2, mode="nearest")))
    return conv("model.10", lrelu(conv("model.8", fea)))


def rename_layout(sd, layout, blocks=2):
    """ESRGAN names -> "basicsr" (= MMagic's) or "bsrgan" names, spelled out by hand."""
    table = {"basicsr": ["conv_first", "conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last", "body.{b}.rdb{j}.conv{k}"],
             "bsrgan": ["conv_first", "trunk_conv", "upconv1", "upconv2", "HRconv", "conv_last", "RRDB_trunk.{b}.RDB{j}.conv{k}"]}[layout]
    names = {"model.0": table[0], f"model.1.sub.{blocks}": table[1], "model.3": table[2], "model.6": table[3], "model.8": table[4], "model.10": table[5]}
    for b in range(blocks):
        for j in (1, 2, 3):
            for k in range(1, 6):
                names[f"model.1.sub.{b}.RDB{j}.conv{k}.0"] = table[6].format(b=b, j=j, k=k)
    return {f"{names[key.rsplit('.', 1)[0]]}.{key.rsplit('.', 1)[1]}": value for key, value in sd.items()}


# ----------------------------------------------------------------------------- the model
def test_shapes_every_scale_and_sizes_that_are_not_multiples():
    for scale in (1, 2, 4):
        model = tiny(scale)
        assert model.input_multiple() == 4 // scale
        assert model.conv_first.in_channels == 3 * (4 // scale) ** 2
        x = torch.rand(2, 3, 8, 12)
        assert model(x).reconstruction.shape == (2, 3, 8 * scale, 12 * scale)
        feats = model.forward_features(x)
        assert feats.shape == (2, 8, 8 // model.input_multiple(), 12 // model.input_multiple())
    assert tiny(4)(torch.rand(1, 3, 5, 7)).reconstruction.shape == (1, 3, 20, 28)
    with pytest.raises(ValueError, match=r"RRDBNet x2 .*multiples of 2, got 5x8.*SuperResolutionPipeline"):
        tiny(2)(torch.rand(1, 3, 5, 8))
    with pytest.raises(ValueError, match=r"multiples of 4, got 8x6"):
        tiny(1)(torch.rand(1, 3, 8, 6))
    with torch.device("meta"):  # the full-size model, without allocating it
        assert sum(p.numel() for p in RRDBNet(RRDBNetConfig()).parameters()) == 16_697_987  # ESRGAN's 16.7M
        assert RRDBNet(RRDBNetConfig()).receptive_field() == 349


def test_outputs_equal_the_reference_with_the_same_weights():
    for scale in (1, 2, 4):
        sd = esrgan_weights(scale, seed=scale)
        model = tiny(scale)
        model.load_state_dict({**rename_layout(sd, "basicsr")})
        x = torch.rand(1, 3, 8, 12)
        with torch.no_grad():
            torch.testing.assert_close(model(x).reconstruction, reference(sd, x, scale), atol=ATOL, rtol=0)


def test_init_is_mmagic_default_init_weights_scale_0_1():
    torch.manual_seed(0)
    model = RRDBNet(RRDBNetConfig(num_blocks=1))
    for name in ["conv_first", "body.0.rdb1.conv1", "body.0.rdb3.conv5", "conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"]:
        conv = model.get_submodule(name)
        fan_in = conv.weight[0].numel()
        expected = 0.1 * (2 / fan_in) ** 0.5  # kaiming normal (fan_in, relu) x 0.1
        assert abs(conv.weight.std().item() / expected - 1) < 0.1, name
        assert abs(conv.weight.mean().item()) < 0.2 * expected and not conv.bias.any(), name


def test_save_load_round_trip_keeps_the_weights(tmp_path):
    model = tiny(2, seed=3)
    model.save_pretrained(tmp_path)
    loaded = RRDBNet.from_pretrained(tmp_path).eval()
    assert loaded.config.upscale_factor == 2 and loaded.config.growth_channels == 4
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key  # never re-initialised or re-scaled
    x = torch.rand(1, 3, 6, 10)
    with torch.no_grad():
        assert torch.equal(loaded(x).reconstruction, model(x).reconstruction)


# ----------------------------------------------------------------------------- conversion
def _checkpoint(layout, sd):
    if layout == "esrgan":  # the original repository's bare state dict (RRDB_ESRGAN_x4.pth)
        return sd
    if layout == "bsrgan":  # BSRGAN / RealSR: a bare state dict
        return rename_layout(sd, "bsrgan")
    names = rename_layout(sd, "basicsr")
    if layout == "basicsr":  # Real-ESRGAN's release files: {'params_ema': ...}
        return {"params_ema": names}
    return {"meta": {}, "state_dict": {f"generator_ema.module.{k}": v for k, v in names.items()}}  # MMagic


@pytest.mark.parametrize("layout", ["mmagic", "basicsr", "esrgan", "bsrgan"])
@pytest.mark.parametrize("scale", [1, 2, 4])
def test_every_layout_converts_through_the_function_and_the_cli(tmp_path, layout, scale):
    sd = esrgan_weights(scale, seed=scale)
    path = tmp_path / "ckpt.pth"
    torch.save(_checkpoint(layout, sd), path)
    flags = ["--arch", "rrdbnet"] if layout in ("esrgan", "mmagic") else []  # detected, or only checked
    assert main(["convert", str(path), str(tmp_path / "cli"), *flags]) == 0
    model = convert_checkpoint(path, tmp_path / "fn")
    x = torch.rand(1, 3, 8, 12)
    expected = reference(sd, x, scale)
    for converted in (model, RRDBNet.from_pretrained(tmp_path / "cli"), RRDBNet.from_pretrained(tmp_path / "fn")):
        config = converted.config
        assert (config.upscale_factor, config.num_blocks, config.mid_channels, config.growth_channels) == (scale, 2, 8, 4)
        assert (config.in_channels, config.out_channels) == (3, 3)
        with torch.no_grad():
            torch.testing.assert_close(converted.eval()(x).reconstruction, expected, atol=ATOL, rtol=0)
    card = (tmp_path / "cli" / "README.md").read_text()
    origin = {"mmagic": "MMagic", "basicsr": "BasicSR", "esrgan": "original ESRGAN", "bsrgan": "BSRGAN/RealSR"}[layout]
    assert f"Converted from the {origin} checkpoint" in card


@pytest.mark.parametrize("layout", ["basicsr", "esrgan", "bsrgan"])
def test_safetensors_files_of_every_layout(tmp_path, layout):
    from safetensors.torch import save_file

    sd = esrgan_weights(4, seed=7)
    tensors = _checkpoint(layout, sd)
    save_file({k: v.contiguous() for k, v in tensors.get("params_ema", tensors).items()}, tmp_path / "m.safetensors")
    assert main(["convert", str(tmp_path / "m.safetensors"), str(tmp_path / "out")]) == 0
    x = torch.rand(1, 3, 5, 7)
    with torch.no_grad():
        out = RRDBNet.from_pretrained(tmp_path / "out")(x).reconstruction
    torch.testing.assert_close(out, reference(sd, x, 4), atol=ATOL, rtol=0)


def test_params_ema_and_generator_ema_are_preferred(tmp_path):
    ema, raw = esrgan_weights(4, seed=1), esrgan_weights(4, seed=2)
    x = torch.rand(1, 3, 6, 6)
    bsr = {"params": rename_layout(raw, "basicsr"), "params_ema": rename_layout(ema, "basicsr")}
    mm = {"state_dict": {**{f"generator.{k}": v for k, v in rename_layout(raw, "basicsr").items()},
                         **{f"generator_ema.module.{k}": v for k, v in rename_layout(ema, "basicsr").items()}}}
    for ckpt in (bsr, mm):
        with torch.no_grad():
            torch.testing.assert_close(convert_checkpoint(ckpt)(x).reconstruction, reference(ema, x, 4), atol=ATOL, rtol=0)
            torch.testing.assert_close(convert_checkpoint(ckpt, ema=False)(x).reconstruction, reference(raw, x, 4), atol=ATOL, rtol=0)


def test_detection_does_not_collide_and_inconsistent_weights_are_named(tmp_path, capsys):
    sd = esrgan_weights(4)
    for layout in ("esrgan", "bsrgan"):
        assert detect_arch(_checkpoint(layout, sd)) == "rrdbnet"
    assert detect_arch(rename_layout(sd, "basicsr")) == "rrdbnet"
    # --arch only checks: another architecture's name is refused with the right one named
    path = tmp_path / "bsrgan.pth"
    torch.save(_checkpoint("bsrgan", sd), path)
    assert main(["convert", str(path), str(tmp_path / "out"), "--arch", "msrresnet"]) == 1
    assert "Pass --arch rrdbnet" in capsys.readouterr().err
    # one upsampling stage (BSRGAN's x2): another network
    one_stage = {k: v for k, v in _checkpoint("bsrgan", sd).items() if not k.startswith("upconv2.")}
    with pytest.raises(ValueError, match="upconv2.weight is missing: RRDBNet upsamples in two"):
        convert_checkpoint(one_stage)
    # conv_first's channels fit no scale
    odd = dict(sd, **{"model.0.weight": torch.zeros(8, 7, 3, 3)})
    with pytest.raises(ValueError, match=r"model\.0\.weight takes 7 input channels for 3 output channels"):
        convert_checkpoint(odd)
    # a dense-block conv of the wrong width: listed in the checkpoint's own names
    bad = dict(sd, **{"model.1.sub.1.RDB2.conv3.0.weight": torch.zeros(4, 9, 3, 3)})
    with pytest.raises(ValueError, match=r"wrong shapes: model\.1\.sub\.1\.RDB2\.conv3\.0\.weight"):
        convert_checkpoint(bad)
    missing = {k: v for k, v in sd.items() if not k.startswith("model.8.")}
    with pytest.raises(ValueError, match=r"missing keys: model\.8\.weight, model\.8\.bias"):
        convert_checkpoint(missing)
    with pytest.raises(ValueError, match="does not match the weights"):
        convert_checkpoint(sd, scale=2)


# ----------------------------------------------------------------------------- tiling
@pytest.mark.parametrize("scale", [1, 2, 4])
def test_receptive_fields_equal_the_nan_probe(scale):
    model = tiny(scale, num_blocks=1)
    m = 4 // scale
    assert model.receptive_field() == m * 19 == probe_receptive_field(model)  # m (15B + 4)
    assert model.split_receptive_fields() == (m * 17, m * 2) == probe_split_receptive_fields(model)


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_any_image_size_pads_reflect_and_tiles_exactly(scale, monkeypatch):
    monkeypatch.setattr(pipelines.tiling, "_MIN_FEATURE_REGION", 4)  # several feature regions
    model = tiny(scale, random_weights=True, num_blocks=1)
    pipe = SuperResolutionPipeline(model, device="cpu", dtype="float32")
    x = torch.rand(1, 3, 13, 18)  # neither a multiple of 4 nor of 2 (13)
    whole = pipe.upscale_tensor(x)
    m = 4 // scale
    padded = F.pad(x, (0, -18 % m, 0, -13 % m), mode="reflect")  # Real-ESRGAN's mod_pad
    with torch.no_grad():
        expected = model(padded).reconstruction[..., : 13 * scale, : 18 * scale]
    torch.testing.assert_close(whole, expected, atol=ATOL, rtol=0)
    heads = []
    head = model.forward_head
    monkeypatch.setattr(model, "forward_head", lambda f, p: heads.append(f.shape) or head(f, p))
    for kwargs in ({"tile_size": 5}, {"tile_size": 3, "batch_size": 2}, {"tile_size": 6, "tile_overlap": model.receptive_field()}):
        torch.testing.assert_close(pipe.upscale_tensor(x, **kwargs), whole, atol=ATOL, rtol=0)
    assert len(heads) > 4  # two-stage: the head ran per tile
    # too little context shows at the seams (the check above is sensitive)
    assert (pipe.upscale_tensor(x, tile_size=4, tile_overlap=0) - whole).abs().max() > 1e-2
    # exact mode: bit for bit, in float and through uint8 images
    exact = SuperResolutionPipeline(model, device="cpu", exact=True)
    assert torch.equal(exact.upscale_tensor(x, tile_size=8), exact.upscale_tensor(x))
    image = Image.fromarray(np.random.RandomState(scale).randint(0, 256, (11, 9, 3), dtype=np.uint8))
    out = exact(image, tile_size=6)
    assert out.size == (9 * scale, 11 * scale) and np.array_equal(np.asarray(out), np.asarray(exact(image)))


def test_large_outputs_tile_automatically(monkeypatch):
    model = tiny(4, random_weights=True, num_blocks=1)
    pipe = SuperResolutionPipeline(model, device="cpu", dtype="float32")
    x = torch.rand(1, 3, 30, 26)
    pipe.auto_tile_pixels = None
    whole = pipe.upscale_tensor(x)
    heads = []
    head = model.forward_head
    monkeypatch.setattr(model, "forward_head", lambda f, p: heads.append(f.shape) or head(f, p))
    monkeypatch.setattr(pipelines.tiling, "_AUTO_HEAD_TILE", 32)  # 8 LR pixels at x4
    pipe.auto_tile_pixels = 100 * 100  # the 120x104 output is larger
    torch.testing.assert_close(pipe.upscale_tensor(x), whole, atol=ATOL, rtol=0)
    assert len(heads) == 4 * 4 and max(s[-1] for s in heads) <= 8 + 2 * 2
    heads.clear()
    pipe.auto_tile_pixels = 200 * 200
    pipe.upscale_tensor(x)
    assert len(heads) == 1  # small enough: the whole image
