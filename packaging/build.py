"""Build the desktop bundle of Backstory Desktop, report its size, package it and smoke-test it.

    python3 packaging/build.py            # or: make bundle

Steps, on Linux, Windows and macOS alike:

1. Make a clean build environment, ``build/bundle-venv``, and install the project
   (not editable) with its ``bundle`` extra, which bounds PyInstaller's version.
2. Run PyInstaller on ``packaging/backstory-desktop.spec``: ``dist/backstory-desktop/``,
   and on macOS ``dist/Backstory Desktop.app``.
3. Write ``dist/bundle-size.txt``: the total and what dominates it.
4. Package it. On Linux that is an AppImage when ``appimagetool`` is on the PATH,
   else a tarball with the desktop entry, the icons and an install script. On
   Windows it is a zip of the folder, and on macOS a zip of the .app.
5. Smoke-test the package as an admin would meet it, unpacked in a temporary
   folder, offscreen, with a new data folder: ``--version`` prints the version,
   the wizard opens and saves a picture of its first page, ``rehearse --json
   --scenario ready`` passes on a new practice org, and ``diagnose --json`` names
   a keyring backend.

The build writes under ``build/`` and ``dist/``, and setuptools adds its egg-info at the
top of the checkout. The smoke test runs the app with a new home folder. Signing comes after
this script: see packaging/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bundle_rules

ROOT = bundle_rules.ROOT
BUILD = ROOT / "build"
DIST = ROOT / "dist"
SPEC = ROOT / "packaging" / "backstory-desktop.spec"
LINUX_FILES = ROOT / "resources" / "linux"
ICONS = ROOT / "resources" / "icons"
# The icon's and the desktop entry's name in the freedesktop theme and menus.
ICON_NAME = "backstory-desktop"
DESKTOP_ENTRY = LINUX_FILES / f"{ICON_NAME}.desktop"
# Each smoke-test command gets this long; the rehearsal seeds and checks a whole practice org.
SMOKE_TIMEOUT_SECONDS = 600
LARGEST_FILE_COUNT = 15
SIZE_REPORT = "bundle-size.txt"
SMOKE_PICTURE = "smoke-test-first-page.png"
# The keyring backend, as `diagnose` names it, that stores secrets on this system, with
# the problem keyring reports for it when the modules it needs were not importable.
SYSTEM_KEYRING = {
    "win32": ("Windows WinVaultKeyring", "Requires Windows and pywin32"),
    "darwin": ("macOS Keyring", "Security API unavailable"),
}.get(sys.platform, ("SecretService Keyring", "SecretStorage required"))


class BuildError(Exception):
    """A step of the build failed; the message names the step and what to look at."""


def main(argv: list[str] | None = None) -> int:
    """Build, package and smoke-test the bundle, or only smoke-test a package; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", default=sys.executable,
                        help="Python 3.11+ that makes the build environment (default: this one)")
    parser.add_argument("--reuse-env", action="store_true",
                        help="keep an existing build/bundle-venv and only reinstall the project into it")
    parser.add_argument("--skip-smoke-test", action="store_true", help="build and package only")
    parser.add_argument("--smoke-test-only", type=Path, metavar="PACKAGE",
                        help="only smoke-test this tarball, zip or AppImage")
    args = parser.parse_args(argv)
    try:
        DIST.mkdir(exist_ok=True)
        if args.smoke_test_only:
            smoke_test(args.smoke_test_only.resolve())
            return 0
        remove_earlier_outputs()
        python = build_environment(Path(args.python), reuse=args.reuse_env)
        bundle = run_pyinstaller(python)
        report = size_report(bundle)
        (DIST / SIZE_REPORT).write_text(report, encoding="utf-8")
        print(report)
        package = make_package(bundle)
        print(f"Package: {package}")
        if not args.skip_smoke_test:
            try:
                smoke_test(package)
            except BuildError:
                # A package that failed its smoke test must not look like a release.
                package.replace(package.with_name(package.name + ".failed"))
                raise
    except BuildError as error:
        print(f"build.py: {error}", file=sys.stderr)
        return 1
    except (OSError, tarfile.TarError, zipfile.BadZipFile, EOFError) as error:
        print(f"build.py: {error.__class__.__name__}: {error}", file=sys.stderr)
        return 1
    return 0


