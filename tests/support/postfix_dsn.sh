#!/usr/bin/env bash
# Makes a real Postfix bounce: a private Postfix instance (no listening
# port; the system's Postfix is not touched) takes one message from
# `sendmail -C` with the envelope sender SENDER (a mailbox of its virtual
# domain news.test, VERP delimiter `+`) to RECIPIENT (an unknown user of its
# local domain example.test); its local and bounce daemons bounce it, and
# the DSN lands in the Maildir of SENDER's mailbox.
#
#   postfix_dsn.sh DIR SENDER RECIPIENT MESSAGE_FILE
#
# Prints the DSN's path. The instance is stopped on exit. Needs root (the
# daemons change user) and the postfix package (its master.cf is the model).
set -euo pipefail
export PATH="$PATH:/usr/sbin:/usr/lib/postfix/sbin"
dir=$1 sender=$2 recipient=$3 message=$4
conf=$dir/etc queue=$dir/queue data=$dir/data mail=$dir/mail
mkdir -p "$conf" "$queue" "$data" "$mail"
chmod 755 "$dir" "$conf" "$queue"
chown postfix "$data"
uid=$(id -u nobody) gid=$(id -g nobody)
chown "$uid:$gid" "$mail"
# Every daemon out of chroot (the private queue has no copy of /etc), no
# smtpd listener at all: mail comes in through sendmail/postdrop/pickup.
sed -e 's/^\([a-z][^ ]*  *\(unix\|inet\|fifo\|unix-dgram\|pass\) *[-ny] *[-ny] *\)y/\1n/' \
    -e '/^smtp  *inet/d' /etc/postfix/master.cf > "$conf/master.cf"
printf 'bounces@news.test news.test/bounces/\n' > "$conf/vmailbox"
cat > "$conf/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $queue
data_directory = $data
mail_owner = postfix
setgid_group = postdrop
inet_interfaces = loopback-only
inet_protocols = ipv4
myhostname = mx.example.test
mydomain = example.test
myorigin = example.test
mydestination = example.test
local_recipient_maps =
alias_maps =
alias_database =
recipient_delimiter = +
virtual_mailbox_domains = news.test
virtual_mailbox_base = $mail
virtual_mailbox_maps = texthash:$conf/vmailbox
virtual_uid_maps = static:$uid
virtual_gid_maps = static:$gid
default_transport = error:no mail leaves this test instance
relay_transport = error:no mail leaves this test instance
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
master_service_disable =
notify_classes =
bounce_size_limit = 50000
delay_warning_time = 0h
import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C
CF
postfix -c "$conf" check >&2
stop() { postfix -c "$conf" stop >/dev/null 2>&1 || true; }
trap stop EXIT
postfix -c "$conf" start >&2
sendmail -C "$conf" -f "$sender" -- "$recipient" < "$message"
maildir=$mail/news.test/bounces/new
for _ in $(seq 1 300); do
  found=$(ls "$maildir" 2>/dev/null | head -1 || true)
  if [ -n "$found" ]; then
    echo "$maildir/$found"
    exit 0
  fi
  sleep 0.1
done
echo "no DSN after 30 s; the instance's log:" >&2
cat "$dir/maillog" >&2 || true
exit 1
