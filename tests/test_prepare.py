"""prepare_div2k / `hfmagic prepare-div2k`: BasicSR's sub-image windows, folder and zip sources,
disk and parquet outputs, LR columns, the Hub push, and loading the result with build_sr_dataset."""

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

datasets = pytest.importorskip("datasets")

from hfmagic.cli import main as cli_main  # noqa: E402
from hfmagic.data import imresize  # noqa: E402
from hfmagic.data.prepare import prepare_div2k, subimage_positions  # noqa: E402
from hfmagic.data.sr_dataset import build_sr_dataset  # noqa: E402

# Hand-computed windows (crop 16, step 8, thresh 0), as BasicSR's extract_subimages places them:
# 50 rows: starts 0, 8, 16, 24, 32 (ends at 48, 2 rows left > 0) + 34 aligned to the bottom;
# 40 columns: 0, 8, 16, 24 (ends exactly at 40, nothing added).
TOPS_50, LEFTS_40 = [0, 8, 16, 24, 32, 34], [0, 8, 16, 24]
# 33 rows: 0, 8, 16 (ends at 32, 1 left) + 17; 20 columns: 0 (ends at 16, 4 left) + 4.
TOPS_33, LEFTS_20 = [0, 8, 16, 17], [0, 4]
EXPECTED = [("0001.png", t, l) for t in TOPS_50 for l in LEFTS_40] + [("0002.png", t, l) for t in TOPS_33 for l in LEFTS_20]


def _images():
    rng = np.random.default_rng(0)
    return {
        "0001.png": rng.integers(0, 256, (50, 40, 3), dtype=np.uint8),
        "0002.png": rng.integers(0, 256, (33, 20, 3), dtype=np.uint8),
        "0003.png": rng.integers(0, 256, (10, 30, 3), dtype=np.uint8),  # smaller than the crop: skipped
    }


@pytest.fixture()
def div2k_folder(tmp_path):
    folder = tmp_path / "DIV2K_train_HR"
    folder.mkdir()
    for name, array in _images().items():
        Image.fromarray(array).save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture()
def div2k_zip(tmp_path):
    path = tmp_path / "DIV2K_train_HR.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("DIV2K_train_HR/", "")
        for name, array in _images().items():
            buffer = io.BytesIO()
            Image.fromarray(array).save(buffer, format="PNG")
            archive.writestr(f"DIV2K_train_HR/{name}", buffer.getvalue())
        archive.writestr("__MACOSX/DIV2K_train_HR/._0001.png", b"junk")
    return path


def _check_subimages(dataset):
    images = _images()
    assert list(zip(dataset["source"], dataset["top"], dataset["left"])) == EXPECTED
    decoded = dataset.cast_column("image", datasets.Image(decode=False))
    for row, (name, top, left) in zip(decoded, EXPECTED):
        crop = np.asarray(Image.open(io.BytesIO(row["image"]["bytes"])))
        np.testing.assert_array_equal(crop, images[name][top : top + 16, left : left + 16])


def test_positions_match_basicsr_rule():
    assert subimage_positions(50, 40, 16, 8, 0) == [(t, l) for t in TOPS_50 for l in LEFTS_40]
    assert subimage_positions(50, 40, 16, 8, thresh_size=2) == [(t, l) for t in TOPS_50[:-1] for l in LEFTS_40]
    assert subimage_positions(1356, 2040)[:2] == [(0, 0), (0, 240)]
    # DIV2K 0001 (1356x2040): rows 0..720 + 876, columns 0..1440 + 1560 -> 5 x 8
    assert len(subimage_positions(1356, 2040)) == 5 * 8
    assert subimage_positions(1356, 2040)[-1] == (876, 1560)
    assert subimage_positions(10, 30, 16, 8) == []
    with pytest.raises(ValueError, match="step"):
        subimage_positions(50, 40, 16, 0)


