//! What a reader sees, in both languages of the built-in templates: the
//! boilerplate in the site's language, lead images, the hidden preheader,
//! colours at WCAG AA contrast, the same links in the text part as in the
//! HTML part, text lines of at most 78 columns, and HTML that `tidy`
//! accepts.

use std::collections::BTreeMap;
use std::process::Command;

use unicode_width::UnicodeWidthStr;

use crate::support::{DryRun, Email, Site, html_unescape, links, repo_root};

/// An English site as `bulletin init` writes it, plus articles with lead
/// images, a related read, a long summary, a long URL and a title HTML
/// must escape, dated just before the wall clock (`init` dates its own
/// articles from it), and a subscriber without a name.
fn english_site() -> Site {
    let site = Site::empty().with_secret();
    site.run(&["init", "."]).assert_success();
    let ago = |minutes: i64| {
        (chrono::Utc::now() - chrono::Duration::minutes(minutes))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };
    site.write(
        "articles/photos.toml",
        format!(
            r#"[[articles]]
id = "harbour"
title = "Harbour \"cranes\" & tugs return as the port reopens after the storm"
section = "news"
url = "/news/harbour.html"
published = "{}"
source = "Port Authority"
author = "Maria Lopez"
image = "https://img.news.example.com/2026/harbour.jpg"
keywords = ["port", "storm"]
summary = "Container traffic resumed on Tuesday morning after a three-day closure. Dock workers cleared debris overnight, and the first ships were unloaded by noon while engineers inspected the breakwater and the cranes."

[[articles]]
id = "library"
title = "The city library opens a reading room for night-shift workers"
section = "local"
url = "/local/library/2026/a-very-long-address-that-no-line-of-seventy-eight-columns-could-ever-hold.html"
published = "{}"
image = "https://img.news.example.com/2026/library.jpg"
summary = "From next month the central branch stays open until 2 a.m."

[[articles]]
id = "seawall"
title = "Council approves a taller seawall"
section = "news"
url = "/news/seawall.html"
published = "{}"
keywords = ["port", "storm"]
summary = "Work on the wall starts in spring."
"#,
            ago(90),
            ago(150),
            ago(60 * 24 * 20),
        ),
    );
    let mut subscribers = site.read("subscribers.toml");
    subscribers.push_str("\n[[subscribers]]\nemail = \"nameless@example.com\"\n");
    site.write("subscribers.toml", subscribers);
    site
}

/// A dry run on the wall clock (the English site's articles are recent).
fn dry_run_now(site: &Site) -> DryRun {
    DryRun {
        run: site.run(&["digest", "--dry-run", "out"]),
        dir: site.path("out"),
    }
    .ok()
}

/// Every email of a dry run, by address.
fn emails(run: &DryRun) -> BTreeMap<String, Email> {
    run.emls()
        .into_iter()
        .map(|(address, raw)| (address, Email::parse(raw)))
        .collect()
}

/// The example site's emails (Chinese) and the English site's, both sites
/// with a public archive (so the emails link it: "view in browser").
fn both_languages() -> Vec<(String, Email)> {
    let example = Site::example();
    let english = english_site();
    for site in [&example, &english] {
        site.set("digest.archive", "digest");
    }
    let mut all: Vec<(String, Email)> = emails(&example.dry_run("out").ok())
        .into_iter()
        .map(|(a, e)| (format!("zh {a}"), e))
        .collect();
    all.extend(
        emails(&dry_run_now(&english))
            .into_iter()
            .map(|(a, e)| (format!("en {a}"), e)),
    );
    assert!(all.len() >= 9, "{}", all.len());
    all
}

fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{2E80}'..='\u{9FFF}'     // radicals, CJK punctuation, kana, ideographs
        | '\u{AC00}'..='\u{D7AF}'   // Hangul
        | '\u{F900}'..='\u{FAFF}'   // compatibility ideographs
        | '\u{FE30}'..='\u{FE4F}'   // compatibility forms
        | '\u{FF00}'..='\u{FFEF}'   // full-width forms
        | '\u{20000}'..='\u{3FFFF}')
}

