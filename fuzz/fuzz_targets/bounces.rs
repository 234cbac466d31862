//! Bounce and complaint reports (`bulletin bounces`): any bytes, as a
//! mailbox may hold anything. `bounce::parse` never panics; what it reads
//! as a report has an id; `Finder::events` never panics and names only
//! addresses bulletin knows (a known address, or one a genuine VERP token
//! stands for), each once, all keyed on the report's id.
//!
//! Input: the message (try `seeds/bounces`).

#![no_main]

use std::collections::HashSet;
use std::sync::OnceLock;

use bulletin_fuzz::bounce::{self, Finder};
use bulletin_fuzz::config::BounceAddress;
use bulletin_fuzz::token::{self, Keys, Resolver};
use libfuzzer_sys::fuzz_target;

const KEY: &[u8] = b"fuzz-secret";
const KNOWN: [&str; 3] = [
    "reader0001@example.com",
    "gone@example.net",
    "full@example.net",
];

struct Fixture {
    pattern: BounceAddress,
    resolver: Resolver,
    known: HashSet<String>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| Fixture {
        pattern: BounceAddress::parse("bounces+{{token}}@news.test").expect("a pattern"),
        resolver: Resolver::new(
            Keys {
                current: KEY.to_vec(),
                previous: None,
            },
            KNOWN.iter().map(|a| (*a).to_owned()),
        ),
        known: KNOWN.iter().map(|a| (*a).to_owned()).collect(),
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(report) = bounce::parse(data) else {
        return;
    };
    assert!(!report.id.is_empty());
    let f = fixture();
    let finder = Finder {
        bounce_address: Some(&f.pattern),
        resolver: Some(&f.resolver),
        known: &f.known,
    };
    let Ok(events) = finder.events(&report, chrono::DateTime::UNIX_EPOCH) else {
        return;
    };
    assert!(!events.is_empty());
    let mut seen = HashSet::new();
    for e in &events {
        assert_eq!(e.report, report.id);
        assert!(f.known.contains(e.address.as_str()), "{:?}", e.address);
        assert!(seen.insert(e.address.as_str().to_owned()), "twice: {e:?}");
        assert!(e.at <= chrono::DateTime::UNIX_EPOCH);
    }
    // The token of a known address resolves to it.
    let token = token::make(KEY, KNOWN[0]);
    assert_eq!(f.resolver.resolve(&token), Some(KNOWN[0]));
});
