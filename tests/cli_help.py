"""Reading argparse ``--help`` output in tests."""


def help_by_flag(out: str) -> dict[str, str]:
    """``--help`` output -> {flag: its help block, whitespace collapsed} (argparse wraps lines)."""
    blocks, flag = {}, None
    for line in out.split("options:")[1].splitlines():
        if line.startswith("  -"):
            flag = line.split()[0].rstrip(",")
            blocks[flag] = line
        elif flag:
            blocks[flag] += line
    return {name: " ".join(block.split()) for name, block in blocks.items()}