/// Every URL in a text part: from `http(s)://` to the next space.
fn text_urls(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("http") {
        let tail = &rest[at..];
        let end = tail.find(char::is_whitespace).unwrap_or(tail.len());
        if tail.starts_with("https://") || tail.starts_with("http://") {
            out.push(tail[..end].to_owned());
        }
        rest = &tail[end.max(4)..];
    }
    out
}

/// Every URL an HTML part references (`href` and `src`), unescaped.
fn html_urls(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attribute in [" href=\"", " src=\""] {
        let mut rest = html;
        while let Some(at) = rest.find(attribute) {
            let value = &rest[at + attribute.len()..];
            let end = value.find('"').expect("a closed attribute");
            out.push(html_unescape(&value[..end]));
            rest = &value[end..];
        }
    }
    out
}

fn sorted(mut urls: Vec<String>) -> Vec<String> {
    urls.sort();
    urls
}

#[test]
fn the_built_in_templates_follow_the_site_language() {
    const CHINESE: [&str; 5] = ["您好", "相关阅读", "来源：", "作者：", "退订"];
    const ENGLISH: [&str; 5] = ["Hello", "Related reads", "Source: ", "By ", "Unsubscribe"];
    let site = english_site();
    site.unset("digest.html").unset("digest.text");
    for (language, words, index) in [
        ("zh", CHINESE, "试运行"),
        ("zh-Hant-TW", CHINESE, "试运行"),
        ("en", ENGLISH, "dry run"),
        ("en-GB", ENGLISH, "dry run"),
        ("fr", ENGLISH, "dry run"),
        ("de-CH", ENGLISH, "dry run"),
    ] {
        site.set("site.language", language);
        site.check().assert_success();
        let run = dry_run_now(&site);
        let email = run.email("reader@example.com");
        for word in words {
            assert!(
                email.text.contains(word),
                "{language}: {word:?} not in\n{}",
                email.text
            );
            assert!(
                email.html.contains(word),
                "{language}: {word:?} not in the HTML"
            );
        }
        assert!(
            email.html.contains(&format!("lang=\"{language}\"")),
            "{language}"
        );
        assert!(run.index().contains(index), "{language}: {}", run.index());
        if words == ENGLISH {
            // The site is English: the built-in text adds no CJK.
            for (part, text) in [("text", &email.text), ("HTML", &email.html)] {
                assert!(
                    !text.chars().any(is_cjk),
                    "{language}: CJK in the {part} part"
                );
            }
        }
    }
}

#[test]
fn an_english_starter_site_has_no_cjk_anywhere() {
    let temp = tempfile::tempdir().unwrap();
    crate::support::Cmd::in_dir(temp.path())
        .args(["init", "starter"])
        .run()
        .assert_success();
    let run = crate::support::Cmd::in_dir(&temp.path().join("starter"))
        .args(["digest", "--dry-run", "out"])
        .env("BULLETIN_UNSUBSCRIBE_SECRET", "0123456789abcdef")
        .run();
    run.assert_success();
    let dir = temp.path().join("starter/out");
    let files = crate::support::read_files(&dir);
    assert!(
        files.keys().filter(|f| f.ends_with(".eml")).count() >= 2,
        "{:?}",
        files.keys()
    );
    for (name, bytes) in &files {
        let text = String::from_utf8_lossy(bytes);
        assert!(
            !text.chars().any(is_cjk),
            "{name} has a CJK character:\n{text}"
        );
        if name.ends_with(".eml") {
            let email = Email::parse(bytes.clone());
            for part in [&email.subject, &email.text, &email.html] {
                assert!(!part.chars().any(is_cjk), "{name}: {part}");
            }
            assert!(email.text.contains("Unsubscribe:"), "{}", email.text);
        }
    }
}

