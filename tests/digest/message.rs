//! Each example email as a mail reader sees it: decoded headers, MIME
//! structure, list headers, unsubscribe tokens, escaping per part, and the
//! wire format's line rules.

use std::collections::{BTreeMap, HashSet};

use crate::support::{A, Email, ISSUE, SECRET_VAR, Site, Small, at, html_unescape, links};

/// The example subscribers: address → name.
const SUBSCRIBERS: [(&str, &str); 6] = [
    ("li.minghua@example.com", "李明华"),
    ("wang.xiuying@example.org", "王秀英"),
    ("zhang.jianguo@example.com", "张建国"),
    ("liu.yang@example.org", "刘洋"),
    ("chen.jing@example.com", "陈静"),
    ("zhao.lei@example.org", "赵磊"),
];

fn example_emails() -> BTreeMap<String, Email> {
    let site = Site::example();
    let run = site.dry_run("out").ok();
    let emails: BTreeMap<String, Email> = run
        .emls()
        .into_iter()
        .map(|(address, raw)| (address, Email::parse(raw)))
        .collect();
    assert_eq!(
        emails.keys().map(String::as_str).collect::<HashSet<_>>(),
        SUBSCRIBERS.iter().map(|(a, _)| *a).collect::<HashSet<_>>(),
        "one email per example subscriber"
    );
    // The preview is the HTML part, exactly.
    let files = run.files();
    for (address, email) in &emails {
        let preview = &files[&format!("preview/{address}.html")];
        // The part has canonical CRLF line ends; the preview file LF.
        assert_eq!(
            String::from_utf8_lossy(preview),
            email.html.replace("\r\n", "\n"),
            "preview/{address}.html is not the email's HTML part"
        );
    }
    emails
}

/// Wire rules for a whole message: CRLF line ends only, no line over 998
/// bytes (RFC 5322 2.1.1), headers (top-level and MIME parts) in ASCII.
#[track_caller]
fn assert_wire_format(name: &str, raw: &[u8]) {
    let lines: Vec<&[u8]> = raw.split(|&b| b == b'\n').collect();
    for (n, line) in lines.iter().enumerate() {
        if n + 1 < lines.len() {
            assert!(
                line.ends_with(b"\r"),
                "{name}: line {} ends in a bare LF",
                n + 1
            );
        }
        let content = line.strip_suffix(b"\r").unwrap_or(line);
        assert!(
            content.len() <= 998,
            "{name}: line {} is {} bytes long (RFC 5322 allows 998)",
            n + 1,
            content.len()
        );
    }
    // Header sections: the message's, and each part's (after a boundary line).
    let text = String::from_utf8_lossy(raw);
    let mut in_header = true;
    for line in text.split("\r\n") {
        if in_header {
            assert!(
                line.is_ascii(),
                "{name}: header line is not ASCII: {line:?}"
            );
            if line.is_empty() {
                in_header = false;
            }
        } else if line.starts_with("--bulletin-") && !line.ends_with("--") {
            in_header = true;
        }
    }
}

