"""Test setup shared by every layer: Qt runs offscreen, and nothing leaves 127.0.0.1."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
