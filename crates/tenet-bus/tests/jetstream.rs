//! The event flow against a real NATS server with JetStream (Debian's
//! `nats-server`, started privately; skipped loudly where it is not
//! installed, a failure under `TENET_REQUIRE_EXTERNAL=1`).

use std::time::Duration;

use bytes::Bytes;
use tenet_bus::{Bus, BusError, partition_of};
use tenet_testkit::nats::Server;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
fn a_partitions_reader_gets_its_partitions_events_in_order_and_no_others() {
    let Some(nats) = Server::start("a_partitions_reader_gets_its_partitions_events_in_order_and_no_others") else {
        return;
    };
    runtime().block_on(async {
        let bus = Bus::connect(&nats.url(), 4).await.unwrap();
        for i in 0..20u32 {
            let p = i % 4;
            assert!(!bus.publish(p, &format!("e{i}"), Bytes::from(format!("event {i}"))).await.unwrap());
        }
        let feed = bus.partition(1, "node-a", Duration::from_secs(30)).await.unwrap();
        let got = feed.fetch(100, Duration::from_millis(500)).await.unwrap();
        let payloads: Vec<String> = got.iter().map(|d| String::from_utf8(d.payload.to_vec()).unwrap()).collect();
        assert_eq!(payloads, ["event 1", "event 5", "event 9", "event 13", "event 17"]);
        assert!(got.windows(2).all(|w| w[0].stream_seq < w[1].stream_seq));
        for d in &got {
            d.ack().await.unwrap();
        }
        assert!(feed.fetch(100, Duration::from_millis(300)).await.unwrap().is_empty(), "acknowledged: gone");
        assert!(matches!(bus.publish(4, "x", Bytes::new()).await, Err(BusError::NoSuchPartition { .. })));
    });
}

#[test]
fn a_retried_publish_is_stored_once() {
    let Some(nats) = Server::start("a_retried_publish_is_stored_once") else { return };
    runtime().block_on(async {
        let bus = Bus::connect(&nats.url(), 2).await.unwrap();
        let p = partition_of("user:alice", 2);
        assert!(!bus.publish(p, "delivery-7", Bytes::from_static(b"once")).await.unwrap());
        assert!(bus.publish(p, "delivery-7", Bytes::from_static(b"once")).await.unwrap(), "a duplicate");
        let feed = bus.partition(p, "node-a", Duration::from_secs(30)).await.unwrap();
        assert_eq!(feed.fetch(10, Duration::from_millis(500)).await.unwrap().len(), 1);
    });
}

#[test]
fn an_unacknowledged_event_is_delivered_again_and_survives_a_server_restart() {
    let Some(nats) = Server::start("an_unacknowledged_event_is_delivered_again_and_survives_a_server_restart") else {
        return;
    };
    let rt = runtime();
    rt.block_on(async {
        let bus = Bus::connect(&nats.url(), 2).await.unwrap();
        bus.publish(0, "a", Bytes::from_static(b"kept")).await.unwrap();
        // A reader that dies before committing never acknowledges.
        let feed = bus.partition(0, "node-a", Duration::from_secs(1)).await.unwrap();
        let first = feed.fetch(10, Duration::from_millis(500)).await.unwrap();
        assert_eq!((first.len(), first[0].delivered), (1, 1));
        drop(first);
        tokio::time::sleep(Duration::from_millis(1300)).await;
        let again = feed.fetch(10, Duration::from_secs(2)).await.unwrap();
        assert_eq!(again.len(), 1, "delivered again after the ack wait");
        assert_eq!((again[0].payload.as_ref(), again[0].delivered), (&b"kept"[..], 2));
    });
    drop(rt);
    nats.stop();
    nats.start_again();
    runtime().block_on(async {
        let bus = Bus::connect(&nats.url(), 2).await.unwrap();
        let feed = bus.partition(0, "node-a", Duration::from_secs(1)).await.unwrap();
        let after = feed.fetch(10, Duration::from_secs(2)).await.unwrap();
        assert_eq!(after.len(), 1, "JetStream kept the unacknowledged event across the restart");
        after[0].ack().await.unwrap();
    });
}

#[test]
fn a_node_configured_for_another_partition_count_is_refused() {
    let Some(nats) = Server::start("a_node_configured_for_another_partition_count_is_refused") else { return };
    runtime().block_on(async {
        Bus::connect(&nats.url(), 8).await.unwrap();
        match Bus::connect(&nats.url(), 4).await {
            Err(BusError::Partitions { found: 8, configured: 4 }) => {}
            Err(other) => panic!("refused for another reason: {other}"),
            Ok(_) => panic!("a node with another partition count joined"),
        }
    });
}

#[test]
fn publishing_while_nats_is_down_fails_instead_of_acknowledging() {
    let Some(nats) = Server::start("publishing_while_nats_is_down_fails_instead_of_acknowledging") else { return };
    runtime().block_on(async {
        let bus = Bus::connect(&nats.url(), 2).await.unwrap();
        nats.stop();
        let answer = tokio::time::timeout(Duration::from_secs(15), bus.publish(0, "lost?", Bytes::new())).await;
        assert!(matches!(answer, Ok(Err(_))), "an error, not an acknowledgement nor a hang");
    });
}

