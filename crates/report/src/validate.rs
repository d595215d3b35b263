//! Checks that a [`Report`] can be rendered faithfully: numbers finite, probabilities in
//! [0, 1], references resolved, names usable as file names, sizes within the caps below.
//!
//! Renderers rely on these checks: after [`Report::validate`] succeeds they never meet NaN,
//! a dangling reference or a ragged table.

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::model::*;

/// Largest heatmap drawn (models per side): beyond this the labels become illegible at 720 px.
pub const MAX_HEATMAP_MODELS: usize = 80;
/// Largest number of values in one figure series (null draws, p-values, curve points).
pub const MAX_SERIES_LEN: usize = 1_000_000;
/// Largest number of series or panels in one figure.
pub const MAX_SERIES: usize = 16;
/// Largest number of specifications on a specification curve.
pub const MAX_SPECS: usize = 4096;

/// CSV stems written by the renderer itself; tables may not use them.
pub(crate) const RESERVED_STEMS: &[&str] = &[
    "nulls",
    "published",
    "panel",
    "specification_curve",
    "inputs",
    "report",
    "index",
];

impl Report {
    /// Check everything the renderers rely on; the first problem is returned with the path of
    /// the offending field.
    pub fn validate(&self) -> Result<()> {
        if self.schema_version != SCHEMA_VERSION {
            return Err(Error::SchemaVersion {
                found: self.schema_version,
                expected: SCHEMA_VERSION,
            });
        }
        non_empty("title", &self.title)?;
        self.provenance.validate()?;
        non_empty("claim.text", &self.claim.text)?;
        non_empty("verdict.claimed", &self.verdict.claimed)?;
        non_empty("verdict.nulls_say", &self.verdict.nulls_say)?;
        non_empty("verdict.cannot_say", &self.verdict.cannot_say)?;
        if self.verdict.findings.len() > crate::model::MAX_FINDINGS {
            return Err(Error::Inconsistent {
                field: "verdict.findings".into(),
                reason: format!(
                    "{} findings; a verdict lists at most {}",
                    self.verdict.findings.len(),
                    crate::model::MAX_FINDINGS
                ),
            });
        }
        for (i, f) in self.verdict.findings.iter().enumerate() {
            non_empty(&format!("verdict.findings[{i}].text"), &f.text)?;
        }

        let mut ids = BTreeSet::new();
        for (field, p) in self.all_published() {
            p.validate(&field)?;
            if !ids.insert(p.id.as_str()) {
                return Err(Error::Duplicate {
                    field,
                    name: p.id.clone(),
                });
            }
        }
        let mut stems: BTreeSet<&str> = RESERVED_STEMS.iter().copied().collect();
        self.validate_computed(&mut stems)?;
        for (i, t) in self.tables.iter().enumerate() {
            let field = format!("tables[{i}]");
            stem(&format!("{field}.name"), &t.name, &mut stems)?;
            non_empty(&format!("{field}.title"), &t.title)?;
            for (r, row) in t.rows.iter().enumerate() {
                if row.len() != t.headers.len() {
                    return Err(Error::Length {
                        field: format!("{field}.rows[{r}]"),
                        found: row.len(),
                        expected: t.headers.len(),
                    });
                }
                for (c, cell) in row.iter().enumerate() {
                    if let Cell::Number(x) = cell {
                        finite(&format!("{field}.rows[{r}][{c}]"), *x)?;
                    }
                }
            }
        }
        let mut figure_names = BTreeSet::new();
        for (i, f) in self.figures.iter().enumerate() {
            let field = format!("figures[{i}]");
            stem(&format!("{field}.name"), &f.name, &mut figure_names)?;
            non_empty(&format!("{field}.title"), &f.title)?;
            self.validate_figure(&field, &f.kind)?;
        }
        if let Some(name) = &self.verdict.figure {
            if self.figures.first().map(|f| &f.name) != Some(name) {
                return Err(Error::Inconsistent {
                    field: "verdict.figure".into(),
                    reason: format!(
                        "\"{name}\" must name the first figure (the headline keeps number 1)"
                    ),
                });
            }
        }
        Ok(())
    }

    /// The claim's statistic followed by the other published figures, with their field paths.
    pub(crate) fn all_published(&self) -> impl Iterator<Item = (String, &Published)> {
        std::iter::once(("claim.statistic".to_string(), &self.claim.statistic)).chain(
            self.published
                .iter()
                .enumerate()
                .map(|(i, p)| (format!("published[{i}]"), p)),
        )
    }

