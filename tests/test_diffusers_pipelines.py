"""SuperResolutionPipeline and GANPipeline as diffusers pipelines: model_index.json layout, round trips
through DiffusionPipeline.from_pretrained and the classes' own from_pretrained (folders and the test
Hub), plain model repos, .to(), return_dict, progress bars, the import cost kept lazy."""

import ast
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from diffusers import DiffusionPipeline, ImagePipelineOutput
from safetensors import safe_open

from hfmagic import (
    EDSR,
    SRCNN,
    DCGANConfig,
    DCGANGenerator,
    DCGANPipeline,
    EDSRConfig,
    GANPipeline,
    MSRResNet,
    MSRResNetConfig,
    SRCNNConfig,
    SuperResolutionPipeline,
)
import hfmagic.pipelines.device
import hfmagic.training.gan

pytestmark = pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")


def tiny_msrresnet(scale=2):
    torch.manual_seed(0)
    return MSRResNet(MSRResNetConfig(upscale_factor=scale, mid_channels=8, num_blocks=2))


def tiny_gan():
    torch.manual_seed(0)
    config = DCGANConfig(image_size=16, noise_size=8, generator_base_channels=16, discriminator_base_channels=4)
    return DCGANGenerator(config)


def image(h=10, w=9, c=3, seed=0, dtype=np.uint8):
    high = 256 if dtype == np.uint8 else 65536
    return np.random.RandomState(seed).randint(0, high, (h, w, c)).astype(dtype)


def same_images(a, b) -> bool:
    return len(a) == len(b) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b))


# --------------------------------------------------------------------------------------------
# the saved layout


def test_sr_pipeline_saves_diffusers_layout(tmp_path):
    pipe = SuperResolutionPipeline(tiny_msrresnet(), device="cpu", split_tiling=False)
    assert isinstance(pipe, DiffusionPipeline)
    assert pipe.components == {"model": pipe.model}
    assert pipe.config.model == ("hfmagic.models.msrresnet.modeling_msrresnet", "MSRResNet")
    pipe.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["_class_name"] == ["pipeline_super_resolution", "SuperResolutionPipeline"]
    assert index["model"] == ["modeling_msrresnet", "MSRResNet"]
    assert (index["channels_last"], index["exact"], index["split_tiling"]) == (True, False, False)
    assert {p.name for p in (tmp_path / "model").iterdir()} >= {"config.json", "model.safetensors", "modeling_msrresnet.py"}
    assert json.loads((tmp_path / "model" / "config.json").read_text())["model_type"] == "msrresnet"
    # the files diffusers imports under trust_remote_code: one import of the installed class each
    code = (tmp_path / "model" / "modeling_msrresnet.py").read_text()
    assert "from hfmagic.models.msrresnet.modeling_msrresnet import MSRResNet\n" in code
    assert "from hfmagic.pipelines.super_resolution import SuperResolutionPipeline\n" in (
        tmp_path / "pipeline_super_resolution.py"
    ).read_text()
    code_lines = [line for line in code.splitlines() if line and not line.startswith("#")]
    assert code_lines == ["from hfmagic.models.msrresnet.modeling_msrresnet import MSRResNet", "__all__ = ['MSRResNet']"]


def test_gan_pipeline_saves_diffusers_layout(tmp_path):
    pipe = DCGANPipeline(tiny_gan(), device="cpu")
    assert DCGANPipeline is GANPipeline and isinstance(pipe, DiffusionPipeline)
    assert pipe.model is pipe.generator and pipe.components == {"generator": pipe.generator}
    pipe.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["_class_name"] == ["pipeline_gan", "GANPipeline"]
    assert index["generator"] == ["modeling_dcgan", "DCGANGenerator"]
    assert (tmp_path / "generator" / "model.safetensors").is_file() and (tmp_path / "pipeline_gan.py").is_file()


# --------------------------------------------------------------------------------------------
# round trips


