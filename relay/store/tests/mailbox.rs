//! The mailbox contract, written once and run on both engines, with two store
//! handles ("nodes") on one store: what a message does is the same whichever node
//! a call reaches.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

mod support;

use std::time::Duration;

use chrono::TimeDelta;
use relay_mailbox::{
    AckPolicy, CHUNK_SIZE, DeletionReason, ListFilter, MailboxError, MailboxStore, MessageState,
    OverQuota, PutOutcome, Quota, SequenceType, TransferType, Which,
};
use relay_store::Store;
use support::*;

on_both_engines!(
    sent_through_one_node_listed_and_fetched_through_the_other_acked_through_the_first,
    bodies_on_chunk_boundaries_round_trip,
    a_duplicate_tx_id_through_another_node_is_not_stored_again,
    concurrent_puts_of_one_tx_id_on_two_nodes_store_it_once,
    of_concurrent_fetches_on_two_nodes_exactly_one_wins,
    a_dropped_fetch_handle_puts_the_message_back_in_the_list,
    completing_before_the_body_is_read_to_the_end_is_refused,
    the_fetch_lock_of_a_vanished_node_expires_after_its_lease,
    expired_messages_are_hidden_then_swept_by_any_node,
    delete_reports_the_reason_and_unknown_ids_are_not_found,
    a_failing_body_stores_nothing_and_frees_the_tx_id,
    an_upload_cut_off_midway_leaves_nothing_visible_and_no_key,
    a_long_upload_cut_off_midway_leaves_nothing_visible_and_no_key,
    invalid_labels_are_refused_and_synchronous_messages_never_listed,
    an_adm_message_sends_no_confirm_on_ack,
    two_concurrent_acks_on_two_nodes_give_one_confirm,
    stats_and_pending_processing_see_every_node,
    after_a_kek_rotation_every_key_is_rewrapped_and_the_old_kek_can_go,
    the_same_tx_id_from_two_senders_at_once_is_two_messages,
    two_messages_with_one_tx_id_in_one_outbox_are_fetched_and_acked_one_at_a_time,
    concurrent_puts_over_a_quota_on_two_nodes_never_pass_it,
    a_message_read_for_processing_stays_claimed,
    a_message_the_relay_writes_is_listed_at_once,
);

/// Stores a message through `store` and moves it into its outbox (`Received`).
async fn deliver(store: &Store, label: relay_mailbox::MessageLabel, body: &[u8]) -> PutOutcome {
    let which = Which::of(&label);
    let outcome = store.put(label, body).await.unwrap();
    store
        .mark_processed(which, MessageState::Received)
        .await
        .unwrap();
    outcome
}

async fn sent_through_one_node_listed_and_fetched_through_the_other_acked_through_the_first(
    c: Cluster,
) {
    let b = c.node().await;
    let mut l = label("urn:X-shs:1111111111");
    l.subject = Some("svar".into());
    let tx_id = l.tx_id.clone();
    let body = b"MIME-Version: 1.0\r\n\r\nhello".to_vec();

    let PutOutcome::Stored { arrival, .. } = c.a().put(l, &body[..]).await.unwrap() else {
        panic!("not stored")
    };
    assert_eq!(arrival, t0());
    let ob = outbox("1111111111");
    assert!(
        b.list(&ob, &ListFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    let pending = b.pending_processing().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].state, MessageState::New);

    b.mark_processed(&tx_id, MessageState::Received)
        .await
        .unwrap();
    let listed = b.list(&ob, &ListFilter::default()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].tx_id(), tx_id);
    assert_eq!(listed[0].label.subject.as_deref(), Some("svar"));
    assert_eq!(listed[0].body_bytes, body.len() as u64);
    assert_eq!(listed[0].expires_at, t0() + TimeDelta::hours(72));

    let mut handle = b.fetch(&ob, &tx_id).await.unwrap();
    assert_eq!(handle.meta().state, MessageState::FetchingInProgress);
    assert_eq!(read_all(handle.body().unwrap()).await.unwrap(), body);
    handle.complete().await.unwrap();
    let meta = c.a().get_meta(&tx_id).await.unwrap().unwrap();
    assert_eq!(meta.state, MessageState::Fetched);

    let ack = c.a().ack(&ob, &tx_id).await.unwrap();
    assert!(ack.send_confirm);
    assert_eq!(ack.meta.label.from.as_deref(), Some("5555555555"));
    assert_eq!(ack.deletion.unwrap().reason, DeletionReason::Acknowledged);
    assert!(b.get_meta(&tx_id).await.unwrap().is_none());
    assert_eq!(b.stats().await.unwrap().messages, 0);
    assert!(b.ack(&ob, &tx_id).await.unwrap_err().is_not_found());
    c.finish().await;
}

