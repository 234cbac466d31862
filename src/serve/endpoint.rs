//! Where the endpoint is and where its token sits, read from
//! `digest.unsubscribe_url`: the URL's path, and `{{token}}` as the value
//! of one query parameter (`/unsubscribe?token={{token}}`) or as one whole
//! path segment (`/u/{{token}}/`).

use url::Url;

/// What stands for the token while the URL is parsed.
const PLACEHOLDER: &str = "bulletin-token-placeholder";

/// Where a request's token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenAt {
    /// The query parameter of this name.
    Query(String),
    /// The path segment at this index (0 is the first after `/`).
    Segment(usize),
}

/// The path the endpoint answers on, and where its token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The path's segments (the token's one is a placeholder).
    segments: Vec<String>,
    pub token_at: TokenAt,
}

impl Endpoint {
    /// The endpoint of `unsubscribe_url`; the error says what is wrong.
    pub fn of(unsubscribe_url: &str) -> Result<Endpoint, String> {
        if unsubscribe_url.matches("{{token}}").count() != 1 {
            return Err("must contain {{token}} exactly once".to_owned());
        }
        let url = Url::parse(&unsubscribe_url.replace("{{token}}", PLACEHOLDER))
            .map_err(|e| format!("is not a URL: {e}"))?;
        let segments: Vec<String> = url
            .path()
            .trim_start_matches('/')
            .split('/')
            .map(str::to_owned)
            .collect();
        let in_query = url
            .query_pairs()
            .find(|(_, value)| value == PLACEHOLDER)
            .map(|(name, _)| name.into_owned());
        let token_at = match (in_query, segments.iter().position(|s| s == PLACEHOLDER)) {
            (Some(name), None) => TokenAt::Query(name),
            (None, Some(index)) => TokenAt::Segment(index),
            _ => {
                return Err(
                    "{{token}} must be the whole value of a query parameter (?token={{token}}) or a whole path segment (/u/{{token}})"
                        .to_owned(),
                );
            }
        };
        Ok(Endpoint { segments, token_at })
    }

    /// The path, as shown to people (`{token}` in place of a path token).
    pub fn path(&self) -> String {
        let shown: Vec<&str> = self
            .segments
            .iter()
            .map(|s| if s == PLACEHOLDER { "{token}" } else { s })
            .collect();
        format!("/{}", shown.join("/"))
    }

    /// Whether a request for `path` (without the query) is for this
    /// endpoint; with a path token, `Some(Some(token))`.
    pub fn matches(&self, path: &str) -> Option<Option<String>> {
        let given: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        if !path.starts_with('/') || given.len() != self.segments.len() {
            return None;
        }
        let mut token = None;
        for (i, (want, got)) in self.segments.iter().zip(&given).enumerate() {
            if self.token_at == TokenAt::Segment(i) {
                token = Some(percent_decode(got)?);
            } else if percent_decode(got)? != percent_decode(want)? {
                return None;
            }
        }
        Some(token)
    }

    /// The token in a request's query string, when it is carried there.
    pub fn query_token(&self, query: Option<&str>) -> Option<String> {
        let TokenAt::Query(name) = &self.token_at else {
            return None;
        };
        url::form_urlencoded::parse(query?.as_bytes())
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// `%XX` decoded; `None` when the result is not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_token_is_found_by_its_parameter() {
        let e = Endpoint::of("https://news.example.cn/unsubscribe?list=d&token={{token}}").unwrap();
        assert_eq!(e.token_at, TokenAt::Query("token".into()));
        assert_eq!(e.path(), "/unsubscribe");
        assert_eq!(e.matches("/unsubscribe"), Some(None));
        assert_eq!(e.matches("/unsubscribe/"), None);
        assert_eq!(e.matches("/other"), None);
        assert_eq!(e.query_token(Some("token=abc&x=1")), Some("abc".into()));
        assert_eq!(e.query_token(Some("x=1")), None);
        assert_eq!(e.query_token(None), None);
    }

    #[test]
    fn a_path_token_is_found_by_its_segment() {
        let e = Endpoint::of("https://news.example.cn/u/{{token}}/stop").unwrap();
        assert_eq!(e.token_at, TokenAt::Segment(1));
        assert_eq!(e.path(), "/u/{token}/stop");
        assert_eq!(e.matches("/u/abc/stop"), Some(Some("abc".into())));
        assert_eq!(e.matches("/u/abc"), None);
        assert_eq!(e.matches("/v/abc/stop"), None);
        assert_eq!(e.matches("/u/%ff/stop"), None);
    }

    #[test]
    fn a_token_elsewhere_is_refused() {
        for url in [
            "https://news.example.cn/unsubscribe",
            "https://news.example.cn/u?t=x{{token}}",
            "https://news.example.cn/u-{{token}}",
            "https://news.example.cn/{{token}}?t={{token}}",
        ] {
            assert!(Endpoint::of(url).is_err(), "{url}");
        }
    }

    #[test]
    fn percent_decoding_never_panics() {
        for text in ["%", "%4", "%zz", "a%41", "%e4%b8%ad", "%ff"] {
            let _ = percent_decode(text);
        }
        assert_eq!(percent_decode("a%41").as_deref(), Some("aA"));
        assert_eq!(percent_decode("%e4%b8%ad").as_deref(), Some("中"));
        assert_eq!(percent_decode("%4").as_deref(), Some("%4"));
    }

    #[test]
    fn any_path_is_answered_without_panic() {
        let endpoints = [
            Endpoint::of("https://a.example/unsubscribe?token={{token}}").unwrap(),
            Endpoint::of("https://a.example/u/{{token}}").unwrap(),
            Endpoint::of("https://a.example/?t={{token}}").unwrap(),
        ];
        for path in [
            "",
            "/",
            "*",
            "//",
            "/u/",
            "/u/%",
            "/u/%zz",
            "/%ff%fe",
            "/u/a/b",
            "/unsubscribe",
        ] {
            for e in &endpoints {
                let _ = e.matches(path);
                let _ = e.query_token(Some(path));
            }
        }
        assert_eq!(endpoints[2].matches("/"), Some(None));
    }
}
