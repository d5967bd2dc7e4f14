"""The installable package: what `pip install .` and `pipx install .` give.

A wheel is built from a copy of the checkout and installed into a folder of its
own, then run as a user would run what `pip install .` or `pipx install .` gives:
its command, its version and its bundled files.
"""

from __future__ import annotations

import configparser
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest

from backstory_desktop import __version__
from tests.conftest import ROOT

# What a wheel is built from: everything else in a checkout stays out of it.
WHEEL_SOURCES = ("pyproject.toml", "README.md", "backstory_desktop", "resources")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the project's wheel from a copy of the checkout, offline; return its path."""
    source = tmp_path_factory.mktemp("source")
    for name in WHEEL_SOURCES:
        origin = ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(origin, source / name)
    wheels = tmp_path_factory.mktemp("wheels")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--wheel-dir", str(wheels), str(source)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    return next(wheels.glob("*.whl"))


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Install the wheel, without its dependencies, into a folder of its own; return the folder."""
    target = tmp_path_factory.mktemp("installed")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--target", str(target), str(wheel)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    return target


def _run_installed_module(installed: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """Run Python on the installed copy alone, its dependencies taken from this environment.

    Python starts without the site module (-S), so the editable install of the checkout
    in this environment cannot lend the installed copy a module its wheel left out.
    """
    paths = dict.fromkeys([str(installed), sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    return subprocess.run([sys.executable, "-S", *arguments], env=env, cwd=installed.parent,
                          capture_output=True, text=True, timeout=300, check=False)


def test_wheel__version_is_the_package_version(wheel: Path) -> None:
    assert wheel.name.startswith(f"backstory_desktop-{__version__}-")


def test_wheel__commands_are_the_project_scripts(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        entry_points = next(name for name in archive.namelist() if name.endswith("entry_points.txt"))
        parser = configparser.ConfigParser()
        parser.read_string(archive.read(entry_points).decode())
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]

    assert dict(parser["console_scripts"]) == scripts


def test_wheel__carries_every_module(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    modules = {path.relative_to(ROOT).as_posix() for path in (ROOT / "backstory_desktop").rglob("*.py")}

    assert modules - names == set()


def test_wheel__carries_every_resource_file(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    resources = {
        "backstory_desktop/resources/" + path.relative_to(ROOT / "resources").as_posix()
        for path in (ROOT / "resources").rglob("*") if path.is_file()
    }

    assert resources - names == set()


def test_installed__command_prints_the_version(installed: Path) -> None:
    result = _run_installed_module(installed, str(installed / "bin" / "backstory-desktop"), "--version")

    assert result.stdout.strip() == f"backstory-desktop {__version__}"


def test_installed__rehearses_the_ready_org(installed: Path, tmp_path: Path) -> None:
    result = _run_installed_module(installed, "-m", "backstory_desktop", "rehearse", "--json",
                                   "--scenario", "ready", "--db", str(tmp_path / "org.sqlite3"))

    assert json.loads(result.stdout)["passed"] is True


def test_installed__finds_its_own_sample_mailbox(installed: Path) -> None:
    code = ("import json, backstory_desktop.bundled as b; mailbox = b.sample_mailbox_path(); "
            "print(json.dumps([b.__file__, str(mailbox), mailbox.is_file()]))")
    module, mailbox, exists = json.loads(_run_installed_module(installed, "-c", code).stdout)

    assert Path(module).is_relative_to(installed)
    assert Path(mailbox).is_relative_to(installed)
    assert exists


def test_version__metadata_matches_the_package() -> None:
    assert importlib.metadata.version("backstory-desktop") == __version__
