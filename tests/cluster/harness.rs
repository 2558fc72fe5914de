//! What a cluster test starts on 127.0.0.1 and stops when dropped: `connect serve` and
//! `connect portal` replicas (the release binary), nginx in front of them, a Redis of its own
//! on its own port, a TCP proxy in front of the machine's PostgreSQL that the test can cut,
//! an SMTP server and an SMS gateway. The machine's shared PostgreSQL and Redis are never
//! stopped: only what the test started is.

use std::{
    net::TcpListener as StdListener,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use base64::Engine;
use sha2::Digest;
use tokio::{
    net::{TcpListener, TcpStream},
    process::{Child, Command},
    task::JoinHandle,
};

use crate::receivers::{start_sms_receiver, start_smtp, SmsReceiver, SmtpServer};

/// The PostgreSQL server the tests may use, or `None` (then the cluster tests are skipped).
pub fn postgres_url() -> Option<String> {
    match std::env::var("CONNECT_TEST_DATABASE_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            // Straight to stderr: libtest keeps what eprintln! says of a passing test.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "cluster tests skipped: they need PostgreSQL; set CONNECT_TEST_DATABASE_URL \
                 (as the second test step of .ci/run does)"
            );
            None
        }
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Secrets of the test's clients: fresh, so that `serve` (which refuses the published
/// development secrets) starts.
pub const PORTAL_SECRET: &str = "cluster-portal-secret-4f1c";
pub const BENCH_SECRET: &str = "cluster-bench-secret-9a2e";
pub const DOCS_SECRET: &str = "cluster-docs-secret-77d0";

fn sha256_hex(s: &str) -> String {
    hex::encode(sha2::Sha256::digest(s.as_bytes()))
}

fn random_key() -> String {
    let mut key = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut key);
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// A fresh database on the test server; its URL.
pub async fn fresh_database(admin_url: &str) -> String {
    use sqlx::Connection;
    let name = format!("connect_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .expect("CONNECT_TEST_DATABASE_URL reachable");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let mut url = url::Url::parse(admin_url).expect("a URL");
    url.set_path(&name);
    url.to_string()
}

/// A redis-server of the test's own, without persistence: a restart loses everything.
pub struct Redis {
    pub port: u16,
    child: Option<Child>,
}

impl Redis {
    pub async fn start() -> Redis {
        let mut redis = Redis {
            port: free_port(),
            child: None,
        };
        redis.restart().await;
        redis
    }

    pub fn url(&self, db: u8) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
    }

    /// Kills the server (SIGKILL: what it held is gone).
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Starts the server again on the same port, empty.
    pub async fn restart(&mut self) {
        self.stop().await;
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).await.is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A TCP proxy in front of PostgreSQL: `cut` drops every open connection and refuses new
/// ones (the database unreachable), `restore` lets them through again.
pub struct PgProxy {
    pub port: u16,
    cut: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl PgProxy {
    pub async fn start(upstream: &str) -> PgProxy {
        let target = url::Url::parse(upstream).expect("a URL");
        let target = format!(
            "{}:{}",
            target.host_str().expect("host"),
            target.port().unwrap_or(5432)
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let cut = Arc::new(AtomicBool::new(false));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept = {
            let (cut, links) = (cut.clone(), links.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((mut client, _)) = listener.accept().await else {
                        continue;
                    };
                    if cut.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let target = target.clone();
                    let link = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(&target).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    let mut links = links.lock().unwrap();
                    links.retain(|l| !l.is_finished());
                    links.push(link);
                }
            })
        };
        PgProxy {
            port,
            cut,
            links,
            accept,
        }
    }

    /// The database URL `url` reached through this proxy.
    pub fn url(&self, url: &str) -> String {
        let mut url = url::Url::parse(url).expect("a URL");
        url.set_port(Some(self.port)).expect("a port");
        url.to_string()
    }

    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for PgProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Idp,
    Portal,
}

/// One `connect serve` or `connect portal` process.
pub struct Replica {
    pub kind: Kind,
    pub port: u16,
    pub child: Child,
    pub log: PathBuf,
}

impl Replica {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("a running replica")
    }

    /// SIGTERM, as an orchestrator stops a replica.
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// SIGKILL: the process is gone at once, with whatever it held in memory.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("SIGKILL");
    }
}

