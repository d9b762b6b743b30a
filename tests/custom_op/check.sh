#!/bin/sh
# Builds docs/custom-ops.md's example as a user would: the page's first C block
# must equal examples/custom_op.c; the library is installed into a scratch
# directory (meson install --destdir) and the example compiled against it
# through pkg-config, then run (it exits 1 when its gradient check fails).
# usage: check.sh PAGE.md EXAMPLE.c BUILD_ROOT PREFIX LIBDIR
set -eu
page=$1 src=$2 build=$3 prefix=$4 libdir=$5
awk '/^```c$/ {on = 1; next} on && /^```$/ {exit} on' "$page" | diff -u - "$src" ||
    { echo "the first C block of $page differs from $src"; exit 1; }
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
meson install -C "$build" --destdir "$dest" --no-rebuild --quiet >/dev/null
root=$dest$prefix
export PKG_CONFIG_PATH="$root/$libdir/pkgconfig"
flags=$(pkg-config --define-variable=prefix="$root" --cflags --libs tapegrad)
# shellcheck disable=SC2086 # flags are words
${CC:-cc} -std=c11 -Wall -Wextra -Werror "$src" $flags -lm -o "$dest/custom_op"
LD_LIBRARY_PATH="$root/$libdir" "$dest/custom_op"
echo "custom-ops example: built against the installed library through pkg-config, and passed"