#[test]
fn every_example_email_decodes_with_the_expected_headers() {
    let emails = example_emails();
    let mut tokens = HashSet::new();
    let mut ids = HashSet::new();
    for (address, name) in SUBSCRIBERS {
        let email = &emails[address];
        assert_eq!(email.subject, "映象网 · 2017-03-25 要闻", "{address}");
        assert_eq!(
            email.from,
            (
                Some("映象网".to_owned()),
                "digest@news.example.cn".to_owned()
            ),
            "{address}"
        );
        assert_eq!(
            email.to,
            [(Some(name.to_owned()), address.to_owned())],
            "{address}"
        );

        // multipart/alternative: plain text first, HTML last (RFC 2046 5.1.4).
        assert_eq!(email.content_type, "multipart/alternative", "{address}");
        assert_eq!(
            email.parts,
            [
                ("text/plain".to_owned(), Some("utf-8".to_owned())),
                ("text/html".to_owned(), Some("utf-8".to_owned())),
            ],
            "{address}"
        );
        assert!(email.text.contains(name), "{address}: greeting by name");
        assert!(email.html.contains(name), "{address}: greeting by name");

        let id = email.header("Message-ID").expect("Message-ID");
        let hex = id
            .strip_prefix(&format!("<digest.{ISSUE}."))
            .and_then(|r| r.strip_suffix("@news.example.cn>"))
            .unwrap_or_else(|| panic!("{address}: Message-ID {id}"));
        assert!(
            !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()),
            "{address}: Message-ID {id}"
        );
        assert!(ids.insert(id.clone()), "Message-ID {id} is reused");

        let date = email.header("Date").expect("Date");
        assert_eq!(date, "Sat, 25 Mar 2017 08:00:00 +0800", "{address}");
        assert!(email.header("MIME-Version").is_some(), "{address}");

        let list_id = email.header("List-Id").expect("List-Id");
        assert!(
            list_id.ends_with("<digest.news.example.cn>"),
            "{address}: List-Id {list_id}"
        );
        assert_eq!(
            email.list_id,
            [(
                Some("映象网".to_owned()),
                Some("digest.news.example.cn".to_owned())
            )],
            "{address}: List-Id {list_id}"
        );
        assert_eq!(
            email.header("List-Unsubscribe-Post").as_deref(),
            Some("List-Unsubscribe=One-Click"),
            "{address}"
        );
        assert_eq!(
            email.header("Auto-Submitted").as_deref(),
            Some("auto-generated"),
            "{address}"
        );

        let url = email.unsubscribe_url();
        let token = url
            .strip_prefix("https://news.example.cn/unsubscribe?token=")
            .unwrap_or_else(|| panic!("{address}: List-Unsubscribe {url}"));
        assert!(token.len() >= 16, "{address}: token {token:?} is too short");
        let local = address.split('@').next().unwrap();
        assert!(
            !token.contains(local) && !token.contains(address) && token != address,
            "{address}: the token carries the address: {token}"
        );
        assert!(tokens.insert(token.to_owned()), "token {token} is reused");

        // A visible unsubscribe link in both parts, the same URL as the header.
        assert!(
            email.text.contains(&format!("退订：{url}")),
            "{address}: no unsubscribe line in the text part:\n{}",
            email.text
        );
        assert!(
            links(&email.html)
                .iter()
                .any(|(href, text)| *href == url && text == "退订"),
            "{address}: no unsubscribe link in the HTML part"
        );
        // The text part is not HTML-escaped; the HTML part is.
        assert!(
            !email.text.contains("&amp;") && !email.text.contains("&#x3D;"),
            "{address}: HTML escapes in the text part"
        );

        assert_wire_format(address, &email.raw);
    }
}

#[test]
fn items_link_to_their_articles_in_both_parts() {
    let emails = example_emails();
    let email = &emails["liu.yang@example.org"];
    for url in [
        "https://news.example.cn/sports/2017/0324/5068.html",
        "https://news.example.cn/sports/2017/0323/5044.html",
        "https://news.example.cn/sports/2017/0319/4958.html",
    ] {
        assert!(email.text.contains(url), "text part lacks {url}");
        assert!(
            links(&email.html).iter().any(|(href, _)| href == url),
            "HTML part lacks a link to {url}"
        );
    }
    assert!(email.text.contains("建业备战中超第三轮 主帅强调防守细节"));
    // Times are shown in the site's timezone.
    assert!(email.text.contains("2017-03-24 17:20"), "{}", email.text);
}

#[test]
fn the_token_depends_on_the_secret_but_the_message_id_does_not() {
    let site = Site::example();
    let a = site.dry_run("a").ok();
    let b = site
        .dry_run_with("b", |cmd| cmd.env(SECRET_VAR, "another-secret"))
        .ok();
    for (address, _) in SUBSCRIBERS {
        let (ea, eb) = (a.email(address), b.email(address));
        assert_ne!(
            ea.unsubscribe_url(),
            eb.unsubscribe_url(),
            "{address}: the token does not depend on the secret"
        );
        assert_eq!(ea.header("Message-ID"), eb.header("Message-ID"));
    }
}

#[test]
fn a_long_chinese_subject_round_trips_within_line_limits() {
    let subject = "河南省各地基层干部深入基层倾听群众呼声，郑州春季车展下月开幕新能源车型展位明显增多，洛阳牡丹文化节筹备就绪四月一日开幕欢迎广大游客前来观赏";
    assert!(subject.chars().count() >= 60);
    let site = Site::example();
    site.edit("feeds.toml", |c| {
        c.replace(
            "subject = \"{{site.title}} · {{date}} 要闻\"",
            &format!("subject = \"{{{{site.title}}}} · {{{{date}}}} 要闻：{subject}\""),
        )
    });
    let run = site.dry_run("out").ok();
    for (address, raw) in run.emls() {
        let email = Email::parse(raw);
        assert_eq!(
            email.subject,
            format!("映象网 · 2017-03-25 要闻：{subject}"),
            "{address}"
        );
        assert_wire_format(&address, &email.raw);
        for line in email.raw_headers().split("\r\n") {
            assert!(line.len() <= 998 && line.is_ascii(), "{address}: {line:?}");
        }
    }
}

