//! Policy directories: the input is split into files, written to a
//! directory, and loaded the way `tenet serve` and the reload endpoint load
//! one (`tenet_server::policy_dir::load`: the file-name filter, UTF-8
//! reading, then Cedar policies, an optional schema, validation and
//! `entities.json`).
//!
//! Input layout: a line `//@ NAME` starts the file NAME (a Cedar comment,
//! so a plain policy file is a valid input as it is); text before the
//! first such line is `policies.cedar`. Names are reduced to a safe file
//! name, so every byte of the input is content, never a path.
//!
//! What the product promises ("A policy change is all or nothing"): any
//! directory either loads or is refused whole with a typed error, never a
//! panic; a set that loads has a content version that depends on the
//! content alone, and answers a decision.

#![no_main]

use std::path::Path;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use tenet_policy::NoTrust;
use tenet_policy::authzen::{Action, Entity, Evaluation};
use tenet_server::policy_dir::{self, PolicyDirError};

/// One directory for the whole run, emptied before each input: creating
/// and removing a directory per input would dominate the run.
static DIR: LazyLock<tempfile::TempDir> = LazyLock::new(|| tempfile::tempdir().expect("a temporary directory"));

fn files(data: &[u8]) -> Vec<(String, &[u8])> {
    let mut out: Vec<(String, &[u8])> = Vec::new();
    let mut name = "policies.cedar".to_string();
    let mut start = 0;
    let mut at = 0;
    while at < data.len() {
        let end = data[at..].iter().position(|&b| b == b'\n').map_or(data.len(), |k| at + k);
        if let Some(header) = data[at..end].strip_prefix(b"//@ ") {
            out.push((name, &data[start..at]));
            name = safe_name(header, out.len());
            start = (end + 1).min(data.len());
        }
        at = end + 1;
    }
    out.push((name, &data[start..]));
    out
}

/// A plain file name of at most 40 characters; anything else becomes a
/// numbered policy file.
fn safe_name(header: &[u8], n: usize) -> String {
    let name = String::from_utf8_lossy(header).trim().to_string();
    let plain = !name.is_empty()
        && name.len() <= 40
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if plain { name } else { format!("file{n}.cedar") }
}

fn write(dir: &Path, data: &[u8]) {
    for entry in std::fs::read_dir(dir).expect("list the directory") {
        std::fs::remove_file(entry.expect("a directory entry").path()).expect("empty the directory");
    }
    for (name, text) in files(data) {
        std::fs::write(dir.join(name), text).expect("write a policy file");
    }
}

fuzz_target!(|data: &[u8]| {
    let dir = DIR.path();
    write(dir, data);
    match policy_dir::load(dir) {
        Ok(bundle) => {
            assert!(!bundle.version().is_empty(), "a loaded set without a version");
            // The version is the content's: loading again gives the same.
            let again = policy_dir::load(dir).expect("the same directory loads twice");
            assert_eq!(again.version(), bundle.version(), "one content, two versions");
            let _ = bundle.diff_from(None);
            let _ = bundle.diff_from(Some(&again));
            let entity =
                |kind: &str, id: &str| Entity { kind: kind.into(), id: id.into(), properties: Default::default() };
            let e = Evaluation {
                subject: entity("User", "alice"),
                action: Action { name: "read".into(), properties: Default::default() },
                resource: entity("Document", "1"),
                context: Default::default(),
            };
            let _ = bundle.decide(&e, &NoTrust);
        }
        Err(PolicyDirError::Invalid { source, .. }) => assert!(!source.to_string().is_empty()),
        // Bytes that are not UTF-8 make a file unreadable as text: refused whole.
        Err(PolicyDirError::Read { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::InvalidData, "a read failure other than bad text: {source}")
        }
    }
});
