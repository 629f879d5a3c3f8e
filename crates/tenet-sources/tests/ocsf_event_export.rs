//! Events exported as OCSF (`to_ocsf`) are valid OCSF, checked against the
//! shared schema with the validator in `common/ocsf.rs`, for every record of
//! the shared telemetry Tenet reads; and the export reads back through the
//! OCSF adapter as the same event.

mod common;

use std::path::{Path, PathBuf};

use common::ocsf::*;
use tenet_model::Event;
use tenet_sources::Format;
use tenet_sources::formats::ocsf::to_ocsf;
use tenet_sources::input;

fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared").join(rel)
}

fn events() -> Vec<Event> {
    let mut paths = vec![shared("data")];
    paths.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures"));
    let mut out = Vec::new();
    for f in input::expand(&paths).expect("shared data present") {
        let Ok(data) = input::load(&f) else { continue };
        let Some(format) = tenet_sources::format::detect(&data) else { continue };
        format.read(&bytes::Bytes::from(data), &mut |r| out.extend(r.ok()));
    }
    out
}

#[test]
fn every_event_exports_as_valid_ocsf() {
    let schema = schema();
    let events = events();
    let formats: std::collections::BTreeSet<String> = events.iter().map(|e| e.source.format.to_string()).collect();
    assert!(formats.len() >= 3, "{formats:?}");
    // One event of each shape (format, action, outcome, whether it has a
    // trace, an agent, resources): the validator is slow in debug builds.
    let mut seen = std::collections::HashSet::new();
    let sample: Vec<&Event> = events
        .iter()
        .filter(|e| {
            seen.insert((
                e.source.format.to_string(),
                e.action.qualified(),
                e.outcome.status,
                e.trace.is_some(),
                e.actor.kind,
                e.resources.len().min(2),
                e.session.is_some(),
            ))
        })
        .collect();
    let mut failures = Vec::new();
    for e in sample {
        let problems = problems(&schema, &to_ocsf(e));
        if !problems.is_empty() {
            let what = format!("{} ({} {} {})", e.id, e.source.format, e.class_uid.0, e.action.qualified());
            failures.push(format!("{what}: {}", problems.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} events export invalid OCSF, e.g.:\n{}",
        failures.len(),
        events.len(),
        failures.iter().take(60).cloned().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn an_exported_event_reads_back_as_the_same_event() {
    let events = events();
    let mut checked = 0;
    for e in events.iter().filter(|e| e.source.format != "ocsf") {
        let doc = serde_json::to_vec(&to_ocsf(e)).unwrap();
        let mut back = Vec::new();
        tenet_sources::formats::ocsf::Ocsf.read(&bytes::Bytes::from(doc), &mut |r| back.push(r));
        let b = match back.pop() {
            Some(Ok(b)) => b,
            other => panic!("{}: the export does not read back: {:?}", e.id, other.map(|r| r.err())),
        };
        assert_eq!(b.id, e.id);
        assert_eq!(b.time, e.time);
        assert_eq!((b.class_uid, b.activity_id), (e.class_uid, e.activity_id), "{}", e.id);
        assert_eq!(b.action.operation, e.action.operation, "{}", e.id);
        assert_eq!(b.outcome.status, e.outcome.status, "{}", e.id);
        assert_eq!(b.trace, e.trace, "{}", e.id);
        assert_eq!(b.context.ip, e.context.ip, "{}", e.id);
        checked += 1;
    }
    assert!(checked > 3000, "{checked}");
}

/// Group Management requires `group`, whichever source recorded the change:
/// an Okta membership change names its group as a `UserGroup` target.
#[test]
fn an_okta_group_membership_change_exports_its_group() {
    let record = br#"{"uuid":"9f3c0c2e-okta-add","published":"2026-03-01T09:00:00.000Z","eventType":"group.user_membership.add","version":"0","severity":"INFO","displayMessage":"Add user to group membership",
        "actor":{"id":"00uadmin","type":"User","alternateId":"admin@corp.example","displayName":"Admin"},
        "client":{"ipAddress":"203.0.113.9"},"outcome":{"result":"SUCCESS"},
        "target":[{"id":"00ubob","type":"User","alternateId":"bob@corp.example","displayName":"Bob"},{"id":"00gops","type":"UserGroup","alternateId":"team-ops","displayName":"team-ops"}]}"#;
    let mut events = Vec::new();
    tenet_sources::formats::okta::Okta.read(&bytes::Bytes::from_static(record), &mut |r| events.push(r.unwrap()));
    let e = events.pop().expect("one event");
    assert_eq!(e.class_uid.0, 3006);
    let doc = to_ocsf(&e);
    let problems = problems(&schema(), &doc);
    assert!(problems.is_empty(), "{}\n{doc:#}", problems.join("\n"));
    assert_eq!(doc["group"]["uid"], "okta:00gops", "{doc:#}");
    assert_eq!(doc["group"]["name"], "team-ops");
    assert_eq!(doc["users"][0]["uid"], "okta:00ubob", "the user added: {doc:#}");
    assert!(doc.get("resources").is_none(), "the class names its subjects: {doc:#}");
    // Read back, the group is the same target of the same kind.
    let mut back = Vec::new();
    let exported = serde_json::to_vec(&doc).unwrap();
    tenet_sources::formats::ocsf::Ocsf.read(&bytes::Bytes::from(exported), &mut |r| back.push(r.unwrap()));
    let back = back.pop().expect("reads back");
    assert!(back.resources.iter().any(|r| r.kind == "UserGroup" && r.id == "okta:00gops"), "{:?}", back.resources);
}
