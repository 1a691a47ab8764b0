"""The package's promises about itself: CI runs the README's commands, and setup.cfg declares the
console script, the dev extra and a torch range that admits the CPU wheel."""

import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _bash_block_after(heading: str) -> list[str]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split(f"## {heading}\n", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def test_ci_runs_the_readme_install_and_test_commands_verbatim():
    """In the README's order; a root command (apt-get) may run as ``$SUDO <command>`` (sudo when CI
    is not root) inside a shell condition that makes it idempotent."""
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    commands = _bash_block_after("Install") + _bash_block_after("Run the tests")
    assert commands == [
        "pip install torch==2.13.0",
        'pip install -e ".[dev]"',
        "apt-get install -y chromium",  # the browser test of tests/test_demo.py
        "python -m pytest -q",
    ]

    def position(command: str) -> int:
        if command.startswith("apt-get "):
            return next(i for i, line in enumerate(ci_lines) if f"$SUDO {command}" in line)
        return ci_lines.index(command)  # ValueError if one is missing

    positions = [position(command) for command in commands]
    assert positions == sorted(positions)


def test_setup_declares_the_console_script_dev_extra_and_torch_range():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert "hfmagic = hfmagic.cli:main" in cfg["options.entry_points"]["console_scripts"]
    assert "pytest" in cfg["options.extras_require"]["dev"]
    # the demo: gradio in its own extra and in dev (the tests drive it in a browser through playwright)
    assert "gradio" in cfg["options.extras_require"]["demo"]
    assert {"gradio", "playwright"} <= {r.split(">")[0].split("=")[0] for r in cfg["options.extras_require"]["dev"].split()}
    torch_req = next(r for r in cfg["options"]["install_requires"].split() if r.startswith("torch"))
    assert torch_req == "torch>=2.4"  # admits the 2.13 CPU wheel CI installs first



def test_license_file_matches_setup_cfg():
    """The LICENSE file holds the license setup.cfg declares (Apache-2.0)."""
    import configparser
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    cfg = configparser.ConfigParser()
    cfg.read(root / "setup.cfg")
    assert cfg["metadata"]["license"] == "Apache-2.0"
    text = (root / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text and "END OF TERMS AND CONDITIONS" in text