def test_folder_to_disk_and_build_sr_dataset(div2k_folder, tmp_path):
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match="0003.png"):
        dataset = prepare_div2k(div2k_folder, out, crop_size=16, step=8, num_proc=1)
    assert len(dataset) == 24 + 8
    _check_subimages(dataset)
    train = build_sr_dataset(str(out), scale=4, gt_patch_size=8, seed=0)
    assert len(train) == 32
    item = train[5]
    assert item["pixel_values"].shape == (3, 2, 2) and item["labels"].shape == (3, 8, 8)
    with pytest.raises(FileExistsError, match="overwrite"):
        prepare_div2k(div2k_folder, out, crop_size=16, step=8)


def test_zip_two_processes_to_parquet(div2k_zip, tmp_path, capfd, monkeypatch):
    import os

    import datasets

    import hfmagic.data.prepare as prepare_module

    # an in-process `hfmagic` command earlier in the session turns datasets' bars off (off a terminal)
    datasets.enable_progress_bars()

    # record which process cuts which image: the work is split between 2 worker processes
    generate, log = prepare_module._generate_subimages, tmp_path / "pids.txt"

    def recording(names, **kwargs):
        with open(log, "a") as file:
            file.write(f"{os.getpid()} {len(names)}\n")
        yield from generate(names, **kwargs)

    monkeypatch.setattr(prepare_module, "_generate_subimages", recording)
    out = tmp_path / "out-parquet"
    dataset = prepare_div2k(div2k_zip, out, crop_size=16, step=8, num_proc=2, output_format="parquet")
    workers = [line.split() for line in log.read_text().splitlines()]
    assert len({pid for pid, _ in workers} - {str(os.getpid())}) == 2 and sum(int(n) for _, n in workers) == 3
    progress = capfd.readouterr().err  # datasets' progress bar
    assert "Generating train split" in progress and "32 examples" in progress
    _check_subimages(dataset)
    assert sorted(p.name for p in (out / "data").iterdir()) == ["train-00000-of-00001.parquet"]
    assert len(build_sr_dataset(str(out), scale=2, gt_patch_size=16, seed=0)) == 32


