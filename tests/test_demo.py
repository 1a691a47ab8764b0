"""The demo (hfmagic/demo.py, ``hfmagic demo``): its handlers called directly, then the page itself
driven in a real browser (Playwright + Debian's Chromium, headless) against the app served on
127.0.0.1, with a tiny MSRResNet and a tiny DCGAN generator saved in a temporary folder.

The browser test needs ``/usr/bin/chromium`` (``apt-get install -y chromium``; Playwright cannot
download its own browsers here). Without it the test fails with that command, unless
``HFMAGIC_ALLOW_NO_BROWSER=1`` is set, which skips it (never set in CI: ``.ci/run`` installs
Chromium). Its screenshot is kept in the test's tmp folder and, when the page looks different from
the stored one, written to docs/images/demo.png (the README shows it)."""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hfmagic import DCGANConfig, DCGANGenerator, MSRResNet, MSRResNetConfig
from hfmagic.data import read_image, save_image
from hfmagic.data.embedded import embedded_image
from hfmagic.demo import DemoError, PipelineCache, build_demo, require_gradio, sample_grid, upscale_image

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOT = ROOT / "docs" / "images" / "demo.png"
CHROMIUM_HELP = (
    "The browser test drives Debian's Chromium: install it with `apt-get install -y chromium` (sudo when not "
    "root; .ci/run does it), or set HFMAGIC_ALLOW_NO_BROWSER=1 to skip this test on a machine without it."
)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    """A tiny x4 MSRResNet (8 channels, 1 block) and a tiny DCGAN generator (16x16 images), saved."""
    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    MSRResNet(MSRResNetConfig(upscale_factor=4, mid_channels=8, num_blocks=1)).save_pretrained(folder / "msrresnet-x4-tiny")
    config = DCGANConfig(image_size=16, noise_size=8, generator_base_channels=32, discriminator_base_channels=8)
    DCGANGenerator(config).save_pretrained(folder / "dcgan-tiny")
    return {"sr": folder / "msrresnet-x4-tiny", "gan": folder / "dcgan-tiny"}


@pytest.fixture(scope="module")
def photo(tmp_path_factory) -> Path:
    """The astronaut's face (the embedded photo's 128x128 crop, shrunk to 64x64), as a PNG file."""
    path = tmp_path_factory.mktemp("photo") / "astronaut-face.png"
    Image.open(embedded_image("astronaut")).convert("RGB").crop((72, 16, 200, 144)).resize((64, 64), Image.BICUBIC).save(path)
    return path


@pytest.fixture(scope="module")
def cache() -> PipelineCache:
    return PipelineCache(device="cpu", dtype="float32")


# --- the handlers --------------------------------------------------------------------------------


def test_upscale_image_gives_the_slider_pair_the_png_and_the_time(cache, models, photo, tmp_path):
    from hfmagic import SuperResolutionPipeline

    result = upscale_image(cache, str(models["sr"]), photo, output_dir=tmp_path)
    expected = SuperResolutionPipeline.from_pretrained(models["sr"], device="cpu", dtype="float32")(Image.open(photo))
    assert result.size == (256, 256) and result.after.size == result.before.size == (256, 256)
    np.testing.assert_array_equal(np.asarray(result.after), np.asarray(expected))
    # "before" is the input, PIL-bicubic upscaled to the output's size
    np.testing.assert_array_equal(np.asarray(result.before), np.asarray(Image.open(photo).resize((256, 256), Image.BICUBIC)))
    assert result.path.parent.parent == tmp_path and result.path.name == "astronaut-face_x4.png"
    np.testing.assert_array_equal(np.asarray(Image.open(result.path)), np.asarray(expected))
    assert result.seconds > 0
    assert "**256 x 256** output from 64 x 64, RGB, 8-bit input" in result.summary()