def run(
    command: list[str], *, step: str, check: bool = True, **options: Any
) -> subprocess.CompletedProcess[str]:
    """Run one command of a step; fail the build with the step's name when it fails or times out."""
    print(f"[{step}] {' '.join(str(part) for part in command)}", flush=True)
    try:
        result: subprocess.CompletedProcess[str] = subprocess.run(command, text=True, check=False, **options)
    except subprocess.TimeoutExpired as error:
        raise BuildError(f"{step} timed out after {error.timeout:g} seconds.") from error
    except OSError as error:
        raise BuildError(f"{step} could not start {command[0]}: {error.strerror}.") from error
    if check and result.returncode != 0:
        output = ((result.stdout or "") + (result.stderr or ""))[-4000:]
        raise BuildError(f"{step} failed with exit status {result.returncode}.\n{output}")
    return result


def remove_earlier_outputs() -> None:
    """Delete what an earlier build of this version left in dist/, so nothing stale looks current."""
    for pattern in (f"{bundle_rules.EXECUTABLE}-{bundle_rules.product_version()}-*",
                    f"Backstory_Desktop-{bundle_rules.product_version()}-*", SIZE_REPORT, SMOKE_PICTURE):
        for path in DIST.glob(pattern):
            path.unlink()


# -- build ---------------------------------------------------------------------


def build_environment(base_python: Path, *, reuse: bool) -> Path:
    """Make build/bundle-venv with the project and PyInstaller; return its Python."""
    venv = BUILD / "bundle-venv"
    python = venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    # Written after a complete install, so that --reuse-env never reuses a half-made environment.
    complete = venv / ".complete"
    # setuptools builds the wheel in build/lib and never removes a file that has left the
    # tree, so a file deleted from the checkout would still reach the bundle.
    for leftover in [BUILD / "lib", *BUILD.glob("bdist.*"), *ROOT.glob("*.egg-info")]:
        shutil.rmtree(leftover, ignore_errors=True)
    if reuse and complete.exists():
        # The project's own code changes between builds; its dependencies rarely do.
        run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall", str(ROOT)],
            step="build environment")
        return python
    # Checked before the old environment goes, so a wrong --python costs nothing.
    run([str(base_python), "-c", "import sys; sys.exit(sys.version_info < (3, 11))"],
        step=f"build environment: {base_python} must be Python 3.11 or newer")
    shutil.rmtree(venv, ignore_errors=True)
    run([str(base_python), "-m", "venv", str(venv)], step="build environment")
    run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"], step="build environment")
    run([str(python), "-m", "pip", "install", "--quiet", f"{ROOT}[bundle]"], step="build environment")
    complete.touch()
    return python


def run_pyinstaller(python: Path) -> Path:
    """Build the bundle folder from the spec; return it."""
    shutil.rmtree(DIST / bundle_rules.EXECUTABLE, ignore_errors=True)
    run([str(python), "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
         "--distpath", str(DIST), "--workpath", str(BUILD / "pyinstaller"), str(SPEC)],
        # Not from the checkout: the bundle must carry what `pip install .` installed.
        step="PyInstaller", cwd=BUILD)
    bundle = DIST / bundle_rules.EXECUTABLE
    if not executable_in(bundle).exists():
        raise BuildError(f"PyInstaller made no executable in {bundle}.")
    return bundle


def executable_in(folder: Path, name: str = bundle_rules.EXECUTABLE) -> Path:
    return folder / (f"{name}.exe" if sys.platform == "win32" else name)