    /// The published figure with this id.
    pub(crate) fn published_by_id(&self, id: &str) -> Option<&Published> {
        self.all_published().map(|(_, p)| p).find(|p| p.id == id)
    }

    fn validate_mark(&self, field: &str, mark: &Mark) -> Result<()> {
        match mark {
            Mark::Published { id } => match self.published_by_id(id) {
                Some(p) if p.value.is_some() => Ok(()),
                Some(_) => Err(Error::Inconsistent {
                    field: field.to_string(),
                    reason: format!("published figure {id:?} has no numeric value to mark"),
                }),
                None => Err(Error::UnknownReference {
                    field: field.to_string(),
                    name: id.clone(),
                    what: "published figure",
                }),
            },
            Mark::Computed { label, value } => {
                non_empty(&format!("{field}.label"), label)?;
                finite(&format!("{field}.value"), *value)
            }
        }
    }

    fn validate_computed<'a>(&'a self, stems: &mut BTreeSet<&'a str>) -> Result<()> {
        let c = &self.computed;
        let mut names = BTreeSet::new();
        for (i, n) in c.nulls.iter().enumerate() {
            let field = format!("computed.nulls[{i}]");
            non_empty(&format!("{field}.name"), &n.name)?;
            if !names.insert(n.name.as_str()) {
                return Err(Error::Duplicate {
                    field,
                    name: n.name.clone(),
                });
            }
            if let Some(m) = &n.tested {
                self.validate_mark(&format!("{field}.tested"), m)?;
            }
            if n.exceed > n.n {
                return Err(Error::Inconsistent {
                    field: format!("{field}.exceed"),
                    reason: format!("{} draws exceed but n is {}", n.exceed, n.n),
                });
            }
            opt_unit(&format!("{field}.p"), n.p)?;
            if let Some(l) = n.log10_p {
                range(
                    &format!("{field}.log10_p"),
                    l,
                    f64::NEG_INFINITY,
                    0.0,
                    "(-inf, 0]",
                )?;
            }
            if let Some(iv) = &n.interval {
                interval(&format!("{field}.interval"), iv, true)?;
            }
            if let Some(e) = n.mc_error {
                range(
                    &format!("{field}.mc_error"),
                    e,
                    0.0,
                    f64::INFINITY,
                    "[0, inf)",
                )?;
            }
        }
        for (kind, tables) in [
            ("false_positive_rates", &c.false_positive_rates),
            ("power", &c.power),
        ] {
            for (i, t) in tables.iter().enumerate() {
                let field = format!("computed.{kind}[{i}]");
                stem(&format!("{field}.name"), &t.name, stems)?;
                non_empty(&format!("{field}.title"), &t.title)?;
                for (r, row) in t.rows.iter().enumerate() {
                    let field = format!("{field}.rows[{r}]");
                    finite(&format!("{field}.threshold"), row.threshold)?;
                    if let Some(id) = &row.threshold_source {
                        let p =
                            self.published_by_id(id)
                                .ok_or_else(|| Error::UnknownReference {
                                    field: format!("{field}.threshold_source"),
                                    name: id.clone(),
                                    what: "published figure",
                                })?;
                        if p.value != Some(row.threshold) {
                            return Err(Error::Inconsistent {
                                field: format!("{field}.threshold"),
                                reason: format!(
                                    "{} differs from published {id:?} ({:?})",
                                    row.threshold, p.value
                                ),
                            });
                        }
                    }
                    if row.count > row.n {
                        return Err(Error::Inconsistent {
                            field: format!("{field}.count"),
                            reason: format!("count {} exceeds n {}", row.count, row.n),
                        });
                    }
                    opt_unit(&format!("{field}.rate"), row.rate)?;
                    if let Some(iv) = &row.interval {
                        interval(&format!("{field}.interval"), iv, true)?;
                    }
                }
            }
        }
        if c.specification_curve.len() > MAX_SPECS {
            return Err(Error::TooLarge {
                field: "computed.specification_curve".into(),
                found: c.specification_curve.len(),
                max: MAX_SPECS,
            });
        }
        let mut headline = 0;
        for (i, s) in c.specification_curve.iter().enumerate() {
            let field = format!("computed.specification_curve[{i}]");
            if let Some(x) = s.score {
                finite(&format!("{field}.score"), x)?;
            }
            for (j, ch) in s.choices.iter().enumerate() {
                non_empty(&format!("{field}.choices[{j}].dimension"), &ch.dimension)?;
            }
            headline += usize::from(s.headline);
            if headline > 1 {
                return Err(Error::Inconsistent {
                    field: format!("{field}.headline"),
                    reason: "more than one headline specification".into(),
                });
            }
        }
        for (i, m) in c.panel.iter().enumerate() {
            let field = format!("computed.panel[{i}]");
            non_empty(&format!("{field}.model"), &m.model)?;
            sha256(&format!("{field}.sha256"), &m.sha256)?;
        }
        Ok(())
    }

    fn validate_figure(&self, field: &str, kind: &FigureKind) -> Result<()> {
        match kind {
            FigureKind::FingerprintCurves(f) => {
                count(&format!("{field}.roles"), f.roles.len(), MAX_SERIES)?;
                for (r, role) in f.roles.iter().enumerate() {
                    let field = format!("{field}.roles[{r}]");
                    count(&format!("{field}.models"), role.models.len(), MAX_SERIES)?;
                    for (m, mc) in role.models.iter().enumerate() {
                        let field = format!("{field}.models[{m}]");
                        count(&format!("{field}.points"), mc.points.len(), MAX_SERIES_LEN)?;
                        for (k, p) in mc.points.iter().enumerate() {
                            let field = format!("{field}.points[{k}]");
                            unit(&format!("{field}.x"), p.x)?;
                            if let Some(v) = p.raw {
                                finite(&format!("{field}.raw"), v)?;
                            }
                            if let Some(v) = p.z {
                                finite(&format!("{field}.z"), v)?;
                            }
                        }
                        if let Some(ip) = &mc.interpolated {
                            let field = format!("{field}.interpolated");
                            if ip.x.len() != ip.z.len() {
                                return Err(Error::Length {
                                    field: format!("{field}.z"),
                                    found: ip.z.len(),
                                    expected: ip.x.len(),
                                });
                            }
                            count(&format!("{field}.x"), ip.x.len(), MAX_SERIES_LEN)?;
                            for (k, (&x, z)) in ip.x.iter().zip(&ip.z).enumerate() {
                                unit(&format!("{field}.x[{k}]"), x)?;
                                if let Some(z) = z {
                                    finite(&format!("{field}.z[{k}]"), *z)?;
                                }
                            }
                        }
                    }
                }
            }
            FigureKind::NullDistributions(f) => {
                count(&format!("{field}.panels"), f.panels.len(), MAX_SERIES)?;
                for (i, p) in f.panels.iter().enumerate() {
                    let field = format!("{field}.panels[{i}]");
                    if !self.computed.nulls.iter().any(|n| n.name == p.null) {
                        return Err(Error::UnknownReference {
                            field: format!("{field}.null"),
                            name: p.null.clone(),
                            what: "null result",
                        });
                    }
                    count(&format!("{field}.samples"), p.samples.len(), MAX_SERIES_LEN)?;
                    all_finite(&format!("{field}.samples"), &p.samples)?;
                    for (j, m) in p.marks.iter().enumerate() {
                        self.validate_mark(&format!("{field}.marks[{j}]"), m)?;
                    }
                }
            }
            FigureKind::Heatmap(f) => {
                let n = f.models.len();
                count(&format!("{field}.models"), n, MAX_HEATMAP_MODELS)?;
                if f.values.len() != n {
                    return Err(Error::Length {
                        field: format!("{field}.values"),
                        found: f.values.len(),
                        expected: n,
                    });
                }
                for (i, row) in f.values.iter().enumerate() {
                    if row.len() != n {
                        return Err(Error::Length {
                            field: format!("{field}.values[{i}]"),
                            found: row.len(),
                            expected: n,
                        });
                    }
                    for (j, v) in row.iter().enumerate() {
                        if let Some(v) = v {
                            finite(&format!("{field}.values[{i}][{j}]"), *v)?;
                        }
                    }
                }
                let mut seen = BTreeSet::new();
                for (i, m) in f.models.iter().enumerate() {
                    if !seen.insert(m.name.as_str()) {
                        return Err(Error::Duplicate {
                            field: format!("{field}.models[{i}]"),
                            name: m.name.clone(),
                        });
                    }
                }
                for (i, (a, b)) in f.related.iter().enumerate() {
                    for name in [a, b] {
                        if !seen.contains(name.as_str()) {
                            return Err(Error::UnknownReference {
                                field: format!("{field}.related[{i}]"),
                                name: name.clone(),
                                what: "heatmap model",
                            });
                        }
                    }
                }
                if let Some((lo, hi)) = f.range {
                    finite(&format!("{field}.range.0"), lo)?;
                    finite(&format!("{field}.range.1"), hi)?;
                    if lo >= hi {
                        return Err(Error::Inconsistent {
                            field: format!("{field}.range"),
                            reason: format!("lower bound {lo} is not below upper bound {hi}"),
                        });
                    }
                }
            }
            FigureKind::Roc(f) => {
                count(&format!("{field}.curves"), f.curves.len(), MAX_SERIES)?;
                for (i, c) in f.curves.iter().enumerate() {
                    let field = format!("{field}.curves[{i}]");
                    count(&format!("{field}.points"), c.points.len(), MAX_SERIES_LEN)?;
                    for (k, p) in c.points.iter().enumerate() {
                        unit(&format!("{field}.points[{k}].fpr"), p.fpr)?;
                        unit(&format!("{field}.points[{k}].tpr"), p.tpr)?;
                    }
                    opt_unit(&format!("{field}.auc"), c.auc)?;
                }
            }
            FigureKind::FprThreshold(f) => {
                count(&format!("{field}.series"), f.series.len(), MAX_SERIES)?;
                for (i, s) in f.series.iter().enumerate() {
                    let field = format!("{field}.series[{i}]");
                    count(&format!("{field}.points"), s.points.len(), MAX_SERIES_LEN)?;
                    for (k, p) in s.points.iter().enumerate() {
                        let field = format!("{field}.points[{k}]");
                        finite(&format!("{field}.threshold"), p.threshold)?;
                        unit(&format!("{field}.rate"), p.rate)?;
                        opt_unit(&format!("{field}.lo"), p.lo)?;
                        opt_unit(&format!("{field}.hi"), p.hi)?;
                    }
                }
                for (j, m) in f.marks.iter().enumerate() {
                    self.validate_mark(&format!("{field}.marks[{j}]"), m)?;
                }
            }
            FigureKind::Lines(f) => {
                count(&format!("{field}.series"), f.series.len(), MAX_SERIES)?;
                if let Some((lo, hi)) = f.y_range {
                    finite(&format!("{field}.y_range.0"), lo)?;
                    finite(&format!("{field}.y_range.1"), hi)?;
                    if lo >= hi {
                        return Err(Error::Inconsistent {
                            field: format!("{field}.y_range"),
                            reason: format!("empty range {lo}..{hi}"),
                        });
                    }
                }
                for (i, s) in f.series.iter().enumerate() {
                    let field = format!("{field}.series[{i}]");
                    count(&format!("{field}.points"), s.points.len(), MAX_SERIES_LEN)?;
                    for (k, p) in s.points.iter().enumerate() {
                        let field = format!("{field}.points[{k}]");
                        finite(&format!("{field}.x"), p.x)?;
                        finite(&format!("{field}.y"), p.y)?;
                        if let Some(lo) = p.lo {
                            finite(&format!("{field}.lo"), lo)?;
                        }
                        if let Some(hi) = p.hi {
                            finite(&format!("{field}.hi"), hi)?;
                        }
                    }
                }
                for (j, m) in f.marks.iter().enumerate() {
                    self.validate_mark(&format!("{field}.marks[{j}]"), m)?;
                }
            }
            FigureKind::PValueQq(f) => {
                count(&format!("{field}.series"), f.series.len(), MAX_SERIES)?;
                for (i, s) in f.series.iter().enumerate() {
                    let field = format!("{field}.series[{i}].p_values");
                    count(&field, s.p_values.len(), MAX_SERIES_LEN)?;
                    for (k, &p) in s.p_values.iter().enumerate() {
                        unit(&format!("{field}[{k}]"), p)?;
                    }
                }
            }
            FigureKind::SpecificationCurve(f) => {
                if self
                    .computed
                    .specification_curve
                    .iter()
                    .all(|s| s.score.is_none())
                {
                    return Err(Error::Empty {
                        field: "computed.specification_curve (scores)".into(),
                    });
                }
                for (j, m) in f.marks.iter().enumerate() {
                    self.validate_mark(&format!("{field}.marks[{j}]"), m)?;
                }
            }
        }
        Ok(())
    }
}