async fn bodies_on_chunk_boundaries_round_trip(c: Cluster) {
    let b = c.node().await;
    let ob = outbox("1111111111");
    for len in [
        0,
        1,
        CHUNK_SIZE - 1,
        CHUNK_SIZE,
        CHUNK_SIZE + 1,
        5 * CHUNK_SIZE + 7,
        // Around PostgreSQL's write bursts (8 chunks) and read batches (16).
        8 * CHUNK_SIZE,
        8 * CHUNK_SIZE + 1,
        16 * CHUNK_SIZE,
        17 * CHUNK_SIZE + 5,
    ] {
        let body: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let l = label("1111111111");
        let tx_id = l.tx_id.clone();
        deliver(c.a(), l, &body).await;
        let mut h = b.fetch(&ob, &tx_id).await.unwrap();
        let got = read_all(h.body().unwrap()).await.unwrap();
        assert_eq!(got.len(), len, "length {len}");
        assert!(got == body, "content of a {len}-byte body");
        h.complete().await.unwrap();
    }
    c.finish().await;
}

async fn a_duplicate_tx_id_through_another_node_is_not_stored_again(c: Cluster) {
    let b = c.node().await;
    let l = label("1111111111");
    let PutOutcome::Stored { arrival, .. } = c.a().put(l.clone(), &b"first"[..]).await.unwrap()
    else {
        panic!("not stored")
    };
    c.clock.advance(TimeDelta::seconds(5));
    assert_eq!(
        b.put(l.clone(), &b"second"[..]).await.unwrap(),
        PutOutcome::Duplicate {
            original_arrival: arrival
        }
    );
    assert_eq!(b.stats().await.unwrap().messages, 1);
    c.finish().await;
}

async fn concurrent_puts_of_one_tx_id_on_two_nodes_store_it_once(c: Cluster) {
    let b = c.node().await;
    let l = label("1111111111");
    let body = vec![9u8; 3 * CHUNK_SIZE];
    let mut tasks = Vec::new();
    for i in 0..6 {
        let node = if i % 2 == 0 { c.a().clone() } else { b.clone() };
        let (l, body) = (l.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            node.put(l, &body[..]).await.unwrap()
        }));
    }
    let mut stored = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), PutOutcome::Stored { .. }) {
            stored += 1;
        }
    }
    assert_eq!(stored, 1);
    let s = b.stats().await.unwrap();
    assert_eq!((s.messages, s.bytes), (1, body.len() as u64));
    c.finish().await;
}

async fn of_concurrent_fetches_on_two_nodes_exactly_one_wins(c: Cluster) {
    let b = c.node().await;
    let l = label("1111111111");
    let tx_id = l.tx_id.clone();
    deliver(c.a(), l, b"x").await;
    let ob = outbox("1111111111");
    let mut tasks = Vec::new();
    for i in 0..8 {
        let node = if i % 2 == 0 { c.a().clone() } else { b.clone() };
        let (ob, tx_id) = (ob.clone(), tx_id.clone());
        tasks.push(tokio::spawn(async move { node.fetch(&ob, &tx_id).await }));
    }
    let mut handles = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(h) => handles.push(h),
            Err(e) => assert!(e.is_not_found(), "{e}"),
        }
    }
    assert_eq!(handles.len(), 1);
    c.finish().await;
}

