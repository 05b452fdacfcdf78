//! The store's behaviour through the `MailboxStore` trait: put, list, fetch, ack,
//! duplicates, locks, outboxes, retention and recovery state.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

#[path = "redb_support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use chrono::TimeDelta;
use relay_mailbox::{
    AckPolicy, Clock, DEFAULT_TTL, DeletionReason, ListFilter, MailboxError, MailboxStore,
    MessageState, PutOutcome, Retention, SequenceType, Status, TransferType,
};
use support::*;

#[tokio::test]
async fn put_list_fetch_ack_round_trip() {
    let f = Fixture::new();
    let mut l = label("urn:X-shs:1111111111");
    l.subject = Some("svar".into());
    let tx_id = l.tx_id.clone();
    let body = b"MIME-Version: 1.0\r\n\r\nhello".to_vec();

    let PutOutcome::Stored { arrival, .. } = f.store.put(l, &body[..]).await.unwrap() else {
        panic!("not stored")
    };
    assert_eq!(arrival, t0());
    // Accepted but not processed: not listed yet, and resumable.
    let ob = outbox("1111111111");
    assert!(
        f.store
            .list(&ob, &ListFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    let pending = f.store.pending_processing().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].state, MessageState::New);

    f.store
        .mark_processed(&tx_id, MessageState::Received)
        .await
        .unwrap();
    assert!(f.store.pending_processing().await.unwrap().is_empty());
    let listed = f.store.list(&ob, &ListFilter::default()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].tx_id(), tx_id);
    assert_eq!(listed[0].label.subject.as_deref(), Some("svar"));
    assert_eq!(listed[0].body_bytes, body.len() as u64);
    assert_eq!(listed[0].expires_at, t0() + TimeDelta::hours(72));

    let mut handle = f.store.fetch(&ob, &tx_id).await.unwrap();
    assert_eq!(handle.meta().state, MessageState::FetchingInProgress);
    let got = read_all(handle.body().unwrap()).await.unwrap();
    assert_eq!(got, body);
    handle.complete().await.unwrap();
    let meta = f.store.get_meta(&tx_id).await.unwrap().unwrap();
    assert_eq!(meta.state, MessageState::Fetched);
    assert!(
        f.store
            .list(&ob, &ListFilter::default())
            .await
            .unwrap()
            .is_empty()
    );

    let ack = f.store.ack(&ob, &tx_id).await.unwrap();
    assert!(ack.send_confirm);
    assert_eq!(ack.meta.label.from.as_deref(), Some("5555555555"));
    assert_eq!(ack.meta.label.to.as_str(), "1111111111");
    let deletion = ack.deletion.unwrap();
    assert_eq!(deletion.reason, DeletionReason::Acknowledged);
    assert_eq!(deletion.tx_id, tx_id);
    assert!(f.store.get_meta(&tx_id).await.unwrap().is_none());
    assert_eq!(f.store.stats().await.unwrap().messages, 0);
    assert!(f.store.kek_usage().await.unwrap().is_empty());
    // A second ack finds nothing.
    assert!(f.store.ack(&ob, &tx_id).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn an_empty_body_and_bodies_on_chunk_boundaries_round_trip() {
    let f = Fixture::new();
    let ob = outbox("1111111111");
    for len in [
        0,
        1,
        relay_mailbox::CHUNK_SIZE,
        relay_mailbox::CHUNK_SIZE * 2 + 7,
    ] {
        let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let l = label("1111111111");
        let tx_id = l.tx_id.clone();
        f.deliver(l, &body).await;
        let mut h = f.store.fetch(&ob, &tx_id).await.unwrap();
        assert_eq!(
            read_all(h.body().unwrap()).await.unwrap(),
            body,
            "len {len}"
        );
        h.complete().await.unwrap();
    }
}

#[tokio::test]
async fn a_duplicate_tx_id_is_not_stored_again_and_reports_the_original_arrival() {
    let f = Fixture::new();
    let l = label("1111111111");
    let tx_id = l.tx_id.clone();
    let first = f.deliver(l.clone(), b"first").await;
    let PutOutcome::Stored { arrival, .. } = first else {
        panic!()
    };
    f.clock.advance(TimeDelta::minutes(5));
    // The identity is (sender, tx.id): the same sender's tx.id to another
    // recipient is a duplicate too.
    let mut again = l;
    again.to = outbox("2222222222");
    let second = f.store.put(again, &b"second"[..]).await.unwrap();
    assert_eq!(
        second,
        PutOutcome::Duplicate {
            original_arrival: arrival
        }
    );
    assert_eq!(f.store.stats().await.unwrap().messages, 1);
    let mut h = f.store.fetch(&outbox("1111111111"), &tx_id).await.unwrap();
    assert_eq!(read_all(h.body().unwrap()).await.unwrap(), b"first");
    assert_eq!(
        f.store.kek_usage().await.unwrap().values().sum::<usize>(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_puts_of_one_tx_id_store_it_once() {
    let f = Fixture::new();
    let l = label("1111111111");
    let body = vec![7u8; 300_000];
    let puts = (0..4).map(|_| {
        let (store, l, body) = (f.store.clone(), l.clone(), body.clone());
        tokio::spawn(async move { store.put(l, &body[..]).await.unwrap() })
    });
    let outcomes = futures::future::join_all(puts).await;
    let stored = outcomes
        .iter()
        .filter(|o| matches!(o.as_ref().unwrap(), PutOutcome::Stored { .. }))
        .count();
    assert_eq!(stored, 1);
    assert_eq!(f.store.stats().await.unwrap().messages, 1);
    assert_eq!(
        f.store.kek_usage().await.unwrap().values().sum::<usize>(),
        1
    );
}

#[tokio::test]
async fn fetching_twice_is_not_found() {
    let f = Fixture::new();
    let l = label("1111111111");
    let tx_id = l.tx_id.clone();
    f.deliver(l, b"x").await;
    let ob = outbox("1111111111");
    let _held = f.store.fetch(&ob, &tx_id).await.unwrap();
    let err = f.store.fetch(&ob, &tx_id).await.unwrap_err();
    assert!(err.is_not_found());
    assert_eq!(
        err.to_string(),
        format!("Message entry not found in message log: {tx_id}")
    );
    drop(_held);
    let mut h = f.store.fetch(&ob, &tx_id).await.unwrap();
    read_all(h.body().unwrap()).await.unwrap();
    h.complete().await.unwrap();
    assert!(f.store.fetch(&ob, &tx_id).await.unwrap_err().is_not_found());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_concurrent_fetches_exactly_one_wins() {
    let f = Fixture::new();
    let l = label("1111111111");
    let tx_id = l.tx_id.clone();
    f.deliver(l, b"x").await;
    let fetches = (0..8).map(|_| {
        let (store, tx_id) = (f.store.clone(), tx_id.clone());
        tokio::spawn(async move {
            store
                .fetch(&outbox("1111111111"), &tx_id)
                .await
                .map(|mut h| {
                    // Keep the lock until every fetch has answered.
                    let body = h.take_body();
                    (h, body)
                })
        })
    });
    let results = futures::future::join_all(fetches).await;
    let winners = results
        .iter()
        .filter(|r| r.as_ref().unwrap().is_ok())
        .count();
    assert_eq!(winners, 1);
    for r in results {
        if let Err(e) = r.unwrap() {
            assert!(e.is_not_found(), "{e}");
        }
    }
}

#[tokio::test]
async fn a_dropped_fetch_handle_puts_the_message_back_in_the_list() {
    let f = Fixture::new();
    let l = label("1111111111");
    let tx_id = l.tx_id.clone();
    f.deliver(l, &vec![1u8; 200_000]).await;
    let ob = outbox("1111111111");
    let mut h = f.store.fetch(&ob, &tx_id).await.unwrap();
    assert!(
        f.store
            .list(&ob, &ListFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    // Half-read, then the client goes away.
    let mut buf = [0u8; 1000];
    tokio::io::AsyncReadExt::read_exact(h.body().unwrap(), &mut buf)
        .await
        .unwrap();
    drop(h);
    let listed = f.store.list(&ob, &ListFilter::default()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, MessageState::Received);
}

#[tokio::test]
async fn completing_before_the_body_is_read_to_the_end_is_refused_and_releases() {
    let f = Fixture::new();
    let l = label("1111111111");
    let tx_id = l.tx_id.clone();
    f.deliver(l, b"body").await;
    let ob = outbox("1111111111");
    let h = f.store.fetch(&ob, &tx_id).await.unwrap();
    assert!(matches!(
        h.complete().await,
        Err(MailboxError::BodyNotFullyRead { .. })
    ));
    assert_eq!(
        f.store
            .list(&ob, &ListFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn the_body_also_streams_as_bytes() {
    use futures::StreamExt;
    let f = Fixture::new();
    let l = label("1111111111");
    let tx_id = l.tx_id.clone();
    let body: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
    f.deliver(l, &body).await;
    let mut h = f.store.fetch(&outbox("1111111111"), &tx_id).await.unwrap();
    let mut stream = h.take_body().unwrap();
    let mut got = Vec::new();
    let mut pieces = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        assert!(chunk.len() <= relay_mailbox::CHUNK_SIZE);
        got.extend_from_slice(&chunk);
        pieces += 1;
    }
    assert_eq!(got, body);
    assert_eq!(pieces, 5);
    assert!(h.body_finished());
    h.complete().await.unwrap();
}

#[tokio::test]
async fn stale_fetch_locks_are_released_and_the_old_handle_cannot_complete() {
    let f = Fixture::new();
    let l = label("1111111111");
    let tx_id = l.tx_id.clone();
    f.deliver(l, b"body").await;
    let ob = outbox("1111111111");
    let mut old = f.store.fetch(&ob, &tx_id).await.unwrap();
    read_all(old.body().unwrap()).await.unwrap();

    f.clock.advance(TimeDelta::minutes(59));
    assert_eq!(
        f.store
            .release_stale_fetches(Duration::from_secs(3600))
            .await
            .unwrap(),
        0
    );
    f.clock.advance(TimeDelta::minutes(1));
    assert_eq!(
        f.store
            .release_stale_fetches(Duration::from_secs(3600))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        f.store
            .list(&ob, &ListFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );

    let mut new = f.store.fetch(&ob, &tx_id).await.unwrap();
    assert!(matches!(
        old.complete().await,
        Err(MailboxError::FetchLockLost { .. })
    ));
    read_all(new.body().unwrap()).await.unwrap();
    new.complete().await.unwrap();
    assert_eq!(
        f.store.get_meta(&tx_id).await.unwrap().unwrap().state,
        MessageState::Fetched
    );
}

#[tokio::test]
async fn urn_and_plain_outbox_are_the_same_and_internal_ids_are_separate() {
    let f = Fixture::new();
    let plain = label("0000000000");
    let urn = label("urn:x-SHS:0000000000");
    let agda = label("urn:X-shs:0000000000.agda");
    let junit = label("0000000000.junit");
    for l in [&plain, &urn, &agda, &junit] {
        f.deliver(l.clone(), b"x").await;
    }
    let all = ListFilter::default();
    let base = f
        .store
        .list(&outbox("URN:X-SHS:0000000000"), &all)
        .await
        .unwrap();
    let mut ids: Vec<_> = base.iter().map(|m| m.tx_id().to_owned()).collect();
    ids.sort();
    let mut want = vec![plain.tx_id.clone(), urn.tx_id.clone()];
    want.sort();
    assert_eq!(ids, want);
    let a = f
        .store
        .list(&outbox("0000000000.agda"), &all)
        .await
        .unwrap();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].tx_id(), agda.tx_id);
    assert!(
        f.store
            .list(&outbox("0000000000.other"), &all)
            .await
            .unwrap()
            .is_empty()
    );
    // Fetch and ack only through the right outbox.
    assert!(
        f.store
            .fetch(&outbox("0000000000"), &agda.tx_id)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        f.store
            .ack(&outbox("0000000000"), &agda.tx_id)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        f.store
            .fetch(&outbox("urn:x-shs:0000000000.agda"), &agda.tx_id)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn ack_of_an_adm_message_sends_no_confirm_and_keep_policy_flags_it() {
    let f = Fixture::with(Retention::default(), AckPolicy::KeepUntilExpiry);
    let ob = outbox("1111111111");
    let mut adm = label("1111111111");
    adm.sequence_type = SequenceType::Adm;
    adm.product = "confirm".into();
    let plain = label("1111111111");
    f.deliver(adm.clone(), b"<confirmation/>").await;
    f.deliver(plain.clone(), b"x").await;

    let a = f.store.ack(&ob, &adm.tx_id).await.unwrap();
    assert!(!a.send_confirm);
    assert!(a.deletion.is_none());
    let first = f.store.ack(&ob, &plain.tx_id).await.unwrap();
    assert!(first.send_confirm);
    let second = f.store.ack(&ob, &plain.tx_id).await.unwrap();
    assert!(
        !second.send_confirm,
        "only the first ack asks for a confirm"
    );
    // `filter=noack` now hides both; the plain listing still shows them.
    let noack = ListFilter {
        no_ack: true,
        product_types: vec![],
        ..ListFilter::default()
    };
    assert!(f.store.list(&ob, &noack).await.unwrap().is_empty());
    assert_eq!(
        f.store
            .list(&ob, &ListFilter::default())
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn a_message_not_yet_delivered_cannot_be_fetched_or_acked() {
    let f = Fixture::new();
    let l = label("1111111111");
    let tx_id = l.tx_id.clone();
    f.store.put(l, &b"x"[..]).await.unwrap();
    let ob = outbox("1111111111");
    assert!(f.store.fetch(&ob, &tx_id).await.unwrap_err().is_not_found());
    assert!(f.store.ack(&ob, &tx_id).await.unwrap_err().is_not_found());
    f.store
        .mark_processed(&tx_id, MessageState::Quarantined)
        .await
        .unwrap();
    assert!(f.store.fetch(&ob, &tx_id).await.unwrap_err().is_not_found());
    assert!(
        f.store
            .list(&ob, &ListFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    f.store
        .set_state(&tx_id, MessageState::Received)
        .await
        .unwrap();
    assert_eq!(
        f.store
            .list(&ob, &ListFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn synchronous_messages_are_never_listed() {
    let f = Fixture::new();
    let mut l = label("1111111111");
    l.transfer_type = TransferType::Synch;
    f.deliver(l, b"x").await;
    assert!(
        f.store
            .list(&outbox("1111111111"), &ListFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn expired_messages_are_hidden_then_swept_with_reason_expired() {
    let short = "00000000-0000-0000-0000-00000000000a";
    let retention =
        Retention::new(DEFAULT_TTL, [(short.to_owned(), Duration::from_secs(3600))]).unwrap();
    let f = Fixture::with(retention, AckPolicy::DeleteOnAck);
    let ob = outbox("1111111111");
    let mut quick = label("1111111111");
    quick.product = format!("urn:X-shs:{}", short.to_uppercase());
    let slow = label("1111111111");
    f.deliver(quick.clone(), b"q").await;
    f.deliver(slow.clone(), b"s").await;

    f.clock.advance(TimeDelta::minutes(59));
    assert!(f.store.sweep(f.clock.now()).await.unwrap().is_empty());
    assert_eq!(
        f.store
            .list(&ob, &ListFilter::default())
            .await
            .unwrap()
            .len(),
        2
    );

    f.clock.advance(TimeDelta::minutes(1));
    // Exactly at expiry: no longer listed or fetchable, even before the sweep.
    assert_eq!(
        f.store
            .list(&ob, &ListFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        f.store
            .fetch(&ob, &quick.tx_id)
            .await
            .unwrap_err()
            .is_not_found()
    );
    let now = f.clock.now();
    let swept = f.store.sweep(now).await.unwrap();
    assert_eq!(swept.len(), 1);
    assert_eq!(swept[0].tx_id, quick.tx_id);
    assert_eq!(swept[0].reason, DeletionReason::Expired);
    assert_eq!(swept[0].at, now);
    assert!(f.store.get_meta(&quick.tx_id).await.unwrap().is_none());

    f.clock.advance(TimeDelta::hours(71));
    let swept = f.store.sweep(f.clock.now()).await.unwrap();
    assert_eq!(swept.len(), 1);
    assert_eq!(swept[0].tx_id, slow.tx_id);
    let stats = f.store.stats().await.unwrap();
    assert_eq!(
        (stats.messages, stats.bytes, stats.oldest_arrival),
        (0, 0, None)
    );
}

#[tokio::test]
async fn the_sweeper_also_removes_messages_stuck_in_any_state() {
    let f = Fixture::new();
    let l = label("1111111111");
    f.store
        .put(l.clone(), &b"never processed"[..])
        .await
        .unwrap();
    f.clock.advance(TimeDelta::hours(72));
    let swept = f.store.sweep(f.clock.now()).await.unwrap();
    assert_eq!(swept.len(), 1);
    assert!(f.store.pending_processing().await.unwrap().is_empty());
}

#[tokio::test]
async fn delete_reports_the_reason_and_unknown_ids_are_not_found() {
    let f = Fixture::new();
    let l = label("1111111111");
    f.store.put(l.clone(), &b"x"[..]).await.unwrap();
    let d = f
        .store
        .delete(&l.tx_id, DeletionReason::Rejected)
        .await
        .unwrap();
    assert_eq!(d.reason, DeletionReason::Rejected);
    assert_eq!(d.at, t0());
    assert!(
        f.store
            .delete(&l.tx_id, DeletionReason::Operator)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert!(
        f.store
            .set_state("nope", MessageState::Received)
            .await
            .unwrap_err()
            .is_not_found()
    );
}

#[tokio::test]
async fn stats_count_messages_bytes_and_the_oldest_arrival() {
    let f = Fixture::new();
    f.deliver(label("1111111111"), &[0u8; 1000]).await;
    f.clock.advance(TimeDelta::seconds(10));
    f.deliver(label("2222222222"), &[0u8; 500]).await;
    let s = f.store.stats().await.unwrap();
    assert_eq!(
        (s.messages, s.bytes, s.oldest_arrival),
        (2, 1500, Some(t0()))
    );
}

#[tokio::test]
async fn labels_are_normalised_and_invalid_ones_refused() {
    let f = Fixture::new();
    let mut l = label("1111111111");
    l.from = Some("urn:X-shs:5555555555".into());
    l.end_recipient = Some("  ".into());
    l.product = "URN:x-shs:confirm".into();
    let tx_id = l.tx_id.clone();
    f.store.put(l, &b""[..]).await.unwrap();
    let m = f.store.get_meta(&tx_id).await.unwrap().unwrap();
    assert_eq!(m.label.from.as_deref(), Some("5555555555"));
    assert_eq!(m.label.end_recipient, None);
    assert_eq!(m.label.product, "confirm");

    let mut bad = label("1111111111");
    bad.tx_id = " ".into();
    assert!(matches!(
        f.store.put(bad, &b""[..]).await,
        Err(MailboxError::InvalidLabel(_))
    ));
}

#[tokio::test]
async fn a_failing_body_stores_nothing_and_leaves_no_key() {
    let f = Fixture::new();
    let good = vec![3u8; 200_000];
    let failing = tokio::io::AsyncReadExt::chain(&good[..], FailingReader);
    let l = label("1111111111");
    let err = f.store.put(l.clone(), failing).await.unwrap_err();
    assert!(matches!(err, MailboxError::Body(_)));
    assert!(err.is_caller_fault());
    assert!(f.store.get_meta(&l.tx_id).await.unwrap().is_none());
    assert!(f.store.kek_usage().await.unwrap().is_empty());
    assert!(slot_file_is_clear(&f));
    // The tx.id is free for a retry.
    assert!(matches!(
        f.store.put(l, &good[..]).await.unwrap(),
        PutOutcome::Stored { .. }
    ));
}

struct FailingReader;

impl tokio::io::AsyncRead for FailingReader {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        _: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "sender went away",
        )))
    }
}

fn slot_file_is_clear(f: &Fixture) -> bool {
    let bytes = std::fs::read(f.store.key_slot_path()).unwrap();
    bytes[128..].iter().all(|&b| b == 0)
}

#[tokio::test]
async fn status_test_messages_only_show_with_status_test() {
    let f = Fixture::new();
    let mut t = label("1111111111");
    t.status = Status::Test;
    f.deliver(t.clone(), b"x").await;
    f.deliver(label("1111111111"), b"y").await;
    let ob = outbox("1111111111");
    let prod = f.store.list(&ob, &ListFilter::default()).await.unwrap();
    assert_eq!(prod.len(), 1);
    assert_ne!(prod[0].tx_id(), t.tx_id);
    let test = ListFilter {
        status: Status::Test,
        ..ListFilter::default()
    };
    let listed = f.store.list(&ob, &test).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].tx_id(), t.tx_id);
}

#[tokio::test]
async fn the_store_is_usable_from_many_tasks() {
    let f = Fixture::new();
    let store = Arc::new(f.store.clone());
    let tasks = (0..10).map(|i| {
        let store = store.clone();
        tokio::spawn(async move {
            let l = label("1111111111");
            store
                .put(l.clone(), &vec![i as u8; 70_000][..])
                .await
                .unwrap();
            store
                .mark_processed(&l.tx_id, MessageState::Received)
                .await
                .unwrap();
        })
    });
    futures::future::join_all(tasks).await;
    assert_eq!(
        f.store
            .list(&outbox("1111111111"), &ListFilter::default())
            .await
            .unwrap()
            .len(),
        10
    );
}