impl Provenance {
    fn validate(&self) -> Result<()> {
        non_empty("provenance.tool", &self.tool)?;
        non_empty("provenance.version", &self.version)?;
        for (i, f) in self.inputs.iter().enumerate() {
            non_empty(&format!("provenance.inputs[{i}].path"), &f.path)?;
            sha256(&format!("provenance.inputs[{i}].sha256"), &f.sha256)?;
        }
        Ok(())
    }
}

impl Published {
    fn validate(&self, field: &str) -> Result<()> {
        non_empty(&format!("{field}.id"), &self.id)?;
        non_empty(&format!("{field}.label"), &self.label)?;
        non_empty(&format!("{field}.short_label"), &self.short_label)?;
        non_empty(&format!("{field}.citation.source"), &self.citation.source)?;
        if let Some(v) = self.value {
            finite(&format!("{field}.value"), v)?;
        }
        if self.value.is_none() && !matches!(self.text.as_deref(), Some(t) if !t.trim().is_empty())
        {
            return Err(Error::Empty {
                field: format!("{field}.value or {field}.text"),
            });
        }
        Ok(())
    }
}

fn non_empty(field: &str, s: &str) -> Result<()> {
    if s.trim().is_empty() {
        return Err(Error::Empty {
            field: field.to_string(),
        });
    }
    Ok(())
}

