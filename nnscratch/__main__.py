"""``python -m nnscratch``: the command line (see :mod:`nnscratch.cli`)."""

import sys

from nnscratch.cli import main

if __name__ == "__main__":
    sys.exit(main())
