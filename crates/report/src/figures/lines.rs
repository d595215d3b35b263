//! Lines of y against x (a score against continued-training steps, a training loss against
//! steps), with shaded intervals where given and marked values as horizontal lines.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::*;
use crate::fmt;
use crate::model::LinesFigure;

/// Series of at most this many points get a dot per point and their intervals as bars (few,
/// measured snapshots at uneven x); longer ones are drawn as a plain line with a shaded interval
/// (a curve sampled per step).
const DOTS_UP_TO: usize = 24;

pub(crate) fn draw(ctx: &Ctx, fig: &LinesFigure) -> Result<Drawn> {
    let e = |e| ctx.plot_err(e);
    let marks = ctx.marks(&fig.marks);
    let mut legend: Vec<LegendEntry> = fig
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| LegendEntry {
            label: shorten(&s.label, 60),
            swatch: Swatch::Line(
                Stroke::solid(series_color(i), 2),
                s.points.len() <= DOTS_UP_TO,
            ),
        })
        .collect();
    let has_interval =
        |s: &&crate::model::LineSeries| s.points.iter().any(|p| p.lo.is_some() && p.hi.is_some());
    if fig
        .series
        .iter()
        .filter(has_interval)
        .any(|s| s.points.len() <= DOTS_UP_TO)
    {
        legend.push(LegendEntry {
            label: "interval (bars)".into(),
            swatch: Swatch::Line(Stroke::solid(MUTED, 1), false),
        });
    }
    if fig
        .series
        .iter()
        .filter(has_interval)
        .any(|s| s.points.len() > DOTS_UP_TO)
    {
        legend.push(LegendEntry {
            label: "interval (shaded)".into(),
            swatch: Swatch::Box(RGBColor(200, 200, 200)),
        });
    }
    let legend_h = legend_height(&legend, WIDTH as i32 - 20);
    let top = ctx.title_bottom() + legend_h + 8;
    let plot_h = 320;
    let height = top + plot_h + 10;

    let points = || fig.series.iter().flat_map(|s| &s.points);
    let (x0, x1) = padded_range(points().map(|p| p.x), 0.02).unwrap_or((0.0, 1.0));
    let (y0, y1) = fig.y_range.unwrap_or_else(|| {
        let ys = points()
            .flat_map(|p| [Some(p.y), p.lo, p.hi])
            .flatten()
            .chain(marks.iter().map(|m| m.value));
        padded_range(ys, 0.05).unwrap_or((0.0, 1.0))
    });

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(e)?;
        ctx.draw_title(&root)?;
        draw_legend(&root, &legend, (10, ctx.title_bottom()), WIDTH as i32 - 20).map_err(e)?;
        let area = root.margin(top, 10, 10, 20);
        let mut chart = ChartBuilder::on(&area)
            .x_label_area_size(46)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(e)?;
        let fmt_v = |v: &f64| fmt::num(*v);
        chart
            .configure_mesh()
            .x_desc(fig.x_label.as_str())
            .y_desc(fig.y_label.as_str())
            .x_labels(8)
            .y_labels(6)
            .x_label_formatter(&fmt_v)
            .y_label_formatter(&fmt_v)
            .label_style(text(11.5))
            .axis_desc_style(text(12.5))
            .light_line_style(WHITE)
            .bold_line_style(GRID)
            .axis_style(MUTED)
            .draw()
            .map_err(e)?;
        let (left, _) = chart.backend_coord(&(x0, y1));
        let (right, _) = chart.backend_coord(&(x1, y1));
        for m in &marks {
            if !(y0..=y1).contains(&m.value) {
                continue;
            }
            let (_, py) = chart.backend_coord(&(x0, m.value));
            polyline(&root, &[(left, py), (right, py)], Stroke::for_mark(m)).map_err(e)?;
            let color = if m.cite.is_some() {
                PUBLISHED
            } else {
                COMPUTED
            };
            root.draw_text(
                &m.figure_label(),
                &text_color(11.0, color).pos(Pos::new(HPos::Right, VPos::Bottom)),
                (right - 4, py - 3),
            )
            .map_err(e)?;
        }
        for (i, s) in fig.series.iter().enumerate() {
            let c = series_color(i);
            let band: Vec<(f64, f64, f64)> = s
                .points
                .iter()
                .filter_map(|p| Some((p.x, p.lo?, p.hi?)))
                .collect();
            let dots = s.points.len() <= DOTS_UP_TO;
            if dots {
                for &(x, lo, hi) in &band {
                    let (px, top) = chart.backend_coord(&(x, hi));
                    let (_, bottom) = chart.backend_coord(&(x, lo));
                    polyline(&root, &[(px, bottom), (px, top)], Stroke::solid(c, 1)).map_err(e)?;
                    for py in [top, bottom] {
                        polyline(&root, &[(px - 3, py), (px + 3, py)], Stroke::solid(c, 1))
                            .map_err(e)?;
                    }
                }
            } else if band.len() >= 2 {
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        band_polygon(&band),
                        c.mix(0.18).filled(),
                    )))
                    .map_err(e)?;
            }
            let px: Vec<(i32, i32)> = s
                .points
                .iter()
                .map(|p| chart.backend_coord(&(p.x, p.y)))
                .collect();
            polyline(&root, &px, Stroke::solid(c, 2)).map_err(e)?;
            if dots {
                for &p in &px {
                    root.draw(&Circle::new(p, 3, c.filled())).map_err(e)?;
                }
            }
        }
        root.present().map_err(e)?;
    }

    let caption = marks_caption("Marked", &marks);

    let mut w = crate::csv_out::CsvOut::new();
    w.write_record(["kind", "label", "x", "y", "lo", "hi"])
        .map_err(|e| ctx.csv_err(e))?;
    for s in &fig.series {
        for p in &s.points {
            w.write_record([
                "point",
                s.label.as_str(),
                &fmt::csv_f64(p.x),
                &fmt::csv_f64(p.y),
                &fmt::csv_opt(p.lo),
                &fmt::csv_opt(p.hi),
            ])
            .map_err(|e| ctx.csv_err(e))?;
        }
    }
    for m in &marks {
        w.write_record([
            mark_csv_kind(m),
            m.label.as_str(),
            "",
            &fmt::csv_f64(m.value),
            "",
            "",
        ])
        .map_err(|e| ctx.csv_err(e))?;
    }
    let csv = ctx.csv_bytes(w)?;
    Ok(Drawn {
        svg: finish_svg(svg),
        csv,
        caption,
    })
}
