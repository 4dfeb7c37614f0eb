//! Inline SVG charts for the report: line charts (training curves, ROC and PR curves),
//! histograms and horizontal bar charts. Axes carry ticks at round numbers and labels with
//! their units; nothing is loaded from anywhere.

use std::fmt::Write;

/// Width and height of a chart, in CSS pixels.
const W: f64 = 520.0;
const H: f64 = 300.0;
/// Margins: left (tick labels and the y label), right, top, bottom (ticks and the x label).
const ML: f64 = 70.0;
const MR: f64 = 16.0;
const MT: f64 = 28.0;
const MB: f64 = 48.0;

/// Colours of the series, in order (distinguishable, also in gray).
pub const COLOURS: [&str; 4] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];

/// `<`, `>`, `&` and quotes escaped for HTML and SVG text.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A number as a tick label: short, no trailing zeros.
pub fn num(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        return format!("{v:.1e}");
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// Round tick values covering `[lo, hi]` (about five).
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = (hi - lo).max(f64::MIN_POSITIVE);
    let raw = span / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| span / s <= 6.0)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() * step;
    (0..)
        .map(|i| first + i as f64 * step)
        .take_while(|v| *v <= hi + step * 1e-9)
        .take(12)
        .collect()
}

/// One series of a line chart.
pub struct Series<'a> {
    /// Legend text.
    pub name: &'a str,
    /// Points, x ascending.
    pub points: Vec<(f64, f64)>,
}

/// A chart's axes: labels (with units) and whether y is drawn on a log scale.
pub struct Axes<'a> {
    /// Title above the chart.
    pub title: &'a str,
    /// x-axis label.
    pub x: &'a str,
    /// y-axis label.
    pub y: &'a str,
    /// Log-scale y (positive values only; others are left out).
    pub log_y: bool,
    /// Fixed ranges, when the data's own would mislead (e.g. [0, 1] for rates).
    pub x_range: Option<(f64, f64)>,
    /// As `x_range`, for y.
    pub y_range: Option<(f64, f64)>,
}

struct Frame {
    x: (f64, f64),
    y: (f64, f64),
    log_y: bool,
}

impl Frame {
    fn px(&self, x: f64) -> f64 {
        ML + (x - self.x.0) / (self.x.1 - self.x.0).max(f64::MIN_POSITIVE) * (W - ML - MR)
    }
    fn py(&self, y: f64) -> f64 {
        let y = if self.log_y { y.log10() } else { y };
        H - MB - (y - self.y.0) / (self.y.1 - self.y.0).max(f64::MIN_POSITIVE) * (H - MT - MB)
    }
}

fn widen((lo, hi): (f64, f64)) -> (f64, f64) {
    if hi > lo {
        (lo, hi)
    } else if lo == 0.0 {
        (-1.0, 1.0)
    } else {
        (lo - lo.abs() * 0.5, hi + hi.abs() * 0.5)
    }
}

fn range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)))
}

