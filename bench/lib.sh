# Shared helpers for bench/*.sh (sourced, not run).
# shellcheck shell=bash

BENCH="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$BENCH/.." && pwd)"
# The binary under test is a copy: target/release is shared with whoever
# else builds in this work tree, and may change under a running benchmark.
BULLETIN="$BENCH/bin/bulletin"
FLOOR="$BENCH/parse-floor/target/release/parse-floor"
PYTHON="${PYTHON:-python3}"
SEED="${SEED:-1}"
NOW_DEFAULT="2026-11-01T00:00:00+08:00"
export BULLETIN_UNSUBSCRIBE_SECRET="${BULLETIN_UNSUBSCRIBE_SECRET:-bench-secret}"

# ORDER=chronological: articles.jsonl in publication order (as CMSs export),
# a corpus of its own ("-chrono"); the default is shuffled lines.
ORDER="${ORDER:-shuffled}"
# CORPUS_ROOT: where corpora live (default bench/; large ones fit /tmp better).
CORPUS_ROOT="${CORPUS_ROOT:-$BENCH}"

say() { printf '%s\n' "$*" >&2; }
# corpus_dir N SECTIONS: where the corpus of N articles lives (100 sections
# is the default and has no suffix).
corpus_dir() {
  local dir="$CORPUS_ROOT/corpus-$1"
  [[ "$2" == 100 ]] || dir="$dir-s$2"
  [[ "$ORDER" == shuffled ]] || dir="$dir-chrono"
  echo "$dir"
}
die() { say "error: $*"; exit 1; }

# ensure_corpus DIR N SECTIONS [gen_corpus options...]
# (Re)generates DIR unless it holds a corpus made by the same generator with
# the same arguments (hash of gen_corpus.py + arguments in DIR/.gen-hash).
ensure_corpus() {
  local dir="$1" n="$2" sections="$3"; shift 3
  [[ "$ORDER" == shuffled ]] || set -- "$@" --order "$ORDER"
  local hash
  hash="$( { sha256sum "$BENCH/gen_corpus.py" | cut -d' ' -f1; echo "$n $sections --seed $SEED $*"; } | sha256sum | cut -d' ' -f1)"
  if [[ -f "$dir/.gen-hash" && "$(cat "$dir/.gen-hash")" == "$hash" ]]; then
    say "corpus $dir: up to date (generator hash ${hash:0:12})"
    return
  fi
  say "corpus $dir: generating $n articles, $sections sections ..."
  rm -rf "$dir"
  local t0=$SECONDS
  "$PYTHON" "$BENCH/gen_corpus.py" "$n" "$sections" "$dir" --seed "$SEED" "$@" >&2 \
    || die "gen_corpus.py failed"
  echo "$hash" >"$dir/.gen-hash"
  say "corpus $dir: generated in $((SECONDS - t0)) s"
}

ensure_bulletin() {
  say "building bulletin (cargo build --release) ..."
  local from
  from="$(cd "$ROOT" && git describe --always --dirty 2>/dev/null)"
  (cd "$ROOT" && cargo build --release --quiet) || die "cargo build --release failed"
  mkdir -p "$BENCH/bin"
  cp -f "$ROOT/target/release/bulletin" "$BULLETIN.new" && mv -f "$BULLETIN.new" "$BULLETIN" \
    || die "cannot copy the bulletin binary"
  echo "work tree $from, built $(date '+%F %T')" >"$BENCH/bin/bulletin.built"
  BUILT_FROM="$from"
}

# With SKIP_BUILD=1: the last copy, or the current target/release binary.
use_bulletin() {
  [[ -x "$BULLETIN" ]] && return
  [[ -x "$ROOT/target/release/bulletin" ]] || die "no bulletin binary: run without SKIP_BUILD=1"
  mkdir -p "$BENCH/bin"
  cp -f "$ROOT/target/release/bulletin" "$BULLETIN"
  echo "copied from target/release ($(date -r "$ROOT/target/release/bulletin" '+%F %T')), work tree $(cd "$ROOT" && git describe --always --dirty 2>/dev/null)" >"$BENCH/bin/bulletin.built"
}

