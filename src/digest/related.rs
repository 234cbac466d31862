//! Related reads: the editor's picks first, then the closest articles by
//! shared keywords, weighted by rarity.
//!
//! An inverted index maps each keyword to the articles carrying it (newest
//! first), so scoring one article touches only the postings of its own
//! keywords, never the whole archive. It works on the catalog's columns
//! ([`Catalog`]: ids, interned keywords, sections, times), never on decoded
//! articles, and answers with article indexes: postings are `u32` in one
//! flat array, about 4 bytes per (article, keyword) pair.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::catalog::Catalog;
use crate::model::{Article, ArticleId};

/// Postings scanned per keyword at most. A keyword on more articles than
/// this carries little information (its weight is near zero); scanning only
/// its newest postings bounds the cost on very large archives.
const MAX_POSTINGS_SCANNED: usize = 20_000;

/// A ranking candidate: (score, same section, published, rank).
type Candidate = (f64, bool, i64, u32);

/// A cached ranking (catalog indexes), and whether it was cut short at its
/// depth.
type Ranking = (Arc<[u32]>, bool);

/// Ranking works on *ranks* (0 the newest article), not catalog indexes: a
/// keyword's postings are then increasing ranks, and scoring walks the score
/// array and the columns below forward, mostly within the newest articles,
/// instead of jumping about a million-article catalog (a cache miss a
/// posting).
/// The catalog's indexes newest first, the id breaking a tie (as
/// `Article::newest_first`): sorted on an integer key (time, index), then
/// only runs of equal times put in id order.
fn newest_first(catalog: &Catalog) -> Vec<u32> {
    let mut keys: Vec<(i64, u32, u32)> = (0..catalog.len() as u32)
        .map(|i| {
            let (seconds, nanos) = catalog.published(i);
            // `!` reverses the order without overflow: newest first.
            (!seconds, !nanos, i)
        })
        .collect();
    keys.sort_unstable();
    let mut order: Vec<u32> = keys.iter().map(|k| k.2).collect();
    let mut start = 0;
    while start < keys.len() {
        let time = (keys[start].0, keys[start].1);
        let end = start + keys[start..].partition_point(|k| (k.0, k.1) == time);
        if end - start > 1 {
            order[start..end].sort_unstable_by(|&a, &b| catalog.id(a).cmp(catalog.id(b)));
        }
        start = end;
    }
    order
}

/// Every keyword's articles as ranks, newest first, in one array: counted
/// first to size each keyword's run, then filled in rank order.
fn postings(catalog: &Catalog, article_at: &[u32]) -> (Vec<u32>, Vec<usize>) {
    let mut starts = vec![0usize; catalog.keyword_count() + 1];
    for i in 0..catalog.len() as u32 {
        for &k in catalog.keywords(i) {
            starts[k as usize + 1] += 1;
        }
    }
    for k in 1..starts.len() {
        starts[k] += starts[k - 1];
    }
    let mut next = starts.clone();
    let mut postings = vec![0u32; starts[starts.len() - 1]];
    for (rank, &i) in article_at.iter().enumerate() {
        for &k in catalog.keywords(i) {
            postings[next[k as usize]] = rank as u32;
            next[k as usize] += 1;
        }
    }
    (postings, starts)
}

pub struct RelatedIndex<'a> {
    catalog: &'a Catalog,
    /// (XXH3 of the id, catalog index), sorted: 12 bytes an article where a
    /// hash map of ids took ~50.
    by_id: Vec<(u64, u32)>,
    /// The catalog index of each rank, and the rank of each index.
    article_at: Vec<u32>,
    rank_of: Vec<u32>,
    /// By rank: published by the digest's clock (later ones are
    /// embargoed), section, publication time in seconds.
    visible: Vec<bool>,
    section: Vec<u32>,
    seconds: Vec<i64>,
    /// Keyword `k`'s articles as ranks, newest first, are
    /// `postings[starts[k]..starts[k + 1]]`.
    postings: Vec<u32>,
    starts: Vec<usize>,
    /// Candidates ranked per article, the first `depth` of them.
    cache: Mutex<HashMap<ArticleId, Ranking>>,
    depth: usize,
    /// Scores by rank, all zero between rankings (dense: one add per
    /// posting, no hashing).
    scores: Mutex<Vec<f64>>,
}

impl<'a> RelatedIndex<'a> {
    /// Rank at least `depth` candidates per article: enough for any email
    /// whose items and picks number fewer (beyond that, ranking is redone).
    pub fn with_depth(mut self, depth: usize) -> Self {
        self.depth = depth;
        self
    }

