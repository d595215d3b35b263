//! Null-distribution histograms: one panel per null, the tested value and the published marks
//! drawn as vertical lines, p and n in each panel's subtitle and in the caption.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::*;
use crate::cite::{ResolvedMark, Span};
use crate::fmt;
use crate::model::{NullFigure, NullResult};

const PANEL_HEIGHT: i32 = 250;
const HEADER: i32 = 40;
const BAR: RGBColor = RGBColor(86, 180, 233); // Okabe–Ito sky blue
const BAR_EDGE: RGBColor = RGBColor(0, 114, 178); // Okabe–Ito blue

/// Histogram bins of `samples`: `(left edges, width, counts)`. Between 10 and 50 bins,
/// about sqrt(n), over the samples' range.
pub(crate) fn bins(samples: &[f64]) -> Option<(f64, f64, Vec<u64>)> {
    let (lo, hi) = samples
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    if lo > hi {
        return None;
    }
    let k = ((samples.len() as f64).sqrt().ceil() as usize).clamp(10, 50);
    let span = hi - lo;
    let width = if span > 0.0 {
        span / k as f64
    } else {
        (lo.abs() * 0.01).max(1e-3)
    };
    let mut counts = vec![0u64; k];
    for &v in samples {
        let i = if span > 0.0 {
            (((v - lo) / width) as usize).min(k - 1)
        } else {
            k / 2
        };
        if let Some(c) = counts.get_mut(i) {
            *c += 1;
        }
    }
    let start = if span > 0.0 {
        lo
    } else {
        lo - width * (k / 2) as f64
    };
    Some((start, width, counts))
}

