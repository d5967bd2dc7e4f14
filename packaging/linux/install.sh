#!/bin/sh
# Install Backstory Desktop for the current user from this unpacked tarball, or remove it.
#
#   ./install.sh              install, or replace an earlier install
#   ./install.sh --uninstall  remove what an install put in place
#
# The program goes to ~/.local/lib/backstory-desktop, a link to it to ~/.local/bin, the
# menu entry to $XDG_DATA_HOME/applications and the icons to $XDG_DATA_HOME/icons/hicolor
# ($XDG_DATA_HOME defaults to ~/.local/share). Nothing needs root, and the admin's
# settings, sign-ins and practice org stay where the app keeps them.
set -eu

name=backstory-desktop
here=$(cd "$(dirname "$0")" && pwd)
data_home=${XDG_DATA_HOME:-$HOME/.local/share}
lib_dir=$HOME/.local/lib/$name
bin_link=$HOME/.local/bin/$name
desktop_file=$data_home/applications/$name.desktop
icons_dir=$data_home/icons/hicolor

refresh_caches() {
    # Menus and icon themes pick up the change without these on most desktops; they only speed it up.
    if command -v update-desktop-database >/dev/null 2>&1; then
        update-desktop-database "$data_home/applications" >/dev/null 2>&1 || true
    fi
    if command -v gtk-update-icon-cache >/dev/null 2>&1 && [ -f "$icons_dir/index.theme" ]; then
        gtk-update-icon-cache -q -t "$icons_dir" >/dev/null 2>&1 || true
    fi
}

uninstall() {
    rm -rf "$lib_dir"
    if [ -L "$bin_link" ]; then
        rm -f "$bin_link"
    fi
    rm -f "$desktop_file"
    for icon in "$icons_dir"/*/apps/$name.png; do
        rm -f "$icon"
    done
    refresh_caches
    echo "Removed Backstory Desktop; settings, sign-ins and practice orgs were kept."
}

install() {
    if [ ! -x "$here/$name/$name" ]; then
        echo "No program found at $here/$name/$name, so run install.sh from the unpacked tarball." >&2
        exit 1
    fi

    # Copy first and swap after, so that a failed copy leaves an earlier install working.
    mkdir -p "$(dirname "$lib_dir")"
    rm -rf "$lib_dir.new"
    cp -R "$here/$name" "$lib_dir.new"
    rm -rf "$lib_dir"
    mv "$lib_dir.new" "$lib_dir"

    mkdir -p "$(dirname "$bin_link")"
    ln -sfn "$lib_dir/$name" "$bin_link"

    mkdir -p "$icons_dir"
    cp -R "$here/icons/hicolor/." "$icons_dir/"

    # The menu starts the program by its full path, because ~/.local/bin is not on
    # every desktop session's PATH.
    mkdir -p "$(dirname "$desktop_file")"
    sed "s|^Exec=.*|Exec=\"$lib_dir/$name\"|" "$here/$name.desktop" > "$desktop_file"

    refresh_caches
    echo "Installed Backstory Desktop: find it in the applications menu, or run $bin_link."
}

case "${1:-}" in
    "") install ;;
    --uninstall) uninstall ;;
    *)
        echo "Unknown option $1: run ./install.sh to install, or ./install.sh --uninstall to remove." >&2
        exit 2
        ;;
esac
