//! Figures: each [`Figure`] becomes one SVG (drawn with plotters) and one CSV of the data it
//! shows, plus the caption sentences only the renderer knows (p, n, omitted points).
//!
//! Shared here: the page geometry, the Okabe–Ito palette, text styles, dashed lines, a legend
//! that flows above the plots, and the label lanes that keep mark labels from overlapping.

mod curves;
mod heatmap;
mod lines;
mod nulls;
mod qq;
mod rates;
mod spec;

pub(crate) use spec::dimensions as spec_dimensions;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::cite::{Citations, ResolvedMark, Span};
use crate::error::{Error, Result};
use crate::model::{Figure, FigureKind, Mark, Report};

/// Width of every figure in pixels: the width of the report's text column.
pub(crate) const WIDTH: u32 = 720;
/// Font stack of figure text (DejaVu and Liberation ship with Debian's browsers).
const FONT: &str = "DejaVu Sans, Liberation Sans, Helvetica, Arial, sans-serif";
/// Approximate advance of one character as a fraction of the font size, for layout.
const CHAR_WIDTH: f64 = 0.64;

/// Okabe & Ito (2008), "Color Universal Design": distinguishable under the common colour
/// vision deficiencies. Yellow is left out: it is unreadable on white.
pub(crate) const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),   // blue
    RGBColor(213, 94, 0),    // vermillion
    RGBColor(0, 158, 115),   // bluish green
    RGBColor(204, 121, 167), // reddish purple
    RGBColor(230, 159, 0),   // orange
    RGBColor(86, 180, 233),  // sky blue
    RGBColor(0, 0, 0),       // black
];
/// Colour of published figures' marks (Okabe–Ito vermillion).
pub(crate) const PUBLISHED: RGBColor = RGBColor(213, 94, 0);
/// Colour of computed marks (the tested value).
pub(crate) const COMPUTED: RGBColor = RGBColor(0, 0, 0);
/// Body text.
pub(crate) const INK: RGBColor = RGBColor(34, 34, 34);
/// Secondary text.
pub(crate) const MUTED: RGBColor = RGBColor(96, 96, 96);
/// Grid lines.
pub(crate) const GRID: RGBColor = RGBColor(228, 228, 228);

/// Colour of the i-th series.
pub(crate) fn series_color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// A text style of `px` pixels as rendered (plotters' SVG backend divides sizes by 1.24).
pub(crate) fn text(px: f64) -> TextStyle<'static> {
    (FONT, px * 1.24).into_font().color(&INK)
}

/// Bold text of `px` pixels.
pub(crate) fn bold(px: f64) -> TextStyle<'static> {
    (FONT, px * 1.24, FontStyle::Bold).into_font().color(&INK)
}

/// Italic text of `px` pixels in a given colour.
pub(crate) fn italic(px: f64, color: RGBColor) -> TextStyle<'static> {
    (FONT, px * 1.24, FontStyle::Italic)
        .into_font()
        .color(&color)
}

/// Like [`text`] in a given colour.
pub(crate) fn text_color(px: f64, color: RGBColor) -> TextStyle<'static> {
    (FONT, px * 1.24).into_font().color(&color)
}

/// Estimated width in pixels of `s` at `px` pixels.
pub(crate) fn text_width(s: &str, px: f64) -> i32 {
    (s.chars().count() as f64 * px * CHAR_WIDTH).ceil() as i32
}

/// Shorten `s` to at most `max` characters, marking the cut with an ellipsis.
pub(crate) fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Characters of a 16 px bold title line that fit the figure's width (about 9.5 px each).
const TITLE_CHARS: usize = 70;

/// A figure title in at most two lines of [`TITLE_CHARS`], broken at a space (long model
/// names stay whole), the second shortened with an ellipsis if it is still too long.
fn title_lines(title: &str) -> Vec<String> {
    if title.chars().count() <= TITLE_CHARS {
        return vec![title.to_owned()];
    }
    let cut = title
        .char_indices()
        .take_while(|(i, _)| title[..*i].chars().count() <= TITLE_CHARS)
        .filter(|(_, c)| *c == ' ')
        .map(|(i, _)| i)
        .last();
    match cut {
        Some(i) => vec![
            title[..i].to_owned(),
            shorten(title[i + 1..].trim(), TITLE_CHARS),
        ],
        None => vec![shorten(title, TITLE_CHARS)],
    }
}

/// What a figure module returns.
pub(crate) struct Drawn {
    /// The SVG document.
    pub svg: String,
    /// The figure's data as CSV.
    pub csv: Vec<u8>,
    /// Caption sentences the renderer adds after the caller's caption.
    pub caption: Vec<Span>,
}

