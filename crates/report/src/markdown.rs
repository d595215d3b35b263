//! `report.md`: the page's content as GitHub-flavoured Markdown for pull-request review;
//! figures are linked as `figures/NAME.svg`, published figures are italic with a footnote.

use std::fmt::Write as _;

use crate::cite::{published_shown, Span};
use crate::figures::RenderedFigure;
use crate::fmt::{self, markdown as esc};
use crate::html::shell_join;
use crate::tables::{self, DisplayTable};
use crate::RenderCtx;

fn spans(parts: &[Span]) -> String {
    let mut out = String::new();
    for s in parts {
        match s {
            Span::Text(t) | Span::Computed(t) => out.push_str(&esc(t)),
            Span::Code(t) => out.push_str(&code(t)),
            Span::Published { shown, cite } => {
                let _ = write!(out, "*{}* (published[^{cite}])", esc(shown));
            }
        }
    }
    out
}

/// Inline code that survives backticks in the text (CommonMark: a longer fence).
fn code(t: &str) -> String {
    let t = t.replace(['\n', '\r'], " ").replace('|', "\\|");
    let mut fence = String::from("`");
    while t.contains(&fence) {
        fence.push('`');
    }
    let pad = if t.starts_with('`') || t.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{t}{pad}{fence}")
}

fn table(o: &mut String, t: &DisplayTable) {
    let _ = writeln!(o, "### {}\n", esc(&t.title));
    table_body(o, t);
}

/// A table without its heading (when the section heading already names it).
fn table_body(o: &mut String, t: &DisplayTable) {
    let caption = spans(&t.caption);
    if !caption.is_empty() {
        let _ = writeln!(o, "{caption}\n");
    }
    if t.headers.is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "| {} |",
        t.headers
            .iter()
            .map(|h| esc(h))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let aligns: Vec<&str> = (0..t.headers.len())
        .map(|i| {
            if t.numeric.get(i).copied().unwrap_or(false) {
                "---:"
            } else {
                "---"
            }
        })
        .collect();
    let _ = writeln!(o, "| {} |", aligns.join(" | "));
    for row in &t.rows {
        let cells: Vec<String> = row.iter().map(|c| spans(c)).collect();
        let _ = writeln!(o, "| {} |", cells.join(" | "));
    }
    o.push('\n');
    if let Some(csv) = &t.csv {
        let _ = writeln!(o, "Data: [{0}]({0})\n", csv);
    }
}

/// The verdict's headline figure, when it names one (validation makes it the first).
pub(crate) fn headline<'a>(ctx: &RenderCtx<'a>) -> Option<&'a RenderedFigure> {
    let name = ctx.report.verdict.figure.as_ref()?;
    ctx.figures.first().filter(|f| &f.name == name)
}

/// Figure `i` (0-based): the image, then its numbered caption and data file.
fn figure(o: &mut String, i: usize, f: &RenderedFigure) {
    let title = esc(f.title.trim_end_matches('.'));
    let _ = writeln!(o, "![Figure {}: {title}](figures/{}.svg)\n", i + 1, f.name);
    let _ = writeln!(
        o,
        "**Figure {}. {title}.** {} Data: [figures/{n}.csv](figures/{n}.csv)\n",
        i + 1,
        spans(&f.caption),
        n = f.name
    );
}

/// The three-part explanation of a verdict.
fn verdict_parts(o: &mut String, v: &crate::model::Verdict) {
    let _ = writeln!(o, "**What was claimed.** {}\n", esc(&v.claimed));
    let _ = writeln!(o, "**What the nulls say.** {}\n", esc(&v.nulls_say));
    let _ = writeln!(o, "**What this test cannot say.** {}\n", esc(&v.cannot_say));
}

