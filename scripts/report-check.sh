#!/usr/bin/env bash
# Open a rendered report's index.html in headless Chromium (Debian's package), save a
# screenshot, and fail if the page is blank.
#
# usage: scripts/report-check.sh REPORT_DIR OUT.png [HEIGHT] [WIDTH]
set -euo pipefail

if [ $# -lt 2 ]; then
    echo "usage: $0 REPORT_DIR OUT.png [HEIGHT]" >&2
    exit 2
fi
dir=$1
out=$2
height=${3:-3000}
width=${4:-1280}
page="$dir/index.html"
[ -f "$page" ] || { echo "$0: $page not found" >&2; exit 1; }

browser=""
for b in chromium chromium-browser; do
    if command -v "$b" >/dev/null 2>&1; then browser=$b; break; fi
done
if [ -z "$browser" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "$0: installing Debian's chromium" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
        browser=chromium
    else
        echo "$0: chromium not found; install it (apt-get install chromium)" >&2
        exit 1
    fi
fi

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
abs_page=$(cd "$(dirname "$page")" && pwd)/$(basename "$page")
mkdir -p "$(dirname "$out")"
rm -f "$out"
timeout 120 "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --hide-scrollbars --user-data-dir="$profile" --screenshot="$out" \
    --window-size="$width","$height" "file://$abs_page" >/dev/null 2>&1 || true
[ -s "$out" ] || { echo "$0: no screenshot written to $out" >&2; exit 1; }
python3 "$(dirname "$0")/png-not-blank.py" "$out"
