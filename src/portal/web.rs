//! The person's side of the portal: login and logout through the IdP, the overview and
//! « Mes documents ».

use axum::{
    extract::State,
    middleware,
    routing::{get, post},
    Router,
};

use super::{auth, pages, PortalState};
use crate::http::page::{logo_response, render_failures};

pub fn router() -> Router<PortalState> {
    let pages = Router::new()
        .route("/", get(pages::overview))
        .route("/documents", get(pages::documents))
        .route("/documents/{id}", get(pages::download))
        .route("/login", get(auth::login))
        .route("/callback", get(auth::callback))
        .route("/logout", post(auth::logout))
        .layer(middleware::from_fn(render_failures));
    Router::new()
        .merge(pages)
        .route(
            "/logo",
            get(|State(state): State<PortalState>| async move { logo_response(&state.realm) }),
        )
        .route("/backchannel-logout", post(auth::backchannel))
}

/// The longest place to come back to that is kept.
const MAX_RETURN: usize = 512;

/// A place to come back to after the login, if `raw` is one of the pages above (`/`,
/// `/documents`, `/documents/<id>`) with at most a plain query: no scheme, host, `//`,
/// backslash, control character, fragment or dot segment can pass, so the browser cannot
/// turn it into another site (issue 9, defect 6: `/\t/evil.example` became `//evil.example`).
pub fn return_path(raw: &str) -> Option<String> {
    if raw.len() > MAX_RETURN {
        return None;
    }
    let (path, query) = match raw.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (raw, None),
    };
    let page = match path {
        "/" | "/documents" => true,
        _ => path
            .strip_prefix("/documents/")
            .is_some_and(|id| id.len() == 36 && uuid::Uuid::try_parse(id).is_ok()),
    };
    if !page {
        return None;
    }
    if let Some(q) = query {
        if !plain_query(q) {
            return None;
        }
    }
    Some(raw.to_owned())
}

/// Letters, digits, `-._~`, `=&+,` and well-formed percent escapes; nothing else.
fn plain_query(q: &str) -> bool {
    let b = q.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = |j: usize| b.get(j).is_some_and(u8::is_ascii_hexdigit);
                if !(hex(i + 1) && hex(i + 2)) {
                    return false;
                }
                i += 3;
            }
            c if c.is_ascii_alphanumeric() || b"-._~=&+,".contains(&c) => i += 1,
            _ => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::return_path;

    #[test]
    fn only_the_portals_own_pages_are_places_to_come_back_to() {
        let id = "0f8c2a9e-5d3b-4a71-9c1e-2b6d8f4a7e10";
        for good in [
            "/".to_owned(),
            "/?lang=fr".to_owned(),
            "/documents".to_owned(),
            "/documents?year=2025&category=decision".to_owned(),
            "/documents?lang=de%2Dch".to_owned(),
            format!("/documents/{id}"),
        ] {
            assert_eq!(return_path(&good).as_deref(), Some(good.as_str()), "{good}");
        }
        for bad in [
            "",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\nSet-Cookie: x=1",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\/evil.example",
            "/%2F/evil.example",
            "/%09/evil.example",
            "/%5Cevil.example",
            "https://evil.example",
            "javascript:alert(1)",
            " /documents",
            "/documents ",
            "/documents/",
            "/documents/../..//evil.example",
            "/documents/./",
            "/documents#//evil.example",
            "/documents?next=//evil.example",
            "/documents?x=%",
            "/documents?x=%zz",
            "/documents?x=\u{7f}",
            "/documents\u{2028}",
            "/logout",
            "/callback?code=x",
            "/documents/not-a-uuid",
            "/documents/urn:uuid:0f8c2a9e-5d3b-4a71-9c1e-2b6d8f4a7e10",
        ] {
            assert_eq!(return_path(bad), None, "{bad:?}");
        }
        let long = format!("/documents?x={}", "a".repeat(600));
        assert_eq!(return_path(&long), None);
    }
}
