//! The binary refuses bad settings and bad realm files with one line naming what is wrong.

use std::process::Command;

fn connect(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_connect"));
    cmd.current_dir(dir)
        .env_remove("CONNECT_TEST_DATABASE_URL")
        .env_remove("CONNECT_TEST_REDIS_URL")
        .env("CONNECT_DATA_DIR", dir.join("data"))
        .env(
            "CONNECT_REALM_DIR",
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("realm-config"),
        );
    cmd
}

#[test]
fn a_bad_setting_stops_the_start_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = connect(dir.path())
        .env("CONNECT_BIND", "nowhere")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("`bind`"), "{err}");
    let out = connect(dir.path())
        .env("CONNECT_NO_SUCH_KEY", "1")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("no_such_key"));
}

#[test]
fn a_bad_realm_file_stops_the_start_with_file_key_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let realms = dir.path().join("realms");
    std::fs::create_dir(&realms).unwrap();
    let good = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("realm-config/AK00.toml"),
    )
    .unwrap();
    std::fs::write(
        realms.join("AK05.toml"),
        good.replace(
            "default_language = \"fr\"",
            "default_language = \"fr\"\ncolor = \"red\"",
        ),
    )
    .unwrap();
    let out = connect(dir.path())
        .env("CONNECT_REALM_DIR", &realms)
        .args(["admin", "keys", "rotate", "--realm", "AK05"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("AK05.toml") && err.contains("color"), "{err}");
}

