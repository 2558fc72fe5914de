//! `connect admin person import` and `connect admin code …`: the real binary on the database of
//! a running test server (SQLite, or PostgreSQL when the suite runs against it).

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use chrono::NaiveDate;
use connect::{
    domain::{ActivationCode, AhvNumber, Language},
    letter::{swiss_date, swiss_format},
    storage::{
        activation_codes::{self, CodeState},
        persons::{self, Person, PostalAddress},
        Conflict, StoreError,
    },
};
use secrecy::ExposeSecret;

use crate::helpers::*;

const HEADER: &str = "ahv,given_name,family_name,birth_date,language,street,postal_code,locality";

/// The binary, configured like the server `app` runs with, in a directory of its own for files.
pub(crate) struct Admin<'a> {
    app: &'a TestApp,
    dir: tempfile::TempDir,
}

impl<'a> Admin<'a> {
    pub(crate) fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The binary with the server's configuration, for `connect admin <args>`.
    fn command(&self, args: &[&str]) -> Command {
        let c = &self.app.state.config;
        let connect::config::MasterKeySource::Inline(key) = &c.master_key else {
            panic!("tests use an inline master key");
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_connect"));
        command
            .current_dir(self.dir.path())
            .env_remove("CONNECT_TEST_DATABASE_URL")
            .env_remove("CONNECT_TEST_REDIS_URL")
            .env("CONNECT_DATA_DIR", &c.data_dir)
            .env("CONNECT_DATABASE_URL", &c.database_url)
            .env("CONNECT_REALM_DIR", &c.realm_dir)
            .env("CONNECT_MASTER_KEY", key.expose_secret())
            .env("CONNECT_PUBLIC_URL", &self.app.base)
            .arg("admin")
            .args(args);
        command
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs and expects success; returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs and expects failure; returns stderr.
    pub(crate) fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "{args:?} succeeded: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }

    /// Runs with `input` on standard input.
    fn run_with_stdin(&self, args: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut child = self
            .command(args)
            .env("CONNECT_PASSWORD_HASHING__MEMORY_KIB", "64")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// A support command on anna@example.ch of AK00, with operator and reason.
    pub(crate) fn support(&self, action: &str, extra: &[&str]) -> Output {
        let mut args = vec![
            "account",
            action,
            "--realm",
            "AK00",
            "--email",
            "anna@example.ch",
            "--operator",
            "support@caisse",
            "--reason",
            "called the support desk",
        ];
        args.extend_from_slice(extra);
        self.run(&args)
    }

    fn import(&self, csv: &str) -> Output {
        let file = self.path("persons.csv");
        std::fs::write(&file, csv).unwrap();
        self.run(&[
            "person",
            "import",
            "--realm",
            "AK00",
            file.to_str().unwrap(),
        ])
    }
}

fn row(ahv: &str, given: &str, family: &str, birth: &str, lang: &str) -> String {
    format!("{ahv},{given},{family},{birth},{lang},Rue du Marché 1,3000,Berne")
}

async fn person(app: &TestApp, ahv: &str) -> Option<Person> {
    persons::by_ahv(&app.state.db, &realm("AK00"), &ahv.parse().unwrap())
        .await
        .unwrap()
}

pub(crate) async fn add_person(
    app: &TestApp,
    ahv: &str,
    given: &str,
    family: &str,
    language: Language,
) {
    let p = Person {
        ahv: ahv.parse().unwrap(),
        given_name: given.into(),
        family_name: family.into(),
        birth_date: NaiveDate::from_ymd_opt(1950, 3, 14).unwrap(),
        language,
        address: PostalAddress {
            street: Some("Rue du Marché 1".into()),
            postal_code: Some("3000".into()),
            locality: Some("Berne".into()),
            country: Some("CH".into()),
        },
    };
    persons::add(&app.state.db, &realm("AK00"), &p, app.clock().unix())
        .await
        .unwrap();
}

async fn code_state(app: &TestApp, code: &str) -> (CodeState, AhvNumber, i64) {
    let code: ActivationCode = code.parse().unwrap();
    let stored = activation_codes::find(
        &app.state.db,
        &realm("AK00"),
        &app.state.activation.hash(&code),
        app.clock().unix(),
    )
    .await
    .unwrap()
    .expect("the code is stored");
    (stored.state, stored.ahv, stored.expires_at)
}

/// `XXXX XXXX XXXX` from the code alphabet (no 0, O, 1, I, L).
fn is_printed_code(s: &str) -> bool {
    let groups: Vec<&str> = s.split(' ').collect();
    groups.len() == 3
        && groups.iter().all(|g| {
            g.len() == 4
                && g.chars().all(|c| {
                    (c.is_ascii_uppercase() && !"OIL".contains(c)) || ('2'..='9').contains(&c)
                })
        })
}

/// The text of a PDF as a reader would copy it, with line breaks and runs of spaces as one space.
pub(crate) fn pdf_text(path: &Path) -> String {
    let doc = lopdf::Document::load(path).expect("a PDF");
    let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
    let text = doc.extract_text(&pages).expect("text");
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[tokio::test]
async fn import_adds_every_person_of_a_good_file() {
    let app = spawn_app().await;
    let admin = Admin::new(&app);
    let csv = format!(
        "{HEADER}\n{}\n{}\n{},Lucia,Rossi,1960-07-01,it,,,\n",
        row(&ahv(1), "Anne", "Müller", "1950-03-14", "fr"),
        row(&ahv(2), "Jörg", "Bühler", "1948-12-01", "de"),
        ahv(3),
    );
    let out = admin.import(&csv);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        "imported 3 person(s) into AK00"
    );

    let anne = person(&app, &ahv(1)).await.expect("imported");
    assert_eq!(
        (anne.given_name.as_str(), anne.family_name.as_str()),
        ("Anne", "Müller")
    );
    assert_eq!(anne.language, Language::Fr);
    assert_eq!(anne.birth_date.to_string(), "1950-03-14");
    assert_eq!(anne.address.locality.as_deref(), Some("Berne"));
    assert_eq!(anne.address.country.as_deref(), Some("CH"));
    assert_eq!(person(&app, &ahv(2)).await.unwrap().language, Language::De);
    let lucia = person(&app, &ahv(3)).await.unwrap();
    assert_eq!(lucia.address, PostalAddress::default());
}

#[tokio::test]
async fn import_reports_every_bad_row_and_writes_nothing() {
    let app = spawn_app().await;
    let admin = Admin::new(&app);
    let wrong = {
        let good = ahv(5);
        let last = good.chars().last().unwrap().to_digit(10).unwrap();
        format!("{}{}", &good[..good.len() - 1], (last + 1) % 10)
    };
    let csv = [
        HEADER.to_owned(),
        row(&ahv(1), "Anne", "Muster", "1950-03-14", "fr"), // line 2
        row(&wrong, "Bea", "Muster", "1951-01-01", "fr"),   // line 3: check digit
        row(&ahv(2), "Carl", "Muster", "1952-02-02", "de"), // line 4
        row(&ahv(3), "Dora", "Muster", "14.03.1953", "de"), // line 5: date
        row(&ahv(4), "Emil", "Muster", "1954-04-04", "it"), // line 6
    ]
    .join("\n");
    let out = admin.import(&csv);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("line 3: ahv: the check digit"), "{err}");
    assert!(err.contains("line 5: birth_date"), "{err}");
    for good in ["line 2:", "line 4:", "line 6:"] {
        assert!(!err.contains(good), "{good} is fine: {err}");
    }
    assert!(err.contains("2 bad row(s) of 5; nothing imported"), "{err}");
    for n in 1..=4 {
        assert!(
            person(&app, &ahv(n)).await.is_none(),
            "{} was written",
            ahv(n)
        );
    }
}

#[tokio::test]
async fn import_reports_duplicates_in_the_file_and_persons_already_registered() {
    let app = spawn_app().await;
    let admin = Admin::new(&app);
    add_person(&app, &ahv(9), "Old", "Timer", Language::Fr).await;
    let csv = [
        HEADER.to_owned(),
        row(&ahv(1), "Anne", "Muster", "1950-03-14", "fr"),
        row(&ahv(1), "Anne", "Muster", "1950-03-14", "fr"),
        row(&ahv(9), "Old", "Timer", "1950-03-14", "fr"),
        row(&ahv(2), "Bea", "Muster", "1951-03-14", "fr"),
    ]
    .join("\n");
    let out = admin.import(&csv);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(&format!("line 3: ahv: {} is already on line 2", ahv(1))),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "line 4: ahv: {} is already in the register of AK00",
            ahv(9)
        )),
        "{err}"
    );
    assert!(
        !err.contains("line 2:") && !err.contains("line 5:"),
        "{err}"
    );
    assert!(person(&app, &ahv(1)).await.is_none());
    assert!(person(&app, &ahv(2)).await.is_none());
}

