"""The bundle's entry point: the same ``main`` as the ``backstory-desktop`` command."""

import os
import sys

from backstory_desktop.cli import main

# A windowed executable (the wizard's on Windows and macOS) starts without
# standard streams; anything written to them would raise, so they go nowhere.
for stream_name in ("stdout", "stderr"):
    if getattr(sys, stream_name) is None:
        setattr(sys, stream_name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115

sys.exit(main())
