//! The secrets bulletin reads from the environment (never from the config).

use crate::Failure;
use crate::token::Keys;

/// The key unsubscribe tokens are made with.
pub const SECRET_VAR: &str = "BULLETIN_UNSUBSCRIBE_SECRET";

/// The key before the last rotation: its tokens still resolve.
pub const PREVIOUS_SECRET_VAR: &str = "BULLETIN_UNSUBSCRIBE_SECRET_PREVIOUS";

/// The SMTP password.
pub const PASSWORD_VAR: &str = crate::config::PASSWORD_VAR;

/// The PostgreSQL state database's password (never in the config): this
/// one first, else libpq's own `PGPASSWORD`.
pub const STATE_PASSWORD_VAR: &str = "BULLETIN_STATE_PASSWORD";

/// The password of a PostgreSQL `digest.state`, if one is set.
pub fn state_password() -> Option<String> {
    var(STATE_PASSWORD_VAR).or_else(|| var("PGPASSWORD"))
}

/// A variable's value; unset and empty are the same.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The unsubscribe keys, when the secret is set.
pub fn unsubscribe_keys() -> Result<Option<Keys>, Failure> {
    Ok(var(SECRET_VAR).map(|current| Keys {
        current: current.into_bytes(),
        previous: var(PREVIOUS_SECRET_VAR).map(String::into_bytes),
    }))
}
