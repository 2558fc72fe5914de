//! `connect admin person import`: reads a CSV file of persons and checks every row before
//! anything is written, so that one run reports every mistake of the file.

use std::collections::HashMap;

use chrono::NaiveDate;

use crate::{
    domain::{AhvNumber, Language},
    storage::persons::{Person, PostalAddress},
};

const REQUIRED: [&str; 5] = ["ahv", "given_name", "family_name", "birth_date", "language"];
const OPTIONAL: [&str; 4] = ["street", "postal_code", "locality", "country"];

/// One data row of the file: what it holds and what is wrong with it.
pub struct Row {
    /// The line of the file where the row starts (the header is line 1).
    pub line: u64,
    /// The AHV number, when it parses; checked against the register afterwards.
    pub ahv: Option<AhvNumber>,
    /// The person, when nothing is wrong with the row.
    pub person: Option<Person>,
    pub problems: Vec<String>,
}

/// A file that cannot be read as a table at all.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("line 1: {0}")]
    Header(String),
    #[error("the file holds no person")]
    Empty,
    #[error("{0}")]
    Csv(#[from] csv::Error),
}

/// Reads every row and checks each on its own and against the rows before it (duplicate AHV
/// numbers). Comma or semicolon separated (spreadsheets in Switzerland write semicolons), UTF-8
/// with or without a byte-order mark.
pub fn read(bytes: &[u8], today: NaiveDate) -> Result<Vec<Row>, FileError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let first_line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let delimiter = if first_line.contains(&b';') && !first_line.contains(&b',') {
        b';'
    } else {
        b','
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_reader(bytes);
    let header: Vec<String> = reader
        .headers()
        .map_err(|_| FileError::Header("the header row is not UTF-8 text".into()))?
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let columns = columns(&header).map_err(FileError::Header)?;

    let mut rows = Vec::new();
    let mut seen: HashMap<AhvNumber, u64> = HashMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => match e.kind() {
                csv::ErrorKind::Utf8 { pos, .. } => {
                    rows.push(Row {
                        line: pos.as_ref().map_or(0, |p| p.line()),
                        ahv: None,
                        person: None,
                        problems: vec!["not UTF-8 text (save the file as UTF-8)".into()],
                    });
                    continue;
                }
                _ => return Err(e.into()),
            },
        };
        let line = record.position().map_or(0, |p| p.line());
        let mut row = check(&record, &columns, header.len(), today);
        row.line = line;
        if let Some(ahv) = &row.ahv {
            if let Some(first) = seen.get(ahv) {
                row.problems
                    .push(format!("ahv: {ahv} is already on line {first}"));
                row.person = None;
            } else {
                seen.insert(ahv.clone(), line);
            }
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(FileError::Empty);
    }
    Ok(rows)
}

