//! The bounds `serve` keeps against hostile or broken clients, in one
//! place. The endpoint answers tiny requests (a token and one form field),
//! so everything can be small.

use std::time::Duration;

/// The request line and headers together (hyper's read buffer; 8 KiB is
/// also the smallest it accepts). Longer: 431, or 414 for the URI.
pub const MAX_HEAD: usize = 8 * 1024;

/// A request body (a one-click POST is 26 bytes). Longer: 413.
pub const MAX_BODY: usize = 4 * 1024;

/// Time to send the request line and headers, from the connection's start
/// or the end of the previous response (slowloris). Then the connection is
/// closed.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Time to send the body once the headers are in. Then: 408 and close.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest a connection lives; an idle keep-alive connection is closed
/// then, a busy one after its request.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// Requests on one keep-alive connection; the last answer says
/// `Connection: close`.
pub const MAX_REQUESTS_PER_CONNECTION: usize = 100;

/// Connections served at once; more wait in the kernel's backlog until one
/// ends (each ends within [`CONNECTION_LIFETIME`] and the shutdown grace).
pub const MAX_CONNECTIONS: usize = 128;

/// On SIGTERM or SIGINT: how long requests in flight may take to finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A token that does not resolve rebuilds the resolver (a subscriber added
/// since the start) at most this often.
pub const REBUILD_INTERVAL: Duration = Duration::from_secs(2);

/// Attempts at writing one suppression (each waits up to SQLite's busy
/// timeout, 10 s) before the answer is 503.
pub const WRITE_ATTEMPTS: u32 = 4;

/// The pause after the first failed write; doubled after each.
pub const WRITE_BACKOFF: Duration = Duration::from_millis(200);