@pytest.mark.parametrize(
    "array, mode, bits",
    [
        (np.random.default_rng(0).integers(0, 65536, (12, 10, 3), dtype=np.uint16), "RGB", 16),
        (np.random.default_rng(1).integers(0, 65536, (12, 10), dtype=np.uint16), "L", 16),
        (np.random.default_rng(2).integers(0, 256, (12, 10), dtype=np.uint8), "L", 8),
        (np.random.default_rng(3).integers(0, 256, (12, 10, 4), dtype=np.uint8), "RGBA", 8),
    ],
    ids=["rgb16", "gray16", "gray8", "rgba8"],
)
def test_upscale_image_keeps_bit_depth_and_channels(cache, models, tmp_path, array, mode, bits):
    source = tmp_path / "in.png"
    save_image(array, source)
    result = upscale_image(cache, str(models["sr"]), source, output_dir=tmp_path)
    assert result.size == (40, 48)
    assert result.after.mode == result.before.mode == mode and result.after.size == (40, 48)
    written = read_image(result.path)  # the download keeps 16 bits
    planes = np.asarray(written)
    assert planes.dtype == (np.uint16 if bits == 16 else np.uint8), planes.dtype
    if bits == 16:
        np.testing.assert_array_equal(planes.reshape(result.output.shape), result.output)
        shown = np.asarray(result.after).reshape(result.output.shape)
        np.testing.assert_array_equal(shown, np.round(result.output / 257.0).astype(np.uint8))


def test_tiles_report_progress(cache, models, photo, tmp_path):
    calls = []
    result = upscale_image(cache, str(models["sr"]), photo, tile_size=32, output_dir=tmp_path, progress=lambda *a: calls.append(a))
    assert result.size == (256, 256) and "tiles of 32 px" in result.summary()
    total = calls[-1][1]
    assert total >= 4 and calls[0][0] == 0 and calls[-1][0] == total  # 0/N ... N/N
    assert [done for done, _, _ in calls] == sorted(done for done, _, _ in calls)


def test_the_same_seed_gives_the_same_grid(cache, models):
    first = sample_grid(cache, str(models["gan"]), seed=3, num_images=4)
    assert first.size == (2 + 2 * 18, 2 + 2 * 18)  # 2 x 2 images of 16 px, 2 px of padding
    assert np.array_equal(np.asarray(first), np.asarray(sample_grid(cache, str(models["gan"]), seed=3, num_images=4)))
    assert not np.array_equal(np.asarray(first), np.asarray(sample_grid(cache, str(models["gan"]), seed=4, num_images=4)))


def test_old_outputs_are_pruned(cache, models, photo, tmp_path):
    import time

    old = upscale_image(cache, str(models["sr"]), photo, output_dir=tmp_path).path
    new = upscale_image(cache, str(models["sr"]), photo, output_dir=tmp_path).path
    hour_ago = time.time() - 3700
    os.utime(old.parent, (hour_ago, hour_ago))
    from hfmagic.demo import prune_outputs

    prune_outputs(tmp_path)
    assert not old.parent.exists() and new.is_file()


def test_pipelines_are_loaded_once(cache, models):
    assert cache.super_resolution(str(models["sr"])) is cache.super_resolution(f" {models['sr']} ")
    small = PipelineCache(device="cpu", max_size=1)
    first = small.super_resolution(str(models["sr"]))
    small.gan(str(models["gan"]))  # pushes the SR pipeline out
    assert small.super_resolution(str(models["sr"])) is not first


def test_mistakes_are_messages(cache, models, photo, tmp_path, hub_server):
    not_image = tmp_path / "notes.png"
    not_image.write_text("not a picture")
    cases = [
        (lambda: upscale_image(cache, str(models["sr"]), not_image), "notes.png is not an image file"),
        (lambda: upscale_image(cache, str(models["sr"]), None), "Upload an image first"),
        (lambda: upscale_image(cache, str(models["gan"]), photo), "is a GAN (DCGANGenerator), not a super-resolution model"),
        (lambda: upscale_image(cache, "nobody/no-such-model", photo), "Cannot load nobody/no-such-model as a super-resolution model"),
        (lambda: upscale_image(cache, "", photo), "Choose a model"),
        (lambda: upscale_image(cache, str(models["sr"]), photo, tile_size=2.5), "Tile size must be a whole number"),
        (lambda: upscale_image(cache, str(models["sr"]), photo, max_input_pixels=100), "more than this demo takes"),
        (lambda: sample_grid(cache, str(models["sr"]), 0, 4), "needs a GAN generator"),
        (lambda: sample_grid(cache, str(models["gan"]), 0, 0), "Number of images must be"),
        (lambda: sample_grid(cache, str(models["gan"]), -1, 4), "Seed must be"),
    ]
    for call, message in cases:
        with pytest.raises(DemoError) as err:
            call()
        assert message in str(err.value), str(err.value)
        assert "Traceback" not in str(err.value)


