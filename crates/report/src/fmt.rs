//! Number formatting and text escaping shared by the renderers.
//!
//! Displayed numbers are rounded for reading (CSV and JSON keep full precision); a value that is
//! not defined prints as [`MISSING`], never "NaN" or "inf". Negative numbers use the Unicode
//! minus sign, small and large magnitudes a `×10ⁿ` form that reads the same in HTML and
//! Markdown.

use crate::model::Interval;

/// What an undefined value prints as.
pub const MISSING: &str = "—";

/// Below this a p-value is shown in scientific form with its log10.
const P_SCIENTIFIC_BELOW: f64 = 1e-3;

/// Escape text for HTML element content and double- or single-quoted attribute values.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escape text for inline Markdown (GitHub flavour), table cells included: emphasis, code,
/// link and table syntax is backslash-escaped, HTML-significant characters become entities,
/// and line breaks become spaces so a value never breaks a table row or starts a block.
pub fn markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => {}
            '\n' | '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    // A leading "-", "+" or "1. " would start a list once the text begins a line.
    if out.starts_with(['-', '+', '=']) {
        out.insert(0, '\\');
    }
    let bytes = out.as_bytes();
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits > 0
        && matches!(bytes.get(digits), Some(b'.' | b')'))
        && matches!(bytes.get(digits + 1), None | Some(b' '))
    {
        out.insert(digits, '\\');
    }
    out
}

/// Replace an ASCII '-' sign with the Unicode minus.
fn minus(s: String) -> String {
    match s.strip_prefix('-') {
        Some(rest) => format!("\u{2212}{rest}"),
        None => s,
    }
}

fn superscript(n: i64) -> String {
    n.to_string()
        .chars()
        .map(|c| match c {
            '-' => '⁻',
            '0' => '⁰',
            '1' => '¹',
            '2' => '²',
            '3' => '³',
            '4' => '⁴',
            '5' => '⁵',
            '6' => '⁶',
            '7' => '⁷',
            '8' => '⁸',
            '9' => '⁹',
            c => c,
        })
        .collect()
}

/// `m×10ⁿ` from a base-10 logarithm, `sig` significant digits in the mantissa.
fn from_log10(log10: f64, negative: bool, sig: usize) -> String {
    let decimals = sig.saturating_sub(1);
    let e = log10.floor();
    let mut m = 10f64.powf(log10 - e);
    let mut e = e as i64;
    // Rounding 9.99 to one decimal gives "10.0": carry into the exponent.
    if format!("{m:.decimals$}").starts_with("10") {
        m /= 10.0;
        e += 1;
    }
    let sign = if negative { "\u{2212}" } else { "" };
    format!("{sign}{m:.decimals$}×10{}", superscript(e))
}

/// `m×10ⁿ` with `sig` significant digits in the mantissa.
fn scientific(x: f64, sig: usize) -> String {
    from_log10(x.abs().log10(), x < 0.0, sig)
}

/// Round to `sig` significant digits and drop trailing zeros.
fn significant(x: f64, sig: usize) -> String {
    if x == 0.0 {
        return "0".into();
    }
    let mag = x.abs().log10().floor() as i64;
    let decimals = (sig as i64 - 1 - mag).clamp(0, 12) as usize;
    let mut s = format!("{x:.decimals$}");
    if s.contains('.') {
        while s.ends_with('0') {
            s.pop();
        }
        if s.ends_with('.') {
            s.pop();
        }
    }
    if s == "-0" {
        s = "0".into();
    }
    minus(s)
}

/// A computed number for reading: four significant digits, `×10ⁿ` outside [1e-3, 1e6).
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        return MISSING.into();
    }
    if x != 0.0 && (x.abs() < 1e-3 || x.abs() >= 1e6) {
        return scientific(x, 3);
    }
    significant(x, 4)
}

/// Like [`num`] with `sig` significant digits (`×10ⁿ` form outside [1e-3, 1e6)).
pub fn sig(x: f64, sig: usize) -> String {
    if !x.is_finite() {
        return MISSING.into();
    }
    if x != 0.0 && (x.abs() < 1e-3 || x.abs() >= 1e6) {
        return scientific(x, sig.min(3));
    }
    significant(x, sig)
}

fn num3(x: f64) -> String {
    sig(x, 3)
}

/// An optional computed number.
pub fn opt_num(x: Option<f64>) -> String {
    x.map_or_else(|| MISSING.into(), num)
}

/// A similarity score or correlation: fixed `decimals` decimals.
pub fn score(x: f64, decimals: usize) -> String {
    if !x.is_finite() {
        return MISSING.into();
    }
    let s = format!("{x:.decimals$}");
    // "-0.000" is zero.
    if s.starts_with('-') && s[1..].bytes().all(|b| b == b'0' || b == b'.') {
        return s[1..].to_string();
    }
    minus(s)
}