/// rspamd scores a multipart/alternative message whose parts reference
/// different links (`URI_COUNT_ODD`): the text part carries exactly the
/// URLs of the HTML part, masthead, sections, items, lead images,
/// related reads, footer and unsubscribe link, as many times each.
#[test]
fn the_text_part_carries_every_url_of_the_html_part() {
    for (name, email) in both_languages() {
        let html = sorted(html_urls(&email.html));
        let text = sorted(text_urls(&email.text));
        assert_eq!(html, text, "{name}: the parts' URLs differ\n{}", email.text);
        for link in ["/unsubscribe?token=", "/digest/"] {
            assert!(html.iter().any(|u| u.contains(link)), "{name}: {link}");
        }
        // Neither part is base64: rspamd's MIME_BASE64_TEXT.
        let raw = String::from_utf8_lossy(&email.raw).to_ascii_lowercase();
        assert!(!raw.contains("content-transfer-encoding: base64"), "{name}");
    }
}

/// Lines of at most 78 columns (a CJK character counts two), unless the
/// line is one URL, which is never cut; the signature after `-- `.
#[test]
fn text_lines_fit_78_columns_and_urls_are_whole() {
    let mut wrapped = 0;
    for (name, email) in both_languages() {
        let html_urls = html_urls(&email.html);
        for line in email.text.lines() {
            let columns = line.width_cjk();
            if columns > 78 {
                let url = line.trim_start();
                assert!(
                    !url.contains(' ') && html_urls.iter().any(|u| u == url),
                    "{name}: a line of {columns} columns: {line:?}"
                );
            }
        }
        wrapped += email.text.lines().filter(|l| l.width_cjk() > 70).count();
        let separators: Vec<usize> = email
            .text
            .lines()
            .enumerate()
            .filter(|(_, l)| l.trim_end() == "--")
            .map(|(n, _)| n)
            .collect();
        assert_eq!(separators.len(), 1, "{name}: {separators:?}");
        let signature = &email.text.lines().collect::<Vec<_>>()[separators[0]..];
        assert_eq!(
            signature[0], "-- ",
            "{name}: the separator is dash dash space"
        );
        assert!(
            signature.iter().any(|l| l.contains("/unsubscribe?token=")),
            "{name}: the unsubscribe link is in the signature"
        );
    }
    assert!(wrapped > 10, "the samples have lines that needed wrapping");
}

#[test]
fn lead_images_are_width_bounded_and_described_by_the_title() {
    let site = english_site();
    let email = dry_run_now(&site).email("reader@example.com");
    let html = &email.html;
    let images: Vec<&str> = html
        .match_indices("<img ")
        .map(|(at, _)| &html[at..at + html[at..].find('>').unwrap()])
        .collect();
    assert_eq!(images.len(), 2, "{html}");
    for (image, src, title) in [
        (
            images[0],
            "https://img.news.example.com/2026/harbour.jpg",
            "Harbour &quot;cranes&quot; &amp; tugs return as the port reopens after the storm",
        ),
        (
            images[1],
            "https://img.news.example.com/2026/library.jpg",
            "The city library opens a reading room for night-shift workers",
        ),
    ] {
        assert!(image.contains(&format!("src=\"{src}\"")), "{image}");
        assert!(image.contains(&format!("alt=\"{title}\"")), "{image}");
        assert!(image.contains("width=\"552\""), "{image}");
        for style in ["max-width:100%", "height:auto", "display:block"] {
            assert!(image.contains(style), "{style}: {image}");
        }
        // The title follows its image.
        let after = &html[html.find(image).unwrap()..];
        let (_, text) = &links(after)[0];
        assert_eq!(text, title);
    }
    // Items without an image have none (no empty src, no broken box).
    assert!(!html.contains("src=\"\""));
    assert_eq!(html.matches("<img").count(), 2);
}

#[test]
fn a_hidden_preheader_previews_the_first_titles() {
    for (name, email) in both_languages() {
        let html = &email.html;
        let body = &html[html.find("<body").unwrap()..];
        let body = &body[body.find('>').unwrap() + 1..].trim_start();
        let opening =
            "<div style=\"display:none;max-height:0;overflow:hidden;mso-hide:all;\"><span>";
        assert!(
            body.starts_with(opening),
            "{name}: the body starts {:?}",
            &body[..200]
        );
        let preheader = html_unescape(&body[opening.len()..body.find("</span>").unwrap()]);
        let titles: Vec<String> = links(html)
            .into_iter()
            .filter(|(href, _)| {
                html.contains(&format!("{href}\" style=\"font-size:17px;line-height"))
            })
            .map(|(_, text)| html_unescape(&text))
            .collect();
        assert!(!titles.is_empty(), "{name}");
        assert!(
            preheader.starts_with(&titles[0]),
            "{name}: {preheader:?} vs {titles:?}"
        );
        let shown = preheader.split(" · ").count();
        assert!(shown >= titles.len().min(2), "{name}: {preheader:?}");
        assert!(preheader.chars().count() <= 151, "{name}: {preheader:?}");
    }
}

