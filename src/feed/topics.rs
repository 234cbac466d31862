//! Topic feeds (`[[topics]]`): which topics an article's keywords put it in.
//!
//! A topic is one more feed beside the site's and the sections' (the same
//! newest-N heap in [`super::Selection`]); this module only answers, for a
//! keyword, which topics name it. Keywords are compared without regard to
//! case, after the same one-line cleaning articles' keywords get. It is
//! asked for every keyword of every article loaded (millions): one hash
//! probe each, without a copy; only when some topic keyword has letters
//! with case (Latin, Cyrillic...) is a keyword with uppercase letters
//! folded and probed again. CJK keywords have no case: a site whose topics
//! are all CJK never pays for folding.

use crate::model::Topic;

/// Topic positions (in config order) by keyword, folded to lowercase.
#[derive(Debug)]
pub(crate) struct TopicIndex {
    /// Keywords and their topics, sorted by the keyword's XXH3 hash (kept
    /// beside): a one-shot hash and a binary search per probe, cheaper than
    /// a `HashMap`'s streaming hasher on these short strings.
    entries: Vec<(u64, String, Vec<usize>)>,
    /// Whether some topic keyword has a letter with case, and whether one
    /// of those is not ASCII.
    cased: bool,
    cased_beyond_ascii: bool,
    /// A filter of 4,096 bits over the first and last visible characters of
    /// each keyword (case folded as [`TopicIndex::of`] folds): a keyword as
    /// written, before cleaning, whose pair is not in it names no topic.
    /// Cleaning ([`crate::text::one_line`]) only removes whitespace and
    /// unsafe characters, so it never changes that pair.
    filter: Box<[u64; 64]>,
}

fn has_case(c: char) -> bool {
    c.is_lowercase() || c.is_uppercase()
}

impl TopicIndex {
    pub(crate) fn new(topics: &[Topic]) -> TopicIndex {
        let mut entries: Vec<(u64, String, Vec<usize>)> = Vec::new();
        for (i, topic) in topics.iter().enumerate() {
            for keyword in &topic.keywords {
                let folded = keyword.to_lowercase();
                match entries.iter_mut().find(|(_, k, _)| *k == folded) {
                    Some((_, _, list)) if list.contains(&i) => {}
                    Some((_, _, list)) => list.push(i),
                    None => entries.push((hash(&folded), folded, vec![i])),
                }
            }
        }
        entries.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        let cased = entries.iter().any(|(_, k, _)| k.chars().any(has_case));
        let cased_beyond_ascii = entries
            .iter()
            .any(|(_, k, _)| k.chars().any(|c| !c.is_ascii() && has_case(c)));
        let mut index = TopicIndex {
            entries,
            cased,
            cased_beyond_ascii,
            filter: Box::new([0; 64]),
        };
        for (_, keyword, _) in &index.entries {
            if let Some(bit) = index.filter_bit(keyword) {
                index.filter[bit / 64] |= 1 << (bit % 64);
            }
        }
        index
    }

    /// Whether `raw` (a keyword as written, not yet cleaned) may name a
    /// topic; `false` is certain.
    pub(crate) fn may_name(&self, raw: &str) -> bool {
        if self.cased_beyond_ascii {
            return !self.entries.is_empty();
        }
        self.filter_bit(raw)
            .is_some_and(|bit| self.filter[bit / 64] & (1 << (bit % 64)) != 0)
    }

    /// The filter bit of a keyword: its first and last visible characters,
    /// ASCII folded; `None` for one with none.
    fn filter_bit(&self, keyword: &str) -> Option<usize> {
        let visible = |c: &char| !c.is_whitespace() && !crate::text::is_unsafe_char(*c);
        let first = keyword.chars().find(visible)?.to_ascii_lowercase();
        let last = keyword.chars().rev().find(visible)?.to_ascii_lowercase();
        let mixed =
            (first as u32).wrapping_mul(0x9E37_79B1) ^ (last as u32).wrapping_mul(0x85EB_CA77);
        Some((mixed >> 20) as usize % 4096)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The topics (positions) that name `keyword`.
    pub(crate) fn of(&self, keyword: &str) -> &[usize] {
        if let Some(topics) = self.exact(keyword) {
            return topics;
        }
        // A keyword that folds to a topic keyword without case is that
        // keyword already: folding only matters for cased ones, and beyond
        // ASCII only when a topic keyword has such a letter.
        let folded = if self.cased_beyond_ascii {
            keyword
                .chars()
                .any(char::is_uppercase)
                .then(|| keyword.to_lowercase())
        } else if self.cased {
            keyword
                .bytes()
                .any(|b| b.is_ascii_uppercase())
                .then(|| keyword.to_ascii_lowercase())
        } else {
            None
        };
        folded.and_then(|k| self.exact(&k)).unwrap_or_default()
    }

    fn exact(&self, keyword: &str) -> Option<&[usize]> {
        let h = hash(keyword);
        let first = self.entries.partition_point(|(e, _, _)| *e < h);
        self.entries[first..]
            .iter()
            .take_while(|(e, _, _)| *e == h)
            .find(|(_, k, _)| k == keyword)
            .map(|(_, _, topics)| topics.as_slice())
    }

    /// The topics any of `keywords` puts an article in, each once, in
    /// config order.
    pub(crate) fn of_all<'k>(&self, keywords: impl IntoIterator<Item = &'k str>) -> Vec<usize> {
        let mut topics: Vec<usize> = keywords
            .into_iter()
            .flat_map(|k| self.of(k))
            .copied()
            .collect();
        topics.sort_unstable();
        topics.dedup();
        topics
    }
}

