"""Hub round trips against the local test Hub (tests/hub_server.py): push every architecture,
load it back bitwise, the model card's YAML, the GAN repo layout, offline loading from the HF
cache, and datasets pushed to / loaded from the Hub."""

import os
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request

import pytest
import torch
import yaml
from huggingface_hub import HfApi, ModelCard, hf_hub_download
from safetensors.torch import load_file
from transformers import AutoModel, PretrainedConfig, PreTrainedModel

from hfmagic import (
    EDSR,
    SRCNN,
    DCGANConfig,
    DCGANDiscriminator,
    DCGANGenerator,
    EDSRConfig,
    MSRResNet,
    MSRResNetConfig,
    SRCNNConfig,
)
from hfmagic.hub import (
    add_metrics_to_card,
    model_card,
    push_folder_to_hub,
    push_gan_to_hub,
    save_gan_pretrained,
    write_model_card,
)

TINY_GAN = dict(image_size=16, noise_size=8, generator_base_channels=16, discriminator_base_channels=4)
SET5 = {"dataset": "Set5", "name": "PSNR", "value": 30.22, "type": "psnr", "split": "test", "config": "RGB, crop_border=4"}


def make(name):
    torch.manual_seed(0)
    if name == "srcnn":
        return SRCNN(SRCNNConfig(upscale_factor=2, channels=(3, 8, 4, 3)))
    if name == "msrresnet":
        return MSRResNet(MSRResNetConfig(upscale_factor=4, mid_channels=8, num_blocks=2))
    if name == "edsr":
        return EDSR(EDSRConfig(upscale_factor=3, mid_channels=8, num_blocks=2))
    if name == "dcgan-generator":
        return DCGANGenerator(DCGANConfig(**TINY_GAN))
    return DCGANDiscriminator(DCGANConfig(**TINY_GAN))


def card_yaml(text: str) -> dict:
    assert text.startswith("---\n"), text[:200]
    return yaml.safe_load(text.split("---\n")[1])


def assert_same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert sa[key].dtype == sb[key].dtype and torch.equal(sa[key], sb[key]), key


def sample_input(model):
    if isinstance(model, DCGANGenerator):
        return torch.randn(2, model.config.noise_size, generator=torch.Generator().manual_seed(1))
    if isinstance(model, DCGANDiscriminator):
        return torch.rand(2, 3, 16, 16) * 2 - 1
    return torch.rand(1, 3, 6, 5)


def run_model(model, x):
    with torch.no_grad():
        out = model(x)
    return out if isinstance(out, torch.Tensor) else out.reconstruction


ARCHS = ["srcnn", "msrresnet", "edsr", "dcgan-generator", "dcgan-discriminator"]
KIND = {"srcnn": "sr", "msrresnet": "sr", "edsr": "sr", "dcgan-generator": "gan", "dcgan-discriminator": "gan"}


# ------------------------------------------------------------------------------------- push + load
@pytest.mark.parametrize("arch", ARCHS)
def test_push_to_hub_and_load_back_bitwise(hub_server, arch):
    model = make(arch).eval()
    repo_id = hub_server.new_repo_id(arch)
    commit = model.push_to_hub(repo_id)

    assert commit.oid == HfApi().model_info(repo_id).sha
    assert hub_server.list_files(repo_id) == [".gitattributes", "README.md", "config.json", "model.safetensors"]
    assert hub_server.is_lfs(repo_id, "model.safetensors") and not hub_server.is_lfs(repo_id, "config.json")
    assert len(hub_server.commit_history(repo_id)) == 2  # the repo's first commit, then ONE upload commit

    # The uploaded weights are exactly the model's tensors.
    weights = load_file(hf_hub_download(repo_id, "model.safetensors"))
    for key, value in model.state_dict().items():
        assert torch.equal(weights[key], value), key

    loaded = type(model).from_pretrained(repo_id).eval()
    assert_same_state(model, loaded)
    x = sample_input(model)
    assert torch.equal(run_model(model, x), run_model(loaded, x))

    meta = card_yaml(hub_server.read_file(repo_id, "README.md").decode())
    assert meta["library_name"] == "hfmagic"
    kind_tag = "super-resolution" if KIND[arch] == "sr" else "gan"
    assert {"hfmagic", kind_tag, model.config.model_type, "mmagic"} <= set(meta["tags"])
    expected_pipeline = "image-to-image" if KIND[arch] == "sr" else "unconditional-image-generation"
    assert meta["pipeline_tag"] == expected_pipeline
    assert "model-index" not in meta  # no metrics given, no results invented
    assert f'{type(model).__name__}.from_pretrained("{repo_id}")' in hub_server.read_file(repo_id, "README.md").decode()


