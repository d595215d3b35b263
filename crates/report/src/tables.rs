//! The report's tables twice over: as CSV files with full-precision numbers, and as display
//! tables of rich-text cells that the HTML and Markdown renderers lay out.

use crate::cite::{published_shown, Citations, ResolvedMark, Span};
use crate::error::{Error, Result};
use crate::fmt;
use crate::model::{Cell, Interval, RateTable, Report};

/// A table ready for display.
pub(crate) struct DisplayTable {
    /// Anchor id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Caption.
    pub caption: Vec<Span>,
    /// Column headers.
    pub headers: Vec<String>,
    /// Which columns hold numbers (right-aligned).
    pub numeric: Vec<bool>,
    /// Rows of cells, each cell a list of spans.
    pub rows: Vec<Vec<Vec<Span>>>,
    /// The CSV file holding the same data, if any.
    pub csv: Option<String>,
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
}

fn t(s: impl Into<String>) -> Vec<Span> {
    vec![Span::Text(s.into())]
}

fn c(s: impl Into<String>) -> Vec<Span> {
    vec![Span::Computed(s.into())]
}

/// The interval kind shared by every interval of a column (`95% Wilson`), if there is one.
fn shared_kind<'a>(ivs: impl Iterator<Item = Option<&'a Interval>>) -> Option<String> {
    let kinds: Vec<String> = ivs.flatten().map(fmt::interval_kind).collect();
    let first = kinds.first()?;
    kinds.iter().all(|k| k == first).then(|| first.clone())
}

/// An interval cell; the kind is repeated in the cell only when the column has no shared kind.
fn interval_cell(iv: Option<&Interval>, percent: bool, shared: bool) -> Vec<Span> {
    match iv {
        Some(iv) if shared => c(fmt::interval(iv, percent)),
        Some(iv) => vec![
            Span::Computed(fmt::interval(iv, percent)),
            Span::Text(format!(" {}", fmt::interval_kind(iv))),
        ],
        None => c(fmt::MISSING),
    }
}

fn interval_header(what: &str, kind: &Option<String>) -> String {
    match kind {
        Some(k) => format!("{k} interval{what}"),
        None => format!("interval{what}"),
    }
}

/// The tables shown in the "claim against the nulls" section.
pub(crate) fn nulls_table(report: &Report, cites: &Citations) -> Option<DisplayTable> {
    let nulls = &report.computed.nulls;
    if nulls.is_empty() {
        return None;
    }
    let kind = shared_kind(nulls.iter().map(|n| n.interval.as_ref()));
    let rows = nulls
        .iter()
        .map(|n| {
            let tested = match n
                .tested
                .as_ref()
                .and_then(|m| ResolvedMark::new(report, cites, m))
            {
                Some(m) => vec![Span::Text(format!("{}: ", m.label)), m.span()],
                None => c(fmt::MISSING),
            };
            vec![
                t(&n.name),
                t(&n.preserves),
                t(&n.destroys),
                tested,
                c(format!("{} of {}", fmt::count(n.exceed), fmt::count(n.n))),
                c(fmt::p_value(n.p, n.log10_p)),
                t(caveats(n)),
                interval_cell(n.interval.as_ref(), false, kind.is_some()),
                c(n.mc_error
                    .map_or_else(|| fmt::MISSING.to_string(), |e| fmt::sig(e, 2))),
                n.seed.map_or_else(
                    || t("none (exhaustive)"),
                    |s| vec![Span::Code(s.to_string())],
                ),
            ]
        })
        .collect();
    Some(DisplayTable {
        id: "nulls".into(),
        title: "Null tests".into(),
        caption: t("Each null keeps some structure of real fingerprints and destroys the rest; p is the share of null draws at least as high as the tested value."),
        headers: [
            "null",
            "preserves",
            "destroys",
            "tested value",
            "draws at or above",
            "p",
            "caveats",
            &interval_header(" of p", &kind),
            "Monte Carlo error",
            "seed",
        ]
        .map(String::from)
        .to_vec(),
        numeric: vec![false, false, false, false, true, true, false, true, true, true],
        rows,
        csv: Some("nulls.csv".into()),
    })
}

/// A null's caveats as one cell: its notes, and its discarded draws when there are any.
fn caveats(n: &crate::model::NullResult) -> String {
    let mut parts: Vec<String> = n.notes.clone();
    if n.discarded > 0 {
        parts.push(format!(
            "{} draws discarded (statistic undefined)",
            fmt::count(n.discarded)
        ));
    }
    if parts.is_empty() {
        fmt::MISSING.into()
    } else {
        parts.join(" ")
    }
}

