"""build_sr_dataset: sources, LR made online (equal to resizing the whole image), paired crops and
augmentation, image modes, small images, seeding."""

import io
import os

import numpy as np
import pytest
import torch
from PIL import Image

datasets = pytest.importorskip("datasets")

from hfmagic.data import imresize  # noqa: E402
from hfmagic.data.sr_dataset import PairedSRTransform, build_sr_dataset, modcrop, sr_collate_fn  # noqa: E402


def _png(array: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    (Image.fromarray(array, mode) if mode else Image.fromarray(array)).save(buffer, format="PNG")
    return buffer.getvalue()


def _noise(h, w, seed=0, channels=3):
    shape = (h, w, channels) if channels else (h, w)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _to_uint8(t: torch.Tensor) -> np.ndarray:
    return (t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def _locate(hr: np.ndarray, patch: np.ndarray, step: int):
    """(top, left) of `patch` inside `hr` on the step grid, or None."""
    p = patch.shape[0]
    for top in range(0, hr.shape[0] - p + 1, step):
        for left in range(0, hr.shape[1] - p + 1, step):
            if np.array_equal(hr[top : top + p, left : left + p], patch):
                return top, left
    return None


def _symmetries(x: np.ndarray):
    """The 8 flip/transpose variants of an (H, W, C) array, keyed by (hflip, vflip, transpose)."""
    out = {}
    for h in (0, 1):
        for v in (0, 1):
            for t in (0, 1):
                y = x[:, ::-1] if h else x
                y = y[::-1] if v else y
                y = y.transpose(1, 0, 2) if t else y
                out[(h, v, t)] = np.ascontiguousarray(y)
    return out


@pytest.fixture()
def image_folder(tmp_path):
    root = tmp_path / "images"
    (root / "nested").mkdir(parents=True)
    Image.fromarray(_noise(50, 40, 1)).save(root / "a.png")
    Image.fromarray(_noise(37, 45, 2, channels=0), "L").save(root / "nested" / "b.png")
    Image.fromarray(_noise(33, 34, 3, channels=4), "RGBA").save(root / "c.png")
    return root


def test_image_folder_source_shapes_and_range(image_folder):
    ds = build_sr_dataset(str(image_folder), scale=4, gt_patch_size=16, seed=0)
    assert len(ds) == 3  # sub-folder images included, no label column
    for item in ds:
        assert set(item) == {"pixel_values", "labels"}
        assert item["pixel_values"].shape == (3, 4, 4) and item["labels"].shape == (3, 16, 16)
        assert item["pixel_values"].dtype == torch.float32
        assert 0 <= item["labels"].min() and item["labels"].max() <= 1
    batch = sr_collate_fn([ds[i] for i in range(3)])
    assert batch["pixel_values"].shape == (3, 3, 4, 4) and batch["labels"].shape == (3, 3, 16, 16)


def test_parquet_save_to_disk_and_in_memory_sources(tmp_path):
    images = [_noise(24, 28, i) for i in range(3)]
    ds = datasets.Dataset.from_dict({"image": [{"bytes": _png(a), "path": None} for a in images]})
    ds = ds.cast_column("image", datasets.Image())
    ds.to_parquet(str(tmp_path / "one.parquet"))
    ds.save_to_disk(str(tmp_path / "disk"))
    datasets.DatasetDict({"train": ds, "validation": ds.select([0])}).save_to_disk(str(tmp_path / "dict"))
    (tmp_path / "pq" / "data").mkdir(parents=True)
    ds.to_parquet(str(tmp_path / "pq" / "data" / "train-00000-of-00001.parquet"))

    kwargs = dict(scale=2, gt_patch_size=None, augment=False)
    for source in [tmp_path / "one.parquet", str(tmp_path / "*.parquet"), tmp_path / "disk", tmp_path / "pq", ds]:
        built = build_sr_dataset(source, **kwargs)
        assert len(built) == 3, source
        np.testing.assert_array_equal(_to_uint8(built[1]["labels"]), images[1])
    validation = build_sr_dataset(tmp_path / "dict", split="validation", **kwargs)
    assert len(validation) == 1
    with pytest.raises(ValueError, match="no split 'test'"):
        build_sr_dataset(tmp_path / "dict", split="test", **kwargs)
    with pytest.raises(FileNotFoundError):
        build_sr_dataset(tmp_path / "missing", **kwargs)
    with pytest.raises(FileNotFoundError, match="No file matches"):
        build_sr_dataset(str(tmp_path / "nothing-*.parquet"), **kwargs)
    with pytest.raises(ValueError, match="no column 'img'"):
        build_sr_dataset(ds, image_column="img", **kwargs)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_online_lr_equals_cropped_full_image_resize(scale):
    hr = _noise(61, 70, scale)
    full_lr = imresize(modcrop(hr, scale), 1 / scale, round_uint8=True)  # MATLAB bicubic of the whole image
    ds = build_sr_dataset(datasets.Dataset.from_dict({"image": [_png(hr)]}), scale=scale, gt_patch_size=8 * scale, augment=False, seed=scale)
    positions = set()
    for _ in range(12):
        item = ds[0]
        gt = _to_uint8(item["labels"])
        top, left = _locate(hr, gt, scale)  # the HR patch sits on the scale grid
        positions.add((top, left))
        expected = full_lr[top // scale : top // scale + 8, left // scale : left // scale + 8]
        np.testing.assert_array_equal(_to_uint8(item["pixel_values"]), expected)
    assert len(positions) > 6  # random crops, including ones touching the borders of a 61x70 image


def test_augmentation_is_paired_and_uses_all_variants():
    scale = 2
    hr = _noise(20, 20, 7)
    full_lr = imresize(hr, 1 / scale, round_uint8=True)
    ds = build_sr_dataset(datasets.Dataset.from_dict({"image": [_png(hr)]}), scale=scale, gt_patch_size=8, seed=3)
    seen = set()
    for _ in range(60):
        item = ds[0]
        gt, lr = _to_uint8(item["labels"]), _to_uint8(item["pixel_values"])
        matches = []
        for key in _symmetries(gt):
            # undo (hflip, vflip, transpose) applied in that order: transpose back first, then flips
            undone = gt
            if key[2]:
                undone = undone.transpose(1, 0, 2)
            if key[1]:
                undone = undone[::-1]
            if key[0]:
                undone = undone[:, ::-1]
            where = _locate(hr, np.ascontiguousarray(undone), scale)
            if where is not None:
                matches.append((key, where))
        assert matches, "labels are not a flipped/transposed crop of the HR image"
        key, (top, left) = matches[0]
        seen.add(key)
        expected_lr = _symmetries(full_lr[top // 2 : top // 2 + 4, left // 2 : left // 2 + 4])[key]
        np.testing.assert_array_equal(lr, expected_lr)
    assert len(seen) >= 6  # hflip x vflip x transpose all happen


def test_lr_column_is_used_and_checked():
    scale = 2
    hr = _noise(21, 17, 11)  # one extra row/column beyond 2x the LR: cropped away
    lr = _noise(10, 8, 12)
    ds = datasets.Dataset.from_dict({"image": [_png(hr)], "lr": [_png(lr)]})
    built = build_sr_dataset(ds, scale=scale, gt_patch_size=8, augment=False, seed=0)
    for _ in range(5):
        item = built[0]
        top, left = _locate(hr, _to_uint8(item["labels"]), scale)
        np.testing.assert_array_equal(_to_uint8(item["pixel_values"]), lr[top // 2 : top // 2 + 4, left // 2 : left // 2 + 4])
    whole = build_sr_dataset(ds, scale=scale, gt_patch_size=None, augment=False)[0]
    np.testing.assert_array_equal(_to_uint8(whole["pixel_values"]), lr)
    assert whole["labels"].shape == (3, 20, 16)
    # lr_x{scale} is preferred over "lr"; a wrong scale is a clear error
    renamed = ds.rename_column("lr", "lr_x3")
    with pytest.raises(ValueError, match=r"row 0.*HR is 21x17.*LR is 10x8"):
        build_sr_dataset(renamed, scale=3, gt_patch_size=None)[0]
    with pytest.raises(ValueError, match="no column 'lq'"):
        build_sr_dataset(ds, scale=2, gt_patch_size=8, lr_column="lq")


def test_image_modes_become_rgb():
    gray = _noise(16, 16, 20, channels=0)
    rgba = _noise(16, 16, 21, channels=4)
    deep = (np.random.default_rng(22).integers(0, 65536, (16, 16))).astype(np.uint16)
    palette = Image.fromarray(_noise(16, 16, 23)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG")
    sources = [_png(gray, "L"), _png(rgba, "RGBA"), _png(deep), buffer.getvalue()]
    assert Image.open(io.BytesIO(sources[2])).mode.startswith("I")  # really a 16-bit PNG
    ds = build_sr_dataset(datasets.Dataset.from_dict({"image": sources}), scale=2, gt_patch_size=None, augment=False)
    labels = [_to_uint8(ds[i]["labels"]) for i in range(4)]
    for image in labels:
        assert image.shape == (16, 16, 3)
    np.testing.assert_array_equal(labels[0], np.repeat(gray[..., None], 3, axis=2))
    np.testing.assert_array_equal(labels[1], rgba[..., :3])
    np.testing.assert_array_equal(labels[2][..., 0], np.rint(deep / 257.0).astype(np.uint8))
    np.testing.assert_array_equal(labels[3], np.asarray(palette.convert("RGB")))
    # the 16-bit PNG reaches the tensors as x / 65535, not rounded to 8 bits first
    deep_labels = ds[2]["labels"] * 65535
    assert torch.equal(deep_labels, deep_labels.round())
    np.testing.assert_array_equal(deep_labels.round().numpy().astype(np.uint16), np.stack([deep] * 3))


@pytest.mark.parametrize("channels", [3, 4])
def test_16bit_colour_keeps_its_precision(channels):
    from hfmagic.data import load_rgb, to_tensor
    from hfmagic.data.image16 import encode_png16
    from hfmagic.data.sr_dataset import round_uint16_levels

    yy, xx = np.mgrid[0:24, 0:20]
    hr = np.stack([(yy * 2311 + xx * 977 + k * 5003) * 13 % 65536 for k in range(channels)], axis=2).astype(np.uint16)
    png = encode_png16(hr)
    assert Image.open(io.BytesIO(png)).mode in ("RGB", "RGBA")  # what Pillow alone gives: 8 bits
    rgb = load_rgb(png, keep_16bit=True)
    assert rgb.dtype == np.uint16
    np.testing.assert_array_equal(rgb, hr[..., :3])
    np.testing.assert_array_equal(load_rgb(png), (hr[..., :3] >> 8).astype(np.uint8))  # the default stays 8-bit (Pillow's)
    assert torch.equal(to_tensor(rgb), torch.from_numpy(hr[..., :3].astype(np.float32)).permute(2, 0, 1) / 65535)

    ds = build_sr_dataset(datasets.Dataset.from_dict({"image": [png]}), scale=2, gt_patch_size=None, augment=False)
    item = ds[0]
    labels, lr = item["labels"] * 65535, item["pixel_values"] * 65535
    np.testing.assert_array_equal(labels.round().numpy().astype(np.uint16), hr[..., :3].transpose(2, 0, 1))
    expected = round_uint16_levels(imresize(torch.from_numpy(hr[..., :3].astype(np.float32)).permute(2, 0, 1), 0.5))
    torch.testing.assert_close(lr, expected, rtol=0, atol=0.01)
    assert (lr.round() % 257 != 0).float().mean() > 0.9  # 16-bit levels, not 8-bit ones
    # a patch of the same image: the same pixels as the whole-image pair
    patch = build_sr_dataset(datasets.Dataset.from_dict({"image": [png]}), scale=2, gt_patch_size=8, augment=False, seed=0)[0]
    top, left = _locate(hr[..., :3], (patch["labels"] * 65535).round().numpy().astype(np.uint16).transpose(1, 2, 0), 2)
    torch.testing.assert_close(patch["pixel_values"], item["pixel_values"][:, top // 2 : top // 2 + 4, left // 2 : left // 2 + 4], rtol=0, atol=1.6e-5)


def test_small_image_raises_or_is_skipped(image_folder):
    ds = build_sr_dataset(str(image_folder), scale=4, gt_patch_size=36, seed=0)
    names = [os.path.basename(str(p)) for p in sorted(image_folder.rglob("*.png"))]
    assert len(ds) == 3
    errors = []
    for i in range(3):
        try:
            ds[i]
        except ValueError as err:
            errors.append(str(err))
    # b.png is 37x45 -> 36x44 (ok); a.png is 50x40 -> 48x40 (ok); c.png is 33x34 -> 32x32 (too small)
    assert len(errors) == 1, (names, errors)
    assert "c.png" in errors[0] and "32x32" in errors[0] and "row" in errors[0] and "skip_small" in errors[0]
    with pytest.warns(UserWarning, match=r"skipped 1 image.*c\.png"):
        kept = build_sr_dataset(str(image_folder), scale=4, gt_patch_size=36, skip_small=True, seed=0)
    assert len(kept) == 2
    for item in kept:
        assert item["labels"].shape == (3, 36, 36)


def test_seeds_make_crops_reproducible():
    data = datasets.Dataset.from_dict({"image": [_png(_noise(40, 40, i)) for i in range(4)]})

    def run(**kwargs):
        ds = build_sr_dataset(data, scale=2, gt_patch_size=8, **kwargs)
        return torch.stack([ds[i % 4]["labels"] for i in range(12)])

    assert torch.equal(run(seed=5), run(seed=5))
    assert not torch.equal(run(seed=5), run(seed=6))
    torch.manual_seed(0)
    first = run()
    torch.manual_seed(0)
    assert torch.equal(first, run())  # seed=None follows torch's global RNG (set_seed, worker seeding)


def test_dataloader_workers_get_different_streams():
    data = datasets.Dataset.from_dict({"image": [_png(_noise(64, 64, 0))] * 8})
    ds = build_sr_dataset(data, scale=2, gt_patch_size=8, seed=1)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, collate_fn=sr_collate_fn)
    first, second = list(loader)  # batch 0 from worker 0, batch 1 from worker 1, same image
    assert first["labels"].shape == (4, 3, 8, 8)
    assert not torch.equal(first["labels"], second["labels"])
    # each epoch's workers are new processes: they must not replay the previous epoch's crops...
    torch.manual_seed(0)
    epoch1, epoch2 = (torch.cat([b["labels"] for b in loader]) for _ in range(2))
    assert not torch.equal(epoch1, epoch2)
    # ...and the epochs are reproducible under torch.manual_seed, as torch's own worker seeding
    torch.manual_seed(0)
    assert torch.equal(torch.cat([b["labels"] for b in loader]), epoch1)


def test_unreadable_images_are_named():
    data = datasets.Dataset.from_dict({"image": [_png(_noise(40, 40, 0)), b"not a png"]}).cast_column("image", datasets.Image(decode=False))
    ds = build_sr_dataset(data, scale=2, gt_patch_size=8)
    assert ds[0]["labels"].shape == (3, 8, 8)
    with pytest.raises(ValueError, match=r"row 1 cannot be read as an image .*Fix or remove it"):
        ds[1]
    with pytest.raises(ValueError, match=r"row 1 cannot be read as an image"):
        build_sr_dataset(data, scale=2, gt_patch_size=8, skip_small=True)


def test_whole_images_and_collate_error():
    data = datasets.Dataset.from_dict({"image": [_png(_noise(13, 10, 0)), _png(_noise(8, 12, 1))]})
    ds = build_sr_dataset(data, scale=2, gt_patch_size=None, augment=False)
    assert ds[0]["labels"].shape == (3, 12, 10) and ds[0]["pixel_values"].shape == (3, 6, 5)
    with pytest.raises(ValueError, match="batch_size=1"):
        sr_collate_fn([ds[0], ds[1]])


def test_iterable_dataset_source():
    data = datasets.Dataset.from_dict({"image": [_png(_noise(20, 20, i)) for i in range(3)]})
    data = data.cast_column("image", datasets.Image()).to_iterable_dataset()
    items = list(build_sr_dataset(data, scale=2, gt_patch_size=8, seed=0))
    assert len(items) == 3 and all(item["pixel_values"].shape == (3, 4, 4) for item in items)


def test_bad_arguments():
    with pytest.raises(ValueError, match="multiple of scale=4"):
        PairedSRTransform(4, 30)
    with pytest.raises(ValueError, match="positive int"):
        PairedSRTransform(0, 8)


def test_folder_without_images_is_named(tmp_path):
    (tmp_path / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match=r"holds no image files"):
        build_sr_dataset(str(tmp_path), scale=2, gt_patch_size=8)