def test_missing_gradio_names_the_extra(monkeypatch, capsys):
    from hfmagic.cli import main

    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio -> ImportError
    with pytest.raises(ImportError, match=r'pip install "hfmagic\[demo\]"'):
        require_gradio()
    assert main(["demo"]) == 1
    assert 'pip install "hfmagic[demo]"' in capsys.readouterr().err


def test_cli_launches_the_app_with_the_flags(monkeypatch, models):
    import gradio as gr

    from hfmagic.cli import main

    launched = {}
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kwargs: launched.update(kwargs, blocks=self))
    argv = ["demo", "--model", str(models["sr"]), "--gan-model", str(models["gan"]), "--port", "7861", "--host", "0.0.0.0"]
    assert main([*argv, "--device", "cpu"]) == 0
    assert (launched["server_name"], launched["server_port"], launched["share"]) == ("0.0.0.0", 7861, False)
    assert isinstance(launched["blocks"], gr.Blocks)
    assert main(["demo", "--port", "70000"]) == 1


def test_build_demo_has_both_tabs(models):
    import gradio as gr

    demo = build_demo(models=[str(models["sr"])], gan_models=[str(models["gan"])], device="cpu", examples=False)
    assert isinstance(demo, gr.Blocks)
    ids = {block.elem_id for block in demo.blocks.values()}
    assert {"sr-model", "sr-upload", "sr-slider", "sr-download", "sr-status", "gan-model", "gan-grid", "gan-run"} <= ids
    dropdown = next(b for b in demo.blocks.values() if b.elem_id == "sr-model")
    assert dropdown.value == str(models["sr"])  # shown as the folder's name, its value the full path


def test_space_app_reads_its_models_from_the_environment(monkeypatch, models):
    import runpy

    import gradio as gr

    monkeypatch.setenv("HFMAGIC_DEMO_MODELS", f"{models['sr']}, org/other-x4")
    monkeypatch.setenv("HFMAGIC_DEMO_GAN_MODELS", str(models["gan"]))
    namespace = runpy.run_path(str(ROOT / "examples" / "app.py"), run_name="space_app")  # built, not launched
    assert isinstance(namespace["demo"], gr.Blocks) and namespace["max_pixels"] == 1024 * 1024
    dropdowns = {b.elem_id: b for b in namespace["demo"].blocks.values() if isinstance(b, gr.Dropdown)}
    assert [value for _, value in dropdowns["sr-model"].choices] == [str(models["sr"]), "org/other-x4"]
    assert [value for _, value in dropdowns["gan-model"].choices] == [str(models["gan"])]


# --- the page, in a browser ----------------------------------------------------------------------


def _chromium() -> str | None:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    return path or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def page(models):
    """A headless Chromium page on the demo, served on 127.0.0.1 for the module."""
    executable = _chromium()
    if executable is None:
        if os.environ.get("HFMAGIC_ALLOW_NO_BROWSER", "") not in ("", "0"):
            pytest.skip("no Chromium and HFMAGIC_ALLOW_NO_BROWSER is set")
        pytest.fail(CHROMIUM_HELP)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail('Playwright is missing: pip install -e ".[dev]" installs it (the browser test needs it).')

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    demo = build_demo(models=[str(models["sr"])], gan_models=[str(models["gan"])], device="cpu", dtype="float32")
    port = _free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, headless=True)
            page = browser.new_page(viewport={"width": 1000, "height": 800})
            page.set_default_timeout(30_000)
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("#sr-run")
            yield page
            browser.close()
    finally:
        demo.close()


