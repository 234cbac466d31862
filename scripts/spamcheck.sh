#!/usr/bin/env bash
# Scores sample digests with SpamAssassin and rspamd, both run locally: a
# measurement of the email itself (not a test; numbers in docs/digest.md).
#
#   scripts/spamcheck.sh [DIR]
#
# DIR holds dry-run folders of .eml files (default: made fresh by
# scripts/sample-digests.sh in a temporary folder). For every message:
#
# - SpamAssassin's score, `spamassassin -L -t` (local rules, no network);
# - rspamd's score and symbols, twice: with no DNS at all (every name is
#   NXDOMAIN), then with the records a site that sends mail publishes (A,
#   MX, SPF, DMARC, the DKIM key of the signed sample, reverse DNS; served
#   by scripts/zone_dns.py). What differs between the two comes from DNS,
#   not from the message.
#
# rspamd runs as a private instance (127.0.0.1:21333, its own state folder,
# stopped at the end) and is told the SMTP session a receiver would see: the
# client 203.0.113.25 (a documentation address) greeting as and resolving to
# mail.<From domain>, the envelope sender and recipient.
#
# Needs: spamassassin, rspamd, python3 (apt install spamassassin rspamd).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/bulletin-spamcheck.XXXXXX)"
dir=${1:-}
if [ -z "$dir" ]; then
  dir="$work/samples"
  "$root/scripts/sample-digests.sh" "$dir" >/dev/null 2>&1
fi
ip=203.0.113.25
rspamd_port=21333
dns_port=21353

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# The DNS server, with an empty zone for now.
zone="$work/zone.txt"
: >"$zone"
python3 "$root/scripts/zone_dns.py" "$dns_port" "$zone" &
pids+=($!)

# A private rspamd: the system config, with our sockets, state, logs and DNS.
conf="$work/rspamd"
mkdir -p "$conf/local.d" "$conf/override.d" "$conf/db" "$conf/run" "$conf/log"
echo "bind_socket = \"127.0.0.1:$rspamd_port\";" >"$conf/local.d/worker-normal.inc"
echo 'bind_socket = "127.0.0.1:21334";' >"$conf/local.d/worker-controller.inc"
echo 'enabled = false;' >"$conf/override.d/worker-proxy.inc"
echo 'enabled = false;' >"$conf/override.d/worker-fuzzy.inc"
echo "dns { nameserver = [\"127.0.0.1:$dns_port\"]; timeout = 1s; retransmits = 1; }" \
  >"$conf/local.d/options.inc"
rspamd -f -i -c /etc/rspamd/rspamd.conf --var "LOCAL_CONFDIR=$conf" \
  --var "DBDIR=$conf/db" --var "RUNDIR=$conf/run" --var "LOGDIR=$conf/log" \
  -p "$conf/run/rspamd.pid" >"$conf/log/stdout" 2>&1 &
pids+=($!)
for _ in $(seq 180); do
  rspamc -h "127.0.0.1:$rspamd_port" stat >/dev/null 2>&1 && break
  sleep 1
done

header() { grep -m1 -i "^$1:" "$2" | sed 's/^[^:]*: *//; s/\r$//'; }
address() { sed 's/.*<\(.*\)>.*/\1/'; }

# rspamd's verdict on one message: "score SYMBOL(score) ...".
rspamd_scan() {
  local eml=$1 from to host report
  from=$(header From "$eml" | address)
  to=$(header To "$eml" | address)
  host="mail.${from#*@}"
  report=$(rspamc -h "127.0.0.1:$rspamd_port" --ip "$ip" --helo "$host" \
    --hostname "$host" --from "$from" --rcpt "$to" symbols "$eml")
  printf '%s %s\n' "$(sed -n 's/^Score: \([-0-9.]*\) .*/\1/p' <<<"$report")" \
    "$(sed -n 's/^Symbol: \([A-Z0-9_]*\) (\([-0-9.]*\)).*/\1(\2)/p' <<<"$report" | tr '\n' ' ')"
}

# The records of every From domain, and the signed sample's DKIM key.
publish_zone() {
  local domains
  domains=$(for eml in "$dir"/*/*.eml; do header From "$eml" | address | sed 's/.*@//'; done | sort -u)
  {
    for domain in $domains; do
      echo "$domain A $ip"
      echo "$domain MX mail.$domain"
      echo "mail.$domain A $ip"
      echo "$domain TXT v=spf1 ip4:$ip -all"
      echo "_dmarc.$domain TXT v=DMARC1; p=reject; adkim=r; aspf=r"
    done
    echo "25.113.0.203.in-addr.arpa PTR mail.$(head -n1 <<<"$domains")"
    for eml in "$dir"/*/*.eml; do
      local sig selector domain key
      sig=$(sed -n '/^DKIM-Signature:/,/^[^ \t]/p' "$eml" | tr -d ' \t\r\n')
      [ -n "$sig" ] || continue
      selector=$(sed -n 's/.*;s=\([^;]*\);.*/\1/p' <<<"$sig")
      domain=$(sed -n 's/.*;d=\([^;]*\);.*/\1/p' <<<"$sig")
      key=$(openssl pkey -in "$(dirname "$eml")/../sites/$(basename "$(dirname "$eml")")/dkim.pem" \
        -pubout -outform DER 2>/dev/null | tail -c 32 | base64 -w0)
      echo "$selector._domainkey.$domain TXT v=DKIM1; k=ed25519; p=$key"
      break
    done
  } | sort -u >"$zone.new"
  mv "$zone.new" "$zone"
}

declare -A sa_score no_dns with_dns
emls=("$dir"/*/*.eml)
for eml in "${emls[@]}"; do
  sa_score[$eml]=$(spamassassin -L -t <"$eml" 2>/dev/null \
    | sed -n 's/^Content analysis details: *(\(-\{0,1\}[0-9.]*\) points.*/\1/p')
  no_dns[$eml]=$(rspamd_scan "$eml")
done
publish_zone
sleep 1
for eml in "${emls[@]}"; do
  with_dns[$eml]=$(rspamd_scan "$eml")
done

printf '%-36s %6s %14s %16s\n' message SA 'rspamd no DNS' 'rspamd with DNS'
for eml in "${emls[@]}"; do
  name="$(basename "$(dirname "$eml")")/$(basename "$eml" .eml)"
  printf '%-36s %6s %14s %16s\n' "$name" "${sa_score[$eml]}" \
    "${no_dns[$eml]%% *}" "${with_dns[$eml]%% *}"
done
for scenario in no_dns with_dns; do
  declare -n results=$scenario
  echo
  echo "rspamd symbols, ${scenario/_/ } (messages that have it):"
  for eml in "${emls[@]}"; do tr ' ' '\n' <<<"${results[$eml]#* }"; done \
    | grep . | sort | uniq -c | awk '{printf "  %-40s %s\n", $2, $1}'
done
