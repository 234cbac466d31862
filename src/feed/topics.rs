//! Topic feeds (`[[topics]]`): which topics an article's keywords put it in.
//!
//! A topic is one more feed beside the site's and the sections' (the same
//! newest-N heap in [`super::Selection`]); this module only answers, for a
//! keyword, which topics name it. Keywords are compared without regard to
//! case, after the same one-line cleaning articles' keywords get. It is
//! asked for every keyword of every article loaded, so a keyword with no
//! uppercase letter (every CJK one) is looked up without a copy.

use std::collections::HashMap;

use crate::model::Topic;

/// Topic positions (in config order) by keyword, folded to lowercase.
#[derive(Debug, Default)]
pub(crate) struct TopicIndex {
    by_keyword: HashMap<String, Vec<usize>, xxhash_rust::xxh3::Xxh3DefaultBuilder>,
}

impl TopicIndex {
    pub(crate) fn new(topics: &[Topic]) -> TopicIndex {
        let mut by_keyword: HashMap<String, Vec<usize>, _> = HashMap::default();
        for (i, topic) in topics.iter().enumerate() {
            for keyword in &topic.keywords {
                let list = by_keyword.entry(keyword.to_lowercase()).or_default();
                if !list.contains(&i) {
                    list.push(i);
                }
            }
        }
        TopicIndex { by_keyword }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_keyword.is_empty()
    }

    /// The topics (positions) that name `keyword`.
    pub(crate) fn of(&self, keyword: &str) -> &[usize] {
        let found = if keyword.chars().any(char::is_uppercase) {
            self.by_keyword.get(&keyword.to_lowercase())
        } else {
            self.by_keyword.get(keyword)
        };
        found.map_or(&[], Vec::as_slice)
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
        assert!(index.of("基层").is_empty());
        assert_eq!(
            index.of_all(["人工智能", "脱贫攻坚", "基层干部"]),
            vec![0, 1, 2]
        );
        assert!(TopicIndex::new(&[]).is_empty());
    }
}
