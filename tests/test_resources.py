"""The icon files and the desktop entry that installers take from resources/ are complete and valid."""

from __future__ import annotations

import configparser
import importlib.util
import re
import shutil
import struct
import subprocess
import tomllib
from pathlib import Path
from xml.etree import ElementTree

import pytest

from backstory_desktop import __version__
from backstory_desktop.bundled import (
    ICON_NAME,
    ICON_SIZES,
    desktop_entry_path,
    icon_png_paths,
    icon_svg_path,
    resource_path,
)

ROOT = Path(__file__).resolve().parent.parent
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# The ICNS entry types that hold a PNG, with the pixel size each stands for.
ICNS_PNG_SIZES = {
    b"ic07": 128, b"ic08": 256, b"ic09": 512, b"ic10": 1024,
    b"ic11": 32, b"ic12": 64, b"ic13": 256, b"ic14": 512,
}
DESKTOP_KEYS = (
    "Type", "Name", "GenericName", "Comment", "Exec", "Icon", "Terminal", "Categories",
    "StartupWMClass", "Keywords",
)
# Main categories of the freedesktop menu specification 1.0.
MAIN_CATEGORIES = {
    "AudioVideo", "Audio", "Video", "Development", "Education", "Game", "Graphics", "Network",
    "Office", "Science", "Settings", "System", "Utility",
}


def png_size(data: bytes) -> tuple[int, int]:
    """Return (width, height) from a PNG's IHDR chunk; fail the test when ``data`` is no PNG."""
    assert data[:8] == PNG_SIGNATURE, "not a PNG"
    assert data[12:16] == b"IHDR", "a PNG whose first chunk is not IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def ico_entries(data: bytes) -> list[tuple[int, int, bytes]]:
    """Return (width, height, image) for each entry of an ICO file, as its directory states them."""
    reserved, kind, count = struct.unpack("<HHH", data[:6])
    assert (reserved, kind) == (0, 1), "not an ICO header"
    entries = []
    for index in range(count):
        width, height, _colors, _reserved, _planes, _bits, length, offset = struct.unpack(
            "<BBBBHHII", data[6 + 16 * index: 22 + 16 * index])
        entries.append((width or 256, height or 256, data[offset:offset + length]))
    return entries


def icns_entries(data: bytes) -> list[tuple[bytes, bytes]]:
    """Return (type, data) for each entry of an ICNS file, checking that the lengths add up."""
    assert data[:4] == b"icns", "not an ICNS header"
    assert struct.unpack(">I", data[4:8])[0] == len(data)
    entries, position = [], 8
    while position < len(data):
        kind = data[position:position + 4]
        length = struct.unpack(">I", data[position + 4:position + 8])[0]
        assert length > 8, f"entry {kind!r} is shorter than its header"
        assert position + length <= len(data), f"entry {kind!r} runs past the file"
        entries.append((kind, data[position + 8:position + length]))
        position += length
    return entries


def metainfo_path() -> Path:
    return resource_path("linux", "com.backstory.desktop.metainfo.xml")


def desktop_entry() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(desktop_entry_path(), encoding="utf-8")
    return parser["Desktop Entry"]


def test_icon_pngs__sizes_match_folders() -> None:
    for size, path in icon_png_paths().items():
        assert path.is_file(), f"missing {path}"
        assert png_size(path.read_bytes()) == (size, size), path


def test_icon_svg__is_an_svg_without_text() -> None:
    text = icon_svg_path().read_text(encoding="utf-8")

    assert "<svg" in text
    assert "<text" not in text


def test_ico__entries_are_pngs_of_stated_size() -> None:
    entries = ico_entries(resource_path("icons", f"{ICON_NAME}.ico").read_bytes())

    assert sorted(width for width, _height, _image in entries) == [16, 24, 32, 48, 64, 128, 256]
    for width, height, image in entries:
        assert png_size(image) == (width, height)


def test_ico__entries_match_the_theme_pngs() -> None:
    pngs = icon_png_paths()

    for width, _height, image in ico_entries(resource_path("icons", f"{ICON_NAME}.ico").read_bytes()):
        assert image == pngs[width].read_bytes(), f"the {width} px entry differs from its PNG"


def test_icns__entries_are_pngs_of_type_size() -> None:
    entries = icns_entries(resource_path("icons", f"{ICON_NAME}.icns").read_bytes())

    assert sorted(kind for kind, _image in entries) == sorted(ICNS_PNG_SIZES)
    for kind, image in entries:
        size = ICNS_PNG_SIZES[kind]
        assert png_size(image) == (size, size), kind


def test_icns__entries_match_the_theme_pngs() -> None:
    pngs = icon_png_paths()

    for kind, image in icns_entries(resource_path("icons", f"{ICON_NAME}.icns").read_bytes()):
        size = ICNS_PNG_SIZES[kind]
        if size in pngs:
            assert image == pngs[size].read_bytes(), f"{kind!r} differs from the {size} px PNG"


