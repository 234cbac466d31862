#!/usr/bin/env python3
"""A WebSub hub stand-in for the tests: a real HTTP server on loopback.

Usage: python3 tests/support/websub_hub.py LOG MODE

MODE is how it answers every request: `ok` (202 Accepted, as hubs answer a
publish request), `fail` (500), or `slow` (waits 30 s, then 204: longer than
any time limit a test sets). It listens on a free port of 127.0.0.1 and
prints that port as the first line on stdout. Every request is appended to
LOG as one JSON line, before it is answered: method, path, content type and
the body as text.
"""

import http.server
import json
import sys
import threading
import time

LOCK = threading.Lock()


def main(argv):
    if len(argv) != 3 or argv[2] not in ("ok", "fail", "slow"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    log_path, mode = argv[1], argv[2]

    class Hub(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace")
            record = {
                "method": self.command,
                "path": self.path,
                "content_type": self.headers.get("Content-Type"),
                "body": body,
            }
            with LOCK, open(log_path, "a", encoding="utf-8") as log:
                log.write(json.dumps(record, ensure_ascii=False) + "\n")
            if mode == "slow":
                time.sleep(30)
            status = {"ok": 202, "fail": 500, "slow": 204}[mode]
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    server.daemon_threads = True
    print(server.server_address[1], flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
