//! Inventory: content detection and every importer (AWS IAM authorization
//! details, SCIM, Kubernetes RBAC as JSON and YAML, the agent registry) on
//! the same bytes.
//!
//! What the product promises (tenet-sources `inventory`): `import` never
//! panics; a file it cannot read is a typed `InventoryError` with a line
//! where there is one; inside a readable file a bad entry is listed in
//! `skipped` with its location, never silently dropped, and a file whose
//! every entry was rejected is an error, never an empty snapshot (which
//! would retract everything its scope held); facts carry no duplicates;
//! snapshots survive the store's encoding (JSON) unchanged.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tenet_model::{Snapshot, Timestamp};
use tenet_sources::framing::line_of;
use tenet_sources::inventory::{self, ImportOptions, InventoryError, InventoryFormat};

fuzz_target!(|data: &[u8]| {
    let _ = inventory::detect(data);
    let lines = line_of(data, data.len());
    let at = Timestamp::from_unix_seconds(1_790_000_000);
    let options = ImportOptions::default();
    for format in InventoryFormat::ALL {
        match inventory::import(format, data, at, &options) {
            Ok(imported) => {
                // No snapshot at all is possible (IAM details naming no
                // account have no scope to state); a rejection with nothing
                // imported is not.
                if !imported.skipped.is_empty() {
                    assert!(
                        imported.snapshots.iter().any(|s| !s.facts.is_empty()),
                        "{format}: every entry skipped, yet an empty snapshot returned"
                    );
                }
                for s in &imported.skipped {
                    assert!(!s.reason.is_empty(), "{format}: skipped without a reason at {}", s.location);
                    assert!(
                        (1..=lines).contains(&s.location.line),
                        "{format}: skipped at line {} of {lines}",
                        s.location.line
                    );
                }
                for s in &imported.snapshots {
                    check_snapshot(format, s, at);
                }
                // Merging what one import returned changes nothing: its
                // snapshots already have distinct scopes and no duplicates.
                assert_eq!(
                    inventory::merge(imported.snapshots.clone()),
                    imported.snapshots,
                    "{format}: merge changed an import"
                );
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
                if let Some(l) = e.location() {
                    assert!((1..=lines).contains(&l.line), "{format}: error at line {} of {lines}: {e}", l.line);
                }
                if let InventoryError::NothingImported { skipped, .. } = &e {
                    assert!(!skipped.is_empty(), "{format}: nothing imported, yet nothing rejected");
                }
            }
        }
    }
});

fn check_snapshot(format: InventoryFormat, s: &Snapshot, at: Timestamp) {
    assert_eq!(s.source, format.name(), "a snapshot names its importer");
    assert_eq!(s.collected_at, at);
    assert!(!s.scope.is_empty(), "{format}: a snapshot without a scope");
    let mut seen = std::collections::HashSet::new();
    for f in &s.facts {
        assert!(seen.insert(f), "{format}: duplicate fact {f:?}");
    }
    // The store keeps a snapshot's facts as JSON and rebuilds the graph from them.
    let doc = serde_json::to_vec(s).expect("a snapshot serialises");
    let back: Snapshot = serde_json::from_slice(&doc).unwrap_or_else(|e| {
        panic!("{format}: a stored snapshot does not read back: {e}\n{}", String::from_utf8_lossy(&doc))
    });
    assert_eq!(&back, s, "{format}: a stored snapshot reads back different");
}
