#!/usr/bin/env bash
# The whole `bulletin digest --send`, start to exit, against Postfix's
# `smtp-source` sending as many messages of the same size over as many
# sessions, both to Postfix's `smtp-sink` — on loopback, or through a link
# with added latency.
#
#   bench/send.sh [MESSAGES] [DELAY_MS]     default: 30000 0
#
#   bench/send.sh 30000        # loopback, 4 connections
#   bench/send.sh 1500 10      # through ../shared/bench/latency_proxy.py
#                              # --delay-ms 10 each way: a 20 ms round trip
#
# MESSAGES subscribers (bench/gen_corpus.py; nearly all get a digest).
# Each round runs, in this order: bulletin (a fresh state database),
# BASELINE (another bulletin binary, e.g. main's, when set), smtp-source
# (-d: each session stays connected and sends message after message) with
# as many messages as bulletin sent, each of the digests' mean size (from a
# dry run for the first 1,000 subscribers). The ratio is bulletin's msg/s (messages sent /
# wall time of the whole command: loading, planning, composing, storing,
# sending, recording) over smtp-source's in the same round; the table shows
# each round and the median.
#
# Environment: CONNECTIONS (4), RUNS (3), ARTICLES (10000), SECTIONS (10),
# SEED (1), BASELINE (path of a bulletin binary measured in the same
# rounds), WORK (where corpora go; default bench/), PROXY (the latency
# proxy; default ../shared/bench/latency_proxy.py), SKIP_BUILD=1.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

MESSAGES="${1:-30000}"
DELAY_MS="${2:-0}"
CONNECTIONS="${CONNECTIONS:-4}"
RUNS="${RUNS:-3}"
ARTICLES="${ARTICLES:-10000}"
SECTIONS="${SECTIONS:-10}"
WORK="${WORK:-$BENCH}"
# ../shared beside the checkout (a work tree sits one level deeper).
PROXY="${PROXY:-$(ls "$ROOT"/../shared/bench/latency_proxy.py "$ROOT"/../../shared/bench/latency_proxy.py 2>/dev/null | head -1)}"
# One folder per line order (regenerating one would remove the other's
# subscriber sites, which live inside it).
CORPUS="$WORK/corpus-$ARTICLES-s$SECTIONS"
[[ "$ORDER" == shuffled ]] || CORPUS="$CORPUS-chrono"
SITE="$CORPUS/send-$MESSAGES"
SINK=/usr/sbin/smtp-sink
SOURCE=/usr/sbin/smtp-source

if [[ ! -x "$SINK" || ! -x "$SOURCE" ]]; then
  say "installing postfix (for smtp-sink, smtp-source) ..."
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null || die "cannot install postfix"
fi
if [[ "$DELAY_MS" != 0 && ! -f "${PROXY:-}" ]]; then
  die "no latency proxy at $PROXY (set PROXY)"
fi
ensure_time
mkdir -p "$WORK"
ensure_corpus "$CORPUS" "$ARTICLES" "$SECTIONS"
ensure_corpus "$SITE" "$ARTICLES" "$SECTIONS" --subscribers "$MESSAGES" --no-articles --articles-path ../articles.jsonl
if [[ "${SKIP_BUILD:-}" == 1 ]]; then use_bulletin; else ensure_bulletin; fi
[[ -z "${BASELINE:-}" || -x "$BASELINE" ]] || die "BASELINE=$BASELINE is not an executable"

# --now: one minute after the newest article.
NOW="$(now_after_newest "$CORPUS/articles.jsonl")"

free_port() { "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() {
  for _ in $(seq 100); do
    "$PYTHON" -c "import socket; socket.create_connection(('127.0.0.1', $1), 1).close()" 2>/dev/null && return
    sleep 0.1
  done
  die "nothing listens on port $1"
}

PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done' EXIT
SINK_PORT="$(free_port)"
"$SINK" -u nobody 127.0.0.1:"$SINK_PORT" 256 &
PIDS+=($!)
wait_port "$SINK_PORT"
PORT="$SINK_PORT"
LINK="loopback"
if [[ "$DELAY_MS" != 0 ]]; then
  PORT="$(free_port)"
  "$PYTHON" "$PROXY" --listen "$PORT" --target 127.0.0.1:"$SINK_PORT" --delay-ms "$DELAY_MS" &
  PIDS+=($!)
  wait_port "$PORT"
  LINK="$((2 * DELAY_MS)) ms round trip (latency_proxy.py --delay-ms $DELAY_MS)"
fi
say "smtp-sink on 127.0.0.1:$SINK_PORT; senders connect to port $PORT ($LINK)"

RESULTS="$BENCH/results/send-$MESSAGES-d$DELAY_MS-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$RESULTS"
TSV="$RESULTS/measurements.tsv"
: >"$TSV"
INFO="$(machine_info)"
cat "$CORPUS/articles.jsonl" >/dev/null

CONFIG="$SITE/feeds-send.toml"
sed -e "s/^port = .*/port = $PORT/" -e "s/^connections = .*/connections = $CONNECTIONS/" \
    -e "s|^state = .*|state = \"state-send/state.sqlite\"|" "$SITE/feeds.toml" >"$CONFIG"

