"""PerceptualLoss and its VGG (hfmagic/losses/perceptual.py, vgg.py) on a tiny random VGG19, against
features computed here with F.conv2d / relu / max_pool2d from torchvision's published layout."""

import copy

import pytest
import torch
from safetensors.torch import save_file
from torch import nn
from torch.nn import functional as F

from hfmagic.losses import PerceptualLoss, VGGFeatureExtractor, load_vgg_weights
from tiny_vgg import TINY_VGG16_WIDTHS, save_tiny_vgg19, tiny_vgg_state

# torchvision's vgg19.features: conv (3x3, padding 1) at these indices, 2x2 max-pool at POOLS, ReLU elsewhere
VGG19_CONVS = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
VGG19_POOLS = [4, 9, 18, 27, 36]
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def reference_features(state, x, layers, input_norm=True):
    """features[:k + 1](x) for each k in layers (conv index -> pre-ReLU output)."""
    if input_norm:
        x = (x - MEAN) / STD
    out = {}
    for index in range(max(int(k) for k in layers) + 1):
        if index in VGG19_CONVS:
            x = F.conv2d(x, state[f"features.{index}.weight"], state[f"features.{index}.bias"], padding=1)
        elif index in VGG19_POOLS:
            x = F.max_pool2d(x, 2, 2)
        else:
            x = F.relu(x)
        if str(index) in layers:
            out[str(index)] = x
    return out


def gram(f):
    n, c, h, w = f.shape
    flat = f.reshape(n, c, h * w)
    return torch.einsum("nip,njp->nij", flat, flat) / (c * h * w)


@pytest.fixture(scope="module")
def state():
    return tiny_vgg_state()


@pytest.fixture(scope="module")
def vgg_folder(tmp_path_factory):
    return save_tiny_vgg19(tmp_path_factory.mktemp("vgg"))


@pytest.fixture
def images():
    generator = torch.Generator().manual_seed(1)
    return torch.rand(2, 3, 32, 32, generator=generator), torch.rand(2, 3, 32, 32, generator=generator)


# ------------------------------------------------------------------------------ where the weights come from
def test_default_pretrained_is_timm_vgg19_from_the_hub_then_offline(tiny_vgg19_on_hub, hub_server, state, images, monkeypatch):
    from huggingface_hub import constants

    x, gt = images
    online = PerceptualLoss({"34": 1.0}, style_weight=0.0, norm_img=False)
    assert online.pretrained == tiny_vgg19_on_hub == "timm/vgg19.tv_in1k"
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    served = len(hub_server.requests)
    offline = PerceptualLoss({"34": 1.0}, style_weight=0.0, norm_img=False)  # from the HF cache
    assert len(hub_server.requests) == served
    expected = F.l1_loss(*(reference_features(state, t, {"34"})["34"] for t in (x, gt)))
    torch.testing.assert_close(offline(x, gt)[0], expected)
    torch.testing.assert_close(online(x, gt)[0], expected)


def test_a_hub_id_unavailable_offline_says_to_pass_a_local_folder(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(OSError, match=r"timm/vgg16\.tv_in1k.*HF_HUB_OFFLINE.*local folder.*--vgg_model_name_or_path"):
        PerceptualLoss({"28": 1.0}, vgg_type="vgg16")  # default pretrained follows vgg_type


def test_local_folder_safetensors_and_torchvision_pth_load_the_same(vgg_folder, tmp_path, images, state):
    torchvision_pth = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save(tiny_vgg_state(naming="torchvision"), torchvision_pth)
    single = tmp_path / "vgg.safetensors"
    save_file(tiny_vgg_state(), str(single))
    x, gt = images
    values = [
        PerceptualLoss({"7": 1.0, "16": 0.5}, norm_img=False, pretrained=source)(x, gt)
        for source in (vgg_folder, str(vgg_folder / "model.safetensors"), single, torchvision_pth)
    ]
    for percep, style in values[1:]:
        torch.testing.assert_close(percep, values[0][0], rtol=0, atol=0)
        torch.testing.assert_close(style, values[0][1], rtol=0, atol=0)
    # only features.* tensors are kept (timm's pre_logits/head and torchvision's classifier are dropped)
    assert set(load_vgg_weights(torchvision_pth)) == {k.removeprefix("features.") for k in state if k.startswith("features.")}


def test_a_pth_with_pickled_objects_is_refused(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"features.0.weight": torch.zeros(4, 3, 3, 3), "hook": nn.ReLU()}, path)
    with pytest.raises(ValueError, match=r"weights_only=True"):
        load_vgg_weights(path)