pub(crate) fn draw(ctx: &Ctx, fig: &NullFigure) -> Result<Drawn> {
    let panels: Vec<(&crate::model::NullPanel, &NullResult)> = fig
        .panels
        .iter()
        .filter_map(|p| {
            ctx.report
                .computed
                .nulls
                .iter()
                .find(|n| n.name == p.null)
                .map(|n| (p, n))
        })
        .collect();
    let resolved: Vec<(Option<ResolvedMark>, Vec<ResolvedMark>)> = panels
        .iter()
        .map(|(p, n)| {
            let tested = n
                .tested
                .as_ref()
                .and_then(|m| ResolvedMark::new(ctx.report, ctx.cites, m));
            (tested, ctx.marks(&p.marks))
        })
        .collect();

    let cols = if panels.len() > 1 { 2 } else { 1 };
    let rows = panels.len().div_ceil(cols).max(1);
    let lanes = resolved
        .iter()
        .map(|(t, m)| m.len() + usize::from(t.is_some()))
        .max()
        .unwrap_or(0)
        .min(3);
    let panel_h = PANEL_HEIGHT + LANE_HEIGHT * lanes as i32;

    let any_published = resolved
        .iter()
        .any(|(t, m)| t.iter().chain(m).any(|r| r.cite.is_some()));
    let any_computed = resolved
        .iter()
        .any(|(t, m)| t.iter().chain(m).any(|r| r.cite.is_none()));
    let mut legend = vec![LegendEntry {
        label: "null draws (histogram)".into(),
        swatch: Swatch::Box(BAR),
    }];
    if any_computed {
        legend.push(LegendEntry {
            label: "computed value".into(),
            swatch: Swatch::Line(Stroke::solid(COMPUTED, 2), false),
        });
    }
    if any_published {
        legend.push(LegendEntry {
            label: "published figure [n] (not computed here)".into(),
            swatch: Swatch::Line(Stroke::dashed(PUBLISHED, 2), false),
        });
    }
    let legend_h = legend_height(&legend, WIDTH as i32 - 20);
    let top = ctx.title_bottom() + legend_h + 6;
    let height = top + panel_h * rows as i32 + 8;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| ctx.plot_err(e))?;
        ctx.draw_title(&root)?;
        draw_legend(&root, &legend, (10, ctx.title_bottom()), WIDTH as i32 - 20)
            .map_err(|e| ctx.plot_err(e))?;
        let body = root.margin(top, 8, 0, 0);
        let areas = body.split_evenly((rows, cols));
        for (((panel, null), (tested, marks)), area) in panels.iter().zip(&resolved).zip(&areas) {
            draw_panel(
                ctx,
                fig,
                panel,
                null,
                tested.as_ref(),
                marks,
                &root,
                area,
                lanes,
            )?;
        }
        root.present().map_err(|e| ctx.plot_err(e))?;
    }

    let mut caption = Vec::new();
    for ((panel, null), (tested, _)) in panels.iter().zip(&resolved) {
        caption.push(Span::Text(format!("Panel “{}”: ", null.name)));
        match tested {
            Some(t) => {
                caption.push(Span::Text("tested value ".into()));
                caption.push(t.span());
                caption.push(Span::Text(format!(
                    "; {} of {} null draws at or above it; p = ",
                    fmt::count(null.exceed),
                    fmt::count(null.n)
                )));
            }
            None => caption.push(Span::Text(format!(
                "n = {} null draws; p = ",
                fmt::count(null.n)
            ))),
        }
        caption.push(Span::Computed(fmt::p_value(null.p, null.log10_p)));
        if let Some(e) = null.mc_error {
            caption.push(Span::Text(" (Monte Carlo error ".into()));
            caption.push(Span::Computed(fmt::num(e)));
            caption.push(Span::Text(")".into()));
        }
        if let Some(s) = null.seed {
            caption.push(Span::Text(format!(", seed {s}")));
        }
        if let (Some(t), Some(max)) = (
            tested,
            panel
                .samples
                .iter()
                .copied()
                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v)))),
        ) {
            if t.value > max {
                caption.push(Span::Text(
                    "; the tested value lies above every draw shown".into(),
                ));
            }
        }
        if panel.samples.len() as u64 != null.n {
            caption.push(Span::Text(format!(
                "; the histogram shows {} evenly spaced quantiles of the {} draws",
                fmt::count(panel.samples.len() as u64),
                fmt::count(null.n)
            )));
        }
        caption.push(Span::Text(". ".into()));
    }
    if let Some(Span::Text(t)) = caption.last_mut() {
        *t = t.trim_end().to_string();
    }

    let mut w = crate::csv_out::CsvOut::new();
    w.write_record(["null", "kind", "label", "source", "value"])
        .map_err(|e| ctx.csv_err(e))?;
    for ((panel, null), (tested, marks)) in panels.iter().zip(&resolved) {
        for (kind, m) in tested
            .iter()
            .map(|t| ("tested", t))
            .chain(marks.iter().map(|m| ("mark", m)))
        {
            let source = if m.cite.is_some() {
                "published"
            } else {
                "computed"
            };
            w.write_record([
                null.name.as_str(),
                kind,
                &m.label,
                source,
                &fmt::csv_f64(m.value),
            ])
            .map_err(|e| ctx.csv_err(e))?;
        }
        for &v in &panel.samples {
            w.write_record([null.name.as_str(), "draw", "", "computed", &fmt::csv_f64(v)])
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

#[allow(clippy::too_many_arguments)]
fn draw_panel(
    ctx: &Ctx,
    fig: &NullFigure,
    panel: &crate::model::NullPanel,
    null: &NullResult,
    tested: Option<&ResolvedMark>,
    marks: &[ResolvedMark],
    root: &DrawingArea<SVGBackend, Shift>,
    area: &DrawingArea<SVGBackend, Shift>,
    lanes: usize,
) -> Result<()> {
    let e = |e| ctx.plot_err(e);
    let (w, _) = area.dim_in_pixel();
    let name = shorten(&null.name, (f64::from(w) / 7.5) as usize);
    area.draw_text(
        &name,
        &bold(13.0).pos(Pos::new(HPos::Left, VPos::Top)),
        (12, 4),
    )
    .map_err(e)?;
    let sub = format!(
        "p = {} · n = {}",
        fmt::p_value(null.p, null.log10_p),
        fmt::count(null.n)
    );
    area.draw_text(
        &shorten(&sub, (f64::from(w) / 6.6) as usize),
        &text_color(12.0, MUTED).pos(Pos::new(HPos::Left, VPos::Top)),
        (12, 21),
    )
    .map_err(e)?;

    let all_marks: Vec<&ResolvedMark> = tested.into_iter().chain(marks).collect();
    let Some((start, width, counts)) = bins(&panel.samples) else {
        area.draw_text("no null draws", &text_color(12.0, MUTED), (60, 80))
            .map_err(e)?;
        return Ok(());
    };
    let end = start + width * counts.len() as f64;
    let (x0, x1) = padded_range(
        [start, end]
            .into_iter()
            .chain(all_marks.iter().map(|m| m.value)),
        0.04,
    )
    .unwrap_or((start, end));
    let ymax = counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.1;

    let mut chart = ChartBuilder::on(area)
        .margin_top(HEADER + LANE_HEIGHT * lanes as i32)
        .margin_right(18)
        .margin_left(6)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(x0..x1, 0f64..ymax)
        .map_err(e)?;
    let fmt_x = |v: &f64| fmt::num(*v);
    let fmt_y = |v: &f64| fmt::num(*v);
    chart
        .configure_mesh()
        .x_desc(fig.x_label.as_str())
        .y_desc("null draws (count)")
        .x_labels(6)
        .y_labels(5)
        .x_label_formatter(&fmt_x)
        .y_label_formatter(&fmt_y)
        .label_style(text(11.5))
        .axis_desc_style(text(12.5))
        .light_line_style(WHITE)
        .bold_line_style(GRID)
        .axis_style(MUTED)
        .draw()
        .map_err(e)?;
    chart
        .draw_series(
            counts
                .iter()
                .enumerate()
                .filter(|(_, &c)| c > 0)
                .map(|(i, &c)| {
                    let l = start + width * i as f64;
                    Rectangle::new([(l, 0.0), (l + width, c as f64)], BAR.mix(0.75).filled())
                }),
        )
        .map_err(e)?;
    chart
        .draw_series(
            counts
                .iter()
                .enumerate()
                .filter(|(_, &c)| c > 0)
                .map(|(i, &c)| {
                    let l = start + width * i as f64;
                    Rectangle::new(
                        [(l, 0.0), (l + width, c as f64)],
                        ShapeStyle::from(&BAR_EDGE).stroke_width(1),
                    )
                }),
        )
        .map_err(e)?;

    let (left, top) = chart.backend_coord(&(x0, ymax));
    let (right, bottom) = chart.backend_coord(&(x1, 0.0));
    let mut labels = Vec::new();
    for m in &all_marks {
        let (px, _) = chart.backend_coord(&(m.value, 0.0));
        let stroke = Stroke::for_mark(m);
        polyline(root, &[(px, bottom), (px, top)], stroke).map_err(e)?;
        labels.push(LaneLabel {
            x: px,
            text: m.figure_label(),
            color: if m.cite.is_some() {
                PUBLISHED
            } else {
                COMPUTED
            },
            stroke,
        });
    }
    draw_lane_labels(root, &labels, top, (left - 40, right + 14), lanes).map_err(e)?;
    Ok(())
}
