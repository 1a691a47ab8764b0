"""GAN image data (hfmagic.data.gan_dataset): sources, preprocessing, grayscale, streaming, corrupt images."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from hfmagic.data import build_gan_dataset, collate_gan_batch, preprocess_gan_image


def _write_images(folder, count=6, size=(20, 12), mode="RGB"):
    """Images whose colour encodes their number, so order and content can be checked."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = []
    for i in range(count):
        shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
        array = rng.integers(0, 256, shape, dtype=np.uint8)
        Image.fromarray(array, mode=mode).save(folder / f"{i:03d}.png")
        arrays.append(array)
    return arrays


def test_preprocess_resizes_shorter_side_bilinear_and_center_crops():
    array = np.random.default_rng(1).integers(0, 256, (12, 20, 3), dtype=np.uint8)  # H=12, W=20
    out = preprocess_gan_image(Image.fromarray(array), resolution=8)
    assert out.shape == (3, 8, 8) and out.dtype == torch.float32
    assert out.min() >= -1 and out.max() <= 1
    # reference: shorter side 12 -> 8, so 20 -> 13 (rounded); bilinear without antialiasing; crop centre
    x = torch.from_numpy(array).permute(2, 0, 1).float()[None]
    resized = F.interpolate(x, size=(8, 13), mode="bilinear", align_corners=False).round()[0]
    expected = resized[:, :, 2:10] / 127.5 - 1
    assert torch.allclose(out, expected)
    # already the right size: values exactly x / 127.5 - 1
    small = np.full((8, 8, 3), 255, dtype=np.uint8)
    small[0, 0] = 0
    y = preprocess_gan_image(small, resolution=8)
    assert y[0, 0, 0] == -1 and y[0, 1, 1] == 1
    with pytest.raises(ValueError, match="num_channels"):
        preprocess_gan_image(small, num_channels=2)


def test_16bit_images_keep_their_precision(tmp_path):
    from hfmagic.data import save_image

    yy, xx = np.mgrid[0:12, 0:20]
    deep = np.stack([(yy * 2311 + xx * 977 + k * 5003) * 13 % 65536 for k in range(3)], axis=2).astype(np.uint16)
    save_image(deep, tmp_path / "deep.png")
    out = preprocess_gan_image(str(tmp_path / "deep.png"), resolution=8)
    x = torch.from_numpy(deep.astype(np.float32)).permute(2, 0, 1)[None]
    resized = F.interpolate(x, size=(8, 13), mode="bilinear", align_corners=False).round()[0]
    torch.testing.assert_close(out, resized[:, :, 2:10] / 32767.5 - 1, rtol=0, atol=1e-6)
    levels = (out + 1) * 32767.5
    assert (levels.round() % 257 != 0).float().mean() > 0.9  # 16-bit levels, not 8-bit ones
    assert torch.equal(preprocess_gan_image(deep, resolution=8), out)  # uint16 arrays too
    gray = preprocess_gan_image(deep, resolution=8, num_channels=1)
    r, g, b = (deep[..., k].astype(np.int64) for k in range(3))
    luma = ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.float32)  # PIL's "L" formula, in 16 bits
    resized = F.interpolate(torch.from_numpy(luma)[None, None], size=(8, 13), mode="bilinear", align_corners=False).round()[0]
    torch.testing.assert_close(gray, resized[:, :, 2:10] / 32767.5 - 1, rtol=0, atol=1e-6)


def test_imagefolder_drops_labels_and_gives_minus_one_to_one(tmp_path):
    _write_images(tmp_path / "cats", 3)
    _write_images(tmp_path / "dogs", 3)
    dataset = build_gan_dataset(str(tmp_path), resolution=8)
    assert len(dataset) == 6
    item = dataset[0]
    assert set(item) == {"pixel_values"} and item["pixel_values"].shape == (3, 8, 8)
    batch = collate_gan_batch([dataset[i] for i in range(4)])
    assert batch["pixel_values"].shape == (4, 3, 8, 8) and batch["num_skipped"].sum() == 0


