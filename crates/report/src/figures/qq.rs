//! QQ plot of p-values computed where the null holds: sorted p against uniform quantiles, on a
//! linear scale (the bulk) and on −log10 (the small-p tail, where a miscalibrated null shows).

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::*;
use crate::cite::Span;
use crate::fmt;
use crate::model::QqFigure;

/// At most this many points per series are drawn (evenly spaced ranks, ends kept); the CSV
/// keeps them all.
const MAX_DRAWN: usize = 2000;
/// Series of at most this many p-values are drawn as dots; longer ones as a line through their
/// points (dots made the calibration figure, 8 series in two panels, over 130 kB, and the page
/// inlines it again).
const DOTS_UP_TO: usize = 30;
/// The nominal level whose empirical rate the caption reports.
const ALPHA: f64 = 0.05;

/// Sorted p-values with their expected uniform quantiles `rank / (n + 1)`.
pub(crate) fn quantiles(p: &[f64]) -> Vec<(f64, f64)> {
    let mut sorted = p.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    sorted
        .into_iter()
        .enumerate()
        .map(|(i, p)| ((i as f64 + 1.0) / (n + 1.0), p))
        .collect()
}

fn thin(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    if points.len() <= MAX_DRAWN {
        return points.to_vec();
    }
    let last = points.len() - 1;
    (0..MAX_DRAWN)
        .filter_map(|k| points.get(k * last / (MAX_DRAWN - 1)))
        .copied()
        .collect()
}

pub(crate) fn draw(ctx: &Ctx, fig: &QqFigure) -> Result<Drawn> {
    let e = |e| ctx.plot_err(e);
    let series: Vec<Vec<(f64, f64)>> = fig.series.iter().map(|s| quantiles(&s.p_values)).collect();
    let mut legend: Vec<LegendEntry> = fig
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| LegendEntry {
            label: format!(
                "{} (n = {})",
                shorten(&s.label, 40),
                fmt::count(s.p_values.len() as u64)
            ),
            swatch: if s.p_values.len() <= DOTS_UP_TO {
                Swatch::Dot(series_color(i))
            } else {
                Swatch::Line(Stroke::solid(series_color(i), 2), false)
            },
        })
        .collect();
    legend.push(LegendEntry {
        label: "calibrated (diagonal)".into(),
        swatch: Swatch::Line(Stroke::dashed(MUTED, 1), false),
    });
    let legend_h = legend_height(&legend, WIDTH as i32 - 20);
    let top = ctx.title_bottom() + legend_h + 6;
    let panel_h = 360;
    let height = top + panel_h + 6;
    // The −log10 axis reaches the smallest p drawn (at least 1, i.e. p = 0.1).
    let tail = series
        .iter()
        .flatten()
        .flat_map(|&(q, p)| [q, p])
        .filter(|&v| v > 0.0)
        .map(|v| -v.log10())
        .fold(1.0f64, f64::max)
        .ceil();

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(e)?;
        ctx.draw_title(&root)?;
        draw_legend(&root, &legend, (10, ctx.title_bottom()), WIDTH as i32 - 20).map_err(e)?;
        let body = root.margin(top, 0, 0, 0);
        let (l, r) = body.split_horizontally(WIDTH / 2);
        for (k, area) in [l, r].iter().enumerate() {
            let log = k == 1;
            let title = if log {
                "tail: −log₁₀ scale"
            } else {
                "linear scale"
            };
            area.draw_text(
                title,
                &bold(12.5).pos(Pos::new(HPos::Left, VPos::Top)),
                (70, 0),
            )
            .map_err(e)?;
            let hi = if log { tail } else { 1.0 };
            let mut chart = ChartBuilder::on(area)
                .margin_top(20)
                .margin_right(16)
                .margin_left(6)
                .x_label_area_size(44)
                .y_label_area_size(56)
                .build_cartesian_2d(0f64..hi, 0f64..hi)
                .map_err(e)?;
            let fmt_v = |v: &f64| fmt::num(*v);
            chart
                .configure_mesh()
                .x_desc(if log {
                    "expected −log₁₀ p"
                } else {
                    "expected p (uniform quantile)"
                })
                .y_desc(if log {
                    "observed −log₁₀ p"
                } else {
                    "observed p"
                })
                .x_labels(6)
                .y_labels(6)
                .x_label_formatter(&fmt_v)
                .y_label_formatter(&fmt_v)
                .label_style(text(11.0))
                .axis_desc_style(text(12.0))
                .light_line_style(WHITE)
                .bold_line_style(GRID)
                .axis_style(MUTED)
                .draw()
                .map_err(e)?;
            let diag = [
                chart.backend_coord(&(0.0, 0.0)),
                chart.backend_coord(&(hi, hi)),
            ];
            polyline(&root, &diag, Stroke::dashed(MUTED, 1)).map_err(e)?;
            for (i, s) in series.iter().enumerate() {
                let c = series_color(i);
                let pts = thin(s);
                let tf = |v: f64| {
                    if log {
                        -v.max(f64::MIN_POSITIVE).log10()
                    } else {
                        v
                    }
                };
                let at = |&(q, p): &(f64, f64)| (tf(q).min(hi), tf(p).min(hi));
                if pts.len() <= DOTS_UP_TO {
                    chart
                        .draw_series(
                            pts.iter()
                                .map(|qp| Circle::new(at(qp), 2, c.mix(0.8).filled())),
                        )
                        .map_err(e)?;
                } else {
                    let px: Vec<(i32, i32)> =
                        pts.iter().map(|qp| chart.backend_coord(&at(qp))).collect();
                    polyline(&root, &px, Stroke::solid(c, 2)).map_err(e)?;
                }
            }
        }
        root.present().map_err(e)?;
    }

    let mut caption = vec![Span::Text(
        "Each p-value was computed on data where the null holds; a calibrated test puts the points on the diagonal. Points below it on the linear panel, above it on the −log₁₀ panel, are p-values smaller than chance gives: an anti-conservative null. Share of p at or below 0.05: "
            .into(),
    )];
    for (i, s) in fig.series.iter().enumerate() {
        if i > 0 {
            caption.push(Span::Text(", ".into()));
        }
        let k = s.p_values.iter().filter(|&&p| p <= ALPHA).count() as u64;
        let n = s.p_values.len() as u64;
        let rate = (n > 0).then(|| k as f64 / n as f64);
        caption.push(Span::Text(format!("{} ", s.label)));
        caption.push(Span::Computed(fmt::rate(rate, k, n)));
    }
    caption.push(Span::Text(".".into()));

    let mut w = crate::csv_out::CsvOut::new();
    w.write_record(["series", "rank", "p_value", "expected"])
        .map_err(|e| ctx.csv_err(e))?;
    for (s, pts) in fig.series.iter().zip(&series) {
        for (i, (q, p)) in pts.iter().enumerate() {
            w.write_record([
                s.label.as_str(),
                &(i + 1).to_string(),
                &fmt::csv_f64(*p),
                &fmt::csv_f64(*q),
            ])
            .map_err(|e| ctx.csv_err(e))?;
        }
    }
    let csv = ctx.csv_bytes(w)?;
    Ok(Drawn {
        svg: finish_svg(svg),
        csv,
        caption,
    })
}
