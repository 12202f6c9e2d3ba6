"""``python -m utils ...``: see :mod:`utils.cli`."""
import sys

from utils.cli import main

sys.exit(main())
