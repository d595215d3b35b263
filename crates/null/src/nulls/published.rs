//! A published square similarity matrix (CSV), the input of a matrix null.
//!
//! Format: the first row holds the column model ids (its first cell is ignored), every other row
//! a model id and its similarities. Rows may come in any order but must name each column id
//! exactly once. Off-diagonal cells must be finite numbers within the range of every similarity
//! measure, [-1, 1] (cells that read as percentages say so), and the matrix symmetric to within
//! [`SYMMETRY_TOL`]; the two halves are averaged. A diagonal cell may be empty or text (`-`);
//! a number there must be a model's similarity with itself, 1 to within [`DIAGONAL_TOL`]: a
//! diagonal of 100 marks a matrix in percent, one of 0 a distance matrix. Errors name the file,
//! the line, the row and the column.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// Largest absolute difference allowed between `m[a][b]` and `m[b][a]` (published matrices are
/// printed with a few decimals).
pub const SYMMETRY_TOL: f64 = 1e-6;

/// Largest distance from 1 allowed for a numeric diagonal cell (published diagonals are printed
/// as `1`, `1.0` or `1.000`).
pub const DIAGONAL_TOL: f64 = 1e-6;

/// Most models in a matrix (25 million cells, 200 MB of f64).
pub const MAX_MATRIX_MODELS: usize = 5_000;

/// A validated symmetric similarity matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct SimilarityMatrix {
    source: String,
    ids: Vec<String>,
    values: Vec<f64>,
}

impl SimilarityMatrix {
    /// Build from ids and a full row-major matrix, checking shape, finiteness and symmetry.
    pub fn new(source: &str, ids: Vec<String>, values: Vec<f64>) -> Result<Self> {
        let n = ids.len();
        if n > MAX_MATRIX_MODELS {
            return Err(Error::TooLarge {
                what: format!("{source}: models"),
                n: n as u64,
                max: MAX_MATRIX_MODELS as u64,
            });
        }
        if values.len() != n * n {
            return Err(Error::Csv {
                source_name: source.into(),
                line: 0,
                reason: format!("{} values for {n} models", values.len()),
            });
        }
        let mut m = SimilarityMatrix {
            source: source.to_owned(),
            ids,
            values,
        };
        for i in 0..n {
            for j in i + 1..n {
                let (ab, ba) = (m.values[i * n + j], m.values[j * n + i]);
                for v in [ab, ba] {
                    if !v.is_finite() {
                        return Err(Error::NonFiniteInput {
                            what: format!("{source}: {} / {}", m.ids[i], m.ids[j]),
                            value: v,
                        });
                    }
                }
                for v in [ab, ba] {
                    crate::measure::check_score(
                        &format!("{source}: {} / {}", m.ids[i], m.ids[j]),
                        v,
                    )?;
                }
                if (ab - ba).abs() > SYMMETRY_TOL {
                    return Err(Error::Asymmetric {
                        source_name: source.into(),
                        a: m.ids[i].clone(),
                        b: m.ids[j].clone(),
                        ab,
                        ba,
                    });
                }
                let avg = 0.5 * (ab + ba);
                m.values[i * n + j] = avg;
                m.values[j * n + i] = avg;
            }
        }
        Ok(m)
    }

