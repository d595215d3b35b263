//! CSV cells a spreadsheet will not run: a text cell that begins with `=`, `+`, `-`, `@`, a
//! tab or a carriage return is read by Excel, LibreOffice and Google Sheets as a formula
//! (OWASP, "CSV Injection"), so a model id, tensor name or label taken from a hostile file
//! could run one when a user opens the CSV. Such cells get a leading single quote, which the
//! spreadsheets show as text. Numbers (`-0.5`, `+1e-3`, `-inf`) are left as they are, so every
//! numeric column still parses.

use std::borrow::Cow;

/// `cell`, with a leading `'` when it is text a spreadsheet would take for a formula.
pub fn csv_cell(cell: &str) -> Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') if cell.parse::<f64>().is_err() => {
            Cow::Owned(format!("'{cell}"))
        }
        _ => Cow::Borrowed(cell),
    }
}

#[cfg(test)]
mod tests {
    use super::csv_cell;

    #[test]
    fn formulas_are_quoted_and_numbers_kept() {
        for (cell, want) in [
            ("=1+1", "'=1+1"),
            ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=x", "'\t=x"),
            ("\r=x", "'\r=x"),
            ("-0.5", "-0.5"),
            ("+1e-3", "+1e-3"),
            ("-inf", "-inf"),
            ("0.25", "0.25"),
            ("model-a", "model-a"),
            ("", ""),
            ("a=b", "a=b"),
        ] {
            assert_eq!(csv_cell(cell), want, "{cell:?}");
        }
    }
}