def test_auto_model_loads_a_pushed_sr_model(hub_server):
    model = make("msrresnet")
    repo_id = hub_server.new_repo_id("auto")
    model.push_to_hub(repo_id)
    loaded = AutoModel.from_pretrained(repo_id)
    assert type(loaded) is MSRResNet
    assert_same_state(model, loaded)


def test_push_to_user_namespace_when_repo_has_no_owner(hub_server):
    model = make("srcnn")
    name = hub_server.new_repo_id("bare").split("/")[1]
    commit = model.push_to_hub(name)
    assert commit.repo_url.repo_id == f"{hub_server.user}/{name}"
    assert "model.safetensors" in hub_server.list_files(f"{hub_server.user}/{name}")


def test_second_push_updates_weights_and_keeps_one_card(hub_server):
    model = make("edsr")
    repo_id = hub_server.new_repo_id("twice")
    model.push_to_hub(repo_id)
    card_before = hub_server.read_file(repo_id, "README.md")
    with torch.no_grad():
        model.conv_first.weight.add_(1.0)
    model.push_to_hub(repo_id, commit_message="more training")
    assert hub_server.commit_history(repo_id)[0] == "more training"
    assert hub_server.read_file(repo_id, "README.md") == card_before
    assert_same_state(model, EDSR.from_pretrained(repo_id, force_download=True))


# ------------------------------------------------------------------------------------- cards
def test_card_with_metrics_has_a_model_index(hub_server):
    model = make("msrresnet")
    repo_id = hub_server.new_repo_id("metrics")
    metrics = [SET5, {"dataset": "Set14", "name": "SSIM", "value": 0.8, "split": "test"}]
    model.push_to_hub(repo_id, metrics=metrics, datasets=["org/div2k"], tags=["x4"])

    text = hub_server.read_file(repo_id, "README.md").decode()
    meta = card_yaml(text)
    assert meta["datasets"] == ["org/div2k"] and "x4" in meta["tags"]
    (entry,) = meta["model-index"]
    assert entry["name"] == repo_id.split("/")[1]
    results = {(r["dataset"]["name"], r["metrics"][0]["type"]): r for r in entry["results"]}
    psnr = results[("Set5", "psnr")]
    assert psnr["task"]["type"] == "image-to-image"
    assert psnr["dataset"] == {"name": "Set5", "type": "Set5", "split": "test"}
    assert psnr["metrics"][0] == {"type": "psnr", "value": 30.22, "name": "PSNR", "config": "RGB, crop_border=4"}
    assert results[("Set14", "ssim")]["metrics"][0]["value"] == 0.8
    # huggingface_hub reads the same results back from the Hub.
    card = ModelCard.load(repo_id)
    assert sorted((r.dataset_name, r.metric_type, r.metric_value) for r in card.data.eval_results) == [
        ("Set14", "ssim", 0.8), ("Set5", "psnr", 30.22)]
    assert "| Set5 | test | PSNR | 30.2200 | RGB, crop_border=4 |" in text