/// The frame, axes, ticks and labels; returns the open `<svg>` and the frame to draw in.
fn open(a: &Axes<'_>, x: (f64, f64), y: (f64, f64)) -> (String, Frame) {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{}" font-family="sans-serif" font-size="11">"#,
        escape(a.title)
    );
    let _ = write!(
        s,
        r#"<text x="{}" y="16" font-size="13" font-weight="bold">{}</text>"#,
        ML,
        escape(a.title)
    );
    let (ylo, yhi) = if a.log_y {
        (y.0.log10().floor(), y.1.log10().ceil())
    } else {
        y
    };
    let f = Frame {
        x: widen(x),
        y: widen((ylo, yhi)),
        log_y: a.log_y,
    };
    let (x0, x1, y0, y1) = (ML, W - MR, MT, H - MB);
    let _ = write!(
        s,
        r##"<rect x="{x0}" y="{y0}" width="{}" height="{}" fill="none" stroke="#999"/>"##,
        x1 - x0,
        y1 - y0
    );
    for t in ticks(f.x.0, f.x.1) {
        let px = f.px(t);
        let _ = write!(
            s,
            r##"<line x1="{px:.1}" y1="{y1}" x2="{px:.1}" y2="{}" stroke="#999"/><text x="{px:.1}" y="{}" text-anchor="middle">{}</text>"##,
            y1 + 4.0,
            y1 + 16.0,
            num(t)
        );
    }
    let yt: Vec<f64> = if a.log_y {
        (f.y.0 as i32..=f.y.1 as i32).map(|e| 10f64.powi(e)).collect()
    } else {
        ticks(f.y.0, f.y.1)
    };
    for t in yt {
        let py = f.py(t);
        let _ = write!(
            s,
            r##"<line x1="{}" y1="{py:.1}" x2="{x1}" y2="{py:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            x0 - 4.0,
            x0 - 6.0,
            py + 4.0,
            num(t)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
        (x0 + x1) / 2.0,
        H - 8.0,
        escape(a.x)
    );
    let _ = write!(
        s,
        r#"<text transform="translate(14 {:.1}) rotate(-90)" text-anchor="middle">{}</text>"#,
        (y0 + y1) / 2.0,
        escape(a.y)
    );
    (s, f)
}

/// A dashed vertical line at `px` with its label beside it (on its left when it stands in the
/// right half, so the label stays inside the chart).
fn mark(s: &mut String, px: f64, label: &str, colour: &str) {
    let (tx, anchor) = if px > (ML + W - MR) / 2.0 {
        (px - 3.0, "end")
    } else {
        (px + 3.0, "start")
    };
    let _ = write!(
        s,
        r##"<line x1="{px:.1}" y1="{MT}" x2="{px:.1}" y2="{}" stroke="{colour}" stroke-width="1.5" stroke-dasharray="5 3"/><text x="{tx:.1}" y="{}" font-size="10" text-anchor="{anchor}">{}</text>"##,
        H - MB,
        MT + 10.0,
        escape(label)
    );
}

