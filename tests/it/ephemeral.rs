//! The short-lived store, in-process and Redis, behaves the same.

use std::time::Duration;

use connect::storage::Ephemeral;

async fn stores() -> Vec<Ephemeral> {
    let mut all = vec![Ephemeral::memory()];
    if let Ok(url) = std::env::var("CONNECT_TEST_REDIS_URL") {
        let prefix = format!("test:{}:", uuid::Uuid::new_v4().simple());
        all.push(Ephemeral::redis(&url, &prefix).await.expect("redis"));
    }
    all
}

#[tokio::test]
async fn put_get_take_and_delete() {
    for store in stores().await {
        store.put("a", b"1", Duration::from_secs(60)).await.unwrap();
        assert_eq!(
            store.get("a").await.unwrap().as_deref(),
            Some(&b"1"[..]),
            "{store:?}"
        );
        assert_eq!(store.take("a").await.unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(store.take("a").await.unwrap(), None, "take is single use");
        store.put("b", b"2", Duration::from_secs(60)).await.unwrap();
        store.delete("b").await.unwrap();
        assert_eq!(store.get("b").await.unwrap(), None);
        assert!(store
            .put_new("c", b"x", Duration::from_secs(60))
            .await
            .unwrap());
        assert!(!store
            .put_new("c", b"y", Duration::from_secs(60))
            .await
            .unwrap());
        assert_eq!(store.get("c").await.unwrap().as_deref(), Some(&b"x"[..]));
        store.ping().await.unwrap();
    }
}

#[tokio::test]
async fn entries_expire() {
    for store in stores().await {
        store
            .put("short", b"1", Duration::from_millis(30))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert_eq!(store.get("short").await.unwrap(), None, "{store:?}");
    }
}

#[tokio::test]
async fn hits_count_within_a_window() {
    for store in stores().await {
        for expected in 1..=3 {
            assert_eq!(
                store.hit("n", Duration::from_secs(60)).await.unwrap(),
                expected,
                "{store:?}"
            );
        }
        assert_eq!(
            store.hit("other", Duration::from_secs(60)).await.unwrap(),
            1
        );
    }
}

#[tokio::test]
async fn of_many_concurrent_takers_exactly_one_wins() {
    for store in stores().await {
        store
            .put("once", b"v", Duration::from_secs(60))
            .await
            .unwrap();
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let s = store.clone();
                tokio::spawn(async move { s.take("once").await.unwrap().is_some() })
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
async fn a_swap_writes_only_over_what_it_expects_and_one_of_many_wins() {
    let ttl = Duration::from_secs(60);
    for store in stores().await {
        assert!(
            store.swap("k", None, b"1", ttl).await.unwrap(),
            "{store:?}: absent"
        );
        assert!(
            !store.swap("k", None, b"2", ttl).await.unwrap(),
            "no longer absent"
        );
        assert!(
            !store.swap("k", Some(b"0"), b"2", ttl).await.unwrap(),
            "not 0"
        );
        assert!(store.swap("k", Some(b"1"), b"2", ttl).await.unwrap());
        assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"2"[..]));
        let tasks: Vec<_> = (0..16u8)
            .map(|i| {
                let s = store.clone();
                tokio::spawn(async move { s.swap("k", Some(b"2"), &[i], ttl).await.unwrap() })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            wins += usize::from(t.await.unwrap());
        }
        assert_eq!(wins, 1, "{store:?}");
    }
}