/// The HTML part passes HTML Tidy with no error. One warning remains by
/// design: `align="center"` on the outer cell, which HTML5 calls obsolete
/// and Outlook for Windows needs to centre the 600 px column (it ignores
/// `margin:auto`).
#[test]
fn the_html_part_passes_tidy() {
    const ALLOWED: [&str; 1] = ["<td> attribute \"align\" not allowed for HTML5"];
    let temp = tempfile::tempdir().unwrap();
    for (name, email) in both_languages() {
        let file = temp.path().join("part.html");
        std::fs::write(&file, &email.html).unwrap();
        let output = Command::new("tidy")
            .args(["-q", "-e", "-utf8"])
            .arg(&file)
            .output()
            .expect("HTML Tidy runs (apt install tidy)");
        let report = String::from_utf8_lossy(&output.stderr);
        let mut warnings = 0;
        for line in report.lines() {
            let message = line.split_once(" - ").map_or(line, |(_, m)| m);
            match message.split_once(": ") {
                Some(("Warning", text)) if ALLOWED.contains(&text) => warnings += 1,
                _ => panic!("{name}: tidy says {line}\n{report}"),
            }
        }
        assert_eq!(
            output.status.code(),
            Some(if warnings > 0 { 1 } else { 0 }),
            "{name}: {report}"
        );
    }
}

// ---- contrast ---------------------------------------------------------------

type Rgb = [u8; 3];

/// WCAG 2 relative luminance.
fn luminance(rgb: Rgb) -> f64 {
    let channel = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * channel(rgb[0]) + 0.7152 * channel(rgb[1]) + 0.0722 * channel(rgb[2])
}

/// WCAG 2 contrast ratio, 1 to 21.
fn contrast(a: Rgb, b: Rgb) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

fn hex(value: &str) -> Rgb {
    let digits = value
        .trim()
        .strip_prefix('#')
        .unwrap_or_else(|| panic!("colour {value:?} is not #rgb or #rrggbb"));
    let digits: String = match digits.len() {
        3 => digits.chars().flat_map(|c| [c, c]).collect(),
        6 => digits.to_owned(),
        _ => panic!("colour {value:?} is not #rgb or #rrggbb"),
    };
    let byte = |i: usize| u8::from_str_radix(&digits[i..i + 2], 16).expect("hex");
    [byte(0), byte(2), byte(4)]
}

/// A text or background colour a `style` attribute declares.
fn declared(style: &str, property: &str) -> Option<Rgb> {
    style.split(';').find_map(|declaration| {
        let (name, value) = declaration.split_once(':')?;
        (name.trim() == property).then(|| hex(value))
    })
}

