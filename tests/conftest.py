"""Test-wide settings. Hub variables are read when huggingface_hub is imported, so they are set
here, before any test module imports transformers."""

import os
import tempfile

_HF_HOME = tempfile.mkdtemp(prefix="hfmagic-tests-hf-")
os.environ["HF_HOME"] = _HF_HOME
os.environ["HF_HUB_CACHE"] = os.path.join(_HF_HOME, "hub")
os.environ["HF_DATASETS_CACHE"] = os.path.join(_HF_HOME, "datasets")
# trackio (report_to="trackio") reads TRACKIO_DIR once, at import: its runs go here, never to a Space or server
os.environ["TRACKIO_DIR"] = os.path.join(_HF_HOME, "trackio")
for _remote in ("TRACKIO_SPACE_ID", "TRACKIO_SERVER_URL", "TRACKIO_BUCKET_ID"):
    os.environ.pop(_remote, None)
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

# --- The test Hub -------------------------------------------------------------------------------
# A Hub-compatible server on 127.0.0.1 (tests/hub_server.py), started now, at conftest import, so
# that HF_ENDPOINT is set before any test module imports huggingface_hub/transformers/datasets.
# Tests that push or download use the `hub_server` fixture; nothing ever reaches the network.
import sys  # noqa: E402

import pytest  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from hub_server import HubServer, populate_hf_cache  # noqa: E402

_HUB = HubServer(os.path.join(_HF_HOME, "test-hub")).start()
os.environ["HF_ENDPOINT"] = _HUB.url
os.environ["HF_TOKEN"] = "hf_test_token_for_the_local_hub"  # dummy: the test server accepts any token
os.environ.pop("HF_HUB_OFFLINE", None)
os.environ.pop("TRANSFORMERS_OFFLINE", None)
if "huggingface_hub" in sys.modules:  # imported by a plugin before us: its constants are stale
    raise RuntimeError(
        "huggingface_hub was imported before tests/conftest.py could point HF_ENDPOINT at the test Hub; "
        "run pytest without plugins that import it (e.g. -p no:<plugin>)."
    )


def pytest_sessionfinish(session, exitstatus):
    _HUB.stop()


@pytest.fixture(scope="session")
def hub_server() -> HubServer:
    """The session's test Hub (``HF_ENDPOINT`` points at it).

    ``hub_server.url``; ``hub_server.new_repo_id("name")`` -> a fresh ``"user/name-xxxxxxxx"``;
    ``hub_server.list_files(repo_id, repo_type="model", revision="main")``,
    ``hub_server.read_file(repo_id, path, ...)`` -> bytes, ``hub_server.is_lfs(repo_id, path)``,
    ``hub_server.commit_history(repo_id)``, ``hub_server.requests`` (recent (method, path) pairs).

    ``datasets``' parquet-export lookup (a ``datasets-server.`` host derived from HF_ENDPOINT) is
    switched off for the session, so ``load_dataset(repo_id)`` reads the repo's own files.
    """
    import datasets.config

    previous = datasets.config.USE_PARQUET_EXPORT
    datasets.config.USE_PARQUET_EXPORT = False
    yield _HUB
    datasets.config.USE_PARQUET_EXPORT = previous


@pytest.fixture
def hub_repo_id(hub_server) -> str:
    """A fresh model/dataset repo id on the test Hub (not created yet), unique to the test."""
    return hub_server.new_repo_id("test")


@pytest.fixture
def offline_hf_cache(tmp_path):
    """``populate(folder, repo_id, repo_type="model") -> snapshot path`` into a fresh cache folder;
    the cache folder is ``populate.cache_dir``. Pass it to a subprocess as ``HF_HUB_CACHE`` with
    ``HF_HUB_OFFLINE=1`` (Hub constants are read at import time)."""
    cache_dir = tmp_path / "hf-cache"

    def populate(folder, repo_id, repo_type="model", revision="main"):
        return populate_hf_cache(folder, repo_id, cache_dir=cache_dir, repo_type=repo_type, revision=revision)

    populate.cache_dir = cache_dir
    return populate


@pytest.fixture(scope="session")
def tiny_vgg19_on_hub(hub_server, tmp_path_factory) -> str:
    """Serves a tiny random VGG19 (tests/tiny_vgg.py) as ``timm/vgg19.tv_in1k`` on the test Hub, the
    default weights of ``hfmagic.losses.PerceptualLoss``; returns the repo id."""
    from huggingface_hub import HfApi

    from tiny_vgg import save_tiny_vgg19

    repo_id = "timm/vgg19.tv_in1k"
    folder = save_tiny_vgg19(tmp_path_factory.mktemp("tiny-vgg19"))
    api = HfApi()
    api.create_repo(repo_id, exist_ok=True)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id)
    return repo_id


@pytest.fixture(scope="session", autouse=True)
def _auto_dtype_is_float32():
    """``dtype="auto"`` (the SR pipeline's default) resolves as on a device without native bf16, i.e.
    to float32, whatever CPU runs the suite: the pipeline tests compare with float32 references and
    must hold alike on AVX2 and AMX machines. Session-scoped so that module-scoped pipelines see it
    too; tests of "auto" set ``native_bf16`` themselves (their monkeypatch wins)."""
    import hfmagic.pipelines.device

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hfmagic.pipelines.device, "native_bf16", lambda device: False)
        yield
