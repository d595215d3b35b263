//! Specification curve (Simonsohn, Simmons & Nelson 2020): every reasonable analysis's score,
//! sorted, with the choices that define each specification marked underneath, so a reader sees
//! how much the headline depends on them.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::*;
use crate::cite::Span;
use crate::fmt;
use crate::model::{SpecFigure, SpecRow};

const PLOT_HEIGHT: i32 = 270;
const ROW: i32 = 15;
const LABEL_PX: f64 = 11.0;
const POINT: RGBColor = RGBColor(0, 114, 178); // Okabe–Ito blue

/// Defined specifications sorted by score (ties keep input order), with their input index.
pub(crate) fn sorted(rows: &[SpecRow]) -> Vec<(usize, f64, &SpecRow)> {
    let mut v: Vec<(usize, f64, &SpecRow)> = rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| Some((i, r.score?, r)))
        .collect();
    v.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
    v
}

/// Dimensions and their options in first-seen order.
pub(crate) fn dimensions(rows: &[SpecRow]) -> Vec<(String, Vec<String>)> {
    let mut dims: Vec<(String, Vec<String>)> = Vec::new();
    for r in rows {
        for c in &r.choices {
            match dims.iter_mut().find(|(d, _)| *d == c.dimension) {
                Some((_, opts)) => {
                    if !opts.contains(&c.option) {
                        opts.push(c.option.clone());
                    }
                }
                None => dims.push((c.dimension.clone(), vec![c.option.clone()])),
            }
        }
    }
    dims
}