# -- size ----------------------------------------------------------------------


def size_report(bundle: Path) -> str:
    """Describe the bundle's size: the total, by component, and the largest files."""
    files = [path for path in bundle.rglob("*") if path.is_file() and not path.is_symlink()]
    sizes = {path: path.stat().st_size for path in files}
    by_component: Counter[str] = Counter()
    for path, size in sizes.items():
        by_component[_component(path.relative_to(bundle))] += size
    total = sum(sizes.values())
    lines = [
        f"Backstory Desktop {bundle_rules.product_version()} bundle for {platform.system()} "
        f"{platform.machine()}: {_megabytes(total)} in {len(files)} files ({bundle})",
        "",
        "By component:",
    ]
    for component, size in by_component.most_common():
        lines.append(f"  {_megabytes(size):>10}  {size / total:6.1%}  {component}")
    lines += ["", f"The {LARGEST_FILE_COUNT} largest files:"]
    for path, size in sorted(sizes.items(), key=lambda item: -item[1])[:LARGEST_FILE_COUNT]:
        lines.append(f"  {_megabytes(size):>10}  {path.relative_to(bundle).as_posix()}")
    return "\n".join(lines) + "\n"


def _component(relative: Path) -> str:
    """Name what a file belongs to: a Qt library or plugin type, a Python package, or the file itself."""
    parts = relative.parts
    if parts[0] == "_internal" and len(parts) > 1:
        parts = parts[1:]
    framework = next((part for part in parts if part.endswith(".framework")), None)
    if framework:
        return f"Qt library {framework.removesuffix('.framework')}"
    if parts[0] == "PySide6" and len(parts) > 2 and parts[1] == "Qt":
        if parts[2] == "lib":
            return f"Qt library {parts[-1].split('.')[0]}"
        return f"Qt {parts[2]}" + (f"/{parts[3]}" if parts[2] == "plugins" and len(parts) > 4 else "")
    if len(parts) > 1:
        return f"{parts[0]}/"
    # A shared library or the executable on its own: libpython, OpenSSL, the bootloader.
    return parts[0].split(".so")[0]


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:.1f} MB"


# -- packages ------------------------------------------------------------------


def make_package(bundle: Path) -> Path:
    """Package the bundle for this system; return the file made."""
    version = bundle_rules.product_version()
    machine = platform.machine().lower() or "unknown"
    if sys.platform == "win32":
        return _zip_folder(bundle, DIST / f"{bundle_rules.EXECUTABLE}-{version}-windows-{machine}.zip")
    if sys.platform == "darwin":
        # ditto keeps the symbolic links and signatures of an .app, which zipfile does not.
        app = DIST / f"{bundle_rules.APP_NAME}.app"
        target = DIST / f"{bundle_rules.EXECUTABLE}-{version}-macos-{machine}.zip"
        run(["ditto", "-c", "-k", "--keepParent", str(app), str(_partial(target))], step="zip")
        return _partial(target).replace(target)
    appimagetool = shutil.which("appimagetool")
    if appimagetool:
        return _appimage(bundle, appimagetool, DIST / f"Backstory_Desktop-{version}-{machine}.AppImage")
    print("appimagetool is not on the PATH, so the Linux package is a tarball.")
    return _tarball(bundle, DIST / f"{bundle_rules.EXECUTABLE}-{version}-linux-{machine}.tar.gz")


def _tarball(bundle: Path, target: Path) -> Path:
    """Write the bundle with the desktop entry, the icons and install.sh under one top folder."""
    top = target.name.removesuffix(".tar.gz")
    partial = _partial(target)
    with tarfile.open(partial, "w:gz") as archive:
        archive.add(bundle, arcname=f"{top}/{bundle_rules.EXECUTABLE}")
        archive.add(DESKTOP_ENTRY, arcname=f"{top}/{DESKTOP_ENTRY.name}")
        archive.add(ROOT / "packaging" / "linux" / "install.sh", arcname=f"{top}/install.sh")
        archive.add(ICONS / "hicolor", arcname=f"{top}/icons/hicolor")
    return partial.replace(target)