/// The position of each known column; every required one must be there, unknown ones are
/// refused (a misspelt optional column would otherwise be ignored without a word).
fn columns(header: &[String]) -> Result<HashMap<&'static str, usize>, String> {
    let mut at = HashMap::new();
    for (i, name) in header.iter().enumerate() {
        let Some(known) = REQUIRED
            .iter()
            .chain(&OPTIONAL)
            .find(|k| **k == name.as_str())
        else {
            return Err(format!(
                "unknown column `{name}`; the columns are {} and optionally {}",
                REQUIRED.join(","),
                OPTIONAL.join(",")
            ));
        };
        if at.insert(*known, i).is_some() {
            return Err(format!("column `{name}` appears twice"));
        }
    }
    let missing: Vec<_> = REQUIRED.iter().filter(|k| !at.contains_key(*k)).collect();
    if !missing.is_empty() {
        return Err(format!(
            "missing column(s) {}",
            missing
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(at)
}

fn check(
    record: &csv::StringRecord,
    columns: &HashMap<&'static str, usize>,
    width: usize,
    today: NaiveDate,
) -> Row {
    let mut problems = Vec::new();
    if record.len() != width {
        problems.push(format!(
            "{} fields where the header has {width}",
            record.len()
        ));
    }
    let field = |name: &str| {
        columns
            .get(name)
            .and_then(|i| record.get(*i))
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };

    let ahv = match field("ahv").map(str::parse::<AhvNumber>) {
        Some(Ok(a)) => Some(a),
        Some(Err(e)) => {
            problems.push(format!("ahv: {e}"));
            None
        }
        None => {
            problems.push("ahv: missing".into());
            None
        }
    };
    let mut name = |column: &str| match field(column) {
        Some(n) => Some(n.to_owned()),
        None => {
            problems.push(format!("{column}: missing"));
            None
        }
    };
    let given_name = name("given_name");
    let family_name = name("family_name");
    let birth_date = match field("birth_date") {
        None => {
            problems.push("birth_date: missing".into());
            None
        }
        Some(d) => match parse_date(d) {
            Some(d) if d > today => {
                problems.push(format!("birth_date: {d} is in the future"));
                None
            }
            Some(d) => Some(d),
            None => {
                problems.push(format!("birth_date: `{d}` is not a date YYYY-MM-DD"));
                None
            }
        },
    };
    let language = match field("language").map(str::parse::<Language>) {
        Some(Ok(l)) => Some(l),
        Some(Err(e)) => {
            problems.push(format!("language: {e}"));
            None
        }
        None => {
            problems.push("language: missing".into());
            None
        }
    };
    let own = |column: &str| field(column).map(str::to_owned);
    let mut address = PostalAddress {
        street: own("street"),
        postal_code: own("postal_code"),
        locality: own("locality"),
        country: own("country"),
    };
    let has_address =
        address.street.is_some() || address.postal_code.is_some() || address.locality.is_some();
    if has_address && address.country.is_none() {
        address.country = Some("CH".into());
    }
    if let (Some(code), Some("CH")) = (&address.postal_code, address.country.as_deref()) {
        if code.len() != 4 || !code.chars().all(|c| c.is_ascii_digit()) {
            problems.push(format!(
                "postal_code: `{code}` is not a Swiss postal code (4 digits)"
            ));
        }
    }

    let person = match (given_name, family_name, birth_date, language, &ahv) {
        (Some(given_name), Some(family_name), Some(birth_date), Some(language), Some(ahv))
            if problems.is_empty() =>
        {
            Some(Person {
                ahv: ahv.clone(),
                given_name,
                family_name,
                birth_date,
                language,
                address,
            })
        }
        _ => None,
    };
    Row {
        line: 0,
        ahv,
        person,
        problems,
    }
}

/// Exactly YYYY-MM-DD (chrono alone would also take `2020-1-5`).
fn parse_date(s: &str) -> Option<NaiveDate> {
    let shape = s.len() == 10
        && s.char_indices().all(|(i, c)| {
            if i == 4 || i == 7 {
                c == '-'
            } else {
                c.is_ascii_digit()
            }
        });
    shape
        .then(|| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 5, 1).unwrap()
    }

    fn problems(rows: &[Row]) -> Vec<(u64, String)> {
        rows.iter()
            .flat_map(|r| r.problems.iter().map(move |p| (r.line, p.clone())))
            .collect()
    }

    #[test]
    fn good_rows_become_persons_with_or_without_address() {
        let csv =
            "\u{feff}ahv,given_name,family_name,birth_date,language,street,postal_code,locality\n\
                   756.1234.5678.97,Anna,Muster,1950-03-14,fr,Rue du Marché 1,3000,Bern\n\
                   7569217076985, Jörg ,Müller,1948-12-01,de,,,\n";
        let rows = read(csv.as_bytes(), today()).unwrap();
        assert_eq!(problems(&rows), vec![]);
        let anna = rows[0].person.as_ref().unwrap();
        assert_eq!(rows[0].line, 2);
        assert_eq!(anna.address.street.as_deref(), Some("Rue du Marché 1"));
        assert_eq!(anna.address.country.as_deref(), Some("CH"));
        let jorg = rows[1].person.as_ref().unwrap();
        assert_eq!(jorg.given_name, "Jörg");
        assert_eq!(jorg.ahv.as_str(), "756.9217.0769.85");
        assert_eq!(jorg.address, PostalAddress::default());
    }

    #[test]
    fn semicolons_and_any_column_order_are_read() {
        let csv = "language;birth_date;family_name;given_name;ahv\nit;1960-07-01;Rossi;Lia;756.1234.5678.97\n";
        let rows = read(csv.as_bytes(), today()).unwrap();
        assert_eq!(problems(&rows), vec![]);
        assert_eq!(rows[0].person.as_ref().unwrap().language, Language::It);
    }

    #[test]
    fn every_bad_row_is_reported_with_its_line() {
        let csv = "ahv,given_name,family_name,birth_date,language,postal_code\n\
                   756.1234.5678.98,Anna,Muster,1950-03-14,fr,\n\
                   756.9217.0769.85,,Muster,1950-3-14,rm,\n\
                   756.1234.5678.97,Anna,Muster,2030-01-01,fr,\n\
                   756.1234.5678.97,Anna,Muster,1950-03-14,fr,30000\n\
                   756.1234.5678.97,Anna\n";
        let rows = read(csv.as_bytes(), today()).unwrap();
        assert!(rows.iter().all(|r| r.person.is_none()));
        let found = problems(&rows);
        let on = |line: u64, text: &str| found.iter().any(|(l, p)| *l == line && p.contains(text));
        assert!(on(2, "check digit"), "{found:?}");
        assert!(on(3, "given_name: missing"), "{found:?}");
        assert!(on(3, "not a date"), "{found:?}");
        assert!(on(3, "language"), "{found:?}");
        assert!(on(4, "in the future"), "{found:?}");
        assert!(on(5, "already on line 4"), "{found:?}");
        assert!(on(5, "postal code"), "{found:?}");
        assert!(on(6, "2 fields"), "{found:?}");
    }

    #[test]
    fn a_bad_header_stops_before_any_row() {
        for (csv, text) in [
            (
                "ahv,given_name,family_name,birthdate,language\n",
                "unknown column `birthdate`",
            ),
            (
                "ahv,given_name,family_name,language\n",
                "missing column(s) `birth_date`",
            ),
            (
                "ahv,ahv,given_name,family_name,birth_date,language\n",
                "appears twice",
            ),
        ] {
            let err = read(csv.as_bytes(), today()).err().unwrap().to_string();
            assert!(err.starts_with("line 1: ") && err.contains(text), "{err}");
        }
        let header_only = "ahv,given_name,family_name,birth_date,language\n";
        assert!(matches!(
            read(header_only.as_bytes(), today()),
            Err(FileError::Empty)
        ));
    }

    #[test]
    fn dates_are_strictly_year_month_day() {
        assert!(parse_date("1950-03-14").is_some());
        for bad in [
            "1950-3-14",
            "14.03.1950",
            "1950-02-30",
            "1950/03/14",
            "",
            "19500314",
        ] {
            assert!(parse_date(bad).is_none(), "{bad}");
        }
    }
}
