#!/usr/bin/env python3
"""A state database as the last release before schema 6 left it.

    gen_state_v5.py OUT ROWS [--issues I] [--items K] [--seed S]

Writes OUT (SQLite, schema version 5, 64 KB pages, WAL): ROWS delivery rows,
ROWS / I recipients times I daily issues, each row `sent` with K article ids
(default 25) drawn from the ~500 articles of its day and the six days
before; every 50th row failed, every 200th dropped. The schema is the one
that release wrote (`sqlite3 state.sqlite .schema`), as in
tests/support/state.rs.

Deterministic for the same arguments.
"""

import argparse
import datetime
import os
import random
import sqlite3

SCHEMA_V5 = """
CREATE TABLE deliveries (
    issue       TEXT    NOT NULL,
    recipient   TEXT    NOT NULL,   -- the address, lower-cased: the key
    address     TEXT    NOT NULL,   -- the address as subscribed, for RCPT TO
    message_id  TEXT    NOT NULL,
    message     BLOB    NOT NULL,   -- version 1: the message; since: empty
    status      TEXT    NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'dropped')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    last_error  TEXT,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL, articles TEXT NOT NULL DEFAULT '', claimed_by TEXT,
    PRIMARY KEY (issue, recipient)
);
CREATE INDEX deliveries_status ON deliveries (status);
CREATE TABLE messages (
    issue       TEXT NOT NULL,
    recipient   TEXT NOT NULL,
    encoding    TEXT NOT NULL,      -- 'lz4': LZ4 block, size prefixed
    bytes       BLOB NOT NULL,
    PRIMARY KEY (issue, recipient)
);
CREATE INDEX deliveries_recipient ON deliveries (recipient);
CREATE TABLE suppressions (
    address     TEXT NOT NULL PRIMARY KEY,   -- lower-cased
    reason      TEXT NOT NULL CHECK (reason IN ('unsubscribed', 'bounced', 'complained', 'manual')),
    created_at  TEXT NOT NULL,
    source      TEXT NOT NULL
);
CREATE TABLE bounce_events (
    report      TEXT NOT NULL,      -- the report Message-ID, or sha256- and a hash of its bytes
    address     TEXT NOT NULL,      -- lower-cased
    kind        TEXT NOT NULL CHECK (kind IN ('hard', 'soft', 'complaint')),
    status      TEXT NOT NULL,      -- the DSN status (5.1.1) or the feedback type
    at          TEXT NOT NULL,      -- UTC, RFC 3339 with Z: sorts as text
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (report, address)
);
CREATE INDEX bounce_events_address ON bounce_events (address, kind, at);
CREATE INDEX deliveries_claimed ON deliveries (claimed_by) WHERE claimed_by IS NOT NULL;
"""

ARTICLES_A_DAY = 500


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("rows", type=int)
    ap.add_argument("--issues", type=int, default=30)
    ap.add_argument("--items", type=int, default=25)
    ap.add_argument("--seed", default="1")
    a = ap.parse_args()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(a.out + suffix):
            os.remove(a.out + suffix)
    rng = random.Random(a.seed)
    recipients = max(1, a.rows // a.issues)
    conn = sqlite3.connect(a.out)
    conn.execute("PRAGMA page_size = 65536")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript(SCHEMA_V5)
    conn.execute("PRAGMA user_version = 5")
    start = datetime.date(2026, 10, 1)
    written = 0
    for day in range(a.issues):
        issue = (start + datetime.timedelta(days=day)).isoformat()
        stamp = f"{issue}T08:00:00+08:00"
        # The window's articles: this day's and the six before.
        # Ids as bench/gen_corpus.py makes them (a0001234).
        pool = [f"a{d * ARTICLES_A_DAY + n:07d}" for d in range(max(0, day - 6), day + 1)
                for n in range(ARTICLES_A_DAY)]
        batch = []
        for r in range(recipients):
            if written >= a.rows:
                break
            address = f"reader.{r:07d}@example.com"
            ids = rng.sample(pool, a.items)
            status = "failed" if written % 50 == 7 else "dropped" if written % 200 == 11 else "sent"
            error = "550 5.1.1 no such user" if status == "failed" else None
            batch.append((issue, address, address, f"<digest.{issue}.{r:024x}@news.example.cn>", status,
                          1, error, stamp, stamp, "\n".join(ids)))
            written += 1
        conn.executemany(
            "INSERT INTO deliveries (issue, recipient, address, message_id, message, status, attempts, "
            "last_error, created_at, updated_at, articles) VALUES (?, ?, ?, ?, x'', ?, ?, ?, ?, ?, ?)",
            batch,
        )
        conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    print(f"{written} rows, {recipients} recipients, {a.issues} issues")


if __name__ == "__main__":
    main()
