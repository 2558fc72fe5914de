//! Receivers that tests start on 127.0.0.1: a real SMTP server (mailin-embedded, with
//! STARTTLS and AUTH when asked), a TLS front for `smtps://`, a private CA, and a small axum
//! server standing for the HTTP SMS gateway.

use std::{
    collections::VecDeque,
    net::{IpAddr, Ipv4Addr},
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
    Router,
};
use mailin_embedded::{response, AuthMechanism, Handler, Response, Server, SslConfig};

// ---------------------------------------------------------------------------------------
// Test fixtures: SMTP server, certificates, SMS receiver.

/// A message as the SMTP server received it.
#[derive(Clone, Debug)]
pub(crate) struct Received {
    pub(crate) from: String,
    pub(crate) to: Vec<String>,
    pub(crate) user: Option<String>,
    pub(crate) data: Vec<u8>,
}

/// One SMTP session's state (mailin clones the handler per connection) and the shared inbox.
#[derive(Clone, Default)]
pub(crate) struct SmtpHandler {
    pub(crate) inbox: Arc<Mutex<Vec<Received>>>,
    pub(crate) credentials: Option<(String, String)>,
    pub(crate) user: Option<String>,
    pub(crate) current: Option<Received>,
}

impl SmtpHandler {
    pub(crate) fn check(&mut self, user: &str, password: &str) -> Response {
        match &self.credentials {
            Some((u, p)) if u == user && p == password => {
                self.user = Some(user.to_owned());
                response::AUTH_OK
            }
            _ => response::INVALID_CREDENTIALS,
        }
    }
}

impl Handler for SmtpHandler {
    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current = Some(Received {
            from: from.to_owned(),
            to: to.to_vec(),
            user: self.user.clone(),
            data: Vec::new(),
        });
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        if let Some(current) = &mut self.current {
            current.data.extend_from_slice(buf);
        }
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        if let Some(current) = self.current.take() {
            self.inbox.lock().unwrap().push(current);
        }
        response::OK
    }

    fn auth_plain(&mut self, _authz: &str, user: &str, password: &str) -> Response {
        self.check(user, password)
    }

    fn auth_login(&mut self, user: &str, password: &str) -> Response {
        self.check(user, password)
    }
}

pub(crate) struct SmtpServer {
    pub(crate) port: u16,
    pub(crate) inbox: Arc<Mutex<Vec<Received>>>,
}

impl SmtpServer {
    pub(crate) fn received(&self) -> Vec<Received> {
        self.inbox.lock().unwrap().clone()
    }
}

/// mailin's TLS builds a rustls config with the process default provider; the test build
/// links two providers, so name one.
pub(crate) fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A real SMTP server on 127.0.0.1:0, on its own threads (mailin blocks).
pub(crate) fn start_smtp(tls: Option<&TestPki>, credentials: Option<(&str, &str)>) -> SmtpServer {
    install_crypto_provider();
    let handler = SmtpHandler {
        credentials: credentials.map(|(u, p)| (u.to_owned(), p.to_owned())),
        ..SmtpHandler::default()
    };
    let inbox = handler.inbox.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind SMTP");
    let port = listener.local_addr().expect("addr").port();
    let mut server = Server::new(handler);
    server
        .with_name("smtp.test")
        .with_num_threads(8)
        .with_tcp_listener(listener);
    if let Some(pki) = tls {
        server
            .with_ssl(SslConfig::SelfSigned {
                cert_path: pki.server_cert.display().to_string(),
                key_path: pki.server_key.display().to_string(),
            })
            .expect("TLS for the SMTP server");
    }
    if credentials.is_some() {
        server
            .with_auth(AuthMechanism::Plain)
            .with_auth(AuthMechanism::Login);
    }
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    SmtpServer { port, inbox }
}

/// A private CA made for the test, and a certificate for 127.0.0.1 that it signed.
pub(crate) struct TestPki {
    pub(crate) ca_file: PathBuf,
    pub(crate) server_cert: PathBuf,
    pub(crate) server_key: PathBuf,
    pub(crate) cert_der: rustls::pki_types::CertificateDer<'static>,
    pub(crate) key_der: Vec<u8>,
    pub(crate) _dir: tempfile::TempDir,
}

pub(crate) fn make_pki() -> TestPki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType,
    };
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Test caisse CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).expect("CA certificate");
    let key = KeyPair::generate().expect("server key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("server params");
    params.subject_alt_names = vec![SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST))];
    params
        .distinguished_name
        .push(DnType::CommonName, "smtp.test");
    let cert = params
        .signed_by(&key, &ca_cert, &ca_key)
        .expect("server certificate");
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write PEM");
        path
    };
    TestPki {
        ca_file: write("ca.pem", ca_cert.pem()),
        server_cert: write("server.pem", cert.pem()),
        server_key: write("server.key", key.serialize_pem()),
        cert_der: cert.der().clone(),
        key_der: key.serialize_der(),
        _dir: dir,
    }
}

/// Implicit TLS in front of a plain SMTP server, as `smtps://` needs (mailin has STARTTLS only).
pub(crate) async fn tls_front(pki: &TestPki, backend: u16) -> u16 {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("protocol versions")
    .with_no_client_auth()
    .with_single_cert(
        vec![pki.cert_der.clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key_der.clone())),
    )
    .expect("TLS config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let Ok(mut plain) = tokio::net::TcpStream::connect(("127.0.0.1", backend)).await
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    port
}

/// What the SMS receiver answers, in order; then 200.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Reply {
    Status(u16),
    /// Answers 200 only after 5 s: longer than the test's gateway timeout.
    Hang,
}

#[derive(Clone, Debug)]
pub(crate) struct SmsRequest {
    pub(crate) authorization: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) body: String,
}

#[derive(Clone, Default)]
pub(crate) struct SmsReceiver {
    pub(crate) requests: Arc<Mutex<Vec<SmsRequest>>>,
    pub(crate) script: Arc<Mutex<VecDeque<Reply>>>,
}

impl SmsReceiver {
    pub(crate) fn requests(&self) -> Vec<SmsRequest> {
        self.requests.lock().unwrap().clone()
    }
}

pub(crate) async fn receive_sms(
    State(rx): State<SmsReceiver>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    rx.requests.lock().unwrap().push(SmsRequest {
        authorization: header("authorization"),
        content_type: header("content-type"),
        body,
    });
    let reply = rx.script.lock().unwrap().pop_front();
    match reply {
        Some(Reply::Status(code)) => StatusCode::from_u16(code).expect("status"),
        Some(Reply::Hang) => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            StatusCode::OK
        }
        None => StatusCode::OK,
    }
}

/// An HTTP SMS gateway on 127.0.0.1:0; returns its URL.
pub(crate) async fn start_sms_receiver(script: &[Reply]) -> (String, SmsReceiver) {
    let rx = SmsReceiver::default();
    rx.script.lock().unwrap().extend(script.iter().copied());
    let app = Router::new()
        .route("/send", post(receive_sms))
        .with_state(rx.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/send"), rx)
}
