#!/usr/bin/env bash
# Topic feeds' cost: `bulletin build` of one corpus without topics and with
# TOPICS [[topics]] (two keywords each, taken from the generator's topic
# words, so some match many articles and some few).
#
#   bench/topics.sh N [RUNS]        e.g. bench/topics.sh 1000000 3
#
# Per round, interleaved: a cold build (empty output folder, no build cache)
# of the corpus's feeds.toml, then of feeds-topics.toml (the same config plus
# the topics, beside it). Prints a Markdown table with the ratio to the build
# without topics (also saved in bench/results/topics-N-<time>/table.md).
#
# Environment: TOPICS (20), CORPUS (a corpus folder to use instead of
# bench/corpus-N, e.g. one on another disk), SECTIONS (100), SEED (1), NOW,
# SKIP_BUILD=1 to use the binary as it is.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

N="${1:?usage: bench/topics.sh N [RUNS]}"
RUNS="${2:-3}"
TOPICS="${TOPICS:-20}"
SECTIONS="${SECTIONS:-100}"
NOW="${NOW:-$NOW_DEFAULT}"
CORPUS="${CORPUS:-$(corpus_dir "$N" "$SECTIONS")}"

ensure_time
ensure_corpus "$CORPUS" "$N" "$SECTIONS"
if [[ "${SKIP_BUILD:-}" != 1 ]]; then ensure_bulletin; else use_bulletin; fi

# The same config plus the topics (the generator's TOPICS words, in order).
"$PYTHON" - "$BENCH" "$CORPUS" "$TOPICS" <<'PY' || die "cannot write feeds-topics.toml"
import sys
sys.path.insert(0, sys.argv[1])
import gen_corpus
corpus, count = sys.argv[2], int(sys.argv[3])
words = list(dict.fromkeys(gen_corpus.TOPICS))
base = open(f"{corpus}/feeds.toml", encoding="utf-8").read()
head, sep, tail = base.partition("[digest]")
topics = "".join(
    f'[[topics]]\nid = "t{i}"\ntitle = "{words[2 * i]}"\n'
    f'keywords = ["{words[2 * i]}", "{words[2 * i + 1]}"]\n\n'
    for i in range(count)
)
open(f"{corpus}/feeds-topics.toml", "w", encoding="utf-8").write(head + topics + sep + tail)
PY

RESULTS="$BENCH/results/topics-$N-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$RESULTS"
TSV="$RESULTS/measurements.tsv"
: >"$TSV"
INFO="$(machine_info)"
JSONL="$CORPUS/articles.jsonl"
say "warming the page cache ($(du -h "$JSONL" | cut -f1)) ..."
cat "$JSONL" >/dev/null

for run in $(seq 1 "$RUNS"); do
  say "round $run/$RUNS ..."
  for variant in "no topics:feeds.toml" "$TOPICS topics:feeds-topics.toml"; do
    label="bulletin build (${variant%%:*})"
    rm -rf "$CORPUS/public" "$CORPUS/.bulletin/cache"
    cat "$JSONL" >/dev/null
    measure "$TSV" "$label" "$run" -- \
      "$BULLETIN" build --config "$CORPUS/${variant#*:}" --now "$NOW" --no-ping
  done
done

{
  echo "### topic feeds: $N articles ($(du -h "$JSONL" | cut -f1) JSONL, $SECTIONS sections), cold builds, $RUNS runs each, interleaved"
  echo
  "$PYTHON" "$BENCH/table.py" "$TSV" --floor "bulletin build (no topics)" --ratio-title "wall ratio vs no topics"
  echo
  echo "$INFO"
  echo "- load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- with topics, bulletin says: $(tail -1 "$RESULTS/bulletin build ($TOPICS topics).1.out")"
  echo "- topic feeds written: $(find "$CORPUS/public/feeds/topics" -name rss.xml | wc -l), items in them: $(cat "$CORPUS"/public/feeds/topics/*/rss.xml | grep -c '<item>')"
  echo "- raw measurements: ${RESULTS#"$ROOT"/}/measurements.tsv"
} | tee "$RESULTS/table.md"
