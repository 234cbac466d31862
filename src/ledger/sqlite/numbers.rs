//! Article lists as schema version 6 keeps them: every article id is
//! stored once, in the table `articles`, under a number; a delivery keeps
//! the numbers of its articles, ascending, each written as its difference
//! from the one before in LEB128 (7 bits a byte, the high bit set on every
//! byte of a number but its last).
//!
//! Articles are numbered in the order they are first fixed, so one digest's
//! articles (mostly new that day) carry numbers close together and most
//! differences fit in one byte: 30 articles in about 32 bytes, where their
//! ids, one per line, took 300 or more. The order of a digest's items is
//! not kept: the ledger only ever asks whether an article was sent.

use std::cell::RefCell;
use std::collections::HashMap;

use rusqlite::{CachedStatement, Connection, OptionalExtension};

use crate::model::ArticleId;

/// Encodes article numbers (any order; duplicates are kept once).
pub(in crate::ledger) fn encode(numbers: &mut [i64]) -> Vec<u8> {
    numbers.sort_unstable();
    let mut bytes = Vec::with_capacity(numbers.len() + 4);
    let mut previous = 0;
    for &n in numbers.iter() {
        if n == previous && !bytes.is_empty() {
            continue;
        }
        let mut delta = n.abs_diff(previous);
        previous = n;
        loop {
            let low = (delta & 0x7f) as u8;
            delta >>= 7;
            if delta == 0 {
                bytes.push(low);
                break;
            }
            bytes.push(low | 0x80);
        }
    }
    bytes
}

/// The numbers of a list [`encode`] wrote, ascending; an error when the
/// list is damaged (it ends inside a number, or a number overflows).
pub(in crate::ledger) fn decode(bytes: &[u8]) -> anyhow::Result<Vec<i64>> {
    let damaged = |why: &str| anyhow::anyhow!("a stored article list is damaged ({why})");
    let mut numbers = Vec::with_capacity(bytes.len());
    let (mut value, mut shift, mut previous) = (0u64, 0u32, 0i64);
    for &byte in bytes {
        if shift > 56 {
            return Err(damaged("a number is too long"));
        }
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 != 0 {
            shift += 7;
            continue;
        }
        previous = i64::try_from(value)
            .ok()
            .and_then(|delta| previous.checked_add(delta))
            .ok_or_else(|| damaged("a number is too large"))?;
        numbers.push(previous);
        (value, shift) = (0, 0);
    }
    if shift != 0 {
        return Err(damaged("it ends inside a number"));
    }
    Ok(numbers)
}

/// Numbers article ids inside one transaction: an id numbered before keeps
/// its number, a new one is added. Remembers what it looked up, so an
/// issue's articles are each looked up once however many digests carry
/// them.
pub(super) struct Numbering<'t> {
    known: HashMap<String, i64>,
    find: CachedStatement<'t>,
    add: CachedStatement<'t>,
}

impl<'t> Numbering<'t> {
    /// On the connection of a transaction (its statements are cached: a
    /// send numbers each batch of messages in its own transaction).
    pub(super) fn new(tx: &'t Connection) -> rusqlite::Result<Numbering<'t>> {
        Ok(Numbering {
            known: HashMap::new(),
            find: tx.prepare_cached("SELECT id FROM articles WHERE article = ?1")?,
            add: tx.prepare_cached("INSERT INTO articles (article) VALUES (?1)")?,
        })
    }

    /// The number of `article`, given now if it has none yet.
    pub(super) fn number(&mut self, article: &str) -> rusqlite::Result<i64> {
        if let Some(&n) = self.known.get(article) {
            return Ok(n);
        }
        let n = match self
            .find
            .query_row([article], |row| row.get(0))
            .optional()?
        {
            Some(n) => n,
            None => self.add.insert([article])?,
        };
        self.known.insert(article.to_owned(), n);
        Ok(n)
    }

    /// The stored list of `articles`.
    pub(super) fn list<'a>(
        &mut self,
        articles: impl IntoIterator<Item = &'a str>,
    ) -> rusqlite::Result<Vec<u8>> {
        let mut numbers = articles
            .into_iter()
            .map(|a| self.number(a))
            .collect::<rusqlite::Result<Vec<i64>>>()?;
        Ok(encode(&mut numbers))
    }
}

/// How many article ids [`Names`] keeps before it starts over: a bound on
/// its memory (ids are looked up again after that, never wrong).
const NAMES_KEPT: usize = 200_000;

/// Reads article numbers back as ids, remembering them: the digests of one
/// issue carry the same few hundred articles, read once for all recipients.
#[derive(Default)]
pub(super) struct Names {
    known: RefCell<HashMap<i64, ArticleId>>,
}

impl Names {
    /// The id of every number in `list` (a stored list), added to `ids`.
    pub(super) fn read_into(
        &self,
        conn: &Connection,
        list: &[u8],
        ids: &mut std::collections::HashSet<ArticleId>,
    ) -> anyhow::Result<()> {
        let mut known = self.known.borrow_mut();
        let mut find = conn.prepare_cached("SELECT article FROM articles WHERE id = ?1")?;
        for n in decode(list)? {
            if let Some(id) = known.get(&n) {
                ids.insert(id.clone());
                continue;
            }
            let id: ArticleId = find.query_row([n], |row| row.get::<_, String>(0).map(ArticleId::from)).map_err(|e| {
                anyhow::Error::from(e).context(format!(
                    "a stored article list names article number {n}, which is not in the table of articles"
                ))
            })?;
            if known.len() >= NAMES_KEPT {
                known.clear();
            }
            known.insert(n, id.clone());
            ids.insert(id);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_round_trip_ascending_without_duplicates() {
        for numbers in [
            vec![],
            vec![1],
            vec![5, 3, 3, 9_000_000_000, 127, 128, 16_383, 16_384],
            vec![i64::MAX, 1],
            (1..=30).map(|i| 1000 + i * 7).collect(),
        ] {
            let mut expected = numbers.clone();
            expected.sort_unstable();
            expected.dedup();
            let bytes = encode(&mut numbers.clone());
            assert_eq!(decode(&bytes).unwrap(), expected, "{bytes:?}");
        }
    }

    #[test]
    fn a_digest_of_new_articles_takes_about_a_byte_each() {
        // 30 articles among the 500 numbered for an issue, far into the table.
        let mut numbers: Vec<i64> = (0..30).map(|i| 2_000_000 + i * 16).collect();
        let bytes = encode(&mut numbers);
        assert_eq!(bytes.len(), 3 + 29, "{bytes:?}");
    }

    #[test]
    fn damaged_lists_are_errors() {
        assert!(decode(&[0x85]).is_err(), "ends inside a number");
        assert!(decode(&[0xff; 12]).is_err(), "too long");
        let mut too_large = vec![0xff; 8];
        too_large.push(0x7f);
        assert!(decode(&[&[0x01][..], &too_large].concat()).is_err());
    }
}
