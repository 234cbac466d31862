#!/usr/bin/env bash
# Screenshots of the built-in digest templates in headless Chromium, for
# docs/screenshots/: the Chinese example site and an English site, each at
# 375 px (a phone) and 600 px (the template's full width).
#
#   scripts/screenshots.sh [OUT]     # default OUT: docs/screenshots
#
# The messages come from scripts/sample-digests.sh. Their lead images point
# at hosts that do not exist (img.example.cn): the HTML part is copied with
# each image URL replaced by a local placeholder (an SVG drawn here, named
# after the image's file), so the screenshots show where images go and how
# they scale. Nothing else in the HTML is changed.
#
# Needs: chromium, fonts-noto-cjk (apt install chromium fonts-noto-cjk).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
out=${1:-$root/docs/screenshots}
work="$(mktemp -d /tmp/bulletin-screenshots.XXXXXX)"
trap 'rm -rf "$work"' EXIT
"$root/scripts/sample-digests.sh" "$work/samples" >/dev/null 2>&1
mkdir -p "$out"

# page LANG MESSAGE: the message's HTML part with local images, as a file.
page() {
  local lang=$1 message=$2 html="$work/$1.html"
  python3 - "$work/samples/$lang/preview/$message.html" "$html" "$work/img" <<'EOF'
import hashlib, os, re, sys
source, target, images = sys.argv[1:]
os.makedirs(images, exist_ok=True)
html = open(source, encoding="utf-8").read()

def placeholder(match):
    url = match.group(1)
    name = re.sub(r"[^A-Za-z0-9_-]", "_", url.rsplit("/", 1)[-1].rsplit(".", 1)[0])
    hue = int(hashlib.sha256(url.encode()).hexdigest()[:4], 16) % 360
    svg = f"""<svg xmlns="http://www.w3.org/2000/svg" width="1104" height="621" viewBox="0 0 1104 621">
<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">
<stop offset="0" stop-color="hsl({hue},55%,62%)"/><stop offset="1" stop-color="hsl({(hue + 40) % 360},60%,32%)"/>
</linearGradient></defs>
<rect width="1104" height="621" fill="url(#g)"/>
<circle cx="820" cy="190" r="90" fill="hsl({(hue + 20) % 360},80%,85%)" opacity="0.85"/>
<path d="M0 621 L300 330 L520 520 L760 300 L1104 621 Z" fill="hsl({hue},35%,22%)" opacity="0.8"/>
<text x="40" y="580" font-family="sans-serif" font-size="34" fill="#ffffff">{name}.jpg (placeholder)</text>
</svg>"""
    path = os.path.join(images, name + ".svg")
    with open(path, "w", encoding="utf-8") as f:
        f.write(svg)
    return f'<img src="file://{path}"'

html, count = re.subn(r'<img src="([^"]+)"', placeholder, html)
assert count > 0, f"{source} has no image"
open(target, "w", encoding="utf-8").write(html)
EOF
  echo "$html"
}

shoot() {
  local html=$1 width=$2 height=$3 png=$4
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --force-device-scale-factor=1 --allow-file-access-from-files \
    --window-size="$width,$height" --screenshot="$png" "file://$html" >/dev/null 2>&1
  printf '%s: %s bytes\n' "${png#"$root"/}" "$(stat -c %s "$png")"
}

zh=$(page zh chen.jing@example.com)
en=$(page en reader@example.com)
shoot "$zh" 375 1400 "$out/digest-zh-375.png"
shoot "$zh" 600 1000 "$out/digest-zh-600.png"
shoot "$en" 375 1400 "$out/digest-en-375.png"
shoot "$en" 600 1000 "$out/digest-en-600.png"
