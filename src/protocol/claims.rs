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

/// The claims released for `scopes` plus the individually requested `extra` ones.
pub fn release(
    account: &Account,
    person: Option<&Person>,
    scopes: &[String],
    extra: &[String],
) -> Map<String, Value> {
    let mut out = Map::new();
    let names = scopes
        .iter()
        .flat_map(|s| scope_claims(s).iter().copied())
        .chain(extra.iter().map(String::as_str));
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
