#!/bin/sh
# bench/instructions.sh OLD_BUILD NEW_BUILD - instructions executed (valgrind's
# callgrind, which counts the same on a busy host as on an idle one) by W1, W3, W4
# and W5's tapegrad programs in two builds, and their ratio new/old.
# Example: git archive aa52057 | tar -x -C /tmp/old && (cd /tmp/old && meson setup build
#          && ninja -C build bench/w1_mlp bench/w3_moons bench/w4_chain bench/w5_small)
#          bench/instructions.sh /tmp/old/build build
set -eu
old=$1 new=$2
count() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 >/dev/null |
        sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
}
for w in "w1_mlp --reps 3 --warmup 1" "w3_moons --steps 10" "w4_chain --reps 10 --warmup 1" \
         "w5_small --reps 200 --warmup 10"; do
    set -- $w
    prog=$1
    shift
    a=$(count "$old/bench/$prog" "$@")
    b=$(count "$new/bench/$prog" "$@")
    echo "$prog $* old=$a new=$b ratio=$(echo "scale=4; $b / $a" | bc)"
done
