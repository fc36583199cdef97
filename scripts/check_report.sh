#!/usr/bin/env bash
# Renders a vsim report.html with headless Chromium into a PNG, so that the page can be
# looked at without a desktop, and checks that it loads nothing from the network.
#
# Usage: scripts/check_report.sh REPORT.html [OUT.png] [WIDTH,HEIGHT]
#   OUT.png        default: REPORT.png beside the report
#   WIDTH,HEIGHT   window size in pixels, default 1200,2400
#
# Installs Debian's `chromium` package with apt-get when no Chromium or Chrome is found.
set -euo pipefail

if [ $# -lt 1 ] || [ "$1" = "-h" ] || [ "$1" = "--help" ]; then
    sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
fi

report=$1
if [ ! -f "$report" ]; then
    echo "error: $report: no such file" >&2
    exit 2
fi
report=$(cd "$(dirname "$report")" && pwd)/$(basename "$report")
out=${2:-${report%.html}.png}
size=${3:-1200,2400}

# A self-contained page: no scripts, styles, images or fonts from elsewhere.
if grep -Eiq '(src|href)="(https?:)?//|@import|url\((["'\'']?)(https?:)?//' "$report"; then
    echo "error: $report references a network resource:" >&2
    grep -Eio '(src|href)="(https?:)?//[^"]*|@import[^;]*|url\([^)]*//[^)]*\)' "$report" | head -5 >&2
    exit 1
fi

find_browser() {
    for b in chromium chromium-browser google-chrome google-chrome-stable; do
        if command -v "$b" >/dev/null 2>&1; then
            command -v "$b"
            return 0
        fi
    done
    return 1
}

if ! browser=$(find_browser); then
    echo "Chromium not found; installing Debian's chromium package with apt-get" >&2
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
    browser=$(find_browser) || { echo "error: chromium is still not available" >&2; exit 1; }
fi

profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
rm -f "$out"
"$browser" --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --hide-scrollbars \
    --user-data-dir="$profile" --window-size="$size" --screenshot="$out" "file://$report" \
    >/dev/null 2>"$profile/chromium.log" || true

if [ ! -s "$out" ]; then
    echo "error: Chromium wrote no screenshot; its log:" >&2
    tail -20 "$profile/chromium.log" >&2
    exit 1
fi
echo "$out"