def _natural_sizes(page, selector: str) -> list[tuple[int, int]]:
    return [tuple(page.evaluate("(img) => [img.naturalWidth, img.naturalHeight]", img)) for img in page.query_selector_all(selector)]


def _upload(page, path: Path) -> None:
    """Put ``path`` in the upload box (cleared first: a filled gr.File has no file input)."""
    clear = page.locator("#sr-upload button[aria-label='Clear']")
    if clear.count():
        clear.first.click()
    page.set_input_files("#sr-upload input[type=file]", str(path))


def _save_screenshot_if_changed(shot: Path, target: Path) -> None:
    """Write ``target`` (optimised) unless the stored picture looks the same: under 1% of its pixels
    differ by more than a few levels (the time in the status line changes on every run)."""
    new = Image.open(shot).convert("RGB")
    if target.exists():
        old = Image.open(target).convert("RGB")
        if old.size == new.size:
            diff = np.abs(np.asarray(old, np.int16) - np.asarray(new, np.int16)).max(axis=2) > 16
            if diff.mean() < 0.01:
                return
    target.parent.mkdir(parents=True, exist_ok=True)
    new.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(target, optimize=True)


def test_browser_upscale_a_photo_then_survive_bad_input(page, models, photo, tmp_path):
    from playwright.sync_api import expect

    expect.set_options(timeout=30_000)  # model loads and runs on 2 shared CPU cores
    status = page.locator("#sr-status")
    _upload(page, photo)
    expect(status).to_contain_text("Input: 64 x 64, RGB, 8-bit")
    page.click("#sr-run")
    expect(status).to_contain_text("256 x 256 output from 64 x 64")
    slider = page.locator("#sr-slider img")
    expect(slider).to_have_count(2)  # bicubic and model, one over the other
    page.wait_for_function("() => [...document.querySelectorAll('#sr-slider img')].every(i => i.complete && i.naturalWidth)")
    assert _natural_sizes(page, "#sr-slider img") == [(256, 256), (256, 256)]
    # the full-resolution PNG is offered for download, and it is one
    link = page.locator("#sr-download a[href]").first
    expect(link).to_have_attribute("download", "astronaut-face_x4.png")
    png = page.request.get(link.get_attribute("href")).body()
    (tmp_path / "downloaded.png").write_bytes(png)
    assert Image.open(tmp_path / "downloaded.png").size == (256, 256)

    shot = tmp_path / "demo.png"  # the test's artifact
    page.screenshot(path=str(shot), full_page=True)
    _save_screenshot_if_changed(shot, SCREENSHOT)

    # a file that is not an image: a message in the page, on upload and on run
    bad = tmp_path / "notes.png"
    bad.write_text("not a picture")
    _upload(page, bad)
    expect(status).to_contain_text("notes.png is not an image file")
    page.click("#sr-run")
    expect(status).to_contain_text("notes.png is not an image file")
    # a GAN repo typed in the Upscale tab
    _upload(page, photo)
    expect(status).to_contain_text("Input: 64 x 64")
    page.fill("#sr-model-typed textarea, #sr-model-typed input", str(models["gan"]))
    page.click("#sr-run")
    expect(status).to_contain_text("not a super-resolution model")
    assert "Traceback" not in page.inner_text("body")
    # the app still serves: the chosen model again, with tiles this time
    page.fill("#sr-model-typed textarea, #sr-model-typed input", "")
    page.fill("#sr-tile input", "16")
    page.click("#sr-run")
    expect(status).to_contain_text("256 x 256 output from 64 x 64, RGB, 8-bit input")
    expect(status).to_contain_text("tiles of 16 px")


def test_browser_gan_tab_draws_a_grid(page):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="GAN samples").click()
    page.fill("#gan-seed input", "7")
    page.click("#gan-run")
    expect(page.locator("#gan-status")).to_contain_text("16 image(s), seed 7, grid 74 x 74")
    page.wait_for_function("() => { const i = document.querySelector('#gan-grid img'); return i && i.complete && i.naturalWidth; }")
    assert _natural_sizes(page, "#gan-grid img") == [(74, 74)]
