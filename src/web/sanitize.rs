//! A message's HTML made safe to show (pure: HTML in, HTML out). ammonia parses it
//! as a browser would (html5ever) and keeps only an allow-list of elements and
//! attributes: no script, no event handler, no form, no frame, no `<base>`, no
//! `<meta>`, no `<style>` sheet (style attributes keep only properties that cannot
//! load anything), links only to `http`, `https` and `mailto`, images only as
//! `data:` pictures. Everything that would load from elsewhere (remote images,
//! beacons) is dropped and counted, so the page can say how many were blocked.
//!
//! This is the first of two walls: the result is also shown in a sandboxed frame
//! (no scripts, unique origin) under a Content-Security-Policy that loads nothing
//! ([`FRAME_CSP`]), so a gap in one is closed by the other.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The policy the sanitised body is served under: nothing is loaded but inline
/// style and `data:` images; no script, form, frame or base; and it is a sandbox of
/// its own even when opened outside its frame.
pub const FRAME_CSP: &str = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; \
     base-uri 'none'; form-action 'none'; frame-ancestors 'self'; sandbox allow-popups \
     allow-popups-to-escape-sandbox";

/// A sanitised body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sanitised {
    /// The body's HTML, safe to place in a document.
    pub html: String,
    /// How many references to remote content (images, sheets, beacons) were dropped.
    pub remote_blocked: usize,
}

/// Style properties kept: none of them takes a URL.
const STYLE_PROPERTIES: &[&str] = &[
    "background-color",
    "border",
    "border-bottom",
    "border-collapse",
    "border-color",
    "border-left",
    "border-radius",
    "border-right",
    "border-spacing",
    "border-style",
    "border-top",
    "border-width",
    "color",
    "display",
    "font",
    "font-family",
    "font-size",
    "font-style",
    "font-weight",
    "height",
    "letter-spacing",
    "line-height",
    "margin",
    "margin-bottom",
    "margin-left",
    "margin-right",
    "margin-top",
    "max-width",
    "min-width",
    "padding",
    "padding-bottom",
    "padding-left",
    "padding-right",
    "padding-top",
    "text-align",
    "text-decoration",
    "text-transform",
    "vertical-align",
    "white-space",
    "width",
    "word-break",
];

/// Presentational attributes old mail leans on, on every element kept.
const GENERIC_ATTRIBUTES: &[&str] = &[
    "align",
    "bgcolor",
    "border",
    "cellpadding",
    "cellspacing",
    "color",
    "dir",
    "face",
    "height",
    "lang",
    "size",
    "style",
    "title",
    "valign",
    "width",
];

/// Pictures a `data:` URL may hold (not SVG: it can carry script).
const DATA_IMAGES: &[&str] = &[
    "data:image/png;",
    "data:image/gif;",
    "data:image/jpeg;",
    "data:image/webp;",
];

/// Whether `url` would fetch from another host.
fn is_remote(url: &str) -> bool {
    let u = url.trim_start().to_ascii_lowercase();
    u.starts_with("http:") || u.starts_with("https:") || u.starts_with("//") || u.starts_with("ftp:")
}

fn link_allowed(url: &str) -> bool {
    let u = url.trim_start().to_ascii_lowercase();
    u.starts_with("http:") || u.starts_with("https:") || u.starts_with("mailto:")
}

fn picture_allowed(url: &str) -> bool {
    let u = url.trim_start().to_ascii_lowercase();
    DATA_IMAGES.iter().any(|p| u.starts_with(p))
}

/// What one attribute becomes: kept, or dropped (and counted when it was remote).
fn filter_attribute<'u>(element: &str, attribute: &str, value: &'u str, blocked: &AtomicUsize) -> Option<Cow<'u, str>> {
    let keep = match (element, attribute) {
        ("a", "href") => link_allowed(value),
        (_, "src") => picture_allowed(value),
        (_, "background") | (_, "cite") | (_, "poster") | (_, "srcset") => false,
        _ => true,
    };
    if !keep && is_remote(value) {
        blocked.fetch_add(1, Ordering::Relaxed);
    }
    keep.then_some(Cow::Borrowed(value))
}

/// Counts what the sanitiser drops whole that would have loaded something: style
/// sheets and `<link>`s, and `url(` / `@import` in style attributes.
fn count_stylesheet_loads(html: &str) -> usize {
    let lower = html.to_ascii_lowercase();
    ["url(", "@import", "<link"]
        .iter()
        .map(|p| lower.matches(p).count())
        .sum()
}