#[tokio::test]
async fn add_many_writes_all_rows_or_none() {
    let app = spawn_app().await;
    let db = &app.state.db;
    let realm = realm("AK00");
    add_person(&app, &ahv(9), "Old", "Timer", Language::Fr).await;
    let mut batch: Vec<Person> = Vec::new();
    for n in [1, 2, 9] {
        batch.push(Person {
            ahv: ahv(n).parse().unwrap(),
            given_name: "New".into(),
            family_name: "Comer".into(),
            birth_date: NaiveDate::from_ymd_opt(1960, 1, 1).unwrap(),
            language: Language::De,
            address: PostalAddress::default(),
        });
    }
    // The third insert fails inside the transaction: the first two are rolled back.
    let err = persons::add_many(db, &realm, &batch, 0).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(Conflict::PersonExists)),
        "{err}"
    );
    assert!(person(&app, &ahv(1)).await.is_none());
    assert!(person(&app, &ahv(2)).await.is_none());
    assert_eq!(person(&app, &ahv(9)).await.unwrap().given_name, "Old");

    assert_eq!(
        persons::add_many(db, &realm, &batch[..2], 0).await.unwrap(),
        2
    );
    assert_eq!(person(&app, &ahv(2)).await.unwrap().given_name, "New");

    // Several statements in one transaction: a conflict in the last one undoes the first ones.
    let many = |numbers: std::ops::RangeInclusive<u32>| -> Vec<Person> {
        numbers
            .map(|n| Person {
                ahv: ahv(n).parse().unwrap(),
                ..batch[0].clone()
            })
            .collect()
    };
    let mut clashing = many(100..=1_300);
    clashing.push(batch[2].clone());
    let err = persons::add_many(db, &realm, &clashing, 0)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(Conflict::PersonExists)),
        "{err}"
    );
    assert!(person(&app, &ahv(100)).await.is_none());
    let mut reported = Vec::new();
    let fine = many(100..=1_300);
    let added = persons::add_many_reporting(db, &realm, &fine, 0, |n| reported.push(n))
        .await
        .unwrap();
    assert_eq!((added, reported.last()), (1_201, Some(&1_201)));
    assert!(reported.len() > 1, "one statement for {reported:?}");
    assert!(reported.windows(2).all(|w| w[0] < w[1]), "{reported:?}");
    let ahvs: Vec<AhvNumber> = fine.iter().map(|p| p.ahv.clone()).collect();
    let found = persons::registered(db, &realm, &ahvs, |_| {})
        .await
        .unwrap();
    assert_eq!(found.len(), 1_201);
    assert_eq!(
        person(&app, &ahv(1_300)).await.unwrap().family_name,
        "Comer"
    );
}

