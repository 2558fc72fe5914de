//! Which claims about a person a client gets: by scope (OIDC Core §5.4) and by the
//! `claims` request parameter (§5.5).

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::storage::{accounts::Account, persons::Person};

/// The claim names asked for individually, per destination.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClaimsRequest {
    pub userinfo: Vec<String>,
    pub id_token: Vec<String>,
}

impl ClaimsRequest {
    /// Reads the JSON of the `claims` parameter; values (`essential`, `value`) are accepted
    /// and not enforced: claims we hold are released, others are left out.
    pub fn parse(raw: &str) -> Result<ClaimsRequest, &'static str> {
        let v: Value = serde_json::from_str(raw).map_err(|_| "claims is not valid JSON")?;
        let obj = v.as_object().ok_or("claims must be a JSON object")?;
        let names = |part: &str| -> Result<Vec<String>, &'static str> {
            match obj.get(part) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Object(m)) => Ok(m.keys().cloned().collect()),
                Some(_) => Err("claims members must be JSON objects"),
            }
        };
        Ok(ClaimsRequest {
            userinfo: names("userinfo")?,
            id_token: names("id_token")?,
        })
    }
}

/// The claims each scope stands for.
pub fn scope_claims(scope: &str) -> &'static [&'static str] {
    match scope {
        "profile" => &["name", "given_name", "family_name", "locale", "updated_at"],
        "email" => &["email", "email_verified"],
        "phone" => &["phone_number", "phone_number_verified"],
        "address" => &["address"],
        "ahv" => &["ahv_number"],
        _ => &[],
    }
}

pub const SUPPORTED: [&str; 13] = [
    "sub",
    "name",
    "given_name",
    "family_name",
    "locale",
    "updated_at",
    "email",
    "email_verified",
    "phone_number",
    "phone_number_verified",
    "address",
    "ahv_number",
    "auth_time",
];

fn value_of(name: &str, account: &Account, person: Option<&Person>) -> Option<Value> {
    Some(match name {
        "name" => json!(format!("{} {}", account.given_name, account.family_name)),
        "given_name" => json!(account.given_name),
        "family_name" => json!(account.family_name),
        "locale" => json!(account.language.code()),
        "updated_at" => json!(account.updated_at),
        "email" => json!(account.email.as_str()),
        // Proved by a code at enrolment step 3; support-made accounts proved nothing.
        "email_verified" => json!(account.email_verified_at.is_some()),
        "phone_number" => json!(account.phone.as_deref()?),
        "phone_number_verified" => {
            json!(account.phone.is_some() && account.phone_verified_at.is_some())
        }
        "ahv_number" => json!(account.ahv.as_ref()?.as_str()),
        "address" => {
            let a = &person?.address;
            let street = a.street.as_deref();
            let city = [a.postal_code.as_deref(), a.locality.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            let formatted = [street, Some(city.as_str()).filter(|c| !c.is_empty())]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("\n");
            if formatted.is_empty() {
                return None;
            }
            let mut m = Map::new();
            m.insert("formatted".into(), json!(formatted));
            for (k, v) in [
                ("street_address", &a.street),
                ("postal_code", &a.postal_code),
                ("locality", &a.locality),
                ("country", &a.country),
            ] {
                if let Some(v) = v {
                    m.insert(k.into(), json!(v));
                }
            }
            Value::Object(m)
        }
        _ => return None,
    })
}

/// Whether the `claims` parameter may pick `name` alone (OIDC Core §5.5): only a claim of a
/// scope the client is registered for, so that the parameter never reaches past the
/// registration; and the AHV number, whose systematic use Swiss law (AHVG Art. 153c)
/// restricts to authorised bodies, only with the scope `ahv` itself asked for and granted.
fn may_pick(name: &str, granted: &[String], registered: &[String]) -> bool {
    if name == "ahv_number" {
        return granted.iter().any(|s| s == "ahv") && registered.iter().any(|s| s == "ahv");
    }
    registered.iter().any(|s| scope_claims(s).contains(&name))
}

/// The claims released at userinfo: those of the `granted` scopes plus the individually
/// requested `extra` ones that a client registered for `registered` may pick.
pub fn release(
    account: &Account,
    person: Option<&Person>,
    granted: &[String],
    registered: &[String],
    extra: &[String],
) -> Map<String, Value> {
    let by_scope = granted.iter().flat_map(|s| scope_claims(s).iter().copied());
    values(
        account,
        person,
        by_scope.chain(pickable(extra, granted, registered)),
    )
}

/// The claims released in the ID token: only the individually requested ones that the client
/// may pick (scope claims are released at userinfo).
pub fn picked(
    account: &Account,
    person: Option<&Person>,
    granted: &[String],
    registered: &[String],
    extra: &[String],
) -> Map<String, Value> {
    values(account, person, pickable(extra, granted, registered))
}

fn pickable<'a>(
    extra: &'a [String],
    granted: &'a [String],
    registered: &'a [String],
) -> impl Iterator<Item = &'a str> {
    extra
        .iter()
        .map(String::as_str)
        .filter(|n| may_pick(n, granted, registered))
}

fn values<'a>(
    account: &Account,
    person: Option<&Person>,
    names: impl Iterator<Item = &'a str>,
) -> Map<String, Value> {
    let mut out = Map::new();
    for name in names {
        if !out.contains_key(name) {
            if let Some(v) = value_of(name, account, person) {
                out.insert(name.to_owned(), v);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_claims_parameter_picks_only_from_the_registered_scopes() {
        let registered = strings(&["openid", "email"]);
        let granted = strings(&["openid"]);
        assert!(may_pick("email", &granted, &registered));
        for name in [
            "ahv_number",
            "address",
            "phone_number",
            "family_name",
            "name",
        ] {
            assert!(!may_pick(name, &granted, &registered), "{name}");
        }
    }

    #[test]
    fn the_ahv_number_needs_the_ahv_scope_granted() {
        let registered = strings(&["openid", "profile", "ahv"]);
        assert!(!may_pick("ahv_number", &strings(&["openid"]), &registered));
        assert!(may_pick(
            "ahv_number",
            &strings(&["openid", "ahv"]),
            &registered
        ));
        assert!(!may_pick(
            "ahv_number",
            &strings(&["openid", "ahv"]),
            &strings(&["openid"])
        ));
        assert!(may_pick("family_name", &strings(&["openid"]), &registered));
    }

    #[test]
    fn the_claims_parameter_is_read_by_destination() {
        let c = ClaimsRequest::parse(
            r#"{"userinfo":{"name":{"essential":true}},"id_token":{"email":null}}"#,
        )
        .unwrap();
        assert_eq!(c.userinfo, vec!["name"]);
        assert_eq!(c.id_token, vec!["email"]);
        assert!(ClaimsRequest::parse("{").is_err());
        assert!(ClaimsRequest::parse("[]").is_err());
        assert!(ClaimsRequest::parse(r#"{"userinfo":3}"#).is_err());
    }
}
