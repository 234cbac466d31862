//! Which emails of a run share a shape, and the shapes in use.
//!
//! Before composing, every planned email's content is counted
//! ([`Shapes::new`]); a content that only one email has is rendered as
//! before. The first email of a shared content renders it twice — as a shape
//! and as its own — and the shape is used only if it fills in to exactly
//! that email ([`Shapes::made`]). A shape is dropped once its last email has
//! taken it, and shapes are kept up to [`BUDGET`] bytes: past that, emails
//! are rendered on their own.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::{NameKind, Shape};
use crate::digest::Email;

/// The most bytes of shapes kept at once.
pub const BUDGET: usize = 64 << 20;

/// What makes two emails' content the same: the same sections, articles and
/// related reads (the very same, by address), and names and unsubscribe
/// links that take the same template branches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(Vec<usize>);

impl Key {
    pub fn of(email: &Email<'_>, name: NameKind, unsubscribe: bool) -> Key {
        let mut key = vec![name as usize, usize::from(unsubscribe), email.groups.len()];
        for group in &email.groups {
            key.push(std::ptr::from_ref(group.section) as usize);
            key.push(group.items.len());
            for item in &group.items {
                key.push(std::ptr::from_ref(item.article) as usize);
                key.push(item.related.len());
                key.extend(item.related.iter().map(|r| std::ptr::from_ref(*r) as usize));
            }
        }
        Key(key)
    }

    fn hash(&self) -> u64 {
        let mut hasher = DefaultHasher::new();
        self.0.hash(&mut hasher);
        hasher.finish()
    }
}

/// How to render one email.
pub enum Use {
    /// Fill in this shape.
    Shape(Arc<Shape>),
    /// Render it, and its shape too, then tell [`Shapes::made`].
    Make,
    /// Render it on its own.
    Alone,
}

pub struct Shapes {
    /// Emails per content (by the key's hash: a collision only keeps a
    /// shape longer).
    counts: HashMap<u64, u32>,
    slots: Mutex<Slots>,
    /// Shapes made and used, and emails filled in from one (for `-v`).
    made: AtomicUsize,
    filled: AtomicUsize,
}

/// What sharing did in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shared {
    /// Emails filled in from a shape (not counting the one each was made
    /// with).
    pub filled: usize,
    /// Shapes made and used.
    pub shapes: usize,
}

#[derive(Default)]
struct Slots {
    by_hash: HashMap<u64, Slot>,
    bytes: usize,
}

enum Slot {
    /// Its first email is being rendered (on another thread); `alone`
    /// emails were rendered on their own meanwhile.
    Making { alone: u32 },
    Ready {
        key: Key,
        shape: Arc<Shape>,
        /// Emails still to take it.
        left: u32,
    },
    /// It did not fill in to its first email: every email renders its own.
    Unshared,
}

impl Shapes {
    /// Counts the emails of each content.
    pub fn new(keys: impl Iterator<Item = Key>) -> Shapes {
        let mut counts = HashMap::new();
        for key in keys {
            *counts.entry(key.hash()).or_insert(0u32) += 1;
        }
        Shapes {
            counts,
            slots: Mutex::default(),
            made: AtomicUsize::new(0),
            filled: AtomicUsize::new(0),
        }
    }

    /// What sharing did so far.
    pub fn shared(&self) -> Shared {
        Shared {
            filled: self.filled.load(Ordering::Relaxed),
            shapes: self.made.load(Ordering::Relaxed),
        }
    }

    /// How to render the email with this content.
    pub fn take(&self, key: &Key) -> Use {
        let hash = key.hash();
        if self.counts.get(&hash).is_none_or(|&n| n < 2) {
            return Use::Alone;
        }
        let mut slots = self.slots.lock().expect("shapes lock");
        let slots = &mut *slots;
        let Some(slot) = slots.by_hash.get_mut(&hash) else {
            if slots.bytes >= BUDGET {
                return Use::Alone;
            }
            slots.by_hash.insert(hash, Slot::Making { alone: 0 });
            return Use::Make;
        };
        match slot {
            Slot::Making { alone } => {
                *alone += 1;
                Use::Alone
            }
            Slot::Ready {
                key: made_for,
                shape,
                left,
            } if made_for == key => {
                let shape = Arc::clone(shape);
                self.filled.fetch_add(1, Ordering::Relaxed);
                *left -= 1;
                if *left == 0 {
                    slots.bytes -= shape.size();
                    slots.by_hash.remove(&hash);
                }
                Use::Shape(shape)
            }
            _ => Use::Alone,
        }
    }

    /// The shape of `key` (after [`Use::Make`]), or none when it did not
    /// fill in to the email it was made with.
    pub fn made(&self, key: Key, shape: Option<Shape>) {
        let hash = key.hash();
        let mut slots = self.slots.lock().expect("shapes lock");
        let Some(shape) = shape else {
            slots.by_hash.insert(hash, Slot::Unshared);
            return;
        };
        let alone = match slots.by_hash.get(&hash) {
            Some(Slot::Making { alone }) => *alone,
            _ => 0,
        };
        self.made.fetch_add(1, Ordering::Relaxed);
        // Besides those, the email it was made with is served.
        let count = self.counts.get(&hash).copied().unwrap_or(0);
        let left = count.saturating_sub(alone + 1);
        if left == 0 {
            slots.by_hash.remove(&hash);
            return;
        }
        slots.bytes += shape.size();
        slots.by_hash.insert(
            hash,
            Slot::Ready {
                key,
                shape: Arc::new(shape),
                left,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::shape::Personal;

    fn shape(text: &str) -> Shape {
        Shape::new(String::new(), text.to_owned(), String::new())
    }

    #[test]
    fn a_shape_serves_its_emails_then_is_dropped() {
        let (a, b) = (Key(vec![1]), Key(vec![2]));
        let shapes = Shapes::new([a.clone(), a.clone(), a.clone(), b.clone()].into_iter());
        assert!(matches!(shapes.take(&b), Use::Alone));
        assert!(matches!(shapes.take(&a), Use::Make));
        // Another thread's email while the first is being made.
        assert!(matches!(shapes.take(&a), Use::Alone));
        shapes.made(a.clone(), Some(shape("x\u{FDD0}")));
        assert!(shapes.slots.lock().unwrap().bytes > 0);
        let personal = Personal {
            email: "r@example.com",
            name: None,
            unsubscribe_url: None,
        };
        match shapes.take(&a) {
            Use::Shape(s) => assert_eq!(s.fill(&personal).text, "xr@example.com"),
            _ => panic!("the shape is ready"),
        }
        assert_eq!(
            shapes.shared(),
            Shared {
                filled: 1,
                shapes: 1
            }
        );
        // Its three emails are served: the shape is gone.
        assert_eq!(shapes.slots.lock().unwrap().bytes, 0);
        assert!(shapes.slots.lock().unwrap().by_hash.is_empty());
    }

    #[test]
    fn a_shape_that_does_not_fill_in_is_not_used() {
        let a = Key(vec![7]);
        let shapes = Shapes::new(std::iter::repeat_n(a.clone(), 5));
        assert!(matches!(shapes.take(&a), Use::Make));
        shapes.made(a.clone(), None);
        for _ in 0..4 {
            assert!(matches!(shapes.take(&a), Use::Alone));
        }
    }
}
