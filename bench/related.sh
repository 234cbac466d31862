#!/usr/bin/env bash
# Related reads over a large archive: one subscriber to every section, an
# email of up to ITEMS (50) items, related reads ranked for each of them
# over all N articles.
#
#   bench/related.sh N [RUNS]      e.g. bench/related.sh 1000000 3
#
# Times the planning step that `bulletin -v digest` reports ("planned ...
# in X s": building the related-read index over the whole archive plus
# ranking every item's candidates), and the whole dry run for context.
# Uses bench/corpus-N/ (as run.sh makes it) and bench/corpus-N/related-ITEMS/.
# Environment: ITEMS (50), SECTIONS (100), SEED (1),
# NOW (2026-11-01T00:00:00+08:00), SKIP_BUILD=1.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

N="${1:?usage: bench/related.sh N [RUNS]}"
RUNS="${2:-3}"
ITEMS="${ITEMS:-50}"
SECTIONS="${SECTIONS:-100}"
NOW="${NOW:-$NOW_DEFAULT}"
CORPUS="$(corpus_dir "$N" "$SECTIONS")"
SITE="$CORPUS/related-$ITEMS"

ensure_corpus "$CORPUS" "$N" "$SECTIONS"
if [[ "${SKIP_BUILD:-}" == 1 ]]; then use_bulletin; else ensure_bulletin; fi

# The corpus config (its [digest] table) with emails of up to ITEMS items,
# and one subscriber with no section list (every section).
mkdir -p "$SITE"
sed -e 's#^paths = \[.*#paths = ["../articles.jsonl"]#' \
    -e "s#^related = .*#related = 3\nmax_items = $ITEMS#" "$CORPUS/feeds.toml" >"$SITE/feeds.toml"
printf '[[subscribers]]\nemail = "everything@example.com"\n' >"$SITE/subscribers.toml"
export BULLETIN_UNSUBSCRIBE_SECRET=bench
cat "$CORPUS/articles.jsonl" >/dev/null

plans=()
for run in $(seq 1 "$RUNS"); do
  rm -rf "$SITE/dry-run"
  out="$("$BULLETIN" -v digest --config "$SITE/feeds.toml" --now "$NOW" --dry-run "$SITE/dry-run" 2>&1)" \
    || die "digest failed: $out"
  plan="$(sed -n 's/^planned .* in \([0-9.]*\) s$/\1/p' <<<"$out")"
  items="$(sed -n 's/.*emails (\([0-9]*\) items).*/\1/p' <<<"$out")"
  total="$(sed -n 's/.* in \([0-9.]*\) s$/\1/p' <<<"$out" | tail -1)"
  say "run $run: $items items, planned in $plan s (dry run $total s)"
  plans+=("$plan")
done
median="$(printf '%s\n' "${plans[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')"
echo "related reads for $items items over $N articles: index + ranking median $median s (runs: ${plans[*]})"
echo "$(machine_info)"
