#!/usr/bin/env bash
# SMTP delivery throughput against Postfix smtp-sink on a free local port.
#
#   bench/smtp.sh [MESSAGES] [CONCURRENCIES]     default: 20000 "1 4 16"
#
# For each concurrency C:
#   (a) smtp-source: MESSAGES messages of MSG_BYTES (default: the mean size of
#       bulletin's digests in the dry run, so every sender moves the same bytes) over C sessions (-d: each
#       session stays connected and sends message after message);
#   (b) bench/peer_smtplib.py: C threads, one smtplib connection each,
#       MESSAGES prebuilt messages of MSG_BYTES;
#   (c) bulletin digest --send with MESSAGES subscribers, [smtp] connections
#       = C, a fresh state database each time, --now one minute after the
#       corpus's newest article (so every section has news in the window).
# Also times one `bulletin digest --dry-run` of the same digest (compose +
# writing the previews) to separate composition from delivery.
# The whole command against smtp-source, on loopback or through a link with
# latency, one command per case: bench/send.sh.
#
# Corpus: bench/corpus-$ARTICLES-s$SECTIONS (default 10000 articles, 10
# sections, so that nearly every subscriber has something new).
# Environment: ARTICLES (10000), SECTIONS (10), SEED (1), SKIP_BUILD=1.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

MESSAGES="${1:-20000}"
CONCURRENCIES="${2:-1 4 16}"
ARTICLES="${ARTICLES:-10000}"
SECTIONS="${SECTIONS:-10}"
CORPUS="$BENCH/corpus-$ARTICLES-s$SECTIONS"
SITE="$CORPUS/smtp-$MESSAGES"
SINK=/usr/sbin/smtp-sink
SOURCE=/usr/sbin/smtp-source

if [[ ! -x "$SINK" || ! -x "$SOURCE" ]]; then
  say "installing postfix (for smtp-sink, smtp-source) ..."
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null || die "cannot install postfix"
fi
ensure_time
ensure_corpus "$CORPUS" "$ARTICLES" "$SECTIONS"
ensure_corpus "$SITE" "$ARTICLES" "$SECTIONS" --subscribers "$MESSAGES" --no-articles --articles-path ../articles.jsonl
if [[ "${SKIP_BUILD:-}" == 1 ]]; then use_bulletin; else ensure_bulletin; fi

# --now: one minute after the newest article.
NOW="$(now_after_newest "$CORPUS/articles.jsonl")"
say "--now $NOW"

PORT="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$SINK" -u nobody 127.0.0.1:"$PORT" 256 &
SINK_PID=$!
trap 'kill "$SINK_PID" 2>/dev/null' EXIT
for _ in $(seq 50); do
  "$PYTHON" -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1).close()" 2>/dev/null && break
  sleep 0.1
done
say "smtp-sink (pid $SINK_PID) on 127.0.0.1:$PORT"

RESULTS="$BENCH/results/smtp-$MESSAGES-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$RESULTS"
TSV="$RESULTS/measurements.tsv"
: >"$TSV"
INFO="$(machine_info)"
cat "$CORPUS/articles.jsonl" >/dev/null

config_for() {  # config_for C -> path of a config with port and connections set
  local c="$1" path="$SITE/feeds-c$1.toml"
  sed -e "s/^port = .*/port = $PORT/" -e "s/^connections = .*/connections = $c/" \
      -e "s|^state = .*|state = \"state-c$c/state.sqlite\"|" "$SITE/feeds.toml" >"$path"
  echo "$path"
}

# Composition alone: a dry run of the same digest (no state: everyone is new).
rm -rf "$SITE/dry-run" "$SITE"/state*
measure "$TSV" "bulletin digest --dry-run (compose + write previews)" 1 -- \
  "$BULLETIN" digest --config "$SITE/feeds.toml" --dry-run "$SITE/dry-run" --now "$NOW"
DRY_EMAILS="$(cat "$RESULTS/bulletin digest --dry-run (compose + write previews).1."{out,err} | sed -n 's/.*: \([0-9]*\) emails.*/\1/p' | head -1)"
EML_KB="$(find "$SITE/dry-run" -maxdepth 1 -name '*.eml' -printf '%s\n' 2>/dev/null | awk '{s+=$1; n++} END {if (n) printf "%.1f", s/n/1024}')"
EML_BYTES="$(find "$SITE/dry-run" -maxdepth 1 -name '*.eml' -printf '%s\n' 2>/dev/null | awk '{s+=$1; n++} END {if (n) printf "%d", s/n}')"
MSG_BYTES="${MSG_BYTES:-${EML_BYTES:-10240}}"

