//! The activation letter: an A4 PDF in the person's language, with the person's address in the
//! envelope window, the registration link, the code and until when it is valid.
//!
//! Text is real PDF text (embedded Liberation Sans, subset by krilla, with a ToUnicode map), so
//! it can be searched, copied and read back by the tests. The words come from
//! `locales/*/letter.ftl`; this module only places them.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use krilla::{
    geom::Point,
    metadata::Metadata,
    page::PageSettings,
    surface::Surface,
    text::{Font, GlyphId, KrillaGlyph},
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

/// What a letter's code is for: opening an access, or registering a new mobile number after
/// the person lost their phone (a letter they asked for). Only the title and the first
/// paragraph differ.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LetterPurpose {
    #[default]
    Enrolment,
    NewPhone,
}

impl LetterPurpose {
    fn title(self) -> &'static str {
        match self {
            LetterPurpose::Enrolment => "letter-title",
            LetterPurpose::NewPhone => "letter-phone-title",
        }
    }

    fn invitation(self) -> &'static str {
        match self {
            LetterPurpose::Enrolment => "letter-invitation",
            LetterPurpose::NewPhone => "letter-phone-invitation",
        }
    }
}

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
    pub purpose: LetterPurpose,
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
/// The days an activation code of the realm is valid, as letters print it.
pub fn validity_days(realm: &Realm) -> u64 {
    realm.enrolment.activation_code_validity.as_secs() / 86_400
}

pub fn swiss_date(t: DateTime<Utc>) -> NaiveDate {
    swiss_time(t).date()
}