#[tokio::test]
async fn code_issue_prints_the_code_and_revokes_the_earlier_one() {
    let app = spawn_app().await;
    let admin = Admin::new(&app);
    add_person(&app, &ahv(1), "Anne", "Muster", Language::Fr).await;
    let number = ahv(1);

    let out = admin.ok(&["code", "issue", "--realm", "AK00", "--ahv", &number]);
    let lines: Vec<&str> = out.lines().collect();
    assert!(is_printed_code(lines[0]), "{out}");
    let (state, owner, expires_at) = code_state(&app, lines[0]).await;
    assert_eq!(state, CodeState::Usable);
    assert_eq!(owner.as_str(), number);
    let days = (expires_at - app.clock().unix()) as f64 / 86_400.0;
    assert!((days - 30.0).abs() < 0.01, "{days} days");
    let until = swiss_date(chrono::DateTime::from_timestamp(expires_at, 0).unwrap());
    assert_eq!(lines[1], format!("valid until {until} (30 days)"));
    let first = lines[0].to_owned();

    let out = admin.ok(&["code", "issue", "--realm", "AK00", "--ahv", &number]);
    let second = out.lines().next().unwrap().to_owned();
    assert!(is_printed_code(&second) && second != first);
    assert_eq!(code_state(&app, &first).await.0, CodeState::Revoked);
    assert_eq!(code_state(&app, &second).await.0, CodeState::Usable);

    let out = admin.ok(&["code", "revoke", "--realm", "AK00", "--ahv", &number]);
    assert_eq!(out.trim(), "1 code(s) revoked");
    assert_eq!(code_state(&app, &second).await.0, CodeState::Revoked);
    let out = admin.ok(&["code", "revoke", "--realm", "AK00", "--ahv", &number]);
    assert_eq!(out.trim(), "0 code(s) revoked");
}