def test_parquet_save_to_disk_and_dataset_objects_agree(tmp_path):
    import datasets

    arrays = _write_images(tmp_path / "imgs", 4)
    ds = datasets.Dataset.from_dict({"img": [str(tmp_path / "imgs" / f"{i:03d}.png") for i in range(4)]})
    ds = ds.cast_column("img", datasets.Image())
    ds.to_parquet(str(tmp_path / "data.parquet"))
    ds.save_to_disk(str(tmp_path / "saved"))
    expected = preprocess_gan_image(arrays[2], resolution=8)
    for source in (ds, str(tmp_path / "data.parquet"), str(tmp_path / "saved")):
        dataset = build_gan_dataset(source, resolution=8, image_column="img")
        assert len(dataset) == 4
        assert torch.equal(dataset[2]["pixel_values"], expected)
    with pytest.raises(ValueError, match="no column 'image'.*image_column"):
        build_gan_dataset(ds, resolution=8)
    with pytest.raises(ValueError, match="no split 'test'"):
        build_gan_dataset(datasets.DatasetDict({"train": ds}), image_column="img", split="test")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_gan_dataset(str(tmp_path / "missing"))


def test_grayscale_dataset(tmp_path):
    arrays = _write_images(tmp_path / "gray", 2, size=(8, 8), mode="L")
    dataset = build_gan_dataset(str(tmp_path / "gray"), resolution=8, num_channels=1)
    out = dataset[0]["pixel_values"]
    assert out.shape == (1, 8, 8)
    values = sorted({tuple(a.ravel()) for a in arrays})
    assert tuple(((out[0] + 1) * 127.5).round().to(torch.uint8).numpy().ravel()) in values


def test_streaming_matches_map_style(tmp_path):
    _write_images(tmp_path / "imgs", 5)
    mapped = build_gan_dataset(str(tmp_path / "imgs"), resolution=8)
    streamed = build_gan_dataset(str(tmp_path / "imgs"), resolution=8, streaming=True)
    assert isinstance(streamed, torch.utils.data.IterableDataset)
    items = list(streamed)
    assert len(items) == 5
    for i, item in enumerate(items):
        assert torch.equal(item["pixel_values"], mapped[i]["pixel_values"])
    loader = torch.utils.data.DataLoader(streamed, batch_size=2, collate_fn=collate_gan_batch, drop_last=True)
    assert [b["pixel_values"].shape[0] for b in loader] == [2, 2]


def test_corrupt_image_error_names_row_or_is_skipped_and_counted(tmp_path):
    import datasets

    _write_images(tmp_path / "imgs", 3)
    (tmp_path / "imgs" / "001.png").write_bytes(b"not a png at all")
    ds = datasets.Dataset.from_dict({"image": [str(tmp_path / "imgs" / f"{i:03d}.png") for i in range(3)]})
    ds = ds.cast_column("image", datasets.Image())
    strict = build_gan_dataset(ds, resolution=8)
    assert strict[0]["pixel_values"].shape == (3, 8, 8)
    with pytest.raises(ValueError, match=r"row 1 .*001\.png.*skip_corrupt"):
        strict[1]
    lenient = build_gan_dataset(ds, resolution=8, skip_corrupt=True)
    with pytest.warns(UserWarning, match=r"row 1 .*skipped \(1 skipped"):
        items = [lenient[i] for i in range(3)]
    assert items[1] is None and lenient.num_skipped == 1
    batch = collate_gan_batch(items)
    assert batch["pixel_values"].shape == (2, 3, 8, 8) and batch["num_skipped"].tolist() == [1, 0]
    with pytest.raises(ValueError, match="All 1 images"):
        collate_gan_batch([None])
    streamed = build_gan_dataset(ds, resolution=8, streaming=True, skip_corrupt=True)
    with pytest.warns(UserWarning, match="row 1"):
        assert [item is None for item in streamed] == [False, True, False]


def test_hub_dataset_id_map_style_and_streaming(tmp_path, hub_server):
    """A Hub id (pushed to the test Hub as parquet, like pcuenq/lsun-bedrooms) loads as map-style and as a stream."""
    import datasets

    _write_images(tmp_path / "imgs", 4)
    local = build_gan_dataset(str(tmp_path / "imgs"), resolution=8)
    repo_id = hub_server.new_repo_id("lsun-like")
    files = [str(tmp_path / "imgs" / f"{i:03d}.png") for i in range(4)]
    datasets.Dataset.from_dict({"image": files}).cast_column("image", datasets.Image()).push_to_hub(repo_id)
    from_hub = build_gan_dataset(repo_id, resolution=8)
    assert len(from_hub) == 4 and torch.equal(from_hub[2]["pixel_values"], local[2]["pixel_values"])
    streamed = list(build_gan_dataset(repo_id, resolution=8, streaming=True))
    assert [torch.equal(a["pixel_values"], local[i]["pixel_values"]) for i, a in enumerate(streamed)] == [True] * 4
