//! « Sessions »: each open session of the account, when it started, in which browser
//! (roughly, from its `User-Agent`) and from which network (the address cut to its /24 or
//! /48: no lookup service learns it); « Se déconnecter partout ailleurs » ends the others.

use std::net::IpAddr;

use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::Response,
};
use minijinja::{context, Value};
use serde::{Deserialize, Serialize};

use super::{me, swiss_time};
use crate::{
    app::AppState,
    audit::{Event, Kind},
    http::{
        page::csrf_forms,
        params::{Form, FormRejection},
        ClientAddr, Page, PageError,
    },
};

/// A browser as a person names it: the program and the system, where the `User-Agent`
/// tells them. Order matters: Edge and Opera also say « Chrome », Chrome also says
/// « Safari ».
pub fn browser_of(user_agent: &str) -> (Option<&'static str>, Option<&'static str>) {
    let has = |needle: &str| user_agent.contains(needle);
    let program = if has("Edg/") || has("EdgA/") || has("EdgiOS/") {
        Some("Edge")
    } else if has("OPR/") || has("Opera") {
        Some("Opera")
    } else if has("SamsungBrowser/") {
        Some("Samsung Internet")
    } else if has("Firefox/") || has("FxiOS/") {
        Some("Firefox")
    } else if has("Chrome/") || has("CriOS/") || has("Chromium/") {
        Some("Chrome")
    } else if has("Safari/") && has("Version/") {
        Some("Safari")
    } else {
        None
    };
    let system = if has("Windows") {
        Some("Windows")
    } else if has("Android") {
        Some("Android")
    } else if has("iPhone") || has("iPod") {
        Some("iPhone")
    } else if has("iPad") {
        Some("iPad")
    } else if has("CrOS") {
        Some("ChromeOS")
    } else if has("Macintosh") || has("Mac OS X") {
        Some("macOS")
    } else if has("Linux") {
        Some("Linux")
    } else {
        None
    };
    (program, system)
}

/// The network an address belongs to, as far as the page shows it: its /24 (IPv4) or /48
/// (IPv6), enough for a person to tell home from elsewhere, too little to find them.
pub fn network_of(addr: IpAddr) -> String {
    match addr.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            format!("{a}.{b}.{c}.*")
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

/// One session as the page lists it.
#[derive(Serialize)]
struct SessionLine {
    started: String,
    program: Option<&'static str>,
    system: Option<&'static str>,
    network: Option<String>,
    current: bool,
}

#[derive(Deserialize)]
pub struct SessionsQuery {
    done: Option<String>,
}

csrf_forms! {
    pub struct OthersForm {}
}

pub async fn show(
    State(state): State<AppState>,
    mut page: Page,
    Query(q): Query<SessionsQuery>,
) -> Result<Response, PageError> {
    let me = me(&state, &mut page).await?;
    let realm = page.realm.clone();
    let sessions = state
        .sessions
        .list(&realm, &me.account.id, me.account.sessions_epoch)
        .await?;
    let mut lines: Vec<SessionLine> = sessions
        .iter()
        .map(|s| {
            let (program, system) = s.user_agent.as_deref().map_or((None, None), browser_of);
            let started = if s.started_at > 0 {
                s.started_at
            } else {
                s.auth_time
            };
            SessionLine {
                started: swiss_time(started),
                program,
                system,
                network: s.addr.map(network_of),
                current: s.sid == me.session.sid,
            }
        })
        .collect();
    // This browser's session first, then the others, newest first.
    lines.reverse();
    lines.sort_by_key(|l| !l.current);
    let others = lines.iter().filter(|l| !l.current).count();
    page.at(format!("/{}/account/sessions", realm.id));
    let ctx = context! {
        csrf => page.csrf(),
        sessions => Value::from_serialize(&lines),
        others => others,
        done => q.done.is_some(),
        action => format!("/{}/account/sessions/others", realm.id),
        back => format!("/{}/account", realm.id),
    };
    page.render(StatusCode::OK, "account/sessions.html", ctx)
}

/// « Se déconnecter partout ailleurs »: every other session and its grants end, with
/// back-channel logout; this one stays.
pub async fn end_others(
    State(state): State<AppState>,
    mut page: Page,
    addr: ClientAddr,
    form: Result<Form<OthersForm>, FormRejection>,
) -> Result<Response, PageError> {
    page.read(form)?;
    let me = me(&state, &mut page).await?;
    let realm = page.realm.clone();
    let ended = state
        .logouts
        .end_others(&realm, &me.account.id, &me.session.sid)
        .await?;
    state
        .audit
        .record(
            Event::new(Kind::SessionsEnded, &realm.id)
                .account(&me.account.id)
                .origin(addr, page.headers())
                .detail(serde_json::json!({ "why": "others_by_person", "sessions": ended, "kept": "current" })),
        )
        .await;
    tracing::info!(realm = %realm.id, account = %me.account.id, sessions = ended, "the person ended their other sessions");
    Ok(page.redirect(&format!("/{}/account/sessions?done=1", realm.id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_browsers_are_named_roughly() {
        let cases = [
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0", (Some("Firefox"), Some("Windows"))),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0", (Some("Edge"), Some("Windows"))),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", (Some("Safari"), Some("macOS"))),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", (Some("Safari"), Some("iPhone"))),
            ("Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36", (Some("Samsung Internet"), Some("Android"))),
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36", (Some("Chrome"), Some("Linux"))),
            ("curl/8.5.0", (None, None)),
            ("", (None, None)),
        ];
        for (ua, expected) in cases {
            assert_eq!(browser_of(ua), expected, "{ua}");
        }
    }

    #[test]
    fn addresses_are_cut_to_their_network() {
        assert_eq!(network_of("203.0.113.77".parse().unwrap()), "203.0.113.*");
        assert_eq!(
            network_of("2001:db8:abcd:12:1:2:3:4".parse().unwrap()),
            "2001:db8:abcd::/48"
        );
        assert_eq!(network_of("::ffff:192.0.2.9".parse().unwrap()), "192.0.2.*");
    }
}
