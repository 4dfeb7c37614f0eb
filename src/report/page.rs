//! The HTML page and its building blocks: the page with its style and sections, key-value and
//! header tables, PNG pictures as data URIs (base64 written here: nothing is loaded).

use super::svg::escape;
use crate::error::Result;
use std::fmt::Write;

/// A page under construction: a title and sections of HTML.
pub(super) struct Page {
    title: String,
    sections: Vec<(String, String)>,
}

const STYLE: &str = "body{font-family:sans-serif;max-width:1120px;margin:0 auto;padding:16px 24px;color:#222;line-height:1.4}\
h1{font-size:22px;margin:8px 0 4px}h2{font-size:17px;border-bottom:1px solid #ccc;padding-bottom:3px;margin-top:28px}\
table{border-collapse:collapse;font-size:13px;margin:6px 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}\
th{background:#f4f4f4}.num{text-align:right;font-variant-numeric:tabular-nums}.grid{display:flex;flex-wrap:wrap;gap:12px}\
.note{color:#666;font-size:13px}img{image-rendering:pixelated;border:1px solid #ddd;max-width:100%}code{background:#f4f4f4;padding:0 3px}";

impl Page {
    pub(super) fn new(title: String) -> Self {
        Page {
            title,
            sections: Vec::new(),
        }
    }

    pub(super) fn section(&mut self, title: &str, body: String) {
        self.sections.push((title.to_string(), body));
    }

    pub(super) fn html(&self) -> String {
        let mut s = String::new();
        let _ = write!(
            s,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{}</title><style>{STYLE}</style></head><body><h1>{}</h1>",
            escape(&self.title),
            escape(&self.title)
        );
        let _ = write!(
            s,
            "<p class=\"note\">Written by hourglass {} · {}</p>",
            env!("CARGO_PKG_VERSION"),
            self.sections
                .iter()
                .map(|(t, _)| escape(t))
                .collect::<Vec<_>>()
                .join(" · ")
        );
        for (t, body) in &self.sections {
            let _ = write!(s, "<h2>{}</h2>{body}", escape(t));
        }
        s.push_str("</body></html>\n");
        s
    }
}

/// A two-column table of `(key, value)` (values are HTML).
pub(super) fn pairs(rows: &[(&str, String)]) -> String {
    let mut s = String::from("<table>");
    for (k, v) in rows {
        let _ = write!(s, "<tr><th>{}</th><td>{v}</td></tr>", escape(k));
    }
    s.push_str("</table>");
    s
}

/// A table with a header row; cells are HTML, numbers right-aligned by `numeric`.
pub(super) fn table(head: &[&str], rows: &[Vec<String>], numeric: &[bool]) -> String {
    let mut s = String::from("<table><tr>");
    for h in head {
        let _ = write!(s, "<th>{}</th>", escape(h));
    }
    s.push_str("</tr>");
    for r in rows {
        s.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            let class = if numeric.get(i).copied().unwrap_or(false) {
                " class=\"num\""
            } else {
                ""
            };
            let _ = write!(s, "<td{class}>{c}</td>");
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");
    s
}

/// A PNG picture as an `<img>` with a data URI.
pub(super) fn image(p: &crate::viz::Picture, alt: &str, zoom_width: usize) -> Result<String> {
    let bytes = crate::data::images::png_bytes(std::path::Path::new("report.html"), p)?;
    Ok(format!(
        "<img alt=\"{}\" width=\"{}\" src=\"data:image/png;base64,{}\">",
        escape(alt),
        zoom_width,
        base64(&bytes)
    ))
}

/// Standard base64 (RFC 4648, with padding).
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n =
            (u32::from(c[0]) << 16) | (u32::from(*c.get(1).unwrap_or(&0)) << 8) | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}