def test_icon_sizes__match_make_icons() -> None:
    spec = importlib.util.spec_from_file_location("make_icons", ROOT / "packaging" / "make_icons.py")
    assert spec is not None and spec.loader is not None
    make_icons = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_icons)

    assert make_icons.PNG_SIZES == ICON_SIZES
    assert make_icons.NAME == ICON_NAME


def test_desktop_entry__has_the_keys_menus_need() -> None:
    entry = desktop_entry()

    for key in DESKTOP_KEYS:
        assert entry.get(key, "").strip(), f"{key} is missing or empty"
    assert entry["Type"] == "Application"
    assert entry["Name"] == "Backstory Desktop"
    assert entry["Terminal"] == "false"
    assert entry["Icon"] == ICON_NAME


def test_desktop_entry__exec_is_the_installed_command() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

    assert desktop_entry()["Exec"] in project["project"]["scripts"]


def test_desktop_entry__icon_names_bundled_files() -> None:
    name = desktop_entry()["Icon"]

    assert resource_path("icons", f"{name}.svg").is_file()
    for size in ICON_SIZES:
        assert resource_path("icons", "hicolor", f"{size}x{size}", "apps", f"{name}.png").is_file()


def test_desktop_entry__one_main_category() -> None:
    categories = [name for name in desktop_entry()["Categories"].split(";") if name]

    assert len([name for name in categories if name in MAIN_CATEGORIES]) == 1
    assert categories[0] in MAIN_CATEGORIES


def test_desktop_entry__lists_end_with_semicolons() -> None:
    entry = desktop_entry()

    assert entry["Categories"].endswith(";")
    assert entry["Keywords"].endswith(";")


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None,
                    reason="desktop-file-validate (desktop-file-utils) is not installed")
def test_desktop_entry__passes_desktop_file_validate() -> None:
    finished = subprocess.run(["desktop-file-validate", str(desktop_entry_path())],
                              capture_output=True, text=True, timeout=60, check=False)

    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert finished.stdout.strip() == "", finished.stdout


def test_metainfo__names_the_desktop_entry_and_version() -> None:
    component = ElementTree.parse(metainfo_path()).getroot()

    assert metainfo_path().name == f"{component.findtext('id')}.metainfo.xml"
    assert component.findtext("launchable[@type='desktop-id']") == desktop_entry_path().name
    assert component.findtext("provides/binary") == desktop_entry()["Exec"]
    assert component.findtext("name") == desktop_entry()["Name"]
    newest = component.find("releases/release")
    assert newest is not None
    assert newest.get("version") == __version__


@pytest.mark.skipif(shutil.which("appstreamcli") is None, reason="appstreamcli (appstream) is not installed")
def test_metainfo__passes_appstreamcli_validate_tree(tmp_path: Path) -> None:
    share = tmp_path / "usr" / "share"
    (share / "metainfo").mkdir(parents=True)
    (share / "applications").mkdir()
    shutil.copy2(metainfo_path(), share / "metainfo")
    shutil.copy2(desktop_entry_path(), share / "applications")
    shutil.copytree(resource_path("icons", "hicolor"), share / "icons" / "hicolor")

    finished = subprocess.run(["appstreamcli", "validate-tree", "--no-net", str(tmp_path)],
                              capture_output=True, text=True, timeout=60, check=False)

    assert finished.returncode == 0, finished.stdout + finished.stderr


@pytest.fixture
def unpacked_tarball(tmp_path: Path) -> Path:
    """Lay out a folder as the Linux tarball has it, with a stand-in for the bundled program."""
    top = tmp_path / "backstory-desktop-linux"
    program = top / ICON_NAME / ICON_NAME
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\necho started\n", encoding="utf-8")
    program.chmod(0o755)
    shutil.copy2(desktop_entry_path(), top / desktop_entry_path().name)
    shutil.copy2(ROOT / "packaging" / "linux" / "install.sh", top / "install.sh")
    shutil.copytree(resource_path("icons", "hicolor"), top / "icons" / "hicolor")
    return top


