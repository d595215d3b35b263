//! `index.html`: one self-contained page (inline CSS and SVG, no script, no network) laid out
//! verdict first, then the claim against the nulls, figures, tables and the reproducibility
//! block.

use std::fmt::Write as _;

use crate::cite::{published_shown, Span};
use crate::fmt::{self, html as esc};
use crate::tables::{self, DisplayTable};
use crate::RenderCtx;

/// Tables with more rows than this are folded into a `<details>` element.
const FOLD_ROWS: usize = 24;

const CSS: &str = r#"
:root { --ink:#222; --muted:#5f5f5f; --rule:#ddd; --bg:#fff; --soft:#f6f7f9;
  --pub:#d55e00; --pub-bg:#fff4ec; --blue:#0072b2; --green:#009e73; }
* { box-sizing: border-box; }
html { background: var(--bg); }
body { margin: 0; color: var(--ink); font: 16px/1.55 "DejaVu Sans", "Liberation Sans", system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; }
main { max-width: 980px; margin: 0 auto; padding: 28px 28px 64px; }
header .kicker { margin: 0; color: var(--muted); font-size: 13px; letter-spacing: .08em; text-transform: uppercase; }
h1 { font-size: 30px; line-height: 1.25; margin: 4px 0 6px; }
h2 { font-size: 22px; margin: 42px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--rule); }
h3 { font-size: 17px; margin: 26px 0 6px; }
p { margin: 8px 0; }
a { color: var(--blue); }
.meta { color: var(--muted); font-size: 13px; margin: 0 0 12px; }
.banner { background: #fff8d6; border: 2px solid #e6b800; padding: 10px 14px; font-weight: bold; border-radius: 4px; margin: 14px 0; }
.verdict { display: grid; gap: 10px; margin: 18px 0 8px; }
.verdict > div { border-left: 6px solid var(--blue); background: var(--soft); padding: 10px 16px; border-radius: 0 4px 4px 0; }
.verdict > div.claimed { border-color: #888; }
.verdict > div.cannot { border-color: var(--pub); }
.verdict h3 { margin: 0 0 2px; font-size: 13px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); }
.verdict p { margin: 0; font-size: 17px; }
.verdict > div.answer { border-color: var(--blue); }
.verdict p.answer { font-size: 20px; font-weight: 600; }
.verdict ul.findings { margin: 8px 0 4px; padding-left: 20px; font-size: 16px; }
.verdict ul.findings li { margin: 4px 0; }
.verdict p.more { font-size: 14px; margin-top: 6px; }
.howto { font-size: 14px; color: var(--muted); border: 1px solid var(--rule); border-radius: 4px; padding: 8px 12px; margin: 14px 0; }
nav ol { columns: 2; font-size: 14px; margin: 6px 0; padding-left: 22px; }
@media (max-width: 640px) { nav ol { columns: 1; } main { padding: 16px 14px 48px; } .verdict p.answer { font-size: 18px; } }
.claim { font-size: 17px; }
.pub { font-style: italic; background: var(--pub-bg); border-bottom: 2px dashed var(--pub); padding: 0 .15em; white-space: nowrap; }
.pub sup { font-style: normal; font-size: 11px; }
.pub sup a { text-decoration: none; color: var(--pub); }
.badge { font-style: normal; font-size: 10px; font-weight: bold; letter-spacing: .06em; text-transform: uppercase; color: #fff; background: var(--pub); border-radius: 3px; padding: 1px 5px; margin-left: 4px; vertical-align: 2px; }
.num { font-variant-numeric: tabular-nums; }
code, pre { font-family: "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace; font-size: 13px; }
td code { word-break: break-all; font-size: 12px; }
pre { background: var(--soft); border: 1px solid var(--rule); border-radius: 4px; padding: 10px 12px; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
.scroll { overflow-x: auto; margin: 8px 0 4px; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
caption { caption-side: top; text-align: left; color: var(--muted); font-size: 13px; padding: 0 0 6px; }
th { text-align: left; font-weight: bold; border-bottom: 2px solid #999; padding: 6px 8px; vertical-align: bottom; }
td { border-bottom: 1px solid var(--rule); padding: 5px 8px; vertical-align: top; }
tbody tr:nth-child(even) td { background: #fafafa; }
th.n, td.n { text-align: right; }
td.n { font-variant-numeric: tabular-nums; }
.csv { font-size: 12px; color: var(--muted); margin: 0 0 10px; }
figure { margin: 26px 0; }
figure .plot { max-width: 720px; margin: 0 auto; border: 1px solid var(--rule); border-radius: 4px; overflow: hidden; }
figure svg { display: block; width: 100%; height: auto; }
figcaption { max-width: 720px; margin: 8px auto 0; font-size: 14px; color: #333; }
details summary { cursor: pointer; color: var(--blue); font-size: 14px; margin: 4px 0; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; font-size: 14px; }
dl.kv dt { color: var(--muted); }
dl.kv dd { margin: 0; }
ol.sources li { margin: 4px 0; font-size: 14px; }
footer { margin-top: 40px; font-size: 13px; color: var(--muted); border-top: 1px solid var(--rule); padding-top: 10px; }
@media print { figure, table { break-inside: avoid; } }
"#;

/// Rich text as HTML.
fn spans(out: &mut String, parts: &[Span]) {
    for s in parts {
        match s {
            Span::Text(t) => out.push_str(&esc(t)),
            Span::Computed(t) => {
                let _ = write!(out, "<span class=\"num\">{}</span>", esc(t));
            }
            Span::Code(t) => {
                let _ = write!(out, "<code>{}</code>", esc(t));
            }
            Span::Published { shown, cite } => {
                let _ = write!(
                    out,
                    "<span class=\"pub\" title=\"published figure, quoted from source [{cite}]; not computed by nullprint\">{}<sup><a href=\"#cite-{cite}\">[{cite}]</a></sup></span>",
                    esc(shown)
                );
            }
        }
    }
}

fn span_string(parts: &[Span]) -> String {
    let mut s = String::new();
    spans(&mut s, parts);
    s
}

fn table(out: &mut String, t: &DisplayTable) {
    let _ = writeln!(
        out,
        "<h3 id=\"table-{}\">{}</h3>",
        esc(&t.id),
        esc(&t.title)
    );
    table_body(out, t);
}

/// A table without its heading (when the section heading already names it).
fn table_body(out: &mut String, t: &DisplayTable) {
    let folded = t.rows.len() > FOLD_ROWS;
    if folded {
        let _ = writeln!(
            out,
            "<details><summary>Show all {} rows</summary>",
            t.rows.len()
        );
    }
    out.push_str("<div class=\"scroll\"><table>\n");
    let _ = writeln!(out, "<caption>{}</caption>", span_string(&t.caption));
    out.push_str("<thead><tr>");
    for (i, h) in t.headers.iter().enumerate() {
        let class = if t.numeric.get(i).copied().unwrap_or(false) {
            " class=\"n\""
        } else {
            ""
        };
        let _ = write!(out, "<th{class}>{}</th>", esc(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &t.rows {
        out.push_str("<tr>");
        for (i, cell) in row.iter().enumerate() {
            let class = if t.numeric.get(i).copied().unwrap_or(false) {
                " class=\"n\""
            } else {
                ""
            };
            let _ = write!(out, "<td{class}>{}</td>", span_string(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
    if folded {
        out.push_str("</details>\n");
    }
    if let Some(csv) = &t.csv {
        let _ = writeln!(
            out,
            "<p class=\"csv\">Data: <a href=\"{0}\">{0}</a></p>",
            esc(csv)
        );
    }
}

/// The three-part explanation of a verdict.
/// Figure `i` (0-based): the inline SVG, then its numbered caption and files.
fn figure(o: &mut String, i: usize, f: &crate::figures::RenderedFigure) {
    let _ = writeln!(
        o,
        "<figure id=\"fig-{}\">\n<div class=\"plot\">",
        esc(&f.name)
    );
    o.push_str(&f.svg);
    let _ = write!(
        o,
        "</div>\n<figcaption><strong>Figure {}. {}.</strong> {} <span class=\"csv\">Files: <a href=\"figures/{n}.svg\">figures/{n}.svg</a>, data <a href=\"figures/{n}.csv\">figures/{n}.csv</a>.</span></figcaption>\n</figure>\n",
        i + 1,
        esc(f.title.trim_end_matches('.')),
        span_string(&f.caption),
        n = esc(&f.name),
    );
}

fn verdict_parts(o: &mut String, v: &crate::model::Verdict) {
    for (class, head, text) in [
        ("claimed", "What was claimed", &v.claimed),
        ("nulls", "What the nulls say", &v.nulls_say),
        ("cannot", "What this test cannot say", &v.cannot_say),
    ] {
        let _ = writeln!(
            o,
            "<div class=\"{class}\"><h3>{head}</h3><p>{}</p></div>",
            esc(text)
        );
    }
}

/// Render the page.
pub(crate) fn render(ctx: &RenderCtx) -> String {
    let r = ctx.report;
    let p = &r.provenance;
    let mut o = String::with_capacity(64 * 1024);
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    o.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(
        o,
        "<meta name=\"generator\" content=\"{} {}\">",
        esc(&p.tool),
        esc(&p.version)
    );
    let _ = writeln!(o, "<title>{}</title>", esc(&r.title));
    let _ = writeln!(o, "<style>{CSS}</style>\n</head>\n<body>\n<main>");

    // Header.
    o.push_str("<header>\n<p class=\"kicker\">nullprint report</p>\n");
    let _ = writeln!(o, "<h1>{}</h1>", esc(&r.title));
    let _ = write!(
        o,
        "<p class=\"meta\">Computed by {} {}",
        esc(&p.tool),
        esc(&p.version)
    );
    if let Some(ts) = &p.timestamp {
        let _ = write!(o, " · generated {}", esc(ts));
    }
    let _ = writeln!(
        o,
        " · content digest <code>sha256:{}</code></p>\n</header>",
        &ctx.digest[..16]
    );
    if let Some(b) = &r.banner {
        let _ = writeln!(o, "<p class=\"banner\">{}</p>", esc(b));
    }

    // Verdict: the answer and its findings; the long explanation follows the nulls table.
    let v = &r.verdict;
    let short = !v.answer.is_empty();
    o.push_str("<section id=\"verdict\">\n<h2>Verdict</h2>\n<div class=\"verdict\">\n");
    if short {
        let _ = write!(
            o,
            "<div class=\"answer\"><p class=\"answer\">{}</p>",
            esc(&v.answer)
        );
        if !v.findings.is_empty() {
            o.push_str("<ul class=\"findings\">");
            for f in &v.findings {
                let _ = write!(o, "<li>{}", esc(&f.text));
                if let Some(a) = &f.anchor {
                    let _ = write!(
                        o,
                        " <a href=\"#{}\">{}</a>",
                        esc(a),
                        esc(f.anchor_label.as_deref().unwrap_or("details"))
                    );
                }
                o.push_str("</li>");
            }
            o.push_str("</ul>");
        }
        if let Some(f) = crate::markdown::headline(ctx) {
            figure(&mut o, 0, f);
        }
        o.push_str(
            "<p class=\"more\"><a href=\"#verdict-details\">The verdict in full</a></p></div>\n",
        );
    } else {
        verdict_parts(&mut o, v);
    }
    o.push_str("</div>\n");
    o.push_str("<p class=\"howto\">How to read the numbers: <span class=\"pub\">0.000<sup>[n]</sup></span> with a dashed underline is a <strong>published figure</strong>, quoted from source [n] and not computed here (dashed vermillion lines in figures). Every other number was computed by nullprint from the input files listed under <a href=\"#reproduce\">Reproduce</a>. “—” marks a value that is not defined (for example a p-value with no draws).</p>\n");

    // Contents.
    let mut toc: Vec<(String, String)> =
        vec![("claim".into(), "The claim against the nulls".into())];
    for (i, f) in ctx.figures.iter().enumerate() {
        toc.push((
            format!("fig-{}", f.name),
            format!("Figure {}: {}", i + 1, f.title),
        ));
    }
    toc.push(("tables".into(), "Tables".into()));
    toc.push(("published".into(), "Published figures".into()));
    toc.push(("reproduce".into(), "Reproduce".into()));
    toc.push(("sources".into(), "Sources".into()));
    o.push_str("<nav><ol>");
    for (id, label) in &toc {
        let _ = write!(o, "<li><a href=\"#{}\">{}</a></li>", esc(id), esc(label));
    }
    o.push_str("</ol></nav>\n</section>\n");

    // The claim against the nulls.
    o.push_str("<section id=\"claim\">\n<h2>The claim against the nulls</h2>\n");
    let stat = &r.claim.statistic;
    let _ = writeln!(o, "<p class=\"claim\">{}</p>", esc(&r.claim.text));
    let shown = span_string(&[Span::Published {
        shown: published_shown(stat),
        cite: ctx.cites.number(&stat.citation),
    }]);
    let _ = writeln!(
        o,
        "<p>Claimed: {}: {shown}<span class=\"badge\">published</span></p>",
        esc(&stat.label)
    );
    if let Some(t) = tables::nulls_table(r, ctx.cites) {
        table(&mut o, &t);
    }
    o.push_str("</section>\n");
    if short {
        o.push_str("<section id=\"verdict-details\">\n<h2>The verdict in full</h2>\n<div class=\"verdict\">\n");
        verdict_parts(&mut o, v);
        o.push_str("</div>\n</section>\n");
    }

    // Figures.
    // The headline figure is shown with the verdict; the others here, numbered after it.
    let skip = usize::from(crate::markdown::headline(ctx).is_some());
    if ctx.figures.len() > skip {
        o.push_str("<section id=\"figures\">\n<h2>Figures</h2>\n");
        for (i, f) in ctx.figures.iter().enumerate().skip(skip) {
            figure(&mut o, i, f);
        }
        o.push_str("</section>\n");
    }

    // Tables.
    o.push_str("<section id=\"tables\">\n<h2>Tables</h2>\n");
    let mut any = false;
    for t in tables::rate_tables(r, ctx.cites)
        .iter()
        .chain(tables::spec_table(r).iter())
        .chain(tables::panel_table(r).iter())
        .chain(tables::generic_tables(r).iter())
    {
        table(&mut o, t);
        any = true;
    }
    if !any {
        o.push_str("<p>No further tables.</p>\n");
    }
    o.push_str("</section>\n");

    // Published figures.
    o.push_str("<section id=\"published\">\n<h2>Published figures</h2>\n");
    table_body(&mut o, &tables::published_table(r, ctx.cites));
    o.push_str("</section>\n");

    // Reproduce.
    o.push_str("<section id=\"reproduce\">\n<h2>Reproduce</h2>\n");
    if !p.reproduce.is_empty() {
        o.push_str("<p>Run, from a clone of the repository:</p>\n<pre><code>");
        for c in &p.reproduce {
            let _ = writeln!(o, "{}", esc(c));
        }
        o.push_str("</code></pre>\n");
    }
    o.push_str("<dl class=\"kv\">\n");
    let _ = writeln!(
        o,
        "<dt>tool</dt><dd>{} {}</dd>",
        esc(&p.tool),
        esc(&p.version)
    );
    if !p.command_line.is_empty() {
        let _ = writeln!(
            o,
            "<dt>command line</dt><dd><code>{}</code></dd>",
            esc(&shell_join(&p.command_line))
        );
    }
    for s in &p.seeds {
        let _ = writeln!(
            o,
            "<dt>seed: {}</dt><dd><code>{}</code></dd>",
            esc(&s.label),
            s.value
        );
    }
    for kv in &p.environment {
        let _ = writeln!(o, "<dt>{}</dt><dd>{}</dd>", esc(&kv.key), esc(&kv.value));
    }
    let _ = writeln!(
        o,
        "<dt>timestamp</dt><dd>{}</dd>",
        p.timestamp
            .as_deref()
            .map_or_else(|| "not recorded".to_string(), esc)
    );
    let _ = writeln!(
        o,
        "<dt>content digest</dt><dd><code>sha256:{}</code><br><small>SHA-256 of report.json with the timestamp removed: cite it to name exactly these numbers.</small></dd>",
        ctx.digest
    );
    o.push_str("</dl>\n");
    if let Some(t) = tables::inputs_table(r) {
        table(&mut o, &t);
    }
    o.push_str("<h3>Files of this report</h3>\n<p>Every number is in <a href=\"report.json\">report.json</a>; tables as CSV: ");
    let links: Vec<String> = ctx
        .csvs
        .iter()
        .map(|(n, _)| format!("<a href=\"{0}\">{0}</a>", esc(n)))
        .collect();
    o.push_str(&links.join(", "));
    let _ = writeln!(
        o,
        "; each figure as <code>figures/NAME.svg</code> with its data in <code>figures/NAME.csv</code>. <code>{}</code> lists the SHA-256 of every file: check them with <code>sha256sum -c {}</code>.</p>",
        crate::MANIFEST,
        crate::MANIFEST
    );
    o.push_str("</section>\n");

    // Sources.
    o.push_str("<section id=\"sources\">\n<h2>Sources</h2>\n<ol class=\"sources\">\n");
    for (n, c) in ctx.cites.iter() {
        let _ = write!(o, "<li id=\"cite-{n}\">{}", esc(&c.source));
        match &c.url {
            // Only web links become links; anything else (javascript:, data:) stays text.
            Some(u) if u.starts_with("https://") || u.starts_with("http://") => {
                let _ = write!(o, " <a href=\"{0}\">{0}</a>", esc(u));
            }
            Some(u) => {
                let _ = write!(o, " {}", esc(u));
            }
            None => {}
        }
        o.push_str("</li>\n");
    }
    o.push_str("</ol>\n</section>\n");
    let _ = writeln!(
        o,
        "<footer>Rendered by nullprint-report (schema version {}). Displayed numbers are rounded; report.json and the CSV files keep full precision. {} marks an undefined value.</footer>",
        r.schema_version,
        fmt::MISSING
    );
    o.push_str("</main>\n</body>\n</html>\n");
    o
}

/// Join arguments into one shell-readable line, single-quoting those that need it.
pub(crate) fn shell_join(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            let plain = !a.is_empty()
                && a.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
            if plain {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