#[tokio::test]
async fn code_issue_refuses_unknown_and_enrolled_persons() {
    let app = spawn_app().await;
    let admin = Admin::new(&app);
    let err = admin.fails(&["code", "issue", "--realm", "AK00", "--ahv", &ahv(7)]);
    assert!(err.contains("no person with this AHV number"), "{err}");
    let err = admin.fails(&["code", "revoke", "--realm", "AK00", "--ahv", &ahv(7)]);
    assert!(err.contains("no person with AHV number"), "{err}");

    // Anna's account holds 756.1234.5678.97.
    app.create_account("AK00", "anna@example.ch").await;
    add_person(&app, "756.1234.5678.97", "Anna", "Muster", Language::Fr).await;
    let letter = admin.path("anna.pdf");
    let err = admin.fails(&[
        "code",
        "issue",
        "--realm",
        "AK00",
        "--ahv",
        "756.1234.5678.97",
        "--letter",
        letter.to_str().unwrap(),
    ]);
    assert!(err.contains("already has an account"), "{err}");
    assert!(!letter.exists());

    let err = admin.fails(&["code", "issue", "--realm", "AK77", "--ahv", &ahv(7)]);
    assert!(err.contains("AK77"), "{err}");
}

#[tokio::test]
async fn the_letter_says_it_in_the_persons_language() {
    let app = spawn_app().await;
    let admin = Admin::new(&app);
    add_person(&app, &ahv(1), "Anne-Françoise", "Müller", Language::Fr).await;
    add_person(&app, &ahv(2), "Jörg", "Bühler", Language::De).await;
    let realm = app.state.realms.get(&realm("AK00")).unwrap().clone();
    let link = format!("{}/register", app.issuer("AK00"));

    let mut letters = Vec::new();
    for n in [1, 2] {
        let file = admin.path(&format!("{n}.pdf"));
        let out = admin.ok(&[
            "code",
            "issue",
            "--realm",
            "AK00",
            "--ahv",
            &ahv(n),
            "--letter",
            file.to_str().unwrap(),
        ]);
        let code = out.lines().next().unwrap().to_owned();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "a letter holds a code: owner only");
        }
        let (_, _, expires_at) = code_state(&app, &code).await;
        let until = swiss_format(swiss_date(
            chrono::DateTime::from_timestamp(expires_at, 0).unwrap(),
        ));
        letters.push((pdf_text(&file), code, until));
    }

    let (fr, code, until) = &letters[0];
    for expected in [
        "Lettre d'activation".to_owned(),
        "Anne-Françoise Müller".to_owned(),
        "Grâce à notre portail en ligne".to_owned(),
        format!("Lien pour l'enregistrement: {link}"),
        format!("Votre code d'enregistrement personnel est le: {code}"),
        format!("Ce code est valable jusqu'au {until} (30 jours)."),
        format!("Assistance: {}", realm.support_phone),
        realm.display_name.to_string(),
    ] {
        assert!(fr.contains(&expected), "`{expected}` missing in:\n{fr}");
    }
    assert!(!fr.contains("Registrierungscode"));

    let (de, code, until) = &letters[1];
    for expected in [
        "Aktivierungsbrief".to_owned(),
        "Jörg Bühler".to_owned(),
        format!("Link zur Registrierung: {link}"),
        format!("Ihr persönlicher Registrierungscode lautet: {code}"),
        format!("Dieser Code ist gültig bis am {until} (30 Tage)."),
        format!("Support: {}", realm.support_phone),
    ] {
        assert!(de.contains(&expected), "`{expected}` missing in:\n{de}");
    }
    assert!(!de.contains("Votre code"));
}

