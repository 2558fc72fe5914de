//! Demo documents for the demo person, written by `connect dev`: three readable A4 PDFs in
//! French (a statement, a decision, a tax certificate) with sample content, stored through
//! the same `deliver::store` as the delivery API.

use bytes::Bytes;
use chrono::{Datelike, Months, NaiveDate};
use krilla::{metadata::Metadata, page::PageSettings, Document};

use super::{
    deliver::{self, DeliverError, NewDocument},
    PortalState,
};
use crate::{
    domain::{AhvNumber, DocumentCategory, DocumentTitles, Language},
    letter::{draw, swiss_date, swiss_format, Face, LetterError, MM, PAGE_HEIGHT, PAGE_WIDTH},
    storage::{documents, StoreError},
};

/// The delivering "client" recorded for demo documents.
pub const DEMO_CLIENT: &str = "demo";

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo document: {0}")]
    Pdf(#[from] LetterError),
    #[error("demo document: {0}")]
    Deliver(#[from] DeliverError),
    #[error("demo documents: {0}")]
    Store(#[from] StoreError),
}

/// What a sample page says, top to bottom.
enum Line {
    Title(String),
    Text(String),
    /// A label and an amount, the amount right-aligned.
    Amount(String, String),
    Gap,
}

struct Sample {
    category: DocumentCategory,
    title: String,
    date: NaiveDate,
    lines: Vec<Line>,
}

/// Writes the demo documents for `ahv` unless the person has documents already; returns how
/// many were written.
pub async fn documents(state: &PortalState, ahv: &AhvNumber) -> Result<usize, DemoError> {
    let existing = documents::list(
        &state.db,
        &state.realm.id,
        ahv,
        documents::Filter::default(),
    )
    .await?;
    if !existing.is_empty() {
        return Ok(0);
    }
    let today = swiss_date(state.clock.now());
    let samples = samples(ahv, today);
    let count = samples.len();
    for sample in samples {
        let pdf = render(
            &state.realm.display_name,
            state.realm.letter_place.as_deref(),
            &sample,
        )?;
        deliver::store(
            state,
            NewDocument {
                ahv: ahv.clone(),
                category: sample.category,
                titles: DocumentTitles::single(Language::Fr, &sample.title)
                    .map_err(|e| LetterError::Pdf(e.to_string()))?,
                issue_date: sample.date,
                client_id: DEMO_CLIENT.into(),
                idempotency_key: None,
                body: Bytes::from(pdf),
            },
        )
        .await?;
    }
    tracing::info!(realm = %state.realm.id, count, "demo documents written");
    Ok(count)
}

/// Whole francs as written in Switzerland: CHF 29'400.00.
fn chf(francs: u64) -> String {
    let digits = francs.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push('\'');
        }
        grouped.push(c);
    }
    format!("CHF {grouped}.00")
}

const MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

fn samples(ahv: &AhvNumber, today: NaiveDate) -> Vec<Sample> {
    let pension: u64 = 2450;
    let first_of_month = today.with_day(1).unwrap_or(today);
    let month = MONTHS[first_of_month.month0() as usize];
    let year = first_of_month.year();
    let decision_date = today.checked_sub_months(Months::new(2)).unwrap_or(today);
    let pension_start = decision_date
        .with_day(1)
        .and_then(|d| d.checked_add_months(Months::new(1)))
        .unwrap_or(decision_date);
    let tax_year = today.year() - 1;
    let tax_date = NaiveDate::from_ymd_opt(today.year(), 1, 15)
        .filter(|d| *d <= today)
        .unwrap_or(today);
    let ahv = ahv.as_str();
    use Line::*;
    vec![
        Sample {
            category: DocumentCategory::Statement,
            title: format!("Décompte de rente – {month} {year}"),
            date: first_of_month,
            lines: vec![
                Title(format!("Décompte de rente – {month} {year}")),
                Text(format!("Numéro AVS : {ahv}")),
                Gap,
                Text(format!(
                    "Madame, Monsieur, voici le décompte des prestations versées pour le mois de {month} {year}."
                )),
                Gap,
                Amount("Rente ordinaire de vieillesse AVS".into(), chf(pension)),
                Amount("Supplément pour conjoint".into(), chf(0)),
                Amount("Montant versé".into(), chf(pension)),
                Gap,
                Text(format!(
                    "Versement le 20.{:02}.{year} sur le compte CH93 0076 2011 6238 5295 7.",
                    first_of_month.month()
                )),
                Text("Ce décompte a été établi automatiquement et ne porte pas de signature.".into()),
            ],
        },
        Sample {
            category: DocumentCategory::Decision,
            title: "Décision de rente de vieillesse".into(),
            date: decision_date,
            lines: vec![
                Title("Décision de rente de vieillesse".into()),
                Text(format!("Numéro AVS : {ahv}")),
                Gap,
                Text(format!(
                    "Madame, Monsieur, nous vous octroyons dès le {} une rente ordinaire de vieillesse de l'AVS.",
                    swiss_format(pension_start)
                )),
                Gap,
                Amount("Rente mensuelle".into(), chf(pension)),
                Amount("Revenu annuel moyen déterminant".into(), chf(88_200)),
                Amount("Durée de cotisation".into(), "44 ans".into()),
                Amount("Échelle de rente".into(), "44 (complète)".into()),
                Gap,
                Text("Voies de droit : cette décision peut faire l'objet d'une opposition écrite auprès de la caisse de compensation dans les 30 jours dès sa notification.".into()),
            ],
        },
        Sample {
            category: DocumentCategory::TaxCertificate,
            title: format!("Attestation fiscale {tax_year}"),
            date: tax_date,
            lines: vec![
                Title(format!("Attestation fiscale {tax_year}")),
                Text(format!("Numéro AVS : {ahv}")),
                Gap,
                Text(format!(
                    "Prestations versées du 01.01.{tax_year} au 31.12.{tax_year}, à reporter dans votre déclaration d'impôt sous les rentes AVS/AI."
                )),
                Gap,
                Amount("Rente ordinaire de vieillesse AVS".into(), chf(12 * pension)),
                Amount("Prestations complémentaires".into(), chf(0)),
                Amount("Total imposable".into(), chf(12 * pension)),
                Gap,
                Text("Cette attestation a été établie automatiquement et ne porte pas de signature.".into()),
            ],
        },
    ]
}

