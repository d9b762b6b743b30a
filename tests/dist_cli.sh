#!/bin/sh
# `mpirun -np 2 tapegrad train ... --dist` (cli/dist.c): only rank 0 prints, the
# per-epoch losses and the final scores equal those of one process with the same
# options (f32: within 1e-5), and the saved model loads.
#   dist_cli.sh MPIRUN TAPEGRAD DATA_DIR
set -u
MPIRUN=$1 TG=$2 DATA=$3
DIR=$(mktemp -d) || exit 1
trap 'rm -rf "$DIR"' EXIT
fail() { echo "dist_cli.sh: $*"; exit 1; }
set -- "$DATA/blobs3.csv" --target species --epochs 3 --batch 16 --optimizer sgd --lr 0.1
"$TG" train "$@" --save "$DIR/one.safetensors" >"$DIR/one.txt" || fail "single process failed"
"$MPIRUN" --allow-run-as-root --oversubscribe --mca btl self,vader -np 2 \
    "$TG" train "$@" --dist --save "$DIR/two.safetensors" >"$DIR/two.txt" || fail "--dist failed"
cat "$DIR/two.txt"
[ "$(grep -c '^epoch 1/3' "$DIR/two.txt")" = 1 ] || fail "not exactly one rank printed"
grep -q '^data-parallel: 2 ranks' "$DIR/two.txt" || fail "no data-parallel header"
grep -E '^(epoch|train:)' "$DIR/one.txt" | sed 's/  [0-9.]*s  .*//' >"$DIR/a"
grep -E '^(epoch|train:)' "$DIR/two.txt" | sed 's/  [0-9.]*s  .*//' >"$DIR/b"
[ "$(wc -l <"$DIR/a")" = 4 ] || fail "expected 3 epoch lines and a score"
paste -d' ' "$DIR/a" "$DIR/b" | awk '{ for (i = 1; i <= NF / 2; i++) {
    a = $i; b = $(i + NF / 2); gsub(/[%(),]/, "", a); gsub(/[%(),]/, "", b);
    if (a + 0 == a && (a - b > 1e-5 || b - a > 1e-5)) { print "differs: " $0; exit 1 } } }' ||
    fail "--dist and one process differ"
"$TG" eval "$DIR/two.safetensors" "$DATA/blobs3.csv" --target species >/dev/null ||
    fail "the model --dist saved does not load"
echo "dist_cli.sh: ok"
