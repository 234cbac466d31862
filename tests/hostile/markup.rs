//! Markup injection: HTML in titles, summaries, names, bylines and keywords
//! is escaped in the HTML part of a digest (and its preview and index), and
//! left intact in the plain-text part.

use serde_json::json;

use crate::support::{NOW, Site};

/// A template showing every field a record or subscriber brings.
const HTML_TEMPLATE: &str = r#"<html><body><p id="name">{{#if recipient.name}}{{recipient.name}}{{/if}}</p>
{{#each sections}}{{#each items}}<div class="item"><a href="{{url}}">{{title}}</a>
<p class="summary">{{summary}}</p><p class="author">{{author}}</p><p class="editor">{{editor}}</p>
<p class="source">{{source}}</p><ul>{{#each keywords}}<li>{{this}}</li>{{/each}}</ul></div>{{/each}}{{/each}}
</body></html>
"#;

const TEXT_TEMPLATE: &str = "name={{recipient.name}}
{{#each sections}}{{#each items}}title={{title}}
summary={{summary}}
author={{author}}
editor={{editor}}
source={{source}}
{{#each keywords}}keyword={{this}}
{{/each}}{{/each}}{{/each}}";

const NAME: &str = "<script>alert('name')</script> & \"Co\"";
const TITLE: &str = "Tom & Jerry <3 \"quotes\" 'apos' </a><a href=x>";
const SUMMARY: &str = "<script>alert(\"x\")</script><img src=x onerror=alert(1)> a<b>c</b> &amp; d";
const AUTHOR: &str = "<b onmouseover=alert(1)>Eve</b>";
const EDITOR: &str = "<u>ed</u>";
const SOURCE: &str = "<a href=\"javascript:alert(1)\">src</a>";
const KEYWORD_LINE: &str = "<i>kw</i>；x\"y'z；</li><li>";

fn hostile_site(custom: bool) -> Site {
    let site = Site::with_digest();
    site.write(
        "subscribers.toml",
        format!(
            "[[subscribers]]\nemail = \"reader@example.com\"\nname = {}\n",
            toml::Value::String(NAME.into())
        ),
    );
    site.write_jsonl(
        "articles/a.jsonl",
        &[json!({
            "id": "x1",
            "title": TITLE,
            "section": "news",
            "url": "/news/x1.html",
            "published": "2017-03-24 10:00",
            "summary": SUMMARY,
            "author": AUTHOR,
            "editor": EDITOR,
            "source": SOURCE,
            "keywords": KEYWORD_LINE,
        })],
    );
    if custom {
        site.write("digest.html.hbs", HTML_TEMPLATE);
        site.write("digest.txt.hbs", TEXT_TEMPLATE);
        site.edit_config(
            "subscribers = \"subscribers.toml\"",
            "subscribers = \"subscribers.toml\"\nhtml = \"digest.html.hbs\"\ntext = \"digest.txt.hbs\"",
        );
    }
    site
}

/// The title as the feeds and the digest carry it: headlines are plain
/// text, so tags are dropped and entities decoded (`<3` is not a tag).
const PLAIN_TITLE: &str = "Tom & Jerry <3 \"quotes\" 'apos'";

/// Raw markup that must not appear in an HTML part.
const INJECTED: [&str; 10] = [
    "<script",
    "<img",
    "<b>c",
    "<b onmouseover",
    "<u>ed",
    "<a href=\"javascript",
    "<i>kw",
    "</li><li></li>",
    "<a href=x>",
    "onerror=alert(1)>",
];

/// `text` with every run of white space (a line wrapped at 78 columns
/// included) as one space.
fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[track_caller]
fn assert_no_markup(what: &str, html: &str) {
    for raw in INJECTED {
        assert!(!html.contains(raw), "{what} carries raw {raw:?}:\n{html}");
    }
}

#[test]
fn html_in_every_field_is_escaped_in_the_html_part_and_intact_in_the_text_part() {
    let site = hostile_site(true);
    let mail = site.dry_run("out").ok().only_email();

    assert_no_markup("the HTML part", &mail.html);
    for escaped in [
        "&lt;script&gt;alert(&#x27;name&#x27;)&lt;/script&gt; &amp; &quot;Co&quot;",
        "Tom &amp; Jerry &lt;3 &quot;quotes&quot; &#x27;apos&#x27;",
        "&lt;b onmouseover&#x3D;alert(1)&gt;Eve&lt;/b&gt;",
        "&lt;u&gt;ed&lt;/u&gt;",
        "&lt;i&gt;kw&lt;/i&gt;",
        "&amp;amp; d",
    ] {
        assert!(
            mail.html.contains(escaped),
            "HTML part lacks {escaped:?}:\n{}",
            mail.html
        );
    }
    // Exactly the template's markup: one item, two keywords, one link.
    assert_eq!(mail.html.matches("<li>").count(), 3, "{}", mail.html);
    assert_eq!(mail.html.matches("<a ").count(), 1, "{}", mail.html);

    // The text part is wrapped at 78 columns (at spaces): compared with
    // runs of white space as one space.
    let text = format!(" {} ", words(&mail.text));
    for line in [
        format!("name={NAME}"),
        format!("title={PLAIN_TITLE}"),
        format!("summary={SUMMARY}"),
        format!("author={AUTHOR}"),
        format!("editor={EDITOR}"),
        format!("source={SOURCE}"),
        "keyword=<i>kw</i>".to_owned(),
        "keyword=x\"y'z".to_owned(),
        "keyword=</li><li>".to_owned(),
    ] {
        assert!(
            text.contains(&format!(" {} ", words(&line))),
            "text part lacks the line {line:?}:\n{}",
            mail.text
        );
    }
}

#[test]
fn html_in_fields_is_escaped_by_the_built_in_templates_preview_and_index() {
    let site = hostile_site(false);
    let mail = site.dry_run("out").ok().only_email();
    assert_no_markup("the HTML part", &mail.html);
    assert!(mail.html.contains("Tom &amp; Jerry &lt;3"), "{}", mail.html);
    let text = words(&mail.text);
    assert!(
        text.contains(PLAIN_TITLE) && text.contains(NAME) && text.contains(AUTHOR),
        "the text part changes fields:\n{}",
        mail.text
    );
    let preview = std::fs::read_to_string(site.path("out/preview/reader@example.com.html"))
        .expect("the preview");
    assert_no_markup("the preview", &preview);
    let index = std::fs::read_to_string(site.path("out/index.html")).expect("the index");
    assert_no_markup("index.html", &index);
    assert!(
        index.contains("&lt;script&gt;alert('name')&lt;/script&gt; &amp; \"Co\""),
        "index.html does not show the name escaped:\n{index}"
    );
}

#[test]
fn html_in_the_site_title_is_escaped_in_html_and_plain_in_the_subject() {
    let site = Site::with_digest();
    site.edit_config("title = \"测试站\"", "title = \"<b>测试站</b> & Co\"");
    let mail = site.dry_run("out").ok().only_email();
    assert!(!mail.html.contains("<b>测试站"), "{}", mail.html);
    assert!(
        mail.html.contains("&lt;b&gt;测试站&lt;/b&gt; &amp; Co"),
        "{}",
        mail.html
    );
    assert!(
        mail.subject.starts_with("<b>测试站</b> & Co · 2017-03-25"),
        "{}",
        mail.subject
    );
}

/// The feeds carry the same hostile record as text: nothing executable in
/// any feed, and the RSS/Atom documents still parse strictly.
#[test]
fn html_in_fields_never_becomes_markup_in_the_feeds() {
    let site = hostile_site(false);
    site.run(&["build", "--now", NOW]).assert_success();
    for feed in [
        "public/feeds/rss.xml",
        "public/feeds/atom.xml",
        "public/feeds/news/rss.xml",
    ] {
        let text = std::fs::read_to_string(site.path(feed)).expect("a feed");
        let doc = roxmltree::Document::parse(&text)
            .unwrap_or_else(|e| panic!("{feed} is not well-formed: {e}"));
        assert!(
            !doc.descendants().any(|n| {
                n.is_element()
                    && matches!(
                        n.tag_name().name(),
                        "script" | "img" | "b" | "i" | "u" | "a"
                    )
            }),
            "{feed} has HTML elements in the XML tree"
        );
        let titles: Vec<&str> = doc
            .descendants()
            .filter(|n| {
                n.has_tag_name("title")
                    && n.parent()
                        .is_some_and(|p| p.has_tag_name("item") || p.has_tag_name("entry"))
            })
            .filter_map(|n| n.text())
            .collect();
        assert_eq!(titles, [PLAIN_TITLE], "{feed}");
    }
}
