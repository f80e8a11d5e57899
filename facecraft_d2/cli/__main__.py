# Copyright (c) facecraft_d2 contributors.
"""``python -m facecraft_d2.cli`` = the ``facecraft`` console script."""
import sys

from . import main

sys.exit(main())
