//! The list people can leave: `unsubscribe` (by address and by token),
//! the suppression list (`suppressions list | export | import | remove`),
//! bounces and complaints (`bounces`, a 5xx to RCPT during `--send`),
//! and what a suppressed address gets from the digest (nothing).

mod bounces;
mod csv;
mod defaults;
mod serve;
mod suppressions;
mod unsubscribe;