/// Waits (generously) until `tx_id` is listed again.
async fn until_listed(store: &Store, tx_id: &str) {
    let ob = outbox("1111111111");
    for _ in 0..200 {
        let listed = store.list(&ob, &ListFilter::default()).await.unwrap();
        if listed.iter().any(|m| m.tx_id() == tx_id) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{tx_id} was not listed again within 10 s");
}

async fn a_dropped_fetch_handle_puts_the_message_back_in_the_list(c: Cluster) {
    let b = c.node().await;
    let l = label("1111111111");
    let tx_id = l.tx_id.clone();
    deliver(c.a(), l, b"x").await;
    let ob = outbox("1111111111");
    let h = c.a().fetch(&ob, &tx_id).await.unwrap();
    assert!(
        b.list(&ob, &ListFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    drop(h);
    until_listed(&b, &tx_id).await;
    let mut h = b.fetch(&ob, &tx_id).await.unwrap();
    assert_eq!(read_all(h.body().unwrap()).await.unwrap(), b"x");
    h.complete().await.unwrap();
    c.finish().await;
}

async fn completing_before_the_body_is_read_to_the_end_is_refused(c: Cluster) {
    let l = label("1111111111");
    let tx_id = l.tx_id.clone();
    deliver(c.a(), l, &vec![1u8; 2 * CHUNK_SIZE]).await;
    let ob = outbox("1111111111");
    let h = c.a().fetch(&ob, &tx_id).await.unwrap();
    assert!(matches!(
        h.complete().await,
        Err(MailboxError::BodyNotFullyRead { .. })
    ));
    until_listed(c.a(), &tx_id).await;
    c.finish().await;
}

async fn the_fetch_lock_of_a_vanished_node_expires_after_its_lease(c: Cluster) {
    let b = c.node().await;
    let lease = Duration::from_secs(60 * 60);
    let ob = outbox("1111111111");

    // Node A takes the lock and is gone (no release ever runs).
    let l = label("1111111111");
    let tx_id = l.tx_id.clone();
    deliver(c.a(), l, b"body").await;
    std::mem::forget(c.a().fetch(&ob, &tx_id).await.unwrap());
    assert!(b.fetch(&ob, &tx_id).await.unwrap_err().is_not_found());
    c.clock.advance(TimeDelta::minutes(59));
    assert_eq!(
        b.release_stale_fetches(lease).await.unwrap(),
        0,
        "lease still runs"
    );
    c.clock.advance(TimeDelta::minutes(1));
    assert_eq!(b.release_stale_fetches(lease).await.unwrap(), 1);
    let mut h = b.fetch(&ob, &tx_id).await.unwrap();
    assert_eq!(read_all(h.body().unwrap()).await.unwrap(), b"body");
    h.complete().await.unwrap();

    // A holder that comes back after its lease cannot complete the new fetch.
    let l = label("1111111111");
    let tx_id = l.tx_id.clone();
    deliver(c.a(), l, b"again").await;
    let mut old = c.a().fetch(&ob, &tx_id).await.unwrap();
    read_all(old.body().unwrap()).await.unwrap();
    c.clock.advance(TimeDelta::hours(2));
    assert_eq!(b.release_stale_fetches(lease).await.unwrap(), 1);
    let mut new = b.fetch(&ob, &tx_id).await.unwrap();
    assert!(matches!(
        old.complete().await,
        Err(MailboxError::FetchLockLost { .. })
    ));
    read_all(new.body().unwrap()).await.unwrap();
    new.complete().await.unwrap();
    c.finish().await;
}

async fn expired_messages_are_hidden_then_swept_by_any_node(c: Cluster) {
    let b = c.node().await;
    let l = label("1111111111");
    let tx_id = l.tx_id.clone();
    deliver(c.a(), l, b"x").await;
    let ob = outbox("1111111111");
    c.clock.advance(TimeDelta::hours(72));
    assert!(
        b.list(&ob, &ListFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(b.fetch(&ob, &tx_id).await.unwrap_err().is_not_found());
    let swept = b.sweep(c.clock_now()).await.unwrap();
    assert_eq!(swept.len(), 1);
    assert_eq!(swept[0].tx_id, tx_id);
    assert_eq!(swept[0].reason, DeletionReason::Expired);
    assert!(c.a().get_meta(&tx_id).await.unwrap().is_none());
    assert!(c.a().sweep(c.clock_now()).await.unwrap().is_empty());
    c.finish().await;
}

async fn delete_reports_the_reason_and_unknown_ids_are_not_found(c: Cluster) {
    let b = c.node().await;
    let l = label("1111111111");
    let tx_id = l.tx_id.clone();
    deliver(c.a(), l, b"x").await;
    let d = b.delete(&tx_id, DeletionReason::Operator).await.unwrap();
    assert_eq!(
        (d.tx_id.as_str(), d.reason),
        (tx_id.as_str(), DeletionReason::Operator)
    );
    assert!(c.a().get_meta(&tx_id).await.unwrap().is_none());
    assert!(
        b.delete(&tx_id, DeletionReason::Operator)
            .await
            .unwrap_err()
            .is_not_found()
    );
    c.finish().await;
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

async fn a_failing_body_stores_nothing_and_frees_the_tx_id(c: Cluster) {
    let good = vec![3u8; 200_000];
    let failing = tokio::io::AsyncReadExt::chain(&good[..], FailingReader);
    let l = label("1111111111");
    let err = c.a().put(l.clone(), failing).await.unwrap_err();
    assert!(matches!(err, MailboxError::Body(_)));
    assert!(err.is_caller_fault());
    assert!(c.a().get_meta(&l.tx_id).await.unwrap().is_none());
    assert_eq!(c.a().stats().await.unwrap().messages, 0);
    if let Store::Postgres(pg) = c.a() {
        assert!(
            pg.kek_usage().await.unwrap().is_empty(),
            "no key left behind"
        );
    }
    assert!(matches!(
        c.node().await.put(l, &good[..]).await.unwrap(),
        PutOutcome::Stored { .. }
    ));
    c.finish().await;
}

async fn an_upload_cut_off_midway_leaves_nothing_visible_and_no_key(c: Cluster) {
    cut_off_after(c, 3 * CHUNK_SIZE + 10).await;
}

/// Past PostgreSQL's first write bursts (key and chunks already written).
async fn a_long_upload_cut_off_midway_leaves_nothing_visible_and_no_key(c: Cluster) {
    cut_off_after(c, 20 * CHUNK_SIZE + 10).await;
}

/// An upload that stops after `left` bytes, then is cancelled.
async fn cut_off_after(c: Cluster, left: usize) {
    let b = c.node().await;
    let l = label("1111111111");
    let node = c.node().await;
    let upload = {
        let l = l.clone();
        tokio::spawn(async move {
            node.put(
                l,
                Stalling {
                    left,
                    announce: None,
                },
            )
            .await
        })
    };
    // Let the chunks reach the store, then cut the upload off.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        b.get_meta(&l.tx_id).await.unwrap().is_none(),
        "not visible while streaming"
    );
    upload.abort();
    assert!(upload.await.unwrap_err().is_cancelled());
    assert!(b.get_meta(&l.tx_id).await.unwrap().is_none());
    assert_eq!(b.stats().await.unwrap().messages, 0);
    if let Store::Postgres(pg) = &b {
        // The transaction rolls back as the connection is returned: poll for it.
        for _ in 0..200 {
            if pg.kek_usage().await.unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(
            pg.kek_usage().await.unwrap().is_empty(),
            "no key left behind"
        );
    }
    // The tx.id is free: the sender's retry is stored.
    assert!(matches!(
        b.put(l, &b"whole"[..]).await.unwrap(),
        PutOutcome::Stored { .. }
    ));
    c.finish().await;
}

async fn invalid_labels_are_refused_and_synchronous_messages_never_listed(c: Cluster) {
    let mut bad = label("1111111111");
    bad.tx_id = " ".into();
    assert!(matches!(
        c.a().put(bad, &b""[..]).await,
        Err(MailboxError::InvalidLabel(_))
    ));
    let mut no_product = label("1111111111");
    no_product.product = "urn:x-shs:".into();
    assert!(matches!(
        c.a().put(no_product, &b""[..]).await,
        Err(MailboxError::InvalidLabel(_))
    ));
    let mut s = label("1111111111");
    s.transfer_type = TransferType::Synch;
    let tx_id = s.tx_id.clone();
    deliver(c.a(), s, b"x").await;
    let ob = outbox("1111111111");
    assert!(
        c.a()
            .list(&ob, &ListFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(c.a().fetch(&ob, &tx_id).await.unwrap_err().is_not_found());
    c.finish().await;
}

async fn an_adm_message_sends_no_confirm_on_ack(c: Cluster) {
    let mut l = label("1111111111");
    l.sequence_type = SequenceType::Adm;
    let tx_id = l.tx_id.clone();
    deliver(c.a(), l, b"x").await;
    let ob = outbox("1111111111");
    let other = outbox("2222222222");
    assert!(c.a().ack(&other, &tx_id).await.unwrap_err().is_not_found());
    let ack = c.node().await.ack(&ob, &tx_id).await.unwrap();
    assert!(!ack.send_confirm);
    assert_eq!(c.ack_policy, AckPolicy::DeleteOnAck);
    assert!(ack.deletion.is_some());
    c.finish().await;
}

async fn two_concurrent_acks_on_two_nodes_give_one_confirm(c: Cluster) {
    let l = label("1111111111");
    let tx_id = l.tx_id.clone();
    deliver(c.a(), l, b"x").await;
    let ob = outbox("1111111111");
    let b = c.node().await;
    let (x, y) = tokio::join!(c.a().ack(&ob, &tx_id), b.ack(&ob, &tx_id));
    let confirms = [x, y]
        .into_iter()
        .filter(|r| matches!(r, Ok(o) if o.send_confirm))
        .count();
    assert_eq!(confirms, 1, "one confirm for the sender");
    c.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_acks_give_one_confirm_when_acknowledged_messages_are_kept_on_redb() {
    two_concurrent_acks_on_two_nodes_give_one_confirm(
        Cluster::redb_with(AckPolicy::KeepUntilExpiry).await,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_acks_give_one_confirm_when_acknowledged_messages_are_kept_on_postgres() {
    two_concurrent_acks_on_two_nodes_give_one_confirm(
        Cluster::postgres_with(AckPolicy::KeepUntilExpiry).await,
    )
    .await;
}

async fn stats_and_pending_processing_see_every_node(c: Cluster) {
    let b = c.node().await;
    let first = label("1111111111");
    c.a().put(first.clone(), &b"12345"[..]).await.unwrap();
    c.clock.advance(TimeDelta::seconds(1));
    let second = label("2222222222");
    b.put(second.clone(), &b"123"[..]).await.unwrap();
    let s = c.a().stats().await.unwrap();
    assert_eq!((s.messages, s.bytes, s.oldest_arrival), (2, 8, Some(t0())));
    let pending: Vec<String> = b
        .pending_processing()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.label.tx_id)
        .collect();
    assert_eq!(pending, vec![first.tx_id.clone(), second.tx_id]);
    c.a()
        .set_state(&first.tx_id, MessageState::Quarantined)
        .await
        .unwrap();
    assert_eq!(
        b.get_meta(&first.tx_id).await.unwrap().unwrap().state,
        MessageState::Quarantined
    );
    assert!(
        b.set_state("no-such-tx", MessageState::Received)
            .await
            .unwrap_err()
            .is_not_found()
    );
    c.finish().await;
}

async fn after_a_kek_rotation_every_key_is_rewrapped_and_the_old_kek_can_go(c: Cluster) {
    let b = c.node().await;
    let (one, two) = (label("1111111111"), label("1111111111"));
    deliver(c.a(), one.clone(), b"one").await;
    deliver(&b, two.clone(), b"two").await;
    let first = relay_mailbox::KeyEncryptionKey::current_id(&*c.kek_file);
    assert_eq!(
        c.a()
            .kek_usage()
            .await
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        vec![(first, 2)]
    );
    let second = c.kek_file.rotate().unwrap();
    assert_eq!(b.rewrap_all().await.unwrap(), 2);
    assert_eq!(
        c.a().rewrap_all().await.unwrap(),
        0,
        "nothing left to rewrap"
    );
    assert_eq!(
        c.a()
            .kek_usage()
            .await
            .unwrap()
            .into_iter()
            .collect::<Vec<_>>(),
        vec![(second, 2)]
    );
    c.kek_file.retire(first).unwrap();
    let ob = outbox("1111111111");
    for (l, body) in [(one, b"one"), (two, b"two")] {
        let mut h = c.a().fetch(&ob, &l.tx_id).await.unwrap();
        assert_eq!(read_all(h.body().unwrap()).await.unwrap(), body);
        h.complete().await.unwrap();
    }
    c.finish().await;
}

/// The identity is (sender, tx.id): two organisations that send one tx.id at
/// the same moment, through two nodes, each get their own stored message;
/// neither is told "duplicate", and each is found, read and deleted as its own.
async fn the_same_tx_id_from_two_senders_at_once_is_two_messages(c: Cluster) {
    let b = c.node().await;
    let tx_id = tx();
    let from = |org: &str| {
        let mut l = label("1111111111");
        l.tx_id = tx_id.clone();
        l.from = Some(format!("urn:X-shs:{org}"));
        l
    };
    let (first, second) = (from("2222222222"), from("3333333333"));
    let (x, y) = tokio::join!(
        c.a().put(first.clone(), &b"from 2222222222"[..]),
        b.put(second.clone(), &b"from 3333333333"[..])
    );
    assert!(matches!(x.unwrap(), PutOutcome::Stored { .. }));
    assert!(matches!(y.unwrap(), PutOutcome::Stored { .. }));
    // Each sender's repeat is that sender's duplicate.
    assert!(matches!(
        b.put(first.clone(), &b"again"[..]).await.unwrap(),
        PutOutcome::Duplicate { .. }
    ));
    assert_eq!(b.stats().await.unwrap().messages, 2);
    for (l, org) in [(&first, "2222222222"), (&second, "3333333333")] {
        let meta = c.a().get_meta(Which::of(l)).await.unwrap().unwrap();
        assert_eq!(meta.label.sender_org().as_deref(), Some(org));
        b.mark_processed(Which::of(l), MessageState::Received)
            .await
            .unwrap();
    }
    let listed = c
        .a()
        .list(&outbox("1111111111"), &ListFilter::default())
        .await
        .unwrap();
    assert_eq!(listed.len(), 2);
    let d = b
        .delete(Which::of(&second), DeletionReason::Operator)
        .await
        .unwrap();
    assert_eq!(d.tx_id, tx_id);
    let left = c.a().get_meta(&tx_id).await.unwrap().unwrap();
    assert_eq!(left.label.sender_org().as_deref(), Some("2222222222"));
    c.finish().await;
}

/// One outbox, two senders' messages with one tx.id: a fetch by tx.id hands
/// out the older, the ack by tx.id acks the one just fetched (its sender gets
/// the confirm), then the other is fetched; `sender` picks exactly.
async fn two_messages_with_one_tx_id_in_one_outbox_are_fetched_and_acked_one_at_a_time(c: Cluster) {
    let b = c.node().await;
    let tx_id = tx();
    let from = |org: &str| {
        let mut l = label("1111111111");
        l.tx_id = tx_id.clone();
        l.from = Some(org.to_owned());
        l
    };
    let ob = outbox("1111111111");
    deliver(c.a(), from("2222222222"), b"older").await;
    c.clock.advance(TimeDelta::seconds(1));
    deliver(&b, from("3333333333"), b"newer").await;

    // `sender` names one exactly, whatever the order.
    let mut h = b
        .fetch(&ob, Which::exact(tx_id.clone(), "3333333333"))
        .await
        .unwrap();
    assert_eq!(read_all(h.body().unwrap()).await.unwrap(), b"newer");
    drop(h);

    let mut h = c.a().fetch(&ob, &tx_id).await.unwrap();
    assert_eq!(read_all(h.body().unwrap()).await.unwrap(), b"older");
    h.complete().await.unwrap();
    let ack = b.ack(&ob, &tx_id).await.unwrap();
    assert_eq!(ack.meta.label.sender_org().as_deref(), Some("2222222222"));
    assert!(ack.send_confirm);

    let mut h = b.fetch(&ob, &tx_id).await.unwrap();
    assert_eq!(read_all(h.body().unwrap()).await.unwrap(), b"newer");
    h.complete().await.unwrap();
    let ack = c.a().ack(&ob, &tx_id).await.unwrap();
    assert_eq!(ack.meta.label.sender_org().as_deref(), Some("3333333333"));
    assert!(c.a().fetch(&ob, &tx_id).await.unwrap_err().is_not_found());
    // Another outbox never sees them.
    assert!(
        b.fetch(&outbox("4444444444"), &tx_id)
            .await
            .unwrap_err()
            .is_not_found()
    );
    c.finish().await;
}

/// The quota is decided in the write that stores the message: twelve uploads
/// at once through two store handles on one store, with room for three, store
/// exactly three and refuse the rest as over the sender's quota.
async fn concurrent_puts_over_a_quota_on_two_nodes_never_pass_it(c: Cluster) {
    let b = c.node().await;
    let quota = Quota {
        max_messages_per_sender: 3,
        ..Quota::NONE
    };
    let body = vec![3u8; 2 * CHUNK_SIZE];
    let mut tasks = Vec::new();
    for i in 0..12 {
        let node = if i % 2 == 0 { c.a().clone() } else { b.clone() };
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            node.put_within(label("1111111111"), &body[..], quota)
                .await
                .unwrap()
        }));
    }
    let (mut stored, mut refused) = (0, 0);
    for t in tasks {
        match t.await.unwrap() {
            PutOutcome::Stored { .. } => stored += 1,
            PutOutcome::OverQuota(OverQuota::Sender(u)) => {
                assert_eq!(u.messages, 3);
                refused += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!((stored, refused), (3, 9));
    assert_eq!(b.stats().await.unwrap().messages, 3);
    // Nothing of the refused uploads is left behind: three data keys.
    assert_eq!(c.a().kek_usage().await.unwrap().values().sum::<usize>(), 3);
    // The outbox quota holds the same way.
    let quota = Quota {
        max_messages_per_outbox: 3,
        ..Quota::NONE
    };
    assert!(matches!(
        b.put_within(label("1111111111"), &b"x"[..], quota)
            .await
            .unwrap(),
        PutOutcome::OverQuota(OverQuota::Outbox(_))
    ));
    c.finish().await;
}

/// What the relay reads to process a message it took over keeps the message
/// `processing` (claimed): if the node dies while it works, the message is
/// still found as unfinished work, on any node.
async fn a_message_read_for_processing_stays_claimed(c: Cluster) {
    let b = c.node().await;
    let l = label("1111111111");
    c.a().put(l.clone(), &b"question"[..]).await.unwrap();
    let mut h = b.read(Which::of(&l)).await.unwrap();
    assert_eq!(read_all(h.body().unwrap()).await.unwrap(), b"question");
    h.complete().await.unwrap();
    let meta = c.a().get_meta(Which::of(&l)).await.unwrap().unwrap();
    assert!(meta.processing);
    assert_eq!(meta.state, MessageState::New);
    assert!(
        b.pending_processing()
            .await
            .unwrap()
            .iter()
            .any(|m| m.tx_id() == l.tx_id)
    );
    c.finish().await;
}

/// A reply, confirm or error the relay writes goes straight into its outbox:
/// listed, fetchable, not unfinished work; stored again, it is a duplicate.
async fn a_message_the_relay_writes_is_listed_at_once(c: Cluster) {
    let b = c.node().await;
    let ob = outbox("1111111111");
    let l = label("1111111111");
    let tx_id = l.tx_id.clone();
    let body = vec![7u8; CHUNK_SIZE + 3];
    assert!(matches!(
        c.a().put_received(l.clone(), &body[..]).await.unwrap(),
        PutOutcome::Stored { .. }
    ));
    let listed = b.list(&ob, &ListFilter::default()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, MessageState::Received);
    assert!(!listed[0].processing);
    assert!(b.pending_processing().await.unwrap().is_empty());
    assert!(matches!(
        b.put_received(l, &b"again"[..]).await.unwrap(),
        PutOutcome::Duplicate { .. }
    ));
    let mut h = b.fetch(&ob, &tx_id).await.unwrap();
    assert_eq!(read_all(h.body().unwrap()).await.unwrap(), body);
    h.complete().await.unwrap();
    c.finish().await;
}
