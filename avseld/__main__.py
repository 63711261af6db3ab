"""``python -m avseld``: the same as the ``avseld`` command."""

import sys

from avseld.cli import main

sys.exit(main())
