//! The pages people see, built in (no template files to lose), in the
//! site's language: Chinese for `zh*`, English otherwise. Every value put
//! into a page is escaped; pages load nothing from elsewhere, and
//! [`CSP`] allows only their one inline style and a form posting back to
//! the same origin.

use std::sync::LazyLock;

use base64::Engine;
use sha2::{Digest, Sha256};

/// The pages' only style, allowed by its hash.
const STYLE: &str = "body{font:16px/1.6 system-ui,sans-serif;max-width:32em;margin:3em auto;padding:0 1em;color:#222}button{font:inherit;padding:.5em 1.5em;cursor:pointer}";

/// The `Content-Security-Policy` of every answer.
pub(super) static CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
});

/// The language of the pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lang {
    Zh,
    En,
}

impl Lang {
    /// `site.language`: `zh`, `zh-CN`, `zh-Hant-TW`… are Chinese; the rest English.
    pub(super) fn of(language: &str) -> Lang {
        let primary = language.split('-').next().unwrap_or("");
        if primary.eq_ignore_ascii_case("zh") {
            Lang::Zh
        } else {
            Lang::En
        }
    }

    fn tag(self) -> &'static str {
        match self {
            Lang::Zh => "zh",
            Lang::En => "en",
        }
    }
}

/// What a page says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Says {
    /// The GET page: a button that POSTs.
    Confirm,
    /// The address was put on the list.
    Unsubscribed,
    /// It was on the list already.
    Already,
    /// The token is not genuine (400).
    InvalidLink,
    /// The POST was not an unsubscribe request (400).
    BadRequest,
    /// The suppression could not be written (503).
    Unavailable,
    NotFound,
    MethodNotAllowed,
    TooLarge,
    Timeout,
    UnsupportedType,
}

fn text(lang: Lang, says: Says) -> (&'static str, &'static str) {
    use Says::*;
    match (lang, says) {
        (Lang::En, Confirm) => (
            "Unsubscribe",
            "Do you want to stop receiving this email digest?",
        ),
        (Lang::Zh, Confirm) => ("退订", "确定不再接收这份邮件摘要吗？"),
        (Lang::En, Unsubscribed) => (
            "You are unsubscribed",
            "You will not receive this email digest any more.",
        ),
        (Lang::Zh, Unsubscribed) => ("您已退订", "您将不再收到这份邮件摘要。"),
        (Lang::En, Already) => (
            "You are unsubscribed",
            "This address was already unsubscribed; nothing changed.",
        ),
        (Lang::Zh, Already) => ("您已退订", "此地址此前已退订，无需再次操作。"),
        (Lang::En, InvalidLink) => (
            "This link is not valid",
            "The unsubscribe link is incomplete or not valid. Open the whole link from the email again, or reply to the email to unsubscribe.",
        ),
        (Lang::Zh, InvalidLink) => (
            "链接无效",
            "退订链接不完整或无效。请从邮件中重新打开完整的链接，或直接回复邮件退订。",
        ),
        (Lang::En, BadRequest) => ("Bad request", "This request is not an unsubscribe request."),
        (Lang::Zh, BadRequest) => ("请求无效", "这不是一个退订请求。"),
        (Lang::En, Unavailable) => (
            "Please try again",
            "Your request could not be recorded just now. Please try again in a few minutes.",
        ),
        (Lang::Zh, Unavailable) => ("请稍后再试", "暂时无法记录您的请求，请几分钟后再试。"),
        (Lang::En, NotFound) => ("Not found", "There is no page here."),
        (Lang::Zh, NotFound) => ("未找到", "此处没有页面。"),
        (Lang::En, MethodNotAllowed) => ("Method not allowed", "Use GET or POST."),
        (Lang::Zh, MethodNotAllowed) => ("不支持的请求方法", "请使用 GET 或 POST。"),
        (Lang::En, TooLarge) => ("Request too large", "The request is too large."),
        (Lang::Zh, TooLarge) => ("请求过大", "请求过大。"),
        (Lang::En, Timeout) => ("Request timeout", "The request took too long."),
        (Lang::Zh, Timeout) => ("请求超时", "请求超时。"),
        (Lang::En, UnsupportedType) => (
            "Unsupported content type",
            "Send the form as application/x-www-form-urlencoded or multipart/form-data.",
        ),
        (Lang::Zh, UnsupportedType) => (
            "不支持的内容类型",
            "请以 application/x-www-form-urlencoded 或 multipart/form-data 提交表单。",
        ),
    }
}

fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    html_escape::encode_quoted_attribute(text)
}

/// A whole page; `token` goes into the [`Says::Confirm`] page's form.
pub(super) fn page(lang: Lang, site_title: &str, says: Says, token: Option<&str>) -> String {
    let (title, message) = text(lang, says);
    let form = match (says, token) {
        (Says::Confirm, Some(token)) => format!(
            "<form method=\"post\"><input type=\"hidden\" name=\"token\" value=\"{}\"><input type=\"hidden\" name=\"confirm\" value=\"1\"><button type=\"submit\">{}</button></form>\n",
            escape(token),
            escape(title)
        ),
        _ => String::new(),
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><meta name=\"robots\" content=\"noindex\"><title>{title} · {site}</title><style>{STYLE}</style></head>\n<body><p>{site}</p><h1>{title}</h1><p>{message}</p>\n{form}</body></html>\n",
        lang = lang.tag(),
        title = escape(title),
        site = escape(site_title),
        message = escape(message),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_follows_the_site() {
        for (tag, lang) in [
            ("zh", Lang::Zh),
            ("zh-CN", Lang::Zh),
            ("ZH-hant-TW", Lang::Zh),
            ("en", Lang::En),
            ("en-GB", Lang::En),
            ("fr", Lang::En),
            ("zhx", Lang::En),
        ] {
            assert_eq!(Lang::of(tag), lang, "{tag}");
        }
    }

    #[test]
    fn everything_in_a_page_is_escaped() {
        let page = page(
            Lang::En,
            "<script>alert(1)</script>",
            Says::Confirm,
            Some("\"><img src=x>"),
        );
        assert!(!page.contains("<script>"), "{page}");
        assert!(!page.contains("<img"), "{page}");
        assert!(page.contains("&lt;script&gt;"), "{page}");
        assert!(page.contains("<form method=\"post\">"), "{page}");
    }

    #[test]
    fn the_policy_allows_the_style_by_its_hash() {
        assert!(CSP.starts_with("default-src 'none'; style-src 'sha256-"));
        assert!(CSP.contains("form-action 'self'"));
    }
}