def test_sr_round_trip_through_diffusers_and_own_from_pretrained(tmp_path):
    pipe = SuperResolutionPipeline(tiny_msrresnet(), device="cpu")
    lr = image()
    expected = pipe(lr, tile_size=4)
    pipe.save_pretrained(tmp_path)

    with pytest.raises(ValueError, match="trust_remote_code=True"):  # diffusers runs no repo code unasked
        DiffusionPipeline.from_pretrained(tmp_path)
    loaded = DiffusionPipeline.from_pretrained(tmp_path, trust_remote_code=True, device="cpu")
    assert type(loaded) is SuperResolutionPipeline and type(loaded.model) is MSRResNet
    assert np.array_equal(np.asarray(loaded(lr, tile_size=4)), np.asarray(expected))
    own = SuperResolutionPipeline.from_pretrained(tmp_path, device="cpu")
    assert own.name_or_path == str(tmp_path) and own.device == torch.device("cpu")
    assert np.array_equal(np.asarray(own(lr, tile_size=4)), np.asarray(expected))
    for a, b in zip(own.model.state_dict().values(), pipe.model.state_dict().values()):
        assert torch.equal(a, b)


def test_sr_settings_round_trip_and_can_be_overridden(tmp_path):
    torch.manual_seed(0)
    model = EDSR(EDSRConfig(upscale_factor=2, mid_channels=8, num_blocks=1))
    SuperResolutionPipeline(model, device="cpu", exact=True, channels_last=False).save_pretrained(tmp_path)
    for loaded in (
        SuperResolutionPipeline.from_pretrained(tmp_path, device="cpu"),
        DiffusionPipeline.from_pretrained(tmp_path, trust_remote_code=True, device="cpu"),
    ):
        assert (loaded.exact, loaded.channels_last, loaded.split_tiling) == (True, False, True)
    lr = image(12, 11)
    exact = SuperResolutionPipeline.from_pretrained(tmp_path, device="cpu")
    assert np.array_equal(np.asarray(exact(lr, tile_size=5)), np.asarray(exact(lr)))  # exact mode: bitwise
    relaxed = SuperResolutionPipeline.from_pretrained(tmp_path, device="cpu", exact=False, split_tiling=False)
    assert (relaxed.exact, relaxed.split_tiling) == (False, False)
    with pytest.raises(ValueError, match="exact=True is only available on CPU"):
        SuperResolutionPipeline.from_pretrained(tmp_path, device="meta")


def test_gan_round_trip_through_diffusers_and_own_from_pretrained(tmp_path):
    pipe = DCGANPipeline(tiny_gan(), device="cpu")
    expected = pipe(num_images=3, seed=7)
    pipe.save_pretrained(tmp_path)
    loaded = DiffusionPipeline.from_pretrained(tmp_path, trust_remote_code=True, device="cpu")
    assert type(loaded) is GANPipeline and type(loaded.generator) is DCGANGenerator
    assert same_images(loaded(num_images=3, seed=7), expected)
    assert same_images(DCGANPipeline.from_pretrained(tmp_path, device="cpu")(num_images=3, seed=7), expected)


def test_a_pipeline_of_the_other_kind_is_refused(tmp_path):
    DCGANPipeline(tiny_gan(), device="cpu").save_pretrained(tmp_path / "gan")
    SuperResolutionPipeline(tiny_msrresnet(), device="cpu").save_pretrained(tmp_path / "sr")
    with pytest.raises(ValueError, match=r"saved GANPipeline with components \[generator\].*GANPipeline.from_pretrained"):
        SuperResolutionPipeline.from_pretrained(tmp_path / "gan", device="cpu")
    with pytest.raises(ValueError, match=r"saved SuperResolutionPipeline with components \[model\]"):
        DCGANPipeline.from_pretrained(tmp_path / "sr", device="cpu")


def test_plain_model_folders_still_load(tmp_path):
    torch.manual_seed(0)
    model = SRCNN(SRCNNConfig(upscale_factor=2, channels=(3, 8, 4, 3)))
    model.save_pretrained(tmp_path / "sr")  # config.json + model.safetensors, no model_index.json
    pipe = SuperResolutionPipeline.from_pretrained(tmp_path / "sr", device="cpu")
    assert isinstance(pipe, DiffusionPipeline) and pipe.name_or_path == str(tmp_path / "sr")
    lr = image()
    assert np.array_equal(np.asarray(pipe(lr)), np.asarray(SuperResolutionPipeline(model, device="cpu")(lr)))
    pipe.save_pretrained(tmp_path / "as-pipeline")  # and a model repo's pipeline saves as a pipeline
    assert np.array_equal(np.asarray(SuperResolutionPipeline.from_pretrained(tmp_path / "as-pipeline", device="cpu")(lr)), np.asarray(pipe(lr)))