/// What a cluster is made of.
pub struct Shape {
    pub idp: usize,
    pub portal: usize,
    /// PostgreSQL through a proxy the test can cut.
    pub pg_proxy: bool,
    /// `shutdown_timeout_seconds` of every replica.
    pub shutdown_seconds: u64,
}

impl Shape {
    pub fn new(idp: usize, portal: usize) -> Shape {
        Shape {
            idp,
            portal,
            pg_proxy: false,
            shutdown_seconds: 10,
        }
    }
}

/// A running cluster: replicas, nginx, and the services they share.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub config_file: PathBuf,
    pub idp: Vec<Replica>,
    pub portal: Vec<Replica>,
    pub idp_lb: u16,
    pub portal_lb: u16,
    pub redis: Redis,
    pub pg: Option<PgProxy>,
    pub idp_db: String,
    pub portal_db: String,
    pub smtp: SmtpServer,
    pub sms: SmsReceiver,
    nginx: Option<std::process::Child>,
    binary: PathBuf,
}

/// The shipped realm files with fresh client secrets and the portal's URLs at the balancer.
fn write_realms(dir: &Path, portal_url: &str) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("realm-config");
    let dst = dir.join("realms");
    std::fs::create_dir_all(dst.join("logos")).unwrap();
    for entry in std::fs::read_dir(src.join("logos")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dst.join("logos").join(path.file_name().unwrap())).unwrap();
    }
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let mut text = std::fs::read_to_string(&path).unwrap();
        for (published, fresh) in [
            ("portal-dev-secret", PORTAL_SECRET),
            ("bench-secret", BENCH_SECRET),
            ("caisse-docs-secret", DOCS_SECRET),
        ] {
            text = text.replace(&sha256_hex(published), &sha256_hex(fresh));
        }
        text = text.replace("http://127.0.0.1:8090", portal_url);
        std::fs::write(dst.join(path.file_name().unwrap()), text).unwrap();
    }
}