/// An optional score with three decimals.
pub fn opt_score(x: Option<f64>) -> String {
    x.map_or_else(|| MISSING.into(), |x| score(x, 3))
}

/// A count with thousands separators: `8,536`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A p-value: three significant digits; below 1e-3 in `m×10ⁿ` form with its log10. Uses
/// `log10_p` when `p` is missing or underflowed to zero.
pub fn p_value(p: Option<f64>, log10_p: Option<f64>) -> String {
    match (p, log10_p) {
        (Some(p), _) if p >= P_SCIENTIFIC_BELOW => significant(p, 3),
        (Some(p), l) if p > 0.0 => {
            let l = l.unwrap_or_else(|| p.log10());
            format!("{} (log₁₀ p = {})", scientific(p, 2), score(l, 2))
        }
        (_, Some(l)) if l.is_finite() => {
            // p itself underflows f64: print it from its log.
            format!("{} (log₁₀ p = {})", from_log10(l, false, 2), score(l, 2))
        }
        (Some(0.0), None) => "0".into(),
        _ => MISSING.into(),
    }
}

/// A rate with its count: `28.6% (2,441 of 8,536)`; `—` when undefined.
pub fn rate(rate: Option<f64>, k: u64, n: u64) -> String {
    match rate {
        Some(r) => format!(
            "{}% ({} of {})",
            significant(r * 100.0, 3),
            count(k),
            count(n)
        ),
        None => format!("{MISSING} ({} of {})", count(k), count(n)),
    }
}

/// An interval: `[0.012, 0.034]`, as percentages when `percent`.
pub fn interval(iv: &Interval, percent: bool) -> String {
    if percent {
        format!(
            "[{}%, {}%]",
            significant(iv.lo * 100.0, 3),
            significant(iv.hi * 100.0, 3)
        )
    } else {
        format!("[{}, {}]", num3(iv.lo), num3(iv.hi))
    }
}

/// Coverage and method of an interval: `95% Clopper-Pearson`.
pub fn interval_kind(iv: &Interval) -> String {
    format!("{}% {}", significant(iv.level * 100.0, 3), iv.method)
}

/// A float for CSV: shortest text that parses back to the same `f64`.
pub fn csv_f64(x: f64) -> String {
    format!("{x:?}")
}

/// An optional float for CSV: empty when undefined.
pub fn csv_opt(x: Option<f64>) -> String {
    x.map(csv_f64).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(num(0.927), "0.927");
        assert_eq!(num(0.92734), "0.9273");
        assert_eq!(num(-0.5), "\u{2212}0.5");
        assert_eq!(num(12345.0), "12345");
        assert_eq!(num(3.2e-5), "3.20×10⁻⁵");
        assert_eq!(num(f64::NAN), MISSING);
        assert_eq!(num(f64::INFINITY), MISSING);
        assert_eq!(num(0.0), "0");
        assert_eq!(score(-0.0001, 3), "0.000");
        assert_eq!(score(-0.25, 2), "\u{2212}0.25");
        assert_eq!(count(8536), "8,536");
        assert_eq!(count(100), "100");
        assert_eq!(count(1_000_000), "1,000,000");
    }

    #[test]
    fn p_values() {
        assert_eq!(p_value(Some(0.0123), None), "0.0123");
        assert_eq!(p_value(Some(0.5), None), "0.5");
        assert_eq!(
            p_value(Some(3.2e-5), Some(3.2e-5f64.log10())),
            "3.2×10⁻⁵ (log₁₀ p = \u{2212}4.49)"
        );
        assert_eq!(
            p_value(Some(0.0), Some(-345.5)),
            "3.2×10⁻³⁴⁶ (log₁₀ p = \u{2212}345.50)"
        );
        assert_eq!(p_value(None, None), MISSING);
        assert_eq!(
            p_value(Some(9.99e-4), None),
            "1.0×10⁻³ (log₁₀ p = \u{2212}3.00)"
        );
    }

    #[test]
    fn escaping() {
        assert_eq!(html("<b a=\"x\">&'"), "&lt;b a=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(
            markdown("a|b *c* [d](e) <f>"),
            "a\\|b \\*c\\* \\[d\\](e) &lt;f&gt;"
        );
        assert_eq!(markdown("line\nbreak"), "line break");
        assert_eq!(markdown("- item"), "\\- item");
        assert_eq!(markdown("1. item"), "1\\. item");
        assert_eq!(markdown("0.927 is high"), "0.927 is high");
    }

    #[test]
    fn csv_round_trip() {
        for x in [0.1, 1.0 / 3.0, 1e-300, -2.5e17, 0.0] {
            assert_eq!(csv_f64(x).parse::<f64>().unwrap(), x);
        }
    }
}
