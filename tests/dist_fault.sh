#!/bin/sh
# A rank killed mid-training (tests/dist_fault.c): the job stops within a bounded
# time with an error, the last checkpoint on disk is whole, and resuming from it
# ends with the same parameters as a run that was never interrupted.
#   dist_fault.sh MPIRUN DIST_FAULT
set -u
MPIRUN=$1 PROG=$2
DIR=$(mktemp -d) || exit 1
trap 'rm -rf "$DIR"' EXIT
run() { "$MPIRUN" --allow-run-as-root --oversubscribe --mca btl self,vader -np 2 "$PROG" "$@"; }
fail() { echo "dist_fault.sh: $*"; exit 1; }

run train "$DIR/a.ckpt" "$DIR/a.out" || fail "the uninterrupted run failed"
# 3 epochs of 4 batches: rank 1 dies after step 6 of 12
t0=$(date +%s)
timeout 120 "$MPIRUN" --allow-run-as-root --oversubscribe --mca btl self,vader -np 2 \
    "$PROG" train "$DIR/b.ckpt" "$DIR/b.out" 6 1 >"$DIR/log" 2>&1
rc=$? t1=$(date +%s)
cat "$DIR/log"
[ "$rc" -ne 0 ] || fail "the job with a killed rank exited 0"
[ "$rc" -ne 124 ] || fail "the job with a killed rank hung (killed by timeout after 120 s)"
[ $((t1 - t0)) -le 60 ] || fail "the job took $((t1 - t0)) s to stop"
grep -qi "signal 9\|killed\|no answer" "$DIR/log" || fail "no error names the dead rank"
[ ! -e "$DIR/b.out" ] || fail "the interrupted run wrote its final output"
step=$("$PROG" intact "$DIR/b.ckpt") || fail "the last checkpoint is damaged"
echo "last checkpoint: step $step"
[ "$step" -ge 5 ] && [ "$step" -le 6 ] || fail "the checkpoint is at step $step, not 5 or 6"
run train "$DIR/b.ckpt" "$DIR/b.out" || fail "the resumed run failed"
"$PROG" same "$DIR/a.out" "$DIR/b.out" || fail "resumed and uninterrupted runs differ"
# resuming a finished run changes nothing
run train "$DIR/b.ckpt" "$DIR/c.out" || fail "resuming a finished run failed"
"$PROG" same "$DIR/a.out" "$DIR/c.out" || fail "resuming a finished run changed the parameters"
echo "dist_fault.sh: ok"
