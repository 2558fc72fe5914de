//! Mail through an SMTP server, with lettre's pooled transport built from `smtp_url`.

use std::{path::Path, time::Duration};

use lettre::{
    transport::smtp::client::{Certificate, Tls, TlsParameters},
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::NotifyError;

pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    timeout: Duration,
}

impl Smtp {
    /// `config::check_smtp_url` has accepted the URL; errors here still never repeat it.
    pub fn new(
        url: &SecretString,
        ca_file: Option<&Path>,
        timeout: Duration,
    ) -> Result<Smtp, NotifyError> {
        let raw = url.expose_secret();
        let not_understood = || NotifyError::Config("smtp_url: not understood".into());
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::from_url(raw).map_err(|_| not_understood())?;
        if let Some(path) = ca_file {
            // from_url chose the TLS mode; only the trusted roots change, so build the same
            // mode again with the caisse's CA added to the usual ones.
            let url = Url::parse(raw).map_err(|_| not_understood())?;
            let host = url.host_str().ok_or_else(not_understood)?.to_owned();
            let pem = std::fs::read(path).map_err(|e| {
                NotifyError::Config(format!("smtp_ca_file: cannot read {}: {e}", path.display()))
            })?;
            let ca = Certificate::from_pem(&pem).map_err(|e| {
                NotifyError::Config(format!("smtp_ca_file: {}: {e}", path.display()))
            })?;
            let params = TlsParameters::builder(host)
                .add_root_certificate(ca)
                .build()
                .map_err(|e| NotifyError::Config(format!("smtp_ca_file: {e}")))?;
            let mode = url
                .query_pairs()
                .find(|(k, _)| k == "tls")
                .map(|(_, v)| v.into_owned());
            builder = match (url.scheme(), mode.as_deref()) {
                ("smtps", _) => builder.tls(Tls::Wrapper(params)),
                (_, Some("required")) => builder.tls(Tls::Required(params)),
                (_, Some("opportunistic")) => builder.tls(Tls::Opportunistic(params)),
                // Plain SMTP: nothing to verify, the file is not used.
                _ => builder,
            };
        }
        Ok(Smtp {
            transport: builder.timeout(Some(timeout)).build(),
            timeout,
        })
    }

    /// One attempt, bounded by the timeout as a whole; lettre's own timeout bounds each
    /// exchange on the socket. A failed mail is not retried here: the person may ask again.
    pub async fn send(&self, message: Message) -> Result<(), NotifyError> {
        match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(NotifyError::Mail(format!("SMTP: {}", describe(&e)))),
            Err(_) => Err(NotifyError::Mail(format!(
                "SMTP: no answer within {} s",
                self.timeout.as_secs()
            ))),
        }
    }
}

/// A server's answer may quote the recipient's address, so only its code is kept; other
/// errors (connection, TLS, timeout) say what went wrong.
fn describe(e: &lettre::transport::smtp::Error) -> String {
    match e.status() {
        Some(code) if e.is_permanent() => format!("the server refused with {code}"),
        Some(code) => format!("the server answered {code}, try again later"),
        None => e.to_string(),
    }
}
