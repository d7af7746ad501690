"""``python -m fugu``: the ``fugu`` command (so ``torchrun -m fugu train ...`` works)."""

import sys

from fugu.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