impl Cluster {
    pub async fn start(admin_url: &str, shape: Shape) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let redis = Redis::start().await;
        let pg = if shape.pg_proxy {
            Some(PgProxy::start(admin_url).await)
        } else {
            None
        };
        let idp_db = fresh_database(admin_url).await;
        let portal_db = fresh_database(admin_url).await;
        let via = |url: &str| pg.as_ref().map_or(url.to_owned(), |p| p.url(url));
        let smtp = start_smtp(None, None);
        let (sms_url, sms) = start_sms_receiver(&[]).await;
        let (idp_lb, portal_lb) = (free_port(), free_port());
        let portal_url = format!("http://127.0.0.1:{portal_lb}");
        write_realms(dir.path(), &portal_url);
        let d = dir.path().display();
        // Everything every replica must share (docs/operations.md): database, Redis, public
        // URLs, realm files, master key, the portal's secrets and document store.
        let config = format!(
            r#"log_level = "warn"
data_dir = "{d}/data"
database_url = "{idp_url}"
redis_url = "{redis_idp}"
redis_prefix = "cluster:"
public_url = "http://127.0.0.1:{idp_lb}"
portal_url = "{portal_url}"
realm_dir = "{d}/realms"
master_key = "{master}"
smtp_url = "smtp://127.0.0.1:{smtp_port}"
client_ip_header = "x-forwarded-for"
trusted_proxies = ["127.0.0.1/32"]
metrics_bind = "127.0.0.1:0"
keys_reload_seconds = 2
shutdown_timeout_seconds = {shutdown}

[password_hashing]
memory_kib = 64
iterations = 1
parallelism = 1

[sms]
url = "{sms_url}"

[portal]
database_url = "{portal_db_url}"
redis_url = "{redis_portal}"
client_secret = "{PORTAL_SECRET}"
secret_key = "{portal_key}"
store_url = "{d}/documents"
delivery_clients = ["caisse-docs"]
metrics_bind = "127.0.0.1:0"
"#,
            idp_url = via(&idp_db),
            redis_idp = redis.url(0),
            master = random_key(),
            smtp_port = smtp.port,
            portal_db_url = via(&portal_db),
            redis_portal = redis.url(1),
            portal_key = random_key(),
            shutdown = shape.shutdown_seconds,
        );
        let config_file = dir.path().join("connect.toml");
        std::fs::write(&config_file, config).unwrap();
        let mut cluster = Cluster {
            dir,
            config_file,
            idp: Vec::new(),
            portal: Vec::new(),
            idp_lb,
            portal_lb,
            redis,
            pg,
            idp_db,
            portal_db,
            smtp,
            sms,
            nginx: None,
            binary: PathBuf::from(env!("CARGO_BIN_EXE_connect")),
        };
        // Migrations and the first keys once, before the replicas race for them.
        cluster.connect(&["migrate"]).await;
        // The first replica creates the realms' keys; the others start once it is ready, as
        // docs/operations.md says (replicas starting together on an empty database would
        // each create keys, and settle on one only after reading each other's).
        for n in 0..shape.idp {
            let replica = cluster.spawn(Kind::Idp).await;
            if n == 0 {
                wait_ready(&replica).await;
            }
            cluster.idp.push(replica);
        }
        for _ in 0..shape.portal {
            let replica = cluster.spawn(Kind::Portal).await;
            cluster.portal.push(replica);
        }
        for replica in cluster.idp.iter().chain(&cluster.portal) {
            wait_ready(replica).await;
        }
        cluster.start_nginx();
        cluster
    }

    /// Runs `connect <args>` with the cluster's settings (an operator at one replica's host);
    /// its standard output.
    pub async fn connect(&self, args: &[&str]) -> String {
        let out = Command::new(&self.binary)
            .arg("--config")
            .arg(&self.config_file)
            .args(args)
            .env("CONNECT_OPERATOR", "cluster-test")
            .output()
            .await
            .expect("connect runs");
        assert!(
            out.status.success(),
            "connect {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("UTF-8")
    }

    /// Starts one more replica (not yet behind nginx unless its port is in the config).
    pub async fn spawn(&self, kind: Kind) -> Replica {
        let port = free_port();
        let (command, bind) = match kind {
            Kind::Idp => ("serve", "CONNECT_BIND"),
            Kind::Portal => ("portal", "CONNECT_PORTAL_BIND"),
        };
        let log = self.dir.path().join(format!("{command}-{port}.log"));
        let child = Command::new(&self.binary)
            .arg("--config")
            .arg(&self.config_file)
            .arg(command)
            .env(bind, format!("127.0.0.1:{port}"))
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::options().append(true).open(&log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .expect("connect starts");
        Replica {
            kind,
            port,
            child,
            log,
        }
    }

    fn start_nginx(&mut self) {
        let servers = |replicas: &[Replica]| {
            if replicas.is_empty() {
                // nginx wants at least one server in a block.
                return "        server 127.0.0.1:9 down;".to_owned();
            }
            replicas
                .iter()
                .map(|r| format!("        server 127.0.0.1:{};", r.port))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let dir = self.dir.path().join("nginx");
        std::fs::create_dir_all(&dir).unwrap();
        let conf = include_str!("nginx.conf")
            .replace("{{DIR}}", &dir.display().to_string())
            .replace("{{IDP_SERVERS}}", &servers(&self.idp))
            .replace("{{PORTAL_SERVERS}}", &servers(&self.portal))
            .replace("{{IDP_PORT}}", &self.idp_lb.to_string())
            .replace("{{PORTAL_PORT}}", &self.portal_lb.to_string());
        let file = dir.join("nginx.conf");
        std::fs::write(&file, conf).unwrap();
        let nginx = ["/usr/sbin/nginx", "nginx"]
            .into_iter()
            .find(|p| !p.starts_with('/') || Path::new(p).exists())
            .unwrap();
        let child = std::process::Command::new(nginx)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&file)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx (apt-get install nginx)");
        self.nginx = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.idp_lb)).is_err()
            || std::net::TcpStream::connect(("127.0.0.1", self.portal_lb)).is_err()
        {
            assert!(
                Instant::now() < deadline,
                "nginx did not start: {}",
                std::fs::read_to_string(dir.join("nginx-error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn idp_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.idp_lb)
    }

    pub fn portal_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.portal_lb)
    }

    /// Puts a person in AK00's register and issues an activation code, as the operator does
    /// with `connect admin`; the code as printed.
    pub async fn person_with_code(&self, ahv: &str) -> String {
        self.connect(&[
            "admin",
            "--reason",
            "cluster test",
            "person",
            "add",
            "--realm",
            "AK00",
            "--ahv",
            ahv,
            "--given-name",
            "Anna",
            "--family-name",
            "Muster",
            "--birth-date",
            "1950-03-14",
            "--language",
            "fr",
        ])
        .await;
        let out = self
            .connect(&[
                "admin",
                "--reason",
                "cluster test",
                "code",
                "issue",
                "--realm",
                "AK00",
                "--ahv",
                ahv,
            ])
            .await;
        out.lines().next().expect("the code").trim().to_owned()
    }

    /// A connection to the IdP's database, for the checks after a test.
    pub async fn idp_db(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(&self.idp_db)
            .await
            .expect("IdP database")
    }

    pub async fn portal_db(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(&self.portal_db)
            .await
            .expect("portal database")
    }

    /// The latest SMS code sent to `e164` after the first `after` of them.
    pub async fn sms_code(&self, e164: &str, after: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let texts: Vec<String> = self
                .sms
                .requests()
                .iter()
                .filter_map(|r| serde_json::from_str::<serde_json::Value>(&r.body).ok())
                .filter(|b| b["to"] == e164)
                .filter_map(|b| b["text"].as_str().map(str::to_owned))
                .collect();
            if texts.len() > after {
                let text = texts.last().unwrap();
                return six_digits(text).expect("a code in the SMS");
            }
            assert!(Instant::now() < deadline, "no SMS to {e164}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn sms_count(&self, e164: &str) -> usize {
        self.sms
            .requests()
            .iter()
            .filter_map(|r| serde_json::from_str::<serde_json::Value>(&r.body).ok())
            .filter(|b| b["to"] == e164)
            .count()
    }

    pub fn mail_count(&self, to: &str) -> usize {
        self.smtp
            .received()
            .iter()
            .filter(|m| m.to.iter().any(|t| t == to))
            .count()
    }

    /// The text of the latest mail to `to` after the first `after` of them.
    pub async fn mail(&self, to: &str, after: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let mails: Vec<_> = self
                .smtp
                .received()
                .into_iter()
                .filter(|m| m.to.iter().any(|t| t == to))
                .collect();
            if mails.len() > after {
                let msg = mail_parser::MessageParser::default()
                    .parse(&mails.last().unwrap().data)
                    .expect("a mail")
                    .body_text(0)
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                return msg;
            }
            assert!(Instant::now() < deadline, "no mail to {to}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The tail of every replica's log, for a failing test's message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for r in self.idp.iter().chain(&self.portal) {
            let text = std::fs::read_to_string(&r.log).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            out.push_str(&format!("--- {:?} {}\n", r.kind, r.port));
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("replica logs (tail):\n{}", self.logs());
        }
        if let Some(mut nginx) = self.nginx.take() {
            // SIGQUIT would wait for open connections; SIGTERM stops master and worker now.
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &nginx.id().to_string()])
                .status();
            let _ = nginx.wait();
        }
    }
}

/// Waits until the replica answers `/readyz` with 200.
pub async fn wait_ready(replica: &Replica) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(res) = client.get(replica.url("/readyz")).send().await {
            if res.status() == 200 {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{:?} replica on {} never became ready: {}",
            replica.kind,
            replica.port,
            std::fs::read_to_string(&replica.log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub use crate::text::{ahv, letter_code, six_digits};