def test_a_card_on_the_hub_is_kept_and_metrics_merge_into_it(hub_server):
    repo_id = hub_server.new_repo_id("own-card")
    api = HfApi()
    api.create_repo(repo_id)
    own = "---\nlicense: mit\n---\n# My model\n\nHand-written notes.\n"
    api.upload_file(path_or_fileobj=own.encode(), path_in_repo="README.md", repo_id=repo_id)

    model = make("srcnn")
    model.push_to_hub(repo_id)
    assert hub_server.read_file(repo_id, "README.md").decode() == own
    assert "model.safetensors" in hub_server.list_files(repo_id)

    model.push_to_hub(repo_id, metrics=[SET5])
    text = hub_server.read_file(repo_id, "README.md").decode()
    assert "Hand-written notes." in text
    meta = card_yaml(text)
    assert meta["license"] == "mit"
    assert meta["model-index"][0]["results"][0]["metrics"][0]["value"] == 30.22
    # named after the repo (the push runs in a temporary folder), and the body shows the results too
    assert meta["model-index"][0]["name"] == repo_id.split("/")[1]
    assert text.endswith("Hand-written notes.\n\n## Evaluation\n\n| dataset | split | metric | value | setting |\n"
                         "|---|---|---|---|---|\n| Set5 | test | PSNR | 30.2200 | RGB, crop_border=4 |\n")
    model.push_to_hub(repo_id, metrics=[dict(SET5, value=30.5), {"dataset": "Set14", "name": "PSNR", "value": 27.0}])
    text = hub_server.read_file(repo_id, "README.md").decode()
    assert text.count("## Evaluation") == 1 and "30.2200" not in text
    assert "| Set5 | test | PSNR | 30.5000 |" in text and "| Set14 |  | PSNR | 27.0000 |" in text


def test_save_pretrained_writes_a_card_once_and_keeps_the_users(tmp_path):
    model = make("edsr")
    model.save_pretrained(tmp_path / "fresh")
    meta = card_yaml((tmp_path / "fresh" / "README.md").read_text())
    assert meta["pipeline_tag"] == "image-to-image" and meta["library_name"] == "hfmagic"

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "README.md").write_text("my card\n")
    model.save_pretrained(mine)
    assert (mine / "README.md").read_text() == "my card\n"
    assert_same_state(model, EDSR.from_pretrained(mine))

    # Non-main processes write nothing (transformers skips the weights too).
    model.save_pretrained(tmp_path / "rank1", is_main_process=False)
    assert not (tmp_path / "rank1" / "README.md").exists()


def test_save_pretrained_push_to_hub_uploads_our_card(hub_server, tmp_path):
    repo_id = hub_server.new_repo_id("save-push")
    model = make("srcnn")
    model.save_pretrained(tmp_path / "out", push_to_hub=True, repo_id=repo_id)
    assert {"README.md", "config.json", "model.safetensors"} <= set(hub_server.list_files(repo_id))
    assert card_yaml(hub_server.read_file(repo_id, "README.md").decode())["library_name"] == "hfmagic"
    assert (tmp_path / "out" / "README.md").read_bytes() == hub_server.read_file(repo_id, "README.md")


def test_add_metrics_to_card_replaces_same_result_and_appends_new(tmp_path):
    model = make("msrresnet")
    write_model_card(tmp_path, model)
    assert "model-index" not in card_yaml((tmp_path / "README.md").read_text())
    add_metrics_to_card(tmp_path, [SET5])
    add_metrics_to_card(tmp_path, [dict(SET5, value=31.0), {"dataset": "Urban100", "name": "PSNR", "value": 25.0}])
    results = card_yaml((tmp_path / "README.md").read_text())["model-index"][0]["results"]
    got = sorted((r["dataset"]["name"], r["metrics"][0]["value"]) for r in results)
    assert got == [("Set5", 31.0), ("Urban100", 25.0)]
    # the card's table says what its model-index says
    text = (tmp_path / "README.md").read_text()
    assert text.count("## Evaluation") == 1 and "30.2200" not in text
    assert "| Set5 | test | PSNR | 31.0000 | RGB, crop_border=4 |" in text and "| Urban100 |  | PSNR | 25.0000 |  |" in text
    # a section of the author's own under that heading (no table) is left as it is
    card = (tmp_path / "README.md").read_text()
    start = card.index("## Evaluation")
    (tmp_path / "README.md").write_text(card[:start] + "## Evaluation\n\nSee the paper.\n")
    add_metrics_to_card(tmp_path, [dict(SET5, value=32.0)])
    assert (tmp_path / "README.md").read_text().endswith("## Evaluation\n\nSee the paper.\n")