/// A rendered figure.
pub(crate) struct RenderedFigure {
    /// File-name stem.
    pub name: String,
    /// Title.
    pub title: String,
    /// Full caption: the caller's text, then the renderer's.
    pub caption: Vec<Span>,
    /// SVG document.
    pub svg: String,
    /// Data CSV.
    pub csv: Vec<u8>,
}

/// Shared state of one figure's rendering.
pub(crate) struct Ctx<'a> {
    /// The report.
    pub report: &'a Report,
    /// Its citations.
    pub cites: &'a Citations,
    /// The figure.
    pub figure: &'a Figure,
}

impl Ctx<'_> {
    /// Map a plotting error to this crate's error, naming the figure.
    pub(crate) fn plot_err<E: std::fmt::Display>(&self, e: E) -> Error {
        Error::Plot {
            figure: self.figure.name.clone(),
            message: e.to_string(),
        }
    }

    /// Map a CSV error, naming the figure's CSV file.
    pub(crate) fn csv_err(&self, e: csv::Error) -> Error {
        Error::Csv {
            file: format!("figures/{}.csv", self.figure.name),
            source: e,
        }
    }

    /// Resolve marks (validated already, so none is dropped in practice).
    pub(crate) fn marks(&self, marks: &[Mark]) -> Vec<ResolvedMark> {
        marks
            .iter()
            .filter_map(|m| ResolvedMark::new(self.report, self.cites, m))
            .collect()
    }

    /// Finish a CSV writer into bytes.
    pub(crate) fn csv_bytes(&self, w: crate::csv_out::CsvOut) -> Result<Vec<u8>> {
        w.into_inner().map_err(|e| self.csv_err(e))
    }

    /// Draw the figure title at the top left; returns the y below it.
    pub(crate) fn draw_title(&self, root: &DrawingArea<SVGBackend, Shift>) -> Result<i32> {
        let style = bold(16.0).pos(Pos::new(HPos::Left, VPos::Top));
        let lines = title_lines(&self.figure.title);
        for (i, line) in lines.iter().enumerate() {
            root.draw_text(line, &style, (10, 8 + 20 * i as i32))
                .map_err(|e| self.plot_err(e))?;
        }
        Ok(self.title_bottom())
    }

    /// The y below the title (one or two lines): where the legend starts.
    pub(crate) fn title_bottom(&self) -> i32 {
        14 + 20 * title_lines(&self.figure.title).len() as i32
    }
}

/// Render every figure of a validated report.
pub(crate) fn render(report: &Report, cites: &Citations) -> Result<Vec<RenderedFigure>> {
    report
        .figures
        .iter()
        .map(|figure| {
            let ctx = Ctx {
                report,
                cites,
                figure,
            };
            let drawn = match &figure.kind {
                FigureKind::FingerprintCurves(f) => curves::draw(&ctx, f)?,
                FigureKind::NullDistributions(f) => nulls::draw(&ctx, f)?,
                FigureKind::Heatmap(f) => heatmap::draw(&ctx, f)?,
                FigureKind::Roc(f) => rates::draw_roc(&ctx, f)?,
                FigureKind::FprThreshold(f) => rates::draw_fpr(&ctx, f)?,
                FigureKind::PValueQq(f) => qq::draw(&ctx, f)?,
                FigureKind::SpecificationCurve(f) => spec::draw(&ctx, f)?,
                FigureKind::Lines(f) => lines::draw(&ctx, f)?,
            };
            let mut caption = Vec::new();
            if !figure.caption.trim().is_empty() {
                caption.push(Span::Text(format!("{} ", figure.caption.trim())));
            }
            caption.extend(drawn.caption);
            Ok(RenderedFigure {
                name: figure.name.clone(),
                title: figure.title.clone(),
                caption,
                svg: svg_dashes(drawn.svg),
                csv: drawn.csv,
            })
        })
        .collect()
}

/// Style of a line segment.
#[derive(Clone, Copy)]
pub(crate) struct Stroke {
    /// Colour.
    pub color: RGBColor,
    /// Width in pixels.
    pub width: u32,
    /// Dash and gap lengths in pixels; solid when `None`.
    pub dash: Option<(i32, i32)>,
}

impl Stroke {
    /// A solid stroke.
    pub(crate) fn solid(color: RGBColor, width: u32) -> Self {
        Self {
            color,
            width,
            dash: None,
        }
    }

    /// A dashed stroke.
    pub(crate) fn dashed(color: RGBColor, width: u32) -> Self {
        Self {
            color,
            width,
            dash: Some(DASH),
        }
    }

    /// The stroke of a mark: dashed vermillion for published figures, solid black otherwise.
    pub(crate) fn for_mark(m: &ResolvedMark) -> Self {
        if m.cite.is_some() {
            Self::dashed(PUBLISHED, 2)
        } else {
            Self::solid(COMPUTED, 2)
        }
    }
}