/// `html` sanitised for display.
pub fn sanitise(html: &str) -> Sanitised {
    let blocked = Arc::new(AtomicUsize::new(0));
    let counter = blocked.clone();
    let mut b = ammonia::Builder::default();
    b.add_generic_attributes(GENERIC_ATTRIBUTES)
        .filter_style_properties(STYLE_PROPERTIES.iter().copied().collect::<HashSet<_>>())
        .url_schemes(["http", "https", "mailto", "data"].into_iter().collect())
        .url_relative(ammonia::UrlRelative::Deny)
        .set_tag_attribute_value("a", "target", "_blank")
        .link_rel(Some("noopener noreferrer"))
        .attribute_filter(move |e, a, v| filter_attribute(e, a, v, &counter));
    let html_out = b.clean(html).to_string();
    let remote_blocked = blocked.load(Ordering::Relaxed) + count_stylesheet_loads(html);
    Sanitised {
        html: html_out,
        remote_blocked,
    }
}

/// The document the sanitised body is served as, inside its frame.
pub fn frame_document(body: &Sanitised) -> String {
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\">\
         <style>body{{font-family:system-ui,sans-serif;margin:8px;overflow-wrap:anywhere}}\
         img{{max-width:100%;height:auto}}</style></head><body>{}</body></html>",
        body.html
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hostile shapes, and text that must not survive sanitising.
    const HOSTILE: &[(&str, &str)] = &[
        ("<script>alert(1)</script>hi", "<script"),
        ("<img src=x onerror=alert(1)>", "onerror"),
        ("<a href=\"javascript:alert(1)\">x</a>", "javascript:"),
        ("<a href=\"data:text/html,<script>1</script>\">x</a>", "data:text"),
        ("<svg><script>alert(1)</script></svg>", "<svg"),
        ("<div style=\"background:url(http://127.0.0.1/b)\">x</div>", "url("),
        ("<style>@import 'http://127.0.0.1/s.css';</style>", "@import"),
        ("<meta http-equiv=refresh content=\"0;url=http://127.0.0.1/\">", "<meta"),
        ("<form action=http://127.0.0.1/><input name=p></form>", "<form"),
        ("<base href=http://127.0.0.1/><a href=x>x</a>", "<base"),
        ("<iframe src=http://127.0.0.1/></iframe>", "<iframe"),
        ("<img src=http://127.0.0.1/pixel.gif width=1 height=1>", "127.0.0.1"),
        ("<style><img src=x onerror=alert(1)></style><p>", "onerror"),
        ("<object data=http://127.0.0.1/o></object>", "<object"),
        ("<body onload=alert(1)>", "onload"),
        ("<img srcset=\"http://127.0.0.1/a 1x\">", "srcset"),
        (
            "<table background=http://127.0.0.1/t><tr><td>x</td></tr></table>",
            "background",
        ),
        ("<img src=\"data:image/svg+xml,<svg onload=alert(1)>\">", "svg"),
    ];

    #[test]
    fn hostile_markup_is_removed() {
        for (input, gone) in HOSTILE {
            let out = sanitise(input).html.to_ascii_lowercase();
            assert!(!out.contains(gone), "{input:?} kept {gone:?}: {out}");
        }
    }

    #[test]
    fn remote_loads_are_counted() {
        let s = sanitise(
            "<img src=http://a.example/p.gif><img src=https://b.example/q.png>\
             <p style=\"background:url(http://c.example/)\">x</p><img src=\"data:image/png;base64,iVBO\">",
        );
        assert_eq!(s.remote_blocked, 3, "{s:?}");
        assert!(s.html.contains("data:image/png;base64,iVBO"), "{}", s.html);
    }

    #[test]
    fn ordinary_mail_markup_survives() {
        let s = sanitise(
            "<table cellpadding=2 bgcolor=#eee><tr><td style=\"color: red; font-weight: bold\">Hi</td></tr></table>\
             <a href=\"https://example.org/x\">link</a> <a href=\"mailto:a@example.org\">mail</a>",
        );
        for kept in [
            "cellpadding",
            "bgcolor",
            "color:red",
            "https://example.org/x",
            "mailto:a@example.org",
            "target=\"_blank\"",
        ] {
            assert!(s.html.contains(kept), "{kept} lost: {}", s.html);
        }
        assert_eq!(s.remote_blocked, 0);
    }
}
