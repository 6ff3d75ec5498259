//! The small trend chart for a repeated lab: an inline SVG drawn on the server (no
//! JavaScript, no inline style — presentation attributes only, which the pages' CSP
//! allows), with the reference range as a band, one dot per result and its value, and a
//! text alternative for screen readers. It escapes every piece of text it writes and draws
//! only the points it is given.

use super::fhir_text::number;

const WIDTH: f64 = 360.0;
const HEIGHT: f64 = 170.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 22.0;
const BOTTOM: f64 = 34.0;

/// One result on the chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Short date label under the dot ("Mar 2025").
    pub label: String,
    /// The full date, for the text alternative.
    pub date: String,
    pub value: f64,
}

/// The chart as an SVG element, or `None` with fewer than two points (nothing to trend).
/// `range` is the reference range (low, high), either end optional.
pub fn svg(id: &str, name: &str, unit: &str, points: &[Point], range: (Option<f64>, Option<f64>)) -> Option<String> {
    if points.len() < 2 || points.iter().any(|p| !p.value.is_finite()) {
        return None;
    }
    let (low, high) = range;
    let mut min = points.iter().map(|p| p.value).fold(f64::INFINITY, f64::min);
    let mut max = points.iter().map(|p| p.value).fold(f64::NEG_INFINITY, f64::max);
    for bound in [low, high].into_iter().flatten().filter(|b| b.is_finite()) {
        min = min.min(bound);
        max = max.max(bound);
    }
    let pad = if max > min { (max - min) * 0.12 } else { max.abs().max(1.0) * 0.1 };
    let (min, max) = (min - pad, max + pad);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |i: usize| LEFT + plot_w * (i as f64) / ((points.len() - 1) as f64);
    let y = |v: f64| TOP + plot_h * (max - v) / (max - min);

    let title_id = format!("{}-title", escape(id));
    let description = points
        .iter()
        .map(|p| {
            crate::i18n::tr(
                "chart-point",
                &[("value", number(p.value).into()), ("unit", unit.into()), ("date", p.date.clone().into())],
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let mut s = format!(
        r#"<svg class="trend" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" aria-labelledby="{title_id}" xmlns="http://www.w3.org/2000/svg"><title id="{title_id}">{}</title>"#,
        escape(&crate::i18n::tr("chart-title", &[("name", name.into()), ("points", description.into())]))
    );
    // The reference range as a band (open ends run to the edge of the plot).
    if low.is_some() || high.is_some() {
        let top = high.map_or(TOP, |h| y(h).clamp(TOP, TOP + plot_h));
        let bottom = low.map_or(TOP + plot_h, |l| y(l).clamp(TOP, TOP + plot_h));
        s.push_str(&format!(
            r##"<rect x="{LEFT}" y="{:.1}" width="{plot_w}" height="{:.1}" fill="#e3f1e6"/>"##,
            top,
            (bottom - top).max(0.0)
        ));
    }
    // Axes and the scale's ends.
    s.push_str(&format!(
        r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{0}" stroke="#56636f"/><line x1="{LEFT}" y1="{0}" x2="{1}" y2="{0}" stroke="#56636f"/>"##,
        TOP + plot_h,
        WIDTH - RIGHT
    ));
    for v in [max - pad, min + pad] {
        s.push_str(&format!(
            r##"<text x="{}" y="{:.1}" font-size="11" text-anchor="end" fill="#1b2a38">{}</text>"##,
            LEFT - 6.0,
            y(v) + 4.0,
            escape(&number(round(v)))
        ));
    }
    let line: Vec<String> = points.iter().enumerate().map(|(i, p)| format!("{:.1},{:.1}", x(i), y(p.value))).collect();
    s.push_str(&format!(r##"<polyline points="{}" fill="none" stroke="#0b5cad" stroke-width="2"/>"##, line.join(" ")));
    for (i, p) in points.iter().enumerate() {
        let out_of_range = low.is_some_and(|l| p.value < l) || high.is_some_and(|h| p.value > h);
        let fill = if out_of_range { "#a4161a" } else { "#0b5cad" };
        let anchor = if i == 0 {
            "start"
        } else if i == points.len() - 1 {
            "end"
        } else {
            "middle"
        };
        s.push_str(&format!(
            r##"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{fill}"/><text x="{:.1}" y="{:.1}" font-size="12" text-anchor="{anchor}" fill="#1b2a38">{}</text><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="{anchor}" fill="#56636f">{}</text>"##,
            x(i),
            y(p.value),
            x(i),
            y(p.value) - 8.0,
            escape(&number(p.value)),
            x(i),
            HEIGHT - 10.0,
            escape(&p.label)
        ));
    }
    s.push_str("</svg>");
    Some(s)
}

/// Rounds a scale label to 3 significant figures.
fn round(v: f64) -> f64 {
    if v == 0.0 {
        return 0.0;
    }
    let magnitude = 10f64.powi(2 - v.abs().log10().floor() as i32);
    (v * magnitude).round() / magnitude
}

/// Escapes text for SVG/HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
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
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points(values: &[f64]) -> Vec<Point> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Point { label: format!("M{i}"), date: format!("day {i}"), value: *v })
            .collect()
    }

    fn coords(svg: &str, attr: &str) -> Vec<f64> {
        svg.match_indices(&format!(" {attr}=\""))
            .map(|(i, m)| {
                let rest = &svg[i + m.len()..];
                rest[..rest.find('"').unwrap()].parse().unwrap()
            })
            .collect()
    }

    #[test]
    fn one_value_is_not_a_trend() {
        assert_eq!(svg("t", "TSH", "mIU/L", &points(&[2.4]), (None, None)), None);
        assert_eq!(svg("t", "TSH", "mIU/L", &[], (None, None)), None);
    }

    #[test]
    fn dots_run_left_to_right_and_higher_values_sit_higher() {
        let s = svg("a1c", "HbA1c", "%", &points(&[8.1, 7.6, 7.2]), (None, Some(5.6))).unwrap();
        let cx = coords(&s, "cx");
        let cy = coords(&s, "cy");
        assert_eq!(cx.len(), 3);
        assert!(cx.windows(2).all(|w| w[0] < w[1]), "{cx:?}");
        assert!(cy.windows(2).all(|w| w[0] < w[1]), "falling values go down the chart: {cy:?}");
        assert!(cx.iter().all(|x| (0.0..=WIDTH).contains(x)) && cy.iter().all(|y| (0.0..=HEIGHT).contains(y)));
        // All three are above the range's top: drawn as out of range, and the band is drawn.
        assert_eq!(s.matches("fill=\"#a4161a\"").count(), 3);
        assert!(s.contains("<rect") && s.contains("8.1") && s.contains("7.2"));
        assert!(s.contains("8.1 % on day 0, 7.6 % on day 1, 7.2 % on day 2"), "a text alternative: {s}");
        assert!(!s.contains("style"), "no inline style (CSP)");
    }

    #[test]
    fn text_is_escaped() {
        let p = vec![
            Point { label: "<b>".into(), date: "d".into(), value: 1.0 },
            Point { label: "x".into(), date: "d".into(), value: 1.0 },
        ];
        let s = svg("x\"y", "<script>alert(1)</script>", "&", &p, (Some(0.5), None)).unwrap();
        assert!(!s.contains("<script>") && !s.contains("<b>") && !s.contains("x\"y"), "{s}");
        assert!(s.contains("&lt;script&gt;") && s.contains("&amp;"));
    }
}