ensure_floor() {
  say "building the parse floor ..."
  cargo build --release --quiet --manifest-path "$BENCH/parse-floor/Cargo.toml" \
    || die "parse-floor build failed"
}

ensure_feedgen() {
  "$PYTHON" -c 'import feedgen' 2>/dev/null && return
  say "installing feedgen (pip) ..."
  "$PYTHON" -m pip install --quiet feedgen || die "pip install feedgen failed"
}

ensure_time() {
  [[ -x /usr/bin/time ]] && return
  say "installing GNU time (apt) ..."
  apt-get install -y -qq time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; } \
    || die "cannot install /usr/bin/time"
}

# measure TSV LABEL RUN -- COMMAND...
# Runs COMMAND under /usr/bin/time -v; appends
# "label<TAB>run<TAB>wall_s<TAB>cpu_s<TAB>maxrss_kb<TAB>exit" to TSV.
# stdout/stderr go to TSV's folder as LABEL.RUN.out / .err.
measure() {
  local tsv="$1" label="$2" run="$3"; shift 4
  local dir; dir="$(dirname "$tsv")"
  local base="$dir/$label.$run"
  local t0 t1 rc
  t0=$(date +%s.%N)
  /usr/bin/time -v -o "$base.time" "$@" >"$base.out" 2>"$base.err"
  rc=$?
  t1=$(date +%s.%N)
  "$PYTHON" - "$base.time" "$label" "$run" "$t0" "$t1" "$rc" >>"$tsv" <<'EOF'
import re, sys
path, label, run, t0, t1, rc = sys.argv[1:]
text = open(path).read()
def field(name):
    m = re.search(re.escape(name) + r":\s*([0-9.]+)", text)
    return float(m.group(1)) if m else float("nan")
cpu = field("User time (seconds)") + field("System time (seconds)")
rss = field("Maximum resident set size (kbytes)")
print(f"{label}\t{run}\t{float(t1) - float(t0):.3f}\t{cpu:.2f}\t{rss:.0f}\t{rc}")
EOF
  if [[ $rc -ne 0 ]]; then
    say "  $label run $run: exit $rc (see $base.err)"
    tail -3 "$base.err" >&2
  fi
  return 0
}

machine_info() {
  local cpu mem
  cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  mem="$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)"
  echo "- machine: $(nproc) cores, $mem RAM, CPU: $cpu; kernel $(uname -r)"
  echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (others compile on this machine: expect noise)"
  local built="built now from work tree ${BUILT_FROM:-?} (-dirty: others' uncommitted edits are in the binary)"
  [[ -n "${BUILT_FROM:-}" ]] || built="not rebuilt (SKIP_BUILD=1): $(cat "$BENCH/bin/bulletin.built" 2>/dev/null)"
  echo "- bulletin: $built; $(rustc --version 2>/dev/null); $("$PYTHON" --version 2>&1), feedgen $("$PYTHON" -c 'import importlib.metadata as m; print(m.version("feedgen"))' 2>/dev/null)"
}

# One minute after the newest article of a JSON Lines corpus (naive times
# are +08:00, as the generator writes them): a `--now` that makes every
# article of the window new.
now_after_newest() {
  "$PYTHON" - "$1" <<'EOF'
import json, sys
from datetime import datetime, timedelta, timezone
cn = timezone(timedelta(hours=8))
newest = None
for line in open(sys.argv[1], encoding="utf-8"):
    t = datetime.fromisoformat(json.loads(line)["published"])
    t = t if t.tzinfo else t.replace(tzinfo=cn)
    newest = t if newest is None or t > newest else newest
print((newest.astimezone(cn) + timedelta(minutes=1)).isoformat(timespec="seconds"))
EOF
}