#[tokio::test]
async fn letters_go_to_every_waiting_person_and_nobody_else() {
    let app = spawn_app().await;
    let admin = Admin::new(&app);
    for n in 1..=3 {
        add_person(&app, &ahv(n), "Person", &format!("Nr{n}"), Language::Fr).await;
    }
    // 3 already has a usable code; Anna has an account.
    let kept = admin.ok(&["code", "issue", "--realm", "AK00", "--ahv", &ahv(3)]);
    let kept = kept.lines().next().unwrap();
    app.create_account("AK00", "anna@example.ch").await;
    add_person(&app, "756.1234.5678.97", "Anna", "Muster", Language::Fr).await;

    let out = admin.ok(&["code", "letters", "--realm", "AK00", "--out", "batch"]);
    assert!(out.starts_with("2 letter(s) written"), "{out}");
    let name = |n| format!("{}.pdf", ahv(n).replace('.', ""));
    let mailroom = format!("batch-{}.pdf", swiss_date(app.clock().now()));
    assert_eq!(
        files_in(&admin.path("batch")),
        vec![name(1), name(2), mailroom]
    );

    for n in [1, 2] {
        let text = pdf_text(&admin.path("batch").join(name(n)));
        let code = text
            .split("est le: ")
            .nth(1)
            .map(|rest| rest.chars().take(14).collect::<String>())
            .expect("a code in the letter");
        let (state, owner, _) = code_state(&app, &code).await;
        assert_eq!(
            (state, owner.as_str()),
            (CodeState::Usable, ahv(n).as_str())
        );
    }
    assert_eq!(code_state(&app, kept).await.0, CodeState::Usable);

    let out = admin.ok(&["code", "letters", "--realm", "AK00", "--out", "batch"]);
    assert!(out.starts_with("0 letter(s) written"), "{out}");
    assert_eq!(files_in(&admin.path("batch")).len(), 3, "no empty batch");
}

