//! Related reads: the editor's picks first, then the closest articles by
//! shared keywords, weighted by rarity.
//!
//! An inverted index maps each keyword to the articles carrying it (newest
//! first), so scoring one article touches only the postings of its own
//! keywords, never the whole archive. Keywords are interned to integers and
//! postings are `u32` indexes: about 4 bytes per (article, keyword) pair.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::model::{Article, ArticleId};

/// Postings scanned per keyword at most. A keyword on more articles than
/// this carries little information (its weight is near zero); scanning only
/// its newest postings bounds the cost on very large archives.
const MAX_POSTINGS_SCANNED: usize = 20_000;

/// Hash maps over the archive's ids and keywords: XXH3 instead of SipHash
/// (no untrusted-key flooding concern for a batch tool; much faster).
type FastMap<K, V> = HashMap<K, V, xxhash_rust::xxh3::Xxh3DefaultBuilder>;

/// A ranking candidate: (score, same section, published, article index).
type Candidate = (f64, bool, i64, u32);

/// A cached ranking, and whether it was cut short at its depth.
type Ranking = (Arc<[u32]>, bool);

pub struct RelatedIndex<'a> {
    articles: &'a [Article],
    by_id: FastMap<&'a str, u32>,
    keyword_ids: FastMap<&'a str, u32>,
    /// Per keyword id: article indexes, newest first.
    postings: Vec<Vec<u32>>,
    /// Articles published by the digest's clock; later ones are embargoed.
    visible: Vec<bool>,
    /// Per article: its section (hashed) and its publication time, so
    /// ranking compares integers.
    section_of: Vec<u64>,
    published: Vec<i64>,
    /// Candidates ranked per article, the first `depth` of them.
    cache: Mutex<HashMap<ArticleId, Ranking>>,
    depth: usize,
    /// Scores by article index, all zero between rankings (dense: one add
    /// per posting, no hashing).
    scores: Mutex<Vec<f64>>,
}

impl<'a> RelatedIndex<'a> {
    /// Rank at least `depth` candidates per article: enough for any email
    /// whose items and picks number fewer (beyond that, ranking is redone).
    pub fn with_depth(mut self, depth: usize) -> Self {
        self.depth = depth;
        self
    }

    pub fn new(articles: &'a [Article], now: DateTime<Utc>) -> Self {
        // Newest first; pdqsort finds an already sorted archive in one pass.
        let mut order: Vec<u32> = (0..articles.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| {
            Article::newest_first(&articles[a as usize], &articles[b as usize])
        });
        // Postings are built in parallel over runs of the newest-first order
        // and joined in order, while this thread maps ids to articles.
        let workers = crate::parallel::cores().clamp(1, 8);
        let run = order.len().div_ceil(workers).max(1);
        let (parts, by_id) = std::thread::scope(|scope| {
            let handles: Vec<_> = order
                .chunks(run)
                .map(|part| {
                    scope.spawn(move || {
                        let mut map: FastMap<&str, Vec<u32>> = FastMap::default();
                        let mut first_seen: Vec<&str> = Vec::new();
                        for &i in part {
                            for keyword in &articles[i as usize].keywords {
                                let list = map.entry(keyword.as_str()).or_insert_with(|| {
                                    first_seen.push(keyword.as_str());
                                    Vec::new()
                                });
                                list.push(i);
                            }
                        }
                        (first_seen, map)
                    })
                })
                .collect();
            let by_id: FastMap<&str, u32> = articles
                .iter()
                .enumerate()
                .map(|(i, a)| (a.id.as_str(), i as u32))
                .collect();
            let parts: Vec<_> = handles
                .into_iter()
                .map(|h| h.join().expect("an index thread panicked"))
                .collect();
            (parts, by_id)
        });
        let mut keyword_ids: FastMap<&str, u32> = FastMap::default();
        let mut postings: Vec<Vec<u32>> = Vec::new();
        for (first_seen, mut map) in parts {
            for keyword in first_seen {
                let list = map.remove(keyword).expect("every keyword seen has a list");
                let next = keyword_ids.len() as u32;
                let k = *keyword_ids.entry(keyword).or_insert(next);
                if k as usize == postings.len() {
                    postings.push(list);
                } else {
                    postings[k as usize].extend(list);
                }
            }
        }
        // Per-article integers for ranking, on every core: reading each
        // article's section is a cache miss. A section is known by a 64-bit
        // hash of its id (a collision among a site's sections, ~1e-15, would
        // only merge their "same section" tie-break).
        let columns = crate::parallel::map(articles, crate::parallel::cores(), |a| {
            let section = xxhash_rust::xxh3::xxh3_64(a.section.as_str().as_bytes());
            (a.published <= now, section, a.published.timestamp())
        });
        RelatedIndex {
            articles,
            by_id,
            keyword_ids,
            postings,
            visible: columns.iter().map(|c| c.0).collect(),
            section_of: columns.iter().map(|c| c.1).collect(),
            published: columns.iter().map(|c| c.2).collect(),
            cache: Mutex::new(HashMap::new()),
            depth: 64,
            scores: Mutex::new(vec![0.0; articles.len()]),
        }
    }