fn rate_table(report: &Report, cites: &Citations, table: &RateTable, what: &str) -> DisplayTable {
    let kind = shared_kind(table.rows.iter().map(|r| r.interval.as_ref()));
    let rows = table
        .rows
        .iter()
        .map(|r| {
            let threshold = match r
                .threshold_source
                .as_deref()
                .and_then(|id| report.published_by_id(id))
            {
                Some(p) => vec![Span::Published {
                    shown: fmt::num(r.threshold),
                    cite: cites.number(&p.citation),
                }],
                None => c(fmt::num(r.threshold)),
            };
            vec![
                t(&r.label),
                threshold,
                c(fmt::rate(r.rate, r.count, r.n)),
                interval_cell(r.interval.as_ref(), true, kind.is_some()),
            ]
        })
        .collect();
    DisplayTable {
        id: table.name.clone(),
        title: table.title.clone(),
        caption: t(format!(
            "{} among {}; measure: {}. A row counts {}.",
            capitalize(what),
            table.population.trim_end_matches('.'),
            table.measure.trim_end_matches('.'),
            table
                .counts
                .as_deref()
                .unwrap_or("a pair whose score is at or above the threshold")
                .trim_end_matches('.')
        )),
        headers: ["row", "threshold", what, &interval_header("", &kind)]
            .map(String::from)
            .to_vec(),
        numeric: vec![false, true, true, true],
        rows,
        csv: Some(format!("{}.csv", table.name)),
    }
}

/// False-positive-rate and power tables.
pub(crate) fn rate_tables(report: &Report, cites: &Citations) -> Vec<DisplayTable> {
    let fpr = report
        .computed
        .false_positive_rates
        .iter()
        .map(|t| rate_table(report, cites, t, "false-positive rate"));
    let power = report
        .computed
        .power
        .iter()
        .map(|t| rate_table(report, cites, t, "detection rate (power)"));
    fpr.chain(power).collect()
}

/// The specification curve as a table, in the caller's order.
pub(crate) fn spec_table(report: &Report) -> Option<DisplayTable> {
    let rows = &report.computed.specification_curve;
    if rows.is_empty() {
        return None;
    }
    let dims = crate::figures::spec_dimensions(rows);
    let mut headers: Vec<String> = dims.iter().map(|(d, _)| d.clone()).collect();
    headers.push("score".into());
    let mut numeric = vec![false; dims.len()];
    numeric.push(true);
    let body = rows
        .iter()
        .map(|r| {
            let mut row: Vec<Vec<Span>> = dims
                .iter()
                .map(|(d, _)| {
                    t(r.choices
                        .iter()
                        .find(|c| c.dimension == *d)
                        .map_or(fmt::MISSING, |c| c.option.as_str()))
                })
                .collect();
            let mut score = c(fmt::opt_score(r.score));
            if r.headline {
                score.insert(0, Span::Text("published choices → ".into()));
            }
            row.push(score);
            row
        })
        .collect();
    Some(DisplayTable {
        id: "specification-curve".into(),
        title: "Specification curve".into(),
        caption: t("The score under every analysis choice considered; the row marked “published choices” follows the published method."),
        headers,
        numeric,
        rows: body,
        csv: Some("specification_curve.csv".into()),
    })
}

/// The panel listing.
pub(crate) fn panel_table(report: &Report) -> Option<DisplayTable> {
    let panel = &report.computed.panel;
    if panel.is_empty() {
        return None;
    }
    let rows = panel
        .iter()
        .map(|m| {
            vec![
                t(&m.model),
                t(&m.family),
                t(&m.root),
                t(&m.format),
                c(m.layers
                    .map_or_else(|| fmt::MISSING.to_string(), |l| l.to_string())),
                t(&m.source),
                vec![Span::Code(m.sha256.clone())],
            ]
        })
        .collect();
    Some(DisplayTable {
        id: "panel".into(),
        title: "Panel of models".into(),
        caption: t("Models whose fingerprints form the panel; pairs with different root base models count as unrelated."),
        headers: ["model", "family", "root base", "format", "layers", "source", "SHA-256"].map(String::from).to_vec(),
        numeric: vec![false, false, false, false, true, false, false],
        rows,
        csv: Some("panel.csv".into()),
    })
}

