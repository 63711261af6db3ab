"""One module per ``avseld`` subcommand; each defines ``add_arguments(parser)`` and ``run(args) -> int``.

Modules here must not import torch at module level: the CLI imports only the chosen command.
"""
