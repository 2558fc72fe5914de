//! The overview and « Mes documents ». Every page needs a portal session; without one the
//! browser goes through the login and comes back to the page it asked for.

use axum::{
    body::Body,
    extract::{FromRequestParts, Path, State},
    http::{header, request::Parts, StatusCode},
    response::{Html, IntoResponse, Response},
};
use axum_extra::extract::CookieJar;
use minijinja::{context, Value};
use serde::Deserialize;

use super::{
    session::{PersonSession, PortalSession},
    PortalState,
};
use crate::{
    domain::{AhvNumber, DocumentCategory, Language},
    http::{
        page::{self, PageContext},
        params::{FormRejection, Query},
        templates, PageError,
    },
    storage::documents::{self, Document},
};

/// What every portal page starts with: the person, the page's language (`?lang=`,
/// remembered; else the remembered choice; else the person's language) and the cookies.
/// The query is read strictly first: invalid UTF-8 or a repeated parameter is a 400 page.
pub struct PortalPage {
    pub person: PortalSession,
    pub lang: Language,
    pub jar: CookieJar,
}

#[derive(Deserialize)]
struct LangQuery {
    lang: Option<String>,
}

impl FromRequestParts<PortalState> for PortalPage {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &PortalState) -> Result<Self, PageError> {
        PageContext::set(parts, None, state.realm.default_language);
        let Query(q) = Query::<LangQuery>::from_request_parts(parts, state)
            .await
            .map_err(|_| PageError::new(StatusCode::BAD_REQUEST, "error-bad-request"))?;
        let PersonSession(person) = PersonSession::from_request_parts(parts, state).await?;
        let jar = CookieJar::from_headers(&parts.headers);
        let secure = state.config.portal_url.scheme() == "https";
        let (jar, lang) = if q.lang.is_some() {
            page::choose_language(
                &state.realm,
                q.lang.as_deref(),
                None,
                jar,
                &parts.headers,
                secure,
            )
        } else {
            let remembered = jar
                .get(crate::http::language::COOKIE)
                .and_then(|c| Language::from_tag(c.value()))
                .filter(|l| state.realm.offers(*l));
            (jar, remembered.unwrap_or(person.language))
        };
        PageContext::set(parts, None, lang);
        Ok(PortalPage { person, lang, jar })
    }
}

/// What the login and logout routes start with, before anyone is known: the language
/// remembered by the browser or the realm's, in which their failures are rendered, and the
/// cookies.
pub struct PortalVisit {
    pub lang: Language,
    pub jar: CookieJar,
}

impl FromRequestParts<PortalState> for PortalVisit {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &PortalState) -> Result<Self, PageError> {
        let jar = CookieJar::from_headers(&parts.headers);
        let lang = jar
            .get(crate::http::language::COOKIE)
            .and_then(|c| Language::from_tag(c.value()))
            .filter(|l| state.realm.offers(*l))
            .unwrap_or(state.realm.default_language);
        PageContext::set(parts, None, lang);
        Ok(PortalVisit { lang, jar })
    }
}

impl PortalPage {
    /// `template` on the layout with the portal's menu; `path` is the page's own, for the
    /// language switcher.
    fn render(
        self,
        state: &PortalState,
        path: &str,
        nav: &str,
        template: &str,
        ctx: Value,
    ) -> Result<Response, PageError> {
        let secure = state.config.portal_url.scheme() == "https";
        let (jar, csrf) = state.csrf.token(self.jar, secure);
        // The portal serves the caisse's logo itself, at its own address.
        let logo = state.realm.logo.as_ref().map(|_| "/logo");
        let ctx = context! {
            ..context! { nav => nav, csrf => csrf, logo => logo },
            ..page::layout(&state.realm, self.lang, path),
            ..ctx
        };
        let html = templates::render(template, ctx)?;
        Ok((StatusCode::OK, jar, Html(html)).into_response())
    }
}

/// A page's own query; [`PortalPage`] has already refused one that is not strictly readable.
fn read_query<T>(q: Result<Query<T>, FormRejection>) -> Result<T, PageError> {
    q.map(|Query(q)| q)
        .map_err(|_| PageError::new(StatusCode::BAD_REQUEST, "error-bad-request"))
}

pub async fn overview(
    State(state): State<PortalState>,
    page: PortalPage,
) -> Result<Response, PageError> {
    let (s, lang) = (&page.person, page.lang);
    let fallback = state.realm.default_language;
    let (counts, latest) = match person_ahv(s) {
        Some(ahv) => {
            let counts = documents::counts(&state.db, &state.realm.id, &ahv).await?;
            let all = documents::Filter {
                year: None,
                category: None,
            };
            let mut latest = documents::list(&state.db, &state.realm.id, &ahv, all).await?;
            latest.truncate(5);
            (counts, latest)
        }
        None => (Vec::new(), Vec::new()),
    };
    let counts: Vec<_> = counts
        .iter()
        .map(|c| context! { category => c.category.as_str(), count => c.total, unread => c.unread })
        .collect();
    let latest: Vec<Line> = latest.iter().map(|d| line(d, lang, fallback)).collect();
    let ctx = context! {
        counts => counts,
        latest => latest,
        given_name => &s.given_name,
        family_name => &s.family_name,
        ahv => &s.ahv,
        email => &s.email,
        phone => s.phone.as_deref().map(crate::domain::PhoneNumber::for_display),
        language => s.language.endonym(),
        support_phone => &state.realm.support_phone,
        support_hours => state.realm.support_hours.get(lang),
    };
    page.render(&state, "/", "overview", "portal/overview.html", ctx)
}

