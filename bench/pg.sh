#!/usr/bin/env bash
# One issue sent by 1, 2 and 4 `bulletin digest --send` processes sharing a
# PostgreSQL ledger, against the single-process SQLite run, all to Postfix's
# `smtp-sink` on loopback.
#
#   bench/pg.sh [MESSAGES] [PROCESSES...]      default: 100000 1 2 4
#
# MESSAGES subscribers (bench/gen_corpus.py; nearly all get a digest). A
# private PostgreSQL cluster (Debian's postgresql package: initdb and pg_ctl
# run as the `postgres` user, loopback, a free port, default durability
# settings) is started in a temporary folder and stopped at exit; each
# PostgreSQL round gets a fresh database. The rate is messages sent (summed
# over the processes) / wall time from the start of the first process to
# the exit of the last. After each PostgreSQL round the ledger's table and
# index sizes are read (`pg_total_relation_size`) and given per million
# recipient-issues.
#
# Environment: CONNECTIONS (4 per process), ARTICLES (10000), SECTIONS (10),
# SEED (1), WORK (where corpora go; default bench/), SKIP_BUILD=1, SQLITE=0
# (leave out the SQLite run).
set -uo pipefail
source "$(dirname "$0")/lib.sh"

MESSAGES="${1:-100000}"
shift || true
PROCESSES=("${@:-1 2 4}")
read -r -a PROCESSES <<<"${PROCESSES[*]}"
CONNECTIONS="${CONNECTIONS:-4}"
ARTICLES="${ARTICLES:-10000}"
SECTIONS="${SECTIONS:-10}"
WORK="${WORK:-$BENCH}"
CORPUS="$WORK/corpus-$ARTICLES-s$SECTIONS"
SITE="$CORPUS/send-$MESSAGES"
SINK=/usr/sbin/smtp-sink

[[ -x "$SINK" ]] || die "no $SINK: apt-get install postfix (see bench/send.sh)"
PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[[ -x "$PGBIN/initdb" ]] || die "no PostgreSQL: apt-get install postgresql"
ensure_time
mkdir -p "$WORK"
ensure_corpus "$CORPUS" "$ARTICLES" "$SECTIONS"
ensure_corpus "$SITE" "$ARTICLES" "$SECTIONS" --subscribers "$MESSAGES" --no-articles --articles-path ../articles.jsonl
if [[ "${SKIP_BUILD:-}" == 1 ]]; then use_bulletin; else ensure_bulletin; fi
NOW="$(now_after_newest "$CORPUS/articles.jsonl")"

