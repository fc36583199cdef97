//! Plots as self-contained SVG: overlaid histograms, ECDFs, selection-check curves and grouped
//! bars. Every piece of text is escaped here, so the output can be inlined into HTML as is.

use std::fmt::Write as _;

use crate::eval::metrics::SelectionBin;
use crate::stats::Bins;

const W: f64 = 560.0;
const H: f64 = 330.0;
const ML: f64 = 58.0;
const MR: f64 = 18.0;
const MT: f64 = 30.0;
const MB: f64 = 78.0;

/// Colour of the human reference in every plot.
pub(crate) const HUMAN_COLOR: &str = "#6b6b6b";
/// Colours of simulated runs, in order.
pub(crate) const PALETTE: [&str; 8] =
    ["#1f6fb4", "#d62728", "#2ca02c", "#9467bd", "#e07b00", "#8c564b", "#e377c2", "#17becf"];

/// The colour of the `i`-th run.
pub(crate) fn run_color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// One sample in a plot.
#[derive(Debug, Clone)]
pub struct Series<'a> {
    /// The legend's label.
    pub label: String,
    /// The CSS colour it is drawn in.
    pub color: &'static str,
    /// The sample.
    pub values: &'a [f64],
    /// Drawn as filled bars (the reference) rather than an outline.
    pub filled: bool,
}

/// Escapes text for SVG/HTML content and attribute values.
pub(crate) fn esc(s: &str) -> String {
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

/// Round tick positions covering `[lo, hi]` (about `target` of them).
fn ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    let start = (lo / step).ceil() * step;
    let mut out = Vec::new();
    let mut k = 0;
    loop {
        let t = start + k as f64 * step;
        if t > hi + step * 1e-9 || k > 50 {
            break;
        }
        out.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        k += 1;
    }
    out
}