/// Draw a polyline in pixel coordinates of `area`, dashed if the stroke says so.
pub(crate) fn polyline<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    points: &[(i32, i32)],
    stroke: Stroke,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let style = ShapeStyle::from(&stroke.color).stroke_width(stroke.width);
    let Some((dash, gap)) = stroke.dash else {
        return area.draw(&PathElement::new(points.to_vec(), style));
    };
    // One path, marked by an opacity no other element uses; [`svg_dashes`] turns the mark into
    // `stroke-dasharray` (one element instead of a segment per dash).
    debug_assert_eq!((dash, gap), DASH);
    let marked = ShapeStyle {
        color: stroke.color.mix(DASH_MARK_OPACITY),
        filled: false,
        stroke_width: stroke.width,
    };
    area.draw(&PathElement::new(points.to_vec(), marked))
}

/// Dash and gap of every dashed line, in pixels.
pub(crate) const DASH: (i32, i32) = (7, 4);

/// The opacity that marks a dashed path in the SVG backend's output (1 − 2⁻¹⁰, printed
/// exactly; nothing else is drawn at it).
const DASH_MARK_OPACITY: f64 = 0.9990234375;

/// Replace the dash mark of [`polyline`] by an opaque `stroke-dasharray`.
pub(crate) fn svg_dashes(svg: String) -> String {
    let mark = format!("opacity=\"{DASH_MARK_OPACITY}\"");
    if !svg.contains(&mark) {
        return svg;
    }
    svg.replace(
        &mark,
        &format!("opacity=\"1\" stroke-dasharray=\"{} {}\"", DASH.0, DASH.1),
    )
}

/// One legend entry.
pub(crate) struct LegendEntry {
    /// Text.
    pub label: String,
    /// Swatch.
    pub swatch: Swatch,
}

/// What a legend entry shows before its text.
pub(crate) enum Swatch {
    /// A line sample, optionally with a marker dot.
    Line(Stroke, bool),
    /// A filled box.
    Box(RGBColor),
    /// A filled circle.
    Dot(RGBColor),
    /// An outlined square.
    Outline(RGBColor),
}

const LEGEND_PX: f64 = 12.0;
const LEGEND_ROW: i32 = 20;

/// Height the legend will take when flowed into `width` pixels.
pub(crate) fn legend_height(entries: &[LegendEntry], width: i32) -> i32 {
    legend_layout(entries, width)
        .last()
        .map_or(0, |&(_, y)| y + LEGEND_ROW)
}

fn legend_layout(entries: &[LegendEntry], width: i32) -> Vec<(i32, i32)> {
    let (mut x, mut y) = (0, 0);
    entries
        .iter()
        .map(|e| {
            let w = 30 + text_width(&e.label, LEGEND_PX) + 18;
            if x > 0 && x + w > width {
                x = 0;
                y += LEGEND_ROW;
            }
            let at = (x, y);
            x += w;
            at
        })
        .collect()
}

/// Draw a legend flowing from `(x0, y0)` within `width` pixels; returns the y below it.
pub(crate) fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
    (x0, y0): (i32, i32),
    width: i32,
) -> std::result::Result<i32, DrawingAreaErrorKind<DB::ErrorType>> {
    let layout = legend_layout(entries, width);
    let style = text(LEGEND_PX).pos(Pos::new(HPos::Left, VPos::Center));
    for (e, &(x, y)) in entries.iter().zip(&layout) {
        let (x, cy) = (x0 + x, y0 + y + LEGEND_ROW / 2);
        match e.swatch {
            Swatch::Line(stroke, marker) => {
                polyline(area, &[(x, cy), (x + 24, cy)], stroke)?;
                if marker {
                    area.draw(&Circle::new((x + 12, cy), 3, stroke.color.filled()))?;
                }
            }
            Swatch::Box(c) => {
                area.draw(&Rectangle::new(
                    [(x + 4, cy - 6), (x + 20, cy + 6)],
                    c.filled(),
                ))?;
            }
            Swatch::Dot(c) => area.draw(&Circle::new((x + 12, cy), 4, c.filled()))?,
            Swatch::Outline(c) => area.draw(&Rectangle::new(
                [(x + 5, cy - 7), (x + 19, cy + 7)],
                ShapeStyle::from(&c).stroke_width(2),
            ))?,
        }
        area.draw_text(&e.label, &style, (x + 30, cy))?;
    }
    Ok(y0 + legend_height(entries, width))
}

/// A label to place above a plot at a pixel x.
pub(crate) struct LaneLabel {
    /// Pixel x of the marked value.
    pub x: i32,
    /// Text.
    pub text: String,
    /// Text colour.
    pub color: RGBColor,
    /// Stroke of the leader line.
    pub stroke: Stroke,
}

/// Pixel height of one label lane.
pub(crate) const LANE_HEIGHT: i32 = 16;
const LANE_PX: f64 = 11.5;

