//! Per-role fingerprint curves: one row per role, raw values on the left and z-scores on the
//! right, models overlaid; an interpolated z-curve (depths differ) is drawn dashed over its
//! model's native points so the resampling is visible.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::*;
use crate::cite::Span;
use crate::fmt;
use crate::model::{CurvesFigure, ModelCurve};

const PANEL_HEIGHT: i32 = 200;
/// Markers are drawn on native points up to this many layers; beyond, they clutter the line
/// (and a marker per layer of 16 curves made the figure over 140 kB). Points interpolated onto
/// another depth grid keep their markers at any depth.
const MAX_MARKED_POINTS: usize = 24;

/// Runs of consecutive defined points.
fn runs(points: impl Iterator<Item = (f64, Option<f64>)>) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
    for (x, y) in points {
        match y {
            Some(y) => out.last_mut().map_or((), |r| r.push((x, y))),
            None => {
                if out.last().is_some_and(|r| !r.is_empty()) {
                    out.push(Vec::new());
                }
            }
        }
    }
    out.retain(|r| !r.is_empty());
    out
}

/// Distinct model names in first-seen order (colours follow this order in every panel).
fn model_order(fig: &CurvesFigure) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for r in &fig.roles {
        for m in &r.models {
            if !names.contains(&m.model.as_str()) {
                names.push(&m.model);
            }
        }
    }
    names
}