/// Partitioned by their actors' ids, as said.
fn actors(events: &[tenet_model::Event]) -> Vec<String> {
    events.iter().map(|e| e.actor.id.clone()).collect()
}

fn event(id: &str, actor: &str, second: i64) -> tenet_model::Event {
    use tenet_model::{Action, Principal, PrincipalKind, Source, Timestamp};
    let mut e = tenet_model::Event::api_call(
        id,
        Timestamp::from_unix_nanos(1_700_000_000_000_000_000 + second * 1_000_000_000),
        Principal::new(actor, PrincipalKind::Human),
        Action { service: "s3".into(), operation: "GetObject".into(), read_only: Some(true) },
        Source { format: "cloudtrail".into(), system: "aws".into(), tenant: None },
    );
    e.raw = tenet_model::RawRecord(Bytes::from(format!("{{\"raw\":\"{id}\"}}")));
    e
}

#[test]
fn a_deliverys_events_arrive_whole_with_their_last_one_marked_in_each_partition() {
    let Some(nats) = Server::start("a_deliverys_events_arrive_whole_with_their_last_one_marked_in_each_partition")
    else {
        return;
    };
    runtime().block_on(async {
        let bus = Bus::connect(&nats.url(), 1).await.unwrap();
        let first: Vec<_> = (0..3).map(|i| event(&format!("a{i}"), "user:alice", i)).collect();
        let second = vec![event("b0", "user:bob", 9)];
        assert_eq!(bus.publish_events(&first, &actors(&first)).await.unwrap(), 0);
        assert_eq!(bus.publish_events(&second, &actors(&second)).await.unwrap(), 0);
        assert_eq!(bus.publish_events(&first, &actors(&first)).await.unwrap(), 3, "a retried delivery is stored once");
        let feed = bus.partition(0, "node-a", Duration::from_secs(30)).await.unwrap();
        let got = feed.fetch(10, Duration::from_millis(500)).await.unwrap();
        let seen: Vec<(String, bool)> = got.iter().map(|d| (d.event().unwrap().id.0, d.ends_delivery)).collect();
        assert_eq!(seen, [("a0".into(), false), ("a1".into(), false), ("a2".into(), true), ("b0".into(), true)]);
        assert_eq!(got[0].delivery, got[2].delivery);
        assert_ne!(got[0].delivery, got[3].delivery);
        // The event as published, its source record included.
        assert_eq!(got[1].event().unwrap(), first[1]);
        assert_eq!(got[1].event().unwrap().raw.as_bytes(), b"{\"raw\":\"a1\"}");
    });
}

#[test]
fn a_new_owner_reads_what_the_dead_one_left_unacknowledged_at_once_and_in_order() {
    let Some(nats) = Server::start("a_new_owner_reads_what_the_dead_one_left_unacknowledged_at_once_and_in_order")
    else {
        return;
    };
    runtime().block_on(async {
        let bus = Bus::connect(&nats.url(), 1).await.unwrap();
        for i in 0..6 {
            bus.publish_events(&[event(&format!("e{i}"), "user:alice", i)], &["user:alice".into()]).await.unwrap();
        }
        // The old owner acknowledged the first two and died holding the next two.
        let old = bus.partition(0, "node", Duration::from_secs(60)).await.unwrap();
        let got = old.fetch(4, Duration::from_millis(500)).await.unwrap();
        got[0].ack().await.unwrap();
        got[1].ack().await.unwrap();
        drop((got, old));
        let new = bus.take_over(0, "node", Duration::from_secs(60)).await.unwrap();
        let started = std::time::Instant::now();
        let read = new.fetch(10, Duration::from_millis(500)).await.unwrap();
        let ids: Vec<String> = read.iter().map(|d| d.event().unwrap().id.0).collect();
        assert_eq!(ids, ["e2", "e3", "e4", "e5"], "from the first unacknowledged, in published order");
        assert!(started.elapsed() < Duration::from_secs(5), "without waiting out the 60 s ack wait");
    });
}

#[test]
fn looking_at_a_server_no_node_joined_creates_nothing() {
    let Some(nats) = Server::start("looking_at_a_server_no_node_joined_creates_nothing") else { return };
    runtime().block_on(async {
        let looked = Bus::observe(&nats.url(), 4).await;
        assert!(matches!(&looked, Err(BusError::JetStream(why)) if why.contains("no stream")), "{:?}", looked.err());
        assert!(Bus::observe(&nats.url(), 4).await.is_err(), "still nothing there");
        drop(Bus::connect(&nats.url(), 4).await.unwrap());
        let bus = Bus::observe(&nats.url(), 4).await.unwrap();
        assert_eq!(bus.lag(0, "tenet").await.unwrap(), None, "no reader yet");
    });
}
