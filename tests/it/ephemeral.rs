//! The short-lived store, in-process and Redis, behaves the same through its typed handles.

use std::time::Duration;

use connect::{
    clock::Clock,
    keys::{MasterKey, SecretHasher},
    storage::{
        ephemeral::{Counter, Record},
        Ephemeral,
    },
};

/// Each store with the clock its in-process entries expire by.
async fn stores() -> Vec<(Ephemeral, Clock)> {
    let clock = Clock::manual();
    let mut all = vec![(Ephemeral::memory(clock.clone()), clock)];
    if let Ok(url) = std::env::var("CONNECT_TEST_REDIS_URL") {
        let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
        let store = Ephemeral::redis(&url, &prefix).await.expect("redis");
        all.push((store, Clock::manual()));
    }
    all
}

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn put_get_take_and_delete() {
    for (store, _) in stores().await {
        let r: Record<String> = Record::plain(&store, "t");
        r.put("AK00", "a", &"1".into(), MINUTE).await.unwrap();
        assert_eq!(
            r.get("AK00", "a").await.unwrap().as_deref(),
            Some("1"),
            "{store:?}"
        );
        assert_eq!(r.get("AK01", "a").await.unwrap(), None, "scopes are apart");
        assert_eq!(r.take("AK00", "a").await.unwrap().as_deref(), Some("1"));
        assert_eq!(
            r.take("AK00", "a").await.unwrap(),
            None,
            "take is single use"
        );
        r.put("AK00", "b", &"2".into(), MINUTE).await.unwrap();
        r.delete("AK00", "b").await.unwrap();
        assert_eq!(r.get("AK00", "b").await.unwrap(), None);
        assert!(r.put_new("", "c", &"x".into(), MINUTE).await.unwrap());
        assert!(!r.put_new("", "c", &"y".into(), MINUTE).await.unwrap());
        assert_eq!(r.get("", "c").await.unwrap().as_deref(), Some("x"));
        store.ping().await.unwrap();
    }
}

#[tokio::test]
async fn kinds_of_records_do_not_meet_and_hashed_ones_hide_their_id() {
    let hasher = SecretHasher::new(&MasterKey::generate());
    for (store, _) in stores().await {
        let a: Record<u32> = Record::plain(&store, "a");
        let b: Record<u32> = Record::plain(&store, "b");
        let h: Record<u32> = Record::hashed(&store, "a", &hasher, "p:");
        a.put("AK00", "x", &1, MINUTE).await.unwrap();
        assert_eq!(b.get("AK00", "x").await.unwrap(), None, "{store:?}");
        assert_eq!(h.get("AK00", "x").await.unwrap(), None, "{store:?}");
        h.put("AK00", "x", &2, MINUTE).await.unwrap();
        assert_eq!(h.get("AK00", "x").await.unwrap(), Some(2));
        assert_eq!(a.get("AK00", "x").await.unwrap(), Some(1));
    }
}

#[tokio::test]
async fn in_process_entries_expire_by_the_clock() {
    let clock = Clock::manual();
    let store = Ephemeral::memory(clock.clone());
    let r: Record<u8> = Record::plain(&store, "short");
    r.put("", "k", &1, Duration::from_secs(30)).await.unwrap();
    let n = Counter::plain(&store, "n");
    assert_eq!(n.hit("", "k", Duration::from_secs(30)).await.unwrap(), 1);
    clock.advance(Duration::from_secs(29));
    assert_eq!(r.get("", "k").await.unwrap(), Some(1), "not yet");
    assert_eq!(n.count("", "k").await.unwrap(), 1);
    clock.advance(Duration::from_secs(1));
    assert_eq!(r.get("", "k").await.unwrap(), None, "expired");
    assert_eq!(n.count("", "k").await.unwrap(), 0);
    assert_eq!(
        n.hit("", "k", Duration::from_secs(30)).await.unwrap(),
        1,
        "a new window"
    );
}

#[tokio::test]
async fn redis_entries_expire() {
    for (store, _) in stores().await.into_iter().skip(1) {
        let r: Record<u8> = Record::plain(&store, "short");
        r.put("", "k", &1, Duration::from_millis(30)).await.unwrap();
        // Redis keeps its own time: this wait is Redis's, not one the clock could move.
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(r.get("", "k").await.unwrap(), None, "{store:?}");
    }
}

#[tokio::test]
async fn hits_count_within_a_window() {
    for (store, _) in stores().await {
        let n = Counter::plain(&store, "n");
        for expected in 1..=3 {
            assert_eq!(
                n.hit("AK00", "a", MINUTE).await.unwrap(),
                expected,
                "{store:?}"
            );
        }
        assert_eq!(n.count("AK00", "a").await.unwrap(), 3);
        assert_eq!(n.hit("AK00", "other", MINUTE).await.unwrap(), 1);
        n.delete("AK00", "a").await.unwrap();
        assert_eq!(n.count("AK00", "a").await.unwrap(), 0);
    }
}

#[tokio::test]
async fn of_many_concurrent_takers_exactly_one_wins() {
    for (store, _) in stores().await {
        let r: Record<String> = Record::plain(&store, "t");
        r.put("", "once", &"v".into(), MINUTE).await.unwrap();
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let r = r.clone();
                tokio::spawn(async move { r.take("", "once").await.unwrap().is_some() })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap());
        }
        assert_eq!(wins, 1, "{store:?}");
    }
}

#[tokio::test]
async fn a_swap_writes_only_over_what_it_read_and_one_of_many_wins() {
    for (store, _) in stores().await {
        let r: Record<u8> = Record::plain(&store, "t");
        let absent = r.read("", "k").await.unwrap();
        assert!(absent.value.is_none());
        assert!(
            r.swap("", "k", &absent, &1, MINUTE).await.unwrap(),
            "{store:?}: absent"
        );
        assert!(
            !r.swap("", "k", &absent, &2, MINUTE).await.unwrap(),
            "no longer absent"
        );
        let one = r.read("", "k").await.unwrap();
        assert_eq!(one.value, Some(1));
        assert!(r.swap("", "k", &one, &2, MINUTE).await.unwrap());
        assert!(
            !r.swap("", "k", &one, &3, MINUTE).await.unwrap(),
            "not 1 any more"
        );
        assert_eq!(r.get("", "k").await.unwrap(), Some(2));
        let tasks: Vec<_> = (0..16u8)
            .map(|i| {
                let r = r.clone();
                tokio::spawn(async move {
                    let seen = r.read("", "k").await.unwrap();
                    if seen.value != Some(2) {
                        return false;
                    }
                    r.swap("", "k", &seen, &(10 + i), MINUTE).await.unwrap()
                })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap());
        }
        assert_eq!(wins, 1, "{store:?}");
    }
}
