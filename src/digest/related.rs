//! Related reads: the editor's picks first, then the closest articles by
//! shared keywords, weighted by rarity.
//!
//! An inverted index maps each keyword to the articles carrying it (newest
//! first), so scoring one article touches only the postings of its own
//! keywords, never the whole archive. Keywords are interned to integers and
//! postings are `u32` indexes: about 4 bytes per (article, keyword) pair.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::model::Article;

/// Postings scanned per keyword at most. A keyword on more articles than
/// this carries little information (its weight is near zero); scanning only
/// its newest postings bounds the cost on very large archives.
const MAX_POSTINGS_SCANNED: usize = 50_000;

pub struct RelatedIndex<'a> {
    articles: &'a [Article],
    by_id: HashMap<&'a str, u32>,
    keyword_ids: HashMap<&'a str, u32>,
    /// Per keyword id: article indexes, newest first.
    postings: Vec<Vec<u32>>,
    /// Articles published by the digest's clock; later ones are embargoed.
    visible: Vec<bool>,
}

impl<'a> RelatedIndex<'a> {
    pub fn new(articles: &'a [Article], now: DateTime<Utc>) -> Self {
        let mut order: Vec<u32> = (0..articles.len() as u32).collect();
        order.sort_by(|&a, &b| Article::newest_first(&articles[a as usize], &articles[b as usize]));
        let mut keyword_ids: HashMap<&str, u32> = HashMap::new();
        let mut postings: Vec<Vec<u32>> = Vec::new();
        for &i in &order {
            for keyword in &articles[i as usize].keywords {
                let next = keyword_ids.len() as u32;
                let k = *keyword_ids.entry(keyword.as_str()).or_insert(next);
                if k as usize == postings.len() {
                    postings.push(Vec::new());
                }
                postings[k as usize].push(i);
            }
        }
        RelatedIndex {
            articles,
            by_id: articles
                .iter()
                .enumerate()
                .map(|(i, a)| (a.id.as_str(), i as u32))
                .collect(),
            keyword_ids,
            postings,
            visible: articles.iter().map(|a| a.published <= now).collect(),
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
        unknown: &mut Vec<String>,
    ) -> Vec<&'a Article> {
        let mut picked = Vec::new();
        if limit == 0 {
            return picked;
        }
        for id in &article.related {
            if picked.len() == limit {
                return picked;
            }
            match self.by_id.get(id.as_str()) {
                Some(&i) => {
                    let candidate = &self.articles[i as usize];
                    if self.visible[i as usize]
                        && candidate.id != article.id
                        && listed.insert(candidate.id.as_str())
                    {
                        picked.push(candidate);
                    }
                }
                None => unknown.push(id.clone()),
            }
        }

        let total = self.articles.len() as f64;
        let mut scores: HashMap<u32, f64> = HashMap::new();
        for keyword in &article.keywords {
            let Some(&k) = self.keyword_ids.get(keyword.as_str()) else {
                continue;
            };
            let posting = &self.postings[k as usize];
            // Rarer keywords say more: an IDF-like weight.
            let weight = (total / posting.len() as f64).ln() + 1.0;
            for &i in posting.iter().take(MAX_POSTINGS_SCANNED) {
                *scores.entry(i).or_default() += weight;
            }
        }
        let mut ranked: Vec<(u32, f64)> = scores
            .into_iter()
            .filter(|&(i, _)| {
                let candidate = &self.articles[i as usize];
                self.visible[i as usize]
                    && candidate.id != article.id
                    && !listed.contains(candidate.id.as_str())
            })
            .collect();
        ranked.sort_by(|&(a, score_a), &(b, score_b)| {
            let (a, b) = (&self.articles[a as usize], &self.articles[b as usize]);
            score_b
                .total_cmp(&score_a)
                .then_with(|| (b.section == article.section).cmp(&(a.section == article.section)))
                .then_with(|| Article::newest_first(a, b))
        });
        for (i, _) in ranked {
            if picked.len() == limit {
                break;
            }
            let candidate = &self.articles[i as usize];
            if listed.insert(candidate.id.as_str()) {
                picked.push(candidate);
            }
        }
        picked
    }
}