    pub fn new(catalog: &'a Catalog, now: DateTime<Utc>) -> Self {
        let n = catalog.len() as u32;
        // The id lookup is built on another thread meanwhile.
        std::thread::scope(|scope| {
            let by_id = scope.spawn(|| {
                let mut by_id: Vec<(u64, u32)> = (0..n)
                    .map(|i| (xxhash_rust::xxh3::xxh3_64(catalog.id(i).as_bytes()), i))
                    .collect();
                by_id.sort_unstable();
                by_id
            });
            let article_at = newest_first(catalog);
            let mut rank_of = vec![0u32; n as usize];
            for (rank, &i) in article_at.iter().enumerate() {
                rank_of[i as usize] = rank as u32;
            }
            let now = (now.timestamp(), now.timestamp_subsec_nanos());
            let visible = article_at
                .iter()
                .map(|&i| catalog.published(i) <= now)
                .collect();
            let section = article_at.iter().map(|&i| catalog.section(i)).collect();
            let seconds = article_at.iter().map(|&i| catalog.seconds(i)).collect();
            let (postings, starts) = postings(catalog, &article_at);
            RelatedIndex {
                catalog,
                by_id: by_id.join().expect("the id index thread panicked"),
                article_at,
                rank_of,
                visible,
                section,
                seconds,
                postings,
                starts,
                cache: Mutex::new(HashMap::new()),
                depth: 64,
                scores: Mutex::new(vec![0.0; n as usize]),
            }
        })
    }

    /// The rank of the article with id `id`.
    fn find(&self, id: &str) -> Option<u32> {
        let hash = xxhash_rust::xxh3::xxh3_64(id.as_bytes());
        let first = self.by_id.partition_point(|&(h, _)| h < hash);
        self.by_id[first..]
            .iter()
            .take_while(|&&(h, _)| h == hash)
            .map(|&(_, i)| i)
            .find(|&i| self.catalog.id(i) == id)
            .map(|i| self.rank_of[i as usize])
    }