    /// Up to `limit` related reads for `article`, skipping anything in
    /// `listed` (the email's items and the reads picked so far) and adding
    /// what it picks to `listed`. Unknown editor's picks are returned in
    /// `unknown` so the caller can warn once.
    pub fn related(
        &self,
        article: &Article,
        limit: usize,
        listed: &mut HashSet<&'a str>,
        unknown: &mut Vec<ArticleId>,
    ) -> Vec<&'a Article> {
        let mut picked = Vec::new();
        if limit == 0 {
            return picked;
        }
        // The ranking of an article's candidates is the same in every email;
        // only what is already listed differs. Rank once, filter per email.
        let depth = self.depth.max(limit.saturating_add(listed.len()));
        let (ranked, cut) = self.ranked(article, depth, unknown);
        for &i in ranked.iter() {
            let candidate = &self.articles[i as usize];
            if listed.insert(candidate.id.as_str()) {
                picked.push(candidate);
                if picked.len() == limit {
                    return picked;
                }
            }
        }
        if cut {
            // The cut-off list ran out under this email's exclusions: rank in full.
            for candidate in self
                .rank(article, usize::MAX, &mut Vec::new())
                .into_iter()
                .map(|i| &self.articles[i as usize])
            {
                if picked.len() == limit {
                    break;
                }
                if listed.insert(candidate.id.as_str()) {
                    picked.push(candidate);
                }
            }
        }
        picked
    }

    /// The cached ranking of `article`'s candidates, at least `depth` long
    /// when there are that many.
    /// The list, and whether it was cut short at its depth.
    fn ranked(&self, article: &Article, depth: usize, unknown: &mut Vec<ArticleId>) -> Ranking {
        let key = article.id.clone();
        if let Some(hit) = self.cache.lock().expect("cache lock").get(&key) {
            return hit.clone();
        }
        let list: Arc<[u32]> = self.rank(article, depth, unknown).into();
        let entry = (list.clone(), list.len() >= depth);
        self.cache
            .lock()
            .expect("cache lock")
            .insert(key, entry.clone());
        entry
    }

    /// Candidates in order: the editor's picks, then by shared keywords
    /// weighted by rarity, same section and recency breaking ties. Never the
    /// article itself, never an embargoed one, each once; at most `depth`.
    fn rank(&self, article: &Article, depth: usize, unknown: &mut Vec<ArticleId>) -> Vec<u32> {
        let mut scores = self.scores.lock().expect("scores lock");
        self.rank_with(article, depth, unknown, &mut scores)
    }

    /// Ranks the candidates of every article in `articles` on all cores, so
    /// later calls to [`related`](Self::related) find them cached. Returns
    /// the editor's related ids that name no article.
    pub fn prerank(&self, articles: &[&Article]) -> Vec<(ArticleId, ArticleId)> {
        let depth = self.depth;
        // One dense score buffer per thread (8 bytes an article), so at most 16.
        let unknown = crate::parallel::map_with(
            articles,
            crate::parallel::cores().min(16),
            || vec![0.0; self.articles.len()],
            |scores, &article| {
                let mut missing = Vec::new();
                let list: Arc<[u32]> = self.rank_with(article, depth, &mut missing, scores).into();
                let cut = list.len() >= depth;
                self.cache
                    .lock()
                    .expect("cache lock")
                    .insert(article.id.clone(), (list, cut));
                missing
                    .into_iter()
                    .map(|id| (article.id.clone(), id))
                    .collect::<Vec<_>>()
            },
        );
        unknown.into_iter().flatten().collect()
    }

    fn rank_with(
        &self,
        article: &Article,
        depth: usize,
        unknown: &mut Vec<ArticleId>,
        scores: &mut [f64],
    ) -> Vec<u32> {
        let mut order = Vec::new();
        let mut seen = HashSet::new();
        // Ids are unique: the article is its index, compared without reading
        // the candidates (a cache miss each, over many thousands of them).
        let itself = self.by_id.get(article.id.as_str()).copied();
        let usable = |i: u32| {
            self.visible[i as usize]
                && match itself {
                    Some(me) => i != me,
                    None => self.articles[i as usize].id != article.id,
                }
        };
        for id in &article.related {
            match self.by_id.get(id.as_str()) {
                Some(&i) => {
                    if usable(i) && seen.insert(i) {
                        order.push(i);
                    }
                }
                None => unknown.push(id.clone()),
            }
        }

        let total = self.articles.len() as f64;
        let mut touched: Vec<u32> = Vec::new();
        for keyword in &article.keywords {
            let Some(&k) = self.keyword_ids.get(keyword.as_str()) else {
                continue;
            };
            let posting = &self.postings[k as usize];
            // Rarer keywords say more: an IDF-like weight.
            let weight = (total / posting.len() as f64).ln() + 1.0;
            for &i in posting.iter().take(MAX_POSTINGS_SCANNED) {
                let score = &mut scores[i as usize];
                if *score == 0.0 {
                    touched.push(i);
                }
                *score += weight;
            }
        }
        let own_section = itself.map(|i| self.section_of[i as usize]);
        // Candidates as (score, same section, published, index), compared
        // without touching the articles; the id breaks a full tie. Only the
        // best `wanted` are kept, in a bounded heap whose top is the worst.
        let better = |a: &Candidate, b: &Candidate| {
            b.0.total_cmp(&a.0)
                .then_with(|| b.1.cmp(&a.1))
                .then_with(|| b.2.cmp(&a.2))
                .then_with(|| {
                    self.articles[a.3 as usize]
                        .id
                        .cmp(&self.articles[b.3 as usize].id)
                })
        };
        let wanted = depth.saturating_sub(order.len());
        let mut best: Vec<Candidate> = Vec::with_capacity(wanted.min(touched.len()) + 1);
        for &i in &touched {
            if wanted == 0 {
                break;
            }
            if !usable(i) || seen.contains(&i) {
                continue;
            }
            let same = Some(self.section_of[i as usize]) == own_section
                || (own_section.is_none() && self.articles[i as usize].section == article.section);
            let candidate = (scores[i as usize], same, self.published[i as usize], i);
            if best.len() < wanted {
                best.push(candidate);
                if best.len() == wanted {
                    // Worst first from here on.
                    best.sort_by(|a, b| better(b, a));
                }
            } else if better(&candidate, &best[0]).is_lt() {
                // Replace the worst and restore the order (k is small).
                // Worse-than-candidate entries come first.
                let at = best.partition_point(|kept| better(&candidate, kept).is_lt());
                best.insert(at, candidate);
                best.remove(0);
            }
        }
        for &i in &touched {
            scores[i as usize] = 0.0;
        }
        let mut ranked = best;
        ranked.sort_by(better);
        order.extend(ranked.into_iter().map(|(_, _, _, i)| i).take(wanted));
        order.truncate(depth);
        order
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use chrono::{DateTime, Duration, TimeZone, Utc};

    use super::RelatedIndex;
    use crate::model::{Article, ArticleId};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2017, 3, 25, 0, 0, 0).unwrap()
    }

    /// An article published `hours` before [`now`] (negative: after).
    fn article(
        id: &str,
        section: &str,
        hours: i64,
        keywords: &[&str],
        related: &[&str],
    ) -> Article {
        let published = now() - Duration::hours(hours);
        Article {
            id: id.into(),
            title: format!("title {id}"),
            section: section.into(),
            url: format!("https://news.example.cn/{id}.html")
                .parse()
                .unwrap(),
            published,
            updated: published,
            author: None,
            editor: None,
            source: None,
            keywords: keywords.iter().map(|k| k.to_string()).collect(),
            summary: None,
            content_html: None,
            image: None,
            related: related.iter().map(|&r| ArticleId::from(r)).collect(),
            views: None,
        }
    }

    /// Related reads of `articles[of]` with nothing else listed.
    fn picks(articles: &[Article], of: usize, limit: usize) -> (Vec<ArticleId>, Vec<ArticleId>) {
        let index = RelatedIndex::new(articles, now());
        let mut listed = HashSet::from([articles[of].id.as_str()]);
        let mut unknown = Vec::new();
        let picked = index.related(&articles[of], limit, &mut listed, &mut unknown);
        (picked.iter().map(|a| a.id.clone()).collect(), unknown)
    }

    #[test]
    fn editors_picks_first_in_order_then_keywords() {
        let articles = [
            article("x", "news", 1, &["k"], &["p3", "p1", "p2"]),
            article("p1", "tech", 100, &[], &[]),
            article("p2", "tech", 200, &[], &[]),
            article("p3", "tech", 300, &[], &[]),
            article("k1", "news", 400, &["k"], &[]),
        ];
        assert_eq!(picks(&articles, 0, 5).0, ["p3", "p1", "p2", "k1"]);
        assert_eq!(picks(&articles, 0, 2).0, ["p3", "p1"]);
        assert!(picks(&articles, 0, 0).0.is_empty());
    }

    #[test]
    fn never_itself_and_never_twice() {
        let articles = [
            article("x", "news", 1, &["k"], &["x", "p1", "p1", "p2"]),
            article("p1", "tech", 100, &["k"], &[]),
            article("p2", "tech", 200, &["k"], &[]),
            article("p3", "tech", 300, &["k"], &[]),
        ];
        // p1 and p2 also share the keyword: they are not picked again.
        assert_eq!(picks(&articles, 0, 10).0, ["p1", "p2", "p3"]);
        // The repeated id costs no slot.
        assert_eq!(picks(&articles, 0, 2).0, ["p1", "p2"]);
    }

    #[test]
    fn never_itself_even_when_not_listed() {
        let articles = [
            article("x", "news", 1, &["k"], &["x", "p1"]),
            article("p1", "tech", 100, &["k"], &[]),
        ];
        let index = RelatedIndex::new(&articles, now());
        let (mut listed, mut unknown) = (HashSet::new(), Vec::new());
        let picked = index.related(&articles[0], 3, &mut listed, &mut unknown);
        let ids: Vec<&str> = picked.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["p1"]);
    }

    #[test]
    fn unknown_ids_are_returned_and_skipped() {
        let articles = [
            article("x", "news", 1, &[], &["ghost", "p1"]),
            article("p1", "tech", 100, &[], &[]),
        ];
        let (picked, unknown) = picks(&articles, 0, 3);
        assert_eq!(picked, ["p1"]);
        assert_eq!(unknown, ["ghost"]);
    }

    #[test]
    fn what_is_listed_is_skipped_and_what_is_picked_becomes_listed() {
        let articles = [
            article("a", "news", 1, &["k"], &["c"]),
            article("b", "news", 2, &["k"], &["c"]),
            article("c", "tech", 100, &["k"], &[]),
            article("d", "tech", 200, &["k"], &[]),
        ];
        let index = RelatedIndex::new(&articles, now());
        let mut listed = HashSet::from(["a", "b"]);
        let mut unknown = Vec::new();
        let first = index.related(&articles[0], 3, &mut listed, &mut unknown);
        let ids: Vec<&str> = first.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["c", "d"]);
        assert!(listed.contains("c") && listed.contains("d"));
        let second = index.related(&articles[1], 3, &mut listed, &mut unknown);
        assert!(
            second.is_empty(),
            "picked again: {:?}",
            second.iter().map(|a| &a.id).collect::<Vec<_>>()
        );
    }

    #[test]
    fn rarer_shared_keywords_weigh_more() {
        let mut articles = vec![
            article("x", "news", 1, &["common", "rare"], &[]),
            // Same section and newer, sharing only the common keyword.
            article("y", "news", 10, &["common"], &[]),
            // Another section and older, sharing the rare one.
            article("z", "tech", 500, &["rare"], &[]),
        ];
        for i in 0..5 {
            articles.push(article(
                &format!("f{i}"),
                "finance",
                1000 + i,
                &["common"],
                &[],
            ));
        }
        assert_eq!(picks(&articles, 0, 2).0, ["z", "y"]);
    }

    #[test]
    fn more_shared_keywords_weigh_more() {
        let articles = [
            article("x", "news", 1, &["a", "b", "c"], &[]),
            article("one", "news", 10, &["a"], &[]),
            article("two", "tech", 20, &["a", "b"], &[]),
            article("three", "tech", 30, &["a", "b", "c"], &[]),
        ];
        assert_eq!(picks(&articles, 0, 3).0, ["three", "two", "one"]);
    }

    #[test]
    fn ties_prefer_the_same_section_then_the_newest() {
        let articles = [
            article("x", "news", 1, &["k"], &[]),
            article("other-new", "tech", 10, &["k"], &[]),
            article("same-old", "news", 300, &["k"], &[]),
            article("same-new", "news", 20, &["k"], &[]),
        ];
        assert_eq!(
            picks(&articles, 0, 3).0,
            ["same-new", "same-old", "other-new"]
        );
    }

    #[test]
    fn articles_after_now_are_never_picked() {
        let articles = [
            article("x", "news", 1, &["k"], &["future"]),
            article("future", "news", -1, &["k"], &[]),
            article("past", "tech", 100, &["k"], &[]),
        ];
        assert_eq!(picks(&articles, 0, 3).0, ["past"]);
    }

    #[test]
    fn no_shared_keyword_no_keyword_pick() {
        let articles = [
            article("x", "news", 1, &["k"], &[]),
            article("y", "news", 2, &["other"], &[]),
            article("z", "news", 3, &[], &[]),
        ];
        assert!(picks(&articles, 0, 3).0.is_empty());
    }

    fn ids(picked: Vec<&Article>) -> Vec<&str> {
        picked.iter().map(|a| a.id.as_str()).collect()
    }

    /// One index serves every email of a run: the ranking it caches for an
    /// article must give each email its own picks, whatever the others listed.
    #[test]
    fn the_cached_ranking_serves_emails_with_different_listings() {
        let mut articles = vec![article("x", "news", 1, &["k"], &["c3"])];
        for i in 1..=5 {
            articles.push(article(&format!("c{i}"), "tech", 100 * i, &["k"], &[]));
        }
        let index = RelatedIndex::new(&articles, now());
        let mut unknown = Vec::new();
        let mut listed = HashSet::from(["x", "c3", "c1"]);
        let first = index.related(&articles[0], 2, &mut listed, &mut unknown);
        assert_eq!(ids(first), ["c2", "c4"]);
        let mut listed = HashSet::from(["x"]);
        let second = index.related(&articles[0], 2, &mut listed, &mut unknown);
        assert_eq!(ids(second), ["c3", "c1"]);
    }

    /// `with_depth` says an email listing more than `depth` articles gets
    /// its ranking redone in full. The cache must not hand such an email the
    /// list cut at the depth of an earlier, smaller call: here the second
    /// email finds both cached candidates listed and gets no picks at all,
    /// though c3, c4 and c5 are available. (Not reachable through `plan`
    /// today, whose depth covers every email; a trap for any other caller.)
    #[test]
    fn a_ranking_cut_for_a_small_email_is_redone_for_a_fuller_one() {
        let mut articles = vec![article("x", "news", 1, &["k"], &[])];
        for i in 1..=5 {
            articles.push(article(&format!("c{i}"), "tech", 100 * i, &["k"], &[]));
        }
        let index = RelatedIndex::new(&articles, now()).with_depth(2);
        let mut unknown = Vec::new();
        let mut listed = HashSet::from(["x"]);
        let first = index.related(&articles[0], 1, &mut listed, &mut unknown);
        assert_eq!(ids(first), ["c1"]);
        // Another email, in which c1 and c2 are items already.
        let mut listed = HashSet::from(["x", "c1", "c2"]);
        let second = index.related(&articles[0], 2, &mut listed, &mut unknown);
        assert_eq!(ids(second), ["c3", "c4"]);
    }
}
