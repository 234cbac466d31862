#!/usr/bin/env bash
# Digest composition benchmark: `bulletin digest --dry-run` with K subscribers.
#
#   bench/digest.sh N [K] [RUNS]     e.g. bench/digest.sh 100000 100000 1
#
# Uses bench/corpus-N/ (generated as in run.sh) and a config folder beside it,
# bench/corpus-N/digest-K/ (feeds.toml reading ../articles.jsonl, K
# subscribers). Times `bulletin check` (load + validate everything: the
# baseline), a cold `bulletin build` of the same archive (empty output, no
# build cache: the reference of the digest's goal, "at most a cold build +
# 1.5 s") and `bulletin digest --dry-run` (load + compose + write one .eml
# and one HTML preview per email), interleaved; reports emails/s, overall
# and for the compose+write part alone (dry-run wall minus check wall), the
# dry run minus the cold build, and the dry run's peak RSS.
#
# Environment: SECTIONS (100), SEED (1), NOW (2026-11-01T00:00:00+08:00),
# ORDER (shuffled | chronological), CORPUS_ROOT (bench/), SKIP_BUILD=1,
# MEM_LIMIT_GB (14: `ulimit -v` for the digest run; bulletin holds every
# composed message in memory, ~0.4 MB per email).
set -uo pipefail
source "$(dirname "$0")/lib.sh"

N="${1:?usage: bench/digest.sh N [K] [RUNS]}"
K="${2:-100000}"
RUNS="${3:-1}"
MEM_LIMIT_GB="${MEM_LIMIT_GB:-14}"
SECTIONS="${SECTIONS:-100}"
NOW="${NOW:-$NOW_DEFAULT}"
CORPUS="$(corpus_dir "$N" "$SECTIONS")"
SITE="$CORPUS/digest-$K"

ensure_time
ensure_corpus "$CORPUS" "$N" "$SECTIONS"
ensure_corpus "$SITE" "$N" "$SECTIONS" --subscribers "$K" --no-articles --articles-path ../articles.jsonl
if [[ "${SKIP_BUILD:-}" == 1 ]]; then use_bulletin; else ensure_bulletin; fi

RESULTS="$BENCH/results/digest-$N-$K-$ORDER-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$RESULTS"
TSV="$RESULTS/measurements.tsv"
: >"$TSV"
INFO="$(machine_info)"
cat "$CORPUS/articles.jsonl" >/dev/null

for run in $(seq 1 "$RUNS"); do
  say "round $run/$RUNS ..."
  measure "$TSV" "bulletin check (load + validate)" "$run" -- \
    "$BULLETIN" check --config "$SITE/feeds.toml"
  rm -rf "$SITE/public" "$SITE/.bulletin/cache"
  measure "$TSV" "bulletin build (cold)" "$run" -- \
    "$BULLETIN" build --config "$SITE/feeds.toml" --now "$NOW"
  rm -rf "$SITE/dry-run" "$SITE/state"
  # Capped address space: a digest that outgrows the machine fails alone
  # instead of waking the OOM killer among other people's processes.
  measure "$TSV" "bulletin digest --dry-run" "$run" -- bash -c 'ulimit -v "$1"; shift; exec "$@"' _ \
    "$((MEM_LIMIT_GB * 1024 * 1024))" \
    "$BULLETIN" digest --config "$SITE/feeds.toml" --dry-run "$SITE/dry-run" --now "$NOW"
done

summary="$(cat "$RESULTS/bulletin digest --dry-run.1.out" "$RESULTS/bulletin digest --dry-run.1.err" | grep -m1 'dry run of digest')"
emails="$(sed -n 's/.*: \([0-9]*\) emails.*/\1/p' <<<"$summary")"
{
  echo "### digest --dry-run: $N articles ($ORDER lines), $K subscribers, $SECTIONS sections, --now $NOW, $RUNS run(s)"
  echo
  "$PYTHON" "$BENCH/table.py" "$TSV" --floor "bulletin check (load + validate)" --ratio-title "wall ratio vs check"
  echo
  "$PYTHON" - "$TSV" "${emails:-0}" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1], encoding="utf-8"):
    label, run, wall, cpu, rss, rc = line.rstrip("\n").split("\t")
    if rc == "0":
        rows.setdefault(label, []).append(float(wall))
emails = int(sys.argv[2])
check = statistics.median(rows.get("bulletin check (load + validate)", [float("nan")]))
build = statistics.median(rows.get("bulletin build (cold)", [float("nan")]))
digest = rows.get("bulletin digest --dry-run")
if not digest or not emails:
    print("- digest --dry-run FAILED or composed no email: no rate")
else:
    d = statistics.median(digest)
    print(f"- {emails} emails: {emails / d:.0f} emails/s overall; "
          f"compose + write alone ({d:.2f} - {check:.2f} s): {emails / max(d - check, 1e-9):.0f} emails/s")
    print(f"- dry run minus cold build (medians): {d:.2f} - {build:.2f} = {d - build:+.2f} s")
EOF
  echo "- bulletin says: ${summary:-$(tail -2 "$RESULTS/bulletin digest --dry-run.1.err" | tr '\n' ' ')}"
  echo "- digest run under ulimit -v ${MEM_LIMIT_GB} GiB"
  if [[ -d "$SITE/dry-run" ]]; then
    echo "- dry-run output: $(find "$SITE/dry-run" -name '*.eml' | wc -l) .eml, $(du -sh "$SITE/dry-run" | cut -f1); mean .eml size $(find "$SITE/dry-run" -maxdepth 1 -name '*.eml' -printf '%s\n' | awk '{s+=$1; n++} END {if (n) printf "%.1f KB", s/n/1024}')"
  fi
  echo "$INFO"
  echo "- load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- raw measurements: ${RESULTS#"$ROOT"/}/measurements.tsv"
} | tee "$RESULTS/table.md"