/// `(text colour, background, where)` for every piece of text, link and
/// image (its `alt` shows when the image does not load) in an HTML
/// template, colours inherited as a browser does. A link must set its
/// colour (clients would paint it their own blue); colours come from
/// inline styles only.
fn colour_pairs(template: &str) -> Vec<(Rgb, Rgb, String)> {
    const VOID: [&str; 5] = ["meta", "br", "img", "hr", "link"];
    // (tag, text colour, background)
    let mut stack: Vec<(String, Rgb, Rgb)> = vec![("root".into(), [0, 0, 0], [255, 255, 255])];
    let mut pairs = Vec::new();
    let mut rest = template;
    let line = |rest: &str| template[..template.len() - rest.len()].lines().count();
    while let Some(open) = rest.find('<') {
        let text = &rest[..open];
        let (_, fg, bg) = stack.last().unwrap().clone();
        let visible = strip_blocks(text);
        if !visible.trim().is_empty() {
            pairs.push((
                fg,
                bg,
                format!("line {}: text {:?}", line(rest), visible.trim()),
            ));
        }
        rest = &rest[open..];
        let end = rest.find('>').expect("a closed tag");
        let tag = &rest[1..end];
        rest = &rest[end + 1..];
        if tag.starts_with('!') {
            continue;
        }
        if let Some(name) = tag.strip_prefix('/') {
            while let Some((open, ..)) = stack.pop() {
                if open == name.trim() {
                    break;
                }
            }
            continue;
        }
        let name = tag.split_whitespace().next().unwrap().to_ascii_lowercase();
        assert!(
            !["style", "font"].contains(&name.as_str()),
            "<{name}>: inline styles only"
        );
        assert!(
            !tag.contains("bgcolor") && !tag.contains(" color="),
            "colour attribute: <{tag}>"
        );
        let style = tag
            .find("style=\"")
            .map(|at| &tag[at + 7..at + 7 + tag[at + 7..].find('"').unwrap()])
            .unwrap_or_default();
        let fg_declared = declared(style, "color");
        let bg_declared = declared(style, "background-color").or(declared(style, "background"));
        let fg = fg_declared.unwrap_or(fg);
        let bg = bg_declared.unwrap_or(bg);
        let at = format!("line {}: <{name}>", line(rest));
        if name == "a" {
            assert!(fg_declared.is_some(), "{at}: a link without its colour");
        }
        if fg_declared.is_some() || name == "img" || name == "a" {
            pairs.push((fg, bg, at));
        }
        if !VOID.contains(&name.as_str()) {
            stack.push((name, fg, bg));
        }
    }
    pairs
}

/// `text` without Handlebars block tags (`{{#if …}}`, `{{/if}}`, `{{else}}`),
/// which render nothing themselves.
fn strip_blocks(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find("{{") {
        out.push_str(&rest[..at]);
        let end = rest[at..].find("}}").expect("closed") + at + 2;
        let inner = &rest[at + 2..end - 2];
        if !(inner.starts_with('#') || inner.starts_with('/') || inner.starts_with("else")) {
            out.push_str(&rest[at..end]);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn the_contrast_measure_is_wcag_2() {
    assert!((contrast(hex("#000"), hex("#ffffff")) - 21.0).abs() < 1e-9);
    assert!((contrast(hex("#777"), hex("#777")) - 1.0).abs() < 1e-9);
    // The grey footer of the first templates: 3.54, below AA.
    assert!((contrast(hex("#888888"), hex("#fff")) - 3.54).abs() < 0.01);
    assert!((contrast(hex("#595959"), hex("#fff")) - 7.0).abs() < 0.01);
}

/// Every text colour against its background at WCAG AA (4.5:1, the ratio
/// for normal-size text), in both languages' HTML templates: text, links
/// (the unsubscribe link included) and images' alternative text.
#[test]
fn every_colour_pair_of_the_built_in_templates_meets_wcag_aa() {
    for language in ["zh", "en"] {
        let path = repo_root().join(format!("templates/digest.{language}.html.hbs"));
        let template = std::fs::read_to_string(&path).unwrap();
        let pairs = colour_pairs(&template);
        assert!(pairs.len() >= 15, "{language}: {pairs:?}");
        for (fg, bg, at) in &pairs {
            let ratio = contrast(*fg, *bg);
            assert!(
                ratio >= 4.5,
                "{}: {at}: {fg:?} on {bg:?} is {ratio:.2}:1, below WCAG AA's 4.5:1",
                path.display()
            );
        }
        // The unsubscribe link is one of the pairs checked.
        assert!(
            template.contains(
                "{{#if unsubscribe_url}}<br><a href=\"{{unsubscribe_url}}\" style=\"color:#595959;"
            ),
            "{language}"
        );
        // A grey below AA would fail: the check sees a changed colour.
        let grey = template.replace(
            "color:#595959;text-decoration:underline;\">",
            "color:#888888;text-decoration:underline;\">",
        );
        assert!(
            colour_pairs(&grey)
                .iter()
                .any(|(fg, bg, _)| contrast(*fg, *bg) < 4.5)
        );
    }
}
