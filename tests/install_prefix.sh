#!/bin/sh
# tests/install_prefix.sh - the README's recipe for installing into a prefix of
# your own, followed to the letter: a separate build folder configured with
# --prefix (so an existing `build` keeps its own prefix), `meson install`, then a
# program compiled with pkg-config and run, finding the shared library through
# the rpath taken from pkg-config's libdir. Fails if anything lands outside the
# prefix. Usage: install_prefix.sh SOURCE_DIR   (suite `slow`: a full build)
set -eu
SRC=$(cd "$1" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
PREFIX="$TMP/prefix"
cd "$TMP"
# --- the README's commands ---
meson setup build-install "$SRC" --prefix="$PREFIX" --libdir=lib -Dtests=disabled >/dev/null
meson install -C build-install >/dev/null
export PKG_CONFIG_PATH="$PREFIX/lib/pkgconfig"
cat >prog.c <<'C'
#include <stdio.h>
#include <tapegrad/tapegrad.h>
int main(void)
{
    struct tg_tape *T = tg_tape_new();
    struct tg_tensor *x = tg_tensor_scalar(TG_F64, 3);
    tg_tensor_set_requires_grad(x, true);
    struct tg_tensor *y = tg_mul(T, x, x);
    if (!y || tg_backward(y, NULL)) return 1;
    printf("%g\n", tg_tensor_grad_get(x, 0));
    tg_tensor_free(x);
    tg_tape_free(T);
    return 0;
}
C
cc prog.c $(pkg-config --cflags --libs tapegrad) \
    -Wl,-rpath,"$(pkg-config --variable=libdir tapegrad)" -o prog
# --- checks ---
out=$(./prog)
[ "$out" = 6 ] || { echo "FAIL: the program printed '$out', want 6"; exit 1; }
ldd ./prog | grep -q "$PREFIX/lib/libtapegrad" ||
    { echo "FAIL: the program does not load the library from the prefix:"; ldd ./prog; exit 1; }
[ -f "$PREFIX/include/tapegrad/tapegrad.h" ] || { echo "FAIL: no header in the prefix"; exit 1; }
# meson's install log lists every installed file: all under the prefix
if grep -v "^#" build-install/meson-logs/install-log.txt | grep -v -e "^$PREFIX/" -e "^$PREFIX\$"; then
    echo "FAIL: files installed outside $PREFIX (above)"
    exit 1
fi
echo "install_prefix: installed into $PREFIX and built a program against it"
