"""``python -m wirecheck`` is the ``wirecheck`` command."""

import sys

from .cli import main

if __name__ == "__main__":  # not when a spawned engine process imports this module
    sys.exit(main())
