"""The device-resident SR data path equals the CPU dataset's crop / MATLAB-bicubic / flip semantics for
the same random choices (tested on CPU; the same code runs on CUDA)."""

import numpy as np
import pytest
import torch
from PIL import Image

from hfmagic.data.gpu_pipeline import CropPlan, DeviceSRData, loader_rate
from hfmagic.data.sr_dataset import PairedSRTransform


def _textured(h, w, seed):
    """Smooth gradients plus noise: bicubic sums land on many different fractional values."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 127 + 60 * np.sin(yy[..., None] / (3 + seed) + xx[..., None] / 5 + np.arange(3))
    return np.clip(base + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8)


class _Scripted(PairedSRTransform):
    """The CPU transform with its random draws replaced by given values."""

    def __init__(self, *args, ints, coins, **kwargs):
        super().__init__(*args, **kwargs)
        self.ints, self.coins = list(ints), list(coins)

    def _randint(self, high):
        value = self.ints.pop(0)
        assert 0 <= value <= high
        return value

    def _coin(self):
        return self.coins.pop(0)


def _cpu_pairs(images, scale, p, plan: CropPlan):
    lrs, hrs = [], []
    for i in range(len(plan)):
        transform = _Scripted(
            scale,
            p,
            ints=[int(plan.top[i]), int(plan.left[i])],
            coins=[bool(plan.hflip[i]), bool(plan.vflip[i]), bool(plan.transpose[i])],
        )
        lr, hr = transform.make_pair(images[int(plan.index[i])])
        lrs.append(lr)
        hrs.append(hr)
    return torch.stack(lrs), torch.stack(hrs)


@pytest.mark.parametrize("lr_mode", ["precompute", "online"])
@pytest.mark.parametrize("scale,p", [(4, 16), (2, 12), (3, 9)])
def test_equal_to_cpu_dataset_for_the_same_choices(lr_mode, scale, p):
    # sizes not multiples of the scale (modcrop), different per image (padded storage)
    images = [_textured(47, 38, 0), _textured(30, 53, 1), _textured(p + 2, p + 1, 2)]
    data = DeviceSRData(images, scale=scale, gt_patch_size=p, lr_mode=lr_mode)
    generator = torch.Generator().manual_seed(0)
    plan = data.plan(24, generator)
    # force corners at every border too: the symmetric padding of the online resize must be right there
    lq = p // scale
    max_top = data.sizes[plan.index, 0] // scale - lq
    max_left = data.sizes[plan.index, 1] // scale - lq
    plan.top[:4] = torch.tensor([0, int(max_top[1]), 0, int(max_top[3])])
    plan.left[:4] = torch.tensor([0, 0, int(max_left[2]), int(max_left[3])])
    batch = data.batch(plan)
    lr_cpu, hr_cpu = _cpu_pairs(images, scale, p, plan)
    assert batch["pixel_values"].shape == (24, 3, lq, lq) and batch["labels"].shape == (
        24,
        3,
        p,
        p,
    )
    assert batch["pixel_values"].dtype == torch.float32
    torch.testing.assert_close(batch["labels"], hr_cpu, rtol=0, atol=0)
    torch.testing.assert_close(batch["pixel_values"], lr_cpu, rtol=0, atol=0)


@pytest.mark.parametrize("lr_mode", ["precompute", "online"])
def test_16bit_images_keep_their_precision_and_equal_the_cpu_dataset(lr_mode):
    scale, p = 2, 12
    deep = _textured(31, 29, 3).astype(np.uint16) * 257 + np.random.default_rng(3).integers(0, 257, (31, 29, 3)).astype(np.uint16)
    images = [_textured(30, 33, 1), deep, _textured(p + 2, p + 1, 2)]  # 8-bit images before and after the 16-bit one
    data = DeviceSRData(images, scale=scale, gt_patch_size=p, lr_mode=lr_mode)
    assert data.hr.dtype == torch.int16 and data.deep.tolist() == [False, True, False]
    assert data.memory_bytes() == 2 * (data.hr.numel() + (data.lr.numel() if data.lr is not None else 0))
    plan = data.plan(24, torch.Generator().manual_seed(0))
    plan.index[:3] = torch.tensor([1, 1, 1])
    plan.top[:3], plan.left[:3] = torch.tensor([0, 9, 4]), torch.tensor([0, 8, 3])  # corners: the padding is right
    batch = data.batch(plan)
    lr_cpu, hr_cpu = _cpu_pairs(images, scale, p, plan)
    torch.testing.assert_close(batch["labels"], hr_cpu, rtol=0, atol=0)
    if lr_mode == "precompute":
        torch.testing.assert_close(batch["pixel_values"], lr_cpu, rtol=0, atol=0)
    else:  # a margin folded at the border sums in another order: float32 ulps flip a rare uint16 rounding
        difference = (batch["pixel_values"] - lr_cpu).abs() * 65535
        assert difference.max() < 1.01 and (difference > 0).float().mean() < 0.01
        assert torch.equal(batch["pixel_values"][plan.index != 1], lr_cpu[plan.index != 1])
    rows = plan.index == 1
    hr16, lr16 = batch["labels"][rows] * 65535, batch["pixel_values"][rows] * 65535
    assert torch.equal(hr16, hr16.round()) and torch.equal(lr16, lr16.round())  # exact 16-bit levels
    assert (hr16 % 257 != 0).float().mean() > 0.9 and (lr16 % 257 != 0).float().mean() > 0.9
    lr8 = batch["pixel_values"][~rows] * 255  # the 8-bit images still give 8-bit levels
    assert torch.allclose(lr8, lr8.round(), atol=1e-4)


def test_plan_covers_every_corner_and_symmetry():
    data = DeviceSRData([_textured(20, 24, 0)], scale=2, gt_patch_size=16)
    plan = data.plan(4000, torch.Generator().manual_seed(1))
    # LR 10x12, patch 8: tops 0..2, lefts 0..4, uniform
    assert sorted(plan.top.unique().tolist()) == [0, 1, 2] and sorted(plan.left.unique().tolist()) == [0, 1, 2, 3, 4]
    counts = torch.bincount(plan.left, minlength=5).float() / 4000
    assert torch.all((counts - 0.2).abs() < 0.04)
    combos = {(bool(h), bool(v), bool(t)) for h, v, t in zip(plan.hflip, plan.vflip, plan.transpose)}
    assert len(combos) == 8
    assert 0.45 < plan.hflip.float().mean() < 0.55


def test_no_augment_and_seeded_loader():
    images = [_textured(32, 32, i) for i in range(3)]
    data = DeviceSRData(images, scale=4, gt_patch_size=16, augment=False)
    plan = data.plan(50, torch.Generator().manual_seed(0))
    assert not (plan.hflip.any() or plan.vflip.any() or plan.transpose.any())
    a = list(data.loader(8, seed=3, num_batches=2))
    b = list(data.loader(8, seed=3, num_batches=2))
    assert len(a) == 2
    for x, y in zip(a, b):
        assert torch.equal(x["pixel_values"], y["pixel_values"]) and torch.equal(x["labels"], y["labels"])
    c = next(data.loader(8, seed=4))
    assert not torch.equal(a[0]["labels"], c["labels"])
    assert loader_rate(data, 4, num_batches=2) > 0


def test_precomputed_and_online_lr_agree_and_memory():
    images = [_textured(41, 45, i) for i in range(2)]
    pre = DeviceSRData(images, scale=4, gt_patch_size=16)
    online = DeviceSRData(images, scale=4, gt_patch_size=16, lr_mode="online")
    plan = pre.plan(16, torch.Generator().manual_seed(5))
    assert torch.equal(pre.batch(plan)["pixel_values"], online.batch(plan)["pixel_values"])
    assert pre.memory_bytes() == online.memory_bytes() + 2 * 3 * 10 * 11


def test_from_source_folder(tmp_path):
    pytest.importorskip("datasets")
    for i in range(2):
        Image.fromarray(_textured(24, 28, i)).save(tmp_path / f"{i}.png")
    data = DeviceSRData.from_source(str(tmp_path), scale=2, gt_patch_size=8)
    assert len(data) == 2 and data.sizes.tolist() == [[24, 28], [24, 28]]
    assert data.sample(3)["labels"].shape == (3, 3, 8, 8)


def test_batch_at_is_a_pure_function_of_seed_and_step_and_ranks_share_it():
    images = [_textured(32, 36, i) for i in range(3)]
    data = DeviceSRData(images, scale=2, gt_patch_size=8)
    whole = data.batch_at(5, 6, seed=1)
    again = DeviceSRData(images, scale=2, gt_patch_size=8).batch_at(5, 6, seed=1)
    ranks = [data.batch_at(5, 2, seed=1, rank=r, world_size=3) for r in range(3)]
    for key in ("pixel_values", "labels"):
        assert torch.equal(whole[key], again[key])
        assert torch.equal(whole[key], torch.cat([r[key] for r in ranks]))  # W ranks = one process, batch B*W
    assert whole["labels"].shape == (6, 3, 8, 8) and whole["pixel_values"].shape == (6, 3, 4, 4)
    assert not torch.equal(whole["labels"], data.batch_at(6, 6, seed=1)["labels"])
    assert not torch.equal(whole["labels"], data.batch_at(5, 6, seed=2)["labels"])
    # the plan's rows are those of the global batch: a rank's share of a CropPlan
    plan = data.plan(6, torch.Generator().manual_seed(0))
    assert plan[2:4].index.tolist() == plan.index[2:4].tolist() and len(plan[2:4]) == 2
    with pytest.raises(ValueError, match="rank 3"):
        data.batch_at(0, 2, rank=3, world_size=3)


def test_to_device_and_skip_small():
    images = [_textured(20, 20, 0), _textured(10, 30, 1), _textured(24, 20, 2)]
    with pytest.warns(UserWarning, match="Skipping 1 image"):
        data = DeviceSRData(images, scale=2, gt_patch_size=16, skip_small=True)
    assert data.sizes.tolist() == [[20, 20], [24, 20]]
    before = data.batch_at(0, 4, seed=0)
    assert data.to("cpu") is data and data.device == torch.device("cpu")
    assert torch.equal(before["labels"], data.batch_at(0, 4, seed=0)["labels"])
    with pytest.raises(ValueError, match="1 of 1 image"):
        DeviceSRData([images[1]], scale=2, gt_patch_size=16, skip_small=True)


def test_errors():
    image = _textured(20, 20, 0)
    with pytest.raises(ValueError, match="smaller than gt_patch_size.*skip_small=True"):
        DeviceSRData([image, _textured(10, 30, 1)], scale=2, gt_patch_size=16)
    with pytest.raises(ValueError, match="multiple of scale"):
        DeviceSRData([image], scale=4, gt_patch_size=10)
    with pytest.raises(ValueError, match="lr_mode"):
        DeviceSRData([image], scale=2, gt_patch_size=8, lr_mode="lazy")
    with pytest.raises(ValueError, match="at least one image"):
        DeviceSRData([], scale=2, gt_patch_size=8)
    with pytest.raises(ValueError, match="uint8"):
        DeviceSRData([torch.zeros(3, 20, 20)], scale=2, gt_patch_size=8)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_equals_cpu():
    images = [_textured(40, 44, i) for i in range(2)]
    for lr_mode in ("precompute", "online"):
        cpu = DeviceSRData(images, scale=4, gt_patch_size=16, lr_mode=lr_mode)
        gpu = DeviceSRData(images, scale=4, gt_patch_size=16, lr_mode=lr_mode, device="cuda")
        plan = cpu.plan(16, torch.Generator().manual_seed(0))
        gplan = CropPlan(
            *(
                t.cuda()
                for t in (
                    plan.index,
                    plan.top,
                    plan.left,
                    plan.hflip,
                    plan.vflip,
                    plan.transpose,
                )
            )
        )
        for key in ("pixel_values", "labels"):
            torch.testing.assert_close(gpu.batch(gplan)[key].cpu(), cpu.batch(plan)[key], rtol=0, atol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_train_sr_on_cuda_with_device_data(tmp_path):
    from hfmagic import MSRResNet, MSRResNetConfig
    from hfmagic.training import SRTrainingArguments, train_sr

    data = DeviceSRData([_textured(40, 44, i) for i in range(3)], scale=4, gt_patch_size=16)  # built on CPU
    model = MSRResNet(MSRResNetConfig(upscale_factor=4, mid_channels=8, num_blocks=1))
    args = SRTrainingArguments(output_dir=str(tmp_path), train_batch_size=4, max_train_steps=3, validation_steps=0,
                               checkpointing_steps=0, mixed_precision="bf16")
    result = train_sr(model, data, args)
    assert result.global_step == 3 and data.device.type == "cuda"
    trained = MSRResNet.from_pretrained(result.final_dir)
    assert all(torch.isfinite(p).all() for p in trained.parameters())