#[tokio::test]
async fn codes_issued_together_replace_earlier_ones_and_skip_whoever_stopped_waiting() {
    let app = spawn_app().await;
    let admin = Admin::new(&app);
    for n in 1..=3 {
        add_person(&app, &ahv(n), "Person", &format!("Nr{n}"), Language::Fr).await;
    }
    let earlier = admin.ok(&["code", "issue", "--realm", "AK00", "--ahv", &ahv(2)]);
    let earlier = earlier.lines().next().unwrap();
    let mut waiting = Vec::new();
    for n in 1..=3 {
        let ahv: AhvNumber = ahv(n).parse().unwrap();
        waiting.push(
            persons::by_ahv(&app.state.db, &realm("AK00"), &ahv)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    // Anna was on the list too, and opened her account before her code was issued.
    add_person(&app, "756.1234.5678.97", "Anna", "Muster", Language::Fr).await;
    let anna: AhvNumber = "756.1234.5678.97".parse().unwrap();
    waiting.insert(
        1,
        persons::by_ahv(&app.state.db, &realm("AK00"), &anna)
            .await
            .unwrap()
            .unwrap(),
    );
    app.create_account("AK00", "anna@example.ch").await;

    let ak00 = app.state.realms.get(&realm("AK00")).unwrap().clone();
    let issued = app
        .state
        .activation
        .issue_many(&ak00, waiting)
        .await
        .unwrap();

    let owners: Vec<String> = issued.iter().map(|i| i.person.ahv.to_string()).collect();
    assert_eq!(owners, [ahv(1), ahv(2), ahv(3)], "in order, without Anna");
    for i in &issued {
        let (state, owner, expires_at) = code_state(&app, &i.code.to_string()).await;
        assert_eq!((state, &owner), (CodeState::Usable, &i.person.ahv));
        assert_eq!(expires_at, i.expires_at.timestamp());
    }
    assert_eq!(code_state(&app, earlier).await.0, CodeState::Revoked);
    // One event per code: the earlier one of person 2 (written by the command, on the
    // system's clock, so not necessarily before the others in time order) and one for each
    // code of the batch; none for Anna.
    let events = app.state.audit.read(&realm("AK00"), None, 0).await.unwrap();
    let mut told: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "activation_code_issued")
        .map(|e| e["detail"]["ahv"].as_str().unwrap())
        .collect();
    told.sort();
    let mut expected: Vec<String> = issued.iter().map(|i| i.person.ahv.masked()).collect();
    expected.push(issued[1].person.ahv.masked());
    expected.sort();
    assert_eq!(told, expected, "one event per code");
    assert!(
        !events
            .iter()
            .any(|e| e.to_string().contains(&issued[0].code.to_string())),
        "no code in the audit trail"
    );
}

/// The names of the files in `dir`, sorted.
fn files_in(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    files
}

/// The code a French letter prints.
fn code_in(text: &str) -> String {
    text.split("est le: ")
        .nth(1)
        .map(|rest| rest.chars().take(14).collect())
        .expect("a code in the letter")
}

#[tokio::test]
async fn the_mailroom_pdf_holds_every_letter_once_in_postal_code_order() {
    let app = spawn_app().await;
    let admin = Admin::new(&app);
    // Postal codes in another order than the AHV numbers.
    for (n, postal_code) in [(1, "8001"), (2, "1000"), (3, "3000"), (4, "1700")] {
        let p = Person {
            ahv: ahv(n).parse().unwrap(),
            given_name: "Person".into(),
            family_name: format!("Nr{n}"),
            birth_date: NaiveDate::from_ymd_opt(1950, 3, 14).unwrap(),
            language: Language::Fr,
            address: PostalAddress {
                street: Some("Rue du Marché 1".into()),
                postal_code: Some(postal_code.into()),
                locality: Some("Ville".into()),
                country: Some("CH".into()),
            },
        };
        persons::add(&app.state.db, &realm("AK00"), &p, app.clock().unix())
            .await
            .unwrap();
    }

    let out = admin.ok(&["code", "letters", "--realm", "AK00", "--out", "batch"]);
    let dir = admin.path("batch");
    let mailroom = dir.join(format!("batch-{}.pdf", swiss_date(app.clock().now())));
    let day = swiss_date(app.clock().now());
    assert!(
        out.contains(&format!(
            "4 letter(s) on 4 page(s) in postal-code order in batch/batch-{day}.pdf"
        )),
        "{out}"
    );
    let doc = lopdf::Document::load(&mailroom).expect("the mailroom's PDF");
    assert_eq!(doc.get_pages().len(), 4, "one page per letter");
    for (page, n) in [(1, 2), (2, 4), (3, 3), (4, 1)] {
        let text = doc.extract_text(&[page]).unwrap();
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            text.contains(&format!("Person Nr{n}")),
            "page {page}: {text}"
        );
        let own = pdf_text(&dir.join(format!("{}.pdf", ahv(n).replace('.', ""))));
        let code = code_in(&text);
        assert_eq!(
            code,
            code_in(&own),
            "page {page}: the code of the person's own file"
        );
        let (state, owner, _) = code_state(&app, &code).await;
        assert_eq!(
            (state, owner.as_str()),
            (CodeState::Usable, ahv(n).as_str())
        );
    }

    // A second batch on the same day gets a name of its own.
    add_person(&app, &ahv(5), "Person", "Nr5", Language::Fr).await;
    let out = admin.ok(&["code", "letters", "--realm", "AK00", "--out", "batch"]);
    let second = dir.join(format!("batch-{}-2.pdf", swiss_date(app.clock().now())));
    assert!(
        out.contains(&format!("in batch/batch-{day}-2.pdf")),
        "{out}"
    );
    let doc = lopdf::Document::load(&second).unwrap();
    assert_eq!(doc.get_pages().len(), 1);
    assert_eq!(
        lopdf::Document::load(&mailroom).unwrap().get_pages().len(),
        4
    );
}

/// Runs the command under script(1), which gives it a pseudo-terminal for its standard streams;
/// returns what the terminal showed.
fn on_a_terminal(command: &Command) -> String {
    let quote = |s: &std::ffi::OsStr| format!("'{}'", s.to_str().unwrap().replace('\'', r"'\''"));
    let line = std::iter::once(quote(command.get_program()))
        .chain(command.get_args().map(quote))
        .collect::<Vec<_>>()
        .join(" ");
    let mut script = Command::new("script");
    script.args(["-qefc", &line, "/dev/null"]);
    script.current_dir(command.get_current_dir().unwrap());
    for (key, value) in command.get_envs() {
        match value {
            Some(v) => script.env(key, v),
            None => script.env_remove(key),
        };
    }
    let out = script.output().expect("script(1) from util-linux");
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{shown}");
    shown
}