def run_install_script(top: Path, home: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    return subprocess.run(["sh", str(top / "install.sh"), *arguments], capture_output=True, text=True,
                          timeout=60, env=environment, check=False)


@pytest.mark.skipif(shutil.which("sh") is None, reason="install.sh needs a POSIX shell")
def test_install_script__installs_for_the_user(unpacked_tarball: Path, tmp_path: Path) -> None:
    home = tmp_path / "home with space"

    finished = run_install_script(unpacked_tarball, home)

    assert finished.returncode == 0, finished.stderr
    program = home / ".local" / "lib" / ICON_NAME / ICON_NAME
    assert program.is_file()
    assert (home / ".local" / "bin" / ICON_NAME).resolve() == program.resolve()
    icons = home / ".local" / "share" / "icons" / "hicolor"
    for size in ICON_SIZES:
        assert (icons / f"{size}x{size}" / "apps" / f"{ICON_NAME}.png").is_file()
    entry = (home / ".local/share/applications" / f"{ICON_NAME}.desktop").read_text(encoding="utf-8")
    assert f'Exec="{program}"\n' in entry
    assert "Icon=backstory-desktop\n" in entry


@pytest.mark.skipif(shutil.which("sh") is None, reason="install.sh needs a POSIX shell")
def test_install_script__uninstall_removes_installed_files(unpacked_tarball: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = home / ".config" / "backstory-desktop" / "settings.toml"
    settings.parent.mkdir(parents=True)
    settings.write_text("", encoding="utf-8")
    assert run_install_script(unpacked_tarball, home).returncode == 0

    finished = run_install_script(unpacked_tarball, home, "--uninstall")

    assert finished.returncode == 0, finished.stderr
    assert not (home / ".local" / "lib" / ICON_NAME).exists()
    assert not (home / ".local" / "bin" / ICON_NAME).exists()
    assert not (home / ".local/share/applications" / f"{ICON_NAME}.desktop").exists()
    assert not list((home / ".local/share/icons/hicolor").glob(f"*/apps/{ICON_NAME}.png"))
    assert settings.is_file()


@pytest.mark.skipif(shutil.which("sh") is None, reason="install.sh needs a POSIX shell")
def test_install_script__without_program_fails(unpacked_tarball: Path, tmp_path: Path) -> None:
    shutil.rmtree(unpacked_tarball / ICON_NAME)

    finished = run_install_script(unpacked_tarball, tmp_path / "home")

    assert finished.returncode == 1
    assert "No program found" in finished.stderr
    assert not (tmp_path / "home" / ".local" / "lib" / ICON_NAME).exists()


def _exec_program(exec_value: str) -> str:
    """Undo the desktop entry's escaping of a quoted Exec value: the string escapes, then the quoting."""
    unescaped = re.sub(r"\\(.)", lambda match: {"s": " ", "n": "\n", "t": "\t", "r": "\r"}.get(
        match.group(1), match.group(1)), exec_value)
    assert unescaped.startswith('"')
    assert unescaped.endswith('"')
    quoted = re.sub(r'\\([\\"`$])', r"\1", unescaped[1:-1])
    return quoted.replace("%%", "%")


@pytest.mark.parametrize("folder", [
    "h a&b", "h|pipe", 'h"quote', "h$dollar", "h%percent", "h\\back", "h`tick",
])
def test_install_script__exec_survives_odd_paths(unpacked_tarball: Path, tmp_path: Path, folder: str) -> None:
    home = tmp_path / folder

    finished = run_install_script(unpacked_tarball, home)

    assert finished.returncode == 0, finished.stderr
    entry = (home / ".local/share/applications" / f"{ICON_NAME}.desktop").read_text(encoding="utf-8")
    exec_value = next(line for line in entry.splitlines() if line.startswith("Exec="))[len("Exec="):]
    assert _exec_program(exec_value) == str(home / ".local" / "lib" / ICON_NAME / ICON_NAME)


@pytest.mark.skipif(shutil.which("sh") is None, reason="install.sh needs a POSIX shell")
def test_install_script__keeps_another_installs_command(unpacked_tarball: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    command = home / ".local" / "bin" / ICON_NAME
    command.parent.mkdir(parents=True)
    command.symlink_to(tmp_path / "pipx" / "venvs" / ICON_NAME / "bin" / ICON_NAME)

    finished = run_install_script(unpacked_tarball, home)

    assert finished.returncode == 1
    assert "another install" in finished.stderr
    assert command.readlink() == tmp_path / "pipx" / "venvs" / ICON_NAME / "bin" / ICON_NAME
    assert not (home / ".local" / "lib" / ICON_NAME).exists()


@pytest.mark.skipif(shutil.which("sh") is None, reason="install.sh needs a POSIX shell")
def test_install_script__incomplete_tarball_changes_nothing(unpacked_tarball: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run_install_script(unpacked_tarball, home).returncode == 0
    program = home / ".local" / "lib" / ICON_NAME / ICON_NAME
    (unpacked_tarball / ICON_NAME / ICON_NAME).write_text("#!/bin/sh\necho newer\n", encoding="utf-8")
    shutil.rmtree(unpacked_tarball / "icons")

    finished = run_install_script(unpacked_tarball, home)

    assert finished.returncode == 1
    assert "unpack the whole tarball again" in finished.stderr
    assert program.read_text(encoding="utf-8") == "#!/bin/sh\necho started\n"


@pytest.mark.skipif(shutil.which("sh") is None, reason="install.sh needs a POSIX shell")
def test_install_script__tarball_inside_target_is_kept(unpacked_tarball: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    inside = home / ".local" / "lib" / ICON_NAME
    inside.parent.mkdir(parents=True)
    shutil.copytree(unpacked_tarball, inside)

    finished = run_install_script(inside, home)

    assert finished.returncode == 1
    assert (inside / "install.sh").is_file()


@pytest.mark.skipif(shutil.which("sh") is None, reason="install.sh needs a POSIX shell")
def test_install_script__uninstall_without_install(unpacked_tarball: Path, tmp_path: Path) -> None:
    finished = run_install_script(unpacked_tarball, tmp_path / "home", "--uninstall")

    assert finished.returncode == 0
    assert "nothing to remove" in finished.stdout
