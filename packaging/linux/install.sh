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
here=$(CDPATH='' cd -- "$(dirname -- "$0")" && pwd)
# The XDG base directory rules ignore a relative XDG_DATA_HOME.
case ${XDG_DATA_HOME:-} in
    /*) data_home=$XDG_DATA_HOME ;;
    *) data_home=$HOME/.local/share ;;
esac
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

usage() {
    printf '%s\n' "Usage: ./install.sh to install Backstory Desktop for the current user, or" \
        "       ./install.sh --uninstall to remove it again (settings and sign-ins are kept)."
}

our_link() {
    [ -L "$bin_link" ] && [ "$(readlink "$bin_link")" = "$lib_dir/$name" ]
}

uninstall() {
    if [ ! -e "$lib_dir" ] && [ ! -e "$desktop_file" ] && ! our_link; then
        printf '%s\n' "Backstory Desktop is not installed in $lib_dir, so there is nothing to remove."
        return
    fi
    rm -rf "$lib_dir"
    # Only our own link: a command that pipx or `pip install --user` put there stays.
    if our_link; then
        rm -f "$bin_link"
    fi
    rm -f "$desktop_file"
    for icon in "$icons_dir"/*/apps/$name.png; do
        rm -f "$icon"
    done
    refresh_caches
    printf '%s\n' "Removed Backstory Desktop; settings, sign-ins and practice orgs were kept."
}

install() {
    # Everything is checked before anything is changed, so a failed install leaves the last one.
    if [ ! -x "$here/$name/$name" ]; then
        printf '%s\n' "No program found at $here/$name/$name, so run install.sh from the unpacked tarball." >&2
        exit 1
    fi
    if [ ! -f "$here/$name.desktop" ] || [ ! -d "$here/icons/hicolor" ]; then
        printf '%s\n' "The menu entry or the icons are missing beside $here/install.sh, so unpack the whole tarball again." >&2
        exit 1
    fi
    case "$here/" in
        "$lib_dir/"*)
            printf '%s\n' "The tarball is unpacked in $lib_dir, which install.sh replaces, so unpack it in another folder." >&2
            exit 1 ;;
    esac
    if { [ -e "$bin_link" ] || [ -L "$bin_link" ]; } && ! our_link; then
        printf '%s\n' "$bin_link belongs to another install of Backstory Desktop (pipx or pip), so remove that one first (pipx uninstall backstory-desktop)." >&2
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
    # every desktop session's PATH. Inside the Exec quotes \ " ` $ take a backslash, then
    # the whole value is a desktop-entry string, whose backslashes and % are doubled.
    exec_path=$(printf '%s' "$lib_dir/$name" | sed -e 's/[\\"`$]/\\&/g' -e 's/\\/\\\\/g' -e 's/%/%%/g')
    mkdir -p "$(dirname "$desktop_file")"
    while IFS= read -r line; do
        case $line in
            Exec=*) printf 'Exec="%s"\n' "$exec_path" ;;
            *) printf '%s\n' "$line" ;;
        esac
    done < "$here/$name.desktop" > "$desktop_file.new"
    mv "$desktop_file.new" "$desktop_file"

    refresh_caches
    printf '%s\n' "Installed Backstory Desktop: find it in the applications menu, or run $bin_link."
    case ":$PATH:" in
        *":$(dirname "$bin_link"):"*) ;;
        *) printf '%s\n' "$(dirname "$bin_link") is not on your PATH, so type the full path above to start it from a terminal." ;;
    esac
}

if [ $# -gt 1 ]; then
    usage >&2
    exit 2
fi
case "${1:-}" in
    "") install ;;
    --uninstall) uninstall ;;
    -h | --help) usage ;;
    *)
        printf '%s\n' "Unknown option $1: run ./install.sh to install, or ./install.sh --uninstall to remove." >&2
        exit 2
        ;;
esac
