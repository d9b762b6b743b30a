#!/bin/sh
# tests/cli_run.sh - runs the built `tapegrad` program: exit codes, error
# messages, the JSON output (checked with Python against math done by hand),
# the trace and the DOT file. Usage: cli_run.sh PATH/TO/tapegrad
set -u
TG="$1"
TMP=$(mktemp -d) || exit 1
trap 'rm -rf "$TMP"' EXIT
fails=0

# expect RC ARGS... : runs tapegrad, checks the exit status
expect() {
    want=$1
    shift
    "$TG" "$@" >"$TMP/out" 2>"$TMP/err"
    got=$?
    if [ "$got" -ne "$want" ]; then
        echo "FAIL: tapegrad $* exited $got, want $want"
        cat "$TMP/err"
        fails=$((fails + 1))
    fi
}
# contains FILE TEXT : the file holds the text
contains() {
    if ! grep -qF -- "$2" "$TMP/$1"; then
        echo "FAIL: $1 lacks '$2'"
        cat "$TMP/$1"
        fails=$((fails + 1))
    fi
}
lines() { # FILE N : the file has N lines
    n=$(wc -l <"$TMP/$1")
    [ "$n" -eq "$2" ] || { echo "FAIL: $1 has $n lines, want $2"; fails=$((fails + 1)); }
}

expect 0 --help
contains out "explain"
expect 0 explain --help
contains out "usage: tapegrad explain EXPR"
expect 2
expect 2 frobnicate
contains err "unknown command 'frobnicate'"
expect 2 explain
contains err "no expression given"
expect 2 explain 'x + * y' x=1 y=2
contains err "tapegrad explain: unexpected '*' at column 5"
contains err "      ^"
expect 2 explain 'w*x' w=1
contains err "no value given for variable 'x'"
lines err 1
expect 2 explain 'x' x=abc
contains err "bad value for 'x'"
expect 2 explain 'x' x=1 --frob
expect 1 explain 'log(x)' x=-2
contains err "domain error: log of a negative number (-2) at column 1"
expect 1 explain '1/(x-1)' x=1
contains err "division by zero at column 2"
expect 1 explain 'sqrt(x)' x=-1
contains err "sqrt of a negative number"

# d/dx (x*y + sin x) = y + cos x,  d/dy = x
expect 0 explain 'x*y + sin(x)' x=0.5 y=2 --json
python3 - "$TMP/out" <<'PY' || fails=$((fails + 1))
import json, math, sys
d = json.load(open(sys.argv[1]))
x, y = 0.5, 2.0
want = {"value": x * y + math.sin(x), "x": y + math.cos(x), "y": x}
assert abs(d["value"] - want["value"]) < 1e-14, d
for k in "xy":
    assert abs(d["grad"][k] - want[k]) < 1e-14, (k, d)
    assert abs(d["numeric"][k] - want[k]) < 1e-7, (k, d)
assert set(d) == {"value", "grad", "numeric", "check"}, d
PY

# the trace of the tutorial's neuron, and its graph
expect 0 explain '(sigmoid(w*x + b) - t)^2' w=0.5 x=2 b=-0.5 t=1 --trace --dot "$TMP/g.dot"
contains out "where v1 = w*x, v2 = w*x + b, v3 = sigmoid(w*x + b)"
contains out "dDiv/dv2 += dv3/dv2 * dDiv/dv3 = 0.235004 * -0.755081 = -0.177447"
contains out "dDiv/dw += dv1/dw * dDiv/dv1 = 2 * -0.177447 = -0.354894"
contains out "dDiv/dw        -0.35489383469854"
contains g.dot 'label="dv3/dv2 = 0.235004"'
if command -v dot >/dev/null 2>&1; then
    dot -Tsvg "$TMP/g.dot" -o "$TMP/g.svg" || { echo "FAIL: dot rejected g.dot"; fails=$((fails + 1)); }
else
    echo "note: graphviz dot not found; DOT syntax not checked"
fi
# fan-out: d/dx (x*x + x) = 2x + 1 = 7, accumulated over two consumers
expect 0 explain 'x*x + x' x=3 --trace
contains out "(sum of 2 contributions)"
contains out "dDiv/dx        7"

# --hessian: x^2*y at (1, 2): d2/dx2 = 2y = 4, d2/dxdy = 2x = 2, d2/dy2 = 0
expect 0 explain --help
contains out "--hessian"
expect 0 explain 'x^2*y' x=1 y=2 --hessian
contains out "second partial"
contains out "d2Div/dx^2     4 "
contains out "d2Div/dx dy    2 "
contains out "d2Div/dy^2     0 "
expect 0 explain 'x^2*y' x=1 y=2 --hessian --json
python3 - "$TMP/out" <<'PY' || fails=$((fails + 1))
import json, sys
d = json.load(open(sys.argv[1]))
x, y = 1.0, 2.0
want = {"x": {"x": 2 * y, "y": 2 * x}, "y": {"x": 2 * x, "y": 0.0}}
for a in "xy":
    for b in "xy":
        assert abs(d["hessian"][a][b] - want[a][b]) < 1e-14, (a, b, d)
        assert abs(d["hessian_numeric"][a][b] - want[a][b]) < 1e-7, (a, b, d)
assert set(d) == {"value", "grad", "numeric", "check", "hessian", "hessian_numeric"}, d
PY
# too many variables for --hessian: a usage error naming the limit, no output
vars=""
expr="a0"
i=1
while [ $i -le 32 ]; do expr="$expr+a$i"; vars="$vars a$i=1"; i=$((i + 1)); done
expect 2 explain "$expr" a0=1 $vars --hessian
contains err "tapegrad explain: --hessian takes at most 32 variables, the expression has 33"
lines out 0
# outside the domain at x - h: the numeric entry is nan, said so; JSON null
expect 0 explain 'log(x)' x=1e-7 --hessian
contains out "nan"
contains out "(nan: the expression is not defined at x +- h"

# the op-table gradient check as a table
expect 0 gradcheck --op tanh --repeats 2
contains out "tanh                   4"
contains out "1 ops checked, 1 passed, 0 failed"
expect 2 gradcheck --op no_such_op
expect 2 gradcheck --repeats 0
expect 0 gradcheck --help

# --html: a self-contained page (no network); Graphviz's SVG when dot is on PATH,
# else the library's layout with a note; the variables' gradients in its data
expect 2 explain 'x' x=1 --html
contains err "--html needs a file name"
expect 1 explain 'x*y' x=1 y=2 --html "$TMP/no/such/dir/p.html"
contains err "cannot write '$TMP/no/such/dir/p.html'"
expect 0 explain 'x*y + sin(x)' x=0.5 y=2 --html "$TMP/p.html"
contains p.html '<script type="application/json" id="tg-data">'
contains p.html '"label":"x","kind":"param"'
! grep -q 'src="http\|href="http' "$TMP/p.html" || { echo "FAIL: the page fetches something"; fails=$((fails + 1)); }
if command -v dot >/dev/null 2>&1; then
    contains p.html "Graph laid out by Graphviz (dot)."
fi
PATH=/nonexistent "$TG" explain 'x*y' x=1 y=2 --html "$TMP/p2.html" >"$TMP/out" 2>"$TMP/err" ||
    { echo "FAIL: explain --html without dot"; fails=$((fails + 1)); }
contains err "the page uses tapegrad's own layout"
contains p2.html "own layered layout"

[ "$fails" -eq 0 ] && echo "cli_run: all passed"
exit "$fails"
