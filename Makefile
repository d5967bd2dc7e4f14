# Build targets beside the Python tooling: the desktop bundle and the icons. The README's
# quick start and test commands need none of them.
PYTHON ?= python3

.PHONY: bundle bundle-smoke-test icons

# The desktop bundle for this system, its size report, its package and its smoke test
# (packaging/build.py says what each step does).
bundle:
	$(PYTHON) packaging/build.py

# The smoke test alone, on a package built before: make bundle-smoke-test PACKAGE=dist/...
bundle-smoke-test:
	$(PYTHON) packaging/build.py --smoke-test-only "$(PACKAGE)"

# The PNG, ICO and ICNS icons, rendered again from resources/icons/backstory-desktop.svg.
icons:
	.venv/bin/python packaging/make_icons.py