free_port() { "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

PGDIR="$(mktemp -d /tmp/bulletin-bench-pg.XXXXXX)"
chown postgres:postgres "$PGDIR"
PGPORT="$(free_port)"
SINK_PID=""
cleanup() {
  [[ -n "$SINK_PID" ]] && kill "$SINK_PID" 2>/dev/null
  runuser -u postgres -- "$PGBIN/pg_ctl" stop -D "$PGDIR/data" -m fast -w >/dev/null 2>&1
  rm -rf "$PGDIR"
}
trap cleanup EXIT
runuser -u postgres -- "$PGBIN/initdb" -A trust -U postgres -E UTF8 -D "$PGDIR/data" >/dev/null \
  || die "initdb failed"
runuser -u postgres -- "$PGBIN/pg_ctl" start -w -D "$PGDIR/data" -l "$PGDIR/server.log" \
  -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGDIR -c max_connections=200" >/dev/null \
  || die "PostgreSQL did not start (see $PGDIR/server.log)"
psql() { "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -X -q -t -A "$@"; }
say "PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PGPORT"

SINK_PORT="$(free_port)"
"$SINK" -u nobody 127.0.0.1:"$SINK_PORT" 256 &
SINK_PID=$!
sleep 0.5

RESULTS="$BENCH/results/pg-$MESSAGES-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$RESULTS"
TSV="$RESULTS/measurements.tsv"
: >"$TSV"
INFO="$(machine_info)"
cat "$CORPUS/articles.jsonl" >/dev/null

config() {  # config STATE FILE
  sed -e "s/^port = .*/port = $SINK_PORT/" -e "s/^connections = .*/connections = $CONNECTIONS/" \
      -e "s|^state = .*|state = \"$1\"|" "$SITE/feeds.toml" >"$2"
}

sent_in() {  # sent_in FILE...: messages the runs say they sent, summed
  cat "$@" | sed -n 's/^digest [0-9-]*: \([0-9]*\) sent.*/\1/p' | awk '{s+=$1} END {print s+0}'
}

if [[ "${SQLITE:-1}" != 0 ]]; then
  say "sqlite, 1 process ..."
  rm -rf "$SITE/state-pg-bench"
  config "state-pg-bench/state.sqlite" "$SITE/feeds-sqlite.toml"
  measure "$TSV" "sqlite-1" 1 -- "$BULLETIN" digest --config "$SITE/feeds-sqlite.toml" --send --now "$NOW"
  echo "sqlite-1 $(sent_in "$RESULTS/sqlite-1.1.out" "$RESULTS/sqlite-1.1.err") $(du -b "$SITE/state-pg-bench/state.sqlite" | cut -f1)" >>"$RESULTS/sent.txt"
  rm -rf "$SITE/state-pg-bench"
fi

for n in "${PROCESSES[@]}"; do
  say "postgres, $n processes ..."
  db="bench_$n"
  psql -c "DROP DATABASE IF EXISTS $db" postgres && psql -c "CREATE DATABASE $db" postgres \
    || die "cannot create the database $db"
  config "postgres://postgres@127.0.0.1:$PGPORT/$db" "$SITE/feeds-pg.toml"
  measure "$TSV" "postgres-$n" 1 -- bash -c '
    for i in $(seq "$1"); do
      "$2" digest --config "$3" --send --now "$4" >"$5.$i.out" 2>"$5.$i.err" &
    done
    rc=0; for p in $(jobs -p); do wait "$p" || rc=$?; done; exit $rc' \
    _ "$n" "$BULLETIN" "$SITE/feeds-pg.toml" "$NOW" "$RESULTS/postgres-$n.proc"
  sizes="$(psql -c "SELECT string_agg(c || '=' || pg_total_relation_size(c::regclass), ' ' ORDER BY c)
                    FROM unnest(ARRAY['issues','recipients','articles','deliveries','outbox','messages']) c" "$db")"
  rows="$(psql -c "SELECT count(*) FROM deliveries" "$db")"
  echo "postgres-$n $(sent_in "$RESULTS"/postgres-"$n".proc.*.out "$RESULTS"/postgres-"$n".proc.*.err) $rows $sizes" >>"$RESULTS/sent.txt"
done

{
  echo "### One issue of $MESSAGES digests to smtp-sink: SQLite (1 process) vs PostgreSQL (${PROCESSES[*]} processes), $CONNECTIONS connections each, loopback"
  echo
  "$PYTHON" - "$TSV" "$RESULTS/sent.txt" <<'EOF'
import sys
tsv, sent = sys.argv[1], sys.argv[2]
rows = {}
for line in open(tsv, encoding="utf-8"):
    label, run, wall, cpu, rss, rc = line.rstrip("\n").split("\t")
    rows[label] = (float(wall), float(cpu), int(rc))
info = {}
for line in open(sent, encoding="utf-8"):
    parts = line.split()
    info[parts[0]] = parts[1:]
print("| ledger, processes | sent | wall s | msg/s | CPU s (bulletin processes) | ledger size after the issue |")
print("| --- | ---: | ---: | ---: | ---: | --- |")
for label, (wall, cpu, rc) in rows.items():
    extra = info.get(label, ["0"])
    n = int(extra[0])
    if label.startswith("sqlite"):
        size = f"state.sqlite {int(extra[1]) / 1e6:.1f} MB" if len(extra) > 1 else "-"
    else:
        deliveries = int(extra[1])
        sizes = dict(kv.split("=") for kv in extra[2:])
        total = sum(int(v) for v in sizes.values())
        per_million = {k: int(v) / max(deliveries, 1) * 1e6 / 1e6 for k, v in sizes.items()}
        size = (f"{total / 1e6:.1f} MB in all; per million recipient-issues: deliveries "
                f"{per_million['deliveries']:.0f} MB, recipients {per_million['recipients']:.0f} MB, "
                f"messages still kept {per_million['messages']:.0f} MB")
    status = "" if rc == 0 else f" (exit {rc})"
    print(f"| {label}{status} | {n} | {wall:.1f} | {n / wall:.0f} | {cpu:.1f} | {size} |")
EOF
  echo
  echo "- corpus: $ARTICLES articles, $SECTIONS sections, $MESSAGES subscribers, --now $NOW"
  echo "$INFO"
  echo "- load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "- raw measurements: ${RESULTS#"$ROOT"/}/"
} | tee "$RESULTS/table.md"