/// Render the Markdown document.
pub(crate) fn render(ctx: &RenderCtx) -> String {
    let r = ctx.report;
    let p = &r.provenance;
    let mut o = String::with_capacity(32 * 1024);
    let _ = writeln!(o, "# {}\n", esc(&r.title));
    let _ = write!(o, "Computed by {} {}", esc(&p.tool), esc(&p.version));
    if let Some(ts) = &p.timestamp {
        let _ = write!(o, " · generated {}", esc(ts));
    }
    let _ = writeln!(o, " · content digest `sha256:{}`\n", &ctx.digest[..16]);
    if let Some(b) = &r.banner {
        let _ = writeln!(o, "> **{}**\n", esc(b));
    }

    o.push_str("## Verdict\n\n");
    let v = &r.verdict;
    let short = !v.answer.is_empty();
    if short {
        let _ = writeln!(o, "**{}**\n", esc(&v.answer));
        for f in &v.findings {
            let _ = write!(o, "- {}", esc(&f.text));
            if let Some(a) = &f.anchor {
                // Markdown viewers do not keep HTML ids: link the figure or table file.
                let target = if let Some(name) = a.strip_prefix("fig-") {
                    format!("figures/{name}.svg")
                } else if let Some(name) = a.strip_prefix("table-") {
                    format!("{name}.csv")
                } else {
                    format!("#{a}")
                };
                let _ = write!(
                    o,
                    " ([{}]({target}))",
                    esc(f.anchor_label.as_deref().unwrap_or("details"))
                );
            }
            o.push('\n');
        }
        if !v.findings.is_empty() {
            o.push('\n');
        }
        if let Some(f) = headline(ctx) {
            figure(&mut o, 0, f);
        }
        o.push_str("[The verdict in full](#the-verdict-in-full) follows the nulls table.\n\n");
    } else {
        verdict_parts(&mut o, v);
    }
    o.push_str("*How to read the numbers:* an italic number marked “(published)” with a footnote is quoted from that source, not computed here. Every other number was computed by nullprint from the input files listed under Reproduce. “—” marks a value that is not defined.\n\n");

    o.push_str("## The claim against the nulls\n\n");
    let _ = writeln!(o, "{}\n", esc(&r.claim.text));
    let stat = &r.claim.statistic;
    let _ = writeln!(
        o,
        "Claimed: {}: {}\n",
        esc(&stat.label),
        spans(&[Span::Published {
            shown: published_shown(stat),
            cite: ctx.cites.number(&stat.citation)
        }])
    );
    if let Some(t) = tables::nulls_table(r, ctx.cites) {
        table(&mut o, &t);
    }
    if short {
        o.push_str("## The verdict in full\n\n");
        verdict_parts(&mut o, v);
    }

    // The headline figure is shown with the verdict; the others here, numbered after it.
    let skip = usize::from(headline(ctx).is_some());
    if ctx.figures.len() > skip {
        o.push_str("## Figures\n\n");
        for (i, f) in ctx.figures.iter().enumerate().skip(skip) {
            figure(&mut o, i, f);
        }
    }

    o.push_str("## Tables\n\n");
    for t in tables::rate_tables(r, ctx.cites)
        .iter()
        .chain(tables::spec_table(r).iter())
        .chain(tables::panel_table(r).iter())
        .chain(tables::generic_tables(r).iter())
    {
        table(&mut o, t);
    }

    o.push_str("## Published figures\n\n");
    table_body(&mut o, &tables::published_table(r, ctx.cites));

    o.push_str("## Reproduce\n\n");
    if !p.reproduce.is_empty() {
        o.push_str("```sh\n");
        for c in &p.reproduce {
            let _ = writeln!(o, "{}", c.replace("```", "'''"));
        }
        o.push_str("```\n\n");
    }
    let _ = writeln!(o, "- tool: {} {}", esc(&p.tool), esc(&p.version));
    if !p.command_line.is_empty() {
        let _ = writeln!(o, "- command line: {}", code(&shell_join(&p.command_line)));
    }
    for s in &p.seeds {
        let _ = writeln!(o, "- seed, {}: `{}`", esc(&s.label), s.value);
    }
    for kv in &p.environment {
        let _ = writeln!(o, "- {}: {}", esc(&kv.key), esc(&kv.value));
    }
    let _ = writeln!(
        o,
        "- timestamp: {}",
        p.timestamp
            .as_deref()
            .map_or_else(|| "not recorded".to_string(), esc)
    );
    let _ = writeln!(
        o,
        "- content digest: `sha256:{}` (SHA-256 of report.json with the timestamp removed)\n",
        ctx.digest
    );
    if let Some(t) = tables::inputs_table(r) {
        table(&mut o, &t);
    }
    let links: Vec<String> = ctx
        .csvs
        .iter()
        .map(|(n, _)| format!("[{0}]({0})", n))
        .collect();
    let _ = writeln!(
        o,
        "Every number is in [report.json](report.json); tables as CSV: {}; each figure as `figures/NAME.svg` with its data in `figures/NAME.csv`. `{m}` lists the SHA-256 of every file (`sha256sum -c {m}`).\n",
        links.join(", "),
        m = crate::MANIFEST
    );

    o.push_str("## Sources\n\n");
    for (n, c) in ctx.cites.iter() {
        let _ = write!(o, "[^{n}]: {}", esc(&c.source));
        match &c.url {
            Some(u) if u.starts_with("https://") || u.starts_with("http://") => {
                let _ = write!(o, " <{}>", u.replace(['<', '>', ' '], ""));
            }
            Some(u) => {
                let _ = write!(o, " {}", esc(u));
            }
            None => {}
        }
        o.push('\n');
    }
    let _ = writeln!(
        o,
        "\n---\nRendered by nullprint-report (schema version {}). Displayed numbers are rounded; report.json and the CSV files keep full precision. {} marks an undefined value.",
        r.schema_version,
        fmt::MISSING
    );
    o
}