/// One A4 page: the caisse at the top, place and date, then the lines.
fn render(sender: &str, place: Option<&str>, sample: &Sample) -> Result<Vec<u8>, LetterError> {
    let regular = Face::regular()?;
    let bold = Face::bold()?;
    let left = 25.0 * MM;
    let right = PAGE_WIDTH - 20.0 * MM;
    let width = right - left;
    let size = 11.0;
    let line = 15.0;

    let mut document = Document::new();
    document.set_metadata(
        Metadata::new()
            .title(sample.title.clone())
            .language("fr".to_owned())
            .authors(vec![sender.to_owned()])
            .creator("connect (demo)".to_owned()),
    );
    let settings = PageSettings::from_wh(PAGE_WIDTH, PAGE_HEIGHT)
        .ok_or_else(|| LetterError::Pdf("page size".into()))?;
    let mut page = document.start_page_with(settings);
    let mut surface = page.surface();
    draw(&mut surface, &bold, 13.0, left, 20.0 * MM, sender);
    draw(
        &mut surface,
        &regular,
        size,
        left,
        20.0 * MM + line,
        &match place {
            Some(place) => format!("{place}, le {}", swiss_format(sample.date)),
            None => swiss_format(sample.date),
        },
    );
    let mut y = 50.0 * MM;
    for l in &sample.lines {
        match l {
            Line::Title(t) => {
                for text in bold.wrap(t, 14.0, width) {
                    draw(&mut surface, &bold, 14.0, left, y, &text);
                    y += 20.0;
                }
            }
            Line::Text(t) => {
                for text in regular.wrap(t, size, width) {
                    draw(&mut surface, &regular, size, left, y, &text);
                    y += line;
                }
            }
            Line::Amount(label, amount) => {
                draw(&mut surface, &regular, size, left, y, label);
                let x = right - regular.width(amount, size);
                draw(&mut surface, &regular, size, x, y, amount);
                y += line;
            }
            Line::Gap => y += line / 2.0,
        }
    }
    surface.finish();
    page.finish();
    document
        .finish()
        .map_err(|e| LetterError::Pdf(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_grouped_the_swiss_way() {
        assert_eq!(chf(0), "CHF 0.00");
        assert_eq!(chf(245), "CHF 245.00");
        assert_eq!(chf(2450), "CHF 2'450.00");
        assert_eq!(chf(29_400), "CHF 29'400.00");
        assert_eq!(chf(1_088_200), "CHF 1'088'200.00");
    }

    #[test]
    fn the_three_samples_render_as_readable_pdfs() {
        let ahv: AhvNumber = "756.1234.5678.97".parse().unwrap();
        let today = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        let samples = samples(&ahv, today);
        assert_eq!(samples.len(), 3);
        for (sample, words) in samples.iter().zip([
            "Décompte de rente – novembre 2026",
            "Décision de rente de vieillesse",
            "Attestation fiscale 2025",
        ]) {
            assert!(sample.date <= today);
            let pdf = render("Caisse de compensation AK00", Some("Berne"), sample).unwrap();
            assert!(pdf.starts_with(b"%PDF-"));
            let doc = lopdf::Document::load_mem(&pdf).unwrap();
            let text = doc.extract_text(&[1]).unwrap();
            let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
            for expected in [
                words,
                "756.1234.5678.97",
                "Caisse de compensation AK00",
                "Berne, le ",
            ] {
                assert!(text.contains(expected), "`{expected}` in {text}");
            }
        }
    }
}