    /// Parse a CSV matrix.
    pub fn from_reader<R: Read>(r: R, source: &str) -> Result<Self> {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .trim(csv::Trim::All)
            .flexible(false)
            .from_reader(r);
        let csv_err = |e: csv::Error| Error::Csv {
            source_name: source.to_owned(),
            line: e.position().map_or(0, |p| p.line()),
            reason: e.to_string(),
        };
        let mut records = rdr.records();
        let header = match records.next() {
            Some(h) => h.map_err(csv_err)?,
            None => {
                return Err(Error::Csv {
                    source_name: source.into(),
                    line: 1,
                    reason: "empty file".into(),
                })
            }
        };
        let ids: Vec<String> = header.iter().skip(1).map(str::to_owned).collect();
        let n = ids.len();
        if n < 2 {
            return Err(Error::Csv {
                source_name: source.into(),
                line: 1,
                reason: format!("{n} model ids in the header; at least 2 needed"),
            });
        }
        if n > MAX_MATRIX_MODELS {
            return Err(Error::TooLarge {
                what: format!("{source}: models"),
                n: n as u64,
                max: MAX_MATRIX_MODELS as u64,
            });
        }
        let mut col: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, id) in ids.iter().enumerate() {
            if id.is_empty() || col.insert(id, i).is_some() {
                return Err(Error::Csv {
                    source_name: source.into(),
                    line: 1,
                    reason: format!("column id {id:?} is empty or repeated"),
                });
            }
        }
        let mut values = vec![f64::NAN; n * n];
        let mut seen = vec![false; n];
        for rec in records {
            let rec = rec.map_err(csv_err)?;
            let line = rec.position().map_or(0, |p| p.line());
            let bad = |reason: String| Error::Csv {
                source_name: source.into(),
                line,
                reason,
            };
            let id = rec.get(0).unwrap_or("");
            let &i = col
                .get(id)
                .ok_or_else(|| bad(format!("row id {id:?} is not a column id")))?;
            if std::mem::replace(&mut seen[i], true) {
                return Err(bad(format!("row {id:?} appears twice")));
            }
            for (j, cell) in rec.iter().skip(1).enumerate() {
                let at = format!("row {id}, column {}", ids[j]);
                if j == i {
                    // A self-similarity is 1; 100 is a percentage, 0 a distance.
                    if let Ok(d) = cell.parse::<f64>() {
                        if !((d - 1.0).abs() <= DIAGONAL_TOL) {
                            let hint = if (d - 100.0).abs() <= 100.0 * DIAGONAL_TOL {
                                "the matrix is in percent? divide every cell by 100"
                            } else if d == 0.0 {
                                "a distance matrix? nullprint reads similarities"
                            } else {
                                "a model's similarity with itself is 1"
                            };
                            return Err(bad(format!("{at}: diagonal {cell:?}: {hint}")));
                        }
                    }
                    continue;
                }
                let v = cell
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| {
                        bad(format!(
                            "{at} ({id} / {}): {cell:?} is not a finite number",
                            ids[j]
                        ))
                    })?;
                crate::measure::check_score(&format!("{at} ({id} / {})", ids[j]), v)
                    .map_err(|e| bad(e.to_string()))?;
                values[i * n + j] = v;
            }
        }
        if let Some(i) = seen.iter().position(|s| !s) {
            return Err(Error::Csv {
                source_name: source.into(),
                line: 0,
                reason: format!("no row for model {:?}", ids[i]),
            });
        }
        for i in 0..n {
            values[i * n + i] = 1.0;
        }
        Self::new(source, ids, values)
    }

    /// Read a CSV matrix file.
    pub fn from_path(path: &Path) -> Result<Self> {
        let f = std::fs::File::open(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_reader(std::io::BufReader::new(f), &path.display().to_string())
    }

    /// Model ids in column order.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// Number of models.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Never true for a parsed matrix.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Where the matrix came from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The similarity of models `i` and `j` (the diagonal reads 1).
    pub fn get(&self, i: usize, j: usize) -> f64 {
        self.values[i * self.ids.len() + j]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(t: &str) -> Result<SimilarityMatrix> {
        SimilarityMatrix::from_reader(t.as_bytes(), "m.csv")
    }

    #[test]
    fn parses_symmetric_matrix_in_any_row_order() {
        let m = parse(",x,y,z\nz,0.3,0.2,\nx,,0.5,0.3\ny,0.5,1,0.2\n").unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m.get(0, 1), 0.5);
        assert_eq!(m.get(2, 0), 0.3);
        assert_eq!(m.get(1, 2), 0.2);
    }

    #[test]
    fn rejects_malformed_matrices() {
        assert!(matches!(
            parse(",x,y\nx,1,0.5\ny,0.4,1\n"),
            Err(Error::Asymmetric { .. })
        ));
        assert!(matches!(parse(",x,y\nx,1,0.5\n"), Err(Error::Csv { .. })));
        assert!(matches!(
            parse(",x,y\nx,1,0.5\nx,0.5,1\n"),
            Err(Error::Csv { line: 3, .. })
        ));
        assert!(matches!(
            parse(",x,y\nx,1,abc\ny,0.5,1\n"),
            Err(Error::Csv { line: 2, .. })
        ));
        assert!(matches!(
            parse(",x,y\nx,1,NaN\ny,NaN,1\n"),
            Err(Error::Csv { .. })
        ));
        assert!(matches!(
            parse(",x,y\nx,1\ny,0.5,1\n"),
            Err(Error::Csv { .. })
        ));
        assert!(matches!(
            parse(",x,y\nx,1,0.5\nq,0.5,1\n"),
            Err(Error::Csv { .. })
        ));
        assert!(matches!(parse(",x\nx,1\n"), Err(Error::Csv { .. })));
        assert!(matches!(parse(""), Err(Error::Csv { .. })));
        assert!(matches!(
            parse(",x,x\nx,1,1\nx,1,1\n"),
            Err(Error::Csv { .. })
        ));
    }

    #[test]
    fn cells_name_line_row_and_column_and_diagonals_are_checked() {
        let e = parse(",x,y,z\nx,1,0.1,0.2\ny,0.1,1,5\nz,0.2,5,1\n").unwrap_err();
        let msg = e.to_string();
        assert!(
            matches!(e, Error::Csv { line: 3, .. })
                && msg.contains("row y, column z")
                && msg.contains("outside"),
            "{msg}"
        );
        let e = parse(",x,y\nx,100,50\ny,50,100\n").unwrap_err().to_string();
        assert!(
            e.contains("row x, column x") && e.contains("percent"),
            "{e}"
        );
        let e = parse(",x,y\nx,0,0.5\ny,0.5,0\n").unwrap_err().to_string();
        assert!(e.contains("distance"), "{e}");
        let e = parse(",x,y\nx,0.9,0.5\ny,0.5,1\n").unwrap_err().to_string();
        assert!(e.contains("itself is 1"), "{e}");
        // Empty, text and 1.000 diagonals are read.
        parse(",x,y\nx,,0.5\ny,0.5,-\n").unwrap();
        parse(",x,y\nx,1.000,0.5\ny,0.5,1.0\n").unwrap();
    }
}