fn finite(field: &str, x: f64) -> Result<()> {
    if !x.is_finite() {
        return Err(Error::NonFinite {
            field: field.to_string(),
            value: format!("{x}"),
        });
    }
    Ok(())
}

fn all_finite(field: &str, xs: &[f64]) -> Result<()> {
    for (i, &x) in xs.iter().enumerate() {
        finite(&format!("{field}[{i}]"), x)?;
    }
    Ok(())
}

fn range(field: &str, x: f64, lo: f64, hi: f64, shown: &str) -> Result<()> {
    finite(field, x)?;
    if !(lo..=hi).contains(&x) {
        return Err(Error::OutOfRange {
            field: field.to_string(),
            value: format!("{x}"),
            range: shown.to_string(),
        });
    }
    Ok(())
}

fn unit(field: &str, x: f64) -> Result<()> {
    range(field, x, 0.0, 1.0, "[0, 1]")
}

fn opt_unit(field: &str, x: Option<f64>) -> Result<()> {
    x.map_or(Ok(()), |x| unit(field, x))
}

fn interval(field: &str, iv: &Interval, probability: bool) -> Result<()> {
    if probability {
        unit(&format!("{field}.lo"), iv.lo)?;
        unit(&format!("{field}.hi"), iv.hi)?;
    } else {
        finite(&format!("{field}.lo"), iv.lo)?;
        finite(&format!("{field}.hi"), iv.hi)?;
    }
    if iv.lo > iv.hi {
        return Err(Error::Inconsistent {
            field: field.to_string(),
            reason: format!("lo {} is above hi {}", iv.lo, iv.hi),
        });
    }
    if !(iv.level > 0.0 && iv.level < 1.0) {
        return Err(Error::OutOfRange {
            field: format!("{field}.level"),
            value: format!("{}", iv.level),
            range: "(0, 1)".into(),
        });
    }
    Ok(())
}

fn count(field: &str, found: usize, max: usize) -> Result<()> {
    if found > max {
        return Err(Error::TooLarge {
            field: field.to_string(),
            found,
            max,
        });
    }
    Ok(())
}

fn sha256(field: &str, s: &str) -> Result<()> {
    if s.len() != 64
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(Error::Inconsistent {
            field: field.to_string(),
            reason: format!("{s:?} is not a lower-case hex SHA-256 (64 characters)"),
        });
    }
    Ok(())
}

/// Whether `s` is a usable file-name stem: non-empty, at most 64 characters of `[a-z0-9_-]`.
pub(crate) fn is_stem(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn stem<'a>(field: &str, name: &'a str, seen: &mut BTreeSet<&'a str>) -> Result<()> {
    if !is_stem(name) {
        return Err(Error::BadName {
            field: field.to_string(),
            name: name.to_string(),
        });
    }
    if !seen.insert(name) {
        return Err(Error::Duplicate {
            field: field.to_string(),
            name: name.to_string(),
        });
    }
    Ok(())
}
