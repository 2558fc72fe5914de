//! Receivers that tests start on 127.0.0.1: an SMTP server (with STARTTLS and AUTH when
//! asked), a TLS front for `smtps://`, a private CA, and a small axum server standing for the
//! HTTP SMS gateway.

use std::{
    collections::VecDeque,
    io::{BufRead, BufReader, Read, Write},
    net::{IpAddr, Ipv4Addr, TcpStream},
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
use base64::{engine::general_purpose::STANDARD as BASE64, Engine};

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

pub(crate) struct SmtpServer {
    pub(crate) port: u16,
    pub(crate) inbox: Arc<Mutex<Vec<Received>>>,
}

impl SmtpServer {
    pub(crate) fn received(&self) -> Vec<Received> {
        self.inbox.lock().unwrap().clone()
    }
}

/// An SMTP server on 127.0.0.1:0, a thread per connection. It speaks what a submission
/// server offers lettre: with a certificate, STARTTLS; with credentials, AUTH PLAIN and LOGIN,
/// offered only once the session is encrypted.
pub(crate) fn start_smtp(tls: Option<&TestPki>, credentials: Option<(&str, &str)>) -> SmtpServer {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind SMTP");
    let port = listener.local_addr().expect("addr").port();
    let smtp = Arc::new(Smtp {
        tls: tls.map(server_tls_config),
        credentials: credentials.map(|(u, p)| (u.to_owned(), p.to_owned())),
        inbox: Arc::default(),
    });
    let inbox = smtp.inbox.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let smtp = smtp.clone();
            // A session ends with QUIT or when the client goes; an error only ends it early.
            std::thread::spawn(move || smtp.session(stream));
        }
    });
    SmtpServer { port, inbox }
}

struct Smtp {
    tls: Option<Arc<rustls::ServerConfig>>,
    credentials: Option<(String, String)>,
    inbox: Arc<Mutex<Vec<Received>>>,
}

/// The connection, plain or, after STARTTLS, encrypted.
trait Io: Read + Write + Send {}
impl<T: Read + Write + Send> Io for T {}

type Conn = BufReader<Box<dyn Io>>;

impl Smtp {
    fn session(&self, stream: TcpStream) -> std::io::Result<()> {
        let mut conn: Conn = BufReader::new(Box::new(stream));
        let mut encrypted = false;
        let mut user = None;
        let mut envelope: Option<(String, Vec<String>)> = None;
        reply(&mut conn, "220 smtp.test ESMTP")?;
        loop {
            let line = String::from_utf8_lossy(&read_line(&mut conn)?).into_owned();
            let (verb, arg) = line.split_once(' ').unwrap_or((&line, ""));
            match verb.to_ascii_uppercase().as_str() {
                "EHLO" | "HELO" => {
                    let mut lines = vec!["smtp.test".to_owned(), "8BITMIME".to_owned()];
                    if self.tls.is_some() && !encrypted {
                        lines.push("STARTTLS".to_owned());
                    }
                    if self.credentials.is_some() && encrypted {
                        lines.push("AUTH PLAIN LOGIN".to_owned());
                    }
                    let last = lines.len() - 1;
                    for (i, text) in lines.iter().enumerate() {
                        let dash = if i == last { ' ' } else { '-' };
                        reply(&mut conn, &format!("250{dash}{text}"))?;
                    }
                }
                "STARTTLS" if !encrypted && self.tls.is_some() => {
                    reply(&mut conn, "220 Ready to start TLS")?;
                    let config = self.tls.clone().expect("TLS configured");
                    let server =
                        rustls::ServerConnection::new(config).map_err(std::io::Error::other)?;
                    // The client waits for the 220 before its handshake: nothing is buffered.
                    conn = BufReader::new(Box::new(rustls::StreamOwned::new(
                        server,
                        conn.into_inner(),
                    )));
                    encrypted = true;
                    envelope = None;
                }
                "AUTH" if encrypted && self.credentials.is_some() => {
                    let (name, password) = authenticate(&mut conn, arg)?;
                    if self.credentials == Some((name.clone(), password)) {
                        user = Some(name);
                        reply(&mut conn, "235 Authentication succeeded")?;
                    } else {
                        reply(&mut conn, "535 Invalid credentials")?;
                    }
                }
                "MAIL" => {
                    envelope = Some((address(arg), Vec::new()));
                    reply(&mut conn, "250 OK")?;
                }
                "RCPT" => match &mut envelope {
                    Some((_, to)) => {
                        to.push(address(arg));
                        reply(&mut conn, "250 OK")?;
                    }
                    None => reply(&mut conn, "503 Bad sequence of commands")?,
                },
                "DATA" => match envelope.take() {
                    Some((from, to)) => {
                        reply(&mut conn, "354 Start mail input; end with <CRLF>.<CRLF>")?;
                        let data = read_data(&mut conn)?;
                        self.inbox.lock().unwrap().push(Received {
                            from,
                            to,
                            user: user.clone(),
                            data,
                        });
                        reply(&mut conn, "250 OK")?;
                    }
                    None => reply(&mut conn, "503 Bad sequence of commands")?,
                },
                "RSET" => {
                    envelope = None;
                    reply(&mut conn, "250 OK")?;
                }
                "NOOP" => reply(&mut conn, "250 OK")?,
                "QUIT" => return reply(&mut conn, "221 Goodbye"),
                _ => reply(&mut conn, "502 Command not implemented")?,
            }
        }
    }
}

