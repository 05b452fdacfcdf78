//! Every delivery-service list filter, parsed from Axel's query parameters and
//! applied to one outbox with a known set of messages.

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

use chrono::TimeDelta;
use relay_mailbox::{
    AckPolicy, ListFilter, MailboxStore, MessageLabel, MessageState, Retention, SequenceType,
    Status,
};
use support::*;

const P1: &str = "00000000-0000-0000-0000-000000000001";
const P2: &str = "00000000-0000-0000-0000-000000000002";

struct Outbox {
    f: Fixture,
    m1: String,
    m2: String,
    m3: String,
    m4: String,
}

/// m1..m3 are production messages waiting in 1111111111, a minute apart; m4 is a
/// test message; the others are elsewhere or not waiting. m2 is acknowledged
/// (kept, so `noack` has something to hide).
async fn outbox_with_messages() -> Outbox {
    let f = Fixture::with(Retention::default(), AckPolicy::KeepUntilExpiry);
    let make = |product: &str, seq: SequenceType, from: &str| {
        let mut l = label("urn:X-shs:1111111111");
        l.product = product.to_owned();
        l.sequence_type = seq;
        l.from = Some(from.to_owned());
        l
    };
    let mut m1 = make(P1, SequenceType::Request, "5555555555");
    m1.originator = Some("orgno:1".into());
    m1.end_recipient = Some("e1".into());
    m1.corr_id = "c1".into();
    m1.content_id = "k1".into();
    m1.subject = Some("b".into());
    m1.meta = vec![("kommun".into(), "0180".into())];

    let mut m2 = make(P2, SequenceType::Event, "6666666666");
    m2.end_recipient = Some("e2".into());
    m2.corr_id = "c1".into();
    m2.content_id = "k2".into();
    m2.subject = Some("a".into());
    m2.meta = vec![("kommun".into(), "1280".into())];

    let mut m3 = make("confirm", SequenceType::Adm, "7777777777");
    m3.corr_id = "c3".into();
    m3.content_id = "k1".into();
    m3.subject = Some("c".into());
    m3.meta = vec![("kommun".into(), "0001".into())];

    let mut m4 = make(P1, SequenceType::Event, "5555555555");
    m4.status = Status::Test;

    let elsewhere = {
        let mut l = make(P1, SequenceType::Event, "5555555555");
        l.to = outbox("1111111111.other");
        l
    };
    let fetched = make(P1, SequenceType::Event, "5555555555");

    let ids: Vec<String> = [&m1, &m2, &m3, &m4, &elsewhere, &fetched]
        .iter()
        .map(|l: &&MessageLabel| l.tx_id.clone())
        .collect();
    for l in [m1, m2, m3, m4, elsewhere, fetched] {
        f.clock.advance(TimeDelta::minutes(1));
        f.deliver(l, b"body").await;
    }
    f.store
        .set_state(&ids[5], MessageState::Fetched)
        .await
        .unwrap();
    f.store.ack(&outbox("1111111111"), &ids[1]).await.unwrap();
    Outbox {
        f,
        m1: ids[0].clone(),
        m2: ids[1].clone(),
        m3: ids[2].clone(),
        m4: ids[3].clone(),
    }
}

impl Outbox {
    async fn list(&self, query: &[(&str, &str)]) -> Vec<String> {
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let filter = ListFilter::from_query(&query).unwrap();
        self.f
            .store
            .list(&outbox("1111111111"), &filter)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.label.tx_id)
            .collect()
    }

    fn ids<const N: usize>(&self, which: [&String; N]) -> Vec<String> {
        which.iter().map(|s| (*s).clone()).collect()
    }
}

#[tokio::test]
async fn without_parameters_production_messages_waiting_here_in_arrival_order() {
    let o = outbox_with_messages().await;
    assert_eq!(o.list(&[]).await, o.ids([&o.m1, &o.m2, &o.m3]));
    assert_eq!(
        o.list(&[("arrivalorder", "descending")]).await,
        o.ids([&o.m3, &o.m2, &o.m1])
    );
}

#[tokio::test]
async fn producttype_matches_any_listed_product_in_urn_or_plain_form() {
    let o = outbox_with_messages().await;
    assert_eq!(o.list(&[("producttype", P1)]).await, o.ids([&o.m1]));
    assert_eq!(
        o.list(&[("producttype", &format!("urn:X-shs:{P2},confirm"))])
            .await,
        o.ids([&o.m2, &o.m3])
    );
    assert_eq!(
        o.list(&[("producttype", &P2.to_uppercase())]).await,
        o.ids([&o.m2])
    );
    assert!(o.list(&[("producttype", "error")]).await.is_empty());
}

#[tokio::test]
async fn noack_hides_acknowledged_messages() {
    let o = outbox_with_messages().await;
    assert_eq!(o.list(&[("filter", "noack")]).await, o.ids([&o.m1, &o.m3]));
}

