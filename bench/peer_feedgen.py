#!/usr/bin/env python3
"""The Python peer: what a competent Python user would write with feedgen.

    peer_feedgen.py CONFIG_DIR OUT_DIR [--now RFC3339]

Reads CONFIG_DIR/feeds.toml (site, sections with parents, [input] paths,
[output] items), streams every JSON Lines input line by line with
json.loads, keeps the newest `items` articles per section (a parent's feed
includes its children's) and site-wide with heapq, and writes RSS and Atom
with feedgen to OUT_DIR/feeds/rss.xml, OUT_DIR/feeds/atom.xml and
OUT_DIR/feeds/<section>/{rss,atom}.xml. Needs `pip install feedgen`.
"""

import argparse
import heapq
import json
import os
import re
import tomllib
from datetime import datetime
from zoneinfo import ZoneInfo

from feedgen.feed import FeedGenerator


def parse_date(text, tz):
    dt = datetime.fromisoformat(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return dt


def keyword_list(value):
    if value is None:
        return []
    if isinstance(value, str):
        value = re.split(r"[;；,，、]", value)
    return [k.strip() for k in value if k.strip()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("config_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--now", help="skip articles published after this time")
    args = ap.parse_args()

    with open(os.path.join(args.config_dir, "feeds.toml"), "rb") as f:
        config = tomllib.load(f)
    site = config["site"]
    tz = ZoneInfo(site.get("timezone", "UTC"))
    base = site["base_url"]
    limit = config.get("output", {}).get("items", 50)
    sections = {s["id"]: s for s in config.get("sections", [])}
    now = datetime.fromisoformat(args.now) if args.now else None

    def ancestry(section_id):
        while section_id:
            yield section_id
            section_id = sections[section_id].get("parent")

    heaps = {None: []}  # None = the whole site
    for sid in sections:
        heaps[sid] = []

    def keep(key, entry):
        heap = heaps[key]
        if len(heap) < limit:
            heapq.heappush(heap, entry)
        elif entry > heap[0]:
            heapq.heappushpop(heap, entry)

    for path in config["input"]["paths"]:
        with open(os.path.join(args.config_dir, path), encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                article = json.loads(line)
                published = parse_date(article["published"], tz)
                if now and published > now:
                    continue
                entry = (published, article["id"], article)
                keep(None, entry)
                for sid in ancestry(article["section"]):
                    keep(sid, entry)

    feeds_dir = os.path.join(args.out_dir, "feeds")
    for sid, heap in heaps.items():
        fg = FeedGenerator()
        fg.load_extension("dc")
        if sid is None:
            title, folder, home = site["title"], feeds_dir, base
        else:
            section = sections[sid]
            title = f"{site['title']} · {section['title']}"
            folder = os.path.join(feeds_dir, sid)
            home = base + sid + "/"
        feed_url = base + os.path.relpath(folder, args.out_dir).replace(os.sep, "/") + "/"
        fg.id(feed_url + "atom.xml")
        fg.title(title)
        fg.link(href=feed_url + "atom.xml", rel="self")
        fg.link(href=home, rel="alternate")
        fg.description(site.get("description", site["title"]))
        fg.language(site.get("language", "zh-CN"))
        fg.author({"name": site["title"]})
        for published, aid, a in sorted(heap, reverse=True):
            fe = fg.add_entry(order="append")
            fe.id(a["id"])
            fe.guid(a["id"], permalink=False)
            fe.title(a["title"])
            fe.link(href=a["url"])
            fe.published(published)
            fe.updated(parse_date(a["updated"], tz) if a.get("updated") else published)
            if a.get("author"):
                fe.author({"name": a["author"]})
                fe.dc.dc_creator(a["author"])
            if a.get("summary"):
                fe.description(a["summary"])
            if a.get("content_html"):
                fe.content(a["content_html"], type="html")
            for kw in keyword_list(a.get("keywords")):
                fe.category(term=kw)
        os.makedirs(folder, exist_ok=True)
        fg.rss_file(os.path.join(folder, "rss.xml"))
        fg.atom_file(os.path.join(folder, "atom.xml"))
    print(f"wrote {2 * len(heaps)} feeds to {feeds_dir}")


if __name__ == "__main__":
    main()
