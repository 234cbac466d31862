#!/usr/bin/env python3
"""What a state database holds, after one issue.

    state_stats.py DB ISSUE [--vacuum COPY]

Prints one tab-separated line:

    version  messages  items  file_bytes  used_bytes  record_bytes  [vacuumed_bytes]

- messages: rows of ISSUE (its recipients); items: the articles they carry
  (schema 6: one byte of an article list below 0x80 ends a number;
  earlier: one line each);
- file_bytes: page_count * page_size; used_bytes: the same less the free
  pages (pages freed by deleted messages are reused before the file grows);
- record_bytes: the pages of the tables (and their indexes) that keep the
  record of what was sent, by SQLite's dbstat: schema 6 `deliveries`,
  `issues`, `recipients`, `articles`; earlier `deliveries` (and
  `delivery_articles` in version 1);
- with --vacuum COPY: `VACUUM INTO COPY` (the file as compact as SQLite
  makes it), and its size.

Reads with Python's sqlite3 (its SQLite has the dbstat table); never writes
DB.
"""

import argparse
import os
import sqlite3
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("db")
    ap.add_argument("issue")
    ap.add_argument("--vacuum", metavar="COPY")
    a = ap.parse_args()
    conn = sqlite3.connect(f"file:{a.db}?mode=ro", uri=True)
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    free = conn.execute("PRAGMA freelist_count").fetchone()[0]
    if version >= 6:
        rows = conn.execute(
            "SELECT d.articles FROM deliveries d JOIN issues i ON i.id = d.issue WHERE i.key = ?",
            (a.issue,),
        ).fetchall()
        items = sum(sum(1 for b in blob if b < 0x80) for (blob,) in rows)
        tables = ("deliveries", "issues", "recipients", "articles")
    else:
        rows = conn.execute(
            "SELECT articles FROM deliveries WHERE issue = ?", (a.issue,)
        ).fetchall()
        items = sum(len(text.splitlines()) for (text,) in rows)
        tables = ("deliveries", "delivery_articles")
    marks = ",".join("?" * len(tables))
    record = conn.execute(
        f"SELECT coalesce(sum(s.pgsize), 0) FROM dbstat s JOIN sqlite_schema m ON m.name = s.name "
        f"WHERE m.tbl_name IN ({marks})",
        tables,
    ).fetchone()[0]
    line = [version, len(rows), items, pages * page_size, (pages - free) * page_size, record]
    if a.vacuum:
        if os.path.exists(a.vacuum):
            os.remove(a.vacuum)
        conn.execute("VACUUM INTO ?", (a.vacuum,))
        line.append(os.path.getsize(a.vacuum))
    print("\t".join(str(x) for x in line))


if __name__ == "__main__":
    sys.exit(main())
