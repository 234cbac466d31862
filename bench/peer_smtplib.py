#!/usr/bin/env python3
"""Plain-Python SMTP delivery peer: C threads, one smtplib connection each,
sending a prebuilt ~10 KB UTF-8 message to distinct recipients.

    peer_smtplib.py --port P [--host 127.0.0.1] [--connections C]
                    [--messages 20000] [--size 10240]

Prints "sent M messages over C connections in S s: R msgs/s".
"""

import argparse
import smtplib
import threading
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid


def build_message(size):
    msg = EmailMessage()
    msg["From"] = "映象网 <digest@news.example.cn>"
    msg["To"] = "reader@example.com"
    msg["Subject"] = "映象网 · 2026-11-01 要闻"
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain="news.example.cn")
    line = "郑州地铁1号线今日起缩短早高峰发车间隔，缓解通勤压力。\n"
    # Base64 body: ~4/3 the UTF-8 size; aim at `size` bytes on the wire.
    text = line * max(1, int(size * 0.75) // len(line.encode("utf-8")))
    msg.set_content(text, charset="utf-8")
    return msg.as_bytes()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--connections", type=int, default=1)
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--size", type=int, default=10240)
    a = ap.parse_args()

    message = build_message(a.size)
    lock = threading.Lock()
    next_index = [0]
    sent = [0]
    errors = []

    def worker():
        try:
            with smtplib.SMTP(a.host, a.port, timeout=60) as smtp:
                while True:
                    with lock:
                        i = next_index[0]
                        if i >= a.messages:
                            return
                        next_index[0] += 1
                    smtp.sendmail("digest@news.example.cn", [f"reader{i}@example.com"], message)
                    with lock:
                        sent[0] += 1
        except Exception as e:  # noqa: BLE001 - report and let the others go on
            errors.append(repr(e))

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(a.connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    print(f"sent {sent[0]} messages of {len(message)} bytes over {a.connections} connections "
          f"in {elapsed:.2f} s: {sent[0] / elapsed:.0f} msgs/s")
    if errors:
        print(f"{len(errors)} connection(s) failed: {errors[0]}")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