def test_add_metrics_to_card_creates_the_card_from_config_json(tmp_path):
    model = make("dcgan-generator")
    torch_folder = tmp_path / "g"
    PreTrainedModel.save_pretrained(model, torch_folder)  # transformers' own save: no card
    assert not (torch_folder / "README.md").exists()
    add_metrics_to_card(torch_folder, [{"dataset": "CelebA", "name": "FID", "value": 12.5, "type": "fid"}])
    meta = card_yaml((torch_folder / "README.md").read_text())
    assert meta["pipeline_tag"] == "unconditional-image-generation"
    result = meta["model-index"][0]["results"][0]
    assert result["task"]["type"] == "unconditional-image-generation" and result["metrics"][0]["value"] == 12.5


def test_metrics_merge_into_a_hand_written_card_without_yaml(tmp_path):
    PreTrainedModel.save_pretrained(make("dcgan-generator"), tmp_path)
    (tmp_path / "README.md").write_text("# My GAN\n\nNotes.\n")
    add_metrics_to_card(tmp_path, [{"dataset": "CelebA", "name": "FID", "value": 9.0}], tags=["celeba"])
    text = (tmp_path / "README.md").read_text()
    assert "# My GAN\n\nNotes." in text
    meta = card_yaml(text)
    assert meta["tags"] == ["celeba"]
    result = meta["model-index"][0]["results"][0]
    assert result["task"]["type"] == "unconditional-image-generation" and result["metrics"][0]["type"] == "fid"

    (tmp_path / "config.json").unlink()
    (tmp_path / "README.md").write_text("# no yaml\n")
    with pytest.raises(ValueError, match="add `pipeline_tag: image-to-image`"):
        add_metrics_to_card(tmp_path, [SET5])


def test_card_errors_name_the_problem(hub_server, tmp_path):
    model = make("srcnn")
    with pytest.raises(ValueError, match=r"lacks \['value'\].*'dataset', 'name' and 'value'"):
        model_card(model, metrics=[{"dataset": "Set5", "name": "PSNR"}])
    with pytest.raises(ValueError, match="non-numeric value"):
        model_card(model, metrics=[dict(SET5, value="high")])
    with pytest.raises(TypeError, match=r"Unexpected argument\(s\) \['safe_serialization'\]"):
        model.push_to_hub(f"{hub_server.user}/never-created", safe_serialization=True)
    assert not hub_server.repo_exists(f"{hub_server.user}/never-created")
    with pytest.raises(FileNotFoundError, match="save the model there first"):
        add_metrics_to_card(tmp_path / "nothing", [SET5])
    with pytest.raises(FileNotFoundError, match="save the model there first"):
        push_folder_to_hub(tmp_path / "nothing", "user/x")
    with pytest.raises(ValueError, match="No model card template"):
        model_card(PretrainedConfig())


@pytest.mark.parametrize("arch", ["msrresnet", "dcgan-generator"])
def test_the_cards_usage_snippet_runs(tmp_path, arch, monkeypatch):
    import re

    import numpy as np
    from PIL import Image

    folder = tmp_path / "model"
    make(arch).save_pretrained(folder)
    write_model_card(folder, make(arch), repo_id=str(folder))
    (code,) = re.findall(r"```python\n(.*?)```", (folder / "README.md").read_text(), flags=re.S)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(tmp_path / "photo.png")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "card-snippet", "exec"), {})
    if arch == "msrresnet":
        assert Image.open(tmp_path / "photo_sr.png").size == (10 * 4, 12 * 4)