/// The wall-clock time in Switzerland at an instant (see [`swiss_date`]).
pub fn swiss_time(t: DateTime<Utc>) -> chrono::NaiveDateTime {
    let switch = |month| {
        last_sunday(t.year(), month)
            .and_hms_opt(1, 0, 0)
            .map(|d| d.and_utc())
    };
    let summer = matches!((switch(3), switch(10)), (Some(s), Some(e)) if t >= s && t < e);
    (t + Duration::hours(if summer { 2 } else { 1 })).naive_utc()
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

/// Sorts persons as the mailroom posts their letters: Swiss addresses by postal code (then
/// locality), then addresses abroad by country and postal code, then persons without a postal
/// code; within one place by name and AHV number, so that the order never depends on the
/// database. Swiss postal codes are four digits, so text order is numeric order.
pub fn postal_order(persons: &mut [Person]) {
    persons.sort_by_cached_key(postal_key);
}

/// Where a person's letter goes in the mailroom's order (see [`postal_order`]), for lists of
/// other things that carry a person.
pub fn postal_key(p: &Person) -> impl Ord {
    let a = &p.address;
    let abroad = a
        .country
        .as_deref()
        .is_some_and(|c| !c.eq_ignore_ascii_case("CH"));
    (
        a.postal_code.is_none(),
        abroad,
        a.country.as_deref().unwrap_or_default().to_uppercase(),
        a.postal_code.clone(),
        a.locality.clone(),
        p.family_name.clone(),
        p.given_name.clone(),
        p.ahv.as_str().to_owned(),
    )
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
    /// A paragraph wrapped to the text width, the same in many letters of a run (its layout
    /// is kept, see [`Face::paragraph`]).
    Text(String, Weight, f32),
    /// A paragraph of this letter alone (the AHV number, the code).
    Own(String, Weight, f32),
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
                &[("place", place.get(self.lang()).to_owned()), ("date", date)],
            ),
            None => date,
        };
        use Block::*;
        use Weight::*;
        vec![
            Text(dated, Regular, BODY_SIZE),
            Own(
                self.t_with(
                    "letter-ahv",
                    &[("number", self.person.ahv.as_str().to_owned())],
                ),
                Regular,
                BODY_SIZE,
            ),
            Gap(14.0),
            Text(self.t(self.purpose.title()), Bold, 14.0),
            Gap(10.0),
            Text(self.t("letter-greeting"), Regular, BODY_SIZE),
            Gap(6.0),
            Text(self.t(self.purpose.invitation()), Regular, BODY_SIZE),
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
            Own(
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
                        (
                            "hours",
                            self.realm.support_hours.get(self.lang()).to_owned(),
                        ),
                    ],
                ),
                Regular,
                BODY_SIZE,
            ),
            Gap(14.0),
            Text(self.t("letter-closing"), Regular, BODY_SIZE),
            Gap(4.0),
            Lines(vec![self.realm.display_name.get(self.lang()).to_owned()]),
        ]
    }

    /// The letter alone as PDF bytes.
    pub fn pdf(&self) -> Result<Vec<u8>, LetterError> {
        self.pdf_with(&Fonts::new()?)
    }

    /// The letter for a code just issued: the enrolment letter, or the new-number letter
    /// when the code answers a lost phone's request.
    pub fn for_issued<'a>(
        realm: &'a Realm,
        issued: &'a crate::activation::IssuedCode,
        registration_link: &'a str,
        date: NaiveDate,
    ) -> ActivationLetter<'a> {
        ActivationLetter {
            realm,
            person: &issued.person,
            code: &issued.code,
            registration_link,
            date,
            valid_until: swiss_date(issued.expires_at),
            validity_days: validity_days(realm),
            purpose: match issued.request {
                Some(_) => LetterPurpose::NewPhone,
                None => LetterPurpose::Enrolment,
            },
        }
    }

    /// The letter alone as PDF bytes, with fonts already parsed (a run of many letters parses
    /// them once).
    pub fn pdf_with(&self, fonts: &Fonts) -> Result<Vec<u8>, LetterError> {
        let mut document = Document::new();
        document.set_metadata(
            Metadata::new()
                .title(self.t(self.purpose.title()))
                .language(self.lang().code().to_owned())
                .authors(vec![self.realm.display_name.get(self.lang()).to_owned()])
                .creator("connect".to_owned()),
        );
        self.draw(&mut document, fonts)?;
        finish(document)
    }

    /// Lays the letter out on new pages of `document`; returns how many pages it took.
    fn draw(&self, document: &mut Document, fonts: &Fonts) -> Result<usize, LetterError> {
        let (regular, bold) = (&fonts.regular, &fonts.bold);
        let face = |w: Weight| if w == Weight::Bold { bold } else { regular };
        let width = PAGE_WIDTH - LEFT - RIGHT;

        let settings = || {
            PageSettings::from_wh(PAGE_WIDTH, PAGE_HEIGHT)
                .ok_or_else(|| LetterError::Pdf("page size".into()))
        };
        let mut pages = 1;
        let mut page = document.start_page_with(settings()?);
        let mut surface = page.surface();
        // The sender, at the top.
        let sender = bold.paragraph(
            self.realm.display_name.get(self.lang()),
            13.0,
            f32::INFINITY,
        );
        for line in sender.iter() {
            line.draw(&mut surface, bold, 13.0, LEFT, 20.0 * MM);
        }
        // The recipient, in the window.
        let mut y = WINDOW_TOP;
        for line in self.address_lines() {
            draw(&mut surface, regular, BODY_SIZE, LEFT, y, &line);
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
                Block::Lines(lines) => {
                    let lines = lines
                        .iter()
                        .flat_map(|l| regular.paragraph(l, BODY_SIZE, f32::INFINITY).to_vec())
                        .collect();
                    (lines, Weight::Regular, BODY_SIZE)
                }
                Block::Text(text, weight, size) => (
                    face(weight).paragraph(&text, size, width).to_vec(),
                    weight,
                    size,
                ),
                Block::Own(text, weight, size) => {
                    let face = face(weight);
                    let lines = face
                        .wrap(&text, size, width)
                        .into_iter()
                        .map(|line| Shaped::new(face, line))
                        .collect();
                    (lines, weight, size)
                }
            };
            let leading = LINE.max(size * 1.35);
            for line in lines {
                if y > PAGE_HEIGHT - BOTTOM {
                    surface.finish();
                    page.finish();
                    page = document.start_page_with(settings()?);
                    surface = page.surface();
                    pages += 1;
                    y = 25.0 * MM;
                }
                line.draw(&mut surface, face(weight), size, LEFT, y);
                y += leading;
            }
        }
        surface.finish();
        page.finish();
        Ok(pages)
    }
}

