//! Every shape of event the simulated enterprise produces (CloudTrail, Okta,
//! Kubernetes audit, OTLP agent traces) exports as valid OCSF: the shared
//! telemetry has no Okta and few agent traces, the simulation has both.

#[path = "../crates/tenet-sources/tests/common/ocsf.rs"]
mod ocsf;

use std::collections::HashSet;
use std::process::Command;

use ocsf::{problems, schema_at};
use tenet_model::Event;
use tenet_sources::{input, to_ocsf};

#[test]
fn every_simulated_event_shape_exports_as_valid_ocsf() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("sim");
    let o = Command::new(env!("CARGO_BIN_EXE_tenet"))
        .args(["simulate", "--seed", "5", "--days", "2", "--humans", "16", "--agents", "6", "--scenario", "all"])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut events: Vec<Event> = Vec::new();
    for f in input::expand(&[out]).unwrap() {
        let data = input::load(&f).unwrap();
        if let Some(format) = tenet_sources::format::detect(&data) {
            format.read(&bytes::Bytes::from(data), &mut |r| events.extend(r.ok()));
        }
    }
    let formats: HashSet<String> = events.iter().map(|e| e.source.format.to_string()).collect();
    assert_eq!(formats.len(), 4, "{formats:?}");
    let schema = schema_at(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/specs/ocsf-schema"));
    let mut shapes = HashSet::new();
    let mut failures = Vec::new();
    for e in &events {
        let shape = (e.source.format.to_string(), e.class_uid, e.action.qualified(), e.outcome.status, e.actor.kind);
        if !shapes.insert(shape) {
            continue;
        }
        let problems = problems(&schema, &to_ocsf(e));
        if !problems.is_empty() {
            failures.push(format!(
                "{} {} {}: {}",
                e.source.format,
                e.class_uid.0,
                e.action.qualified(),
                problems.join("; ")
            ));
        }
    }
    assert!(shapes.len() > 50, "{} shapes", shapes.len());
    assert!(failures.is_empty(), "{} of {} shapes invalid:\n{}", failures.len(), shapes.len(), failures.join("\n"));
}