/// Place labels in up to `lanes` rows above `plot_top` so that they do not overlap, each
/// joined to its x by a leader line; labels stay within `[left, right]`.
pub(crate) fn draw_lane_labels<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    labels: &[LaneLabel],
    plot_top: i32,
    (left, right): (i32, i32),
    lanes: usize,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let lanes = lanes.max(1);
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by_key(|&i| (labels[i].x, i));
    let mut lane_end = vec![i32::MIN; lanes];
    for i in order {
        let l = &labels[i];
        let w = text_width(&l.text, LANE_PX);
        // Left-align on the line when it fits, else right-align on it.
        let left_aligned = l.x + w <= right;
        let (start, anchor) = if left_aligned {
            (l.x - 3, HPos::Left)
        } else {
            (l.x - w + 3, HPos::Right)
        };
        let start = start.max(left);
        let lane = (0..lanes)
            .find(|&k| lane_end[k] + 8 <= start)
            .unwrap_or(lanes - 1);
        lane_end[lane] = start + w;
        let y = plot_top - 4 - LANE_HEIGHT * lane as i32;
        polyline(
            area,
            &[(l.x, plot_top), (l.x, y - LANE_HEIGHT + 4)],
            l.stroke,
        )?;
        let tx = if left_aligned { l.x + 4 } else { l.x - 4 };
        let style = text_color(LANE_PX, l.color).pos(Pos::new(anchor, VPos::Bottom));
        area.draw_text(&l.text, &style, (tx, y - 2))?;
    }
    Ok(())
}

/// `(min, max)` of finite values, padded by `pad` of the span (or ±0.5 for a single value).
/// The outline of a shaded interval through `(x, lo, hi)` points: along the lower bounds, then
/// back along the upper ones.
pub(crate) fn band_polygon(band: &[(f64, f64, f64)]) -> Vec<(f64, f64)> {
    band.iter()
        .map(|&(x, lo, _)| (x, lo))
        .chain(band.iter().rev().map(|&(x, _, hi)| (x, hi)))
        .collect()
}

/// The caption sentence listing a figure's marks (`"{lead}: label value, …."`), empty when it
/// has none.
pub(crate) fn marks_caption(lead: &str, marks: &[ResolvedMark]) -> Vec<Span> {
    let mut caption = Vec::new();
    if marks.is_empty() {
        return caption;
    }
    caption.push(Span::Text(format!("{lead}: ")));
    for (i, m) in marks.iter().enumerate() {
        if i > 0 {
            caption.push(Span::Text(", ".into()));
        }
        caption.push(Span::Text(format!("{} ", m.label)));
        caption.push(m.span());
    }
    caption.push(Span::Text(".".into()));
    caption
}

/// The `kind` column of a mark's row in a figure CSV.
pub(crate) fn mark_csv_kind(m: &ResolvedMark) -> &'static str {
    if m.cite.is_some() {
        "published_mark"
    } else {
        "computed_mark"
    }
}

pub(crate) fn padded_range(values: impl Iterator<Item = f64>, pad: f64) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return None;
    }
    let span = hi - lo;
    if span <= f64::EPSILON * lo.abs().max(1.0) {
        return Some((lo - 0.5, hi + 0.5));
    }
    Some((lo - pad * span, hi + pad * span))
}

/// Finish an SVG: plotters writes integer pixel coordinates; this only normalises the trailing
/// newline so files end the same way everywhere.
pub(crate) fn finish_svg(mut svg: String) -> String {
    while svg.ends_with('\n') {
        svg.pop();
    }
    svg.push('\n');
    svg
}

#[cfg(test)]
mod dash_tests {
    use super::*;

    #[test]
    fn long_titles_break_at_a_space() {
        let t = "Per-layer attention std: qwen2.5-coder-1.5b-instruct vs smollm2-135m-instruct";
        let lines = title_lines(t);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines.iter().all(|l| l.chars().count() <= TITLE_CHARS));
        assert_eq!(lines.join(" "), t);
        assert_eq!(title_lines("short"), vec!["short".to_string()]);
    }

    #[test]
    fn a_dashed_line_is_one_element_with_a_dasharray() {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (100, 100)).into_drawing_area();
            let pts: Vec<(i32, i32)> = (0..50).map(|i| (i * 2, (i * 3) % 100)).collect();
            polyline(&root, &pts, Stroke::dashed(PUBLISHED, 2)).unwrap();
            polyline(&root, &pts, Stroke::solid(COMPUTED, 1)).unwrap();
            root.present().unwrap();
        }
        let svg = svg_dashes(svg);
        assert_eq!(svg.matches("<polyline").count(), 2, "{svg}");
        assert_eq!(svg.matches("stroke-dasharray=\"7 4\"").count(), 1, "{svg}");
        assert!(!svg.contains("0.9990234375"), "{svg}");
    }
}
