#!/bin/sh
# Keeps the README true: its C block must equal readme_example.c, and the output
# it quotes must be what the compiled program prints.
# usage: check.sh README.md readme_example.c ./readme_example
set -eu
readme=$1 src=$2 prog=$3
sed -n '/^```c$/,/^```$/p' "$readme" | sed '1d;$d' | diff -u - "$src" ||
    { echo "README's C block differs from $src"; exit 1; }
out=$("$prog")
grep -qF "It prints \`$out\`." "$readme" || { echo "README does not quote the output: $out"; exit 1; }
echo "README example: ok ($out)"
