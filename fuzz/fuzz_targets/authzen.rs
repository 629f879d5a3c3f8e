//! AuthZEN request bodies: the same bytes as the body of every endpoint
//! (evaluation, evaluations, the three searches), through the parsing
//! functions the server's handlers call, then decided or searched against
//! two real policy directories.
//!
//! What the product promises (tenet-server `access`, tenet-policy
//! `authzen`): no body panics the server; a bad body is a 400 `ApiError`
//! naming what is wrong, a bad item of a batch an item error; the
//! single-evaluation fast path accepts only what the full parser accepts,
//! and reads it the same; deciding or searching any parsed request answers
//! or returns a typed error.

#![no_main]

use std::sync::LazyLock;

use http::{HeaderMap, HeaderValue, StatusCode, header};
use libfuzzer_sys::fuzz_target;
use tenet_policy::authzen::{self, Evaluations, SearchTarget};
use tenet_policy::{NoTrust, PolicyBundle, SourceFile};
use tenet_server::access;
use tenet_server::error::ApiError;
use tenet_server::limits::Limits;

/// A directory with a schema (the adaptive example) and one built for
/// search (the AuthZEN search interop scenario): requests reach Cedar's
/// validation-aware paths and the candidate enumeration.
static BUNDLES: LazyLock<[PolicyBundle; 2]> = LazyLock::new(|| {
    let file = |name: &str, text: &str| SourceFile { name: name.into(), text: text.into() };
    let adaptive = PolicyBundle::load(vec![
        file("adaptive.cedar", include_str!("../../examples/policies/adaptive.cedar")),
        file("tenet.cedarschema", include_str!("../../examples/policies/tenet.cedarschema")),
        file("entities.json", include_str!("../../examples/policies/entities.json")),
    ])
    .expect("examples/policies loads");
    let search = PolicyBundle::load(vec![
        file("policies.cedar", include_str!("../../tests/authzen/search/policies.cedar")),
        file("entities.json", include_str!("../../tests/authzen/search/entities.json")),
    ])
    .expect("tests/authzen/search loads");
    [adaptive, search]
});

static JSON: LazyLock<HeaderMap> = LazyLock::new(|| {
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h
});

static LIMITS: LazyLock<Limits> = LazyLock::new(Limits::default);

fn refused(endpoint: &str, r: &ApiError) {
    // A body is refused as a bad request, or (without the JSON content
    // type) as an unsupported media type; never anything else.
    assert!(
        [StatusCode::BAD_REQUEST, StatusCode::UNSUPPORTED_MEDIA_TYPE].contains(&r.status),
        "{endpoint}: a body refusal is a 400 or 415, not {}",
        r.status
    );
    assert!(!r.message.is_empty(), "{endpoint}: a refusal without a message");
}

fuzz_target!(|body: &[u8]| {
    let bundles = &*BUNDLES;

    // /access/v1/evaluation. The fast path must agree with the full parser
    // on everything it accepts: a body it reads differently would be
    // decided differently from what the caller sent.
    if let Some(fast) = authzen::parse_evaluation_fast(body) {
        let v: serde_json::Value =
            serde_json::from_slice(body).expect("the fast path accepted JSON the tree parser refuses");
        assert_eq!(authzen::parse_evaluation(&v).as_ref(), Ok(&fast), "fast and full parsers disagree");
    }
    match access::parse_evaluation_body(&JSON, body, &LIMITS) {
        Ok(e) => {
            for b in bundles {
                let _ = b.decide(&e, &NoTrust);
            }
        }
        Err(r) => refused("evaluation", &r),
    }
    // Without the JSON content type every body is refused.
    let text = HeaderMap::new();
    refused("evaluation", &access::parse_evaluation_body(&text, body, &LIMITS).expect_err("a body without Content-Type"));

    // /access/v1/evaluations.
    match access::parse_evaluations_body(&JSON, body, &LIMITS) {
        Ok(Evaluations::Single(e)) => {
            for b in bundles {
                let _ = b.decide(&e, &NoTrust);
            }
        }
        Ok(Evaluations::Batch(batch)) => {
            for item in &batch.items {
                match item {
                    Ok(e) => {
                        for b in bundles {
                            let _ = b.decide(e, &NoTrust);
                        }
                    }
                    Err(e) => assert!(!e.path.is_empty() && !e.message.is_empty(), "an item error names its field"),
                }
            }
        }
        Err(r) => refused("evaluations", &r),
    }

    // /access/v1/search/{subject,resource,action}.
    for target in [SearchTarget::Subject, SearchTarget::Resource, SearchTarget::Action] {
        match access::parse_search_body(&JSON, body, target, &LIMITS) {
            Ok(s) => {
                for b in bundles {
                    if let Ok(page) = b.search(&s, &NoTrust) {
                        assert!(page.ids.len() <= page.total, "a page holds more than the total");
                    }
                }
            }
            Err(r) => refused(target.as_str(), &r),
        }
    }
});
