//! The activation letter: an A4 PDF in the person's language, with the person's address in the
//! envelope window, the registration link, the code and until when it is valid.
//!
//! Text is real PDF text (embedded Liberation Sans, subset by krilla, with a ToUnicode map), so
//! it can be searched, copied and read back by the tests. The words come from
//! `locales/*/letter.ftl`; this module only places them.

use std::sync::Arc;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use krilla::{
    geom::Point,
    metadata::Metadata,
    page::PageSettings,
    surface::Surface,
    text::{Font, TextDirection},
    Data, Document,
};

use crate::{
    domain::{ActivationCode, Language},
    http::templates::{translate, translate_with},
    realm::Realm,
    storage::persons::Person,
};

/// Liberation Sans 2.1.5, SIL Open Font License 1.1 (`assets/fonts/LICENSE-LiberationSans.txt`).
static REGULAR: &[u8] = include_bytes!("../assets/fonts/LiberationSans-Regular.ttf");
static BOLD: &[u8] = include_bytes!("../assets/fonts/LiberationSans-Bold.ttf");

/// Points per millimetre (1 pt = 1/72 inch).
pub(crate) const MM: f32 = 72.0 / 25.4;
pub(crate) const PAGE_WIDTH: f32 = 210.0 * MM;
pub(crate) const PAGE_HEIGHT: f32 = 297.0 * MM;
const LEFT: f32 = 25.0 * MM;
const RIGHT: f32 = 20.0 * MM;
const BOTTOM: f32 = 20.0 * MM;
/// The first address line, in the window of a C5/C4 envelope with the window on the left
/// (45 mm from the top edge, 20 mm from the left, 90 × 45 mm; SN 010130 and DIN 5008).
const WINDOW_TOP: f32 = 50.0 * MM;
const BODY_SIZE: f32 = 11.0;
const LINE: f32 = 15.0;

/// Kept together on one line: the code and the phone number, whose spaces would otherwise let
/// a line break split them. Drawn as ordinary spaces.
const GLUE: char = '\u{a0}';

/// One letter, ready to render.
pub struct ActivationLetter<'a> {
    pub realm: &'a Realm,
    pub person: &'a Person,
    pub code: &'a ActivationCode,
    /// `https://host/<REALM>/register`.
    pub registration_link: &'a str,
    /// The day the letter is written, in Switzerland.
    pub date: NaiveDate,
    /// The last day the code works, in Switzerland.
    pub valid_until: NaiveDate,
    pub validity_days: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum LetterError {
    #[error("the embedded font cannot be read")]
    Font,
    #[error("the PDF cannot be written: {0}")]
    Pdf(String),
}

/// The calendar day in Switzerland at an instant. Switzerland keeps the European summer time
/// (since 1981): UTC+2 from 01:00 UTC on the last Sunday of March to 01:00 UTC on the last
/// Sunday of October, UTC+1 otherwise.
pub fn swiss_date(t: DateTime<Utc>) -> NaiveDate {
    let switch = |month| {
        last_sunday(t.year(), month)
            .and_hms_opt(1, 0, 0)
            .map(|d| d.and_utc())
    };
    let summer = matches!((switch(3), switch(10)), (Some(s), Some(e)) if t >= s && t < e);
    (t + Duration::hours(if summer { 2 } else { 1 })).date_naive()
}

fn last_sunday(year: i32, month: u32) -> NaiveDate {
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    };
    let last = next.and_then(|d| d.pred_opt()).unwrap_or_default();
    last - Duration::days(i64::from(last.weekday().num_days_from_sunday()))
}