fn tick_label(t: f64) -> String {
    let s = format!("{t:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// Plot frame: maps data coordinates to pixels and draws axes, title and legend.
struct Frame {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
    out: String,
    /// The picture's height: [`H`], or more when the legend needs more rows.
    height: f64,
}

impl Frame {
    fn new(title: &str, x: (f64, f64), y: (f64, f64), xlabel: &str, ylabel: &str) -> Frame {
        Frame::with_ticks(title, x, y, xlabel, ylabel, true)
    }

    /// `xticks: false` leaves the x-axis unlabelled (for categories drawn by the caller).
    fn with_ticks(
        title: &str,
        x: (f64, f64),
        y: (f64, f64),
        xlabel: &str,
        ylabel: &str,
        xticks: bool,
    ) -> Frame {
        let (x0, x1) = if x.1 > x.0 { x } else { (x.0 - 0.5, x.0 + 0.5) };
        let (y0, y1) = if y.1 > y.0 { y } else { (y.0, y.0 + 1.0) };
        let mut f = Frame { x0, x1, y0, y1, out: String::new(), height: H };
        let _ = write!(
            f.out,
            r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{t}" class="plot"><rect x="0" y="0" width="{W}" height="{H}" fill="#fff"/><text x="{cx}" y="18" text-anchor="middle" class="title">{t}</text>"##,
            t = esc(title),
            cx = W / 2.0
        );
        for t in if xticks { ticks(x0, x1, 6) } else { Vec::new() } {
            let px = f.px(t);
            let _ = write!(
                f.out,
                r##"<line x1="{px:.1}" y1="{yb}" x2="{px:.1}" y2="{yt}" stroke="#eee"/><line x1="{px:.1}" y1="{yb}" x2="{px:.1}" y2="{yb5}" stroke="#444"/><text x="{px:.1}" y="{yl}" text-anchor="middle" class="tick">{l}</text>"##,
                yb = H - MB,
                yt = MT,
                yb5 = H - MB + 5.0,
                yl = H - MB + 18.0,
                l = tick_label(t)
            );
        }
        for t in ticks(y0, y1, 5) {
            let py = f.py(t);
            let _ = write!(
                f.out,
                r##"<line x1="{ML}" y1="{py:.1}" x2="{xr}" y2="{py:.1}" stroke="#eee"/><line x1="{xl5}" y1="{py:.1}" x2="{ML}" y2="{py:.1}" stroke="#444"/><text x="{xt}" y="{pyt:.1}" text-anchor="end" class="tick">{l}</text>"##,
                xr = W - MR,
                xl5 = ML - 5.0,
                xt = ML - 8.0,
                pyt = py + 4.0,
                l = tick_label(t)
            );
        }
        let _ = write!(
            f.out,
            r##"<line x1="{ML}" y1="{yb}" x2="{xr}" y2="{yb}" stroke="#444"/><line x1="{ML}" y1="{yb}" x2="{ML}" y2="{MT}" stroke="#444"/><text x="{cx}" y="{yx}" text-anchor="middle" class="axis">{xl}</text><text transform="translate(14,{cy}) rotate(-90)" text-anchor="middle" class="axis">{yl}</text>"##,
            yb = H - MB,
            xr = W - MR,
            cx = ML + (W - ML - MR) / 2.0,
            yx = H - MB + 36.0,
            cy = MT + (H - MT - MB) / 2.0,
            xl = esc(xlabel),
            yl = esc(ylabel)
        );
        f
    }

    fn px(&self, x: f64) -> f64 {
        ML + (x - self.x0) / (self.x1 - self.x0) * (W - ML - MR)
    }

    fn py(&self, y: f64) -> f64 {
        H - MB - (y - self.y0) / (self.y1 - self.y0) * (H - MT - MB)
    }

    /// A legend row under the x-axis label; long legends wrap onto more rows, and the
    /// picture grows to hold them all, so every series is named.
    fn legend(&mut self, items: &[(String, &'static str, bool)]) {
        let (mut x, mut y) = (ML, H - MB + 56.0);
        for (label, color, filled) in items {
            let text: String = label.chars().take(40).collect();
            let width = 34.0 + 6.9 * text.chars().count() as f64;
            if x + width > W - MR && x > ML {
                x = ML;
                y += 16.0;
            }
            if *filled {
                let _ = write!(
                    self.out,
                    r#"<rect x="{x:.1}" y="{:.1}" width="14" height="10" fill="{color}" fill-opacity="0.45"/>"#,
                    y - 9.0
                );
            } else {
                let _ = write!(
                    self.out,
                    r#"<line x1="{x:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{color}" stroke-width="2.5"/>"#,
                    y - 4.0,
                    x + 14.0,
                    y - 4.0
                );
            }
            let _ = write!(
                self.out,
                r#"<text x="{:.1}" y="{y:.1}" class="legend">{}</text>"#,
                x + 19.0,
                esc(&text)
            );
            x += width;
            self.height = self.height.max(y + 10.0);
        }
    }

    fn finish(mut self) -> String {
        self.out.push_str("</svg>");
        if self.height > H {
            // The header was written at the default height: grow the canvas and its
            // background to the legend's last row.
            let h = self.height;
            let head = format!(r#"viewBox="0 0 {W} {H}" width="{W}" height="{H}""#);
            let grown = format!(r#"viewBox="0 0 {W} {h}" width="{W}" height="{h}""#);
            let background = format!(r#"<rect x="0" y="0" width="{W}" height="{H}""#);
            let grown_background = format!(r#"<rect x="0" y="0" width="{W}" height="{h}""#);
            self.out = self.out.replacen(&head, &grown, 1).replacen(&background, &grown_background, 1);
        }
        self.out
    }
}

fn proportions(values: &[f64], bins: &Bins) -> Option<Vec<f64>> {
    crate::stats::histogram(values, bins).ok()?.proportions()
}

/// Overlaid histograms (shares per bin) of several samples over the same bins.
pub fn histogram(title: &str, xlabel: &str, bins: &Bins, series: &[Series<'_>]) -> String {
    let props: Vec<Option<Vec<f64>>> = series.iter().map(|s| proportions(s.values, bins)).collect();
    let ymax = props.iter().flatten().flatten().copied().fold(0.0, f64::max);
    let ymax = if ymax > 0.0 { (ymax * 1.1).min(1.0) } else { 1.0 };
    let mut f = Frame::new(title, (bins.lo, bins.hi), (0.0, ymax), xlabel, "share of values");
    let edges = bins.edges();
    for (s, p) in series.iter().zip(&props).filter(|(s, _)| s.filled) {
        let Some(p) = p else { continue };
        for (i, share) in p.iter().enumerate() {
            let (xa, xb) = (f.px(edges[i]), f.px(edges[i + 1]));
            let (ya, yb) = (f.py(*share), f.py(0.0));
            let _ = write!(
                f.out,
                r#"<rect x="{xa:.1}" y="{ya:.1}" width="{:.1}" height="{:.1}" fill="{}" fill-opacity="0.45"/>"#,
                (xb - xa - 1.0).max(0.5),
                yb - ya,
                s.color
            );
        }
    }
    for (s, p) in series.iter().zip(&props).filter(|(s, _)| !s.filled) {
        let Some(p) = p else { continue };
        let mut d = format!("M{:.1},{:.1}", f.px(edges[0]), f.py(0.0));
        for (i, share) in p.iter().enumerate() {
            let _ = write!(
                d,
                " L{:.1},{:.1} L{:.1},{:.1}",
                f.px(edges[i]),
                f.py(*share),
                f.px(edges[i + 1]),
                f.py(*share)
            );
        }
        let _ = write!(d, " L{:.1},{:.1}", f.px(edges[edges.len() - 1]), f.py(0.0));
        let _ = write!(
            f.out,
            r#"<path d="{d}" fill="{c}" fill-opacity="0.12" stroke="{c}" stroke-width="2"/>"#,
            c = s.color
        );
    }
    let legend: Vec<(String, &'static str, bool)> =
        series.iter().map(|s| (format!("{} (n={})", s.label, s.values.len()), s.color, s.filled)).collect();
    f.legend(&legend);
    f.finish()
}

/// Empirical CDFs of several samples.
pub(crate) fn ecdf(title: &str, xlabel: &str, range: (f64, f64), series: &[Series<'_>]) -> String {
    let lo = series.iter().flat_map(|s| s.values.iter().copied()).fold(range.0, f64::min);
    let hi = series.iter().flat_map(|s| s.values.iter().copied()).fold(range.1, f64::max);
    let mut f = Frame::new(title, (lo, hi), (0.0, 1.0), xlabel, "share of values ≤ x");
    for s in series {
        let mut v: Vec<f64> = s.values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            continue;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len() as f64;
        let mut d = format!("M{:.1},{:.1}", f.px(f.x0), f.py(0.0));
        let mut i = 0;
        let mut y = 0.0;
        while i < v.len() {
            let x = v[i];
            while i < v.len() && v[i] == x {
                i += 1;
            }
            let _ = write!(d, " L{:.1},{:.1}", f.px(x), f.py(y));
            y = i as f64 / n;
            let _ = write!(d, " L{:.1},{:.1}", f.px(x), f.py(y));
        }
        let _ = write!(d, " L{:.1},{:.1}", f.px(f.x1), f.py(1.0));
        let (width, dash) = if s.filled { (3.5, "") } else { (2.0, "") };
        let _ = write!(
            f.out,
            r#"<path d="{d}" fill="none" stroke="{}" stroke-width="{width}" stroke-opacity="{}"{dash}/>"#,
            s.color,
            if s.filled { 0.6 } else { 1.0 }
        );
    }
    let legend: Vec<(String, &'static str, bool)> =
        series.iter().map(|s| (format!("{} (n={})", s.label, s.values.len()), s.color, false)).collect();
    f.legend(&legend);
    f.finish()
}

/// Selection-check curves: per bin, the mean choice probability the rule gives the
/// candidates against the share of them chosen; a sampler that follows its rule stays near
/// the diagonal.
pub fn selection_check(title: &str, series: &[(String, &'static str, &[SelectionBin])]) -> String {
    let mut f =
        Frame::new(title, (0.0, 1.0), (0.0, 1.0), "expected under the rule (bin mean)", "share chosen");
    let _ = write!(
        f.out,
        r##"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#999" stroke-dasharray="5 4"/>"##,
        f.px(0.0),
        f.py(0.0),
        f.px(1.0),
        f.py(1.0)
    );
    for (_, color, bins) in series {
        let max_n = bins.iter().map(|b| b.n).max().unwrap_or(0).max(1) as f64;
        let pts: Vec<(f64, f64, usize)> =
            bins.iter().filter_map(|b| Some((b.mean_expected?, b.chosen_frequency?, b.n))).collect();
        if pts.len() > 1 {
            let d: Vec<String> =
                pts.iter().map(|(x, y, _)| format!("{:.1},{:.1}", f.px(*x), f.py(*y))).collect();
            let _ = write!(
                f.out,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="1.5"/>"#,
                d.join(" ")
            );
        }
        for (x, y, n) in pts {
            let r = 2.5 + 6.0 * (n as f64 / max_n).sqrt();
            let _ = write!(
                f.out,
                r#"<circle cx="{:.1}" cy="{:.1}" r="{r:.1}" fill="{color}" fill-opacity="0.55" stroke="{color}"><title>expected {x:.3}, chosen {y:.3}, n={n}</title></circle>"#,
                f.px(x),
                f.py(y)
            );
        }
    }
    let mut legend: Vec<(String, &'static str, bool)> =
        series.iter().map(|(l, c, _)| (l.clone(), *c, false)).collect();
    legend.push(("chosen as the rule implies".into(), "#999999", false));
    f.legend(&legend);
    f.finish()
}

/// Grouped bars: one group per category, one bar per series (shares).
pub fn bars(title: &str, categories: &[String], series: &[(String, &'static str, Vec<f64>)]) -> String {
    let ymax = series.iter().flat_map(|s| s.2.iter().copied()).fold(0.0, f64::max);
    let ymax = if ymax > 0.0 { (ymax * 1.1).min(1.0) } else { 1.0 };
    let k = categories.len().max(1) as f64;
    // x in category units: category i spans [i, i + 1).
    let mut f = Frame::with_ticks(title, (0.0, k), (0.0, ymax), "", "share", false);
    let groups = series.len().max(1) as f64;
    for (i, c) in categories.iter().enumerate() {
        let cx = f.px(i as f64 + 0.5);
        let name: String = c.chars().take(18).collect();
        let _ = write!(
            f.out,
            r#"<text x="{cx:.1}" y="{:.1}" text-anchor="middle" class="tick">{}</text>"#,
            H - MB + 18.0,
            esc(&name)
        );
        for (j, (_, color, shares)) in series.iter().enumerate() {
            let share = shares.get(i).copied().unwrap_or(0.0);
            let x0 = f.px(i as f64 + 0.1 + 0.8 * j as f64 / groups);
            let x1 = f.px(i as f64 + 0.1 + 0.8 * (j + 1) as f64 / groups);
            let (ya, yb) = (f.py(share), f.py(0.0));
            let _ = write!(
                f.out,
                r#"<rect x="{x0:.1}" y="{ya:.1}" width="{:.1}" height="{:.1}" fill="{color}" fill-opacity="0.75"/>"#,
                (x1 - x0 - 1.0).max(0.5),
                yb - ya
            );
        }
    }
    let legend: Vec<(String, &'static str, bool)> =
        series.iter().map(|(l, c, _)| (l.clone(), *c, true)).collect();
    f.legend(&legend);
    f.finish()
}

/// One point of [`intervals`]: an estimate, its interval if any, and its colour.
pub(crate) type IntervalPoint = (f64, Option<(f64, f64)>, &'static str);

/// Estimates with intervals, one point per item along x (e.g. every trial of a tune), in
/// the colour of its group; items without an estimate are skipped.
pub fn intervals(
    title: &str,
    ylabel: &str,
    items: &[IntervalPoint],
    legend: &[(String, &'static str)],
) -> String {
    let ys = items.iter().flat_map(|(v, ci, _)| [Some(*v), ci.map(|c| c.0), ci.map(|c| c.1)]).flatten();
    let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| (a.min(y), b.max(y)));
    let (lo, hi) = if lo.is_finite() && hi > lo { (lo.min(0.0), hi * 1.05) } else { (0.0, 1.0) };
    let k = items.len().max(1) as f64;
    let mut f = Frame::with_ticks(title, (0.0, k), (lo, hi), "candidate (in trial order)", ylabel, false);
    for (i, (v, ci, color)) in items.iter().enumerate() {
        let x = f.px(i as f64 + 0.5);
        if let Some((a, b)) = ci {
            let _ = write!(
                f.out,
                r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{color}" stroke-width="1.5"/>"#,
                f.py(*a),
                f.py(*b)
            );
        }
        let _ = write!(f.out, r#"<circle cx="{x:.1}" cy="{:.1}" r="3.5" fill="{color}"/>"#, f.py(*v));
    }
    let legend: Vec<(String, &'static str, bool)> =
        legend.iter().map(|(l, c)| (l.clone(), *c, true)).collect();
    f.legend(&legend);
    f.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        assert_eq!(ticks(0.0, 2.0, 6), vec![0.0, 0.5, 1.0, 1.5, 2.0]);
        assert_eq!(ticks(0.0, 1.0, 5), vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]);
        assert_eq!(ticks(1.0, 1.0, 5), vec![1.0]);
        assert_eq!(tick_label(0.6000000000000001), "0.6");
    }

    #[test]
    fn text_is_escaped_everywhere() {
        assert_eq!(esc(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
        let values = [0.0, 1.0];
        let s = [Series { label: "<script>".into(), color: PALETTE[0], values: &values, filled: false }];
        let svg = histogram("<t>", "<x>", &Bins { lo: 0.0, hi: 1.0, n: 2 }, &s);
        assert!(!svg.contains("<script>") && !svg.contains("<t>") && !svg.contains("<x>"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }

    #[test]
    fn every_series_is_named_in_a_legend_that_fits_the_picture() {
        let values = [0.0, 0.5, 1.0];
        let labels: Vec<String> = (0..5)
            .map(|i| format!("{i:03}-vs-standard-kauto-uniform-arm-{i}"))
            .chain(["human".into()])
            .collect();
        let series: Vec<Series<'_>> = labels
            .iter()
            .enumerate()
            .map(|(i, l)| Series { label: l.clone(), color: run_color(i), values: &values, filled: i == 5 })
            .collect();
        for svg in [
            histogram("t", "x", &Bins { lo: 0.0, hi: 1.0, n: 4 }, &series),
            ecdf("t", "x", (0.0, 1.0), &series),
        ] {
            for l in &labels {
                assert!(svg.contains(&esc(&l.chars().take(40).collect::<String>())), "{l} missing");
            }
            let height: f64 =
                svg.split("height=\"").nth(1).unwrap().split('"').next().unwrap().parse().unwrap();
            assert!(height > H, "six long labels need more rows than the default height holds");
            let last_y = svg
                .split(r#"class="legend">"#)
                .filter_map(|part| part.rsplit(" y=\"").next())
                .filter_map(|t| t.split('"').next()?.parse::<f64>().ok())
                .fold(0.0, f64::max);
            assert!(last_y > 0.0 && last_y <= height, "{last_y} beyond {height}");
        }
    }
}
