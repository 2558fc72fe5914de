//! The support desk's console: a staff member finds the person on the phone and helps them.

use connect::{
    domain::Language,
    storage::{
        lookup::{self, Lookup},
        persons::{self, Person, PostalAddress},
    },
};

use crate::helpers::*;

/// Anna Muster's AHV number, the one `create_account` gives anna@example.ch.
const ANNA: &str = "756.1234.5678.97";

async fn register(app: &TestApp, ahv: &str, given: &str, family: &str, born: &str) -> Person {
    let person = Person {
        ahv: ahv.parse().expect("ahv"),
        given_name: given.into(),
        family_name: family.into(),
        birth_date: born.parse().expect("date"),
        language: Language::Fr,
        address: PostalAddress::default(),
    };
    persons::add(&app.state.db, &realm("AK00"), &person, app.clock().unix())
        .await
        .expect("person");
    person
}

fn names(found: &[lookup::Found]) -> Vec<String> {
    found
        .iter()
        .map(|f| format!("{} {}", f.given_name, f.family_name))
        .collect()
}

#[tokio::test]
async fn the_search_finds_a_caller_by_what_they_say_on_the_phone() {
    let app = spawn_app().await;
    register(&app, ANNA, "Anna", "Muster", "1950-03-14").await;
    register(&app, &ahv(2), "Éric", "Rochat", "1948-11-02").await;
    register(&app, &ahv(3), "Hans", "Müller", "1950-03-14").await;
    register(&app, &ahv(4), "Anna", "Keller", "1961-07-30").await;
    register(&app, &ahv(5), "Léa", "Du_Pont", "1961-07-30").await;
    // Anna Muster has an account.
    let anna = app.create_account("AK00", "anna@example.ch").await;
    let search = |text: &'static str| {
        let app = &app;
        async move {
            let lookup = connect_lookup(text);
            lookup::search(&app.state.db, &realm("AK00"), &lookup)
                .await
                .expect("search")
        }
    };
    // An AHV number in any formatting.
    for text in [ahv(2), ahv(2).replace('.', ""), ahv(2).replace('.', " ")] {
        let found = lookup::search(&app.state.db, &realm("AK00"), &connect_lookup(&text))
            .await
            .expect("search");
        assert_eq!(names(&found), ["Éric Rochat"], "{text}");
        assert!(found[0].account_id.is_none());
    }
    // A birth date, in Swiss or ISO writing: two persons, by family name.
    assert_eq!(
        names(&search("14.03.1950").await),
        ["Anna Muster", "Hans Müller"]
    );
    assert_eq!(
        names(&search("1950-03-14").await),
        ["Anna Muster", "Hans Müller"]
    );
    // A name: each word starts the given or the family name, in any case, accents kept.
    assert_eq!(names(&search("anna").await), ["Anna Keller", "Anna Muster"]);
    assert_eq!(names(&search("MUST anna").await), ["Anna Muster"]);
    assert_eq!(names(&search("éric").await), ["Éric Rochat"]);
    assert_eq!(names(&search("müll").await), ["Hans Müller"]);
    // The operator's % and _ are letters, not wildcards.
    assert_eq!(names(&search("du_").await), ["Léa Du_Pont"]);
    assert!(search("d_").await.is_empty());
    assert!(search("%").await.is_empty());
    // An e-mail address finds the account, with the person of the register.
    let found = search("ANNA@example.ch").await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].account_id.as_deref(), Some(anna.as_str()));
    assert!(found[0].person_id.is_some());
    assert_eq!(found[0].birth_date.as_deref(), Some("1950-03-14"));
    // The person found by name shows the account too.
    let found = search("muster").await;
    assert_eq!(found[0].account_id.as_deref(), Some(anna.as_str()));
    // Nothing of another caisse.
    let other = lookup::search(&app.state.db, &realm("AK01"), &connect_lookup("anna"))
        .await
        .expect("search");
    assert!(other.is_empty());
}

fn connect_lookup(text: &str) -> Lookup {
    connect::console::parse_lookup(text).expect("a readable search")
}