/// A small site whose article URL has a query string and whose title and
/// site name carry characters HTML escapes.
fn escaping_site() -> Site {
    Small::new()
        .title("映象 & 新闻")
        .without("text")
        .digest(
            "unsubscribe_url",
            "\"https://news.example.cn/unsub?list=daily&token={{token}}\"",
        )
        .article(
            A::new("q1", "news", &at(-2.0))
                .set("title", "A & B \"d\" 'e' 1<2".into())
                .set("url", "https://news.example.cn/a.html?x=1&y=2".into())
                .set("summary", "S & T, 1<2".into()),
        )
        .subscriber("reader@example.com", "读者", None)
        .build()
}

#[test]
fn text_part_keeps_urls_intact_and_html_part_escapes_them() {
    let site = escaping_site();
    let email = site.dry_run("out").ok().email("reader@example.com");

    // The subject comes from the text side: nothing escaped.
    assert_eq!(email.subject, "映象 & 新闻 · 2017-03-25");

    let url = email.unsubscribe_url();
    assert!(
        url.starts_with("https://news.example.cn/unsub?list=daily&token="),
        "List-Unsubscribe: {url}"
    );
    let text = &email.text;
    assert!(
        text.contains("https://news.example.cn/a.html?x=1&y=2"),
        "{text}"
    );
    assert!(text.contains("A & B \"d\" 'e' 1<2"), "{text}");
    assert!(text.contains(&url), "{text}");
    assert!(text.contains("S & T, 1<2"), "{text}");
    for escape in ["&amp;", "&#x3D;", "&lt;", "&quot;"] {
        assert!(!text.contains(escape), "{escape} in the text part:\n{text}");
    }

    let html = &email.html;
    assert!(!html.contains("?x=1&y=2"), "unescaped & in the HTML part");
    assert!(!html.contains("A & B"), "unescaped & in the HTML part");
    assert!(!html.contains("1<2"), "unescaped < in the HTML part");
    assert!(html.contains("S &amp; T, 1&lt;2"), "{html}");
    assert!(
        html.contains("A &amp; B &quot;d&quot; &#x27;e&#x27; 1&lt;2"),
        "{html}"
    );
    let found = links(html);
    assert!(
        found
            .iter()
            .any(|(href, _)| href == "https://news.example.cn/a.html?x=1&y=2"),
        "no link to the article: {found:?}"
    );
    assert!(
        found
            .iter()
            .any(|(href, text)| *href == url && text == "退订"),
        "no unsubscribe link: {found:?}"
    );
    assert_eq!(html_unescape("x&#x3D;1&amp;y"), "x=1&y");
}

#[test]
fn the_example_html_part_is_a_complete_utf8_document() {
    let emails = example_emails();
    for (address, email) in &emails {
        let html = &email.html;
        assert!(html.starts_with("<!DOCTYPE html>"), "{address}");
        assert!(html.contains("<meta charset=\"utf-8\">"), "{address}");
        assert!(html.trim_end().ends_with("</html>"), "{address}");
        assert!(html.contains("lang=\"zh-CN\""), "{address}");
    }
}

/// `List-Id: phrase <list-id>` (RFC 2919): a site title with characters
/// special in mail headers (`"` `,` `<` `>` `:`) must be quoted or encoded,
/// or a reader takes part of the title for the list id.
#[test]
fn list_id_survives_a_site_title_with_mail_specials() {
    let title = "Daily \"News\", Inc. <HN>: Today";
    let site = Small::new()
        .title(title)
        .article(A::new("n", "news", &at(-1.0)))
        .subscriber("reader@example.com", "Reader", None)
        .build();
    let email = site.dry_run("out").ok().email("reader@example.com");
    assert_eq!(
        email.list_id,
        [(
            Some(title.to_owned()),
            Some("digest.news.example.cn".to_owned())
        )],
        "List-Id: {}",
        email.header("List-Id").unwrap_or_default()
    );
    // The subject is unstructured: the title goes through as is.
    assert_eq!(email.subject, format!("{title} · {ISSUE}"));
}