#[tokio::test]
async fn maxhits_caps_after_ordering_and_zero_means_the_default() {
    let o = outbox_with_messages().await;
    assert_eq!(o.list(&[("maxhits", "2")]).await, o.ids([&o.m1, &o.m2]));
    assert_eq!(
        o.list(&[("maxhits", "1"), ("arrivalorder", "descending")])
            .await,
        o.ids([&o.m3])
    );
    assert_eq!(o.list(&[("maxhits", "0")]).await.len(), 3);
}

#[tokio::test]
async fn status_test_lists_only_test_messages() {
    let o = outbox_with_messages().await;
    assert_eq!(o.list(&[("status", "test")]).await, o.ids([&o.m4]));
    assert_eq!(o.list(&[("status", "Production")]).await.len(), 3);
}

#[tokio::test]
async fn corrid_contentid_and_endrecipient_match_exactly() {
    let o = outbox_with_messages().await;
    assert_eq!(o.list(&[("corrid", "c1")]).await, o.ids([&o.m1, &o.m2]));
    assert_eq!(o.list(&[("contentid", "k1")]).await, o.ids([&o.m1, &o.m3]));
    assert_eq!(o.list(&[("endrecipient", "e2")]).await, o.ids([&o.m2]));
    assert!(o.list(&[("corrid", "c")]).await.is_empty());
    assert_eq!(
        o.list(&[("corrid", "c1"), ("contentid", "k1")]).await,
        o.ids([&o.m1])
    );
}

#[tokio::test]
async fn originator_matches_the_originator_or_the_from_address() {
    let o = outbox_with_messages().await;
    assert_eq!(o.list(&[("originator", "orgno:1")]).await, o.ids([&o.m1]));
    assert_eq!(
        o.list(&[("originator", "6666666666")]).await,
        o.ids([&o.m2])
    );
    assert_eq!(
        o.list(&[("originator", "urn:X-shs:7777777777")]).await,
        o.ids([&o.m3])
    );
}

#[tokio::test]
async fn since_compares_the_state_timestamp() {
    let o = outbox_with_messages().await;
    // m1 was delivered at t0+1min, m2 at +2min, m3 at +3min.
    let at = |min: i64| {
        (t0() + TimeDelta::minutes(min))
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string()
    };
    assert_eq!(o.list(&[("since", &at(2))]).await, o.ids([&o.m2, &o.m3]));
    assert!(o.list(&[("since", &at(4))]).await.is_empty());
    // A released fetch lock counts as a new state change.
    o.f.clock.advance(TimeDelta::minutes(10));
    drop(o.f.store.fetch(&outbox("1111111111"), &o.m1).await.unwrap());
    assert_eq!(o.list(&[("since", &at(5))]).await, o.ids([&o.m1]));
}

#[tokio::test]
async fn sortattribute_and_sortorder_order_before_arrival() {
    let o = outbox_with_messages().await;
    let sorted = |attr: &'static str, order: &'static str| {
        let o = &o;
        async move {
            o.list(&[("sortattribute", attr), ("sortorder", order)])
                .await
        }
    };
    assert_eq!(sorted("subject", "asc").await, o.ids([&o.m2, &o.m1, &o.m3]));
    assert_eq!(
        sorted("subject", "desc").await,
        o.ids([&o.m3, &o.m1, &o.m2])
    );
    assert_eq!(
        sorted("meta-kommun", "ascending").await,
        o.ids([&o.m3, &o.m1, &o.m2])
    );
    // originator, or from when there is none: 6666.., 7777.., orgno:1
    assert_eq!(
        sorted("originator", "asc").await,
        o.ids([&o.m2, &o.m3, &o.m1])
    );
    assert_eq!(sorted("from", "asc").await, o.ids([&o.m2, &o.m3, &o.m1]));
    assert_eq!(
        sorted("producttype", "asc").await,
        o.ids([&o.m1, &o.m2, &o.m3])
    );
    assert_eq!(
        sorted("sequencetype", "asc").await,
        o.ids([&o.m3, &o.m2, &o.m1])
    );
    assert_eq!(
        sorted("contentid", "asc").await,
        o.ids([&o.m1, &o.m3, &o.m2])
    );
    // Missing values sort first.
    assert_eq!(
        sorted("endrecipient", "asc").await,
        o.ids([&o.m3, &o.m1, &o.m2])
    );
    assert_eq!(
        sorted("transfertype", "desc").await,
        o.ids([&o.m1, &o.m2, &o.m3])
    );
    // Ties keep the arrival order, in its own direction.
    assert_eq!(sorted("-corrid", "asc").await, o.ids([&o.m1, &o.m2, &o.m3]));
    assert_eq!(
        o.list(&[("sortattribute", "corrid"), ("arrivalorder", "descending")])
            .await,
        o.ids([&o.m2, &o.m1, &o.m3])
    );
}

#[tokio::test]
async fn a_bad_value_is_refused_before_the_store_is_asked() {
    let query = vec![("sortattribute".to_owned(), "size".to_owned())];
    let err = ListFilter::from_query(&query).unwrap_err();
    assert_eq!(err.param(), "sortattribute");
}