/// A line chart of `series` (a legend when there is more than one), with dashed vertical
/// markers at `marks` (x, label).
pub fn lines(a: &Axes<'_>, series: &[Series<'_>], marks: &[(f64, String)]) -> String {
    let pts = || {
        series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|p| !a.log_y || p.1 > 0.0)
    };
    let x = a.x_range.unwrap_or_else(|| range(pts().map(|p| p.0)));
    let y = a.y_range.unwrap_or_else(|| range(pts().map(|p| p.1)));
    let (mut s, f) = open(a, x, y);
    for (i, se) in series.iter().enumerate() {
        let c = COLOURS[i % COLOURS.len()];
        let path: Vec<String> = se
            .points
            .iter()
            .filter(|p| p.1.is_finite() && (!a.log_y || p.1 > 0.0))
            .map(|&(x, y)| format!("{:.1},{:.1}", f.px(x), f.py(y)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline fill="none" stroke="{c}" stroke-width="2" points="{}"/>"#,
            path.join(" ")
        );
        if path.len() <= 40 {
            for p in &path {
                let (px, py) = p.split_once(',').unwrap_or(("0", "0"));
                let _ = write!(s, r#"<circle cx="{px}" cy="{py}" r="2.5" fill="{c}"/>"#);
            }
        }
        if series.len() > 1 {
            let ly = MT + 14.0 + 14.0 * i as f64;
            let _ = write!(
                s,
                r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{c}" stroke-width="2"/><text x="{}" y="{}">{}</text>"#,
                W - MR - 130.0,
                W - MR - 112.0,
                W - MR - 108.0,
                ly + 4.0,
                escape(se.name)
            );
        }
    }
    for (x, label) in marks {
        mark(&mut s, f.px(*x), label, "#555");
    }
    s.push_str("</svg>");
    s
}

/// A histogram of `values` in `bins` equal bins over their range (or `[lo, hi]`), with
/// dashed vertical markers at `marks`.
pub fn histogram(a: &Axes<'_>, values: &[f64], bins: usize, marks: &[(f64, String)]) -> String {
    let (lo, hi) = widen(a.x_range.unwrap_or_else(|| range(values.iter().copied())));
    let bins = bins.max(1);
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    for &v in values.iter().filter(|v| v.is_finite() && **v >= lo && **v <= hi) {
        counts[(((v - lo) / width) as usize).min(bins - 1)] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let (mut s, f) = open(a, (lo, hi), (0.0, top));
    for (i, &c) in counts.iter().enumerate() {
        if c == 0 {
            continue;
        }
        let (x0, x1) = (f.px(lo + i as f64 * width), f.px(lo + (i + 1) as f64 * width));
        let y = f.py(c as f64);
        let _ = write!(
            s,
            r#"<rect x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}–{}: {c}</title></rect>"#,
            (x1 - x0 - 0.5).max(0.5),
            H - MB - y,
            COLOURS[0],
            num(lo + i as f64 * width),
            num(lo + (i + 1) as f64 * width)
        );
    }
    for (x, label) in marks {
        mark(&mut s, f.px(*x), label, COLOURS[1]);
    }
    s.push_str("</svg>");
    s
}

/// Horizontal bars, one per `(label, value)`, values ≥ 0, labelled with `value_label`.
pub fn bars(title: &str, value_label: &str, items: &[(String, f64)]) -> String {
    let row = 18.0;
    let left = 150.0;
    let height = MT + row * items.len() as f64 + 36.0;
    let top = items.iter().map(|i| i.1).fold(0.0f64, f64::max).max(f64::MIN_POSITIVE);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg viewBox="0 0 {W} {height}" width="{W}" height="{height}" role="img" aria-label="{}" font-family="sans-serif" font-size="11">"#,
        escape(title)
    );
    let _ = write!(
        s,
        r#"<text x="{left}" y="16" font-size="13" font-weight="bold">{}</text>"#,
        escape(title)
    );
    for (i, (label, v)) in items.iter().enumerate() {
        let y = MT + row * i as f64;
        let w = v / top * (W - left - 70.0);
        let short: String = label.chars().take(24).collect();
        let _ = write!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text><rect x="{left}" y="{:.1}" width="{w:.1}" height="{}" fill="{}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            left - 6.0,
            y + 12.0,
            escape(&short),
            y + 2.0,
            row - 4.0,
            COLOURS[0],
            left + w + 4.0,
            y + 12.0,
            num(*v)
        );
    }
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text></svg>"#,
        (left + W) / 2.0,
        height - 10.0,
        escape(value_label)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(0.0, 1.0), vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]);
        let t = ticks(3.0, 97.0);
        assert!(
            t.first().unwrap() >= &3.0 && t.last().unwrap() <= &97.0 && t.len() >= 4,
            "{t:?}"
        );
        assert_eq!(num(0.25), "0.25");
        assert_eq!(num(2.0e-5), "2.0e-5");
        assert_eq!(escape("<a&'\">"), "&lt;a&amp;&#39;&quot;&gt;");
    }

    #[test]
    fn charts_are_closed_svg_with_their_labels() {
        let a = Axes {
            title: "loss <per epoch>",
            x: "epoch",
            y: "loss (MSE)",
            log_y: true,
            x_range: None,
            y_range: None,
        };
        let s = lines(
            &a,
            &[Series {
                name: "train",
                points: vec![(1.0, 0.5), (2.0, 0.1), (3.0, 0.0)],
            }],
            &[],
        );
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        assert!(s.contains("loss &lt;per epoch&gt;") && s.contains("epoch") && s.contains("loss (MSE)"));
        // The zero is left out of a log scale: two points, two markers.
        assert_eq!(s.matches("<circle").count(), 2);
        let h = histogram(
            &Axes { log_y: false, ..a },
            &[1.0, 1.0, 2.0, 9.0],
            4,
            &[(5.0, "threshold".into())],
        );
        assert_eq!(h.matches("<rect x=").count(), 2 + 1, "two non-empty bins and the frame");
        assert!(h.contains("threshold"));
    }
}
