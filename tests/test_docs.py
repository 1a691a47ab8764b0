"""Every Python code block of the "design your own model" guides runs, in order, so the guides
cannot rot. Each guide runs in one namespace (later blocks use earlier ones), in a temporary
working directory, against the test Hub (HF_ENDPOINT set by conftest)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
GUIDES = [DOCS / "design_your_own_model.md", DOCS / "zh_cn" / "design_your_own_model.md"]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(path: Path) -> list[str]:
    return _BLOCK.findall(path.read_text(encoding="utf-8"))


@pytest.mark.slow
@pytest.mark.parametrize("guide", GUIDES, ids=["en", "zh_cn"])
def test_guide_code_runs(guide, tmp_path, monkeypatch, hub_server):
    blocks = python_blocks(guide)
    assert len(blocks) >= 6, f"{guide} should walk through the whole journey in code"
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__main__"}
    for i, block in enumerate(blocks):
        try:
            exec(compile(block, f"{guide.name}[block {i}]", "exec"), namespace)
        except Exception as err:  # name the block that broke
            raise AssertionError(f"{guide} code block {i} failed:\n{block}") from err

    # Step 3's script, with step 1's classes saved as my_models.py as the guide says, really trains.
    (tmp_path / "my_models.py").write_text(next(b for b in blocks if "class TinySRConfig" in b))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [sys.executable, "train_tiny_sr.py", "--max_train_steps", "2", "--output_dir", "script-run"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "script-run" / "final" / "model.safetensors").is_file()


def _code_only(block: str) -> list[str]:
    """Lines without comments or blank lines (comments may be translated)."""
    lines = (re.sub(r"  # .*$", "", line).rstrip() for line in block.splitlines())  # PEP 8 inline comments
    return [line for line in lines if line and not line.lstrip().startswith("#")]


def test_guides_have_the_same_code():
    """The Chinese guide is a translation: its code equals the English code, comments aside."""
    en, zh = ([_code_only(b) for b in python_blocks(p)] for p in GUIDES)
    assert en == zh


def test_every_name_the_guide_imports_has_a_docstring():
    """Each public class/function the guide uses is documented (shapes and ranges live there)."""
    import importlib

    names = set()
    for block in python_blocks(GUIDES[0]):
        for module, imported in re.findall(r"^from (hfmagic[\w.]*) import (\([^)]*\)|[^\n]+)", block, re.M):
            names |= {(module, n.strip()) for n in imported.strip("()").replace("\n", " ").split(",") if n.strip()}
    assert len(names) >= 15
    for module, name in sorted(names):
        obj = getattr(importlib.import_module(module), name)
        assert (obj.__doc__ or "").strip(), f"{module}.{name} has no docstring"
