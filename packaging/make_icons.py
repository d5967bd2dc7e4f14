"""Render the application icon from its SVG to the PNG, ICO and ICNS files that installers use.

Run it from anywhere after changing ``resources/icons/backstory-desktop.svg``, and
commit what it writes::

    python packaging/make_icons.py

It writes, under ``resources/icons/``:

- ``hicolor/NxN/apps/backstory-desktop.png`` for N in 16, 24, 32, 48, 64, 128, 256
  and 512: the freedesktop icon theme layout, also loaded as the window icon;
- ``backstory-desktop.ico``: the Windows icon, one PNG entry per size from 16 to 256
  (Windows Vista and later read PNG entries);
- ``backstory-desktop.icns``: the macOS icon, with PNG entries ic07 (128 px), ic08 (256),
  ic09 (512), ic10 (1024) and their Retina pairs ic11 (32), ic12 (64), ic13 (256) and
  ic14 (512).

Both containers are written here from the PNGs, because Qt's ICO writer stores one
bitmap per file and its ICNS writer picks the entries itself. The SVG is rendered
with QSvgRenderer on the offscreen platform, so no display is needed. For the same
SVG and Qt release the output is byte for byte the same, so a rerun that changes
nothing leaves the files as they are.
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

ICONS = Path(__file__).resolve().parent.parent / "resources" / "icons"
NAME = "backstory-desktop"
SVG = ICONS / f"{NAME}.svg"

# The sizes of the freedesktop PNGs; backstory_desktop.bundled.ICON_SIZES lists the same.
PNG_SIZES = (16, 24, 32, 48, 64, 128, 256, 512)
# An ICO entry stores its width in one byte, where 0 means 256, so 256 is the maximum.
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
# The ICNS entry types that hold a PNG, and the pixel size of each.
ICNS_TYPES = (
    (b"ic07", 128),
    (b"ic08", 256),
    (b"ic09", 512),
    (b"ic10", 1024),
    (b"ic11", 32),
    (b"ic12", 64),
    (b"ic13", 256),
    (b"ic14", 512),
)


def png_path(size: int) -> Path:
    """Return where the PNG of ``size`` pixels goes in the hicolor theme layout."""
    return ICONS / "hicolor" / f"{size}x{size}" / "apps" / f"{NAME}.png"


def render_png(size: int) -> bytes:
    """Render the SVG to a square PNG of ``size`` pixels with a transparent background."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QImage, QImageWriter, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise SystemExit(f"{SVG} is not a valid SVG file, so fix it and run this script again.")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()

    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QImageWriter(buffer, QByteArray(b"png"))
    if not writer.write(image):
        raise SystemExit(f"Qt could not encode the {size} px icon as PNG: {writer.errorString()}")
    return bytes(data.data())


def ico_bytes(pngs: dict[int, bytes]) -> bytes:
    """Pack PNGs into a Windows ICO file: an ICONDIR, one 16-byte entry per image, then the images."""
    header = struct.pack("<HHH", 0, 1, len(pngs))
    offset = len(header) + 16 * len(pngs)
    entries, images = b"", b""
    for size, png in sorted(pngs.items()):
        byte_size = 0 if size == 256 else size
        entries += struct.pack("<BBBBHHII", byte_size, byte_size, 0, 0, 1, 32, len(png), offset)
        images += png
        offset += len(png)
    return header + entries + images


def icns_bytes(entries: list[tuple[bytes, bytes]]) -> bytes:
    """Pack (type, PNG) pairs into a macOS ICNS file; lengths are big-endian and include headers."""
    body = b"".join(kind + struct.pack(">I", 8 + len(png)) + png for kind, png in entries)
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` unless it already contains exactly that; return whether it wrote."""
    if path.is_file() and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return True


def main() -> int:
    """Render every size and write the PNG, ICO and ICNS files; print each file written."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    # QSvgRenderer and the PNG writer need a QGuiApplication, kept alive while they run.
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    sizes = sorted({*PNG_SIZES, *ICO_SIZES, *(size for _kind, size in ICNS_TYPES)})
    pngs = {size: render_png(size) for size in sizes}

    outputs = {png_path(size): pngs[size] for size in PNG_SIZES}
    outputs[ICONS / f"{NAME}.ico"] = ico_bytes({size: pngs[size] for size in ICO_SIZES})
    outputs[ICONS / f"{NAME}.icns"] = icns_bytes([(kind, pngs[size]) for kind, size in ICNS_TYPES])
    for path, data in outputs.items():
        state = "written" if write_if_changed(path, data) else "unchanged"
        print(f"{state:>9}  {path.relative_to(ICONS.parent.parent)}  ({len(data)} bytes)")
    app.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