/// The caller's generic tables.
pub(crate) fn generic_tables(report: &Report) -> Vec<DisplayTable> {
    report
        .tables
        .iter()
        .map(|tb| {
            let numeric = (0..tb.headers.len())
                .map(|i| {
                    tb.rows
                        .iter()
                        .all(|r| !matches!(r.get(i), Some(Cell::Text(_))))
                        && !tb.rows.is_empty()
                })
                .collect();
            DisplayTable {
                id: tb.name.clone(),
                title: tb.title.clone(),
                caption: t(&tb.caption),
                headers: tb.headers.clone(),
                numeric,
                rows: tb
                    .rows
                    .iter()
                    .map(|r| {
                        r.iter()
                            .map(|cell| match cell {
                                Cell::Number(x) => c(fmt::num(*x)),
                                Cell::Text(s) => t(s),
                                Cell::Missing => c(fmt::MISSING),
                            })
                            .collect()
                    })
                    .collect(),
                csv: Some(format!("{}.csv", tb.name)),
            }
        })
        .collect()
}

/// Published figures, the claim's first.
pub(crate) fn published_table(report: &Report, cites: &Citations) -> DisplayTable {
    let rows = report
        .all_published()
        .map(|(_, p)| {
            vec![
                t(&p.label),
                vec![Span::Published {
                    shown: published_shown(p),
                    cite: cites.number(&p.citation),
                }],
                t(&p.citation.source),
            ]
        })
        .collect();
    DisplayTable {
        id: "published".into(),
        title: "Published figures".into(),
        caption: t("Quoted from their sources; none of these numbers was computed by nullprint."),
        headers: ["figure", "value", "source"].map(String::from).to_vec(),
        numeric: vec![false, true, false],
        rows,
        csv: Some("published.csv".into()),
    }
}

/// Input files.
pub(crate) fn inputs_table(report: &Report) -> Option<DisplayTable> {
    let inputs = &report.provenance.inputs;
    if inputs.is_empty() {
        return None;
    }
    Some(DisplayTable {
        id: "inputs".into(),
        title: "Input files".into(),
        caption: t("Every file the computed numbers were derived from, with its SHA-256."),
        headers: ["file", "what", "bytes", "SHA-256"]
            .map(String::from)
            .to_vec(),
        numeric: vec![false, false, true, false],
        rows: inputs
            .iter()
            .map(|f| {
                vec![
                    vec![Span::Code(f.path.clone())],
                    t(&f.description),
                    c(f.bytes.map_or_else(|| fmt::MISSING.to_string(), fmt::count)),
                    vec![Span::Code(f.sha256.clone())],
                ]
            })
            .collect(),
        csv: Some("inputs.csv".into()),
    })
}

struct Csv {
    name: String,
    w: crate::csv_out::CsvOut,
}

impl Csv {
    fn new(name: &str, header: &[&str]) -> Result<Self> {
        let mut c = Self {
            name: name.to_string(),
            w: crate::csv_out::CsvOut::new(),
        };
        c.row(header.iter().map(|s| s.to_string()).collect())?;
        Ok(c)
    }

    fn row(&mut self, rec: Vec<String>) -> Result<()> {
        self.w.write_record(&rec).map_err(|e| Error::Csv {
            file: self.name.clone(),
            source: e,
        })
    }

    fn finish(self) -> Result<(String, Vec<u8>)> {
        let name = self.name;
        let bytes = self.w.into_inner().map_err(|e| Error::Csv {
            file: name.clone(),
            source: e,
        })?;
        Ok((name, bytes))
    }
}

fn iv_cols(iv: Option<&Interval>) -> [String; 4] {
    match iv {
        Some(iv) => [
            fmt::csv_f64(iv.lo),
            fmt::csv_f64(iv.hi),
            fmt::csv_f64(iv.level),
            iv.method.clone(),
        ],
        None => Default::default(),
    }
}