#[test]
fn admin_commands_create_accounts_and_rotate_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = connect(dir.path())
        .env("CONNECT_PASSWORD_HASHING__MEMORY_KIB", "64")
        .args([
            "admin",
            "account",
            "create",
            "--realm",
            "AK00",
            "--email",
            "anna@example.ch",
            "--password-stdin",
            "--given-name",
            "Anna",
            "--family-name",
            "Muster",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Velo-Bern-1950\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(uuid::Uuid::parse_str(String::from_utf8(out.stdout).unwrap().trim()).is_ok());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(!err.contains("Velo-Bern"), "the password is never echoed");

    let out = connect(dir.path())
        .args(["admin", "keys", "rotate", "--realm", "AK00"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().lines().count(),
        2,
        "one new ES256 and one RS256 kid"
    );
    let out = connect(dir.path())
        .args(["admin", "keys", "rotate", "--realm", "AK77"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

// ---------------------------------------------------------------------------------------
// What `serve`, `portal` and `dev` agree to run with

/// The shipped realm files with every client secret replaced by a fresh one, as an operator
/// does before production.
fn production_realms() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let shipped = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("realm-config");
    std::fs::create_dir(dir.path().join("logos")).unwrap();
    for entry in std::fs::read_dir(shipped.join("logos")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(
            &path,
            dir.path().join("logos").join(path.file_name().unwrap()),
        )
        .unwrap();
    }
    for entry in std::fs::read_dir(&shipped).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|x| x == "toml") {
            let text: String = std::fs::read_to_string(&path)
                .unwrap()
                .lines()
                .map(|line| {
                    if line.starts_with("secret_sha256 = ") {
                        format!(
                            "secret_sha256 = \"{}\"",
                            uuid::Uuid::new_v4().simple().to_string().repeat(2)
                        )
                    } else {
                        line.to_owned()
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            std::fs::write(dir.path().join(path.file_name().unwrap()), text).unwrap();
        }
    }
    dir
}

/// A free loopback port (bound once and let go).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server of the binary, stopped when dropped.
struct Running {
    child: std::process::Child,
    addr: String,
    /// What it printed up to the line that says it listens.
    out: String,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `connect <command>` and reads its output until `listening` appears in it.
fn start(cmd: &mut Command, command: &str, bind_key: &str) -> Running {
    use std::io::BufRead;
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = cmd
        .env(bind_key, &addr)
        .env("CONNECT_METRICS_BIND", "127.0.0.1:0")
        .env("CONNECT_LOG_LEVEL", "info")
        .arg(command)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut out = String::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        out.push_str(&line);
        out.push('\n');
        if line.contains("listening") {
            return Running { child, addr, out };
        }
    }
    let mut err = String::new();
    use std::io::Read;
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    let _ = child.kill();
    let _ = child.wait();
    panic!("connect {command} did not start:\n{out}\n{err}");
}

/// The status line of `GET path`.
fn status_of(addr: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    answer.lines().next().unwrap_or_default().to_owned()
}

/// `connect <args>` that must refuse to start: its one line of error.
fn refused(cmd: &mut Command, args: &[&str]) -> String {
    let out = cmd.args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} started");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    err
}

#[test]
fn serve_and_portal_never_serve_a_dev_route_or_write_demo_data() {
    let dir = tempfile::tempdir().unwrap();
    let realms = production_realms();
    let idp = start(
        connect(dir.path())
            .env("CONNECT_REALM_DIR", realms.path())
            .env("CONNECT_ALLOW_OUTBOX", "true"),
        "serve",
        "CONNECT_BIND",
    );
    assert_eq!(
        status_of(&idp.addr, "/_dev/outbox"),
        "HTTP/1.1 404 Not Found"
    );
    assert_eq!(status_of(&idp.addr, "/healthz"), "HTTP/1.1 200 OK");
    assert!(
        idp.out.contains("go to the outbox (allow_outbox = true)"),
        "a warning at every start:\n{}",
        idp.out
    );
    assert!(!idp.out.contains("activation code"), "{}", idp.out);

    let portal = start(
        connect(dir.path())
            .env("CONNECT_REALM_DIR", realms.path())
            .env("CONNECT_ALLOW_OUTBOX", "true")
            .env("CONNECT_PORTAL__CLIENT_SECRET", "a-secret-of-this-test"),
        "portal",
        "CONNECT_PORTAL_BIND",
    );
    assert_eq!(
        status_of(&portal.addr, "/_dev/outbox"),
        "HTTP/1.1 404 Not Found"
    );
    assert_eq!(status_of(&portal.addr, "/healthz"), "HTTP/1.1 200 OK");
    let documents: Vec<_> = std::fs::read_dir(dir.path().join("data/documents"))
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(documents.is_empty(), "no demo documents: {documents:?}");

    // No setting turns dev mode on.
    let err = refused(
        connect(dir.path())
            .env("CONNECT_REALM_DIR", realms.path())
            .env("CONNECT_DEV", "true"),
        &["serve"],
    );
    assert!(
        err.contains("`dev`") && err.contains("connect dev"),
        "{err}"
    );
    std::fs::write(dir.path().join("dev.toml"), "dev = true\n").unwrap();
    let err = refused(
        connect(dir.path()).env("CONNECT_REALM_DIR", realms.path()),
        &["--config", "dev.toml", "portal"],
    );
    assert!(err.contains("`dev`"), "{err}");
}

#[test]
fn serve_refuses_the_outbox_unless_a_setting_allows_it() {
    let dir = tempfile::tempdir().unwrap();
    let realms = production_realms();
    let err = refused(
        connect(dir.path()).env("CONNECT_REALM_DIR", realms.path()),
        &["serve"],
    );
    assert!(
        err.contains("`allow_outbox`") && err.contains("mail") && err.contains("SMS"),
        "{err}"
    );
    let err = refused(
        connect(dir.path())
            .env("CONNECT_REALM_DIR", realms.path())
            .env("CONNECT_PORTAL__CLIENT_SECRET", "a-secret-of-this-test"),
        &["portal"],
    );
    assert!(
        err.contains("`allow_outbox`") && err.contains("mail"),
        "{err}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "refused before any database"
    );

    // With real transports (never reached here) no setting is needed, and no warning given.
    let idp = start(
        connect(dir.path())
            .env("CONNECT_REALM_DIR", realms.path())
            .env("CONNECT_SMTP_URL", "smtp://127.0.0.1:9")
            .env("CONNECT_SMS__URL", "http://127.0.0.1:9/send"),
        "serve",
        "CONNECT_BIND",
    );
    assert!(!idp.out.contains("outbox"), "{}", idp.out);
}

#[test]
fn serve_refuses_the_published_dev_secrets_naming_realm_and_client() {
    let dir = tempfile::tempdir().unwrap();
    let err = refused(
        connect(dir.path()).env("CONNECT_ALLOW_OUTBOX", "true"),
        &["serve"],
    );
    for client in [
        "realm AK00, client `bench-cc`",
        "realm AK00, client `caisse-docs`",
        "realm AK00, client `portal`",
        "realm AK01, client `bench-cc`",
        "realm AK01, client `portal`",
    ] {
        assert!(err.contains(client), "{client}: {err}");
    }
    assert!(
        !err.contains("bench-secret"),
        "the secret itself is not repeated"
    );
    assert!(
        !dir.path().join("data").exists(),
        "refused before any database"
    );
}

#[test]
fn dev_refuses_a_non_loopback_address_or_an_https_url_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for (key, value, named) in [
        ("CONNECT_BIND", "0.0.0.0:8080", "`bind`"),
        ("CONNECT_BIND", "[::]:8080", "`bind`"),
        ("CONNECT_PORTAL_BIND", "192.0.2.10:8090", "`portal_bind`"),
        (
            "CONNECT_PUBLIC_URL",
            "https://login.example.ch",
            "`public_url`",
        ),
        (
            "CONNECT_PORTAL_URL",
            "https://documents.example.ch",
            "`portal_url`",
        ),
    ] {
        for args in [&["dev"][..], &[][..]] {
            let out = connect(dir.path())
                .env(key, value)
                .args(args)
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(2), "{key}={value} {args:?}");
            let err = String::from_utf8(out.stderr).unwrap();
            assert_eq!(err.lines().count(), 1, "{err}");
            assert!(
                err.contains(named) && err.contains("connect serve"),
                "{err}"
            );
        }
    }
    assert!(
        !dir.path().join("data").exists(),
        "refused before any database"
    );
}