def test_only_unreachable_hubs_become_connection_errors(hub_server):
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    from hfmagic.hub import explain_network_errors

    with pytest.raises(ConnectionError, match=r"Could not do it: the Hub at .* is unreachable .*Try again"):
        with explain_network_errors("do it", "Try again."):
            HfApi(endpoint="http://127.0.0.1:9").create_repo("me/x", token="hf_x")
    # the Hub's own answers and local errors keep their type and message
    with pytest.raises(HfHubHTTPError):
        with explain_network_errors("do it", "Try again."):
            HfApi().model_info("nobody/does-not-exist-" + hub_server.new_repo_id("x").split("/")[1])
    with pytest.raises(FileNotFoundError):
        with explain_network_errors("do it", "Try again."):
            open("/no/such/file")


def test_sample_image_is_copied_next_to_the_card(tmp_path):
    image = tmp_path / "grid.png"
    image.write_bytes(b"\x89PNG fake")
    folder = tmp_path / "repo"
    write_model_card(folder, make("dcgan-generator"), sample_image=str(image), extra_text="Trained 10 epochs.")
    text = (folder / "README.md").read_text()
    assert (folder / "grid.png").read_bytes() == image.read_bytes()
    assert "![samples](grid.png)" in text and text.rstrip().endswith("Trained 10 epochs.")


# ------------------------------------------------------------------------------------- GAN repos
def test_gan_repo_layout_and_loading(hub_server, tmp_path):
    torch.manual_seed(0)
    config = DCGANConfig(**TINY_GAN)
    generator, discriminator = DCGANGenerator(config).eval(), DCGANDiscriminator(config).eval()

    save_gan_pretrained(generator, discriminator, tmp_path / "gan", metrics=[{"dataset": "CelebA", "name": "SWD", "value": 3.5, "type": "swd"}])
    files = sorted(p.relative_to(tmp_path / "gan").as_posix() for p in (tmp_path / "gan").rglob("*") if p.is_file())
    assert files == ["README.md", "config.json", "discriminator/config.json", "discriminator/model.safetensors", "model.safetensors"]
    assert_same_state(generator, DCGANGenerator.from_pretrained(tmp_path / "gan"))
    assert_same_state(discriminator, DCGANDiscriminator.from_pretrained(tmp_path / "gan", subfolder="discriminator"))

    repo_id = hub_server.new_repo_id("dcgan")
    push_gan_to_hub(generator, discriminator, repo_id, datasets=["org/celeba"])
    assert hub_server.list_files(repo_id) == [".gitattributes", "README.md", "config.json", "discriminator/config.json",
                                              "discriminator/model.safetensors", "model.safetensors"]
    text = hub_server.read_file(repo_id, "README.md").decode()
    meta = card_yaml(text)
    assert meta["pipeline_tag"] == "unconditional-image-generation" and "gan" in meta["tags"]
    assert f'DCGANDiscriminator.from_pretrained("{repo_id}", subfolder="discriminator")' in text

    g = DCGANGenerator.from_pretrained(repo_id).eval()
    d = DCGANDiscriminator.from_pretrained(repo_id, subfolder="discriminator").eval()
    assert_same_state(generator, g)
    assert_same_state(discriminator, d)
    noise = sample_input(generator)
    assert torch.equal(run_model(generator, noise), run_model(g, noise))
    images = run_model(g, noise)
    assert torch.equal(run_model(discriminator, images), run_model(d, images))


