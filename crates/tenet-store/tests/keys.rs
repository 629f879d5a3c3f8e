//! API keys on both backends: `keys.db`, and the tables of a PostgreSQL
//! store (a private server; skipped loudly where PostgreSQL is not
//! installed, a failure under `TENET_REQUIRE_EXTERNAL=1`).

use tenet_store::TablesAt;
use tenet_store::keys::{KeyError, KeyStore};

macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $test() {
                    let dir = tempfile::tempdir().unwrap();
                    super::$test(tenet_store::TablesAt::File(dir.path().join("keys.db")))
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $test() {
                    let name = concat!("postgres::", stringify!($test));
                    let Some(server) = tenet_testkit::postgres::server(name) else { return };
                    super::$test(tenet_store::TablesAt::Postgres(server.fresh_database()))
                }
            )*
        }
    };
}

on_both_backends!(
    tokens_are_stored_only_as_hashes_and_revocation_ends_them,
    once_a_key_was_created_auth_stays_required_after_every_key_is_revoked,
    a_revocation_by_one_writer_is_in_the_next_snapshot_of_every_reader,
);

fn tokens_are_stored_only_as_hashes_and_revocation_ends_them(at: TablesAt) {
    let mut ks = KeyStore::open(&at).unwrap();
    let (key, token) = ks.create("gateway", &["decide".into()], "t0").unwrap();
    assert!(token.starts_with("tnt_") && token.len() == 68);
    if let TablesAt::File(path) = &at {
        let raw = std::fs::read(path).unwrap();
        assert!(!raw.windows(token.len()).any(|w| w == token.as_bytes()), "the token is not on disk");
    }
    assert!(ks.list().unwrap().iter().all(|k| k.hash != token), "only its hash is kept");
    assert_eq!(ks.find(&token).unwrap().unwrap().name, "gateway");
    assert!(matches!(ks.create("gateway", &["admin".into()], "t1"), Err(KeyError::Exists(_))));
    assert!(matches!(ks.create("x", &["root".into()], "t1"), Err(KeyError::Scope(_))));
    assert!(matches!(ks.create("bad name", &["read".into()], "t1"), Err(KeyError::Invalid)));
    ks.revoke("gateway", "t2").unwrap();
    assert!(matches!(ks.revoke("gateway", "t2"), Err(KeyError::NoSuchKey(_))));
    assert!(ks.find(&token).unwrap().is_none());
    assert_eq!(ks.list().unwrap()[0].revoked.as_deref(), Some("t2"));
    assert_eq!(key.scopes, vec!["decide"]);
    // The name is free again once revoked.
    ks.create("gateway", &["decide".into()], "t3").unwrap();
    assert_eq!(ks.active().unwrap().len(), 1);
}

fn once_a_key_was_created_auth_stays_required_after_every_key_is_revoked(at: TablesAt) {
    if let TablesAt::File(_) = &at {
        assert_eq!(KeyStore::snapshot(&at).unwrap(), None, "no file: nothing configured, nothing created");
    }
    let mut ks = KeyStore::open(&at).unwrap();
    assert!(!KeyStore::snapshot(&at).unwrap().unwrap().auth_required, "an empty key store requires nothing");
    ks.create("k", &["decide".into()], "t0").unwrap();
    ks.revoke("k", "t1").unwrap();
    let snap = KeyStore::snapshot(&at).unwrap().unwrap();
    assert!(snap.auth_required && snap.active.is_empty(), "{snap:?}");
    if let TablesAt::File(path) = &at {
        // A file written before the marker existed: its rows say keys were configured.
        rusqlite::Connection::open(path).unwrap().execute("DROP TABLE meta", []).unwrap();
        assert!(KeyStore::snapshot(&at).unwrap().unwrap().auth_required);
        // A file that is not a key store is an error, never "no keys".
        drop(ks);
        std::fs::write(path, b"not a database, not at all; just bytes that fill a page header").unwrap();
        assert!(KeyStore::snapshot(&at).is_err());
    }
}

fn a_revocation_by_one_writer_is_in_the_next_snapshot_of_every_reader(at: TablesAt) {
    let mut admin = KeyStore::open(&at).unwrap();
    admin.create("a", &["read".into()], "t0").unwrap();
    admin.create("b", &["read".into()], "t0").unwrap();
    let mut other = KeyStore::open(&at).unwrap();
    other.revoke("a", "t1").unwrap();
    let names: Vec<String> = KeyStore::snapshot(&at).unwrap().unwrap().active.into_iter().map(|k| k.name).collect();
    assert_eq!(names, ["b"]);
}
