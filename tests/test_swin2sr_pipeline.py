"""transformers' Swin2SR in SuperResolutionPipeline and ``hfmagic upscale`` (hfmagic/pipelines/swin2sr.py):
the same output as transformers' image processor + model + crop, hfmagic's image kinds, tiling,
exact mode refused, the CLI, a Hub repo id."""

import copy

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import Swin2SRConfig, Swin2SRForImageSuperResolution
from transformers.models.swin2sr.image_processing_pil_swin2sr import Swin2SRImageProcessorPil

import hfmagic
from hfmagic import SuperResolutionPipeline
from hfmagic.cli import main
from hfmagic.evaluation import upscale_image
from hfmagic.pipelines import probe_receptive_field
from hfmagic.pipelines.swin2sr import Swin2SRAdapter, _symmetric_index, swin2sr_receptive_field


def tiny_swin2sr(upscale=2, upsampler="pixelshuffle", window_size=4, depths=(2, 2), **kw) -> Swin2SRForImageSuperResolution:
    """A random Swin2SR small enough for a test (8 features; the released models have 180)."""
    torch.manual_seed(0)
    config = Swin2SRConfig(
        image_size=16, embed_dim=8, depths=list(depths), num_heads=[2] * len(depths), window_size=window_size,
        mlp_ratio=2.0, upscale=upscale, upsampler=upsampler, **kw,
    )
    return Swin2SRForImageSuperResolution(config).eval()


def random_image(h, w, c=3, seed=0, dtype=np.uint8):
    high = 256 if dtype == np.uint8 else 65536
    shape = (h, w, c) if c else (h, w)
    return np.random.RandomState(seed).randint(0, high, shape).astype(dtype)


def processor_reference(model, image: np.ndarray) -> torch.Tensor:
    """What transformers' documented recipe computes: Swin2SRImageProcessor (rescale 1/255, pad
    symmetric to the window; size_divisor = window_size, as in the released repos), the model, and
    the output cropped to scale x the input's size. (N, C, sH, sW) float."""
    processor = Swin2SRImageProcessorPil(size_divisor=model.config.window_size)
    pixel_values = processor(image, input_data_format="channels_last", return_tensors="pt").pixel_values
    with torch.no_grad():
        out = model(pixel_values=pixel_values).reconstruction
    s = model.config.upscale
    return out[:, :, : image.shape[0] * s, : image.shape[1] * s]


def to_uint8_like_transformers(out: torch.Tensor) -> np.ndarray:
    """transformers' Swin2SR example: clamp to [0, 1], times 255, round, HWC."""
    return (out[0].clamp(0, 1) * 255.0).round().permute(1, 2, 0).numpy().astype(np.uint8)


@pytest.fixture(scope="module")
def swin2sr_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("swin2sr")
    tiny_swin2sr().save_pretrained(folder)
    return folder


# --------------------------------------------------------------------------------------------
# the output transformers' recipe gives


@pytest.mark.parametrize(
    "upscale, upsampler", [(2, "pixelshuffle"), (4, "pixelshuffle"), (2, "pixelshuffledirect"), (4, "nearest+conv")]
)
def test_matches_the_image_processor_and_model_on_an_odd_sized_image(upscale, upsampler):
    model = tiny_swin2sr(upscale, upsampler)
    image = random_image(13, 10)
    reference = processor_reference(model, image)
    pipe = SuperResolutionPipeline(copy.deepcopy(model), device="cpu", dtype="float32")
    out = pipe.upscale_tensor(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255)
    assert out.shape == reference.shape == (1, 3, 13 * upscale, 10 * upscale)
    assert (out - reference).abs().max() < 1e-5
    result = pipe(Image.fromarray(image))
    assert result.mode == "RGB" and result.size == (10 * upscale, 13 * upscale)
    diff = np.abs(np.asarray(result).astype(int) - to_uint8_like_transformers(reference))
    assert diff.max() <= 1 and (diff == 0).mean() > 0.999  # ~1e-8 apart: at most a rare rounding flip