def _partial(target: Path) -> Path:
    """Return where a package is written before it is complete, so no half-written one looks finished."""
    return target.with_name(target.name + ".partial")


def _appimage(bundle: Path, appimagetool: str, target: Path) -> Path:
    """Lay out an AppDir around the bundle and let appimagetool pack it."""
    appdir = BUILD / "AppDir"
    shutil.rmtree(appdir, ignore_errors=True)
    shutil.copytree(bundle, appdir / "usr" / "lib" / bundle_rules.EXECUTABLE, symlinks=True)
    shutil.copy2(DESKTOP_ENTRY, appdir / DESKTOP_ENTRY.name)
    shutil.copy2(ICONS / "hicolor" / "256x256" / "apps" / f"{ICON_NAME}.png", appdir / f"{ICON_NAME}.png")
    shutil.copytree(ICONS / "hicolor", appdir / "usr" / "share" / "icons" / "hicolor")
    # appimagetool looks for the AppStream description under the desktop entry's name.
    (appdir / "usr" / "share" / "metainfo").mkdir(parents=True)
    shutil.copy2(LINUX_FILES / "com.backstory.desktop.metainfo.xml",
                 appdir / "usr" / "share" / "metainfo" / f"{ICON_NAME}.appdata.xml")
    app_run = appdir / "AppRun"
    app_run.write_text(
        '#!/bin/sh\nhere="$(dirname "$(readlink -f "$0")")"\n'
        f'exec "$here/usr/lib/{bundle_rules.EXECUTABLE}/{bundle_rules.EXECUTABLE}" "$@"\n',
        encoding="utf-8",
    )
    app_run.chmod(0o755)
    partial = _partial(target)
    run([appimagetool, str(appdir), str(partial)], step="AppImage",
        env={**os.environ, "ARCH": platform.machine()})
    return partial.replace(target)


def _zip_folder(folder: Path, target: Path) -> Path:
    partial = _partial(target)
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, Path(folder.name) / path.relative_to(folder))
    return partial.replace(target)


# -- smoke test ----------------------------------------------------------------


