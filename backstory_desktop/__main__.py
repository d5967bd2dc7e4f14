"""Allow ``python -m backstory_desktop``."""

import sys

from backstory_desktop.cli import main

sys.exit(main())
