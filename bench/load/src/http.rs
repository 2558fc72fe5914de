//! One keep-alive HTTP/1.1 connection per worker (hyper's client connection, no pool), with
//! the few browser habits the login pages need: a cookie jar and `Location` headers.

use std::{collections::HashMap, net::SocketAddr};

use anyhow::{anyhow, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{
    client::conn::http1::{self, SendRequest},
    header, Method, Request, StatusCode,
};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

pub struct Response {
    pub status: StatusCode,
    pub location: Option<String>,
    pub body: Bytes,
}

impl Response {
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap_or_default()
    }

    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).context("a JSON body")
    }

    /// The response, or an error naming what was asked and what came back.
    pub fn expect(self, status: StatusCode, what: &str) -> anyhow::Result<Response> {
        if self.status == status {
            return Ok(self);
        }
        let body: String = self.text().chars().take(300).collect();
        Err(anyhow!(
            "{what}: status {} (expected {status}): {body}",
            self.status
        ))
    }
}

/// A browser of one: its own connection and cookies.
pub struct Client {
    addr: SocketAddr,
    host: String,
    sender: Option<SendRequest<Full<Bytes>>>,
    cookies: HashMap<String, String>,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Client {
        Client {
            addr,
            host: addr.to_string(),
            sender: None,
            cookies: HashMap::new(),
        }
    }

    /// Forgets every cookie: the next login starts as a new browser would.
    pub fn clear_cookies(&mut self) {
        self.cookies.clear();
    }

    /// `http://host:port/path` or `/path` as a path on this server; `None` for another place.
    pub fn path_of<'a>(&self, url: &'a str) -> Option<&'a str> {
        if url.starts_with('/') {
            return Some(url);
        }
        let rest = url
            .strip_prefix("http://")
            .and_then(|r| r.strip_prefix(self.host.as_str()))
            .or_else(|| {
                // The peer names itself by the Host header, the servers by their public URL.
                let r = url.strip_prefix("http://localhost:")?;
                r.strip_prefix(&self.addr.port().to_string())
            })?;
        Some(if rest.is_empty() { "/" } else { rest })
    }

    pub async fn get(&mut self, path: &str, bearer: Option<&str>) -> anyhow::Result<Response> {
        let auth = bearer.map(|t| format!("Bearer {t}"));
        self.send(Method::GET, path, auth.as_deref(), None).await
    }

    pub async fn post_form(
        &mut self,
        path: &str,
        basic: Option<&str>,
        form: &[(&str, &str)],
    ) -> anyhow::Result<Response> {
        let body = encode_form(form);
        self.send(Method::POST, path, basic, Some(body)).await
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        authorization: Option<&str>,
        form: Option<String>,
    ) -> anyhow::Result<Response> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.host)
            .header(header::ACCEPT, "*/*");
        if let Some(a) = authorization {
            req = req.header(header::AUTHORIZATION, a);
        }
        if !self.cookies.is_empty() {
            let cookie = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            req = req.header(header::COOKIE, cookie);
        }
        let body = match form {
            Some(f) => {
                req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Full::new(Bytes::from(f))
            }
            None => Full::new(Bytes::new()),
        };
        let req = req.body(body)?;
        let sender = self.ready().await?;
        let res = match sender.send_request(req).await {
            Ok(res) => res,
            Err(e) => {
                self.sender = None;
                return Err(e).context("request");
            }
        };
        let (parts, body) = res.into_parts();
        for value in parts.headers.get_all(header::SET_COOKIE) {
            if let Ok(v) = value.to_str() {
                self.take_cookie(v);
            }
        }
        let location = parts
            .headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = body.collect().await.context("response body")?.to_bytes();
        Ok(Response {
            status: parts.status,
            location,
            body,
        })
    }

    /// The open connection, or a new one when the server closed the last.
    async fn ready(&mut self) -> anyhow::Result<&mut SendRequest<Full<Bytes>>> {
        if let Some(s) = &mut self.sender {
            if s.ready().await.is_ok() {
                return Ok(self.sender.as_mut().expect("just checked"));
            }
        }
        let stream = TcpStream::connect(self.addr)
            .await
            .with_context(|| format!("connect to {}", self.addr))?;
        stream.set_nodelay(true)?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(self.sender.insert(sender))
    }

    fn take_cookie(&mut self, set_cookie: &str) {
        let mut parts = set_cookie.split(';');
        let Some((name, value)) = parts.next().and_then(|p| p.trim().split_once('=')) else {
            return;
        };
        let gone = value.is_empty()
            || parts.any(|attr| {
                let attr = attr.trim().to_ascii_lowercase();
                attr == "max-age=0" || attr.starts_with("max-age=-") || attr.contains("1970")
            });
        if gone {
            self.cookies.remove(name);
        } else {
            self.cookies.insert(name.to_owned(), value.to_owned());
        }
    }
}