def test_missing_or_wrong_files_give_clear_errors(tmp_path, vgg_folder):
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        load_vgg_weights(tmp_path / "nope.safetensors")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="has no model.safetensors"):
        load_vgg_weights(tmp_path / "empty")
    save_file({"conv.weight": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match=r"no features.<index>.\* tensors.*torchvision or timm"):
        load_vgg_weights(tmp_path / "other.safetensors")
    # a VGG16 file loaded as VGG19: the layer pattern does not match, and the error names the fix
    save_file(tiny_vgg_state(TINY_VGG16_WIDTHS), str(tmp_path / "vgg16.safetensors"))
    with pytest.raises(ValueError, match=r"does not follow vgg19's layer pattern.*features.17.*vgg_type='vgg16'"):
        PerceptualLoss({"34": 1.0}, pretrained=tmp_path / "vgg16.safetensors")
    # ... and loads as what it is
    PerceptualLoss({"28": 1.0}, vgg_type="vgg16", pretrained=tmp_path / "vgg16.safetensors")
    # a conv that is not 3x3 / does not chain channels
    bad = tiny_vgg_state()
    bad["features.2.weight"] = torch.zeros(4, 5, 3, 3)
    save_file(bad, str(tmp_path / "bad.safetensors"))
    with pytest.raises(ValueError, match=r"features.2 \(conv1_2 of vgg19\) should be a 3x3 conv from 4 channels.*\(4, 5, 3, 3\)"):
        PerceptualLoss({"2": 1.0}, pretrained=tmp_path / "bad.safetensors")


def test_bad_arguments(vgg_folder):
    with pytest.raises(ValueError, match=r"Unknown vgg_type='vgg20'.*vgg19"):
        PerceptualLoss({"34": 1.0}, vgg_type="vgg20", pretrained=vgg_folder)
    with pytest.raises(ValueError, match=r"'37'.*not an index of vgg19.features.*'0'..'36'.*'34' = conv5_4"):
        PerceptualLoss({"37": 1.0}, pretrained=vgg_folder)
    with pytest.raises(ValueError, match=r"layer_weights_style has the key 'conv5_4'"):
        PerceptualLoss({"34": 1.0}, {"conv5_4": 1.0}, pretrained=vgg_folder)
    with pytest.raises(ValueError, match=r"non-empty dict"):
        PerceptualLoss({}, pretrained=vgg_folder)
    with pytest.raises(ValueError, match=r"Unknown criterion='huber'.*\['l1', 'mse'\]"):
        PerceptualLoss({"34": 1.0}, criterion="huber", pretrained=vgg_folder)


# ------------------------------------------------------------------------------ values
@pytest.mark.parametrize("criterion", ["l1", "MSE"])
def test_perceptual_loss_is_the_weighted_feature_distance(criterion, vgg_folder, state, images):
    x, gt = images
    weights = {"2": 0.1, "7": 0.5, "25": 1.0, "34": 2.0}
    loss = PerceptualLoss(weights, vgg_type="vgg19", perceptual_weight=0.7, style_weight=0.0, norm_img=False,
                          criterion=criterion, pretrained=vgg_folder)
    percep, style = loss(x, gt)
    fx, fg = reference_features(state, x, weights), reference_features(state, gt, weights)
    distance = F.l1_loss if criterion == "l1" else F.mse_loss
    expected = 0.7 * sum(w * distance(fx[k], fg[k]) for k, w in weights.items())
    torch.testing.assert_close(percep, expected)
    assert style is None
    assert len(loss.vgg.features) == 35  # built up to the deepest requested layer only


def test_style_loss_is_the_weighted_gram_distance(vgg_folder, state, images):
    x, gt = images
    loss = PerceptualLoss({"7": 1.0}, {"16": 0.3, "25": 2.0}, perceptual_weight=0.0, style_weight=5.0, norm_img=False,
                          pretrained=vgg_folder)
    percep, style = loss(x, gt)
    fx, fg = reference_features(state, x, {"16", "25"}), reference_features(state, gt, {"16", "25"})
    expected = 5.0 * (0.3 * F.l1_loss(gram(fx["16"]), gram(fg["16"])) + 2.0 * F.l1_loss(gram(fx["25"]), gram(fg["25"])))
    assert percep is None
    torch.testing.assert_close(style, expected)
    # without layer_weights_style, the style term uses layer_weights (MMagic's default style_weight is 1)
    percep, style = PerceptualLoss({"7": 1.0}, norm_img=False, pretrained=vgg_folder)(x, gt)
    fx, fg = reference_features(state, x, {"7"}), reference_features(state, gt, {"7"})
    torch.testing.assert_close(percep, F.l1_loss(fx["7"], fg["7"]))
    torch.testing.assert_close(style, F.l1_loss(gram(fx["7"]), gram(fg["7"])))


def test_zero_weights_give_none(vgg_folder, images):
    assert PerceptualLoss({"7": 1.0}, perceptual_weight=0.0, style_weight=-1.0, pretrained=vgg_folder)(*images) == (None, None)


def test_norm_img_and_use_input_norm(vgg_folder, state, images):
    x, gt = images
    signed = PerceptualLoss({"7": 1.0}, style_weight=0.0, pretrained=vgg_folder)  # norm_img=True: inputs in [-1, 1]
    plain = PerceptualLoss({"7": 1.0}, style_weight=0.0, norm_img=False, pretrained=vgg_folder)
    torch.testing.assert_close(signed(x * 2 - 1, gt * 2 - 1)[0], plain(x, gt)[0])
    raw = PerceptualLoss({"7": 1.0}, style_weight=0.0, norm_img=False, use_input_norm=False, pretrained=vgg_folder)
    expected = F.l1_loss(*(reference_features(state, t, {"7"}, input_norm=False)["7"] for t in (x, gt)))
    torch.testing.assert_close(raw(x, gt)[0], expected)
    assert not torch.allclose(raw(x, gt)[0], plain(x, gt)[0])


# ------------------------------------------------------------------------------ a frozen, invisible module
def test_gradients_reach_x_only(vgg_folder, images):
    x, gt = (t.clone().requires_grad_() for t in images)
    loss = PerceptualLoss({"7": 1.0, "16": 1.0}, norm_img=False, pretrained=vgg_folder)
    percep, style = loss(x, gt)
    (percep + style).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert gt.grad is None
    assert all(not p.requires_grad and p.grad is None for p in loss.vgg.parameters())


def test_not_in_state_dict_parameters_or_train_mode(vgg_folder, images):
    class Holder(nn.Module):  # e.g. a training object holding the generator and its losses
        def __init__(self):
            super().__init__()
            self.generator = nn.Conv2d(3, 3, 1)
            self.perceptual = PerceptualLoss({"7": 1.0}, pretrained=vgg_folder)

    holder = Holder()
    assert holder.perceptual.state_dict() == {}
    assert set(holder.state_dict()) == {"generator.weight", "generator.bias"}
    holder.load_state_dict(Holder().state_dict())  # strict: no VGG keys expected either
    holder.perceptual.load_state_dict({})
    assert [name for name, _ in holder.named_parameters()] == ["generator.weight", "generator.bias"]
    holder.train()
    assert holder.perceptual.training and not holder.perceptual.vgg.training
    assert not any(m.training for m in holder.perceptual.vgg.modules())
    holder.perceptual.vgg.train()
    assert not holder.perceptual.vgg.training
    # .to() moves (here: casts) the VGG with its holder; a copy keeps its own VGG
    holder.to(torch.float64)
    assert {p.dtype for p in holder.perceptual.vgg.parameters()} == {torch.float64}
    assert holder.perceptual.vgg.mean.dtype == torch.float64
    x, gt = (t.double() for t in images)
    twin = copy.deepcopy(holder.perceptual)
    torch.testing.assert_close(twin(x, gt)[0], holder.perceptual(x, gt)[0])
    assert "vgg19 from" in repr(holder.perceptual) and "7 (conv2_2)" in repr(holder.perceptual)


def test_batch_norm_vgg_types(tmp_path, images):
    """vgg11_bn: conv, bn, relu per conv (torchvision's layout), the bn in eval mode with its running stats."""
    widths = (4, "M", 6, "M", 8, 8, "M", 8, 8, "M", 8, 8, "M")
    state = tiny_vgg_state(widths, batch_norm=True)
    save_file(state, str(tmp_path / "vgg11_bn.safetensors"))
    x, gt = images
    loss = PerceptualLoss({"5": 1.0}, style_weight=0.0, norm_img=False, vgg_type="vgg11_bn",
                          pretrained=tmp_path / "vgg11_bn.safetensors")

    def features(t):  # conv1_1 (0), bn (1), relu (2), pool (3), conv2_1 (4), bn2_1 (5)
        t = (t - MEAN) / STD
        for conv, bn in ((0, 1), (4, 5)):
            t = F.conv2d(t, state[f"features.{conv}.weight"], state[f"features.{conv}.bias"], padding=1)
            s = {k: state[f"features.{bn}.{k}"] for k in ("weight", "bias", "running_mean", "running_var")}
            t = F.batch_norm(t, s["running_mean"], s["running_var"], s["weight"], s["bias"], training=False, eps=1e-5)
            if conv == 0:
                t = F.max_pool2d(F.relu(t), 2)
        return t

    loss.train()
    torch.testing.assert_close(loss(x, gt)[0], F.l1_loss(features(x), features(gt)))
    with pytest.raises(ValueError, match=r"vgg_type='vgg11_bn'"):
        PerceptualLoss({"5": 1.0}, vgg_type="vgg11", pretrained=tmp_path / "vgg11_bn.safetensors")


def test_feature_extractor_directly(state, images):
    features = {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}
    vgg = VGGFeatureExtractor(features, "vgg19", num_layers=17)
    out = vgg(images[0], ["2", "16"])
    ref = reference_features(state, images[0], {"2", "16"})
    assert set(out) == {"2", "16"}
    for k in out:
        torch.testing.assert_close(out[k], ref[k])
    with pytest.raises(ValueError, match=r"built up to features\[16\]"):
        vgg(images[0], ["34"])
