//! Shared Signals inputs: stream configuration requests (create, PATCH,
//! PUT), status, subject, verification and poll bodies, push answers, and
//! received SETs, through the parsers the server and the transmitter call.
//!
//! What the product promises (tenet-ssf): no input panics; a refused one
//! names the property at fault; a stream configuration delivers exactly
//! what is both supported and requested, never shows a push secret, and
//! survives the store's round trip; a received SET that is not signed by
//! the transmitter's key is refused with an RFC 8935 code.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tenet_ssf::{
    Expect, Issuing, PollRequest, PushOutcome, StatusRequest, StreamConfig, SubjectRequest, VerifyRequest,
};

fn issuing() -> Issuing {
    Issuing {
        stream_id: "s1".into(),
        iss: "https://tenet.example".into(),
        aud: "urn:tenet:ssf:receiver:rx".into(),
        events_supported: tenet_ssf::supported_event_types(),
        min_verification_interval: 15,
        poll_url: "https://tenet.example/ssf/poll/s1".into(),
    }
}

fn holds(c: &StreamConfig, secret_free: &Value) {
    for e in &c.events_delivered {
        assert!(c.events_supported.contains(e) && c.events_requested.contains(e), "{e} delivered unasked");
    }
    for e in &c.events_requested {
        assert_eq!(c.events_supported.contains(e), c.events_delivered.contains(e), "{e}: delivered ≠ supported ∩ requested");
    }
    assert!(secret_free["delivery"].get("authorization_header").is_none(), "a push secret shown");
    assert_eq!(StreamConfig::from_stored(&c.to_stored()).as_ref(), Ok(c), "the store's round trip changed it");
}

fn refusal_names_a_property(e: &tenet_ssf::Invalid) {
    assert!(!e.reason.is_empty(), "a refusal without a reason");
}

fuzz_target!(|data: &[u8]| {
    // A push answer: status from the first two bytes, body from the rest.
    if data.len() >= 2 {
        let status = 100 + u16::from_le_bytes([data[0], data[1]]) % 500;
        let _ = PushOutcome::of(status, &data[2..]);
    }
    // A received SET: no key signed it, so it is refused with a code.
    if let Ok(text) = std::str::from_utf8(data) {
        let jwks = serde_json::json!({"keys": [{"kty": "RSA", "kid": "k1",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB"}]});
        let expect = Expect { issuer: "https://idp.example", audience: Some("https://tenet.example"), now: 1_700_000_000, leeway: 60 };
        let _ = tenet_ssf::claimed_issuer(text);
        let _ = tenet_ssf::claimed_kid(text);
        if let Err(e) = tenet_ssf::verify(text, &jwks, &expect) {
            assert!(
                ["invalid_request", "invalid_key", "invalid_issuer", "invalid_audience"].contains(&e.err),
                "an unknown error code {}",
                e.err
            );
        }
    }
    let Ok(body) = serde_json::from_slice::<Value>(data) else { return };
    match StreamConfig::create(&body, issuing()) {
        Ok(c) => {
            holds(&c, &c.to_json());
            for next in [c.patch(&body), c.replace(&body)] {
                match next {
                    Ok(n) => holds(&n, &n.to_json()),
                    Err(e) => refusal_names_a_property(&e),
                }
            }
            let mut with_id = body.clone();
            if let Some(o) = with_id.as_object_mut() {
                o.insert("stream_id".into(), "s1".into());
                for next in [c.patch(&with_id), c.replace(&with_id)] {
                    match next {
                        Ok(n) => holds(&n, &n.to_json()),
                        Err(e) => refusal_names_a_property(&e),
                    }
                }
            }
        }
        Err(e) => refusal_names_a_property(&e),
    }
    for r in [
        StatusRequest::parse(&body).err(),
        SubjectRequest::parse(&body).err(),
        VerifyRequest::parse(&body).err(),
        PollRequest::parse(&body).err(),
    ]
    .into_iter()
    .flatten()
    {
        refusal_names_a_property(&r);
    }
});