pub(crate) fn draw(ctx: &Ctx, fig: &CurvesFigure) -> Result<Drawn> {
    let e = |e| ctx.plot_err(e);
    let models = model_order(fig);
    let color = |name: &str| series_color(models.iter().position(|m| *m == name).unwrap_or(0));
    let any_interp = fig
        .roles
        .iter()
        .flat_map(|r| &r.models)
        .any(|m| m.interpolated.is_some());

    let mut legend: Vec<LegendEntry> = models
        .iter()
        .map(|&name| {
            let layers = fig
                .roles
                .iter()
                .flat_map(|r| &r.models)
                .find(|m| m.model == name)
                .map(|m| m.layers);
            LegendEntry {
                label: match layers {
                    Some(l) => format!("{} ({l} layers)", shorten(name, 40)),
                    None => shorten(name, 40),
                },
                swatch: Swatch::Line(Stroke::solid(color(name), 2), true),
            }
        })
        .collect();
    if any_interp {
        legend.push(LegendEntry {
            label: "z-curve interpolated onto the deeper model's layers".into(),
            swatch: Swatch::Line(Stroke::dashed(MUTED, 2), false),
        });
    }
    let legend_h = legend_height(&legend, WIDTH as i32 - 20);
    let top = ctx.title_bottom() + legend_h + 4;
    let rows = fig.roles.len().max(1);
    let height = top + PANEL_HEIGHT * rows as i32 + 24;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(e)?;
        ctx.draw_title(&root)?;
        draw_legend(&root, &legend, (10, ctx.title_bottom()), WIDTH as i32 - 20).map_err(e)?;
        let body = root.margin(top, 0, 0, 0);
        let areas = body.split_evenly((rows, 2));
        for (r, role) in fig.roles.iter().enumerate() {
            let bottom_row = r + 1 == fig.roles.len();
            for (c, area) in areas.iter().skip(2 * r).take(2).enumerate() {
                let z = c == 1;
                let title = if z {
                    format!("{} · z-scored over depth", role.role)
                } else {
                    format!("{} · raw", role.role)
                };
                area.draw_text(
                    &shorten(&title, 44),
                    &bold(12.5).pos(Pos::new(HPos::Left, VPos::Top)),
                    (64, 2),
                )
                .map_err(e)?;
                let ys = role.models.iter().flat_map(|m| {
                    let native = m.points.iter().map(move |p| if z { p.z } else { p.raw });
                    let interp = m
                        .interpolated
                        .iter()
                        .filter(move |_| z)
                        .flat_map(|ip| ip.z.iter().copied());
                    native.chain(interp).flatten()
                });
                let (y0, y1) = padded_range(ys, 0.08).unwrap_or((-1.0, 1.0));
                let mut chart = ChartBuilder::on(area)
                    .margin_top(22)
                    .margin_right(14)
                    .margin_left(4)
                    .margin_bottom(if bottom_row { 0 } else { 6 })
                    .x_label_area_size(if bottom_row { 44 } else { 22 })
                    .y_label_area_size(60)
                    .build_cartesian_2d(0f64..1f64, y0..y1)
                    .map_err(e)?;
                let fmt_v = |v: &f64| fmt::num(*v);
                let y_desc = if z {
                    "z (SD units)".to_string()
                } else {
                    shorten(&fig.raw_label, 28)
                };
                let mut mesh = chart.configure_mesh();
                mesh.y_desc(y_desc)
                    .x_labels(6)
                    .y_labels(5)
                    .x_label_formatter(&fmt_v)
                    .y_label_formatter(&fmt_v)
                    .label_style(text(11.0))
                    .axis_desc_style(text(12.0))
                    .light_line_style(WHITE)
                    .bold_line_style(GRID)
                    .axis_style(MUTED);
                if bottom_row {
                    mesh.x_desc("normalized depth, layer / (L − 1)");
                }
                mesh.draw().map_err(e)?;
                for m in &role.models {
                    draw_model(&chart, &root, m, z, color(&m.model)).map_err(e)?;
                }
            }
        }
        root.present().map_err(e)?;
    }

    let mut caption = Vec::new();
    let mut notes = Vec::new();
    for name in &models {
        let curves: Vec<&ModelCurve> = fig
            .roles
            .iter()
            .flat_map(|r| &r.models)
            .filter(|m| m.model == *name)
            .collect();
        if let Some(ip) = curves.iter().find_map(|m| m.interpolated.as_ref()) {
            let layers = curves.first().map_or(0, |m| m.layers);
            notes.push(format!(
                "{name}'s z-curve ({layers} layers) is interpolated linearly onto {} evenly spaced depths (dashed); its native layers are the dots",
                ip.onto_layers
            ));
        }
        let missing: usize = curves
            .iter()
            .map(|m| {
                m.points
                    .iter()
                    .filter(|p| p.raw.is_none() || p.z.is_none())
                    .count()
            })
            .sum();
        if missing > 0 {
            notes.push(format!(
                "{name}: {missing} layer values undefined or absent, shown as gaps"
            ));
        }
    }
    notes.push(
        "z-scores subtract each curve's mean over depth and divide by its population SD".into(),
    );
    caption.push(Span::Text(format!("{}.", notes.join("; "))));

    let mut w = crate::csv_out::CsvOut::new();
    w.write_record([
        "role", "model", "layers", "series", "layer", "x", "raw", "z",
    ])
    .map_err(|e| ctx.csv_err(e))?;
    for role in &fig.roles {
        for m in &role.models {
            let layers = m.layers.to_string();
            for p in &m.points {
                w.write_record([
                    role.role.as_str(),
                    &m.model,
                    &layers,
                    "native",
                    &p.layer.to_string(),
                    &fmt::csv_f64(p.x),
                    &fmt::csv_opt(p.raw),
                    &fmt::csv_opt(p.z),
                ])
                .map_err(|e| ctx.csv_err(e))?;
            }
            if let Some(ip) = &m.interpolated {
                let series = format!("interpolated onto {} layers", ip.onto_layers);
                for (x, z) in ip.x.iter().zip(&ip.z) {
                    w.write_record([
                        role.role.as_str(),
                        &m.model,
                        &layers,
                        &series,
                        "",
                        &fmt::csv_f64(*x),
                        "",
                        &fmt::csv_opt(*z),
                    ])
                    .map_err(|e| ctx.csv_err(e))?;
                }
            }
        }
    }
    let csv = ctx.csv_bytes(w)?;
    Ok(Drawn {
        svg: finish_svg(svg),
        csv,
        caption,
    })
}

type Chart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

fn draw_model(
    chart: &Chart,
    root: &DrawingArea<SVGBackend, Shift>,
    m: &ModelCurve,
    z: bool,
    color: RGBColor,
) -> std::result::Result<(), DrawingAreaErrorKind<std::io::Error>> {
    let native = runs(m.points.iter().map(|p| (p.x, if z { p.z } else { p.raw })));
    if z {
        if let Some(ip) = &m.interpolated {
            for run in runs(ip.x.iter().copied().zip(ip.z.iter().copied())) {
                let px: Vec<(i32, i32)> = run.iter().map(|p| chart.backend_coord(p)).collect();
                polyline(root, &px, Stroke::dashed(color, 2))?;
            }
        }
    }
    let interpolated_here = z && m.interpolated.is_some();
    for run in &native {
        if !interpolated_here {
            let px: Vec<(i32, i32)> = run.iter().map(|p| chart.backend_coord(p)).collect();
            polyline(root, &px, Stroke::solid(color, 2))?;
        }
        if m.points.len() <= MAX_MARKED_POINTS || interpolated_here {
            for p in run {
                let c = chart.backend_coord(p);
                root.draw(&Circle::new(
                    c,
                    if interpolated_here { 3 } else { 2 },
                    color.filled(),
                ))?;
            }
        }
    }
    Ok(())
}