    /// The id of the article at `rank`.
    fn id(&self, rank: u32) -> &'a str {
        let catalog: &'a Catalog = self.catalog;
        catalog.id(self.article_at[rank as usize])
    }

    fn posting(&self, keyword: u32) -> &[u32] {
        let k = keyword as usize;
        &self.postings[self.starts[k]..self.starts[k + 1]]
    }

    /// Up to `limit` related reads for `article`, as catalog indexes,
    /// skipping anything in `listed` (the email's items and the reads
    /// picked so far) and adding what it picks to `listed`. Unknown
    /// editor's picks are returned in `unknown` so the caller can warn once.
    pub fn related(
        &self,
        article: &Article,
        limit: usize,
        listed: &mut HashSet<&'a str>,
        unknown: &mut Vec<ArticleId>,
    ) -> Vec<u32> {
        let mut picked = Vec::new();
        if limit == 0 {
            return picked;
        }
        let catalog: &'a Catalog = self.catalog;
        // The ranking of an article's candidates is the same in every email;
        // only what is already listed differs. Rank once, filter per email.
        let depth = self.depth.max(limit.saturating_add(listed.len()));
        let (ranked, cut) = self.ranked(article, depth, unknown);
        for &i in ranked.iter() {
            if listed.insert(catalog.id(i)) {
                picked.push(i);
                if picked.len() == limit {
                    return picked;
                }
            }
        }
        if cut {
            // The cut-off list ran out under this email's exclusions: rank in full.
            for i in self.rank(article, usize::MAX, &mut Vec::new()) {
                if picked.len() == limit {
                    break;
                }
                if listed.insert(catalog.id(i)) {
                    picked.push(i);
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
            || vec![0.0; self.catalog.len()],
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

    /// Candidates as catalog indexes; see [`rank`](Self::rank).
    fn rank_with(
        &self,
        article: &Article,
        depth: usize,
        unknown: &mut Vec<ArticleId>,
        scores: &mut [f64],
    ) -> Vec<u32> {
        let mut order = Vec::new();
        let mut seen = HashSet::new();
        // Ids are unique: the article is its rank, compared without reading
        // the candidates' ids (over many thousands of them).
        let itself = self.find(article.id.as_str());
        let usable = |r: u32| {
            self.visible[r as usize]
                && match itself {
                    Some(me) => r != me,
                    None => self.id(r) != article.id.as_str(),
                }
        };
        for id in &article.related {
            match self.find(id.as_str()) {
                Some(r) => {
                    if usable(r) && seen.insert(r) {
                        order.push(r);
                    }
                }
                None => unknown.push(id.clone()),
            }
        }

        let total = self.catalog.len() as f64;
        let mut touched: Vec<u32> = Vec::new();
        for keyword in &article.keywords {
            let Some(k) = self.catalog.keyword(keyword) else {
                continue;
            };
            let posting = self.posting(k);
            // Rarer keywords say more: an IDF-like weight.
            let weight = (total / posting.len() as f64).ln() + 1.0;
            for &r in posting.iter().take(MAX_POSTINGS_SCANNED) {
                let score = &mut scores[r as usize];
                if *score == 0.0 {
                    touched.push(r);
                }
                *score += weight;
            }
        }
        let own_section = itself.map(|r| self.section[r as usize]);
        // Candidates as (score, same section, published, rank), compared
        // without touching the articles; the id breaks a full tie. Only the
        // best are kept, in a list whose first is the worst. The editor's
        // picks are left out at the end: keeping as many more as there are
        // picks keeps the same others as leaving them out on the way.
        let better = |a: &Candidate, b: &Candidate| {
            b.0.total_cmp(&a.0)
                .then_with(|| b.1.cmp(&a.1))
                .then_with(|| b.2.cmp(&a.2))
                .then_with(|| self.id(a.3).cmp(self.id(b.3)))
        };
        let wanted = depth.saturating_sub(order.len());
        let kept = wanted.saturating_add(order.len());
        let mut best: Vec<Candidate> = Vec::with_capacity(kept.min(touched.len()) + 1);
        for &r in &touched {
            if wanted == 0 {
                break;
            }
            let score = scores[r as usize];
            // A lower score never beats the worst kept: decided without
            // reading the candidate's columns.
            if best.len() == kept && score < best[0].0 {
                continue;
            }
            if !usable(r) {
                continue;
            }
            let same = match own_section {
                Some(own) => self.section[r as usize] == own,
                None => {
                    self.catalog.section_name(self.article_at[r as usize])
                        == article.section.as_str()
                }
            };
            let candidate = (score, same, self.seconds[r as usize], r);
            if best.len() < kept {
                best.push(candidate);
                if best.len() == kept {
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
        for &r in &touched {
            scores[r as usize] = 0.0;
        }
        let mut ranked = best;
        ranked.sort_by(better);
        order.extend(
            ranked
                .into_iter()
                .map(|(_, _, _, r)| r)
                .filter(|r| !seen.contains(r))
                .take(wanted),
        );
        order.truncate(depth);
        order
            .into_iter()
            .map(|r| self.article_at[r as usize])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use chrono::{DateTime, Duration, TimeZone, Utc};

    use super::RelatedIndex;
    use crate::digest::catalog::Catalog;
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

    /// The catalog a digest at [`now`] would load from `articles`.
    fn catalog(articles: &[Article]) -> Catalog {
        Catalog::of(articles.to_vec(), now(), Duration::days(30))
    }

    /// Related reads of `articles[of]` with nothing else listed.
    fn picks(articles: &[Article], of: usize, limit: usize) -> (Vec<String>, Vec<ArticleId>) {
        let catalog = catalog(articles);
        let index = RelatedIndex::new(&catalog, now());
        let mut listed = HashSet::from([articles[of].id.as_str()]);
        let mut unknown = Vec::new();
        let picked = index.related(&articles[of], limit, &mut listed, &mut unknown);
        (ids(&catalog, picked), unknown)
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
        let catalog = catalog(&articles);
        let index = RelatedIndex::new(&catalog, now());
        let (mut listed, mut unknown) = (HashSet::new(), Vec::new());
        let picked = index.related(&articles[0], 3, &mut listed, &mut unknown);
        assert_eq!(ids(&catalog, picked), ["p1"]);
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
        let catalog = catalog(&articles);
        let index = RelatedIndex::new(&catalog, now());
        let mut listed = HashSet::from(["a", "b"]);
        let mut unknown = Vec::new();
        let first = index.related(&articles[0], 3, &mut listed, &mut unknown);
        assert_eq!(ids(&catalog, first), ["c", "d"]);
        assert!(listed.contains("c") && listed.contains("d"));
        let second = index.related(&articles[1], 3, &mut listed, &mut unknown);
        assert!(
            second.is_empty(),
            "picked again: {:?}",
            ids(&catalog, second)
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

    fn ids(catalog: &Catalog, picked: Vec<u32>) -> Vec<String> {
        picked.iter().map(|&i| catalog.id(i).to_owned()).collect()
    }

    /// One index serves every email of a run: the ranking it caches for an
    /// article must give each email its own picks, whatever the others listed.
    #[test]
    fn the_cached_ranking_serves_emails_with_different_listings() {
        let mut articles = vec![article("x", "news", 1, &["k"], &["c3"])];
        for i in 1..=5 {
            articles.push(article(&format!("c{i}"), "tech", 100 * i, &["k"], &[]));
        }
        let catalog = catalog(&articles);
        let index = RelatedIndex::new(&catalog, now());
        let mut unknown = Vec::new();
        let mut listed = HashSet::from(["x", "c3", "c1"]);
        let first = index.related(&articles[0], 2, &mut listed, &mut unknown);
        assert_eq!(ids(&catalog, first), ["c2", "c4"]);
        let mut listed = HashSet::from(["x"]);
        let second = index.related(&articles[0], 2, &mut listed, &mut unknown);
        assert_eq!(ids(&catalog, second), ["c3", "c1"]);
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
        let catalog = catalog(&articles);
        let index = RelatedIndex::new(&catalog, now()).with_depth(2);
        let mut unknown = Vec::new();
        let mut listed = HashSet::from(["x"]);
        let first = index.related(&articles[0], 1, &mut listed, &mut unknown);
        assert_eq!(ids(&catalog, first), ["c1"]);
        // Another email, in which c1 and c2 are items already.
        let mut listed = HashSet::from(["x", "c1", "c2"]);
        let second = index.related(&articles[0], 2, &mut listed, &mut unknown);
        assert_eq!(ids(&catalog, second), ["c3", "c4"]);
    }
}
