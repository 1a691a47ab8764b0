"""Write docs/cli.md, the CLI reference, from the argparse parsers themselves:
``python docs/gen_cli.py`` (tests/test_readme_blocks.py checks that docs/cli.md names every flag of
every parser and no flag that is gone)."""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ["train_sr.py", "train_dcgan.py", "train_esrgan.py", "train_stylegan2.py"]


def example_parser(name: str) -> argparse.ArgumentParser:
    """The parser an example script builds inside its ``parse_args`` (captured, not run)."""
    spec = importlib.util.spec_from_file_location(f"_cli_doc_{Path(name).stem}", ROOT / "examples" / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    captured = []

    def capture(self, *args, **kwargs):
        captured.append(self)
        raise SystemExit(0)

    with mock.patch.object(argparse.ArgumentParser, "parse_args", capture), mock.patch.object(
        argparse.ArgumentParser, "parse_known_args", capture
    ):
        try:
            module.parse_args([])
        except SystemExit:
            pass
    return captured[0]


def parsers() -> dict[str, argparse.ArgumentParser]:
    """``{"hfmagic": ..., "hfmagic upscale": ..., ..., "examples/train_sr.py": ...}``."""
    from hfmagic.cli import build_parser

    main = build_parser()
    out = {"hfmagic": main}
    sub_action = next(a for a in main._actions if isinstance(a, argparse._SubParsersAction))
    out.update({f"hfmagic {name}": sub for name, sub in sub_action.choices.items()})
    out.update({f"examples/{name}": example_parser(name) for name in EXAMPLES})
    return out


def option_strings(parser: argparse.ArgumentParser) -> set[str]:
    """Every flag (``--tile``, ``-h`` left out) and positional name of ``parser``."""
    names = set()
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        names |= set(action.option_strings) if action.option_strings else {action.metavar or action.dest}
    return names


def _entry(action: argparse.Action) -> str:
    if action.option_strings:
        metavar = "" if action.nargs == 0 else " " + (action.metavar or action.dest.upper()).replace("|", "/")
        name = ", ".join(f"`{s}{metavar}`" for s in action.option_strings)
    else:
        name = f"`{action.metavar or action.dest}`" + (" (one or more)" if action.nargs in ("+", "*") else "")
    help_text = " ".join((action.help or "").replace("%%", "%").split())
    if "%(default)s" in help_text:
        help_text = help_text.replace("%(default)s", str(action.default))
    elif action.option_strings and action.default not in (None, False, argparse.SUPPRESS, []) and "default" not in help_text.lower():
        help_text += f" Default: `{action.default}`."
    if action.choices and not isinstance(action.choices, dict):
        help_text += " Choices: " + ", ".join(f"`{c}`" for c in action.choices) + "."
    return f"- {name}: {help_text}".rstrip()


def render() -> str:
    lines = [
        "# Command-line reference",
        "",
        "Every `hfmagic` command and example script with all its flags, generated from the argparse",
        "parsers by `python docs/gen_cli.py` (a test checks that this page names every flag).",
        "`hfmagic COMMAND --help` and `python examples/SCRIPT --help` print the same.",
        "",
    ]
    os.environ["COLUMNS"] = "100"  # argparse wraps the usage to the terminal: a fixed width, a stable page
    for name, parser in parsers().items():
        parser.prog = f"python {name}" if name.endswith(".py") else name
        lines += [f"## `{name}`", ""]
        if parser.description:
            lines += [" ".join(parser.description.split()), ""]
        usage = parser.format_usage().replace("usage: ", "").strip()
        lines += ["```text", usage, "```", ""]
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            lines.append(_entry(action))
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    (ROOT / "docs" / "cli.md").write_text(render(), encoding="utf-8")
    print(f"wrote {ROOT / 'docs' / 'cli.md'}")
