//! Pairwise similarity heatmap: rows and columns grouped by family, related pairs outlined,
//! viridis colour scale (perceptually uniform, readable in grey and with colour-vision
//! deficiencies), values printed in the cells when they are large enough to read.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::*;
use crate::cite::Span;
use crate::fmt;
use crate::model::HeatmapFigure;

/// Viridis (van der Walt & Smith, matplotlib 2.0 default), sampled at nine evenly spaced stops.
const VIRIDIS: [(u8, u8, u8); 9] = [
    (68, 1, 84),
    (71, 45, 123),
    (59, 82, 139),
    (44, 114, 142),
    (33, 145, 140),
    (40, 174, 128),
    (94, 201, 98),
    (173, 220, 48),
    (253, 231, 37),
];
const UNDEFINED: RGBColor = RGBColor(235, 235, 235);
const MAX_CELL: i32 = 40;
const LABEL_PX: f64 = 11.0;
/// Smallest cell (pixels) whose row still fits a model name.
const MIN_NAMED_CELL: i32 = 11;

/// Viridis colour at `t` in [0, 1] (clamped), linearly interpolated between stops.
pub(crate) fn viridis(t: f64) -> RGBColor {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let pos = t * (VIRIDIS.len() - 1) as f64;
    let i = (pos.floor() as usize).min(VIRIDIS.len() - 2);
    let f = pos - i as f64;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    let mix = |x: u8, y: u8| (f64::from(x) + (f64::from(y) - f64::from(x)) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Display order: indices grouped by family (families alphabetically), stable within a family.
pub(crate) fn family_order(fig: &HeatmapFigure) -> Vec<usize> {
    let mut order: Vec<usize> = (0..fig.models.len()).collect();
    order.sort_by(|&a, &b| {
        fig.models[a]
            .family
            .cmp(&fig.models[b].family)
            .then(a.cmp(&b))
    });
    order
}

pub(crate) fn draw(ctx: &Ctx, fig: &HeatmapFigure) -> Result<Drawn> {
    let e = |e| ctx.plot_err(e);
    let n = fig.models.len();
    let order = family_order(fig);
    let name_of = |i: usize| shorten(&fig.models[i].name, 28);
    let fam_of = |i: usize| shorten(&fig.models[i].family, 16);
    let related = |a: usize, b: usize| {
        let (na, nb) = (&fig.models[a].name, &fig.models[b].name);
        fig.related
            .iter()
            .any(|(x, y)| (x == na && y == nb) || (x == nb && y == na))
    };
    let defined = fig.values.iter().flatten().flatten().copied();
    let (lo, hi, from_data) = match fig.range {
        Some((lo, hi)) => (lo, hi, false),
        None => {
            let (lo, hi) = defined.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
                (l.min(v), h.max(v))
            });
            if lo > hi {
                (0.0, 1.0, true)
            } else if hi - lo <= f64::EPSILON {
                (lo - 0.5, hi + 0.5, true)
            } else {
                (lo, hi, true)
            }
        }
    };

    let name_w = (0..n)
        .map(|i| text_width(&name_of(i), LABEL_PX))
        .max()
        .unwrap_or(0);
    let fam_w = (0..n)
        .map(|i| text_width(&fam_of(i), LABEL_PX))
        .max()
        .unwrap_or(0);
    let colorbar_w = 110;
    let fit = |left: i32| ((WIDTH as i32 - left - colorbar_w) / n.max(1) as i32).clamp(4, MAX_CELL);
    // Model names need rows at least as tall as their text; below that only families are named.
    let named = fit(10 + fam_w + 12 + name_w + 8) >= MIN_NAMED_CELL;
    let name_w = if named { name_w } else { 0 };
    let left = 10 + fam_w + 12 + name_w + 8;
    let cell = fit(left);
    let legend = vec![
        LegendEntry {
            label: "related pair (outlined)".into(),
            swatch: Swatch::Outline(INK),
        },
        LegendEntry {
            label: "undefined".into(),
            swatch: Swatch::Box(UNDEFINED),
        },
    ];
    let legend_h = legend_height(&legend, WIDTH as i32 - 20);
    let top_labels = name_w + 10;
    let top = ctx.title_bottom() + legend_h + 4 + top_labels;
    let matrix = cell * n as i32;
    let height = top + matrix.max(220) + 24;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height as u32)).into_drawing_area();
        root.fill(&WHITE).map_err(e)?;
        ctx.draw_title(&root)?;
        draw_legend(&root, &legend, (10, ctx.title_bottom()), WIDTH as i32 - 20).map_err(e)?;

        let label = text(LABEL_PX);
        let show_values = cell >= 30;
        for (r, &i) in order.iter().enumerate() {
            let y = top + cell * r as i32;
            if named {
                root.draw_text(
                    &name_of(i),
                    &label.pos(Pos::new(HPos::Right, VPos::Center)),
                    (left - 6, y + cell / 2),
                )
                .map_err(e)?;
                // Column label, reading upwards.
                let x = left + cell * r as i32 + cell / 2;
                root.draw_text(
                    &name_of(i),
                    &label
                        .pos(Pos::new(HPos::Left, VPos::Center))
                        .transform(FontTransform::Rotate270),
                    (x, top - 6),
                )
                .map_err(e)?;
            }
            if r == 0 || fig.models[order[r - 1]].family != fig.models[i].family {
                root.draw_text(
                    &fam_of(i),
                    &italic(LABEL_PX, MUTED).pos(Pos::new(HPos::Left, VPos::Center)),
                    (10, y + cell / 2),
                )
                .map_err(e)?;
            }
            for (c, &j) in order.iter().enumerate() {
                let x = left + cell * c as i32;
                let v = fig
                    .values
                    .get(i)
                    .and_then(|row| row.get(j))
                    .copied()
                    .flatten();
                let fill = v.map_or(UNDEFINED, |v| viridis((v - lo) / (hi - lo)));
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell, y + cell)],
                    fill.filled(),
                ))
                .map_err(e)?;
                if let (true, Some(v)) = (show_values, v) {
                    let t = (v - lo) / (hi - lo);
                    let ink = if t < 0.6 { WHITE } else { BLACK };
                    root.draw_text(
                        &fmt::score(v, 2),
                        &text_color(10.0, ink).pos(Pos::new(HPos::Center, VPos::Center)),
                        (x + cell / 2, y + cell / 2),
                    )
                    .map_err(e)?;
                }
            }
        }
        // Family separators.
        for r in 1..n {
            if fig.models[order[r - 1]].family != fig.models[order[r]].family {
                let p = cell * r as i32;
                let s = ShapeStyle::from(&WHITE).stroke_width(3);
                root.draw(&PathElement::new(
                    vec![(left, top + p), (left + matrix, top + p)],
                    s,
                ))
                .map_err(e)?;
                root.draw(&PathElement::new(
                    vec![(left + p, top), (left + p, top + matrix)],
                    s,
                ))
                .map_err(e)?;
            }
        }
        // Related pairs, outlined over the separators.
        for (r, &i) in order.iter().enumerate() {
            for (c, &j) in order.iter().enumerate() {
                if i != j && related(i, j) {
                    let (x, y) = (left + cell * c as i32, top + cell * r as i32);
                    root.draw(&Rectangle::new(
                        [(x + 1, y + 1), (x + cell - 1, y + cell - 1)],
                        ShapeStyle::from(&BLACK).stroke_width(2),
                    ))
                    .map_err(e)?;
                }
            }
        }
        // Colour bar.
        let bx = left + matrix + 24;
        let bh = matrix.clamp(160, 320);
        let steps = 64;
        for s in 0..steps {
            let y0 = top + bh - bh * (s + 1) / steps;
            let y1 = top + bh - bh * s / steps;
            let t = (f64::from(s) + 0.5) / f64::from(steps);
            root.draw(&Rectangle::new(
                [(bx, y0), (bx + 16, y1)],
                viridis(t).filled(),
            ))
            .map_err(e)?;
        }
        root.draw(&Rectangle::new(
            [(bx, top), (bx + 16, top + bh)],
            ShapeStyle::from(&MUTED).stroke_width(1),
        ))
        .map_err(e)?;
        for k in 0..=4 {
            let v = lo + (hi - lo) * f64::from(k) / 4.0;
            let y = top + bh - bh * k / 4;
            root.draw(&PathElement::new(
                vec![(bx + 16, y), (bx + 20, y)],
                ShapeStyle::from(&MUTED),
            ))
            .map_err(e)?;
            root.draw_text(
                &fmt::num(v),
                &text(10.5).pos(Pos::new(HPos::Left, VPos::Center)),
                (bx + 23, y),
            )
            .map_err(e)?;
        }
        root.draw_text(
            &shorten(&fig.value_label, 40),
            &text(12.0)
                .pos(Pos::new(HPos::Center, VPos::Bottom))
                .transform(FontTransform::Rotate270),
            (bx - 6, top + bh / 2),
        )
        .map_err(e)?;
        root.present().map_err(e)?;
    }

    let mut families: Vec<&str> = order
        .iter()
        .map(|&i| fig.models[i].family.as_str())
        .collect();
    families.dedup();
    let outlined = fig.related.len();
    let mut caption = vec![Span::Text(format!(
        "{n} models ordered by family ({}); {outlined} related pair{} outlined; grey cells are undefined. Colour scale from ",
        families.join(", "),
        if outlined == 1 { "" } else { "s" },
    ))];
    caption.push(Span::Computed(fmt::num(lo)));
    caption.push(Span::Text(" to ".into()));
    caption.push(Span::Computed(fmt::num(hi)));
    caption.push(Span::Text(if from_data {
        " (the data range).".into()
    } else {
        ".".into()
    }));
    if !named {
        caption.push(Span::Text(
            " Model names are left out at this size; the CSV lists the cells in display order."
                .into(),
        ));
    }

    let mut w = crate::csv_out::CsvOut::new();
    w.write_record([
        "row_model",
        "row_family",
        "col_model",
        "col_family",
        "value",
        "related",
    ])
    .map_err(|e| ctx.csv_err(e))?;
    for &i in &order {
        for &j in &order {
            let v = fig
                .values
                .get(i)
                .and_then(|row| row.get(j))
                .copied()
                .flatten();
            w.write_record([
                fig.models[i].name.as_str(),
                &fig.models[i].family,
                &fig.models[j].name,
                &fig.models[j].family,
                &fmt::csv_opt(v),
                if i != j && related(i, j) {
                    "true"
                } else {
                    "false"
                },
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
