//! A tiny HTML builder that escapes by construction: text and attribute values are always
//! escaped, and the only way to write markup unescaped is [`Html::raw`], which takes a
//! `&'static str`, so nothing read from the broker (topic names, group ids, client ids,
//! record contents) can reach the page unescaped. Elements are written through closures, so
//! every tag opened is closed.

use std::fmt::Write;

#[derive(Default)]
pub struct Html {
    out: String,
}

/// Elements with no closing tag.
const VOID: &[&str] = &["br", "input", "link", "meta", "hr", "img"];

impl Html {
    pub fn new() -> Html {
        Html {
            out: String::with_capacity(16 * 1024),
        }
    }

    pub fn finish(self) -> String {
        self.out
    }

    /// An element with attributes; `body` writes its content.
    pub fn el(
        &mut self,
        tag: &'static str,
        attrs: &[(&'static str, &str)],
        body: impl FnOnce(&mut Html),
    ) {
        self.open(tag, attrs);
        if !VOID.contains(&tag) {
            body(self);
            self.out.push_str("</");
            self.out.push_str(tag);
            self.out.push('>');
        }
    }

    /// An element holding only text.
    pub fn text_el(&mut self, tag: &'static str, attrs: &[(&'static str, &str)], text: &str) {
        self.el(tag, attrs, |h| h.text(text));
    }

    /// A void element (`<input>`, `<br>`).
    pub fn void(&mut self, tag: &'static str, attrs: &[(&'static str, &str)]) {
        self.open(tag, attrs);
    }

    fn open(&mut self, tag: &'static str, attrs: &[(&'static str, &str)]) {
        self.out.push('<');
        self.out.push_str(tag);
        for (name, value) in attrs {
            self.out.push(' ');
            self.out.push_str(name);
            self.out.push_str("=\"");
            escape_into(&mut self.out, value);
            self.out.push('"');
        }
        self.out.push('>');
    }

    /// Escaped text.
    pub fn text(&mut self, text: &str) {
        escape_into(&mut self.out, text);
    }

    /// A number as text (nothing to escape).
    pub fn num(&mut self, n: impl std::fmt::Display) {
        let _ = write!(self.out, "{n}");
    }

    /// Markup written by this crate; `'static` so no runtime data can pass through here.
    pub fn raw(&mut self, markup: &'static str) {
        self.out.push_str(markup);
    }

    /// A link to `href` (built with [`path_segment`] for parts that come from data).
    pub fn link(&mut self, href: &str, text: &str) {
        self.el("a", &[("href", href)], |h| h.text(text));
    }
}

/// Escapes `&<>"'` for both text and double-quoted attribute values.
pub fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// Percent-encodes `s` for one path segment or query value: group ids may hold `/`, `?`,
/// `#`, spaces or anything else a client chose.
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Bytes as a short human figure (binary units, as `weir topic describe`).
pub fn bytes(n: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{v:.0} B"),
        _ => format!("{v:.1} {}", UNITS.get(unit).copied().unwrap_or("B")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_attributes_are_escaped() {
        let mut h = Html::new();
        h.el("a", &[("href", "/x?a=1&b=\"2\"")], |h| {
            h.text("<script>alert('x')</script>")
        });
        h.void("input", &[("value", "a'b")]);
        assert_eq!(
            h.finish(),
            "<a href=\"/x?a=1&amp;b=&quot;2&quot;\">&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</a>\
             <input value=\"a&#39;b\">"
        );
    }

    #[test]
    fn path_segments_are_percent_encoded() {
        assert_eq!(path_segment("orders.v1_a-b"), "orders.v1_a-b");
        assert_eq!(path_segment("a/b c?#é"), "a%2Fb%20c%3F%23%C3%A9");
    }

    #[test]
    fn byte_figures() {
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1536.0), "1.5 KiB");
        assert_eq!(bytes(3.0 * 1024.0 * 1024.0 * 1024.0), "3.0 GiB");
    }
}
