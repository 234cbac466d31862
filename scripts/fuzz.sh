#!/usr/bin/env bash
# Runs each fuzz target of fuzz/ for a fixed time and prints a summary table.
#
#   scripts/fuzz.sh                    # every target, 60 s each
#   scripts/fuzz.sh -t 300 load_records text_hygiene
#   FUZZ_KEEP_GOING=1 scripts/fuzz.sh  # go on after a crash (libFuzzer fork mode)
#   BULLETIN_FUZZ_SKIP_KNOWN=1 ...     # step around findings already reported
#   FUZZ_SANITIZER=address ...         # with AddressSanitizer (slower)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). It wants a nightly compiler;
# on stable, RUSTC_BOOTSTRAP=1 (set here) unlocks the flags it uses.
# Corpora grow in fuzz/corpus/<target> (seeded from fuzz/seeds/<target>);
# crashing inputs land in fuzz/artifacts/<target>/. Exit status 1 when any
# target crashed.
set -euo pipefail

seconds=60
while getopts "t:h" opt; do
  case $opt in
    t) seconds=$OPTARG ;;
    *) sed -n '2,14p' "$0"; exit 2 ;;
  esac
done
shift $((OPTIND - 1))

cd "$(dirname "$0")/../fuzz"
export RUSTC_BOOTSTRAP=1
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi

extra=()
if [ -n "${FUZZ_KEEP_GOING:-}" ]; then
  extra=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
fi

# Sanitizer: none by default. bulletin forbids unsafe code, and AddressSanitizer
# slows the targets several times over; FUZZ_SANITIZER=address to turn it on.
sanitizer=${FUZZ_SANITIZER:-none}
cargo fuzz build -O -s "$sanitizer" >&2
count_artifacts() {
  if [ -d "artifacts/$1" ]; then find "artifacts/$1" -type f | wc -l; else echo 0; fi
}

mkdir -p logs
summary=()
status=0
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "seeds/$target"
  before=$(count_artifacts "$target")
  log="logs/$target.log"
  dict=()
  if [ -f "dicts/$target.dict" ]; then dict=(-dict="dicts/$target.dict"); fi
  echo "== $target: ${seconds} s" >&2
  set +e
  # Inputs that crashed this target before (each reported and fixed) first.
  replayed=ok
  if compgen -G "regressions/$target/*" >/dev/null; then
    cargo fuzz run -O -s "$sanitizer" "$target" regressions/"$target"/* >"logs/$target.replay.log" 2>&1 \
      || { replayed=FAILED; status=1; grep -E 'panicked at' -A1 "logs/$target.replay.log" >&2; }
  fi
  cargo fuzz run -O -s "$sanitizer" "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
    -print_final_stats=1 "${dict[@]}" "${extra[@]}" >"$log" 2>&1
  code=$?
  set -e
  execs=$( (grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" || true) | grep -oE '[0-9]+$' | tail -1 || true)
  if [ -z "$execs" ]; then
    execs=$( (grep -oE '^#[0-9]+' "$log" || true) | tr -d '#' | sort -n | tail -1)
  fi
  after=$(count_artifacts "$target")
  found=$((after - before))
  if [ "$code" -ne 0 ] || [ "$found" -ne 0 ]; then status=1; fi
  summary+=("$(printf '%-16s %6s s %12s execs %4s new artifacts  exit %s  regressions %s' \
    "$target" "$seconds" "${execs:-?}" "$found" "$code" "$replayed")")
  if [ "$found" -ne 0 ] || [ "$code" -ne 0 ]; then
    grep -E 'panicked at|^SUMMARY|Test unit written to' "$log" | sort | uniq -c | head -20 >&2 || true
  fi
done
rm -rf /dev/shm/bulletin-fuzz-* 2>/dev/null || true
printf '%s\n' "" "target           time         executions   findings" "${summary[@]}"
exit $status