# The digests' mean size, from a dry run for the first 1,000 subscribers.
awk '/^\[\[subscribers\]\]/ { n++ } n <= 1000' "$SITE/subscribers.toml" >"$SITE/subscribers-sample.toml"
sed -e 's|^subscribers = .*|subscribers = "subscribers-sample.toml"|' "$CONFIG" >"$SITE/feeds-sample.toml"
rm -rf "$SITE/state-send" "$SITE/dry-run"
"$BULLETIN" digest --config "$SITE/feeds-sample.toml" --dry-run "$SITE/dry-run" --now "$NOW" -q \
  || die "the dry run failed"
MSG_BYTES="$(find "$SITE/dry-run" -maxdepth 1 -name '*.eml' -printf '%s\n' | awk '{s+=$1; n++} END {if (n) printf "%d", s/n}')"
rm -rf "$SITE/dry-run"
[[ -n "$MSG_BYTES" ]] || die "the dry run wrote no message"
say "digests average $MSG_BYTES bytes"

sent_by() {  # sent_by LABEL RUN: messages the run says it sent
  cat "$RESULTS/$1.$2.out" "$RESULTS/$1.$2.err" | sed -n 's/.*: \([0-9]*\) sent.*/\1/p' | head -1
}

SENT=""
for run in $(seq "$RUNS"); do
  say "round $run/$RUNS ..."
  rm -rf "$SITE/state-send"
  measure "$TSV" "bulletin" "$run" -- "$BULLETIN" digest --config "$CONFIG" --send --now "$NOW"
  SENT="${SENT:-$(sent_by bulletin "$run")}"
  if [[ -n "${BASELINE:-}" ]]; then
    rm -rf "$SITE/state-send"
    measure "$TSV" "baseline" "$run" -- "$BASELINE" digest --config "$CONFIG" --send --now "$NOW"
  fi
  [[ -n "$SENT" && "$SENT" -gt 0 ]] || die "bulletin sent nothing (see $RESULTS/bulletin.$run.err)"
  measure "$TSV" "smtp-source" "$run" -- \
    "$SOURCE" -s "$CONNECTIONS" -m "$SENT" -l "$MSG_BYTES" -d \
      -f digest@news.example.cn -t reader@example.com 127.0.0.1:"$PORT"
done
rm -rf "$SITE/state-send"

{
  echo "### Whole \`digest --send\` vs smtp-source: $SENT messages of ~$MSG_BYTES bytes, $CONNECTIONS connections, $LINK"
  echo
  "$PYTHON" - "$TSV" "$RESULTS" "$SENT" "${BASELINE:-}" <<'EOF'
import statistics, sys
tsv, results, sent, baseline = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
rows = {}
for line in open(tsv, encoding="utf-8"):
    label, run, wall, cpu, rss, rc = line.rstrip("\n").split("\t")
    rows[(label, int(run))] = (float(wall), float(cpu), float(rss) / 1024, int(rc))
def count(label, run):
    if label == "smtp-source":
        return sent
    text = open(f"{results}/{label}.{run}.out").read() + open(f"{results}/{label}.{run}.err").read()
    import re
    m = re.search(r": (\d+) sent", text)
    return int(m.group(1)) if m else 0
labels = ["bulletin"] + (["baseline"] if baseline else []) + ["smtp-source"]
runs = sorted({r for (_, r) in rows})
print("| round | " + " | ".join(f"{l} msg/s (wall s, CPU s, MB)" for l in labels) + " | " +
      " | ".join(f"{l} / smtp-source" for l in labels[:-1]) + " |")
print("| ---: | " + " | ".join("---:" for _ in labels) + " | " + " | ".join("---:" for _ in labels[:-1]) + " |")
ratios = {l: [] for l in labels[:-1]}
rates = {l: [] for l in labels}
for r in runs:
    cells, rate = [], {}
    for l in labels:
        wall, cpu, rss, rc = rows[(l, r)]
        n = count(l, r)
        if rc != 0 or n != sent:
            cells.append(f"FAILED (exit {rc}, {n} sent)")
            continue
        rate[l] = n / wall
        rates[l].append(rate[l])
        cells.append(f"{rate[l]:.0f} ({wall:.2f}, {cpu:.1f}, {rss:.0f})")
    for l in labels[:-1]:
        if l in rate and "smtp-source" in rate:
            ratios[l].append(rate[l] / rate["smtp-source"])
            cells.append(f"{ratios[l][-1]:.2f} ×")
        else:
            cells.append("-")
    print(f"| {r} | " + " | ".join(cells) + " |")
med = lambda xs: f"{statistics.median(xs):.0f}" if xs else "-"
medr = lambda xs: f"**{statistics.median(xs):.2f} ×**" if xs else "-"
print("| median | " + " | ".join(med(rates[l]) for l in labels) + " | " +
      " | ".join(medr(ratios[l]) for l in labels[:-1]) + " |")
EOF
  echo
  echo "- bulletin: $(grep -E '^digest ' "$RESULTS/bulletin.1.out" "$RESULTS/bulletin.1.err" 2>/dev/null | head -1 | cut -d: -f2-)"
  [[ -n "${BASELINE:-}" ]] && echo "- baseline: $BASELINE ($(grep -E '^digest ' "$RESULTS/baseline.1.out" "$RESULTS/baseline.1.err" 2>/dev/null | head -1 | cut -d: -f2-))"
  echo "- corpus: $ARTICLES articles, $SECTIONS sections, $MESSAGES subscribers, --now $NOW"
  echo "$INFO"
  echo "- load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- raw measurements: ${RESULTS#"$ROOT"/}/measurements.tsv"
} | tee "$RESULTS/table.md"
