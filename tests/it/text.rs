//! What the tests read out of pages and make up as input, without the server: shared by the
//! in-process suite (`tests/it`) and the replicas' (`tests/cluster`, through `#[path]`).

use url::Url;

/// Pulls `name="field" value="..."` out of a page.
pub fn form_value(html: &str, field: &str) -> Option<String> {
    let html = &unescape(html);
    let marker = format!("name=\"{field}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].replace("&amp;", "&"))
}

/// The first run of exactly six digits in a text.
pub fn six_digits(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    (0..chars.len().saturating_sub(5)).find_map(|i| {
        let run: String = chars[i..i + 6].iter().collect();
        let before = i
            .checked_sub(1)
            .map(|j| chars[j].is_ascii_digit())
            .unwrap_or(false);
        let after = chars.get(i + 6).is_some_and(|c| c.is_ascii_digit());
        (run.chars().all(|c| c.is_ascii_digit()) && !before && !after).then_some(run)
    })
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A valid AHV number (EAN-13 check digit) for test person `n`.
pub fn ahv(n: u32) -> String {
    let body = format!("756{n:09}");
    let sum: u32 = body
        .chars()
        .enumerate()
        .map(|(i, c)| c.to_digit(10).unwrap() * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    let check = (10 - sum % 10) % 10;
    format!(
        "{}.{}.{}.{}{check}",
        &body[..3],
        &body[3..7],
        &body[7..11],
        &body[11..]
    )
}

/// Undoes minijinja's HTML escaping, so tests can look for plain text and URLs.
pub fn unescape(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The first `XXXX XXXX XXXX` code in a text.
pub fn letter_code(text: &str) -> Option<String> {
    let alphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let chars: Vec<char> = text.chars().collect();
    (0..chars.len().saturating_sub(13)).find_map(|i| {
        let s: String = chars[i..i + 14].iter().collect();
        let ok = s.chars().enumerate().all(|(j, c)| {
            if j == 4 || j == 9 {
                c == ' '
            } else {
                alphabet.contains(c)
            }
        });
        ok.then_some(s)
    })
}