fn finish(document: Document) -> Result<Vec<u8>, LetterError> {
    document
        .finish()
        .map_err(|e| LetterError::Pdf(format!("{e:?}")))
}

/// The two faces of the letters, parsed once for a whole run (krilla hashes the font bytes on
/// every `Font::new`). Cloning shares them.
#[derive(Clone)]
pub struct Fonts {
    regular: Arc<Face>,
    bold: Arc<Face>,
}

impl Fonts {
    pub fn new() -> Result<Fonts, LetterError> {
        Ok(Fonts {
            regular: Arc::new(Face::regular()?),
            bold: Arc::new(Face::bold()?),
        })
    }
}

/// The letters of a run in one PDF for the mailroom: each letter starts on a new page and
/// keeps its own pages, in the order they are added. krilla subsets and embeds each font once
/// per document, so the batch carries the font once instead of once per letter.
pub struct LetterBatch {
    document: Document,
    fonts: Fonts,
    letters: usize,
    pages: usize,
}

impl LetterBatch {
    /// An empty batch titled `title` (e.g. "AK00 activation letters 07.05.2026").
    pub fn new(fonts: Fonts, title: String, author: String) -> LetterBatch {
        let mut document = Document::new();
        document.set_metadata(
            Metadata::new()
                .title(title)
                .authors(vec![author])
                .creator("connect".to_owned()),
        );
        LetterBatch {
            document,
            fonts,
            letters: 0,
            pages: 0,
        }
    }

    pub fn add(&mut self, letter: &ActivationLetter<'_>) -> Result<(), LetterError> {
        self.pages += letter.draw(&mut self.document, &self.fonts)?;
        self.letters += 1;
        Ok(())
    }

    pub fn letters(&self) -> usize {
        self.letters
    }

    pub fn pages(&self) -> usize {
        self.pages
    }

    pub fn pdf(self) -> Result<Vec<u8>, LetterError> {
        finish(self.document)
    }
}

/// Draws one line of text with its baseline at `y` points from the top.
pub(crate) fn draw(surface: &mut Surface<'_>, face: &Face, size: f32, x: f32, y: f32, text: &str) {
    Shaped::new(face, text.to_owned()).draw(surface, face, size, x, y);
}

/// A line of text and its glyphs, shaped once.
#[derive(Clone)]
struct Shaped {
    /// With the glued spaces already ordinary ones.
    text: Arc<str>,
    glyphs: Arc<[KrillaGlyph]>,
}

impl Shaped {
    fn new(face: &Face, text: String) -> Shaped {
        let text = text.replace(GLUE, " ");
        Shaped {
            glyphs: face.shape(&text).into(),
            text: text.into(),
        }
    }

    fn draw(&self, surface: &mut Surface<'_>, face: &Face, size: f32, x: f32, y: f32) {
        surface.draw_glyphs(
            Point::from_xy(x, y),
            &self.glyphs,
            face.font.clone(),
            &self.text,
            size,
            false,
        );
    }
}

/// A paragraph's text, and the bits of its size and width in points.
type ParagraphKey = (String, u32, u32);

/// How many paragraphs a face keeps laid out: a run of letters repeats a few dozen per
/// language; the bound only keeps a long-lived process from growing without end.
const KEPT_PARAGRAPHS: usize = 4096;

