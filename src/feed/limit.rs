//! The size guard (`output.max_feed_bytes`): a feed file that would be larger
//! carries fewer items, the newest kept.
//!
//! Aggregators read only so much of a feed (Google News: 2 MB) and drop the
//! rest, often mid-item. Items are never cut: the feed is rendered again with
//! fewer whole items, found by bisection (a file grows with every item
//! added), so the result is always a complete document from the renderer.

use crate::model::Article;

/// A feed file that carries fewer items than planned, to fit the limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trimmed {
    /// Relative to the output folder, like the file's.
    pub path: String,
    /// Items planned, and the file's size with all of them.
    pub planned: usize,
    pub planned_bytes: usize,
    /// Items it carries, and its size with them.
    pub kept: usize,
    pub bytes: usize,
}

/// Renders `items` (newest first) with `render`, keeping the most of the
/// newest that fit in `max` bytes (0: no limit). With none fitting, the feed
/// has no items.
pub(super) fn fit(
    path: &str,
    items: &[&Article],
    max: usize,
    render: impl Fn(&[&Article]) -> Vec<u8>,
) -> (Vec<u8>, Option<Trimmed>) {
    let full = render(items);
    if max == 0 || full.len() <= max {
        return (full, None);
    }
    // `fits` holds a count that fits (or 0); `over` one that does not.
    let (mut fits, mut over) = (0, items.len());
    let mut best: Option<Vec<u8>> = None;
    while over - fits > 1 {
        let mid = fits + (over - fits) / 2;
        let bytes = render(&items[..mid]);
        if bytes.len() <= max {
            fits = mid;
            best = Some(bytes);
        } else {
            over = mid;
        }
    }
    let bytes = best.unwrap_or_else(|| render(&items[..fits]));
    let trimmed = Trimmed {
        path: path.to_owned(),
        planned: items.len(),
        planned_bytes: full.len(),
        kept: fits,
        bytes: bytes.len(),
    };
    (bytes, Some(trimmed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn article(i: usize) -> Article {
        let at = chrono::DateTime::from_timestamp(1_700_000_000 - i as i64, 0).unwrap();
        Article {
            id: format!("a{i}").into(),
            title: "t".into(),
            section: "s".into(),
            url: url::Url::parse("https://example.cn/a").unwrap(),
            published: at,
            updated: at,
            author: None,
            editor: None,
            source: None,
            keywords: Vec::new(),
            summary: None,
            content_html: Some("x".repeat(10 * (i + 1))),
            image: None,
            related: Vec::new(),
            views: None,
        }
    }

    /// A stand-in renderer: a header, then each item's body.
    fn render(items: &[&Article]) -> Vec<u8> {
        let mut out = b"<feed>".to_vec();
        for a in items {
            out.extend_from_slice(a.content_html.as_deref().unwrap().as_bytes());
        }
        out
    }

    #[test]
    fn keeps_the_most_newest_items_that_fit() {
        let owned: Vec<Article> = (0..20).map(article).collect();
        let items: Vec<&Article> = owned.iter().collect();
        let full = render(&items).len();
        assert_eq!(fit("f", &items, full, render).1, None);
        assert_eq!(fit("f", &items, 0, render).1, None);
        for max in [6, 15, 16, 100, 1000, full - 1] {
            let (bytes, trimmed) = fit("f", &items, max, render);
            let trimmed = trimmed.unwrap();
            assert!(bytes.len() <= max.max(6), "{max}");
            // One more item would not fit.
            let kept = trimmed.kept;
            assert_eq!(bytes, render(&items[..kept]));
            if kept < items.len() {
                assert!(render(&items[..=kept]).len() > max, "{max}");
            }
            assert_eq!((trimmed.planned, trimmed.planned_bytes), (20, full));
        }
        // Not even the empty feed fits: no items.
        let (bytes, trimmed) = fit("f", &items, 3, render);
        assert_eq!((bytes, trimmed.unwrap().kept), (b"<feed>".to_vec(), 0));
    }
}
