//! Relying parties of a realm. oxide-auth checks redirect URIs, secrets and PKCE behind
//! [`ClientRegistry`], whose methods speak in our terms: no oxide-auth type leaves this file.

use std::{borrow::Cow, collections::HashMap};

use oxide_auth::{
    code_grant::extensions::Pkce,
    primitives::{
        grant::Value as GrantValue,
        registrar::{
            Client as OxClient, ClientMap, ClientUrl, ExactUrl, PasswordPolicy, RegisteredUrl,
            Registrar, RegistrarError,
        },
        scope::Scope,
    },
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::SigningAlg;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    AuthorizationCode,
    RefreshToken,
    ClientCredentials,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientKind {
    /// Cannot keep a secret: PKCE is required, no client authentication.
    Public,
    /// Authenticates with a secret whose SHA-256 digest the realm file holds.
    Confidential,
}

/// A registered relying party.
#[derive(Clone, Debug)]
pub struct Client {
    pub id: String,
    pub name: String,
    pub kind: ClientKind,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    /// Scopes the client may ask for; others are dropped from its requests.
    pub scopes: Vec<String>,
    pub id_token_alg: SigningAlg,
    /// Where Logout Tokens are posted when a session this client took part in ends
    /// (OpenID Connect Back-Channel Logout 1.0 §2.2): absolute http(s), no fragment.
    pub backchannel_logout_uri: Option<url::Url>,
    /// Whether the client needs `sid` in Logout Tokens. Ours always carry it, since every
    /// logout ends one session; the setting is kept as the client registered it.
    pub backchannel_logout_session_required: bool,
    /// A resource server may introspect the access tokens of every client of the realm
    /// (RFC 7662); any other client only its own.
    pub resource_server: bool,
}

impl Client {
    pub fn allows(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    pub fn is_public(&self) -> bool {
        self.kind == ClientKind::Public
    }
}

/// Checks a presented secret against the stored SHA-256 digest, in constant time.
///
/// Client secrets are 256 random bits (`connect admin client secret`), so a fast digest is as
/// safe as a password hash here and keeps the token endpoint in microseconds.
struct Sha256Digest;

impl PasswordPolicy for Sha256Digest {
    fn store(&self, _client_id: &str, digest: &[u8]) -> Vec<u8> {
        digest.to_vec()
    }

    fn check(&self, _client_id: &str, secret: &[u8], stored: &[u8]) -> Result<(), RegistrarError> {
        let presented = Sha256::digest(secret);
        if bool::from(presented.as_slice().ct_eq(stored)) {
            Ok(())
        } else {
            Err(RegistrarError::Unspecified)
        }
    }
}

/// The clients of one realm.
pub struct ClientRegistry {
    clients: HashMap<String, Client>,
    map: ClientMap,
}

impl std::fmt::Debug for ClientRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.clients.keys()).finish()
    }
}

impl ClientRegistry {
    /// `secrets` holds the SHA-256 digest of each confidential client's secret.
    pub(super) fn new(clients: Vec<(Client, Option<[u8; 32]>)>) -> Result<Self, String> {
        let mut map = ClientMap::new();
        map.set_password_policy(Sha256Digest);
        let mut by_id = HashMap::new();
        for (client, digest) in clients {
            let mut uris = client
                .redirect_uris
                .iter()
                .map(|u| ExactUrl::new(u.clone()).map(RegisteredUrl::Exact))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("client `{}`: bad redirect URI: {e}", client.id))?;
            // Client-credentials clients have no redirect URI; oxide-auth wants one, and a
            // URL nobody can present keeps the authorization endpoint closed to them.
            let first = if uris.is_empty() {
                RegisteredUrl::Exact(
                    ExactUrl::new("urn:connect:no-redirect".to_owned())
                        .map_err(|e| e.to_string())?,
                )
            } else {
                uris.remove(0)
            };
            let scope: Scope = client
                .scopes
                .join(" ")
                .parse()
                .map_err(|_| format!("client `{}`: bad scopes", client.id))?;
            let ox = match digest {
                Some(d) => OxClient::confidential(&client.id, first, scope, &d),
                None => OxClient::public(&client.id, first, scope),
            };
            map.register_client(ox.with_additional_redirect_uris(uris));
            if by_id.insert(client.id.clone(), client).is_some() {
                return Err("two clients have the same client_id".into());
            }
        }
        Ok(Self {
            clients: by_id,
            map,
        })
    }

    pub fn get(&self, client_id: &str) -> Option<&Client> {
        self.clients.get(client_id)
    }

    /// Every client, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Client> {
        self.clients.values()
    }

    /// RFC 6749 §3.1.2 and RFC 9700 §2.1: the client may use the authorization endpoint, and
    /// the redirect URI equals a registered one, character for character. OIDC makes
    /// `redirect_uri` mandatory, so there is always one to compare.
    pub fn redirect_allowed(&self, client: &Client, redirect_uri: &str) -> bool {
        if !client.allows(GrantType::AuthorizationCode) {
            return false;
        }
        let Ok(url) = ExactUrl::new(redirect_uri.to_owned()) else {
            return false;
        };
        let bound = ClientUrl {
            client_id: Cow::Borrowed(&client.id),
            redirect_uri: Some(Cow::Owned(url)),
        };
        self.map.bound_redirect(bound).is_ok()
    }

    /// The scopes granted for a requested `scope` parameter: those asked that the client may
    /// have, in the client's order so that tokens read the same every time; scopes it may not
    /// have are dropped, not refused. `None` when the parameter has characters RFC 6749 §3.3
    /// does not allow.
    pub fn grant_scope(&self, client: &Client, asked: &str) -> Option<Vec<String>> {
        let asked: Scope = asked.parse().ok()?;
        Some(
            client
                .scopes
                .iter()
                .filter(|s| asked.iter().any(|a| a == s.as_str()))
                .cloned()
                .collect(),
        )
    }

    /// The PKCE challenge (RFC 7636) as it is stored with a code, or `None` when the request
    /// has none or one that cannot be used: PKCE is required of every client.
    pub fn pkce_challenge(method: Option<&str>, challenge: Option<&str>) -> Option<String> {
        Pkce::required()
            .challenge(method.map(Cow::Borrowed), challenge.map(Cow::Borrowed))
            .ok()
            .flatten()
            .and_then(|v| v.into_private_value().ok().flatten())
    }

    /// Whether `verifier` answers a challenge stored by [`Self::pkce_challenge`] (RFC 7636
    /// §4.6); without a stored challenge nothing does.
    pub fn pkce_verified(challenge: Option<&str>, verifier: Option<&str>) -> bool {
        let method = challenge.map(|c| GrantValue::private(Some(c.to_owned())));
        Pkce::required()
            .verify(method, verifier.map(Cow::Borrowed))
            .is_ok()
    }

    /// Authenticates a client by its secret; public clients have none to check.
    pub fn authenticate(&self, client_id: &str, secret: Option<&str>) -> Option<&Client> {
        let client = self.get(client_id)?;
        match (&client.kind, secret) {
            (ClientKind::Public, None) => Some(client),
            (ClientKind::Confidential, Some(secret)) => self
                .map
                .check(client_id, Some(secret.as_bytes()))
                .ok()
                .map(|_| client),
            _ => None,
        }
    }
}