fn hash(keyword: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(keyword.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(id: &str, keywords: &[&str]) -> Topic {
        Topic {
            id: id.into(),
            title: id.into(),
            description: None,
            keywords: keywords.iter().map(|k| (*k).to_owned()).collect(),
            url: url::Url::parse("https://example.cn/").unwrap(),
        }
    }

    /// What the loader does with a sink, article by article, over three
    /// sinks merged; topic feeds must be what sorting every match gives.
    #[test]
    fn topic_feeds_hold_the_newest_matches_whatever_the_order() {
        use crate::load::Sink as _;
        use crate::model::{Article, Section, Sections, Site, SiteZone};
        let section = |id: &str| Section {
            id: id.into(),
            title: id.into(),
            description: None,
            url: url::Url::parse("https://example.cn/").unwrap(),
            parent: None,
        };
        let words = ["甲", "乙", "丙", "丁", "Ab", "ab", "戊"];
        let site = Site {
            title: "t".into(),
            base_url: url::Url::parse("https://example.cn/").unwrap(),
            language: "zh".into(),
            zone: SiteZone::parse("+08:00").unwrap(),
            description: "d".into(),
            sections: Sections::new(vec![section("a"), section("b")]),
            topics: vec![
                topic("t0", &["甲", "乙"]),
                topic("t1", &["丙"]),
                // Every topic matches: a topic matching nothing never fills,
                // and then every keyword is looked at.
                topic("t2", &["AB"]),
            ],
            logo: None,
            icon: None,
        };
        let now = chrono::DateTime::from_timestamp(2_000_000, 0).unwrap();
        let mut seed = 11u64;
        let mut random = |below: usize| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) as usize % below
        };
        for round in 0..40 {
            let articles: Vec<Article> = (0..200)
                .map(|i| {
                    let at = {
                        // Odd rounds: few distinct times, many ties.
                        let spread = if round % 2 == 0 { 2_100 } else { 12 };
                        chrono::DateTime::from_timestamp(
                            random(spread) as i64 * 2_000_000 / spread as i64,
                            0,
                        )
                        .unwrap()
                    };
                    let keywords: Vec<String> = (0..random(3))
                        .map(|_| words[random(words.len())].to_owned())
                        .collect();
                    Article {
                        id: format!("x{i}").into(),
                        title: "t".into(),
                        section: ["a", "b"][random(2)].into(),
                        url: url::Url::parse("https://example.cn/x").unwrap(),
                        published: at,
                        updated: at,
                        author: None,
                        editor: None,
                        source: None,
                        keywords,
                        summary: None,
                        content_html: None,
                        image: None,
                        related: Vec::new(),
                        views: None,
                    }
                })
                .collect();
            let per_feed = 1 + random(8);
            let mut sinks: Vec<super::super::Selection> = (0..3)
                .map(|_| super::super::Selection::new(&site, now, per_feed))
                .collect();
            for (i, a) in articles.iter().enumerate() {
                let sink = &mut sinks[i % 3];
                sink.add(a.clone());
            }
            let mut all = sinks.remove(0);
            for other in sinks {
                all.merge(other);
            }
            let feeds = all.feeds();
            for (t, topic) in site.topics.iter().enumerate() {
                let index = TopicIndex::new(std::slice::from_ref(topic));
                let mut expected: Vec<&Article> = articles
                    .iter()
                    .filter(|a| a.published <= now)
                    .filter(|a| a.keywords.iter().any(|k| !index.of(k).is_empty()))
                    .collect();
                expected.sort_by(|a, b| Article::newest_first(a, b));
                expected.truncate(per_feed);
                let got = &feeds[1 + site.sections.len() + t];
                assert_eq!(got.topic.map(|t| t.id.as_str()), Some(topic.id.as_str()));
                let ids =
                    |list: &[&Article]| list.iter().map(|a| a.id.to_string()).collect::<Vec<_>>();
                assert_eq!(
                    ids(&got.items),
                    ids(&expected),
                    "round {round}, topic {}",
                    topic.id
                );
            }
        }
    }

    #[test]
    fn keywords_find_their_topics_without_regard_to_case() {
        let index = TopicIndex::new(&[
            topic("jiceng", &["基层干部", "深入基层"]),
            topic("fupin", &["脱贫攻坚", "基层干部"]),
            topic("ai", &["AI", "人工智能"]),
        ]);
        assert_eq!(index.of("基层干部"), &[0, 1]);
        assert_eq!(index.of("深入基层"), &[0]);
        assert_eq!(index.of("ai"), &[2]);
        assert_eq!(index.of("Ai"), &[2]);
        assert!(index.of("AII").is_empty());
        assert!(index.of("基层").is_empty());
        assert_eq!(
            index.of_all(["人工智能", "脱贫攻坚", "基层干部"]),
            vec![0, 1, 2]
        );
        assert!(TopicIndex::new(&[]).is_empty());
        // The filter turns down keywords as written, never one that names a
        // topic once cleaned.
        for raw in [" 基层干部 ", "深入\u{B}基层", "ai", "AI\t"] {
            assert!(index.may_name(raw), "{raw:?}");
        }
        let turned_down = ["天气", "郑州", "芯片", "高考", "足球", "地铁"]
            .iter()
            .filter(|k| !index.may_name(k))
            .count();
        assert!(turned_down >= 5, "{turned_down}");
        // Beyond ASCII when a topic keyword needs it.
        let index = TopicIndex::new(&[topic("ru", &["Новости"]), topic("x", &["Straße"])]);
        assert_eq!(index.of("НОВОСТИ"), &[0]);
        assert_eq!(index.of("straße"), &[1]);
    }
}