def test_gan_save_rejects_mismatched_networks(tmp_path):
    generator = DCGANGenerator(DCGANConfig(**TINY_GAN))
    discriminator = DCGANDiscriminator(DCGANConfig(**dict(TINY_GAN, image_size=32)))
    with pytest.raises(ValueError, match="image_size"):
        save_gan_pretrained(generator, discriminator, tmp_path)


# ------------------------------------------------------------------------------------- helpers, server
def test_push_folder_to_hub_round_trip(hub_server, tmp_path):
    model = make("msrresnet")
    model.save_pretrained(tmp_path)
    repo_id = hub_server.new_repo_id("folder")
    url = push_folder_to_hub(tmp_path, repo_id, commit_message="from a folder")
    assert url == f"{hub_server.url}/{repo_id}"
    assert hub_server.commit_history(repo_id)[0] == "from a folder"
    for name in ("README.md", "config.json", "model.safetensors"):
        assert hub_server.read_file(repo_id, name) == (tmp_path / name).read_bytes()


def http(method: str, url: str, data: bytes | None = None, headers: dict | None = None):
    """(status, headers, body) of one plain request to the test Hub."""
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def test_hub_server_errors_and_ranges(hub_server):
    api = HfApi()
    repo_id = hub_server.new_repo_id("raw")
    api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=b"0123456789", path_in_repo="d/x.txt", repo_id=repo_id)
    base = f"{hub_server.url}/{repo_id}/resolve/main"
    status, headers, body = http("GET", f"{base}/d/x.txt", headers={"Range": "bytes=2-4"})
    assert status == 206 and body == b"234" and headers["Content-Range"] == "bytes 2-4/10"
    status, headers, _ = http("HEAD", f"{base}/d/x.txt")
    assert status == 200 and len(headers["X-Repo-Commit"]) == 40 and headers["Content-Length"] == "10"
    assert http("HEAD", f"{base}/missing")[1]["X-Error-Code"] == "EntryNotFound"
    assert http("HEAD", f"{hub_server.url}/{repo_id}/resolve/nobranch/d/x.txt")[1]["X-Error-Code"] == "RevisionNotFound"
    assert http("HEAD", f"{hub_server.url}/user/absent/resolve/main/x")[1]["X-Error-Code"] == "RepoNotFound"
    assert [f.path for f in api.list_repo_tree(repo_id, "d")] == ["d/x.txt"]
    # An LFS upload whose content does not match its sha256 is refused.
    assert http("PUT", f"{hub_server.url}/lfs-upload/{'0' * 64}", data=b"not that")[0] == 400
    # A stale parent commit is refused (412), as the real Hub does for concurrent writers.
    old = api.model_info(repo_id).sha
    api.upload_file(path_or_fileobj=b"a", path_in_repo="a.txt", repo_id=repo_id)
    with pytest.raises(Exception, match="412"):
        api.upload_file(path_or_fileobj=b"b", path_in_repo="b.txt", repo_id=repo_id, parent_commit=old)


