#!/bin/sh
# meson install script: installs the example configuration $1 as $2
# (under $DESTDIR) unless a configuration is there already.
set -eu
src=$1
dest=${DESTDIR:-}$2
if [ -e "$dest" ]; then
	[ -n "${MESON_INSTALL_QUIET:-}" ] ||
		echo "Keeping $dest (the example is $src)"
	exit 0
fi
mkdir -p "$(dirname "$dest")"
cp "$src" "$dest"
chmod 0644 "$dest"
[ -n "${MESON_INSTALL_QUIET:-}" ] || echo "Installing $src to $dest"