#[tokio::test]
async fn bulk_commands_draw_progress_on_a_terminal_and_nowhere_else() {
    let app = spawn_app().await;
    let admin = Admin::new(&app);
    let rows = |ns: std::ops::Range<u32>| {
        ns.map(|n| row(&ahv(n), "Anne", &format!("Nr{n}"), "1950-03-14", "fr"))
            .collect::<Vec<_>>()
            .join("\n")
    };

    // Piped, as from cron or a script: the result line and nothing on standard error.
    let out = admin.import(&format!("{HEADER}\n{}\n", rows(1..4)));
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
    let out = admin.run(&["code", "letters", "--realm", "AK00", "--out", "piped"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("3 letter(s) written"));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");

    // On a terminal: the bars, then the same result lines.
    let file = admin.path("more.csv");
    std::fs::write(&file, format!("{HEADER}\n{}\n", rows(4..7))).unwrap();
    let shown = on_a_terminal(&admin.command(&[
        "person",
        "import",
        "--realm",
        "AK00",
        file.to_str().unwrap(),
    ]));
    assert!(shown.contains("importing"), "{shown:?}");
    assert!(shown.contains("imported 3 person(s)"), "{shown:?}");
    let shown =
        on_a_terminal(&admin.command(&["code", "letters", "--realm", "AK00", "--out", "shown"]));
    assert!(shown.contains("letters "), "{shown:?}");
    assert!(shown.contains("3 letter(s) written"), "{shown:?}");
}

#[tokio::test]
async fn support_unlocks_a_locked_account_and_registers_a_new_phone() {
    let dir = realm_dir_with(|t| set_key(&t, "lock_after_failures", "2"));
    let path = dir.path().to_path_buf();
    let app = spawn_with(|c| c.realm_dir = path).await;
    let admin = Admin::new(&app);
    app.create_account("AK00", "anna@example.ch").await;
    app.wrong_passwords("anna@example.ch", 2).await;
    app.advance(3600);
    let locked = app
        .submit_login("/AK00/login", "anna@example.ch", PASSWORD)
        .await;
    assert_eq!(locked.status(), 403, "locked after two failures");

    let out = admin.support("unlock", &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "unlocked");
    let out = admin.support("phone", &["--phone", "076 555 44 33"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        "+41 76 *** ** 33"
    );
    let out = admin.support("phone", &["--phone", "031 390 23 25"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--phone"), "a landline is refused: {err}");
    admin.fails(&[
        "account",
        "unlock",
        "--realm",
        "AK00",
        "--email",
        "nobody@example.ch",
        "--operator",
        "support@caisse",
        "--reason",
        "test",
    ]);
    let err = admin.fails(&[
        "account",
        "unlock",
        "--realm",
        "AK00",
        "--email",
        "anna@example.ch",
        "--operator",
        "support@caisse",
    ]);
    assert!(err.contains("--reason"), "a reason is required: {err}");

    let res = app
        .submit_login("/AK00/login", "anna@example.ch", PASSWORD)
        .await;
    assert_eq!(res.status(), 303, "logged in again");
    let (to, _) = app.sms_outbox().pop().unwrap();
    assert_eq!(to, "+41765554433", "the code went to the new number");
}

fn stdout_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

#[tokio::test]
async fn support_lock_and_disable_end_access_at_once_and_tell_the_person() {
    let app = spawn_app().await;
    let admin = Admin::new(&app);
    app.create_account("AK00", "anna@example.ch").await;
    let res = app
        .submit_login("/AK00/login", "anna@example.ch", PASSWORD)
        .await;
    assert_eq!(res.status(), 303);
    assert!(app.has_session().await);

    let out = stdout_ok(&admin.support("lock", &[]));
    assert!(out.starts_with("locked"), "{out}");
    assert!(
        !app.has_session().await,
        "the session ended, though it lives in the server's store"
    );
    let mail = app.mail_outbox().pop().expect("a mail");
    assert_eq!(mail.to, "anna@example.ch");
    assert!(mail.subject.contains("bloqué"), "{}", mail.subject);
    assert!(
        mail.text.contains("Notre assistance a bloqué"),
        "{}",
        mail.text
    );
    let res = app
        .submit_login("/AK00/login", "anna@example.ch", PASSWORD)
        .await;
    assert_eq!(res.status(), 403, "locked until support unlocks it");
    app.advance(40 * 86400);
    let res = app
        .submit_login("/AK00/login", "anna@example.ch", PASSWORD)
        .await;
    assert_eq!(res.status(), 403, "a support lock does not end by itself");
    assert!(
        !admin.support("lock", &[]).status.success(),
        "already locked"
    );

    stdout_ok(&admin.support("unlock", &[]));
    assert!(last_subject(&app).contains("débloqué"));
    let res = app
        .submit_login("/AK00/login", "anna@example.ch", PASSWORD)
        .await;
    assert_eq!(res.status(), 303, "unlocked");

    let out = stdout_ok(&admin.support("disable", &[]));
    assert!(out.starts_with("disabled"), "{out}");
    assert!(!app.has_session().await);
    assert!(last_subject(&app).contains("désactivé"));
    let res = app
        .submit_login("/AK00/login", "anna@example.ch", PASSWORD)
        .await;
    assert_eq!(res.status(), 403);
    assert!(unescape(&res.text().await.unwrap()).contains("désactivé"));
    assert!(
        !admin.support("unlock", &[]).status.success(),
        "unlock does not enable a disabled account"
    );
    stdout_ok(&admin.support("enable", &[]));
    assert!(last_subject(&app).contains("réactivé"));
    let res = app
        .submit_login("/AK00/login", "anna@example.ch", PASSWORD)
        .await;
    assert_eq!(res.status(), 303, "enabled again");
}

#[tokio::test]
async fn a_support_change_of_phone_revokes_sessions_and_grants_and_tells_the_person() {
    let app = spawn_app().await;
    let admin = Admin::new(&app);
    app.create_account("AK00", "anna@example.ch").await;
    let cb = app
        .authorize_and_login(
            "AK00",
            &[
                ("client_id", "portal"),
                ("redirect_uri", PORTAL_REDIRECT),
                ("response_type", "code"),
                ("scope", "openid phone"),
            ],
            "anna@example.ch",
        )
        .await;
    let tokens = app.portal_tokens("AK00", &cb).await;

    let out = stdout_ok(&admin.support("phone", &["--phone", "076 555 44 33"]));
    assert_eq!(out.trim(), "+41 76 *** ** 33");
    assert!(!app.has_session().await, "the session ended");
    app.assert_revoked(&tokens).await;

    let mail = app.mail_outbox().pop().expect("a mail");
    assert_eq!(mail.to, "anna@example.ch");
    assert!(mail.text.contains("+41 76 *** ** 33"), "{}", mail.text);
    assert!(!mail.text.contains("555 44 33") && !mail.text.contains("765554433"));

    let anna = connect::storage::accounts::by_email(
        &app.state.db,
        &realm("AK00"),
        &"anna@example.ch".parse().unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        anna.phone_verified_at, None,
        "support's word is no proof: unverified until an SMS code comes back"
    );
    let res = app
        .submit_login("/AK00/login", "anna@example.ch", PASSWORD)
        .await;
    assert_eq!(res.status(), 303);
    let anna = connect::storage::accounts::by_id(&app.state.db, &realm("AK00"), &anna.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(anna.phone_verified_at, Some(app.clock().unix()));
}

#[tokio::test]
async fn admin_account_create_follows_the_rules_of_enrolment() {
    let app = spawn_app().await;
    let admin = Admin::new(&app);
    let create = |email: &str, phone: Option<&str>, password: &str| {
        let mut args = vec![
            "account",
            "create",
            "--realm",
            "AK00",
            "--email",
            email,
            "--password-stdin",
            "--given-name",
            "Anna",
            "--family-name",
            "Muster",
        ];
        if let Some(p) = phone {
            args.extend_from_slice(&["--phone", p]);
        }
        admin.run_with_stdin(&args, &format!("{password}\n"))
    };
    for (email, phone, password, why) in [
        ("anna@example.ch", None, "qwertyuiop", "a common password"),
        (
            "anna@example.ch",
            None,
            "Anna-Muster-77",
            "the person's name",
        ),
        ("anna@example.ch", None, "kurz", "too short"),
        ("not an address", None, PASSWORD, "a malformed address"),
        (
            "anna@example.ch",
            Some("031 390 23 25"),
            PASSWORD,
            "a landline",
        ),
        (
            "anna@example.ch",
            Some("+1 202 555 0100"),
            PASSWORD,
            "a country the realm refuses",
        ),
    ] {
        let out = create(email, phone, password);
        assert!(!out.status.success(), "{why} is accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains(password) || password == PASSWORD,
            "{why}: the password is echoed: {err}"
        );
    }
    let out = create("anna@example.ch", Some("079 123 45 67"), PASSWORD);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The subject of the latest mail in the outbox.
fn last_subject(app: &TestApp) -> String {
    app.mail_outbox()
        .pop()
        .expect("a mail to the person")
        .subject
}