/// `application/x-www-form-urlencoded`, percent-encoding all but the unreserved characters.
pub fn encode_form(form: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in form.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        percent_encode(k, &mut out);
        out.push('=');
        percent_encode(v, &mut out);
    }
    out
}

pub fn percent_encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// The value of a query parameter in a URL, percent-decoded.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| percent_decode(v))
    })
}

pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => match s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(b) => {
                    out.push(b);
                    i += 3;
                    continue;
                }
                None => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `name="field" value="..."` of an HTML page (attributes in that order, as both servers
/// write them), with the HTML entities the values can hold undone.
pub fn form_value(html: &str, field: &str) -> Option<String> {
    let marker = format!("name=\"{field}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(unescape(&html[start..end]))
}

/// The `action` of the first POST form of a page.
pub fn form_action(html: &str) -> Option<String> {
    html.split("<form").skip(1).find_map(|rest| {
        let tag = &rest[..rest.find('>')?];
        if !tag.contains("method=\"post\"") {
            return None;
        }
        let start = tag.find("action=\"")? + "action=\"".len();
        let end = tag[start..].find('"')? + start;
        Some(unescape(&tag[start..end]))
    })
}

/// Undoes the entities that HTML escaping writes: the named five and numeric ones
/// (`&#x2f;`, `&#X2F;`, `&#47;`).
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let decoded = rest.find(';').and_then(|end| {
            let entity = &rest[1..end];
            let ch = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => {
                    let num = entity.strip_prefix('#')?;
                    let code = match num.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                        None => num.parse().ok()?,
                    };
                    char::from_u32(code)
                }
            }?;
            Some((ch, end + 1))
        });
        match decoded {
            Some((ch, len)) => {
                out.push(ch);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_and_queries_round_trip() {
        assert_eq!(encode_form(&[("a b", "c&d=é")]), "a%20b=c%26d%3D%C3%A9");
        assert_eq!(
            query_param("http://x/cb?code=a%2Fb&state=s", "code").as_deref(),
            Some("a/b")
        );
        assert_eq!(query_param("http://x/cb?state=s", "code"), None);
        let html = r#"<form action="/lang"><form method="post" action="/R/login?flow=a&amp;b"><input type="hidden" name="csrf" value="x&#x2F;y&#x2f;&#39;&amp;z&">"#;
        assert_eq!(form_value(html, "csrf").as_deref(), Some("x/y/'&z&"));
        assert_eq!(form_action(html).as_deref(), Some("/R/login?flow=a&b"));
    }

    #[test]
    fn cookies_are_kept_and_dropped() {
        let mut c = Client::new("127.0.0.1:1".parse().unwrap());
        c.take_cookie("a=1; Path=/; HttpOnly");
        c.take_cookie("b=2");
        c.take_cookie("b=; Max-Age=0");
        assert_eq!(c.cookies.get("a").map(String::as_str), Some("1"));
        assert!(!c.cookies.contains_key("b"));
        assert_eq!(c.path_of("http://127.0.0.1:1/x?y"), Some("/x?y"));
        assert_eq!(c.path_of("http://localhost:1/x"), Some("/x"));
        assert_eq!(c.path_of("http://127.0.0.1:9/callback"), None);
    }
}