def test_round_trips_through_the_hub(hub_server, tmp_path):
    sr_id, gan_id = hub_server.new_repo_id("sr-diffusers"), hub_server.new_repo_id("gan-diffusers")
    sr = SuperResolutionPipeline(tiny_msrresnet(), device="cpu")
    sr.save_pretrained(tmp_path / "sr", push_to_hub=True, repo_id=sr_id)
    files = hub_server.list_files(sr_id)
    assert {"model_index.json", "pipeline_super_resolution.py", "model/config.json", "model/model.safetensors", "model/modeling_msrresnet.py"} <= set(files)
    lr = image()
    expected = np.asarray(sr(lr))
    assert np.array_equal(np.asarray(DiffusionPipeline.from_pretrained(sr_id, trust_remote_code=True, device="cpu")(lr)), expected)
    assert np.array_equal(np.asarray(SuperResolutionPipeline.from_pretrained(sr_id, device="cpu")(lr)), expected)

    gan = DCGANPipeline(tiny_gan(), device="cpu")
    gan.push_to_hub(gan_id)
    assert {"model_index.json", "pipeline_gan.py", "generator/model.safetensors", "generator/modeling_dcgan.py"} <= set(hub_server.list_files(gan_id))
    samples = gan(num_images=2, seed=3)
    assert same_images(DiffusionPipeline.from_pretrained(gan_id, trust_remote_code=True, device="cpu")(num_images=2, seed=3), samples)
    assert same_images(DCGANPipeline.from_pretrained(gan_id, device="cpu")(num_images=2, seed=3), samples)


# --------------------------------------------------------------------------------------------
# .to(), dtypes


def test_to_moves_the_model_and_checks_the_device():
    pipe = SuperResolutionPipeline(tiny_msrresnet(), device="cpu", dtype="float32")
    lr = image()
    expected = np.asarray(pipe(lr))
    assert pipe.to(torch.bfloat16) is pipe
    assert pipe.dtype == torch.bfloat16 and all(p.dtype == torch.bfloat16 for p in pipe.model.parameters())
    pipe(lr)  # runs in bf16 on the CPU
    assert pipe.to("cpu", torch.float32) is pipe and pipe.dtype == torch.float32 and pipe.device.type == "cpu"
    assert np.array_equal(np.asarray(pipe(lr)), expected)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            pipe.to("cuda")
    exact = SuperResolutionPipeline(tiny_msrresnet(), device="cpu", exact=True)
    with pytest.raises(ValueError, match="exact=True is only available on CPU"):
        exact.to("meta")
    assert exact.device.type == "cpu"
    gan = DCGANPipeline(tiny_gan(), device="cpu")
    assert gan.to(dtype=torch.float16) is gan and gan.dtype == torch.float16 and gan.generator.dtype == torch.float16


def test_auto_dtype_saves_float32_weights_and_to_keeps_16_bit_images_exact(tmp_path, monkeypatch):
    monkeypatch.setattr(hfmagic.pipelines.device, "native_bf16", lambda device: True)
    model = tiny_msrresnet()
    pipe = SuperResolutionPipeline(model, device="cpu")  # "auto" -> bf16 here
    assert pipe.dtype == torch.bfloat16 and model.dtype == torch.float32
    pipe.save_pretrained(tmp_path)
    with safe_open(str(tmp_path / "model" / "model.safetensors"), "pt") as weights:
        assert {weights.get_tensor(key).dtype for key in weights.keys()} == {torch.float32}  # the originals
    deep = image(dtype=np.uint16)
    reference = SuperResolutionPipeline(model, device="cpu", dtype="float32")(deep)
    assert np.array_equal(pipe(deep), reference)  # 16-bit images run on a float32 twin of the originals
    pipe.to(torch.float16)  # the twin follows .to() and keeps the original float32 weights
    assert pipe.dtype == torch.float16 and np.array_equal(pipe(deep), reference)
    assert SuperResolutionPipeline.from_pretrained(tmp_path, device="cpu", dtype="float32").model.dtype == torch.float32


