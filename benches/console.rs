//! The console's pages with a register of `PERSONS` persons (a tenth of them with an
//! account) on SQLite: each page fetched `ROUNDS` times over HTTP by one logged-in staff
//! member, one request at a time, and its median, 99th percentile and worst time printed.
//! The target is under 50 ms for every page (issue 13). `cargo bench --bench console`;
//! `-- --persons 20000` for a quicker run.
//!
//! The staff member's login is not measured: their staff realm session and console session
//! are started directly, as the callback starts them after the passkey login.

use std::time::{Duration, Instant};

use axum_extra::extract::CookieJar;
use connect::{
    app::App,
    clock::Clock,
    config::{Config, MasterKeySource},
    console::ConsoleSession,
    domain::{acr, AhvNumber, Email, Language, RealmId, StaffRole},
    storage::{
        accounts::{self, NewAccount},
        persons::{self, Person, PostalAddress},
        staff,
    },
};

const ROUNDS: usize = 200;

const FAMILY: [&str; 12] = [
    "Muster", "Müller", "Meier", "Schmid", "Keller", "Weber", "Huber", "Rossi", "Bianchi", "Favre",
    "Rochat", "Brunner",
];
const GIVEN: [&str; 8] = [
    "Anna", "Peter", "Maria", "Luca", "Claire", "Hans", "Sofia", "Marc",
];

/// The `n`-th AHV number of the sample register (check digit computed by trying).
fn ahv(n: u64) -> AhvNumber {
    (0..10)
        .find_map(|d| format!("756{:09}{d}", n).parse().ok())
        .expect("one check digit fits")
}

/// Two letters for a group of persons: `aa`, `ab`, …
fn tag(k: u64) -> String {
    let letter = |i: u64| char::from(b'a' + (i % 26) as u8);
    format!("{}{}", letter(k / 26), letter(k))
}

fn person(n: u64) -> Person {
    Person {
        ahv: ahv(n),
        // Family names with a tag, so that a name search finds tens, not thousands.
        family_name: format!("{}-{}", FAMILY[(n % 12) as usize], tag(n / 500)),
        given_name: GIVEN[(n % 8) as usize].to_owned(),
        birth_date: chrono::NaiveDate::from_ymd_opt(
            1930 + (n % 70) as i32,
            1 + (n % 12) as u32,
            1 + (n % 28) as u32,
        )
        .expect("date"),
        language: Language::Fr,
        address: PostalAddress {
            street: Some(format!("Rue {n}")),
            postal_code: Some("3000".into()),
            locality: Some("Berne".into()),
            country: None,
        },
    }
}

fn arg(name: &str) -> Option<u64> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

