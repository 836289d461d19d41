"""``python -m idnode.cli``."""

import sys

from idnode.cli import main

sys.exit(main())