/// Every table as a CSV file `(file name, bytes)`, full precision, empty cells for undefined
/// values. Sections without rows are skipped.
pub(crate) fn csv_files(report: &Report) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();

    let mut f = Csv::new(
        "published.csv",
        &[
            "id",
            "role",
            "label",
            "short_label",
            "value",
            "text",
            "source",
            "url",
        ],
    )?;
    for (field, p) in report.all_published() {
        let role = if field == "claim.statistic" {
            "claim"
        } else {
            "context"
        };
        f.row(vec![
            p.id.clone(),
            role.into(),
            p.label.clone(),
            p.short_label.clone(),
            fmt::csv_opt(p.value),
            p.text.clone().unwrap_or_default(),
            p.citation.source.clone(),
            p.citation.url.clone().unwrap_or_default(),
        ])?;
    }
    out.push(f.finish()?);

    if !report.computed.nulls.is_empty() {
        let mut f = Csv::new(
            "nulls.csv",
            &[
                "name",
                "preserves",
                "destroys",
                "tested_label",
                "tested_source",
                "tested_value",
                "n",
                "exceed",
                "p",
                "log10_p",
                "interval_lo",
                "interval_hi",
                "interval_level",
                "interval_method",
                "mc_error",
                "seed",
                "sampling",
                "discarded",
                "notes",
            ],
        )?;
        for n in &report.computed.nulls {
            let (label, source, value) = match &n.tested {
                Some(crate::model::Mark::Published { id }) => {
                    let p = report.published_by_id(id);
                    (
                        p.map(|p| p.short_label.clone()).unwrap_or_default(),
                        format!("published:{id}"),
                        fmt::csv_opt(p.and_then(|p| p.value)),
                    )
                }
                Some(crate::model::Mark::Computed { label, value }) => {
                    (label.clone(), "computed".into(), fmt::csv_f64(*value))
                }
                None => Default::default(),
            };
            let mut rec = vec![
                n.name.clone(),
                n.preserves.clone(),
                n.destroys.clone(),
                label,
                source,
                value,
                n.n.to_string(),
                n.exceed.to_string(),
                fmt::csv_opt(n.p),
                fmt::csv_opt(n.log10_p),
            ];
            rec.extend(iv_cols(n.interval.as_ref()));
            rec.push(fmt::csv_opt(n.mc_error));
            rec.push(n.seed.map(|s| s.to_string()).unwrap_or_default());
            rec.push(n.sampling.clone().unwrap_or_default());
            rec.push(n.discarded.to_string());
            rec.push(n.notes.join(" | "));
            f.row(rec)?;
        }
        out.push(f.finish()?);
    }

    for (kind, tables) in [
        ("false_positive_rate", &report.computed.false_positive_rates),
        ("power", &report.computed.power),
    ] {
        for tb in tables {
            let mut f = Csv::new(
                &format!("{}.csv", tb.name),
                &[
                    "kind",
                    "label",
                    "threshold",
                    "threshold_source",
                    "count",
                    "n",
                    "rate",
                    "interval_lo",
                    "interval_hi",
                    "interval_level",
                    "interval_method",
                ],
            )?;
            for r in &tb.rows {
                let mut rec = vec![
                    kind.to_string(),
                    r.label.clone(),
                    fmt::csv_f64(r.threshold),
                    r.threshold_source.clone().unwrap_or_default(),
                    r.count.to_string(),
                    r.n.to_string(),
                    fmt::csv_opt(r.rate),
                ];
                rec.extend(iv_cols(r.interval.as_ref()));
                f.row(rec)?;
            }
            out.push(f.finish()?);
        }
    }

    let specs = &report.computed.specification_curve;
    if !specs.is_empty() {
        let dims = crate::figures::spec_dimensions(specs);
        let mut header = vec!["index", "headline", "score"];
        header.extend(dims.iter().map(|(d, _)| d.as_str()));
        let mut f = Csv::new("specification_curve.csv", &header)?;
        for (i, s) in specs.iter().enumerate() {
            let mut rec = vec![i.to_string(), s.headline.to_string(), fmt::csv_opt(s.score)];
            for (d, _) in &dims {
                rec.push(
                    s.choices
                        .iter()
                        .find(|c| c.dimension == *d)
                        .map(|c| c.option.clone())
                        .unwrap_or_default(),
                );
            }
            f.row(rec)?;
        }
        out.push(f.finish()?);
    }

    if !report.computed.panel.is_empty() {
        let mut f = Csv::new(
            "panel.csv",
            &[
                "model", "family", "root", "format", "layers", "source", "sha256",
            ],
        )?;
        for m in &report.computed.panel {
            f.row(vec![
                m.model.clone(),
                m.family.clone(),
                m.root.clone(),
                m.format.clone(),
                m.layers.map(|l| l.to_string()).unwrap_or_default(),
                m.source.clone(),
                m.sha256.clone(),
            ])?;
        }
        out.push(f.finish()?);
    }

    if !report.provenance.inputs.is_empty() {
        let mut f = Csv::new("inputs.csv", &["path", "sha256", "bytes", "description"])?;
        for i in &report.provenance.inputs {
            f.row(vec![
                i.path.clone(),
                i.sha256.clone(),
                i.bytes.map(|b| b.to_string()).unwrap_or_default(),
                i.description.clone(),
            ])?;
        }
        out.push(f.finish()?);
    }

    for tb in &report.tables {
        let headers: Vec<&str> = tb.headers.iter().map(String::as_str).collect();
        let mut f = Csv::new(&format!("{}.csv", tb.name), &headers)?;
        for r in &tb.rows {
            f.row(
                r.iter()
                    .map(|cell| match cell {
                        Cell::Number(x) => fmt::csv_f64(*x),
                        Cell::Text(s) => s.clone(),
                        Cell::Missing => String::new(),
                    })
                    .collect(),
            )?;
        }
        out.push(f.finish()?);
    }
    Ok(out)
}