#[tokio::main]
async fn main() {
    let persons_total = arg("--persons").unwrap_or(100_000);
    // Failures inside the server are logged, never shown: print them here.
    let _ = tracing_subscriber::fmt().with_env_filter("warn").try_init();
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut config = Config::load(Some(&manifest.join("tests/connect-test.toml"))).expect("config");
    config.data_dir = dir.path().to_path_buf();
    config.outbox_dir = dir.path().join("outbox");
    config.realm_dir = manifest.join("realm-config");
    config.master_key = MasterKeySource::File(dir.path().join("master.key"));
    config.database_url = format!("sqlite://{}/connect.db?mode=rwc", dir.path().display());
    config.public_url = format!("http://{addr}").parse().expect("url");
    config.bind = addr;
    let app = App::with_listener(config, Clock::System, listener)
        .await
        .expect("app starts");
    let state = app.state.clone();
    tokio::spawn(app.run_until(std::future::pending()));

    let caisse: RealmId = "AK00".parse().expect("realm");
    let staff_realm: RealmId = "STAFF".parse().expect("realm");
    let now = chrono::Utc::now().timestamp();
    let started = Instant::now();
    let batch = 5_000;
    for start in (0..persons_total).step_by(batch) {
        let chunk: Vec<Person> = (start..(start + batch as u64).min(persons_total))
            .map(person)
            .collect();
        persons::add_many(&state.db, &caisse, &chunk, now)
            .await
            .expect("persons");
    }
    for n in (0..persons_total).step_by(10) {
        let p = person(n);
        let email: Email = format!("person{n}@example.ch").parse().expect("email");
        accounts::create(
            &state.db,
            &NewAccount {
                realm: &caisse,
                email: &email,
                password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
                given_name: &p.given_name,
                family_name: &p.family_name,
                ahv: Some(&p.ahv),
                phone: Some("+41791234567"),
                language: Language::Fr,
            },
            now,
        )
        .await
        .expect("account");
    }
    println!(
        "register: {persons_total} persons, {} accounts, written in {:.1} s",
        persons_total / 10,
        started.elapsed().as_secs_f64()
    );

    // A supervisor of AK00, logged in to the staff realm and to AK00's console.
    let email: Email = "desk@caisse.example".parse().expect("email");
    let account = accounts::create(
        &state.db,
        &NewAccount {
            realm: &staff_realm,
            email: &email,
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
            given_name: "Desk",
            family_name: "Bench",
            ahv: None,
            phone: None,
            language: Language::Fr,
        },
        now,
    )
    .await
    .expect("staff account");
    staff::set(
        &state.db,
        &staff_realm,
        &account,
        StaffRole::Supervisor,
        std::slice::from_ref(&caisse),
        "bench",
        now,
    )
    .await
    .expect("staff");
    let realm = state.realms.get(&staff_realm).expect("STAFF realm").clone();
    let (jar, session) = state
        .sessions
        .start(
            &realm,
            CookieJar::new(),
            &account,
            acr::PHISHING_RESISTANT,
            vec!["hwk".into(), "user".into()],
        )
        .await
        .expect("staff session");
    let console = ConsoleSession {
        account_id: account,
        sid: session.sid,
        seen_at: now,
    };
    let jar = state
        .console
        .start(&caisse, false, jar, &console)
        .await
        .expect("console session");
    // The browser: the two sessions' cookies, then the CSRF cookie of the first page.
    let cookies = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let origin: reqwest::Url = format!("http://{addr}/").parse().expect("url");
    for c in jar.iter() {
        cookies.add_cookie_str(&format!("{}={}; Path=/", c.name(), c.value()), &origin);
    }
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_provider(cookies)
        .build()
        .expect("client");
    let base = format!("http://{addr}/AK00/console");
    let home = http
        .get(&base)
        .send()
        .await
        .expect("console")
        .text()
        .await
        .expect("page");
    let marker = "name=\"csrf\" value=\"";
    let at = home.find(marker).expect("a CSRF token") + marker.len();
    let csrf = home[at..].split('"').next().expect("token").to_owned();
    let middle = persons_total / 2;
    let search = |q: String| vec![("csrf", csrf.clone()), ("q", q)];
    let person_id = {
        let res = http
            .post(format!("{base}/search"))
            .form(&search(ahv(middle).to_string()))
            .send()
            .await
            .expect("search");
        let status = res.status();
        // Pages escape `/` in attributes.
        let body = res.text().await.expect("body").replace("&#x2f;", "/");
        let at = body
            .find("/people/")
            .unwrap_or_else(|| panic!("no result: {status} {}", &body[..body.len().min(2000)]));
        body[at + 8..].split('"').next().expect("handle").to_owned()
    };
    let get = |url: String| (url, None);
    let post = |q: String| (format!("{base}/search"), Some(search(q)));
    let pages = [
        ("search page", get(base.clone())),
        ("search by AHV number", post(ahv(middle).to_string())),
        (
            "search by name",
            post(format!("Keller-{} Hans", tag(middle / 500))),
        ),
        ("search by birth date", post("01.02.1951".into())),
        (
            "search by e-mail",
            post(format!("person{}@example.ch", middle - middle % 10)),
        ),
        ("person's page", get(format!("{base}/people/{person_id}"))),
        (
            "action page (lock)",
            get(format!("{base}/people/{person_id}/lock")),
        ),
        ("my actions", get(format!("{base}/audit"))),
        ("all staff actions", get(format!("{base}/audit?all=1"))),
    ];
    println!("{ROUNDS} requests per page, one at a time (target: under 50 ms)");
    println!(
        "{:<24} {:>9} {:>9} {:>9}",
        "page", "p50 ms", "p99 ms", "max ms"
    );
    for (name, (url, form)) in pages {
        let mut times: Vec<Duration> = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let t = Instant::now();
            let request = match &form {
                Some(form) => http.post(&url).form(form),
                None => http.get(&url),
            };
            let res = request.send().await.expect("request");
            let status = res.status();
            let _ = res.bytes().await.expect("body");
            times.push(t.elapsed());
            assert!(status.is_success(), "{name}: {status}");
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "{name:<24} {:>9.2} {:>9.2} {:>9.2}",
            ms(times[ROUNDS / 2]),
            ms(times[ROUNDS * 99 / 100]),
            ms(times[ROUNDS - 1])
        );
    }
}