@pytest.mark.parametrize("size", [(12, 8), (3, 2), (1, 1)])
def test_pads_as_the_processor_also_when_the_size_is_a_multiple_or_tiny(size):
    """The processor pads 1 to window_size pixels, a full window on sizes that are multiples, and
    repeats the reflection (numpy's "symmetric") when the pad is longer than the image."""
    model = tiny_swin2sr()
    image = random_image(*size, seed=1)
    reference = processor_reference(model, image)
    pipe = SuperResolutionPipeline(copy.deepcopy(model), device="cpu", dtype="float32")
    out = pipe.upscale_tensor(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255)
    assert out.shape == reference.shape and (out - reference).abs().max() < 1e-5


def test_symmetric_index_is_numpys_symmetric_pad():
    for size in (1, 2, 3, 5):
        for pad in (0, 1, 4, 11):
            expected = np.pad(np.arange(size), (0, pad), mode="symmetric")
            assert _symmetric_index(torch.arange(size + pad), size).tolist() == expected.tolist()


# --------------------------------------------------------------------------------------------
# hfmagic's image kinds, dtypes, the model object


def test_gray_rgba_and_16bit_inputs_keep_their_kind():
    pipe = SuperResolutionPipeline(tiny_swin2sr(), device="cpu", dtype="float32")
    gray = pipe(Image.fromarray(random_image(9, 7, c=None)))
    assert gray.mode == "L" and gray.size == (14, 18)
    rgba = random_image(9, 7, c=4, seed=2)
    out = pipe(Image.fromarray(rgba, "RGBA"))
    assert out.mode == "RGBA" and out.size == (14, 18)
    deep = random_image(9, 7, dtype=np.uint16, seed=3)
    out16 = pipe(deep)
    assert out16.dtype == np.uint16 and out16.shape == (18, 14, 3)
    # the float reference at 16 bits: x / 65535, padded as the processor pads, forward, crop
    padded = np.pad(deep.astype(np.float32) / 65535, ((0, 3), (0, 1), (0, 0)), mode="symmetric")  # to 12 x 8
    with torch.no_grad():
        y = pipe.model.model(pixel_values=torch.from_numpy(padded).permute(2, 0, 1)[None]).reconstruction[:, :, :18, :14]
    expected = (y[0].clamp(0, 1) * 65535).round().permute(1, 2, 0).numpy()
    assert np.abs(out16.astype(np.int64) - expected).max() <= 1
    assert pipe(deep[:, :, 0]).shape == (18, 14)  # 16-bit gray: (sH, sW) uint16


