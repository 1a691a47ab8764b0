"""load_eval_set: eugenesiow-style tarballs (local folder and through the test Hub), the DIV2K
validation layout, plain HR folders (LR by MATLAB bicubic), pairing by name and size errors."""

import io
import tarfile

import numpy as np
import pytest
from PIL import Image

from hfmagic.data import imresize
from hfmagic.data.eval_sets import EvalPair, load_eval_set


def _noise(h, w, seed):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


# name -> (HR, LR x4). "head" has 2 extra HR rows/columns, which are cropped (modcrop), as in Set14.
HR = {"baby": _noise(24, 20, 0), "bird": _noise(16, 28, 1), "head": _noise(22, 18, 2)}
LR = {"baby": _noise(6, 5, 10), "bird": _noise(4, 7, 11), "head": _noise(5, 4, 12)}


def _tarball(path, folder, images):
    with tarfile.open(path, "w:gz") as archive:
        for name, array in images.items():
            data = _png(array)
            info = tarfile.TarInfo(f"{folder}/{name}.png")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def _check_set5(pairs):
    assert len(pairs) == 3 and [p.name for p in pairs] == ["baby", "bird", "head"]
    for pair in pairs:
        assert isinstance(pair, EvalPair) and pair.lr.dtype == np.uint8 and pair.hr.dtype == np.uint8
        np.testing.assert_array_equal(pair.lr, LR[pair.name])
        h, w = LR[pair.name].shape[:2]
        np.testing.assert_array_equal(pair.hr, HR[pair.name][: 4 * h, : 4 * w])
    name, lr, hr = pairs[2]  # tuple unpacking works
    assert name == "head" and hr.shape == (20, 16, 3)


@pytest.fixture()
def set5_tarballs(tmp_path):
    folder = tmp_path / "set5-tars"
    folder.mkdir()
    _tarball(folder / "Set5_HR.tar.gz", "Set5_HR", HR)
    _tarball(folder / "Set5_LR_x4.tar.gz", "Set5_LR_x4", LR)
    return folder


def test_tarballs_in_a_local_folder(set5_tarballs):
    _check_set5(load_eval_set(set5_tarballs, 4))
    with pytest.raises(FileNotFoundError, match="Set5_LR_x2"):
        load_eval_set(set5_tarballs, 2)


def test_benchmark_name_downloads_from_the_hub(set5_tarballs, hub_server, tmp_path):
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo("eugenesiow/Set5", repo_type="dataset", exist_ok=True)
    for name in ("Set5_HR.tar.gz", "Set5_LR_x4.tar.gz"):
        api.upload_file(path_or_fileobj=str(set5_tarballs / name), path_in_repo=f"data/{name}", repo_id="eugenesiow/Set5", repo_type="dataset")
    pairs = load_eval_set("set5", 4, cache_dir=tmp_path / "cache")
    _check_set5(pairs)
    assert list((tmp_path / "cache").glob("datasets--eugenesiow--Set5/snapshots/*/data/Set5_HR.tar.gz"))
    with pytest.raises(OSError, match="Set5_LR_x3.*pass the folder holding them"):
        load_eval_set("Set5", 3, cache_dir=tmp_path / "cache")


def test_div2k_validation_layout(tmp_path):
    root = tmp_path / "DIV2K"
    (root / "DIV2K_valid_HR").mkdir(parents=True)
    (root / "DIV2K_valid_LR_bicubic" / "X2").mkdir(parents=True)
    hr = {"0801": _noise(20, 18, 3), "0802": _noise(15, 16, 4)}
    lr = {"0801": _noise(10, 9, 5), "0802": _noise(7, 8, 6)}
    for name in hr:
        Image.fromarray(hr[name]).save(root / "DIV2K_valid_HR" / f"{name}.png")
        Image.fromarray(lr[name]).save(root / "DIV2K_valid_LR_bicubic" / "X2" / f"{name}x2.png")
    # the training set's LR folder beside it is not mistaken for the validation one
    (root / "DIV2K_train_LR_bicubic" / "X2").mkdir(parents=True)
    Image.fromarray(lr["0801"]).save(root / "DIV2K_train_LR_bicubic" / "X2" / "0001x2.png")
    for source in (root, root / "DIV2K_valid_HR"):
        pairs = load_eval_set(source, 2)
        assert [p.name for p in pairs] == ["0801", "0802"]
        for pair in pairs:
            np.testing.assert_array_equal(pair.lr, lr[pair.name])
            np.testing.assert_array_equal(pair.hr, hr[pair.name][: 2 * pair.lr.shape[0], : 2 * pair.lr.shape[1]])
    # No X3 folder: LR is made by MATLAB bicubic from the HR cropped to a multiple of 3
    pairs = load_eval_set(root, 3)
    np.testing.assert_array_equal(pairs[1].hr, hr["0802"][:15, :15])
    np.testing.assert_array_equal(pairs[1].lr, imresize(hr["0802"][:15, :15], 1 / 3, round_uint8=True))


def test_plain_hr_folder(tmp_path):
    for name, array in HR.items():
        Image.fromarray(array).save(tmp_path / f"{name}.png")
    Image.fromarray(HR["baby"][..., 0]).save(tmp_path / "gray.png")  # grayscale becomes RGB
    pairs = load_eval_set(tmp_path, 4)
    assert pairs.names == ["baby", "bird", "gray", "head"]
    gray = pairs[2]
    assert gray.hr.shape == (24, 20, 3) and gray.lr.shape == (6, 5, 3)
    head = pairs[3]
    np.testing.assert_array_equal(head.hr, HR["head"][:20, :16])
    np.testing.assert_array_equal(head.lr, imresize(HR["head"][:20, :16], 0.25, round_uint8=True))


def test_pairing_and_size_errors(tmp_path):
    hr_dir, lr_dir = tmp_path / "Set5_HR", tmp_path / "Set5_LR_x4"
    hr_dir.mkdir()
    lr_dir.mkdir()
    for name in HR:
        Image.fromarray(HR[name]).save(hr_dir / f"{name}.png")
    for name in ("baby", "bird"):
        Image.fromarray(LR[name]).save(lr_dir / f"{name}.png")
    with pytest.raises(ValueError, match=r"HR without LR: \['head'\]"):
        load_eval_set(tmp_path, 4)
    Image.fromarray(_noise(3, 3, 9)).save(lr_dir / "head.png")  # head HR is 22x18: not x4 of 3x3
    with pytest.raises(ValueError, match=r"'head' has HR 22x18 and LR 3x3"):
        load_eval_set(tmp_path, 4)
    with pytest.raises(FileNotFoundError, match="neither a folder nor a known benchmark"):
        load_eval_set("Set7", 4)
    (lr_dir / "head.png").write_bytes(b"broken")
    with pytest.raises(ValueError, match=r"head\.png' cannot be read .*Fix or remove it"):
        load_eval_set(tmp_path, 4)