def smoke_test(package: Path) -> None:
    """Unpack the package in a temporary folder and check that it starts and works offscreen."""
    if not package.is_file():
        raise BuildError(f"smoke test: the package {package} does not exist.")
    with tempfile.TemporaryDirectory(prefix="backstory-smoke-", ignore_cleanup_errors=True) as scratch_name:
        scratch = Path(scratch_name)
        executable = _unpack(package, scratch / "unpacked")
        home = scratch / "home"
        home.mkdir()
        left_out = ("PYTHON", "QT_", "BACKSTORY_DESKTOP_", "XDG_", "VIRTUAL_ENV")
        env = {key: value for key, value in os.environ.items() if not key.startswith(left_out)}
        env.update({
            "QT_QPA_PLATFORM": "offscreen", "BACKSTORY_DESKTOP_HOME": str(home),
            # The app and Qt write caches under the home folder; a new one keeps the build's own clean.
            "HOME": str(home), "USERPROFILE": str(home),
            # An AppImage then runs without FUSE, which build machines often lack.
            "APPIMAGE_EXTRACT_AND_RUN": "1",
        })

        def smoke(step: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
            return run([str(executable), *args], step=f"smoke test: {step}", env=env, cwd=scratch,
                       capture_output=True, timeout=SMOKE_TIMEOUT_SECONDS, check=check)

        version = smoke("version", "--version").stdout.strip()
        expected = f"{bundle_rules.EXECUTABLE} {bundle_rules.product_version()}"
        if version != expected:
            raise BuildError(f"smoke test: --version printed {version!r}, not {expected!r}.")

        picture = scratch / "first-page.png"
        smoke("wizard", "gui", "--screenshot", str(picture))
        if not picture.is_file() or picture.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
            raise BuildError(f"smoke test: the wizard saved no PNG picture at {picture}.")
        shutil.copy2(picture, DIST / SMOKE_PICTURE)

        # rehearse exits 1 when a step failed; its report names the steps.
        rehearsed = smoke("rehearse", "rehearse", "--json", "--scenario", "ready", check=False)
        rehearsal = _json_output(rehearsed, "rehearse")
        failed = [step["name"] for step in rehearsal.get("steps", []) if step.get("status") != "passed"]
        if rehearsed.returncode != 0 or not rehearsal.get("passed") or failed or not rehearsal.get("steps"):
            raise BuildError(f"smoke test: rehearse did not pass (exit status {rehearsed.returncode}); "
                             f"steps not passed: {', '.join(failed) or 'none listed'}.")

        backends, in_use = _system_keyring(_json_output(smoke("diagnose", "diagnose", "--json"), "diagnose"))
    print(f"Smoke test passed: {version}; the wizard opened (picture: {DIST / SMOKE_PICTURE}); "
          f"rehearse passed {len(rehearsal['steps'])} steps; keyring finds {', '.join(backends)} "
          f"and uses {in_use}.")


def _json_output(result: subprocess.CompletedProcess[str], step: str) -> dict[str, Any]:
    try:
        parsed = json.loads(result.stdout)
    except json.JSONDecodeError as error:
        raise BuildError(
            f"smoke test: {step} --json printed no JSON ({error}).\n{result.stderr[-2000:]}"
        ) from error
    if not isinstance(parsed, dict):
        raise BuildError(f"smoke test: {step} --json printed {type(parsed).__name__}, not an object.")
    return parsed


def _system_keyring(report: dict[str, Any]) -> tuple[list[str], str]:
    """Check that keyring in the bundle finds this system's backend with its modules; return what it found.

    Whether the backend can be used depends on the desktop session, so a backend that
    cannot reach its service passes. One whose own modules are missing fails: keyring
    still lists it, with the problem it raises when its import failed.
    """
    keyring = report.get("keyring", {})
    backends = {backend["name"]: backend for backend in keyring.get("backends", [])}
    name, missing_modules = SYSTEM_KEYRING
    if name not in backends:
        raise BuildError(f"smoke test: keyring does not find the {name} backend; it finds "
                         f"{', '.join(backends) or 'none'}.")
    if backends[name]["problem"] == missing_modules:
        raise BuildError(f"smoke test: the {name} backend's modules are missing from the bundle: "
                         f"{missing_modules}.")
    return list(backends), str(keyring.get("backend"))


def _unpack(package: Path, into: Path) -> Path:
    """Unpack a package as its user would; return the command-line executable inside."""
    into.mkdir(parents=True)
    if package.suffix == ".AppImage":
        copy = into / package.name
        shutil.copy2(package, copy)
        copy.chmod(0o755)
        return copy
    try:
        if package.name.endswith(".tar.gz"):
            with tarfile.open(package) as archive:
                archive.extractall(into, filter="tar")
        elif package.suffix == ".zip" and sys.platform == "darwin":
            run(["ditto", "-x", "-k", str(package), str(into)], step="smoke test: unzip")
        elif package.suffix == ".zip":
            with zipfile.ZipFile(package) as archive:
                archive.extractall(into)
        else:
            raise BuildError(f"smoke test: {package} is not a tarball, zip or AppImage.")
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as error:
        raise BuildError(f"smoke test: {package} could not be unpacked: {error}") from error
    found = [path for path in into.rglob(executable_in(Path()).name) if path.is_file()]
    if not found:
        raise BuildError(f"smoke test: {executable_in(Path()).name} not found in {package}.")
    found[0].chmod(found[0].stat().st_mode | 0o111)
    return found[0]


if __name__ == "__main__":
    sys.exit(main())
