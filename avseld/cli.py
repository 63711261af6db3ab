"""The ``avseld`` command line: thin wrappers over the package, one module per subcommand.

Only the chosen subcommand's module is imported, so commands that need no torch start fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from avseld.errors import AvseldError
from avseld.logging_setup import setup_logging

# name -> (module in avseld.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "config": ("config", "print the resolved configuration of a profile"),
    "synth": ("synth", "generate the embedded synthetic dataset in the DCASE 2025 layout"),
    "validate-data": ("validate_data", "check every clip of a dataset root and summarise it"),
    "evaluate": ("evaluate", "score prediction CSVs against reference CSVs (DCASE 2025 metric)"),
    "features": ("features", "extract and cache audio and visual features"),
    "models": ("models", "list the registered model variants with parameter counts"),
    "train": ("train", "train a model variant"),
    "predict": ("predict", "write DCASE prediction CSVs from a trained run"),
    "reproduce": ("reproduce", "run the whole study (notebooks 00-06) with papermill"),
}


def _top_help() -> str:
    lines = [
        "usage: avseld [-v] <command> [options]",
        "",
        "Audio-visual sound event localization and detection (DCASE 2025 Task 3).",
        "",
        "commands:",
    ]
    width = max(len(n) for n in COMMANDS)
    for name, (_, text) in COMMANDS.items():
        lines.append(f"  {name:<{width}}  {text}")
    lines += ["", "Run 'avseld <command> --help' for the options of one command."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = 0
    while argv and argv[0] in ("-v", "--verbose"):
        verbose += 1
        argv.pop(0)
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(_top_help())
        return 0
    name = argv[0]
    if name not in COMMANDS:
        sys.stderr.write(f"avseld: unknown command '{name}'\n\n" + _top_help())
        return 2
    module_name, text = COMMANDS[name]
    try:
        module = importlib.import_module(f"avseld.commands.{module_name}")
    except ModuleNotFoundError as e:
        if e.name == f"avseld.commands.{module_name}":
            sys.stderr.write(f"avseld {name}: not available in this version\n")
            return 2
        raise
    parser = argparse.ArgumentParser(prog=f"avseld {name}", description=text)
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    setup_logging(verbose)
    try:
        return int(module.run(args) or 0)
    except AvseldError as e:
        sys.stderr.write(f"error: {e}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
