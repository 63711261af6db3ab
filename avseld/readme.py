"""Keep the README's study numbers equal to the study's own files.

Every table of study numbers in ``README.md`` sits between two markers naming the file it comes from::

    <!-- figures/table1.md -->
    ...the file's text, written by this script...
    <!-- /figures/table1.md -->

``python -m avseld.readme`` rewrites every such block from the named file (after a study run);
``python -m avseld.readme --check`` exits 1 naming each block that differs (the test suite runs the check),
so README and ``figures/`` cannot drift apart.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- (?P<name>[\w./-]+) -->\n)(?P<body>.*?)(<!-- /(?P=name) -->)", re.S)


def blocks(text: str) -> list[str]:
    """The file names of the README's generated blocks, in order."""
    return [m.group("name") for m in BLOCK.finditer(text)]


def render(text: str, root: Path = REPO) -> str:
    """``text`` with every block's body replaced by the current content of its file (under ``root``)."""
    def fill(m: re.Match) -> str:
        path = root / m.group("name")
        if not path.is_file():
            raise FileNotFoundError(f"README block names {m.group('name')}, which does not exist")
        body = path.read_text()
        return m.group(1) + body + ("" if body.endswith("\n") else "\n") + m.group(4)

    return BLOCK.sub(fill, text)


def stale_blocks(readme: Path = REPO / "README.md", root: Path = REPO) -> list[str]:
    """Names of the blocks whose README text differs from their file."""
    text = readme.read_text()
    fresh = render(text, root)
    old = {m.group("name"): m.group("body") for m in BLOCK.finditer(text)}
    new = {m.group("name"): m.group("body") for m in BLOCK.finditer(fresh)}
    return [n for n in old if old[n] != new[n]]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only report blocks that differ from their files")
    p.add_argument("--readme", type=Path, default=REPO / "README.md")
    args = p.parse_args(argv)
    if args.check:
        stale = stale_blocks(args.readme, args.readme.parent)
        for n in stale:
            print(f"{args.readme}: the block of {n} differs from the file (run python -m avseld.readme)")
        return 1 if stale else 0
    args.readme.write_text(render(args.readme.read_text(), args.readme.parent))
    return 0


if __name__ == "__main__":
    sys.exit(main())
