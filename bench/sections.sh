#!/usr/bin/env bash
# Sites with thousands of sections: `digest --dry-run` and `check`, and the
# check of a deep parent chain.
#
#   bench/sections.sh ["S ..."] ["D ..."] [RUNS]
#   e.g. bench/sections.sh "1000 5000 10000" "2000 4000 8000" 3
#
# Planning a digest once looked each section up by scanning all of them, for
# every section's every ancestor, for every subscriber: 1,000 sections took
# 0.97 s, 5,000 15.7 s, 10,000 210 s; checking a 4,000-deep parent chain
# took 12 s (cubic). Both must grow linearly (issue #17).
#
# 1. For each S: bench/corpus-N-sS/ (gen_corpus.py: N articles, S sections,
#    ~10% of them children of another) and a config folder beside it with K
#    subscribers (~90% with 1-4 section filters) and a `window` of
#    $WINDOW so that each email has items; times `check` and
#    `digest --dry-run` (RUNS runs, median).
# 2. For each D: a config whose D sections form one chain (each the parent
#    of the next), one article in the deepest and a subscriber to the root;
#    times `check` and `digest --dry-run`.
# Prints a Markdown table with the time per 1,000 sections (flat when growth
# is linear); saves it under bench/results/sections-<time>/.
#
# Environment: N (20000), K (300), WINDOW (90d), SEED (1), NOW
# (2026-11-01T00:00:00+08:00), SKIP_BUILD=1; BASELINE=PATH adds one run of
# another bulletin binary, cut off after BASELINE_TIMEOUT seconds (300).
set -uo pipefail
source "$(dirname "$0")/lib.sh"

SECTION_COUNTS="${1:-1000 5000 10000}"
DEPTHS="${2:-2000 4000 8000}"
RUNS="${3:-3}"
N="${N:-20000}"
K="${K:-300}"
WINDOW="${WINDOW:-90d}"
NOW="${NOW:-$NOW_DEFAULT}"
BASELINE="${BASELINE:-}"
BASELINE_TIMEOUT="${BASELINE_TIMEOUT:-300}"

ensure_time
if [[ "${SKIP_BUILD:-}" == 1 ]]; then use_bulletin; else ensure_bulletin; fi

RESULTS="$BENCH/results/sections-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$RESULTS"
INFO="$(machine_info)"
ROWS="$RESULTS/rows.tsv"
: >"$ROWS"

# median LABEL -- COMMAND...: median wall seconds over RUNS runs (each
# under /usr/bin/time -v, outputs kept in the results folder).
median() {
  local label="$1"; shift 2
  local tsv="$RESULTS/$label.tsv"; : >"$tsv"
  for run in $(seq 1 "$RUNS"); do
    rm -rf "$RESULTS/out"
    measure "$tsv" "$label" "$run" -- "$@"
  done
  "$PYTHON" - "$tsv" <<'EOF'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1])]
ok = [float(r[2]) for r in rows if r[5].strip() == "0"]
print("%.3f" % statistics.median(ok) if ok else "failed")
EOF
}

# baseline LABEL -- COMMAND...: one run of BASELINE in place of bulletin.
baseline() {
  [[ -n "$BASELINE" ]] || { echo ""; return; }
  local label="$1"; shift 2
  rm -rf "$RESULTS/out"
  local t0 t1 rc
  t0=$(date +%s.%N)
  timeout "$BASELINE_TIMEOUT" "$BASELINE" "${@:2}" >"$RESULTS/baseline-$label.out" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  if [[ $rc == 124 ]]; then echo "> $BASELINE_TIMEOUT"; else "$PYTHON" -c "print('%.3f' % ($t1 - $t0))"; fi
}

# row KIND SIZE CONFIG: times check and the dry run of CONFIG.
row() {
  local kind="$1" size="$2" config="$3"
  local check dry base_check base_dry emails
  say "$kind $size: check ..."
  check="$(median "check-$kind-$size" -- "$BULLETIN" check --config "$config")"
  say "$kind $size: digest --dry-run ..."
  dry="$(median "dry-$kind-$size" -- "$BULLETIN" digest --config "$config" --dry-run "$RESULTS/out" --now "$NOW")"
  emails="$(grep -ho '[0-9]* emails' "$RESULTS/dry-$kind-$size.1.out" "$RESULTS/dry-$kind-$size.1.err" | head -1)"
  base_check="$(baseline "check-$kind-$size" -- "$BASELINE" check --config "$config")"
  base_dry="$(baseline "dry-$kind-$size" -- "$BASELINE" digest --config "$config" --dry-run "$RESULTS/out" --now "$NOW")"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$size" "$check" "$dry" "${emails:-?}" "$base_check" "$base_dry" >>"$ROWS"
}

