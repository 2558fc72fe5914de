//! « Mes données »: everything the IdP holds about the person, as one JSON file (the right of
//! access of the Federal Act on Data Protection, art. 25): the account, its factors, the
//! caisse's register entry, the grants to applications, the open sessions and the account's
//! audit events. Never a password hash, a code, a token or a key.

use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
};
use minijinja::context;
use serde_json::{json, Value};

use super::{factors_of, me};
use crate::{
    app::AppState,
    audit::{Event, Kind},
    http::{ClientAddr, Page, PageError},
    storage::{audit, grants, persons},
};

/// Unix seconds as RFC 3339 (UTC).
fn rfc3339(at: i64) -> Value {
    chrono::DateTime::from_timestamp(at, 0)
        .map(|t| Value::from(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)))
        .unwrap_or(Value::Null)
}

pub async fn show(State(state): State<AppState>, mut page: Page) -> Result<Response, PageError> {
    me(&state, &mut page).await?;
    let realm = page.realm.id.clone();
    page.at(format!("/{realm}/account/data"));
    let ctx = context! {
        download => format!("/{realm}/account/data.json"),
        close => format!("/{realm}/account/close"),
        back => format!("/{realm}/account"),
    };
    page.render(StatusCode::OK, "account/data.html", ctx)
}

pub async fn download(
    State(state): State<AppState>,
    mut page: Page,
    addr: ClientAddr,
) -> Result<Response, PageError> {
    let me = me(&state, &mut page).await?;
    let realm = page.realm.clone();
    let a = &me.account;
    let factors: Vec<Value> = factors_of(&state.db, a)
        .await?
        .into_iter()
        .map(|f| json!({ "kind": f.label.trim_start_matches("factor-"), "detail": f.detail }))
        .collect();
    let register = match &a.ahv {
        Some(ahv) => persons::by_ahv(&state.db, &realm.id, ahv).await?,
        None => None,
    };
    let register = register.map(|p| {
        json!({
            "ahv_number": p.ahv.as_str(),
            "given_name": p.given_name,
            "family_name": p.family_name,
            "birth_date": p.birth_date.to_string(),
            "language": p.language.code(),
            "address": p.address,
        })
    });
    let applications: Vec<Value> = grants::of_account(&state.db, &realm.id, &a.id)
        .await?
        .into_iter()
        .map(|g| {
            json!({
                "client_id": g.client_id,
                "client_name": realm.clients.get(&g.client_id).map(|c| c.name.clone()),
                "scope": g.scope,
                "granted_at": rfc3339(g.created_at),
                "login_at": rfc3339(g.auth_time),
                "acr": g.acr,
                "amr": g.amr.split_whitespace().collect::<Vec<_>>(),
                "revoked_at": g.revoked_at.map(rfc3339),
            })
        })
        .collect();
    let sessions: Vec<Value> = state
        .sessions
        .list(&realm, &a.id, a.sessions_epoch)
        .await?
        .into_iter()
        .map(|s| {
            json!({
                "started_at": rfc3339(if s.started_at > 0 { s.started_at } else { s.auth_time }),
                "login_at": rfc3339(s.auth_time),
                "expires_at": rfc3339(s.expires_at),
                "acr": s.acr,
                "amr": s.amr,
                "user_agent": s.user_agent,
                "address": s.addr.map(|ip| ip.to_string()),
                "this_browser": s.sid == me.session.sid,
            })
        })
        .collect();
    let events: Vec<Value> = audit::list(&state.db, &realm.id, Some(a.id.as_str()), 0)
        .await?
        .into_iter()
        .map(|e| {
            json!({
                "at": rfc3339(e.at),
                "kind": e.kind,
                "client": e.client_id,
                "address": e.client_addr,
                "user_agent": e.user_agent,
                "reason": e.reason,
                "detail": serde_json::from_str::<Value>(&e.detail).unwrap_or(Value::Null),
            })
        })
        .collect();
    let body = json!({
        "realm": realm.id.as_str(),
        "caisse": realm.display_name,
        "generated_at": rfc3339(state.clock.unix()),
        "account": {
            "id": a.id,
            "email": a.email.as_str(),
            "email_verified_at": a.email_verified_at.map(rfc3339),
            "given_name": a.given_name,
            "family_name": a.family_name,
            "ahv_number": a.ahv.as_ref().map(|n| n.as_str()),
            "mobile_number": a.phone,
            "mobile_number_verified_at": a.phone_verified_at.map(rfc3339),
            "language": a.language.code(),
            "status": format!("{:?}", a.status).to_lowercase(),
            "created_at": rfc3339(a.created_at),
            "updated_at": rfc3339(a.updated_at),
            "terms_of_use": {
                "version": a.terms_version,
                "accepted_at": a.terms_accepted_at.map(rfc3339),
            },
        },
        "factors": factors,
        "register": register,
        "applications": applications,
        "sessions": sessions,
        "security_events": events,
    });
    let text = serde_json::to_string_pretty(&body).map_err(PageError::from)?;
    state
        .audit
        .record(
            Event::new(Kind::DataDownloaded, &realm.id)
                .account(&a.id)
                .origin(addr, page.headers()),
        )
        .await;
    let file = format!("attachment; filename=\"connect-{}-data.json\"", realm.id);
    Ok((
        page.jar,
        [
            (
                header::CONTENT_TYPE,
                "application/json; charset=utf-8".to_owned(),
            ),
            (header::CONTENT_DISPOSITION, file),
        ],
        text,
    )
        .into_response())
}
