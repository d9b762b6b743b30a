#!/bin/sh
# tests/axes_mixup.sh - axis lists are `int *`, shapes `int64_t *` (docs/design.md,
# "Naming"). Passing a shape array where axes go (or the reverse) must not compile
# under -Werror=incompatible-pointer-types, the default since GCC 14 and Clang 16
# (older compilers warn by default); the same call with the right types compiles.
# Usage: axes_mixup.sh CC INCLUDE_DIR CONFIG_INCLUDE_DIR
set -u
CC=$1
INC=$2
CFG=$3
TMP=$(mktemp -d) || exit 1
trap 'rm -rf "$TMP"' EXIT
fails=0
try() { # WANT(0 compiles, 1 fails) BODY
    printf '#include <stdint.h>\n#include <tapegrad/tapegrad.h>\nstruct tg_tensor *f(struct tg_tape *T, struct tg_tensor *x);\nstruct tg_tensor *f(struct tg_tape *T, struct tg_tensor *x)\n{\n    %s\n}\n' "$2" >"$TMP/t.c"
    if $CC -std=c11 -Werror=incompatible-pointer-types -I"$INC" -I"$CFG" -c "$TMP/t.c" -o "$TMP/t.o" 2>"$TMP/err"; then got=0; else got=1; fi
    if [ "$got" -ne "$1" ]; then
        echo "FAIL: want $([ "$1" -eq 0 ] && echo success || echo an error) compiling: $2"
        cat "$TMP/err"
        fails=$((fails + 1))
    fi
}
try 0 'int axes[1] = {0}; return tg_sum_axes(T, x, axes, 1, false);'
try 1 'int64_t axes[1] = {0}; return tg_sum_axes(T, x, axes, 1, false);'
try 0 'int perm[2] = {1, 0}; return tg_permute(T, x, 2, perm);'
try 1 'int64_t perm[2] = {1, 0}; return tg_permute(T, x, 2, perm);'
try 0 'int64_t shape[1] = {4}; return tg_reshape(T, x, 1, shape);'
try 1 'int shape[1] = {4}; return tg_reshape(T, x, 1, shape);'
[ "$fails" -eq 0 ] && echo "axes_mixup: all passed"
[ "$fails" -eq 0 ]
