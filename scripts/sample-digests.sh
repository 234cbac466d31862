#!/usr/bin/env bash
# Renders sample digests (dry runs) for the measurements of the email
# itself: scripts/spamcheck.sh and scripts/screenshots.sh.
#
#   scripts/sample-digests.sh OUT
#
# writes, each a `digest --dry-run` folder (.eml files, preview/*.html):
#   OUT/zh       the example site (Chinese, feeds.toml + examples/)
#   OUT/starter  a site as `bulletin init` makes it (English, 3 articles)
#   OUT/en       that starter site plus English articles with lead images
#   OUT/signed   the example site with [dkim] (a fresh Ed25519 key)
# The clock is the current time (`init` dates its articles from it), the
# example site's window widened so its 2017 articles are still new: a
# message dated today is what a receiver sees. BULLETIN overrides the
# binary (default target/release/bulletin, built if missing).
set -euo pipefail

out=${1:?usage: scripts/sample-digests.sh OUT}
epoch=$(date -u +%s)
now=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
root="$(cd "$(dirname "$0")/.." && pwd)"
bulletin=${BULLETIN:-$root/target/release/bulletin}
if [ ! -x "$bulletin" ]; then
  (cd "$root" && cargo build --release --quiet)
fi
export BULLETIN_UNSUBSCRIBE_SECRET=${BULLETIN_UNSUBSCRIBE_SECRET:-sample-secret}

rm -rf "$out"
mkdir -p "$out/sites"
out="$(cd "$out" && pwd)"

# The example site, its window wide enough for its articles at NOW.
zh="$out/sites/zh"
mkdir -p "$zh"
cp -r "$root/feeds.toml" "$root/examples" "$root/templates" "$zh/"
sed -i 's/^window = .*/window = "10000d"/' "$zh/feeds.toml"
(cd "$zh" && "$bulletin" digest --dry-run "$out/zh" --now "$now" >/dev/null)

# A starter site, as `init` writes it (its articles are dated before NOW).
starter="$out/sites/starter"
"$bulletin" init "$starter" >/dev/null
(cd "$starter" && "$bulletin" digest --dry-run "$out/starter" --now "$now" >/dev/null)

# The starter site with more English articles, some with a lead image.
en="$out/sites/en"
cp -r "$starter" "$en"
minutes_ago() { date -u -d "@$((epoch - $1 * 60))" +%Y-%m-%dT%H:%M:%SZ; }
cat >"$en/articles/photos.toml" <<EOF
[[articles]]
id = "harbour"
title = "Harbour cranes return as the port reopens after the storm"
section = "news"
url = "/news/harbour.html"
published = "$(minutes_ago 90)"
source = "Port Authority"
author = "Maria Lopez"
image = "https://img.news.example.com/2026/harbour.jpg"
keywords = ["port", "storm", "shipping"]
summary = "Container traffic resumed on Tuesday morning after a three-day closure. Dock workers cleared debris overnight, and the first ships were unloaded by noon while engineers inspected the breakwater."
related = ["local-1"]

[[articles]]
id = "library"
title = "The city library opens a reading room for night-shift workers"
section = "local"
url = "/local/library.html"
published = "$(minutes_ago 150)"
author = "Sam Okafor"
image = "https://img.news.example.com/2026/library.jpg"
keywords = ["library", "local", "feeds"]
summary = "From next month the central branch stays open until 2 a.m. on weekdays, with quiet desks, charging points and free tea."

[[articles]]
id = "seawall"
title = "Council approves a taller seawall for the old harbour"
section = "news"
url = "/news/seawall.html"
published = "$(minutes_ago 14400)"
keywords = ["port", "storm"]
summary = "Work on the two-kilometre wall starts in spring."

[[articles]]
id = "market"
title = "Farmers' market moves indoors for the winter"
section = "local"
url = "/local/market.html"
published = "$(minutes_ago 240)"
keywords = ["market", "local", "storm"]
summary = "Forty stalls will trade in the old tram depot every Saturday until March."
EOF
(cd "$en" && "$bulletin" digest --dry-run "$out/en" --now "$now" >/dev/null)

# The example site signing with DKIM.
signed="$out/sites/signed"
cp -r "$zh" "$signed"
openssl genpkey -algorithm ed25519 -out "$signed/dkim.pem" 2>/dev/null
cat >>"$signed/feeds.toml" <<EOF

[dkim]
domain = "news.example.cn"
selector = "sample"
key_file = "dkim.pem"
EOF
(cd "$signed" && "$bulletin" digest --dry-run "$out/signed" --now "$now" >/dev/null)

for d in zh starter en signed; do
  printf '%s: %s messages\n' "$d" "$(find "$out/$d" -maxdepth 1 -name '*.eml' | wc -l)"
done