#[derive(Deserialize)]
pub struct DocumentsQuery {
    year: Option<String>,
    category: Option<String>,
}

/// One line of a document list.
#[derive(serde::Serialize)]
struct Line {
    id: String,
    title: String,
    date: String,
    size: String,
    unread: bool,
}

fn line(d: &Document, lang: Language, fallback: Language) -> Line {
    Line {
        id: d.id.to_string(),
        title: d.titles.get(lang, fallback).to_owned(),
        date: d.issue_date.format("%d.%m.%Y").to_string(),
        size: human_size(d.size, lang),
        unread: d.read_at.is_none(),
    }
}

/// A file size as the person's language writes it: « 245 Ko », « 1,5 Mo », "1.5 MB".
fn human_size(bytes: i64, lang: Language) -> String {
    if bytes < 1024 * 1024 {
        let n = ((bytes + 1023) / 1024).to_string();
        templates::translate_with(lang, "portal-size-kb", &[("n", n)])
    } else {
        let n = format!("{:.1}", bytes as f64 / (1024.0 * 1024.0));
        // Swiss French writes a decimal comma; German, Italian and English a point.
        let n = if lang == Language::Fr {
            n.replace('.', ",")
        } else {
            n
        };
        templates::translate_with(lang, "portal-size-mb", &[("n", n)])
    }
}

/// The AHV number of the logged-in person; without one, there are no documents to show.
fn person_ahv(s: &PortalSession) -> Option<AhvNumber> {
    s.ahv.as_deref().and_then(|a| a.parse().ok())
}

pub async fn documents(
    State(state): State<PortalState>,
    page: PortalPage,
    q: Result<Query<DocumentsQuery>, FormRejection>,
) -> Result<Response, PageError> {
    let q = read_query(q)?;
    let lang = page.lang;
    // Filters that do not parse, or name a year no document can have, are ignored, as an
    // empty choice would be (issue 9, defect 18: `year=2147483647` overflowed).
    let year = q
        .year
        .as_deref()
        .and_then(documents::Filter::year_from_query);
    let category = q
        .category
        .as_deref()
        .and_then(|c| c.parse::<DocumentCategory>().ok());
    let (docs, years) = match person_ahv(&page.person) {
        Some(ahv) => {
            let filter = documents::Filter { year, category };
            let docs = documents::list(&state.db, &state.realm.id, &ahv, filter).await?;
            let years = documents::years(&state.db, &state.realm.id, &ahv).await?;
            (docs, years)
        }
        None => (Vec::new(), Vec::new()),
    };
    let fallback = state.realm.default_language;
    let groups: Vec<_> = DocumentCategory::ALL
        .into_iter()
        .filter_map(|c| {
            let lines: Vec<Line> = docs
                .iter()
                .filter(|d| d.category == c)
                .map(|d| line(d, lang, fallback))
                .collect();
            (!lines.is_empty()).then(|| context! { category => c.as_str(), documents => lines })
        })
        .collect();
    let ctx = context! {
        groups => groups,
        years => years,
        year => year,
        category => category.map(DocumentCategory::as_str),
        categories => DocumentCategory::ALL.map(DocumentCategory::as_str),
        retention_years => state.realm.documents.retention_years,
    };
    page.render(
        &state,
        "/documents",
        "documents",
        "portal/documents.html",
        ctx,
    )
}

/// A file name that every browser and file system takes: ASCII letters, digits and dashes,
/// from the title and the date.
fn file_name(title: &str, date: chrono::NaiveDate) -> String {
    use unicode_normalization::UnicodeNormalization;
    let ascii: String = title
        .nfkd()
        .filter(char::is_ascii)
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let words: Vec<&str> = ascii.split('-').filter(|w| !w.is_empty()).collect();
    let mut name = words.join("-");
    name.truncate(60);
    if name.is_empty() {
        name = "document".into();
    }
    format!("{name}-{date}.pdf")
}

/// The PDF, streamed from the object store; opening it marks it read. Another person's id,
/// or no document, is a 404 like any unknown page.
pub async fn download(
    State(state): State<PortalState>,
    PersonSession(s): PersonSession,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let lang = s.language;
    let not_found = || PageError::new(StatusCode::NOT_FOUND, "error-not-found");
    let ahv = person_ahv(&s).ok_or_else(not_found)?;
    let id: uuid::Uuid = id.parse().map_err(|_| not_found())?;
    let doc = documents::get_for_person(&state.db, &state.realm.id, &ahv, id)
        .await?
        .ok_or_else(not_found)?;
    let body = state.blobs.get(&doc.object_key).await?;
    documents::mark_read(&state.db, &state.realm.id, &ahv, id, state.clock.unix()).await?;
    let name = file_name(
        doc.titles.get(lang, state.realm.default_language),
        doc.issue_date,
    );
    let headers = [
        (header::CONTENT_TYPE, "application/pdf".to_owned()),
        (header::CONTENT_LENGTH, body.size.to_string()),
        (
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ),
        (header::CACHE_CONTROL, "private, no-store".to_owned()),
    ];
    Ok((headers, Body::from_stream(body.chunks)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_each_language_writes_them() {
        assert_eq!(human_size(23_148, Language::Fr), "23 Ko");
        assert_eq!(human_size(23_148, Language::De), "23 KB");
        assert_eq!(human_size(1_572_864, Language::Fr), "1,5 Mo");
        assert_eq!(human_size(1_572_864, Language::En), "1.5 MB");
    }
}
