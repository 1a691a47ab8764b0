"""The extension API: a user's own SR network gets from_pretrained, the Auto classes, the pipeline,
the CLI (through ``hfmagic --import``) and clear errors when it breaks the contract."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from hfmagic import SuperResolutionConfig, SuperResolutionPreTrainedModel, register_model
from hfmagic.cli import main as cli_main

USER_MODULE = textwrap.dedent(
    '''
    import torch
    from torch import nn
    from torch.nn import functional as F

    from hfmagic import SuperResolutionConfig, SuperResolutionPreTrainedModel, register_model


    class UserSRConfig(SuperResolutionConfig):
        model_type = "user-sr-ext-test"
        supported_upscale_factors = (2,)

        def __init__(self, mid_channels=4, **kwargs):
            self.mid_channels = mid_channels
            super().__init__(**kwargs)


    class UserSR(SuperResolutionPreTrainedModel):
        config_class = UserSRConfig

        def __init__(self, config):
            super().__init__(config)
            self.conv = nn.Conv2d(3, 3 * 4, 3, padding=1)
            self.post_init()

        def reconstruct(self, pixel_values):
            return F.pixel_shuffle(self.conv(pixel_values), 2)


    register_model(UserSRConfig, UserSR)
    '''
)


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    path = tmp_path / "user_models_ext.py"
    path.write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    module = importlib.import_module("user_models_ext")
    return path, module


def test_user_model_saves_loads_and_upscales(tmp_path, user_module):
    from transformers import AutoModelForImageToImage

    from hfmagic import SuperResolutionPipeline

    _, mod = user_module
    model = mod.UserSR(mod.UserSRConfig(upscale_factor=2))
    model.save_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / "README.md").is_file()  # a card comes for free
    auto = AutoModelForImageToImage.from_pretrained(tmp_path / "m")
    assert type(auto) is mod.UserSR
    out = SuperResolutionPipeline(auto)(np.zeros((5, 6, 3), np.uint8))
    assert out.size == (12, 10)


def test_cli_import_option_loads_a_user_model(tmp_path, user_module):
    path, mod = user_module
    mod.UserSR(mod.UserSRConfig(upscale_factor=2)).save_pretrained(tmp_path / "m")
    Image.fromarray(np.full((6, 7, 3), 128, np.uint8)).save(tmp_path / "in.png")
    # A fresh process knows nothing of the user's classes until --import brings them in.
    cmd = [sys.executable, "-m", "hfmagic", "upscale", str(tmp_path / "in.png"), "--model", str(tmp_path / "m"),
           "--output", str(tmp_path / "out")]
    without = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert without.returncode != 0
    with_import = subprocess.run(cmd[:3] + ["--import", str(path)] + cmd[3:], capture_output=True, text=True, timeout=300)
    assert with_import.returncode == 0, with_import.stderr[-2000:]
    assert Image.open(tmp_path / "out" / "in.png").size == (14, 12)


def test_cli_import_errors(tmp_path, capsys):
    assert cli_main(["--import", str(tmp_path / "missing.py"), "sample", "--model", "x", "--num-images", "1", "--output", "o"]) == 2
    assert "no such file" in capsys.readouterr().err
    assert cli_main(["--import", "no_such_module_hfmagic", "sample", "--model", "x", "--num-images", "1", "--output", "o"]) == 2
    assert "no module of that name" in capsys.readouterr().err


class _Cfg(SuperResolutionConfig):
    model_type = "ext-test-contract"


def test_missing_config_class_is_named():
    class NoConfig(SuperResolutionPreTrainedModel):
        def reconstruct(self, x):
            return x

    with pytest.raises(TypeError, match="config_class = YourConfig"):
        NoConfig(_Cfg(upscale_factor=1))


def _model(reconstruct):
    class Broken(SuperResolutionPreTrainedModel):
        config_class = _Cfg

        def __init__(self, config):
            super().__init__(config)
            self.conv = nn.Conv2d(3, 3, 1)
            self.post_init()

    if reconstruct is not None:
        Broken.reconstruct = reconstruct
    return Broken(_Cfg(upscale_factor=2))


def test_contract_errors_name_the_fix():
    x = torch.rand(1, 3, 4, 4)
    with pytest.raises(NotImplementedError, match=r"must implement reconstruct\(pixel_values\)"):
        _model(None)(x)
    with pytest.raises(TypeError, match="must return a tensor"):
        _model(lambda self, p: (p,))(x)
    with pytest.raises(ValueError, match=r"returned shape \(1, 3, 4, 4\).*expected \(1, 3, 8, 8\)"):
        _model(lambda self, p: self.conv(p))(x)
    good = _model(lambda self, p: torch.nn.functional.interpolate(self.conv(p), scale_factor=2))
    with pytest.raises(ValueError, match="data's scale must equal config.upscale_factor=2"):
        good(x, labels=torch.rand(1, 3, 16, 16))


def test_register_model_errors():
    class NoType(SuperResolutionConfig):
        model_type = ""

    with pytest.raises(ValueError, match="model_type"):
        register_model(NoType, SuperResolutionPreTrainedModel)

    class Other(SuperResolutionConfig):
        model_type = "ext-test-other"

    class Model(SuperResolutionPreTrainedModel):
        config_class = _Cfg

    with pytest.raises(ValueError, match="config_class must be Other"):
        register_model(Other, Model)


def test_train_sr_rejects_data_of_another_scale(tmp_path):
    from hfmagic.training import SRTrainingArguments, train_sr

    model = _model(lambda self, p: torch.nn.functional.interpolate(self.conv(p), scale_factor=2))
    data = [{"pixel_values": torch.rand(3, 4, 4), "labels": torch.rand(3, 16, 16)} for _ in range(4)]
    args = SRTrainingArguments(output_dir=str(tmp_path / "run"), train_batch_size=2, max_train_steps=1,
                               validation_steps=0, checkpointing_steps=0)
    with pytest.raises(ValueError, match="upscale_factor=2"):
        train_sr(model, data, args)


def test_gan_contract_errors_name_the_fix():
    from hfmagic.training import GAN

    with pytest.raises(TypeError, match="sample_noise"):
        GAN(nn.Linear(2, 2), nn.Linear(2, 1))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        GAN(object(), nn.Linear(2, 1))

    class OwnNoise(GAN):  # overriding the hook is the other way to satisfy the contract
        def sample_noise(self, num_batches):
            return torch.randn(num_batches, 2)

    OwnNoise(nn.Linear(2, 2), nn.Linear(2, 1))


def test_cli_evaluate_scores_a_user_model_and_writes_its_card(tmp_path, user_module, capsys):
    import yaml

    path, mod = user_module
    mod.UserSR(mod.UserSRConfig(upscale_factor=2)).save_pretrained(tmp_path / "m")
    hr_dir = tmp_path / "hr"
    hr_dir.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (20, 18, 3), dtype=np.uint8)).save(hr_dir / f"{i}.png")
    code = cli_main(["--import", str(path), "evaluate", "--model", str(tmp_path / "m"), "--dataset", str(hr_dir), "--write-card"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "PSNR" in printed.upper() and "bicubic" in printed.lower()
    card = (tmp_path / "m" / "README.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    assert meta["model-index"][0]["results"], meta


class _BufferedConfig(SuperResolutionConfig):
    model_type = "ext-test-buffered"
    supported_upscale_factors = (2,)


class _BufferedSR(SuperResolutionPreTrainedModel):
    """A user network with a non-persistent buffer and layers hfmagic has no scheme for."""

    config_class = _BufferedConfig

    def __init__(self, config):
        super().__init__(config)
        self.register_buffer("offset", torch.full((1, 3, 1, 1), 0.5), persistent=False)
        self.conv = nn.Conv2d(3, 12, 3, padding=1)
        self.act = nn.PReLU()
        self.norm = nn.BatchNorm2d(12)
        self.post_init()

    def reconstruct(self, pixel_values):
        return torch.nn.functional.pixel_shuffle(self.act(self.norm(self.conv(pixel_values - self.offset))), 2) + self.offset


def test_user_model_keeps_buffers_and_default_init_through_from_pretrained(tmp_path):
    from safetensors.torch import load_file, save_file

    register_model(_BufferedConfig, _BufferedSR)
    torch.manual_seed(0)
    model = _BufferedSR(_BufferedConfig(upscale_factor=2)).eval()
    with torch.no_grad():  # trained-looking statistics, so that a reload that drops them shows
        model.norm.running_mean.uniform_(-1, 1)
        model.norm.running_var.uniform_(0.5, 2)
        model.act.weight.fill_(0.1)
    model.save_pretrained(tmp_path / "full")
    loaded = _BufferedSR.from_pretrained(tmp_path / "full").eval()
    x = torch.rand(1, 3, 6, 6)
    # the non-persistent buffer is not in the file: transformers' meta-device build would leave garbage
    assert torch.equal(loaded.offset, torch.full((1, 3, 1, 1), 0.5))
    assert torch.equal(loaded(x).reconstruction, model(x).reconstruction)
    # rebuilding the buffers leaves torch's random stream and init functions alone
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    _BufferedSR.from_pretrained(tmp_path / "full")
    assert torch.equal(torch.rand(3), expected)
    assert torch.nn.init.kaiming_uniform_.__module__ == "torch.nn.init"
    # layers missing from the file get PyTorch's default init (not uninitialised memory)
    state = load_file(tmp_path / "full" / "model.safetensors")
    save_file({k: v for k, v in state.items() if not k.startswith(("act.", "norm."))}, tmp_path / "full" / "model.safetensors",
              metadata={"format": "pt"})
    partial = _BufferedSR.from_pretrained(tmp_path / "full")
    assert partial.act.weight.item() == 0.25
    assert torch.equal(partial.norm.running_var, torch.ones(12)) and torch.equal(partial.norm.weight, torch.ones(12))
    assert torch.equal(partial.conv.weight, model.conv.weight)  # loaded tensors untouched
    # also through the Auto classes and in another dtype
    from transformers import AutoModelForImageToImage

    half = AutoModelForImageToImage.from_pretrained(tmp_path / "full", dtype=torch.bfloat16)
    assert half.offset.dtype == torch.bfloat16 and torch.all(half.offset == 0.5)


def test_register_model_refuses_a_model_type_taken_by_another_class():
    class Clash(SuperResolutionConfig):
        model_type = "msrresnet"

    class ClashModel(SuperResolutionPreTrainedModel):
        config_class = Clash

    with pytest.raises(ValueError, match=r"'msrresnet' is already taken by .*MSRResNetConfig: give Clash a model_type of its own"):
        register_model(Clash, ClashModel)
    from hfmagic import MSRResNet, MSRResNetConfig

    register_model(MSRResNetConfig, MSRResNet)  # the same pair again: fine