# ------------------------------------------------------------------------------------- offline cache
@pytest.mark.slow  # a fresh interpreter imports transformers (~10 s on 2 cores)
def test_from_pretrained_offline_from_the_hf_cache(tmp_path, offline_hf_cache):
    sr, generator, discriminator = make("msrresnet"), make("dcgan-generator"), make("dcgan-discriminator")
    sr.save_pretrained(tmp_path / "sr")
    save_gan_pretrained(generator, discriminator, tmp_path / "gan")
    snapshot = offline_hf_cache(tmp_path / "sr", "org/msrresnet-x4")
    offline_hf_cache(tmp_path / "gan", "org/dcgan")
    assert len(snapshot.name) == 40 and (snapshot.parent.parent / "refs" / "main").read_text() == snapshot.name

    script = textwrap.dedent(
        """
        import sys
        from safetensors.torch import save_file
        from hfmagic import MSRResNet, DCGANGenerator, DCGANDiscriminator
        out = sys.argv[1]
        save_file(MSRResNet.from_pretrained("org/msrresnet-x4").state_dict(), out + "/sr.safetensors")
        save_file(DCGANGenerator.from_pretrained("org/dcgan").state_dict(), out + "/g.safetensors")
        d = DCGANDiscriminator.from_pretrained("org/dcgan", subfolder="discriminator")
        save_file(d.state_dict(), out + "/d.safetensors")
        try:
            MSRResNet.from_pretrained("org/not-cached")
        except OSError as err:
            print("MISSING-OK", type(err).__name__)
        """
    )
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_CACHE=str(offline_hf_cache.cache_dir),
               HF_ENDPOINT="http://127.0.0.1:9")  # a closed port: any network access would fail loudly
    env.pop("HF_TOKEN", None)
    repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # hfmagic importable even if not installed
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo_root, env.get("PYTHONPATH")) if p)
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "MISSING-OK" in proc.stdout
    for name, model in (("sr", sr), ("g", generator), ("d", discriminator)):
        state = load_file(tmp_path / f"{name}.safetensors")
        for key, value in model.state_dict().items():
            assert torch.equal(state[key], value), (name, key)


# ------------------------------------------------------------------------------------- datasets
def test_dataset_push_to_hub_and_load_back(hub_server):
    import numpy as np
    from datasets import Dataset, Features, Image, Value, load_dataset
    from PIL import Image as PILImage

    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, (8, 12, 3), dtype=np.uint8) for _ in range(3)]
    features = Features({"hr": Image(), "name": Value("string")})
    ds = Dataset.from_dict({"hr": [PILImage.fromarray(a) for a in arrays], "name": ["a", "b", "c"]}, features=features)
    repo_id = hub_server.new_repo_id("div2k-tiny")
    ds.push_to_hub(repo_id)
    ds.select([0]).push_to_hub(repo_id, split="validation")

    files = hub_server.list_files(repo_id, repo_type="dataset")
    assert "data/train-00000-of-00001.parquet" in files and "data/validation-00000-of-00001.parquet" in files
    assert hub_server.is_lfs(repo_id, "data/train-00000-of-00001.parquet", repo_type="dataset")
    card = hub_server.read_file(repo_id, "README.md", repo_type="dataset").decode()
    assert "num_examples: 3" in card

    back = load_dataset(repo_id)
    assert back["train"].num_rows == 3 and back["validation"].num_rows == 1
    assert back["train"]["name"] == ["a", "b", "c"]
    for row, array in zip(back["train"], arrays):
        assert np.array_equal(np.asarray(row["hr"]), array)
    assert len(HfApi().dataset_info(repo_id, revision="main").sha) == 40


def test_save_pretrained_takes_card_fields(tmp_path):
    """save_pretrained(..., metrics=, datasets=, license=) puts them in the card (transformers would drop
    them silently); into an existing card metrics merge, other fields are refused with the fix."""
    model = MSRResNet(MSRResNetConfig(mid_channels=4, num_blocks=1))
    metrics = [{"dataset": "Set5", "name": "PSNR", "value": 30.25}]
    model.save_pretrained(tmp_path / "m", metrics=metrics, datasets=["eugenesiow/Set5"], license="apache-2.0")
    card = (tmp_path / "m" / "README.md").read_text()
    assert "30.25" in card and "eugenesiow/Set5" in card and "license: apache-2.0" in card
    model.save_pretrained(tmp_path / "m", metrics=[{"dataset": "Set14", "name": "PSNR", "value": 26.5}])
    card = (tmp_path / "m" / "README.md").read_text()
    assert "30.25" in card and "26.5" in card  # merged, the first result kept
    with pytest.raises(ValueError, match="already exists.*datasets.*delete the card first"):
        model.save_pretrained(tmp_path / "m", datasets=["other/data"])


