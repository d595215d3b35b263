//! Render nullprint results as a report a reviewer can read, check and cite.
//!
//! The caller fills one [`Report`] (a plain serde struct: the claim with its citation, a
//! three-part verdict, computed null results, rate tables, the specification curve, the panel,
//! figure data and provenance) and calls [`write_report`], which writes one directory:
//!
//! | file | what |
//! |---|---|
//! | `index.html` | one self-contained page: inline SVG and CSS, no script, no network |
//! | `report.md` | the same content for GitHub, figures linked as `figures/*.svg` |
//! | `report.json` | the [`Report`] itself: every number |
//! | `*.csv` | each table |
//! | `figures/NAME.svg`, `figures/NAME.csv` | each figure and the data it draws |
//! | `files.sha256` | SHA-256 of every other file (`sha256sum -c files.sha256`) |
//!
//! Rendering ([`render`]) is pure: the same `Report` gives byte-identical files. Published
//! figures are set apart from computed numbers in every format (italic, dashed underline and a
//! citation number in HTML; italic with a footnote in Markdown; dashed vermillion lines in
//! figures), and an undefined value prints as "—", never NaN.
#![deny(missing_docs)]

mod cite;
mod csv_out;
pub mod demo;
pub mod error;
mod figures;
pub mod fmt;
mod html;
mod markdown;
pub mod model;
mod tables;
mod validate;
mod write;

use sha2::{Digest, Sha256};

pub use error::{Error, Result};
pub use model::*;
pub use validate::{MAX_HEATMAP_MODELS, MAX_SERIES, MAX_SERIES_LEN, MAX_SPECS};
pub use write::write_report;

/// One rendered file: a path relative to the report directory ('/'-separated) and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputFile {
    /// Relative path, e.g. `figures/null.svg`.
    pub path: String,
    /// Contents.
    pub bytes: Vec<u8>,
}

/// Name of the manifest listing every other file's SHA-256.
pub const MANIFEST: &str = "files.sha256";

/// Render every file of the report directory in memory, in a fixed order, the manifest last.
/// Validates the report first; nothing is rendered from an invalid report.
pub fn render(report: &Report) -> Result<Vec<OutputFile>> {
    report.validate()?;
    let cites = cite::Citations::new(report);
    let figures = figures::render(report, &cites)?;
    let csvs = tables::csv_files(report)?;
    let digest = report.content_digest()?;
    let ctx = RenderCtx {
        report,
        cites: &cites,
        figures: &figures,
        csvs: &csvs,
        digest: &digest,
    };

    let mut files = vec![
        OutputFile {
            path: "index.html".into(),
            bytes: html::render(&ctx).into_bytes(),
        },
        OutputFile {
            path: "report.md".into(),
            bytes: markdown::render(&ctx).into_bytes(),
        },
        OutputFile {
            path: "report.json".into(),
            bytes: report.to_json()?.into_bytes(),
        },
    ];
    files.extend(csvs.iter().map(|(name, bytes)| OutputFile {
        path: name.clone(),
        bytes: bytes.clone(),
    }));
    for f in &figures {
        files.push(OutputFile {
            path: format!("figures/{}.svg", f.name),
            bytes: f.svg.clone().into_bytes(),
        });
        files.push(OutputFile {
            path: format!("figures/{}.csv", f.name),
            bytes: f.csv.clone(),
        });
    }
    let manifest: String = files
        .iter()
        .map(|f| format!("{}  {}\n", hex(&Sha256::digest(&f.bytes)), f.path))
        .collect();
    files.push(OutputFile {
        path: MANIFEST.into(),
        bytes: manifest.into_bytes(),
    });
    Ok(files)
}

/// What the HTML and Markdown renderers share.
pub(crate) struct RenderCtx<'a> {
    pub report: &'a Report,
    pub cites: &'a cite::Citations,
    pub figures: &'a [figures::RenderedFigure],
    pub csvs: &'a [(String, Vec<u8>)],
    pub digest: &'a str,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Report {
    /// The report as pretty-printed JSON (the contents of `report.json`), ending in a newline.
    pub fn to_json(&self) -> Result<String> {
        let mut s = serde_json::to_string_pretty(self)?;
        s.push('\n');
        Ok(s)
    }

    /// Parse `report.json`, rejecting other schema versions and invalid contents.
    pub fn from_json(text: &str) -> Result<Self> {
        #[derive(serde::Deserialize)]
        struct Version {
            schema_version: u32,
        }
        let v: Version = serde_json::from_str(text)?;
        if v.schema_version != SCHEMA_VERSION {
            return Err(Error::SchemaVersion {
                found: v.schema_version,
                expected: SCHEMA_VERSION,
            });
        }
        let report: Report = serde_json::from_str(text)?;
        report.validate()?;
        Ok(report)
    }

    /// SHA-256 (hex) of the report's JSON with the timestamp removed: two runs of the same
    /// analysis have the same digest, so a reader can cite it.
    pub fn content_digest(&self) -> Result<String> {
        let mut r = self.clone();
        r.provenance.timestamp = None;
        Ok(hex(&Sha256::digest(r.to_json()?.as_bytes())))
    }
}
