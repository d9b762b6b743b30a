#!/bin/sh
# tests/cli_teach.sh - what `tapegrad explain` tells a student is right and
# unambiguous: the check column (agree / kink / not finite / DISAGREE, exit 3),
# rules in the expression's own names, names that would read ambiguously
# rejected, a variable given twice rejected, a long expression shown as a window
# in errors, shortest round-trip numbers, `--dot -` as pure DOT on stdout (fed
# to Graphviz's dot when installed).  Usage: cli_teach.sh PATH/TO/tapegrad
set -u
TG="$1"
TMP=$(mktemp -d) || exit 1
trap 'rm -rf "$TMP"' EXIT
fails=0

expect() { # RC ARGS... : runs tapegrad explain, checks the exit status
    want=$1
    shift
    "$TG" explain "$@" >"$TMP/out" 2>"$TMP/err"
    got=$?
    if [ "$got" -ne "$want" ]; then
        echo "FAIL: tapegrad explain $* exited $got, want $want"
        cat "$TMP/out" "$TMP/err"
        fails=$((fails + 1))
    fi
}
contains() { # FILE TEXT
    if ! grep -qF -- "$2" "$TMP/$1"; then
        echo "FAIL: $1 lacks '$2'"
        cat "$TMP/$1"
        fails=$((fails + 1))
    fi
}
lacks() { # FILE TEXT
    if grep -qF -- "$2" "$TMP/$1"; then
        echo "FAIL: $1 has '$2'"
        cat "$TMP/$1"
        fails=$((fails + 1))
    fi
}

# the check column, judged as tg_gradcheck judges an element
expect 0 'relu(x)' x=0
contains out "kink: one-sided 1 (right), 0 (left)"
expect 0 'sqrt(x)' x=0
contains out "not finite"
expect 0 'x/y' x=1 y=1e-300
contains out "not finite"
expect 0 'tanh(w*x + b)' w=0.5 x=0.3 b=-0.5
contains out "agree"
lacks out "DISAGREE"
# h = 1e-6 |x| = 10 at x = 1e7: the central difference of sin is far off
expect 3 'sin(x)' x=1e7
contains out "DISAGREE"
expect 3 'sin(x)' x=1e7 --json
contains out '"check":'
contains out '"x":	"disagree"'

# rules in the node's own names
expect 0 'tanh(w*x + b)' w=0.5 x=2 b=-0.5 --trace
contains out "rule: dw += dv1 * x; dx += dv1 * w"
lacks out "dy * b"
# a parameter is printed as its value, so a variable named like it reads unambiguously
expect 0 'leaky_relu(s, 0.1)' s=-2 --trace
contains out "rule: ds += dv1 * (s > 0 ? 1 : 0.1)"
# names the trace would print ambiguously
expect 2 'tanh(v1*x)' v1=2 x=0.3
contains err "variable 'v1' looks like a name the trace gives"
expect 2 'Div*x' Div=1 x=2
contains err "variable 'Div'"
expect 2 'x*dx' x=1 dx=2
contains err "variable 'dx' reads as the gradient of 'x'"
# a variable given twice
expect 2 'x' x=1 x=2
contains err "'x' is given twice ('x=1' and 'x=2')"
# a long expression: a window around the column, not all of it
deep=$(awk 'BEGIN { for (i = 0; i < 50000; i++) printf "("; printf "x"; for (i = 0; i < 50000; i++) printf ")" }')
expect 2 "$deep" x=1
contains err "nested more than 64 levels deep at column 65"
n=$(wc -c <"$TMP/err")
[ "$n" -lt 400 ] || { echo "FAIL: the error is $n bytes long"; fails=$((fails + 1)); }
# shortest round-trip numbers
expect 0 'x*x' x=0.3
contains out "at          x = 0.3"
contains out "value       Div = 0.09"
# --dot -: stdout is the graph alone, the report on stderr
expect 0 'sin(x^2)' x=1.5 --dot -
head -n 1 "$TMP/out" | grep -qx 'digraph tapegrad {' ||
    { echo "FAIL: --dot - stdout does not start with the graph"; head -3 "$TMP/out"; fails=$((fails + 1)); }
tail -n 1 "$TMP/out" | grep -qx '}' || { echo "FAIL: --dot - stdout has more after the graph"; fails=$((fails + 1)); }
contains err "value       Div = "
if command -v dot >/dev/null 2>&1; then
    "$TG" explain 'sin(x^2)' x=1.5 --dot - 2>/dev/null | dot -Tsvg -o "$TMP/g.svg" ||
        { echo "FAIL: dot rejected the output of --dot -"; fails=$((fails + 1)); }
    grep -q '<svg' "$TMP/g.svg" || { echo "FAIL: dot made no SVG"; fails=$((fails + 1)); }
else
    echo "note: Graphviz dot not installed; the pipe into dot is not run"
fi

# x*x: the input fills two slots, and the trace shows both terms
expect 0 'x*x' x=3 --trace
contains out "dDiv/dx += dv1/dx * dDiv/dv1 = (3 + 3) * 1 = 6"
# smaller edges: one step, no doubled blank in the legend, typo suggestions,
# a CSV given where the model goes
expect 0 'sin(x)' x=1 --trace
contains out "Backward sweep from Div = v1, 1 step (consumers"
expect 0 'x + 3*y' x=1 y=2 --trace
contains out "where v1 = 3*y, v2 = x + 3*y"
lacks out " =  "
"$TG" gradcheck --op tahn >"$TMP/out" 2>"$TMP/err"
[ $? -eq 2 ] || { echo "FAIL: gradcheck --op tahn did not exit 2"; fails=$((fails + 1)); }
contains err "no op named 'tahn'; did you mean 'tanh'?"
[ ! -s "$TMP/out" ] || { echo "FAIL: gradcheck --op tahn printed a table"; fails=$((fails + 1)); }
printf 'x,y,label\n1,2,0\n' >"$TMP/data.csv"
"$TG" eval "$TMP/data.csv" "$TMP/data.csv" >"$TMP/out" 2>"$TMP/err"
[ $? -eq 1 ] || { echo "FAIL: eval of a CSV as a model did not exit 1"; fails=$((fails + 1)); }
contains err "not a safetensors file"

# the --curve plot's legend sits below the plot, not over the accuracy curve
# (a stand-in gnuplot on PATH keeps the script it is given)
mkdir -p "$TMP/bin"
printf '#!/bin/sh\ncat >"%s/plot.gp"\n' "$TMP" >"$TMP/bin/gnuplot"
chmod +x "$TMP/bin/gnuplot"
awk 'BEGIN { print "a,b,label"; for (i = 0; i < 40; i++) printf "%d,%d,%d\n", i % 7, i % 5, i % 2 }' >"$TMP/t.csv"
PATH="$TMP/bin:$PATH" "$TG" train "$TMP/t.csv" --target label --epochs 2 --curve "$TMP/c.csv" \
    >"$TMP/out" 2>"$TMP/err" || { echo "FAIL: train --curve"; cat "$TMP/err"; fails=$((fails + 1)); }
contains plot.gp "set key outside below"
lacks plot.gp "set key top"

if [ "$fails" -ne 0 ]; then
    echo "cli_teach: $fails failure(s)"
    exit 1
fi
echo "cli_teach: all passed"
