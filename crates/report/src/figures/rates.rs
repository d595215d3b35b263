//! ROC curves per measure (AUC in the legend) and false-positive rate against threshold with
//! the published thresholds marked.

use plotters::prelude::*;

use super::*;
use crate::cite::Span;
use crate::fmt;
use crate::model::{FprFigure, RocFigure};

pub(crate) fn draw_roc(ctx: &Ctx, fig: &RocFigure) -> Result<Drawn> {
    let e = |e| ctx.plot_err(e);
    let mut legend: Vec<LegendEntry> = fig
        .curves
        .iter()
        .enumerate()
        .map(|(i, c)| LegendEntry {
            label: format!(
                "{} (AUC {})",
                shorten(&c.measure, 40),
                fmt::opt_score(c.auc)
            ),
            swatch: Swatch::Line(Stroke::solid(series_color(i), 2), false),
        })
        .collect();
    legend.push(LegendEntry {
        label: "chance".into(),
        swatch: Swatch::Line(Stroke::dashed(MUTED, 1), false),
    });
    let legend_h = legend_height(&legend, WIDTH as i32 - 20);
    let top = ctx.title_bottom() + legend_h + 8;
    let side = 440;
    let height = top + side + 8;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(e)?;
        ctx.draw_title(&root)?;
        draw_legend(&root, &legend, (10, ctx.title_bottom()), WIDTH as i32 - 20).map_err(e)?;
        // A square plot centred in the width.
        let plot_w = side - 60;
        let lm = (WIDTH as i32 - plot_w - 70) / 2;
        let area = root.margin(top, 8, lm, WIDTH as i32 - lm - plot_w - 70);
        let mut chart = ChartBuilder::on(&area)
            .margin_right(10)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)
            .map_err(e)?;
        let pct = |v: &f64| format!("{}%", fmt::num(v * 100.0));
        chart
            .configure_mesh()
            .x_desc("false-positive rate (unrelated pairs)")
            .y_desc("true-positive rate (related pairs)")
            .x_labels(6)
            .y_labels(6)
            .x_label_formatter(&pct)
            .y_label_formatter(&pct)
            .label_style(text(11.5))
            .axis_desc_style(text(12.5))
            .light_line_style(WHITE)
            .bold_line_style(GRID)
            .axis_style(MUTED)
            .draw()
            .map_err(e)?;
        let diag = [
            chart.backend_coord(&(0.0, 0.0)),
            chart.backend_coord(&(1.0, 1.0)),
        ];
        polyline(&root, &diag, Stroke::dashed(MUTED, 1)).map_err(e)?;
        for (i, c) in fig.curves.iter().enumerate() {
            let px: Vec<(i32, i32)> = c
                .points
                .iter()
                .map(|p| chart.backend_coord(&(p.fpr, p.tpr)))
                .collect();
            polyline(&root, &px, Stroke::solid(series_color(i), 2)).map_err(e)?;
        }
        root.present().map_err(e)?;
    }

    let mut caption = vec![Span::Text(format!(
        "Positives: {}. Negatives: {}. Area under each curve: ",
        fig.positives.trim_end_matches('.'),
        fig.negatives.trim_end_matches('.')
    ))];
    for (i, c) in fig.curves.iter().enumerate() {
        if i > 0 {
            caption.push(Span::Text(", ".into()));
        }
        caption.push(Span::Text(format!("{} ", c.measure)));
        caption.push(Span::Computed(fmt::opt_score(c.auc)));
    }
    caption.push(Span::Text(" (0.5 is chance).".into()));

    let mut w = crate::csv_out::CsvOut::new();
    w.write_record(["measure", "auc", "fpr", "tpr"])
        .map_err(|e| ctx.csv_err(e))?;
    for c in &fig.curves {
        for p in &c.points {
            w.write_record([
                c.measure.as_str(),
                &fmt::csv_opt(c.auc),
                &fmt::csv_f64(p.fpr),
                &fmt::csv_f64(p.tpr),
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

pub(crate) fn draw_fpr(ctx: &Ctx, fig: &FprFigure) -> Result<Drawn> {
    let e = |e| ctx.plot_err(e);
    let marks = ctx.marks(&fig.marks);
    let any_band = fig
        .series
        .iter()
        .flat_map(|s| &s.points)
        .any(|p| p.lo.is_some() && p.hi.is_some());
    let mut legend: Vec<LegendEntry> = fig
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| LegendEntry {
            label: shorten(&s.label, 60),
            swatch: Swatch::Line(Stroke::solid(series_color(i), 2), false),
        })
        .collect();
    if any_band {
        legend.push(LegendEntry {
            label: "interval (shaded)".into(),
            swatch: Swatch::Box(RGBColor(200, 200, 200)),
        });
    }
    if marks.iter().any(|m| m.cite.is_some()) {
        legend.push(LegendEntry {
            label: "published threshold [n]".into(),
            swatch: Swatch::Line(Stroke::dashed(PUBLISHED, 2), false),
        });
    }
    let legend_h = legend_height(&legend, WIDTH as i32 - 20);
    let lanes = marks.len().min(3);
    let top = ctx.title_bottom() + legend_h + 8;
    let plot_h = 320;
    let height = top + LANE_HEIGHT * lanes as i32 + plot_h + 10;

    let xs = fig
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.threshold));
    let (x0, x1) =
        padded_range(xs.chain(marks.iter().map(|m| m.value)), 0.02).unwrap_or((0.0, 1.0));
    // A log axis plots log10 of the rate, clipped at the floor; a linear one the rate.
    let floor = fig.log_rate.then(|| {
        let smallest = fig
            .series
            .iter()
            .flat_map(|s| &s.points)
            .map(|p| p.rate)
            .filter(|&r| r > 0.0)
            .fold(1.0f64, f64::min);
        smallest.log10().floor().min(-1.0)
    });
    let y = |r: f64| match floor {
        Some(f) => r.max(10f64.powf(f)).log10(),
        None => r,
    };
    let (y0, y1) = match floor {
        Some(f) => (f, 0.0),
        None => (0.0, 1.0),
    };

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(e)?;
        ctx.draw_title(&root)?;
        draw_legend(&root, &legend, (10, ctx.title_bottom()), WIDTH as i32 - 20).map_err(e)?;
        let area = root.margin(top + LANE_HEIGHT * lanes as i32, 10, 10, 20);
        let mut chart = ChartBuilder::on(&area)
            .x_label_area_size(46)
            .y_label_area_size(64)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(e)?;
        let pct = |v: &f64| match floor {
            Some(_) => format!("{}%", fmt::num(10f64.powf(*v) * 100.0)),
            None => format!("{}%", fmt::num(v * 100.0)),
        };
        let fmt_x = |v: &f64| fmt::num(*v);
        chart
            .configure_mesh()
            .x_desc(fig.x_label.as_str())
            .y_desc("pairs at or above threshold")
            .x_labels(8)
            .y_labels(match floor {
                Some(f) => (-f) as usize + 1,
                None => 6,
            })
            .x_label_formatter(&fmt_x)
            .y_label_formatter(&pct)
            .label_style(text(11.5))
            .axis_desc_style(text(12.5))
            .light_line_style(WHITE)
            .bold_line_style(GRID)
            .axis_style(MUTED)
            .draw()
            .map_err(e)?;
        for (i, s) in fig.series.iter().enumerate() {
            let c = series_color(i);
            let band: Vec<(f64, f64, f64)> = s
                .points
                .iter()
                .filter_map(|p| Some((p.threshold, y(p.lo?), y(p.hi?))))
                .collect();
            if band.len() >= 2 {
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
                .map(|p| chart.backend_coord(&(p.threshold, y(p.rate))))
                .collect();
            polyline(&root, &px, Stroke::solid(c, 2)).map_err(e)?;
        }
        let (left, top_px) = chart.backend_coord(&(x0, y1));
        let (right, bottom) = chart.backend_coord(&(x1, y0));
        let labels: Vec<LaneLabel> = marks
            .iter()
            .map(|m| {
                let (px, _) = chart.backend_coord(&(m.value, y0));
                LaneLabel {
                    x: px,
                    text: m.figure_label(),
                    color: if m.cite.is_some() {
                        PUBLISHED
                    } else {
                        COMPUTED
                    },
                    stroke: Stroke::for_mark(m),
                }
            })
            .collect();
        for l in &labels {
            polyline(&root, &[(l.x, bottom), (l.x, top_px)], l.stroke).map_err(e)?;
        }
        draw_lane_labels(&root, &labels, top_px, (left - 50, right + 16), lanes).map_err(e)?;
        root.present().map_err(e)?;
    }

    let mut caption = marks_caption("Marked thresholds", &marks);
    if let Some(f) = floor {
        caption.push(Span::Text(format!(
            " The rate axis is logarithmic; rates below {}% (zero included) are drawn at that floor.",
            fmt::num(10f64.powf(f) * 100.0)
        )));
    }

    let mut w = crate::csv_out::CsvOut::new();
    w.write_record(["kind", "label", "threshold", "rate", "lo", "hi"])
        .map_err(|e| ctx.csv_err(e))?;
    for s in &fig.series {
        for p in &s.points {
            w.write_record([
                "point",
                s.label.as_str(),
                &fmt::csv_f64(p.threshold),
                &fmt::csv_f64(p.rate),
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
            &fmt::csv_f64(m.value),
            "",
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
