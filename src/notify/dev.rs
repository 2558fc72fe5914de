//! `/_dev/outbox`: the outbox as a page, which `app::router` serves in dev mode only.

use axum::{
    extract::{Query, State},
    http::header,
    response::{Html, IntoResponse, Response},
    routing::get,
    Router,
};
use minijinja::context;
use serde::{Deserialize, Serialize};

use super::outbox::Outbox;
use crate::{
    app::AppState,
    domain::Language,
    http::{templates, HttpError},
};

/// Enough for a session of clicking through enrolment; older entries stay in the files.
const SHOWN: usize = 50;

pub fn router() -> Router<AppState> {
    Router::new().route("/_dev/outbox", get(page))
}

#[derive(Deserialize)]
struct Params {
    lang: Option<String>,
}

#[derive(Serialize)]
struct SwitchLink {
    code: &'static str,
    name: &'static str,
    href: String,
    current: bool,
}

async fn page(
    State(state): State<AppState>,
    Query(params): Query<Params>,
) -> Result<Response, HttpError> {
    let lang = params
        .lang
        .as_deref()
        .and_then(Language::from_tag)
        .unwrap_or_else(|| state.default_language());
    let outbox = Outbox::new(&state.config.outbox_dir);
    let mails = outbox
        .mails(SHOWN)
        .await
        .map_err(HttpError::internal(lang))?;
    let sms = outbox.sms(SHOWN).await.map_err(HttpError::internal(lang))?;
    let languages: Vec<SwitchLink> = Language::ALL
        .into_iter()
        .map(|l| SwitchLink {
            code: l.code(),
            name: l.endonym(),
            href: format!("/_dev/outbox?lang={}", l.code()),
            current: l == lang,
        })
        .collect();
    let html = templates::render(
        "dev/outbox.html",
        context! {
            lang => lang.code(),
            languages => languages,
            mail_dir => state.config.outbox_dir.join("mail").display().to_string(),
            sms_file => state.config.outbox_dir.join("sms.jsonl").display().to_string(),
            smtp_configured => state.config.smtp_url.is_some(),
            gateway_configured => state.config.sms.url.is_some(),
            mails => mails,
            sms => sms,
        },
    )
    .map_err(HttpError::internal(lang))?;
    // Codes are on this page: no cache may keep it.
    Ok(([(header::CACHE_CONTROL, "no-store")], Html(html)).into_response())
}