# --------------------------------------------------------------------------------------------
# return_dict, progress bars


def test_return_dict_gives_image_pipeline_output():
    pipe = SuperResolutionPipeline(tiny_msrresnet(), device="cpu")
    a, b = image(seed=1), image(seed=2)
    one = pipe(a, return_dict=True)
    assert isinstance(one, ImagePipelineOutput) and len(one.images) == 1
    assert np.array_equal(np.asarray(one.images[0]), np.asarray(pipe(a)))  # the default is unchanged: one image
    many = pipe([a, b], return_dict=True)
    assert same_images(many.images, pipe([a, b]))
    deep = pipe(image(dtype=np.uint16), return_dict=True).images[0]
    assert deep.dtype == np.uint16 and deep.shape == (20, 18, 3)
    gan = DCGANPipeline(tiny_gan(), device="cpu")
    out = gan(num_images=2, seed=0, return_dict=True)
    assert isinstance(out, ImagePipelineOutput) and same_images(out.images, gan(num_images=2, seed=0))


@pytest.mark.parametrize("split", [True, False], ids=["two-stage", "single-stage"])
def test_progress_bar_config_drives_the_tile_bar(split):
    pipe = SuperResolutionPipeline(tiny_msrresnet(), device="cpu", split_tiling=split)
    stream = io.StringIO()
    pipe.set_progress_bar_config(file=stream, desc="upscaling", mininterval=0)
    pipe(image(8, 8), tile_size=4, progress=True)  # 2 x 2 tiles
    assert "upscaling" in stream.getvalue() and "4/4" in stream.getvalue()
    stream.truncate(0)
    pipe(image(8, 8), tile_size=4)  # progress=False: no bar
    assert stream.getvalue().strip("\x00") == ""
    pipe.set_progress_bar_config(file=stream, disable=True)
    pipe(image(8, 8), tile_size=4, progress=True)
    assert stream.getvalue().strip("\x00") == ""


def test_progress_bar_of_gan_sampling():
    gan = DCGANPipeline(tiny_gan(), device="cpu")
    stream = io.StringIO()
    gan.set_progress_bar_config(file=stream, mininterval=0)
    gan(num_images=4, batch_size=2, seed=0, progress=True)
    assert "2/2" in stream.getvalue()


# --------------------------------------------------------------------------------------------
# import cost


def _eager_imports(name: str, root: Path) -> set[str]:
    """What importing ``name`` imports: hfmagic modules (dotted) and other top-level packages, from
    module-level import statements followed through hfmagic's own modules, read from the source."""
    seen: set[str] = set()
    todo = [name]
    while todo:
        module = todo.pop()
        if not module.startswith("hfmagic"):
            seen.add(module.split(".")[0])
            continue
        base = root.parent.joinpath(*module.split("."))
        path = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
        if module in seen or not path.is_file():  # seen, or a name imported from a module
            continue
        seen.add(module)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import):
                todo += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                target = node.module or ""
                if node.level:
                    parts = package.split(".")
                    parent = ".".join(parts[: len(parts) - node.level + 1])
                    target = f"{parent}.{target}" if target else parent
                todo += [target] + [f"{target}.{alias.name}" for alias in node.names]
    return seen


def test_import_hfmagic_and_the_pipeline_helpers_do_not_import_diffusers():
    # diffusers takes seconds to import: only the pipeline classes load it, on first use (the CLI's
    # parser imports no torch at all: tests/test_cli_inference.py); read from the sources
    root = Path(hfmagic.__file__).parent
    for name in ("hfmagic", "hfmagic.pipelines", "hfmagic.training.gan", "hfmagic.commands.upscale"):
        assert "diffusers" not in _eager_imports(name, root), name
    assert "diffusers" in _eager_imports("hfmagic.pipelines.super_resolution", root)
    assert "diffusers" in _eager_imports("hfmagic.pipelines.gan", root)
