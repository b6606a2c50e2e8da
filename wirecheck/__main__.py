"""``python -m wirecheck`` is the ``wirecheck`` command."""

import sys

from .cli import main

sys.exit(main())
