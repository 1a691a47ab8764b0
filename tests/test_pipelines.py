"""SuperResolutionPipeline and DCGANPipeline: inputs, tiling, receptive fields, modes, dtypes, seeds."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from hfmagic import (
    EDSR,
    SRCNN,
    DCGANConfig,
    DCGANGenerator,
    DCGANPipeline,
    EDSRConfig,
    MSRResNet,
    MSRResNetConfig,
    SRCNNConfig,
    SuperResolutionConfig,
    SuperResolutionPipeline,
    SuperResolutionPreTrainedModel,
    register_model,
)
from hfmagic.layers import exact_interpolation, interpolate_upsample, periodic_upsample
import hfmagic.pipelines as pipelines
from hfmagic.pipelines import (
    make_grid,
    probe_receptive_field,
    receptive_field,
    split_receptive_fields,
    supports_split,
)
from hfmagic.pipelines.exact import aligned_context as _aligned_context
from hfmagic.pipelines.image_io import to_uint8 as _to_uint8

# torch.backends.mkldnn.flags() warns about Intel GPUs on every use.
pytestmark = pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")


def tiny_sr(kind, scale, **kw):
    torch.manual_seed(0)
    if kind == "srcnn":
        return SRCNN(SRCNNConfig(upscale_factor=scale, channels=(3, 8, 4, 3), **kw))
    if kind == "msrresnet":
        return MSRResNet(MSRResNetConfig(upscale_factor=scale, mid_channels=8, num_blocks=2, **kw))
    return EDSR(EDSRConfig(upscale_factor=scale, mid_channels=8, num_blocks=2, **kw))


def random_image(h, w, c=3, seed=0):
    shape = (h, w, c) if c else (h, w)
    return np.random.RandomState(seed).randint(0, 256, shape, dtype=np.uint8)


def to_tensor(array):
    return torch.from_numpy(array.copy()).permute(2, 0, 1)[None].float() / 255


# --------------------------------------------------------------------------------------------
# receptive fields
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    [
        SRCNN(SRCNNConfig(upscale_factor=s, channels=(3, 4, 4, 3), kernel_sizes=k))
        for s in (1, 2, 3, 4, 8)
        for k in ((9, 1, 5), (3, 3, 3))
    ]
    + [MSRResNet(MSRResNetConfig(upscale_factor=s, mid_channels=4, num_blocks=b)) for s in (2, 3, 4) for b in (0, 2)]
    + [EDSR(EDSRConfig(upscale_factor=s, mid_channels=4, num_blocks=b)) for s in (2, 3, 4, 8) for b in (0, 1)],
    ids=lambda m: f"{type(m).__name__}-x{m.config.upscale_factor}",
)
def test_receptive_field_formulas_equal_the_nan_probe(model):
    assert receptive_field(model) == probe_receptive_field(model.eval())


def test_receptive_field_of_default_models_as_documented():
    # Formulas only (no forward, so the full-size models are built on the meta device).
    with torch.device("meta"):
        assert receptive_field(SRCNN(SRCNNConfig())) == 3
        assert receptive_field(SRCNN(SRCNNConfig(upscale_factor=2))) == 5
        assert receptive_field(MSRResNet(MSRResNetConfig(num_blocks=16))) == 35  # 2B + 3
        assert receptive_field(MSRResNet(MSRResNetConfig(upscale_factor=3, num_blocks=5))) == 13
        assert receptive_field(EDSR(EDSRConfig(num_blocks=16))) == 36  # 2B + 4
        assert receptive_field(EDSR(EDSRConfig(upscale_factor=8, num_blocks=3))) == 10


# A user-defined SR model, registered the documented way.
class BlurSRConfig(SuperResolutionConfig):
    model_type = "blur_sr_test"

    def __init__(self, kernel_size: int = 5, **kwargs):
        self.kernel_size = kernel_size
        super().__init__(**kwargs)


class BlurSR(SuperResolutionPreTrainedModel):
    config_class = BlurSRConfig

    def __init__(self, config):
        super().__init__(config)
        s, k = config.upscale_factor, config.kernel_size
        self.conv = nn.Conv2d(3, 3 * s * s, k, padding=k // 2)
        self.post_init()

    def reconstruct(self, pixel_values):
        return F.pixel_shuffle(self.conv(pixel_values), self.config.upscale_factor)


class GlobalMeanSR(BlurSR):
    """Subtracts the image mean: every output pixel depends on every input pixel."""

    def reconstruct(self, pixel_values):
        return super().reconstruct(pixel_values - pixel_values.mean(dim=(2, 3), keepdim=True))


register_model(BlurSRConfig, BlurSR)


def test_user_model_loads_by_auto_class_and_tiles_exactly(tmp_path):
    torch.manual_seed(0)
    BlurSR(BlurSRConfig(upscale_factor=2, kernel_size=7)).save_pretrained(tmp_path)
    pipe = SuperResolutionPipeline.from_pretrained(tmp_path, device="cpu")
    assert type(pipe.model) is BlurSR and pipe.scale == 2
    assert pipe.receptive_field == 3  # probed: kernel 7 -> 3 pixels each side
    image = random_image(13, 11)
    with torch.backends.mkldnn.flags(enabled=False):
        whole = pipe.upscale_tensor(to_tensor(image))
        tiled = pipe.upscale_tensor(to_tensor(image), tile_size=4)
        direct = pipe.model(to_tensor(image)).reconstruction.detach()
    assert torch.equal(whole, tiled) and torch.equal(whole, direct)
    # A model may declare its receptive field; that wins over the probe.
    pipe.model.receptive_field = 9
    assert receptive_field(pipe.model) == 9


def test_unregistered_model_type_says_to_register_or_import(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "my_unregistered_sr", "upscale_factor": 2}')
    with pytest.raises(ValueError, match=r"not registered.*register_model\(YourConfig, YourModel\).*--import"):
        SuperResolutionPipeline.from_pretrained(tmp_path)


def test_unknown_receptive_field_warns_and_uses_default_overlap():
    model = GlobalMeanSR(BlurSRConfig(upscale_factor=2, kernel_size=3))
    assert probe_receptive_field(model) is None
    pipe = SuperResolutionPipeline(model, device="cpu")
    with pytest.warns(UserWarning, match="receptive field of GlobalMeanSR is unknown"):
        out = pipe(Image.fromarray(random_image(8, 8)), tile_size=4)
    assert out.size == (16, 16)


# --------------------------------------------------------------------------------------------
# tiling
# --------------------------------------------------------------------------------------------

TILE_CASES = [(kind, scale) for kind in ("srcnn", "msrresnet", "edsr") for scale in (2, 3, 4)]


@pytest.mark.parametrize("kind,scale", TILE_CASES)
def test_exact_tiled_float_output_is_bitwise_the_whole_image(kind, scale):
    pipe = SuperResolutionPipeline(tiny_sr(kind, scale), device="cpu", exact=True)
    x = to_tensor(random_image(13, 12, seed=scale))
    whole = pipe.upscale_tensor(x)
    # tile 4 divides 12, 5 divides neither side (batch_size is ignored in exact mode), 32 > image
    for tile_size, batch_size in ((4, 1), (5, 3), (32, 1)):
        tiled = pipe.upscale_tensor(x, tile_size=tile_size, batch_size=batch_size)
        assert torch.equal(tiled, whole), (tile_size, (tiled - whole).abs().max().item())
    # Exact mode is another arithmetic for the same function: close to the default mode's output.
    fast = SuperResolutionPipeline(pipe.model, device="cpu").upscale_tensor(x)
    torch.testing.assert_close(whole, fast, rtol=0, atol=1e-5)


def test_exact_mode_after_a_default_pipeline_used_the_same_model():
    """A default pipeline leaves the model's weights channels_last; an exact pipeline built on the
    same model afterwards must put them back (its tiles equal the whole image only in NCHW)."""
    model = tiny_sr("edsr", 3)
    x = to_tensor(random_image(13, 12, seed=3))
    SuperResolutionPipeline(model, device="cpu").upscale_tensor(x)
    assert model.conv_first.weight.is_contiguous(memory_format=torch.channels_last)
    exact = SuperResolutionPipeline(model, device="cpu", exact=True)
    whole = exact.upscale_tensor(x)
    assert model.conv_first.weight.is_contiguous()
    for tile_size in (5, 7):
        assert torch.equal(exact.upscale_tensor(x, tile_size=tile_size), whole), tile_size
    # and again after the default pipeline ran in between (the exact one had already run once)
    SuperResolutionPipeline(model, device="cpu").upscale_tensor(x)
    assert torch.equal(exact.upscale_tensor(x, tile_size=5), whole) and torch.equal(exact.upscale_tensor(x), whole)


@pytest.mark.parametrize("kind,scale", TILE_CASES)
def test_exact_tiled_uint8_output_equals_whole_image(kind, scale):
    pipe = SuperResolutionPipeline(tiny_sr(kind, scale), device="cpu", exact=True)
    image = Image.fromarray(random_image(15, 12, seed=10 + scale))
    whole = np.asarray(pipe(image))
    assert whole.shape == (15 * scale, 12 * scale, 3) and whole.dtype == np.uint8
    for tile_size in (4, 7):  # 4 divides 12, 7 divides neither side
        assert np.array_equal(np.asarray(pipe(image, tile_size=tile_size)), whole), tile_size


@pytest.mark.parametrize("kind", ["srcnn", "msrresnet", "edsr"])
def test_default_mode_tiles_agree_within_documented_bounds(kind):
    # oneDNN, NHWC, batched tiles, PyTorch's interpolation: shape-dependent kernels, ~1e-6 apart.
    pipe = SuperResolutionPipeline(tiny_sr(kind, 3), device="cpu")
    x = to_tensor(random_image(15, 12, seed=1))
    whole = pipe.upscale_tensor(x)
    torch.testing.assert_close(pipe.upscale_tensor(x, tile_size=5, batch_size=3), whole, rtol=0, atol=1e-5)
    image = Image.fromarray(random_image(15, 12, seed=2))
    diff = np.abs(np.asarray(pipe(image, tile_size=7, batch_size=2)).astype(int) - np.asarray(pipe(image)))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-2


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("scale", [1, 2, 3, 4, 8])
def test_periodic_upsample_is_interpolate_and_position_invariant(mode, scale):
    x = torch.rand(2, 3, 21, 17, generator=torch.Generator().manual_seed(scale))
    ours = periodic_upsample(x, scale, mode)
    reference = F.interpolate(x, scale_factor=scale, mode=mode, align_corners=False)
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-5)
    s = scale
    crop = periodic_upsample(x[:, :, 4:15, 3:12], scale, mode)  # 2 pixels of context each side
    assert torch.equal(crop[:, :, 2 * s : 9 * s, 2 * s : 7 * s], ours[:, :, 6 * s : 13 * s, 5 * s : 10 * s])
    assert periodic_upsample(x.bfloat16(), scale, mode).dtype == torch.bfloat16
    with exact_interpolation():
        assert torch.equal(interpolate_upsample(x, scale, mode), ours)
    assert torch.equal(interpolate_upsample(x, scale, mode), reference)  # MMagic's numbers by default
    with pytest.raises(ValueError, match="mode"):
        periodic_upsample(x, scale, "nearest")


def test_exact_tiling_with_many_threads():
    # With 8 threads MKL cuts a 3-channel convolution's pixels into per-thread chunks at places that
    # depend on the image size (this case differed in 8 values before such convolutions ran on one thread).
    threads = torch.get_num_threads()
    torch.manual_seed(0)
    pipe = SuperResolutionPipeline(EDSR(EDSRConfig(upscale_factor=3, mid_channels=16, num_blocks=1)), device="cpu", exact=True)
    x = torch.rand(1, 3, 120, 97, generator=torch.Generator().manual_seed(0))
    torch.set_num_threads(8)
    try:
        assert torch.equal(pipe.upscale_tensor(x, tile_size=57), pipe.upscale_tensor(x))
        assert torch.get_num_threads() == 8
    finally:
        torch.set_num_threads(threads)


def test_aligned_context_grows_corner_tiles_only():
    for height, width in ((13, 12), (40, 33), (7, 100)):
        for context in ((0, 5, 0, 6), (height - 5, height, width - 6, width), (2, 7, 0, 6), (0, 5, 3, width)):
            y0, y1, x0, x1 = _aligned_context(context, height, width)
            assert 0 <= y0 <= context[0] and context[1] <= y1 <= height and 0 <= x0 <= context[2] and context[3] <= x1 <= width
            corner = context[::2] == (0, 0) or (context[1], context[3]) == (height, width)
            if corner:
                assert (y1 - y0) * (x1 - x0) % 32 == height * width % 32, (height, width, context)
            else:
                assert (y0, y1, x0, x1) == context


def test_exact_mode_is_cpu_only_and_runs_one_tile_at_a_time():
    with pytest.raises(ValueError, match="only available on CPU"):
        SuperResolutionPipeline(tiny_sr("edsr", 2), device="meta", exact=True)
    pipe = SuperResolutionPipeline(tiny_sr("edsr", 2), device="cpu", exact=True)
    seen = []
    pipe.model.register_forward_hook(
        lambda module, args, kwargs, out: seen.append((kwargs["pixel_values"].shape[0], torch.backends.mkldnn.enabled)),
        with_kwargs=True,
    )
    pipe.upscale_array(random_image(12, 12), tile_size=4, batch_size=4)
    assert seen == [(1, False)] * 9  # oneDNN off inside the forward only
    assert torch.backends.mkldnn.enabled


def test_tiling_without_enough_overlap_differs():
    # The check above is sensitive: too little context shows at the seams.
    pipe = SuperResolutionPipeline(tiny_sr("msrresnet", 2), device="cpu")
    image = Image.fromarray(random_image(16, 16))
    whole = np.asarray(pipe(image)).astype(int)
    seams = np.asarray(pipe(image, tile_size=4, tile_overlap=0)).astype(int)
    assert np.abs(seams - whole).max() > 1
    assert np.abs(np.asarray(pipe(image, tile_size=4, tile_overlap=pipe.receptive_field)).astype(int) - whole).max() <= 1
    exact = SuperResolutionPipeline(pipe.model, device="cpu", exact=True)
    whole = np.asarray(exact(image))
    assert np.array_equal(np.asarray(exact(image, tile_size=4)), whole)
    assert np.abs(np.asarray(exact(image, tile_size=4, tile_overlap=0)).astype(int) - whole).max() > 1


def test_model_only_sees_tiles_and_output_is_uint8():
    pipe = SuperResolutionPipeline(tiny_sr("edsr", 2), device="cpu")
    shapes = []
    pipe.model.register_forward_hook(lambda module, args, kwargs, out: shapes.append(tuple(kwargs["pixel_values"].shape)), with_kwargs=True)
    overlap = 2
    out = pipe.upscale_array(random_image(30, 25), tile_size=8, tile_overlap=overlap, batch_size=4)
    assert out.dtype == np.uint8 and out.shape == (60, 50, 3)
    assert max(h for _, _, h, _ in shapes) <= 8 + 2 * overlap and max(w for *_, w in shapes) <= 8 + 2 * overlap
    assert sum(n for n, *_ in shapes) == 4 * 4  # ceil(30/8) x ceil(25/8) tiles, each once
    assert max(n for n, *_ in shapes) <= 4


# --------------------------------------------------------------------------------------------
# two-stage tiling (forward_features on large LR regions, forward_head on small tiles)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["msrresnet", "edsr"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_split_receptive_fields_equal_the_nan_probe(kind, scale):
    model = tiny_sr(kind, scale).eval()
    formula = split_receptive_fields(model)
    assert formula == ((5 if kind == "msrresnet" else 6), 2)  # 2B + 1 / 2B + 2 with B = 2
    assert pipelines.probe_split_receptive_fields(model) == formula
    # the two stages compose into the whole network
    x = torch.rand(1, 3, 9, 11)
    with torch.inference_mode():
        torch.testing.assert_close(model.forward_head(model.forward_features(x), x), model(x).reconstruction, rtol=0, atol=0)


def test_only_feature_head_models_split():
    assert supports_split(tiny_sr("msrresnet", 4)) and supports_split(tiny_sr("edsr", 2))
    assert not supports_split(tiny_sr("srcnn", 2))
    assert split_receptive_fields(tiny_sr("srcnn", 2)) is None

    class Patched(MSRResNet):  # overrides reconstruct: the split no longer describes the network
        def reconstruct(self, pixel_values):
            return super().reconstruct(pixel_values) * 0.5

    patched = Patched(tiny_sr("msrresnet", 2).config)
    assert not supports_split(patched)
    pipe = SuperResolutionPipeline(patched, device="cpu")
    assert pipe.split_receptive_fields is None and pipe.receptive_field == 7  # probed: one forward
    calls = []
    patched.register_forward_hook(lambda *args: calls.append(1))
    x = torch.rand(1, 3, 12, 12)
    torch.testing.assert_close(pipe.upscale_tensor(x, tile_size=4), pipe.upscale_tensor(x), rtol=0, atol=1e-5)
    assert len(calls) == 9 + 1  # single-stage tiles through forward()


@pytest.mark.parametrize("kind", ["msrresnet", "edsr"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_two_stage_tiling_equals_the_whole_image(kind, scale, monkeypatch):
    monkeypatch.setattr(pipelines.tiling, "_MIN_FEATURE_REGION", 4)  # several feature regions on a small image
    pipe = SuperResolutionPipeline(tiny_sr(kind, scale), device="cpu")
    calls = {"forward": 0, "features": [], "head": []}
    pipe.model.register_forward_hook(lambda *args: calls.__setitem__("forward", calls["forward"] + 1))
    features, head = pipe.model.forward_features, pipe.model.forward_head
    monkeypatch.setattr(pipe.model, "forward_features", lambda x: calls["features"].append(x.shape) or features(x))
    monkeypatch.setattr(pipe.model, "forward_head", lambda f, x: calls["head"].append(f.shape) or head(f, x))
    x = to_tensor(random_image(23, 30, seed=scale))
    whole = pipe.upscale_tensor(x)
    assert calls["forward"] == 1 and len(calls["features"]) == len(calls["head"]) == 1  # whole image: one pass
    calls.update(forward=0, features=[], head=[])
    tiled = pipe.upscale_tensor(x, tile_size=3, batch_size=2)
    torch.testing.assert_close(tiled, whole, rtol=0, atol=1e-5)
    assert calls["forward"] == 0
    # feature regions (+ both halos), head tiles of 3 (+ the head's halo)
    feature_halo, head_halo = pipe.split_receptive_fields
    region = pipelines.feature_region_size(scale, 3, feature_halo)
    assert region == max(scale * 3 // 2, 4, 4 * feature_halo)
    assert len(calls["features"]) == -(-23 // region) * -(-30 // region)
    assert max(s[-1] for s in calls["features"]) <= region + 2 * (feature_halo + head_halo)
    assert max(s[-1] for s in calls["head"]) <= 3 + 2 * head_halo
    assert sum(s[0] for s in calls["head"]) == sum(len(pipelines.tiling._cores(y1 - y0, x1 - x0, 3)) for y0, y1, x0, x1 in pipelines.tiling._cores(23, 30, region))
    # uint8 through the public call
    image = Image.fromarray(random_image(17, 14, seed=7))
    diff = np.abs(np.asarray(pipe(image, tile_size=4)).astype(int) - np.asarray(pipe(image)))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-2


def test_two_stage_tiling_is_sensitive_to_each_halo(monkeypatch):
    monkeypatch.setattr(pipelines.tiling, "_MIN_FEATURE_REGION", 4)
    pipe = SuperResolutionPipeline(tiny_sr("msrresnet", 4), device="cpu")
    x = to_tensor(random_image(20, 20))
    whole = pipe.upscale_tensor(x)
    feature_halo, head_halo = pipe.split_receptive_fields
    for fields in [(0, head_halo), (feature_halo, 0)]:
        pipe._split_fields = fields
        assert (pipe.upscale_tensor(x, tile_size=3) - whole).abs().max() > 1e-4, fields  # vs ~1e-7 when right


def test_single_stage_when_exact_or_overlap_given_or_switched_off():
    x = to_tensor(random_image(12, 12))
    for pipe, kwargs in [
        (SuperResolutionPipeline(tiny_sr("edsr", 2), device="cpu", exact=True), {}),
        (SuperResolutionPipeline(tiny_sr("edsr", 2), device="cpu"), {"tile_overlap": 3}),
        (SuperResolutionPipeline(tiny_sr("edsr", 2), device="cpu", split_tiling=False), {}),
    ]:
        calls = []
        pipe.model.register_forward_hook(lambda *args: calls.append(1))
        pipe.upscale_tensor(x, tile_size=4, **kwargs)
        assert len(calls) == 9  # nine tiles, each a whole forward


def test_user_split_model_is_probed_and_checked():
    class HalfHeadConfig(SuperResolutionConfig):
        model_type = "test-split-sr"

    class SplitSR(SuperResolutionPreTrainedModel):
        config_class = HalfHeadConfig

        def __init__(self, config):
            super().__init__(config)
            self.body = nn.Sequential(nn.Conv2d(3, 4, 5, padding=2), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1))
            self.head = nn.Conv2d(4, 3 * config.upscale_factor**2, 3, padding=1)
            self.post_init()

        def forward_features(self, pixel_values):
            return self.body(pixel_values)

        def forward_head(self, features, pixel_values):
            return F.pixel_shuffle(self.head(features), self.config.upscale_factor)

    torch.manual_seed(0)
    model = SplitSR(HalfHeadConfig(upscale_factor=2))
    assert split_receptive_fields(model) == (3, 1)
    pipe = SuperResolutionPipeline(model, device="cpu")
    x = torch.rand(1, 3, 10, 13)
    torch.testing.assert_close(pipe.upscale_tensor(x, tile_size=4), pipe.upscale_tensor(x), rtol=0, atol=1e-5)

    class Downsampling(SplitSR):
        def forward_features(self, pixel_values):
            return F.avg_pool2d(self.body(pixel_values), 1, stride=2)

    broken = SuperResolutionPipeline(Downsampling(HalfHeadConfig(upscale_factor=2)), device="cpu")
    broken._split_fields, broken._split_fields_known = (3, 1), True
    with pytest.raises(ValueError, match="forward_features must keep the input's resolution"):
        broken.upscale_tensor(x, tile_size=4)


def test_rounding_follows_mmagic_tensor2img():
    values = torch.tensor([-0.2, 0.0, 0.5 / 255, 1.5 / 255, 0.4, 0.9999, 1.0, 1.3]).view(1, 1, -1)
    expected = np.round(np.clip(values.numpy(), 0, 1) * 255.0).astype(np.uint8)  # numpy: half to even
    assert np.array_equal(_to_uint8(values)[:, :, 0], expected[0])
    gan = torch.tensor([-1.5, -1.0, 0.0, 0.3, 1.0]).view(1, 1, -1)
    assert _to_uint8(gan, -1.0, 1.0)[0, :, 0].tolist() == [0, 0, 128, 166, 255]


def test_bad_tile_arguments():
    pipe = SuperResolutionPipeline(tiny_sr("edsr", 2), device="cpu")
    image = random_image(8, 8)
    with pytest.raises(ValueError, match="tile_size"):
        pipe(image, tile_size=0)
    with pytest.raises(ValueError, match="tile_overlap"):
        pipe(image, tile_size=4, tile_overlap=-1)
    with pytest.raises(ValueError, match="batch_size"):
        pipe(image, batch_size=0)
    with pytest.raises(ValueError, match="alpha_mode"):
        pipe(image, alpha_mode="drop")


# --------------------------------------------------------------------------------------------
# inputs and modes
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_sr(tmp_path_factory):
    folder = tmp_path_factory.mktemp("msrresnet")
    tiny_sr("msrresnet", 2).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def pipe(saved_sr):
    return SuperResolutionPipeline.from_pretrained(saved_sr, device="cpu")


def test_from_pretrained_matches_the_model(pipe, saved_sr):
    assert isinstance(pipe.model, MSRResNet) and not pipe.model.training
    array = random_image(9, 7)
    model = MSRResNet.from_pretrained(saved_sr)
    expected = _to_uint8(model(to_tensor(array)).reconstruction.detach()[0])
    assert np.array_equal(np.asarray(pipe(Image.fromarray(array))), expected)


def test_all_input_kinds_agree(pipe, tmp_path):
    array = random_image(9, 7)
    Image.fromarray(array).save(tmp_path / "a.png")
    reference = np.asarray(pipe(Image.fromarray(array)))
    for single in (array, str(tmp_path / "a.png"), tmp_path / "a.png"):
        out = pipe(single)
        assert isinstance(out, Image.Image) and out.mode == "RGB"
        assert np.array_equal(np.asarray(out), reference)
    outs = pipe([Image.fromarray(array), array, tmp_path / "a.png"])
    assert isinstance(outs, list) and len(outs) == 3
    assert all(np.array_equal(np.asarray(o), reference) for o in outs)
    assert isinstance(pipe([array]), list)


def test_grayscale_is_replicated_and_averaged(pipe):
    gray = random_image(9, 7, c=0)
    out = pipe(gray)
    assert out.mode == "L" and out.size == (14, 18)
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    floats = pipe.upscale_tensor(to_tensor(rgb))
    expected = _to_uint8(floats[0].mean(dim=0, keepdim=True))[:, :, 0]
    assert np.array_equal(np.asarray(out), expected)
    assert np.array_equal(np.asarray(pipe(Image.fromarray(gray))), expected)  # PIL "L"
    assert np.array_equal(np.asarray(pipe(gray[:, :, None])), expected)  # (H, W, 1)
    assert np.array_equal(pipe.upscale_array(gray)[:, :, 0], expected)
    assert pipe(Image.fromarray(gray).convert("1")).mode == "L"


def test_rgba_alpha_by_model_and_by_bicubic(pipe):
    rgba = random_image(9, 7, c=4)
    rgb_out = np.asarray(pipe(rgba[:, :, :3]))
    alpha_out = np.asarray(pipe(rgba[:, :, 3]))  # alpha as a grayscale image
    out = pipe(Image.fromarray(rgba))
    assert out.mode == "RGBA" and out.size == (14, 18)
    assert np.array_equal(np.asarray(out)[:, :, :3], rgb_out)
    assert np.array_equal(np.asarray(out)[:, :, 3], alpha_out)

    out = pipe(rgba, alpha_mode="bicubic")
    bicubic = np.asarray(Image.fromarray(rgba[:, :, 3]).resize((14, 18), Image.Resampling.BICUBIC))
    assert np.array_equal(np.asarray(out)[:, :, 3], bicubic)
    assert np.array_equal(np.asarray(out)[:, :, :3], rgb_out)

    la = Image.fromarray(rgba[:, :, :2])  # (H, W, 2) -> "LA"
    out = pipe(la, tile_size=4)
    assert out.mode == "LA"
    assert np.array_equal(np.asarray(out)[:, :, 1], np.asarray(pipe(rgba[:, :, 1], tile_size=4)))

    # a constant alpha (a fully opaque RGBA photo) stays exactly constant, whatever the model does
    for value in (255, 128, 0):
        opaque = rgba.copy()
        opaque[:, :, 3] = value
        for mode in ("model", "bicubic"):
            out = np.asarray(pipe(opaque, alpha_mode=mode))
            assert (out[:, :, 3] == value).all() and np.array_equal(out[:, :, :3], rgb_out), (value, mode)


def test_palette_and_cmyk_are_converted(pipe):
    palette = Image.fromarray(random_image(9, 7)).convert("P")
    assert pipe(palette).mode == "RGB"
    palette.info["transparency"] = 0
    assert pipe(palette).mode == "RGBA"
    assert pipe(Image.fromarray(random_image(9, 7)).convert("CMYK")).mode == "RGB"


# ---- 16-bit images


@pytest.fixture(scope="module")
def pipe32(saved_sr):
    return SuperResolutionPipeline.from_pretrained(saved_sr, device="cpu", dtype="float32")


def gradient16(h, w, c=3):
    """A smooth 16-bit image whose values are (almost) never multiples of 257, i.e. not 8-bit levels."""
    y, x = np.mgrid[0:h, 0:w]
    planes = [(y * 4099 + x * 2311 + k * 6007) * 7 % 65536 for k in range(c)]
    return np.stack(planes, axis=2).astype(np.uint16)


def to_uint16(floats):
    """(C, H, W) float -> (H, W, C) uint16 as the pipeline rounds: round(clamp(x, 0, 1) * 65535)."""
    return (floats.clamp(0, 1) * 65535).round().to(torch.int32).permute(1, 2, 0).numpy().astype(np.uint16)


def test_16bit_rgb_is_computed_from_x_over_65535_and_returned_as_uint16(pipe32):
    image = gradient16(9, 7)
    out = pipe32(image)
    assert isinstance(out, np.ndarray) and out.dtype == np.uint16 and out.shape == (18, 14, 3)
    floats = pipe32.upscale_tensor(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 65535)[0]
    np.testing.assert_array_equal(out, to_uint16(floats))
    assert (out % 257 != 0).mean() > 0.9  # not 8-bit levels
    # the 8-bit path of the same picture is 128x coarser: 16 bits keep what 8 bits round away
    eight = np.asarray(pipe32(np.rint(image / 257).astype(np.uint8))).astype(np.float64) * 257
    truth = floats.clamp(0, 1).permute(1, 2, 0).numpy() * 65535
    assert np.abs(out - truth).max() <= 0.5 + 1e-3
    assert np.abs(eight - truth).max() > 20 * np.abs(out - truth).max()
    assert np.array_equal(pipe32.upscale_array(image), out)


def test_16bit_grayscale_inputs_agree(pipe32):
    gray = gradient16(9, 7, c=1)[:, :, 0]
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    floats = pipe32.upscale_tensor(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 65535)[0]
    expected = to_uint16(floats.mean(dim=0, keepdim=True))[:, :, 0]
    for image in (gray, gray[:, :, None], Image.fromarray(gray), Image.fromarray(gray.astype(np.int32)), gray.astype(">u2")):
        out = pipe32(image)
        assert out.dtype == np.uint16 and out.shape == (18, 14)
        np.testing.assert_array_equal(out, expected)
    assert Image.fromarray(gray).mode == "I;16" and Image.fromarray(gray.astype(np.int32)).mode == "I"


def test_16bit_alpha_by_model_bicubic_and_constant(pipe32):
    rgba = gradient16(9, 7, c=4)
    out = pipe32(rgba)
    assert out.dtype == np.uint16 and out.shape == (18, 14, 4)
    np.testing.assert_array_equal(out[:, :, :3], pipe32(rgba[:, :, :3]))
    np.testing.assert_array_equal(out[:, :, 3], pipe32(rgba[:, :, 3]))
    out = pipe32(rgba, alpha_mode="bicubic")
    bicubic = np.asarray(Image.fromarray(rgba[:, :, 3].astype(np.float32)).resize((14, 18), Image.Resampling.BICUBIC))
    np.testing.assert_array_equal(out[:, :, 3], np.clip(np.rint(bicubic), 0, 65535).astype(np.uint16))
    assert (out[:, :, 3] % 257 != 0).any()
    la = pipe32(rgba[:, :, 1:3])  # gray + alpha
    assert la.shape == (18, 14, 2)
    np.testing.assert_array_equal(la[:, :, 0], pipe32(rgba[:, :, 1]))
    opaque = rgba.copy()
    opaque[:, :, 3] = 65535
    assert (pipe32(opaque)[:, :, 3] == 65535).all()


def test_16bit_files_equal_their_arrays(pipe32, tmp_path):
    from hfmagic.data import save_image

    rgb, rgba, gray = gradient16(9, 7), gradient16(9, 7, c=4), gradient16(9, 7, c=1)[:, :, 0]
    save_image(rgb, tmp_path / "rgb.png")
    save_image(rgba, tmp_path / "rgba.png")
    Image.fromarray(gray).save(tmp_path / "gray.png")  # Pillow's own 16-bit grayscale PNG
    Image.fromarray(gray).save(tmp_path / "gray.tif")
    for path, array in (("rgb.png", rgb), ("rgba.png", rgba), ("gray.png", gray), ("gray.tif", gray)):
        np.testing.assert_array_equal(pipe32(tmp_path / path), pipe32(array), err_msg=path)


@pytest.mark.parametrize("kind,scale", [("msrresnet", 2), ("edsr", 3), ("srcnn", 4)])
def test_16bit_tiles_equal_whole_in_exact_mode(kind, scale):
    exact = SuperResolutionPipeline(tiny_sr(kind, scale), device="cpu", exact=True)
    assert exact.dtype == torch.float32
    for image in (gradient16(13, 11), gradient16(13, 11, c=1)[:, :, 0], gradient16(13, 11, c=4)):
        whole = exact(image)
        for tile in (4, 5):
            np.testing.assert_array_equal(exact(image, tile_size=tile), whole)


def test_16bit_default_mode_tiles_agree_within_a_level(pipe32):
    image = gradient16(13, 11)
    whole = pipe32(image).astype(int)
    for kwargs in ({"tile_size": 4}, {"tile_size": 5, "batch_size": 3}, {"tile_size": 4, "tile_overlap": 8}):
        assert np.abs(pipe32(image, **kwargs) - whole).max() <= 1


def test_16bit_in_half_precision_warns(saved_sr):
    half = SuperResolutionPipeline.from_pretrained(saved_sr, device="cpu", dtype="bfloat16")
    with pytest.warns(UserWarning, match=r"16-bit image in bfloat16.*dtype='float32'"):
        out = half(gradient16(5, 5))
    assert out.dtype == np.uint16


def test_unsupported_inputs_raise_clear_errors(pipe, tmp_path):
    with pytest.raises(ValueError, match=r"'F' images \(32-bit float\).*np.clip.*for a float image in 0..255"):
        pipe(Image.new("F", (6, 6)))
    with pytest.raises(ValueError, match=r"uint8 or uint16.*float32.*np.round\(a \* 65535\)"):
        pipe(np.zeros((6, 6, 3), np.float32))
    with pytest.raises(ValueError, match=r"'I' \(32-bit integer\) image holds values from -1 to 70000.*0..65535"):
        pipe(Image.fromarray(np.array([[-1, 70000]], dtype=np.int32)))
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        pipe(np.zeros((6, 6, 5), np.uint8))
    with pytest.raises(TypeError, match="PIL image"):
        pipe(torch.zeros(3, 6, 6))
    with pytest.raises(FileNotFoundError, match="missing.png"):
        pipe(tmp_path / "missing.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="broken.png"):
        pipe(tmp_path / "broken.png")


@pytest.mark.parametrize("dtype", ["bfloat16", torch.float16])
def test_half_precision_on_cpu(saved_sr, pipe, dtype):
    half = SuperResolutionPipeline.from_pretrained(saved_sr, device="cpu", dtype=dtype)
    assert next(half.model.parameters()).dtype in (torch.bfloat16, torch.float16)
    image = random_image(9, 7)
    diff = np.abs(np.asarray(half(image, tile_size=4)).astype(int) - np.asarray(pipe(image)))
    assert diff.mean() < 2 and diff.max() <= 8
    with pytest.raises(ValueError, match="float64"):
        SuperResolutionPipeline(tiny_sr("edsr", 2), dtype="float64")


def test_wrong_model_kinds(tmp_path):
    DCGANGenerator(DCGANConfig(image_size=8, generator_base_channels=8, generator_input_scale=4)).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="DCGANPipeline"):
        SuperResolutionPipeline.from_pretrained(tmp_path, device="cpu")
    with pytest.raises(TypeError, match="SuperResolutionPreTrainedModel"):
        SuperResolutionPipeline(DCGANGenerator.from_pretrained(tmp_path))
    with pytest.raises(TypeError, match="sample_noise"):
        DCGANPipeline(tiny_sr("edsr", 2))


# --------------------------------------------------------------------------------------------
# DCGAN
# --------------------------------------------------------------------------------------------


def tiny_gan(channels=3):
    torch.manual_seed(0)
    config = DCGANConfig(image_size=16, num_channels=channels, noise_size=8, generator_base_channels=16, discriminator_base_channels=4)
    return DCGANGenerator(config)


def test_dcgan_pipeline_is_deterministic_and_matches_the_generator(tmp_path):
    tiny_gan().save_pretrained(tmp_path)
    gan = DCGANPipeline.from_pretrained(tmp_path, device="cpu")
    images = gan(num_images=5, seed=7, batch_size=2)
    assert len(images) == 5 and all(im.size == (16, 16) and im.mode == "RGB" for im in images)
    again = gan(num_images=5, seed=7, batch_size=5)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(images, again))
    other = gan(num_images=5, seed=8)
    assert not np.array_equal(np.asarray(images[0]), np.asarray(other[0]))
    # The noise comes from a CPU torch.Generator seeded with `seed`; pixels as MMagic converts them.
    generator = DCGANGenerator.from_pretrained(tmp_path).eval()
    noise = generator.sample_noise(5, generator=torch.Generator().manual_seed(7))
    fakes = generator(noise=noise).detach()
    expected = ((fakes + 1) / 2).clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    assert all(np.array_equal(np.asarray(im), e) for im, e in zip(images, expected))


def test_dcgan_grayscale_and_bfloat16():
    gan = DCGANPipeline(tiny_gan(channels=1), device="cpu")
    images = gan(num_images=3, seed=0)
    assert all(im.mode == "L" and im.size == (16, 16) for im in images)
    half = DCGANPipeline(tiny_gan(channels=1), device="cpu", dtype="bfloat16")(num_images=3, seed=0)
    diff = np.abs(np.asarray(half[0]).astype(int) - np.asarray(images[0]))
    assert diff.mean() < 8
    with pytest.raises(ValueError, match="num_images"):
        gan(num_images=0)


def test_make_grid():
    images = [Image.new("RGB", (4, 3), (i * 40, 0, 0)) for i in range(5)]
    grid = make_grid(images, nrow=2, padding=1)
    assert grid.size == (2 * 5 + 1, 3 * 4 + 1)
    pixels = np.asarray(grid)
    assert pixels[0, 0].tolist() == [0, 0, 0]  # padding
    assert pixels[1 + 4 + 1, 1 + 5 + 1, 0] == 3 * 40  # image 3: row 1, column 1
    assert pixels[1 + 8 + 1, 1 + 1, 0] == 4 * 40  # image 4: row 2, column 0
    assert make_grid([Image.new("L", (2, 2), 9)] * 3, nrow=8, padding=0).size == (6, 2)
    with pytest.raises(ValueError, match="one size"):
        make_grid([Image.new("RGB", (4, 3)), Image.new("RGB", (3, 3))])
    with pytest.raises(ValueError, match="at least one"):
        make_grid([])


def test_pipelines_load_by_hub_id(hub_server, tmp_path):
    from hfmagic import DCGANDiscriminator
    from hfmagic.hub import push_folder_to_hub, save_gan_pretrained

    sr_id, gan_id = hub_server.new_repo_id("sr-pipeline"), hub_server.new_repo_id("gan-pipeline")
    model = tiny_sr("edsr", 2)
    model.save_pretrained(tmp_path / "sr")
    push_folder_to_hub(tmp_path / "sr", sr_id)
    image = random_image(6, 5)
    from_hub = SuperResolutionPipeline.from_pretrained(sr_id, device="cpu")
    assert np.array_equal(np.asarray(from_hub(image)), np.asarray(SuperResolutionPipeline(model, device="cpu")(image)))

    generator = tiny_gan()
    save_gan_pretrained(generator, DCGANDiscriminator(generator.config), tmp_path / "gan")  # generator at the root
    push_folder_to_hub(tmp_path / "gan", gan_id)
    expected = DCGANPipeline(generator, device="cpu")(num_images=2, seed=1)
    got = DCGANPipeline.from_pretrained(gan_id, device="cpu")(num_images=2, seed=1)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(got, expected))


# --------------------------------------------------------------------------------------------
# dtype="auto" (conftest makes "auto" mean float32 for the other tests, whatever the CPU)
_REAL_NATIVE_BF16 = pipelines.native_bf16  # captured at collection, before conftest's session patch


def test_auto_dtype_resolution(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(pipelines.device, "native_bf16", lambda device: True)
    assert pipelines.device.resolve_dtype("auto", cpu) == torch.bfloat16
    assert pipelines.device.resolve_dtype(None, cpu, default="auto") == torch.bfloat16
    assert pipelines.device.resolve_dtype(None, cpu) == torch.float32  # DCGANPipeline's default stays float32
    assert pipelines.device.resolve_dtype("auto", cpu, exact=True) == torch.float32  # exact mode: always float32
    for explicit, expected in (("float32", torch.float32), ("float16", torch.float16), (torch.float32, torch.float32)):
        assert pipelines.device.resolve_dtype(explicit, cpu) == expected  # an explicit dtype wins
    monkeypatch.setattr(pipelines.device, "native_bf16", lambda device: False)
    assert pipelines.device.resolve_dtype("auto", cpu) == torch.float32
    assert pipelines.device.resolve_dtype("bfloat16", cpu) == torch.bfloat16
    choices = r"\['auto', 'bfloat16', 'float16', 'float32'\]"
    for bad in ("fp16", "float64", "Auto"):
        with pytest.raises(ValueError, match=rf"Unknown dtype '{bad}'; choose one of {choices}"):
            pipelines.device.resolve_dtype(bad, cpu)
    with pytest.raises(ValueError, match=rf"torch.float64 is not supported; choose one of {choices}"):
        SuperResolutionPipeline(tiny_sr("edsr", 2), device="cpu", dtype=torch.float64)


def test_native_bf16_reads_the_cpu_and_the_device(monkeypatch):
    for avx512_bf16, amx, expected in ((True, False, True), (False, True, True), (False, False, False)):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v, raising=False)
        assert _REAL_NATIVE_BF16("cpu") is expected
    # without torch's checks: the kernel's CPU flags
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported")
    for flags, expected in (({"avx2", "avx512_bf16"}, True), ({"amx_bf16"}, True), ({"avx2", "avx512f"}, False), (set(), False)):
        monkeypatch.setattr(pipelines.device, "_cpuinfo_flags", lambda f=flags: f)
        assert _REAL_NATIVE_BF16(torch.device("cpu")) is expected
    monkeypatch.setattr(pipelines.device, "_cpuinfo_flags", lambda: {"avx512_bf16"})
    monkeypatch.setattr(torch.backends.mkldnn, "is_available", lambda: False)
    assert _REAL_NATIVE_BF16("cpu") is False  # no oneDNN: bf16 convolutions would be slow
    assert _REAL_NATIVE_BF16("meta") is False
    if not torch.cuda.is_available():
        assert _REAL_NATIVE_BF16("cuda") is False


def test_native_bf16_agrees_with_this_machines_cpu_flags():
    flags = pipelines.device._cpuinfo_flags()
    if not flags:
        pytest.skip("no /proc/cpuinfo here")
    has_amx_or_avx512_bf16 = bool(flags & {"avx512_bf16", "amx_bf16", "amx_tile"})
    assert _REAL_NATIVE_BF16("cpu") is (has_amx_or_avx512_bf16 and torch.backends.mkldnn.is_available())


def test_auto_logs_its_choice_once(monkeypatch, caplog, saved_sr):
    monkeypatch.setattr(pipelines.device, "native_bf16", lambda device: True)
    caplog.set_level("INFO", logger="hfmagic.pipelines")

    def auto_lines():
        lines = [r.getMessage() for r in caplog.records if r.name == "hfmagic.pipelines" and "dtype='auto'" in r.getMessage()]
        caplog.clear()
        return lines

    SuperResolutionPipeline(tiny_sr("edsr", 2), device="cpu")
    assert auto_lines() == ["dtype='auto' -> bfloat16 (cpu computes bf16 natively; pass dtype='float32' for full precision)."]
    SuperResolutionPipeline.from_pretrained(saved_sr, device="cpu")
    assert len(auto_lines()) == 1
    SuperResolutionPipeline.from_pretrained(saved_sr, device="cpu", exact=True)
    assert auto_lines() == ["dtype='auto' -> float32 (exact mode computes in float32)."]
    monkeypatch.setattr(pipelines.device, "native_bf16", lambda device: False)
    SuperResolutionPipeline(tiny_sr("edsr", 2), device="cpu")
    assert auto_lines() == ["dtype='auto' -> float32 (no native bf16 on this cpu)."]
    SuperResolutionPipeline(tiny_sr("edsr", 2), device="cpu", dtype="bfloat16")
    assert auto_lines() == []  # an explicit dtype is not a choice to report


def test_auto_runs_bf16_on_copies_and_16bit_images_in_float32(monkeypatch, saved_sr):
    import warnings

    monkeypatch.setattr(pipelines.device, "native_bf16", lambda device: True)
    model = tiny_sr("msrresnet", 2).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    auto = SuperResolutionPipeline(model, device="cpu")
    assert auto.dtype == torch.bfloat16 and auto.model is not model
    assert all(p.dtype == torch.bfloat16 for p in auto.model.parameters())
    # the caller's model keeps its float32 weights, bit for bit
    assert all(torch.equal(before[k], v) and v.dtype == before[k].dtype for k, v in model.state_dict().items())
    fp32 = SuperResolutionPipeline(model, device="cpu", dtype="float32")
    image = random_image(10, 9)
    low, full = np.asarray(auto(image)).astype(int), np.asarray(fp32(image)).astype(int)
    assert low.shape == full.shape == (20, 18, 3)
    assert (low != full).any() and np.abs(low - full).max() <= 8  # really bf16, and close
    assert np.abs(np.asarray(auto(image, tile_size=4)).astype(int) - low).max() <= 2
    # 16-bit images: float32 under "auto" (what dtype="float32" gives, bit for bit), no bf16 warning
    deep = gradient16(9, 7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(auto(deep), fp32(deep))
    # from_pretrained: the same choice, loaded from float32 weights
    loaded = SuperResolutionPipeline.from_pretrained(saved_sr, device="cpu")
    assert loaded.dtype == torch.bfloat16 and next(loaded.model.parameters()).dtype == torch.bfloat16
    np.testing.assert_array_equal(loaded(deep), SuperResolutionPipeline.from_pretrained(saved_sr, device="cpu", dtype="float32")(deep))
    # exact mode and explicit dtypes: as asked, no copy for the explicit ones
    assert SuperResolutionPipeline(model, device="cpu", exact=True).dtype == torch.float32
    explicit = SuperResolutionPipeline(model, device="cpu", dtype="bfloat16")
    assert explicit.model is model and explicit._float32_source is None