/// DD.MM.YYYY, as dates are written in Switzerland.
pub fn swiss_format(d: NaiveDate) -> String {
    d.format("%d.%m.%Y").to_string()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Weight {
    Regular,
    Bold,
}

/// What the letter says, top to bottom, before it is placed on the page.
enum Block {
    /// Lines that stay as they are (the address).
    Lines(Vec<String>),
    /// A paragraph wrapped to the text width.
    Text(String, Weight, f32),
    /// Vertical space in points.
    Gap(f32),
}

impl ActivationLetter<'_> {
    fn lang(&self) -> Language {
        self.person.language
    }

    fn t(&self, key: &str) -> String {
        translate(self.lang(), key)
    }

    fn t_with(&self, key: &str, args: &[(&str, String)]) -> String {
        translate_with(self.lang(), key, args)
    }

    /// The recipient as the post reads it: name, street, postal code and locality, and the
    /// country only when it is not Switzerland.
    fn address_lines(&self) -> Vec<String> {
        let p = self.person;
        let a = &p.address;
        let mut lines = vec![format!("{} {}", p.given_name, p.family_name)];
        lines.extend(a.street.clone());
        let town = [a.postal_code.as_deref(), a.locality.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        if !town.is_empty() {
            lines.push(town);
        }
        lines.extend(a.country.clone().filter(|c| !c.eq_ignore_ascii_case("CH")));
        lines
    }

    fn body(&self) -> Vec<Block> {
        let glued = |s: &str| s.replace(' ', &GLUE.to_string());
        let date = swiss_format(self.date);
        let dated = match &self.realm.letter_place {
            Some(place) => self.t_with(
                "letter-place-date",
                &[("place", place.clone()), ("date", date)],
            ),
            None => date,
        };
        use Block::*;
        use Weight::*;
        vec![
            Text(dated, Regular, BODY_SIZE),
            Text(
                self.t_with(
                    "letter-ahv",
                    &[("number", self.person.ahv.as_str().to_owned())],
                ),
                Regular,
                BODY_SIZE,
            ),
            Gap(14.0),
            Text(self.t("letter-title"), Bold, 14.0),
            Gap(10.0),
            Text(self.t("letter-greeting"), Regular, BODY_SIZE),
            Gap(6.0),
            Text(self.t("letter-invitation"), Regular, BODY_SIZE),
            Gap(10.0),
            Text(self.t("letter-motto"), Bold, BODY_SIZE),
            Gap(10.0),
            Text(self.t("letter-registration"), Bold, BODY_SIZE),
            Gap(4.0),
            Text(
                self.t_with(
                    "letter-link",
                    &[("link", self.registration_link.to_owned())],
                ),
                Regular,
                BODY_SIZE,
            ),
            Gap(8.0),
            Text(
                self.t_with("letter-code", &[("code", glued(&self.code.to_string()))]),
                Bold,
                12.0,
            ),
            Gap(8.0),
            Text(
                self.t_with(
                    "letter-validity",
                    &[
                        ("date", swiss_format(self.valid_until)),
                        ("days", self.validity_days.to_string()),
                    ],
                ),
                Regular,
                BODY_SIZE,
            ),
            Gap(6.0),
            Text(self.t("letter-how"), Regular, BODY_SIZE),
            Gap(10.0),
            Text(
                self.t_with(
                    "letter-support",
                    &[
                        ("phone", glued(&self.realm.support_phone)),
                        ("hours", self.realm.support_hours.clone()),
                    ],
                ),
                Regular,
                BODY_SIZE,
            ),
            Gap(14.0),
            Text(self.t("letter-closing"), Regular, BODY_SIZE),
            Gap(4.0),
            Lines(vec![self.realm.display_name.clone()]),
        ]
    }

    /// The letter as PDF bytes.
    pub fn pdf(&self) -> Result<Vec<u8>, LetterError> {
        let regular = Face::new(REGULAR)?;
        let bold = Face::new(BOLD)?;
        let face = |w: Weight| if w == Weight::Bold { &bold } else { &regular };
        let width = PAGE_WIDTH - LEFT - RIGHT;

        let mut document = Document::new();
        document.set_metadata(
            Metadata::new()
                .title(self.t("letter-title"))
                .language(self.lang().code().to_owned())
                .authors(vec![self.realm.display_name.clone()])
                .creator("connect".to_owned()),
        );
        let settings = || {
            PageSettings::from_wh(PAGE_WIDTH, PAGE_HEIGHT)
                .ok_or_else(|| LetterError::Pdf("page size".into()))
        };
        let mut page = document.start_page_with(settings()?);
        let mut surface = page.surface();
        // The sender, at the top.
        draw(
            &mut surface,
            &bold,
            13.0,
            LEFT,
            20.0 * MM,
            &self.realm.display_name,
        );
        // The recipient, in the window.
        let mut y = WINDOW_TOP;
        for line in self.address_lines() {
            draw(&mut surface, &regular, BODY_SIZE, LEFT, y, &line);
            y += LINE;
        }
        // The body, below the window.
        y = y.max(WINDOW_TOP + 4.0 * LINE) + 2.0 * LINE;
        for block in self.body() {
            let (lines, weight, size) = match block {
                Block::Gap(h) => {
                    y += h;
                    continue;
                }
                Block::Lines(lines) => (lines, Weight::Regular, BODY_SIZE),
                Block::Text(text, weight, size) => {
                    (face(weight).wrap(&text, size, width), weight, size)
                }
            };
            let leading = LINE.max(size * 1.35);
            for line in lines {
                if y > PAGE_HEIGHT - BOTTOM {
                    surface.finish();
                    page.finish();
                    page = document.start_page_with(settings()?);
                    surface = page.surface();
                    y = 25.0 * MM;
                }
                draw(&mut surface, face(weight), size, LEFT, y, &line);
                y += leading;
            }
        }
        surface.finish();
        page.finish();
        document
            .finish()
            .map_err(|e| LetterError::Pdf(format!("{e:?}")))
    }
}

/// Draws one line of text with its baseline at `y` points from the top.
pub(crate) fn draw(surface: &mut Surface<'_>, face: &Face, size: f32, x: f32, y: f32, text: &str) {
    surface.draw_text(
        Point::from_xy(x, y),
        face.font.clone(),
        size,
        &text.replace(GLUE, " "),
        false,
        TextDirection::LeftToRight,
    );
}

/// A font for krilla to embed, with the metrics to measure lines (also used by the portal's
/// demo documents).
pub(crate) struct Face {
    font: Font,
    metrics: ttf_parser::Face<'static>,
}

impl Face {
    pub(crate) fn regular() -> Result<Face, LetterError> {
        Face::new(REGULAR)
    }

    pub(crate) fn bold() -> Result<Face, LetterError> {
        Face::new(BOLD)
    }

    fn new(bytes: &'static [u8]) -> Result<Face, LetterError> {
        let data: Arc<dyn AsRef<[u8]> + Send + Sync> = Arc::new(bytes);
        Ok(Face {
            font: Font::new(Data::from(data), 0).ok_or(LetterError::Font)?,
            metrics: ttf_parser::Face::parse(bytes, 0).map_err(|_| LetterError::Font)?,
        })
    }

    /// Width in points, without kerning (which only narrows Latin text).
    pub(crate) fn width(&self, text: &str, size: f32) -> f32 {
        let units: u32 = text
            .chars()
            .map(|c| {
                let glyph = self
                    .metrics
                    .glyph_index(c)
                    .unwrap_or(ttf_parser::GlyphId(0));
                u32::from(self.metrics.glyph_hor_advance(glyph).unwrap_or(0))
            })
            .sum();
        units as f32 * size / f32::from(self.metrics.units_per_em())
    }

    /// Breaks at spaces so that lines fit `width`; a word longer than a line (a long link)
    /// gets a line of its own rather than being cut.
    pub(crate) fn wrap(&self, text: &str, size: f32, width: f32) -> Vec<String> {
        let mut lines = Vec::new();
        let mut line = String::new();
        for word in text.split(' ').filter(|w| !w.is_empty()) {
            let candidate = if line.is_empty() {
                word.to_owned()
            } else {
                format!("{line} {word}")
            };
            if self.width(&candidate, size) <= width || line.is_empty() {
                line = candidate;
            } else {
                lines.push(std::mem::replace(&mut line, word.to_owned()));
            }
        }
        if !line.is_empty() {
            lines.push(line);
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn swiss_dates_follow_winter_and_summer_time() {
        for (instant, day) in [
            ("2026-01-15T22:59:59Z", "2026-01-15"),
            ("2026-01-15T23:00:00Z", "2026-01-16"),
            // 29 March 2026: summer time from 01:00 UTC.
            ("2026-03-29T00:59:59Z", "2026-03-29"),
            ("2026-06-30T21:59:59Z", "2026-06-30"),
            ("2026-06-30T22:00:00Z", "2026-07-01"),
            // 25 October 2026: winter time again from 01:00 UTC.
            ("2026-10-24T22:30:00Z", "2026-10-25"),
            ("2026-10-25T22:30:00Z", "2026-10-25"),
            ("2026-12-31T23:00:00Z", "2027-01-01"),
        ] {
            assert_eq!(swiss_date(utc(instant)).to_string(), day, "{instant}");
        }
        assert_eq!(last_sunday(2026, 3).to_string(), "2026-03-29");
        assert_eq!(last_sunday(2026, 10).to_string(), "2026-10-25");
        assert_eq!(last_sunday(2026, 12).to_string(), "2026-12-27");
        assert_eq!(
            swiss_format(NaiveDate::from_ymd_opt(2026, 6, 6).unwrap()),
            "06.06.2026"
        );
    }

    #[test]
    fn every_language_renders_as_extractable_text_with_its_accents() {
        let realms = crate::realm::Realms::load_dir(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("realm-config"),
        )
        .unwrap();
        let realm = realms.get(&"AK00".parse().unwrap()).unwrap();
        let code = ActivationCode::generate();
        for (language, words) in [
            (Language::Fr, "Votre fenêtre sur le futur"),
            (Language::De, "Freundliche Grüsse"),
            (Language::It, "Il suo codice di registrazione personale è:"),
            (Language::En, "Your personal registration code is:"),
        ] {
            let person = Person {
                ahv: "756.1234.5678.97".parse().unwrap(),
                given_name: "Zoë".into(),
                family_name: "Bärtschi".into(),
                birth_date: NaiveDate::from_ymd_opt(1950, 3, 14).unwrap(),
                language,
                address: crate::storage::persons::PostalAddress {
                    street: Some("Place de l'Hôtel-de-Ville 2".into()),
                    postal_code: Some("1700".into()),
                    locality: Some("Fribourg".into()),
                    country: Some("CH".into()),
                },
            };
            let letter = ActivationLetter {
                realm,
                person: &person,
                code: &code,
                registration_link: "https://login.example.ch/AK00/register",
                date: NaiveDate::from_ymd_opt(2026, 5, 7).unwrap(),
                valid_until: NaiveDate::from_ymd_opt(2026, 6, 6).unwrap(),
                validity_days: 30,
            };
            let pdf = letter.pdf().unwrap();
            let doc = lopdf::Document::load_mem(&pdf).unwrap();
            assert_eq!(doc.get_pages().len(), 1, "{language}: one page");
            let text = doc.extract_text(&[1]).unwrap();
            let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
            for expected in [
                words,
                "Zoë Bärtschi",
                "Place de l'Hôtel-de-Ville 2",
                "1700 Fribourg",
                "Berne, ",
                "07.05.2026",
                "06.06.2026",
                "https://login.example.ch/AK00/register",
                &code.to_string(),
                "031 390 23 25",
            ] {
                assert!(
                    text.contains(expected),
                    "{language}: `{expected}` in {text}"
                );
            }
            assert!(
                !text.contains("letter-"),
                "{language}: a key without text: {text}"
            );
            // A word of its own: the random code may hold the letters C and H side by side.
            assert!(
                !text.split(' ').any(|w| w == "CH"),
                "{language}: no country line for Switzerland"
            );
        }
    }

    #[test]
    fn lines_fit_the_width_and_long_words_stay_whole() {
        let face = Face::new(REGULAR).unwrap();
        let text = "Nous sommes heureux de vous inviter à rejoindre connect@Assurés. \
                    https://login.example.ch/AK00/register/with/a/very/long/path/indeed/for/sure";
        let width = 60.0 * MM;
        let lines = face.wrap(text, BODY_SIZE, width);
        assert!(lines.len() > 2, "{lines:?}");
        for line in &lines {
            assert!(
                face.width(line, BODY_SIZE) <= width || !line.contains(' '),
                "{line}"
            );
        }
        assert!(lines.last().unwrap().starts_with("https://"));
        assert_eq!(
            lines.join(" "),
            text.split_whitespace().collect::<Vec<_>>().join(" ")
        );
        let glued = format!("code:{GLUE}ABCD{GLUE}EFGH{GLUE}JKMN");
        assert_eq!(face.wrap(&glued, BODY_SIZE, 1.0), vec![glued.clone()]);
    }
}
