//! Numbered citations and the rich-text spans that keep published figures visibly apart from
//! computed numbers in every rendering.

use crate::model::{Citation, Mark, Published, Report};

/// The report's distinct citations, numbered from 1 in order of first appearance (the claim's
/// first, then the published figures in order).
#[derive(Debug)]
pub(crate) struct Citations {
    list: Vec<Citation>,
}

impl Citations {
    /// Collect the citations of a validated report.
    pub(crate) fn new(report: &Report) -> Self {
        let mut list: Vec<Citation> = Vec::new();
        for (_, p) in report.all_published() {
            if !list.contains(&p.citation) {
                list.push(p.citation.clone());
            }
        }
        Self { list }
    }

    /// The number of a citation (1-based); 0 only for a citation not in the report.
    pub(crate) fn number(&self, c: &Citation) -> usize {
        self.list.iter().position(|x| x == c).map_or(0, |i| i + 1)
    }

    /// All citations with their numbers.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (usize, &Citation)> {
        self.list.iter().enumerate().map(|(i, c)| (i + 1, c))
    }
}

/// A piece of rich text: plain text, a computed number, or a published figure with its citation
/// number. HTML and Markdown render each kind distinctly.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Span {
    /// Plain text.
    Text(String),
    /// A number computed by nullprint, already formatted.
    Computed(String),
    /// Verbatim text shown in a monospace font (hashes, paths, commands).
    Code(String),
    /// A published figure, already formatted, with its citation number.
    Published {
        /// The figure as shown.
        shown: String,
        /// Citation number.
        cite: usize,
    },
}

/// A published figure as shown: its worded text when given, else its value.
pub(crate) fn published_shown(p: &Published) -> String {
    match (&p.text, p.value) {
        (Some(t), _) if !t.trim().is_empty() => t.clone(),
        (_, Some(v)) => crate::fmt::num(v),
        _ => crate::fmt::MISSING.to_string(),
    }
}

/// A mark resolved to its value, its label and (for published marks) its citation number.
#[derive(Debug, Clone)]
pub(crate) struct ResolvedMark {
    /// The value.
    pub value: f64,
    /// Label, e.g. "published claim" or "observed: a vs b".
    pub label: String,
    /// Citation number when the mark is a published figure.
    pub cite: Option<usize>,
}

impl ResolvedMark {
    /// Resolve a mark of a validated report (`None` only for a dangling reference, which
    /// validation rejects).
    pub(crate) fn new(report: &Report, cites: &Citations, mark: &Mark) -> Option<Self> {
        match mark {
            Mark::Published { id } => {
                let p = report.published_by_id(id)?;
                Some(Self {
                    value: p.value?,
                    label: p.short_label.clone(),
                    cite: Some(cites.number(&p.citation)),
                })
            }
            Mark::Computed { label, value } => Some(Self {
                value: *value,
                label: label.clone(),
                cite: None,
            }),
        }
    }

    /// Text drawn next to the mark on a figure: label, value and, for published figures, the
    /// citation number.
    pub(crate) fn figure_label(&self) -> String {
        match self.cite {
            Some(c) => format!("{} {} [{c}]", self.label, crate::fmt::num(self.value)),
            None => format!("{} {}", self.label, crate::fmt::num(self.value)),
        }
    }

    /// The mark as rich text.
    pub(crate) fn span(&self) -> Span {
        match self.cite {
            Some(cite) => Span::Published {
                shown: crate::fmt::num(self.value),
                cite,
            },
            None => Span::Computed(crate::fmt::num(self.value)),
        }
    }
}