for c in $CONCURRENCIES; do
  say "concurrency $c ..."
  measure "$TSV" "smtp-source C=$c" 1 -- \
    "$SOURCE" -s "$c" -m "$MESSAGES" -l "$MSG_BYTES" -d -f digest@news.example.cn -t reader@example.com 127.0.0.1:"$PORT"
  measure "$TSV" "python smtplib C=$c" 1 -- \
    "$PYTHON" "$BENCH/peer_smtplib.py" --port "$PORT" --connections "$c" --messages "$MESSAGES" --size "$MSG_BYTES"
  cfg="$(config_for "$c")"
  rm -rf "$SITE/state-c$c"
  # -v prints "sent <id> to <addr>" per message; stamp_lines.py times them
  # (first and last), separating delivery from loading and composing.
  measure "$TSV" "bulletin digest --send C=$c" 1 -- bash -c \
    '"$1" digest --config "$2" --send --now "$3" -v 2>&1 | "$4" "$5"; exit "${PIPESTATUS[0]}"' \
    _ "$BULLETIN" "$cfg" "$NOW" "$PYTHON" "$BENCH/stamp_lines.py"
done

{
  echo "### SMTP delivery to smtp-sink: $MESSAGES messages; bulletin digest over $ARTICLES articles, $SECTIONS sections, --now $NOW"
  echo
  echo "| sender | connections | messages | wall s | CPU s | peak RSS MB | msgs/s |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
  "$PYTHON" - "$TSV" "$RESULTS" "$MESSAGES" "${DRY_EMAILS:-0}" <<'EOF'
import re, sys
tsv, results, messages, dry = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
for line in open(tsv, encoding="utf-8"):
    label, run, wall, cpu, rss, rc = line.rstrip("\n").split("\t")
    wall, cpu, rss = float(wall), float(cpu), float(rss) / 1024
    m = re.search(r"C=(\d+)", label)
    conns = m.group(1) if m else "-"
    name = re.sub(r" C=\d+", "", label)
    count = messages
    if "dry-run" in label:
        count = dry
    elif "bulletin" in label:
        text = open(f"{results}/{label}.{run}.out").read() + open(f"{results}/{label}.{run}.err").read()
        m = re.search(r": (\d+) sent", text)
        count = int(m.group(1)) if m else 0
    rate = f"{count / wall:.0f}" if rc == "0" and count else f"FAILED (exit {rc})" if rc != "0" else "0"
    print(f"| {name} | {conns} | {count} | {wall:.2f} | {cpu:.2f} | {rss:.0f} | {rate} |")
    if "bulletin" in label and "dry-run" not in label and rc == "0":
        m = re.search(r"stamp: (\d+) 'sent' lines, first at ([0-9.]+) s, last at ([0-9.]+) s", text)
        if m:
            n, first, last = int(m.group(1)), float(m.group(2)), float(m.group(3))
            rate = (n - 1) / (last - first) if last > first else float("inf")
            print(f"| ↳ bulletin delivery phase only (first to last 'sent') | {conns} | {n} | {last - first:.2f} | | | {rate:.0f} |")
EOF
  echo
  echo "- smtp-source and smtplib send messages of $MSG_BYTES bytes; bulletin's digest messages average ${EML_KB:-?} KB (from the dry run)."
  echo "- bulletin's wall includes loading the corpus, composing every message and fixing them in the state DB before the first is sent (CPU and RSS include the small line-timing filter); the ↳ row times only the deliveries (first to last 'sent' line of -v). The dry-run row is load + compose + writing .eml/.html files."
  for c in $CONCURRENCIES; do
    echo "- bulletin C=$c says: $(cat "$RESULTS/bulletin digest --send C=$c.1."{out,err} | grep -E '^digest |error|stamp:' | tr '\n' ' ')"
  done
  echo "$INFO"
  echo "- load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- raw measurements: ${RESULTS#"$ROOT"/}/measurements.tsv"
} | tee "$RESULTS/table.md"