def test_lr_columns_are_crops_of_the_whole_image_resize(div2k_folder, tmp_path):
    with pytest.warns(UserWarning, match="0003.png"):
        dataset = prepare_div2k(div2k_folder, tmp_path / "lr", crop_size=16, step=8, scales=[2, 4], num_proc=1)
    assert {"lr_x2", "lr_x4"} <= set(dataset.column_names)
    images = _images()
    for row in dataset.select(range(0, len(dataset), 5)):
        # windows sit on the HR cropped to a multiple of lcm(2, 4) = 4 (0002.png: 32x20)
        hr = images[row["source"]]
        hr = hr[: hr.shape[0] // 4 * 4, : hr.shape[1] // 4 * 4]
        for s in (2, 4):
            full = imresize(hr, 1 / s, round_uint8=True)
            t, l = row["top"] // s, row["left"] // s
            np.testing.assert_array_equal(np.asarray(row[f"lr_x{s}"]), full[t : t + 16 // s, l : l + 16 // s])
    # build_sr_dataset picks the lr_x{scale} column
    item = build_sr_dataset(str(tmp_path / "lr"), scale=4, gt_patch_size=None, augment=False)[0]
    np.testing.assert_array_equal(
        (item["pixel_values"].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), np.asarray(dataset[0]["lr_x4"])
    )
    with pytest.raises(ValueError, match="multiples"):
        prepare_div2k(div2k_folder, tmp_path / "bad", crop_size=16, step=8, scales=[3])


def test_cli_and_push_to_hub(div2k_zip, tmp_path, hub_server, capsys):
    repo_id = hub_server.new_repo_id("div2k-sub")
    out = tmp_path / "cli-out"
    with pytest.warns(UserWarning, match="0003.png"):
        code = cli_main(
            ["prepare-div2k", str(div2k_zip), str(out), "--crop-size", "16", "--step", "8", "--num-proc", "1", "--push-to-hub", repo_id]
        )
    assert code == 0
    assert "Wrote 32 sub-images of 2 images" in capsys.readouterr().out
    assert any(f.endswith(".parquet") for f in hub_server.list_files(repo_id, repo_type="dataset"))
    from_hub = build_sr_dataset(repo_id, scale=4, gt_patch_size=16, augment=False)
    assert len(from_hub) == 32
    assert from_hub[0]["labels"].shape == (3, 16, 16)


def test_two_processes_after_multithreaded_torch_work_in_the_caller(div2k_folder, tmp_path):
    # forked workers used to hang in imresize once the caller had started torch's OpenMP threads
    import torch

    from hfmagic.data import imresize

    imresize(torch.rand(8, 3, 256, 256), 0.25)
    with pytest.warns(UserWarning, match="0003.png"):  # the fixture's one image below crop_size
        dataset = prepare_div2k(div2k_folder, tmp_path / "out", crop_size=16, step=8, num_proc=2, scales=(2,))
        single = prepare_div2k(div2k_folder, tmp_path / "out1", crop_size=16, step=8, num_proc=1, scales=(2,))
    assert len(dataset) == len(single) > 0 and "lr_x2" in dataset.column_names


def test_overwrite_keeps_the_old_output_until_the_new_one_is_complete(div2k_folder, tmp_path, monkeypatch, capsys):
    import hfmagic.data.prepare as prepare_module

    out = tmp_path / "out"
    with pytest.warns(UserWarning, match="0003.png"):
        prepare_div2k(div2k_folder, out, crop_size=16, step=8, num_proc=1)
    before = sorted(p.name for p in out.iterdir())

    def failing(names, **kwargs):
        raise OSError("disk full")
        yield  # a generator, as the real one

    monkeypatch.setattr(prepare_module, "_generate_subimages", failing)
    with pytest.raises(Exception) as failure:  # datasets wraps it in a DatasetGenerationError
        prepare_div2k(div2k_folder, out, crop_size=16, step=8, num_proc=1, overwrite=True)
    assert "disk full" in repr(failure.value) + repr(failure.value.__cause__)
    assert sorted(p.name for p in out.iterdir()) == before  # still the complete old dataset
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".hfmagic-prepare-")]
    monkeypatch.undo()
    assert len(prepare_div2k(div2k_folder, out, crop_size=8, step=8, num_proc=1, overwrite=True)) > 32
    # an empty folder (or a symlink to one, e.g. on a bigger disk) is written in place
    (tmp_path / "big-disk" / "sub").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "big-disk" / "sub")
    with pytest.warns(UserWarning, match="0003.png"):
        assert len(prepare_div2k(div2k_folder, tmp_path / "link", crop_size=16, step=8, num_proc=1)) == 32
    assert (tmp_path / "link").is_symlink() and (tmp_path / "big-disk" / "sub" / "dataset_info.json").is_file()
    # the command line reports user errors in one line with exit code 1
    assert cli_main(["prepare-div2k", str(tmp_path / "missing"), str(tmp_path / "o")]) == 1
    assert cli_main(["prepare-div2k", str(div2k_folder), str(out)]) == 1
    err = capsys.readouterr().err
    assert "hfmagic prepare-div2k: error:" in err and "already exists" in err and "Traceback" not in err


def test_bad_sources(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="No images"):
        prepare_div2k(tmp_path / "empty", tmp_path / "o")
    with pytest.raises(FileNotFoundError):
        prepare_div2k(tmp_path / "missing", tmp_path / "o")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ValueError, match="neither a folder nor a zip"):
        prepare_div2k(tmp_path / "file.txt", tmp_path / "o")


def test_images_all_smaller_than_the_crop_size(div2k_folder, tmp_path, capsys):
    with pytest.warns(UserWarning, match="smaller than crop_size=480"):
        with pytest.raises(ValueError, match="No sub-images: every image in .* is smaller than crop_size=480"):
            prepare_div2k(div2k_folder, tmp_path / "o", crop_size=480, step=240, num_proc=1)
    assert cli_main(["prepare-div2k", str(div2k_folder), str(tmp_path / "o2"), "--crop-size", "480"]) == 1
    assert "No sub-images" in capsys.readouterr().err
