//! The list people can leave: `unsubscribe` (by address and by token),
//! the suppression list (`suppressions list | export | import | remove`),
//! and what a suppressed address gets from the digest (nothing).

mod serve;
mod suppressions;
mod unsubscribe;
