//! A small well-formedness checker for the HTML and SVG the renderer writes: every tag closed
//! in order, attributes quoted, entities valid, no raw `<` in text or attribute values.
//! Included as a module by the integration tests.

/// HTML elements that have no closing tag.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track",
    "wbr",
];

fn is_name(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b':' || b == b'_'
}

fn check_entity(doc: &str, at: usize) -> Result<usize, String> {
    let rest = &doc[at + 1..];
    let end = rest
        .find(';')
        .filter(|&e| e <= 10)
        .ok_or_else(|| format!("bare '&' at byte {at}"))?;
    let body = &rest[..end];
    let ok = if let Some(hex) = body.strip_prefix("#x") {
        !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit())
    } else if let Some(dec) = body.strip_prefix('#') {
        !dec.is_empty() && dec.bytes().all(|b| b.is_ascii_digit())
    } else {
        ["amp", "lt", "gt", "quot", "apos", "nbsp"].contains(&body)
    };
    if !ok {
        return Err(format!("unknown entity &{body}; at byte {at}"));
    }
    Ok(at + end + 2)
}

/// Check `doc`; `html` enables HTML's void elements and raw-text `<style>`. Returns the number
/// of elements seen.
pub fn check(doc: &str, html: bool) -> Result<usize, String> {
    let bytes = doc.as_bytes();
    let mut stack: Vec<String> = Vec::new();
    let mut elements = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'&' => i = check_entity(doc, i)?,
            b'<' if doc[i..].starts_with("<!--") => {
                i += doc[i..].find("-->").ok_or("unclosed comment")? + 3;
            }
            b'<' if doc[i..].starts_with("<!") => {
                i += doc[i..].find('>').ok_or("unclosed declaration")? + 1;
            }
            b'<' if doc[i..].starts_with("</") => {
                let end = i + doc[i..]
                    .find('>')
                    .ok_or_else(|| format!("unclosed end tag at {i}"))?;
                let name = doc[i + 2..end].trim().to_ascii_lowercase();
                match stack.pop() {
                    Some(open) if open == name => {}
                    Some(open) => return Err(format!("</{name}> at byte {i} closes <{open}>")),
                    None => return Err(format!("</{name}> at byte {i} closes nothing")),
                }
                i = end + 1;
            }
            b'<' => {
                let start = i + 1;
                let mut j = start;
                while j < bytes.len() && is_name(bytes[j]) {
                    j += 1;
                }
                if j == start {
                    return Err(format!("raw '<' in text at byte {i}"));
                }
                let name = doc[start..j].to_ascii_lowercase();
                let self_closed;
                loop {
                    while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                        j += 1;
                    }
                    match bytes.get(j) {
                        Some(b'>') => {
                            self_closed = false;
                            j += 1;
                            break;
                        }
                        Some(b'/') if bytes.get(j + 1) == Some(&b'>') => {
                            self_closed = true;
                            j += 2;
                            break;
                        }
                        Some(&b) if is_name(b) => {
                            while j < bytes.len() && is_name(bytes[j]) {
                                j += 1;
                            }
                            if bytes.get(j) == Some(&b'=') {
                                let q = *bytes.get(j + 1).ok_or("truncated attribute")?;
                                if q != b'"' && q != b'\'' {
                                    return Err(format!(
                                        "unquoted attribute value in <{name}> at byte {j}"
                                    ));
                                }
                                let close = doc[j + 2..]
                                    .find(q as char)
                                    .ok_or_else(|| format!("unclosed attribute in <{name}>"))?;
                                let value = &doc[j + 2..j + 2 + close];
                                if value.contains('<') {
                                    return Err(format!(
                                        "raw '<' in attribute of <{name}> at byte {j}"
                                    ));
                                }
                                let mut k = 0;
                                while let Some(a) = value[k..].find('&') {
                                    let abs = j + 2 + k + a;
                                    k = check_entity(doc, abs)? - (j + 2);
                                }
                                j = j + 2 + close + 1;
                            }
                        }
                        _ => return Err(format!("malformed tag <{name}> at byte {i}")),
                    }
                }
                elements += 1;
                i = j;
                if html && (name == "style" || name == "script") {
                    let close = format!("</{name}>");
                    let end = doc[i..]
                        .find(&close)
                        .ok_or_else(|| format!("unclosed <{name}>"))?;
                    i += end + close.len();
                } else if !(self_closed || (html && VOID.contains(&name.as_str()))) {
                    stack.push(name);
                }
            }
            _ => i += 1,
        }
    }
    if let Some(open) = stack.pop() {
        return Err(format!("<{open}> is never closed"));
    }
    Ok(elements)
}

#[test]
fn checker_catches_errors() {
    assert!(check("<p><b>x</b></p>", true).is_ok());
    assert!(check("<p><b>x</p></b>", true).is_err());
    assert!(check("<p>unclosed", true).is_err());
    assert!(check("<p>a < b</p>", true).is_err());
    assert!(check("<p>a & b</p>", true).is_err());
    assert!(check("<p>a &amp; b &#39; &#x2212;</p>", true).is_ok());
    assert!(check("<p class=x>a</p>", true).is_err());
    assert!(check("<p title=\"<b>\">a</p>", true).is_err());
    assert!(check("<meta charset=\"utf-8\"><br>", true).is_ok());
    assert!(check("<svg><rect x=\"1\"/></svg>", false).is_ok());
    assert!(check("<style>a > b {}</style>", true).is_ok());
}