for s in $SECTION_COUNTS; do
  corpus="$(corpus_dir "$N" "$s")"
  ensure_corpus "$corpus" "$N" "$s"
  site="$corpus/sections-$K"
  ensure_corpus "$site" "$N" "$s" --subscribers "$K" --no-articles --articles-path ../articles.jsonl
  sed -i "s|^window = .*|window = \"$WINDOW\"|" "$site/feeds.toml"
  cat "$corpus/articles.jsonl" >/dev/null
  row sections "$s" "$site/feeds.toml"
done

for d in $DEPTHS; do
  chain="$BENCH/corpus-chain-$d"
  if [[ ! -f "$chain/feeds.toml" ]]; then
    mkdir -p "$chain"
    "$PYTHON" - "$d" "$chain" <<'EOF'
import json, sys
depth, out = int(sys.argv[1]), sys.argv[2]
config = [
    '[site]\ntitle = "映象网"\nbase_url = "https://news.example.cn/"\nlanguage = "zh-CN"\n',
    'timezone = "Asia/Shanghai"\n\n[input]\npaths = ["articles.jsonl"]\n\n',
]
for i in range(depth):
    config.append(f'[[sections]]\nid = "s{i}"\ntitle = "栏目{i}"\n')
    if i:
        config.append(f'parent = "s{i - 1}"\n')
    config.append("\n")
config.append('[digest]\nsubscribers = "subscribers.toml"\nstate = "state/state.sqlite"\n'
              'window = "7d"\n\n[smtp]\nfrom = "映象网 <digest@news.example.cn>"\n')
open(f"{out}/feeds.toml", "w", encoding="utf-8").write("".join(config))
open(f"{out}/subscribers.toml", "w", encoding="utf-8").write(
    '[[subscribers]]\nemail = "root@example.com"\nsections = ["s0"]\n')
record = {"id": "deep", "title": "最深的栏目", "section": f"s{depth - 1}", "url": "/deep.html",
          "published": "2026-10-31T12:00:00+08:00", "summary": "摘要"}
open(f"{out}/articles.jsonl", "w", encoding="utf-8").write(json.dumps(record, ensure_ascii=False) + "\n")
EOF
  fi
  row chain "$d" "$chain/feeds.toml"
done

{
  echo "### thousands of sections: $N articles, $K subscribers, window $WINDOW; chains of D sections ($RUNS runs each, median wall)"
  echo
  "$PYTHON" - "$ROWS" "${BASELINE:+yes}" <<'EOF'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1], encoding="utf-8")]
baseline = len(sys.argv) > 2 and sys.argv[2] == "yes"
head = ["site", "check s", "check ms per 1,000 sections", "digest --dry-run s",
        "dry run ms per 1,000 sections", "emails"]
if baseline:
    head += ["baseline check s", "baseline dry run s"]
print("| " + " | ".join(head) + " |")
print("|---|" + "---:|" * (len(head) - 1))
for kind, size, check, dry, emails, bcheck, bdry in rows:
    size = int(size)
    name = f"{size:,} sections" if kind == "sections" else f"chain {size:,} deep"
    def per(s):
        try:
            return f"{float(s) / size * 1e6:.0f}"
        except ValueError:
            return "-"
    cells = [name, check, per(check), dry, per(dry), emails.split()[0] if emails != "?" else "?"]
    if baseline:
        cells += [bcheck or "-", bdry or "-"]
    print("| " + " | ".join(cells) + " |")
EOF
  echo
  echo "$INFO"
  [[ -n "$BASELINE" ]] && echo "- baseline: $BASELINE, one run each, cut off after $BASELINE_TIMEOUT s"
  echo "- load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$RESULTS/table.md"