pub(crate) fn draw(ctx: &Ctx, fig: &SpecFigure) -> Result<Drawn> {
    let e = |e| ctx.plot_err(e);
    let rows = &ctx.report.computed.specification_curve;
    let specs = sorted(rows);
    let dims = dimensions(rows);
    let marks = ctx.marks(&fig.marks);
    let n = specs.len();
    let headline = specs.iter().position(|(_, _, r)| r.headline);

    let option_rows: Vec<(String, &str, &str)> = dims
        .iter()
        .flat_map(|(d, opts)| {
            opts.iter()
                .map(move |o| (format!("{d}: {o}"), d.as_str(), o.as_str()))
        })
        .collect();
    let label_w = option_rows
        .iter()
        .map(|(l, _, _)| text_width(&shorten(l, 34), LABEL_PX))
        .max()
        .unwrap_or(0)
        .max(56)
        + 14;

    let mut legend = vec![LegendEntry {
        label: "specification (computed)".into(),
        swatch: Swatch::Dot(POINT),
    }];
    if headline.is_some() {
        legend.push(LegendEntry {
            label: "the published analysis's choices".into(),
            swatch: Swatch::Dot(BLACK),
        });
    }
    if marks.iter().any(|m| m.cite.is_some()) {
        legend.push(LegendEntry {
            label: "published figure [n]".into(),
            swatch: Swatch::Line(Stroke::dashed(PUBLISHED, 2), false),
        });
    }
    let legend_h = legend_height(&legend, WIDTH as i32 - 20);
    let top = ctx.title_bottom() + legend_h + 6;
    let matrix_top = top + PLOT_HEIGHT + 8;
    let height = matrix_top + ROW * option_rows.len() as i32 + (dims.len() as i32) * 4 + 14;

    let ys = specs
        .iter()
        .map(|s| s.1)
        .chain(marks.iter().map(|m| m.value));
    let (y0, y1) = padded_range(ys, 0.06).unwrap_or((0.0, 1.0));
    let x1 = n as f64 + 0.5;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(e)?;
        ctx.draw_title(&root)?;
        draw_legend(&root, &legend, (10, ctx.title_bottom()), WIDTH as i32 - 20).map_err(e)?;
        let area = root.margin(top, height - top - PLOT_HEIGHT, 0, 20);
        let mut chart = ChartBuilder::on(&area)
            .margin_left((label_w - 62).max(0))
            .x_label_area_size(36)
            .y_label_area_size(62)
            .build_cartesian_2d(0.5f64..x1, y0..y1)
            .map_err(e)?;
        let fmt_y = |v: &f64| fmt::num(*v);
        let fmt_x = |v: &f64| {
            if v.fract() == 0.0 {
                format!("{v:.0}")
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .x_desc("specification, sorted by score")
            .y_desc(shorten(&fig.y_label, 40))
            .x_labels(n.clamp(2, 10))
            .y_labels(6)
            .x_label_formatter(&fmt_x)
            .y_label_formatter(&fmt_y)
            .label_style(text(11.0))
            .axis_desc_style(text(12.0))
            .light_line_style(WHITE)
            .bold_line_style(GRID)
            .axis_style(MUTED)
            .draw()
            .map_err(e)?;
        let (left, _) = chart.backend_coord(&(0.5, y1));
        let (right, _) = chart.backend_coord(&(x1, y1));
        // Horizontal marks. Scores rise to the right, so a label goes at the left end when
        // its line is above the median score and at the right end otherwise; it moves to the
        // other end when it would collide with a label already placed.
        let median = specs.get(n / 2).map_or(0.0, |s| s.1);
        let mut used: Vec<(i32, bool)> = Vec::new();
        for m in &marks {
            let (_, py) = chart.backend_coord(&(1.0, m.value));
            let stroke = Stroke::for_mark(m);
            polyline(&root, &[(left, py), (right, py)], stroke).map_err(e)?;
            let preferred = m.value <= median;
            let clash = |side: bool| used.iter().any(|&(y, r)| r == side && (y - py).abs() < 14);
            let at_right = if clash(preferred) {
                !preferred
            } else {
                preferred
            };
            used.push((py, at_right));
            let (x, anchor) = if at_right {
                (right - 4, HPos::Right)
            } else {
                (left + 4, HPos::Left)
            };
            let color = if m.cite.is_some() {
                PUBLISHED
            } else {
                COMPUTED
            };
            root.draw_text(
                &m.figure_label(),
                &text_color(11.0, color).pos(Pos::new(anchor, VPos::Bottom)),
                (x, py - 3),
            )
            .map_err(e)?;
        }
        let r = if n > 120 { 2 } else { 3 };
        chart
            .draw_series(
                specs
                    .iter()
                    .enumerate()
                    .map(|(k, s)| Circle::new((k as f64 + 1.0, s.1), r, POINT.filled())),
            )
            .map_err(e)?;
        if let Some(k) = headline {
            let c = chart.backend_coord(&(k as f64 + 1.0, specs[k].1));
            root.draw(&Circle::new(c, 5, BLACK.filled())).map_err(e)?;
            root.draw(&Circle::new(c, 8, ShapeStyle::from(&BLACK).stroke_width(1)))
                .map_err(e)?;
        }

        // The choice matrix, aligned with the plot's x axis.
        let col_w = ((right - left) as f64 / n.max(1) as f64).max(1.0);
        let tick_w = ((col_w * 0.7).round() as i32).clamp(1, 8);
        let mut y = matrix_top;
        let mut prev_dim = "";
        for (label, dim, opt) in &option_rows {
            if !prev_dim.is_empty() && prev_dim != *dim {
                y += 4;
                root.draw(&PathElement::new(
                    vec![(10, y - 3), (right, y - 3)],
                    ShapeStyle::from(&GRID),
                ))
                .map_err(e)?;
            }
            prev_dim = dim;
            root.draw_text(
                &shorten(label, 34),
                &text(LABEL_PX).pos(Pos::new(HPos::Right, VPos::Center)),
                (left - 8, y + ROW / 2),
            )
            .map_err(e)?;
            for (k, (_, _, row)) in specs.iter().enumerate() {
                if row
                    .choices
                    .iter()
                    .any(|c| c.dimension == *dim && c.option == *opt)
                {
                    let (cx, _) = chart.backend_coord(&(k as f64 + 1.0, y1));
                    let color = if Some(k) == headline { BLACK } else { POINT };
                    root.draw(&Rectangle::new(
                        [
                            (cx - tick_w / 2, y + 3),
                            (cx - tick_w / 2 + tick_w, y + ROW - 3),
                        ],
                        color.filled(),
                    ))
                    .map_err(e)?;
                }
            }
            y += ROW;
        }
        root.present().map_err(e)?;
    }

    let mut caption = vec![Span::Text(format!("{n} specifications sorted by score"))];
    if let (Some(lo), Some(hi)) = (specs.first(), specs.last()) {
        caption.push(Span::Text(", from ".into()));
        caption.push(Span::Computed(fmt::score(lo.1, 3)));
        caption.push(Span::Text(" to ".into()));
        caption.push(Span::Computed(fmt::score(hi.1, 3)));
    }
    if let Some(k) = headline {
        caption.push(Span::Text(
            "; the published analysis's choices score ".into(),
        ));
        caption.push(Span::Computed(fmt::score(specs[k].1, 3)));
        caption.push(Span::Text(format!(" (rank {} of {n})", k + 1)));
    }
    let undefined = rows.len() - n;
    if undefined > 0 {
        caption.push(Span::Text(format!(
            "; {undefined} specifications with an undefined score are not drawn"
        )));
    }
    caption.push(Span::Text(
        ". Below the curve, each row marks the specifications that use that choice.".into(),
    ));

    let mut w = crate::csv_out::CsvOut::new();
    let mut header = vec!["rank".to_string(), "score".into(), "headline".into()];
    header.extend(dims.iter().map(|(d, _)| d.clone()));
    w.write_record(&header).map_err(|e| ctx.csv_err(e))?;
    let undefined_rows = rows.iter().filter(|r| r.score.is_none());
    let all = specs.iter().map(|s| s.2).chain(undefined_rows);
    for (k, row) in all.enumerate() {
        let rank = if k < n {
            (k + 1).to_string()
        } else {
            String::new()
        };
        let mut rec = vec![rank, fmt::csv_opt(row.score), row.headline.to_string()];
        for (d, _) in &dims {
            rec.push(
                row.choices
                    .iter()
                    .find(|c| c.dimension == *d)
                    .map(|c| c.option.clone())
                    .unwrap_or_default(),
            );
        }
        w.write_record(&rec).map_err(|e| ctx.csv_err(e))?;
    }
    let csv = ctx.csv_bytes(w)?;
    Ok(Drawn {
        svg: finish_svg(svg),
        csv,
        caption,
    })
}
