"""Every ```python block of README.md and docs/*.md runs, so the docs cannot rot (the design guides
run in tests/test_docs.py). Each page runs in one namespace (later blocks use earlier ones), in a
temporary working directory holding the files the pages name ("photo.jpg", "path/to/hr_images",
MMagic-style checkpoints, ...), against the test Hub (HF_ENDPOINT set by conftest), never the
network. Sizes are shrunk by the exact text replacements in SHRINK, each of which must still match.

The README's picture (docs/images/before_after.png) is written here too: bicubic x4 next to the
model the README's main job trains, on a crop of the embedded validation photo."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GUIDES = {"design_your_own_model.md"}  # run by tests/test_docs.py, with their own checks
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
PICTURE = DOCS / "images" / "before_after.png"

# page -> [(text in a block, what the test runs instead)]: the same code at toy sizes.
SHRINK = {
    "data.md": [("num_workers=8", "num_workers=0"), ("batch_size=16", "batch_size=2")],
    "training_sr.md": [
        ('max_train_steps=50_000, use_ema=True, report_to="tensorboard"',
         'max_train_steps=2, use_ema=True, report_to="tensorboard", train_batch_size=2, validation_steps=2, checkpointing_steps=2'),
        ("gt_patch_size=128)   # no seed", "gt_patch_size=32)   # no seed"),
        ("batch_size=16, seed=0, num_batches=1000", "batch_size=2, seed=0, num_batches=1"),
    ],
    "training_esrgan.md": [
        ("RRDBNetConfig(upscale_factor=4)", "RRDBNetConfig(upscale_factor=4, mid_channels=8, num_blocks=1, growth_channels=4)"),
        ("ModifiedVGGConfig()", "ModifiedVGGConfig(mid_channels=4)"),
        ("max_train_steps=400_000)", "max_train_steps=2, train_batch_size=2, checkpointing_steps=0, validation_steps=0, report_to=None, dataloader_num_workers=0)"),
    ],
    "training_gan.md": [
        ("DCGANConfig(image_size=64)", "DCGANConfig(image_size=64, generator_base_channels=32, discriminator_base_channels=8)"),
        ("max_train_steps=10_000, checkpointing_steps=1000,", "max_train_steps=2, checkpointing_steps=2, train_batch_size=4, num_sample_images=4,"),
    ],
}


def doc_pages() -> list[Path]:
    pages = [ROOT / "README.md"] + sorted(p for p in DOCS.glob("*.md") if p.name not in GUIDES)
    return [p for p in pages if _BLOCK.search(p.read_text(encoding="utf-8"))]


def blocks_to_run(page: Path) -> list[str]:
    blocks = _BLOCK.findall(page.read_text(encoding="utf-8"))
    for old, new in SHRINK.get(page.name, []):
        hits = [i for i, b in enumerate(blocks) if old in b]
        assert hits, f"{page.name}: SHRINK text {old!r} is no longer in any block; update SHRINK"
        blocks = [b.replace(old, new) for b in blocks]
    return blocks


def _tiny_msrresnet(seed: int = 0):
    from hfmagic import MSRResNet, MSRResNetConfig

    torch.manual_seed(seed)
    return MSRResNet(MSRResNetConfig(upscale_factor=4, mid_channels=16, num_blocks=2)).eval()


def _tiny_gan(seed: int = 0):
    from hfmagic import DCGANConfig, DCGANDiscriminator, DCGANGenerator

    torch.manual_seed(seed)
    config = DCGANConfig(image_size=32, noise_size=8, generator_base_channels=16, discriminator_base_channels=4)
    return DCGANGenerator(config).eval(), DCGANDiscriminator(config).eval()


def _tarball(path: Path, folder: str, images: dict) -> None:
    import io
    import tarfile

    with tarfile.open(path, "w:gz") as tar:
        for name, array in images.items():
            data = io.BytesIO()
            Image.fromarray(array).save(data, format="PNG")
            info = tarfile.TarInfo(f"{folder}/{name}.png")
            info.size = data.tell()
            data.seek(0)
            tar.addfile(info, data)


@pytest.fixture(scope="module")
def hub_files(hub_server, tmp_path_factory, tiny_vgg19_on_hub):
    """What the pages download, on the test Hub: a tiny Set5 (eugenesiow/Set5's layout) made from
    the embedded photo, a tiny DCGAN as me/dcgan-bedroom, and a tiny VGG19 as timm/vgg19.tv_in1k."""
    from huggingface_hub import HfApi

    from hfmagic.data import imresize
    from hfmagic.data.embedded import embedded_image
    from hfmagic.hub import push_gan_to_hub

    folder = tmp_path_factory.mktemp("set5")
    hr = np.asarray(Image.open(embedded_image("astronaut")).convert("RGB"))[:96, :96]
    _tarball(folder / "Set5_HR.tar.gz", "Set5_HR", {"baby": hr})
    _tarball(folder / "Set5_LR_x4.tar.gz", "Set5_LR_x4", {"baby": imresize(hr, 1 / 4, round_uint8=True)})
    api = HfApi()
    api.create_repo("eugenesiow/Set5", repo_type="dataset", exist_ok=True)
    for name in ("Set5_HR.tar.gz", "Set5_LR_x4.tar.gz"):
        api.upload_file(path_or_fileobj=str(folder / name), path_in_repo=f"data/{name}", repo_id="eugenesiow/Set5", repo_type="dataset")
    push_gan_to_hub(*_tiny_gan(), "me/dcgan-bedroom")
    return hub_server


def _sandbox(root: Path) -> None:
    """The files the pages name, at toy sizes."""
    from hfmagic.data.embedded import embedded_image, embedded_sr_train_dir

    photo = Image.open(embedded_image("astronaut")).convert("RGB")
    photo.resize((48, 40)).save(root / "photo.jpg")
    photo.resize((40, 32)).save(root / "b.png")
    photo.save(root / "0801.png")
    for folder in ("path/to/DIV2K_sub", "path/to/hr_images", "path/to/images", "div2k_sub", "photos"):
        shutil.copytree(embedded_sr_train_dir(), root / folder)
    _tiny_msrresnet().save_pretrained(root / "msrresnet-x4")
    # MMagic checkpoints (prefixed keys under state_dict), as the model zoo's .pth files are laid out
    state = {f"generator.{k}": v for k, v in _tiny_msrresnet(1).state_dict().items()}
    torch.save({"meta": {"mmagic_version": "1.2.0"}, "state_dict": state}, root / "msrresnet_x4c64b16_div2k.pth")
    generator, discriminator = _tiny_gan(2)
    state = {f"generator.{k}": v for k, v in generator.state_dict().items()}
    state.update({f"discriminator.{k}": v for k, v in discriminator.state_dict().items()})
    torch.save({"meta": {"mmagic_version": "1.2.0"}, "state_dict": state}, root / "dcgan.pth")
    # Real-ESRGAN's compact files ({"params": ...}): realesr-general-x4v3 and its -wdn twin
    from hfmagic import SRVGGNetCompact, SRVGGNetCompactConfig

    for seed, name in ((4, "realesr-general-x4v3.pth"), (5, "realesr-general-wdn-x4v3.pth")):
        torch.manual_seed(seed)
        compact = SRVGGNetCompact(SRVGGNetCompactConfig(mid_channels=4, num_convs=2))
        torch.save({"params": compact.state_dict()}, root / name)


def run_blocks(page: Path, blocks: list[str]) -> dict:
    namespace = {"__name__": "__main__"}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"{page.name}[block {i}]", "exec"), namespace)
        except Exception as err:  # name the block that broke
            raise AssertionError(f"{page.name} python block {i} failed:\n{block}") from err
    return namespace


def test_every_page_with_python_blocks_is_covered():
    names = [p.name for p in doc_pages()]
    assert "README.md" in names and {"inference.md", "conversion.md", "hub.md", "training_sr.md"} <= set(names)
    assert set(SHRINK) <= set(names)


@pytest.mark.parametrize("page", doc_pages(), ids=lambda p: p.name)
def test_docs_page_blocks_run(page, tmp_path, monkeypatch, hub_files):
    _sandbox(tmp_path)
    _tiny_msrresnet(3).save_pretrained(tmp_path / "runs" / "quick-x4" / "final")  # stands in for the main job's model
    monkeypatch.chdir(tmp_path)
    namespace = run_blocks(page, blocks_to_run(page))
    if page.name == "README.md":
        assert namespace["big"].size == (1024, 1024) and namespace["out"].reconstruction.shape == (1, 3, 128, 128)
    if page.name == "inference.md":
        assert namespace["big"].size == (4 * 48, 4 * 40) and [b.size for b in namespace["bigs"]] == [(192, 160), (256, 192), (160, 128)]
        assert len(namespace["images"]) == 16
    if page.name == "conversion.md":
        assert torch.equal(namespace["model"].conv_first.weight, _tiny_msrresnet(1).conv_first.weight)
        general, wdn = (torch.load(name, weights_only=True)["params"] for name in ("realesr-general-x4v3.pth", "realesr-general-wdn-x4v3.pth"))
        torch.testing.assert_close(namespace["compact"].body[0].weight, 0.5 * general["body.0.weight"] + 0.5 * wdn["body.0.weight"])


def _picture(model_dir: Path, out: Path) -> tuple[float, float]:
    """MATLAB-bicubic x4 | model x4 of a 32x32 LR crop of the embedded photo (MATLAB-bicubic LR of its HR
    crop), side by side, upscaled 2x with nearest so pixels show; returns (bicubic, model) PSNR."""
    from hfmagic import SuperResolutionPipeline
    from hfmagic.data import imresize
    from hfmagic.data.embedded import embedded_image
    from hfmagic.metrics import psnr

    hr = np.asarray(Image.open(embedded_image("astronaut")).convert("RGB"))[16:144, 72:200]  # the face
    lr = imresize(hr, 1 / 4, round_uint8=True)
    bicubic = imresize(lr, 4, round_uint8=True)  # MATLAB bicubic, the baseline hfmagic evaluate scores
    model = np.asarray(SuperResolutionPipeline.from_pretrained(model_dir, device="cpu", dtype="float32")(lr))
    gap = np.full((hr.shape[0], 4, 3), 255, np.uint8)
    side = np.concatenate([bicubic, gap, model], axis=1)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(side).resize((side.shape[1] * 2, side.shape[0] * 2), Image.NEAREST).save(out, optimize=True)
    return psnr(hr, bicubic, crop_border=4), psnr(hr, model, crop_border=4)


@pytest.mark.slow
def test_readme_picture_is_written_from_the_main_jobs_model(tmp_path, monkeypatch, hub_files):
    """The README's main job (its training command, as written: 150 steps), the README's blocks on
    its model, then the before/after picture from that model."""
    import shlex

    from test_train_sr import _readme_main_job

    train = next(c for c in _readme_main_job() if c.startswith("python examples/train_sr.py"))
    words = [w.replace("runs/quick-x4", str(tmp_path / "runs" / "quick-x4")) for w in shlex.split(train)]
    run = subprocess.run([sys.executable, *words[1:]], cwd=ROOT, capture_output=True, text=True, timeout=600,
                         env={**__import__("os").environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"})
    assert run.returncode == 0, run.stderr[-3000:]

    _sandbox(tmp_path)
    monkeypatch.chdir(tmp_path)
    readme = ROOT / "README.md"
    namespace = run_blocks(readme, blocks_to_run(readme))
    assert namespace["big"].size == (1024, 1024)
    assert namespace["out"].reconstruction.shape == (1, 3, 128, 128)

    bicubic_db, model_db = _picture(tmp_path / "runs" / "quick-x4" / "final", PICTURE)
    assert model_db > bicubic_db, (model_db, bicubic_db)  # the picture shows a gain, as the README says
    with Image.open(PICTURE) as image:
        assert image.size == (2 * (128 + 4 + 128), 2 * 128)


def test_cli_reference_names_every_flag_of_every_parser():
    """docs/cli.md (written by docs/gen_cli.py) lists, per command, exactly the parsers' flags:
    a flag added, renamed or removed without regenerating the page fails here."""
    sys.path.insert(0, str(DOCS))
    try:
        import gen_cli
    finally:
        sys.path.remove(str(DOCS))
    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    sections = dict(re.findall(r"^## `([^`]+)`\n(.*?)(?=^## |\Z)", page, re.S | re.M))
    parsers = gen_cli.parsers()
    assert set(sections) == set(parsers), "run python docs/gen_cli.py"
    for name, parser in parsers.items():
        documented = set()
        for entry in re.findall(r"^- (.*?): ", sections[name], re.M):
            documented |= {w.split(" ")[0] for w in re.findall(r"`([^`]+)`", entry)}
        assert documented == gen_cli.option_strings(parser), f"{name}: run python docs/gen_cli.py"


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_between_the_pages_resolve():
    """Every relative link of README.md and docs/ points at an existing file (and heading)."""
    pages = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
    for page in pages:
        text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+://", target):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            assert file.exists(), f"{page.name}: broken link {target}"
            if anchor and file.suffix == ".md":
                headings = re.findall(r"^#+ (.*)$", file.read_text(encoding="utf-8"), re.M)
                assert anchor in {_anchor(h) for h in headings}, f"{page.name}: no heading for {target}"
