"""``python -m nnscratch.cli``: the ``nnscratch`` command."""

import sys

from nnscratch.cli import main

sys.exit(main())
