#!/bin/sh
# tests/browser/run.sh - the `browser` suite: tapegrad's HTML pages in a real
# browser (the system Chromium, driven by puppeteer-core; nothing is downloaded).
# Usage: run.sh BUILD_DIR SOURCE_DIR
# Exit 77 (skipped) only when node or Chromium is missing; a missing
# node_modules is an error that says to run `npm ci` in tests/browser.
build=$1
src=$2
here="$src/tests/browser"
if ! command -v node >/dev/null 2>&1; then
    echo "SKIP: node is not installed (apt-get install nodejs npm)"
    exit 77
fi
chrome=${CHROMIUM:-}
if [ -z "$chrome" ]; then
    for c in /usr/bin/chromium /usr/bin/chromium-browser; do
        [ -x "$c" ] && chrome=$c && break
    done
fi
if [ -z "$chrome" ] || [ ! -x "$chrome" ]; then
    echo "SKIP: Chromium is not installed (apt-get install chromium, or set CHROMIUM)"
    exit 77
fi
if [ ! -d "$here/node_modules/puppeteer-core" ]; then
    echo "FAIL: puppeteer-core is not installed: run 'npm ci' in $here"
    exit 1
fi
export PUPPETEER_SKIP_DOWNLOAD=1
exec node "$here/pages.test.js" --chromium "$chrome" --build "$build" --source "$src"