fn reply(conn: &mut Conn, line: &str) -> std::io::Result<()> {
    let out = conn.get_mut();
    out.write_all(format!("{line}\r\n").as_bytes())?;
    out.flush()
}

/// One line without its CRLF; the end of the connection is an error.
fn read_line(conn: &mut Conn) -> std::io::Result<Vec<u8>> {
    let mut line = Vec::new();
    if conn.read_until(b'\n', &mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    Ok(line)
}

/// The message after DATA, up to the lone dot, with the dot-stuffing undone (RFC 5321 4.5.2).
fn read_data(conn: &mut Conn) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    loop {
        let mut line = Vec::new();
        if conn.read_until(b'\n', &mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(data);
        }
        data.extend_from_slice(line.strip_prefix(b".").unwrap_or(&line));
    }
}

/// `FROM:<a@b> BODY=8BITMIME` or `TO:<a@b>`: the address.
fn address(arg: &str) -> String {
    let start = arg.find('<').map_or(0, |i| i + 1);
    let end = arg[start..].find('>').map_or(arg.len(), |i| start + i);
    arg[start..end].to_owned()
}

/// AUTH PLAIN (with or without the initial response) or LOGIN: the user name and password.
fn authenticate(conn: &mut Conn, arg: &str) -> std::io::Result<(String, String)> {
    let decode = |b64: &[u8]| {
        let bytes = BASE64.decode(b64).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let (mechanism, initial) = arg.split_once(' ').unwrap_or((arg, ""));
    if mechanism.eq_ignore_ascii_case("LOGIN") {
        let name = if initial.is_empty() {
            reply(conn, "334 VXNlcm5hbWU6")?;
            decode(&read_line(conn)?)
        } else {
            decode(initial.as_bytes())
        };
        reply(conn, "334 UGFzc3dvcmQ6")?;
        let password = decode(&read_line(conn)?);
        return Ok((name, password));
    }
    let plain = if initial.is_empty() {
        reply(conn, "334 ")?;
        decode(&read_line(conn)?)
    } else {
        decode(initial.as_bytes())
    };
    // authzid NUL authcid NUL password
    let mut parts = plain.splitn(3, '\0').skip(1);
    let name = parts.next().unwrap_or_default().to_owned();
    let password = parts.next().unwrap_or_default().to_owned();
    Ok((name, password))
}

/// A private CA made for the test, and a certificate for 127.0.0.1 that it signed.
pub(crate) struct TestPki {
    pub(crate) ca_file: PathBuf,
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
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_cert.pem()).expect("write PEM");
    TestPki {
        ca_file,
        cert_der: cert.der().clone(),
        key_der: key.serialize_der(),
        _dir: dir,
    }
}

/// The server side of TLS with the PKI's certificate for 127.0.0.1.
fn server_tls_config(pki: &TestPki) -> Arc<rustls::ServerConfig> {
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
    Arc::new(config)
}

/// Implicit TLS in front of a plain SMTP server, as `smtps://` needs (the SMTP server has STARTTLS only).
pub(crate) async fn tls_front(pki: &TestPki, backend: u16) -> u16 {
    let acceptor = tokio_rustls::TlsAcceptor::from(server_tls_config(pki));
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