def test_dtypes_and_the_callers_model():
    model = tiny_swin2sr()
    image = random_image(10, 9, seed=4)
    float32 = np.asarray(SuperResolutionPipeline(copy.deepcopy(model), device="cpu", dtype="float32")(image)).astype(int)
    half = SuperResolutionPipeline(copy.deepcopy(model), device="cpu", dtype="bfloat16")
    assert all(p.dtype == torch.bfloat16 for p in half.model.parameters())
    assert np.abs(np.asarray(half(image)).astype(int) - float32).max() <= 2  # random weights: bf16 within 2 levels
    auto = SuperResolutionPipeline(model, device="cpu")  # "auto": the caller's weights keep float32
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert auto(random_image(9, 7, dtype=np.uint16)).dtype == np.uint16  # 16-bit images in float32 under "auto"
    again = SuperResolutionPipeline(auto.model, device="cpu", dtype="float32")  # the adapter itself (hfmagic evaluate)
    assert isinstance(again.model, Swin2SRAdapter) and again.scale == 2
    # called directly (hfmagic.evaluation), the adapter pads a size that is not a window multiple itself
    odd = random_image(13, 10, seed=9)
    direct = upscale_image(again.model, odd, quantize=False)
    reference = processor_reference(model, odd)[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255
    assert np.abs(direct - reference).max() < 1e-3  # 1e-5 of the [0, 1] range
    with pytest.raises(TypeError, match="Swin2SRForImageSuperResolution"):
        SuperResolutionPipeline(torch.nn.Conv2d(3, 3, 1))


# --------------------------------------------------------------------------------------------
# tiling


def test_receptive_field_formula_bounds_the_nan_probe_and_the_released_models():
    for depths in ((2,), (2, 2)):  # one and two stages; window 2 keeps the probe small
        model = tiny_swin2sr(window_size=2, depths=depths, upsampler="pixelshuffledirect")
        field, window = swin2sr_receptive_field(model), model.config.window_size
        # the probe counts in whole windows (tiles start at multiples of the window)
        assert probe_receptive_field(Swin2SRAdapter(model), max_size=200) == -(-field // window) * window
    # The released classical/real-world models (window 8, 6 stages of 6 layers, 1conv): each stage
    # adds its convolution's pixel and 6 layers growing aligned windows by 23 more (24 a stage),
    # then first_convolution 1, conv_after_body 1 and the x2 pixel-shuffle tail's 3 convolutions
    # plus the window the tile itself covers: 6 * 24 + 1 + 1 + 3 + 4 = 153.
    with torch.device("meta"):
        released = Swin2SRForImageSuperResolution(Swin2SRConfig(upscale=2))
    assert swin2sr_receptive_field(released) == 153


def test_tiles_with_the_default_overlap_equal_the_whole_image():
    """Swin2SR's windows are local: tiles at multiples of the window with its receptive field as
    context see what the whole image sees (measured equal here; allowed 1e-5 for other kernels)."""
    model = tiny_swin2sr(window_size=2, depths=(2,), upsampler="pixelshuffledirect")  # field 5 -> 6
    pipe = SuperResolutionPipeline(model, device="cpu", dtype="float32")
    image = torch.rand(1, 3, 19, 17, generator=torch.Generator().manual_seed(5))  # padded to 20 x 18
    whole = pipe.upscale_tensor(image)
    tiled = pipe.upscale_tensor(image, tile_size=8)  # 3 x 3 tiles, contexts clipped on 0-2 sides
    assert whole.shape == tiled.shape == (1, 3, 38, 34)
    assert (whole - tiled).abs().max() < 1e-5
    short = pipe.upscale_tensor(image, tile_size=8, tile_overlap=2, batch_size=3)  # batched tiles too  # less than the field
    assert (whole - short).abs().max() > 1e-4  # approximate at the seams


# --------------------------------------------------------------------------------------------
# exact mode, the CLI, the Hub


def test_exact_mode_is_refused_with_the_reason(swin2sr_folder, tmp_path, capsys):
    with pytest.raises(ValueError, match="not available for Swin2SR"):
        SuperResolutionPipeline(tiny_swin2sr(), device="cpu", exact=True)
    Image.fromarray(random_image(7, 6)).save(tmp_path / "x.png")
    code = main(["upscale", str(tmp_path / "x.png"), "--model", str(swin2sr_folder), "--output", str(tmp_path / "o"), "--exact"])
    assert code == 1
    assert "not available for Swin2SR" in capsys.readouterr().err


def test_upscale_cli_on_a_swin2sr_folder(swin2sr_folder, tmp_path, capsys):
    Image.fromarray(random_image(13, 10, seed=6)).save(tmp_path / "photo.png")
    Image.fromarray(random_image(9, 7, c=None, seed=7)).save(tmp_path / "gray.png")
    out = tmp_path / "out"
    args = ["upscale", str(tmp_path / "photo.png"), str(tmp_path / "gray.png"), "--model", str(swin2sr_folder)]
    assert main([*args, "--output", str(out), "--device", "cpu", "--dtype", "float32"]) == 0
    assert "wrote 2 image(s)" in capsys.readouterr().err
    photo = Image.open(out / "photo.png")
    assert photo.size == (20, 26) and photo.mode == "RGB" and Image.open(out / "gray.png").size == (14, 18)
    reference = processor_reference(Swin2SRForImageSuperResolution.from_pretrained(swin2sr_folder).eval(), np.asarray(Image.open(tmp_path / "photo.png")))
    assert np.abs(np.asarray(photo).astype(int) - to_uint8_like_transformers(reference)).max() <= 1


def test_from_pretrained_a_hub_repo_id(swin2sr_folder, hub_server):
    repo_id = hub_server.new_repo_id("swin2sr")
    Swin2SRForImageSuperResolution.from_pretrained(swin2sr_folder).push_to_hub(repo_id)
    pipe = hfmagic.SuperResolutionPipeline.from_pretrained(repo_id, device="cpu", dtype="float32")
    local = SuperResolutionPipeline.from_pretrained(swin2sr_folder, device="cpu", dtype="float32")
    assert isinstance(pipe.model, Swin2SRAdapter) and pipe.scale == 2
    image = random_image(11, 9, seed=8)
    assert np.array_equal(np.asarray(pipe(image)), np.asarray(local(image)))