def test_card_title_license_and_local_snippet(tmp_path, monkeypatch):
    """The title says architecture, scale/size and data; the license is declared only when given;
    a local card's snippet loads its own folder (and runs), a pushed one the repo id."""
    import re

    sr = make("msrresnet")
    text = str(model_card(sr, datasets=["eugenesiow/Div2k"], license="apache-2.0"))
    assert "\n# MSRResNet x4 trained on eugenesiow/Div2k\n" in text
    assert card_yaml(text)["license"] == "apache-2.0" and "- **License:** `apache-2.0`" in text
    plain = str(model_card(sr))
    assert "\n# MSRResNet x4 super-resolution model\n" in plain and "license" not in card_yaml(plain)
    gan = str(model_card(make("dcgan-generator"), training_data="pcuenq/lsun-bedrooms"))
    assert "\n# DCGAN 16x16 trained on pcuenq/lsun-bedrooms\n" in gan
    assert "\n# DCGANDiscriminator 16x16 GAN\n" in str(model_card(make("dcgan-discriminator")))
    assert 'from_pretrained("me/sr-x4")' in str(model_card(sr, repo_id="me/sr-x4"))

    monkeypatch.chdir(tmp_path)
    sr.save_pretrained("saved")  # a relative folder, as the user typed it
    card = (tmp_path / "saved" / "README.md").read_text()
    assert 'MSRResNet.from_pretrained("saved")' in card and "path/or/repo-id" not in card
    (code,) = re.findall(r"```python\n(.*?)```", card, flags=re.S)
    from PIL import Image

    Image.new("RGB", (10, 12)).save("photo.png")
    exec(compile(code, "card-snippet", "exec"), {})
    assert Image.open("photo_sr.png").size == (40, 48)


def test_bicubic_baseline_is_in_the_table_not_the_model_index(tmp_path):
    """Bicubic's value on the same images goes in the card's table with the gain; the model-index holds
    the model's results only; merging other results keeps the baselines; a new value without one drops it."""
    model = make("msrresnet")
    psnr = dict(SET5, value=30.5, bicubic=28.25, dataset_id="eugenesiow/Set5")
    write_model_card(tmp_path, model, metrics=[psnr])
    text = (tmp_path / "README.md").read_text()
    assert "| Set5 | test | PSNR | 30.5000 | 28.2500 | +2.2500 | RGB, crop_border=4 |" in text
    assert "*bicubic*: plain MATLAB-bicubic upscaling" in text
    (result,) = card_yaml(text)["model-index"][0]["results"]
    assert result["dataset"] == {"name": "Set5", "type": "eugenesiow/Set5", "split": "test"}
    assert result["metrics"] == [{"type": "psnr", "value": 30.5, "name": "PSNR", "config": "RGB, crop_border=4"}]

    add_metrics_to_card(tmp_path, [{"dataset": "Set14", "name": "PSNR", "value": 26.0, "bicubic": 25.5}])
    text = (tmp_path / "README.md").read_text()
    assert "| Set5 | test | PSNR | 30.5000 | 28.2500 | +2.2500 |" in text  # kept from the old table
    assert "| Set14 |  | PSNR | 26.0000 | 25.5000 | +0.5000 |  |" in text
    assert text.count("*bicubic*: plain MATLAB-bicubic") == 1
    add_metrics_to_card(tmp_path, [dict(SET5, value=31.0, dataset_id="eugenesiow/Set5")])  # no baseline this time
    assert "| Set5 | test | PSNR | 31.0000 |  |  | RGB, crop_border=4 |" in (tmp_path / "README.md").read_text()
    # two local folders share the type "imagefolder" but stay two results
    add_metrics_to_card(tmp_path, [{"dataset": name, "dataset_id": "imagefolder", "name": "PSNR", "value": 20.0} for name in ("a", "b")])
    names = [r["dataset"]["name"] for r in card_yaml((tmp_path / "README.md").read_text())["model-index"][0]["results"]]
    assert sorted(names) == ["Set14", "Set5", "a", "b"]
