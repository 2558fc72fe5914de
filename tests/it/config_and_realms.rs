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