/// A font for krilla to embed, with what it takes to measure and shape lines (also used by
/// the portal's demo documents).
///
/// Lines are shaped here, with a rustybuzz face and plan made once, rather than by krilla's
/// `draw_text`, which parses the font's layout tables again for every line: that was a sixth
/// of the time of a run of letters.
pub(crate) struct Face {
    font: Font,
    shaper: rustybuzz::Face<'static>,
    plan: rustybuzz::ShapePlan,
    /// Font units per em.
    em: f32,
    /// Paragraphs already wrapped and shaped, by text, size and width: wrapping and shaping
    /// the same paragraphs again for each letter was a seventh of a run's time.
    paragraphs: Mutex<HashMap<ParagraphKey, Arc<[Shaped]>>>,
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
        let shaper = rustybuzz::Face::from_slice(bytes, 0).ok_or(LetterError::Font)?;
        let plan = rustybuzz::ShapePlan::new(
            &shaper,
            rustybuzz::Direction::LeftToRight,
            Some(rustybuzz::script::LATIN),
            None,
            &[],
        );
        Ok(Face {
            font: Font::new(Data::from(data), 0).ok_or(LetterError::Font)?,
            em: f32::from(rustybuzz::ttf_parser::Face::units_per_em(&shaper)),
            shaper,
            plan,
            paragraphs: Mutex::default(),
        })
    }

    /// The glyphs of one line of the letters' Latin text, left to right, with kerning; each
    /// glyph names the bytes of `text` it stands for, so that the PDF's text can be copied.
    fn shape(&self, text: &str) -> Vec<KrillaGlyph> {
        let mut buffer = rustybuzz::UnicodeBuffer::new();
        buffer.push_str(text);
        // The properties of the plan, which `shape_with_plan` requires.
        buffer.set_direction(rustybuzz::Direction::LeftToRight);
        buffer.set_script(rustybuzz::script::LATIN);
        let shaped = rustybuzz::shape_with_plan(&self.shaper, &self.plan, buffer);
        let em = self.em;
        let infos = shaped.glyph_infos();
        infos
            .iter()
            .zip(shaped.glyph_positions())
            .enumerate()
            .map(|(i, (info, at))| {
                let start = info.cluster as usize;
                let end = infos[i + 1..]
                    .iter()
                    .map(|next| next.cluster as usize)
                    .find(|c| *c != start)
                    .unwrap_or(text.len());
                KrillaGlyph::new(
                    GlyphId::new(info.glyph_id),
                    at.x_advance as f32 / em,
                    at.x_offset as f32 / em,
                    at.y_offset as f32 / em,
                    at.y_advance as f32 / em,
                    start..end,
                    None,
                )
            })
            .collect()
    }

    /// `text` wrapped to `width` and shaped, laid out once per face.
    fn paragraph(&self, text: &str, size: f32, width: f32) -> Arc<[Shaped]> {
        let key = (text.to_owned(), size.to_bits(), width.to_bits());
        let kept = self
            .paragraphs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        if let Some(lines) = kept {
            return lines;
        }
        let lines: Arc<[Shaped]> = self
            .wrap(text, size, width)
            .into_iter()
            .map(|line| Shaped::new(self, line))
            .collect();
        let mut paragraphs = self.paragraphs.lock().unwrap_or_else(|e| e.into_inner());
        if paragraphs.len() < KEPT_PARAGRAPHS {
            paragraphs.insert(key, lines.clone());
        }
        lines
    }

    /// Width in font units, without kerning (which only narrows Latin text).
    fn units(&self, text: &str) -> u32 {
        text.chars()
            .map(|c| {
                let glyph = self
                    .shaper
                    .glyph_index(c)
                    .unwrap_or(rustybuzz::ttf_parser::GlyphId(0));
                u32::from(self.shaper.glyph_hor_advance(glyph).unwrap_or(0))
            })
            .sum()
    }

    fn points(&self, units: u32, size: f32) -> f32 {
        units as f32 * size / self.em
    }

    /// Width in points, without kerning (which only narrows Latin text).
    pub(crate) fn width(&self, text: &str, size: f32) -> f32 {
        self.points(self.units(text), size)
    }

    /// Breaks at spaces so that lines fit `width`; a word longer than a line (a long link)
    /// gets a line of its own rather than being cut. Each word is measured once.
    pub(crate) fn wrap(&self, text: &str, size: f32, width: f32) -> Vec<String> {
        let space = self.units(" ");
        let mut lines = Vec::new();
        let mut line = String::new();
        let mut line_units = 0;
        for word in text.split(' ').filter(|w| !w.is_empty()) {
            let word_units = self.units(word);
            if line.is_empty() {
                line.push_str(word);
                line_units = word_units;
            } else if self.points(line_units + space + word_units, size) <= width {
                line.push(' ');
                line.push_str(word);
                line_units += space + word_units;
            } else {
                lines.push(std::mem::replace(&mut line, word.to_owned()));
                line_units = word_units;
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
            (Language::It, "Il Suo codice di registrazione personale è:"),
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
                purpose: LetterPurpose::Enrolment,
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

    fn person(n: u64, postal_code: Option<&str>, country: &str) -> Person {
        Person {
            ahv: crate::domain::ahv_for_test(n),
            given_name: "Person".into(),
            family_name: format!("Nr{n}"),
            birth_date: NaiveDate::from_ymd_opt(1950, 3, 14).unwrap(),
            language: Language::Fr,
            address: crate::storage::persons::PostalAddress {
                street: Some("Rue 1".into()),
                postal_code: postal_code.map(str::to_owned),
                locality: Some("Ville".into()),
                country: Some(country.into()),
            },
        }
    }

    #[test]
    fn the_mailroom_order_is_swiss_postal_codes_then_abroad_then_unknown() {
        let mut persons = vec![
            person(1, None, "CH"),
            person(2, Some("75001"), "FR"),
            person(3, Some("8001"), "CH"),
            person(4, Some("1000"), "CH"),
            person(5, Some("10115"), "DE"),
            person(6, Some("3000"), "ch"),
            person(7, Some("1000"), "CH"),
        ];
        postal_order(&mut persons);
        let order: Vec<String> = persons.iter().map(|p| p.family_name.clone()).collect();
        assert_eq!(order, ["Nr4", "Nr7", "Nr6", "Nr3", "Nr5", "Nr2", "Nr1"]);
    }

    #[test]
    fn a_batch_holds_each_letter_on_its_own_pages_with_the_font_embedded_once() {
        let realms = crate::realm::Realms::load_dir(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("realm-config"),
        )
        .unwrap();
        let realm = realms.get(&"AK00".parse().unwrap()).unwrap();
        let fonts = Fonts::new().unwrap();
        let mut batch = LetterBatch::new(fonts.clone(), "batch".into(), "AK00".into());
        let people: Vec<Person> = (1..=3).map(|n| person(n, Some("1000"), "CH")).collect();
        let codes: Vec<ActivationCode> =
            people.iter().map(|_| ActivationCode::generate()).collect();
        let mut single = Vec::new();
        for (person, code) in people.iter().zip(&codes) {
            let letter = ActivationLetter {
                realm,
                person,
                code,
                registration_link: "https://login.example.ch/AK00/register",
                date: NaiveDate::from_ymd_opt(2026, 5, 7).unwrap(),
                valid_until: NaiveDate::from_ymd_opt(2026, 6, 6).unwrap(),
                validity_days: 30,
                purpose: LetterPurpose::Enrolment,
            };
            batch.add(&letter).unwrap();
            single.push(letter.pdf_with(&fonts).unwrap());
        }
        assert_eq!((batch.letters(), batch.pages()), (3, 3));
        let pdf = batch.pdf().unwrap();
        let doc = lopdf::Document::load_mem(&pdf).unwrap();
        assert_eq!(doc.get_pages().len(), 3);
        for (page, (person, code)) in (1..=3).zip(people.iter().zip(&codes)) {
            let text = doc.extract_text(&[page]).unwrap();
            let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                text.contains(&format!("Person {}", person.family_name)),
                "{text}"
            );
            assert!(text.contains(&code.to_string()), "page {page}: {text}");
        }
        // Two embedded font programs (regular and bold) for the whole batch, as in one letter.
        let font_files = |doc: &lopdf::Document| {
            doc.objects
                .values()
                .filter_map(|o| o.as_dict().ok())
                .filter(|d| d.has(b"FontFile2") || d.has(b"FontFile3"))
                .count()
        };
        assert_eq!(font_files(&doc), 2);
        let one = lopdf::Document::load_mem(&single[0]).unwrap();
        assert_eq!(font_files(&one), 2);
        assert!(
            pdf.len() < single.iter().map(Vec::len).sum::<usize>(),
            "the batch ({} bytes) is smaller than its letters apart",
            pdf.len()
        );
    }
}
