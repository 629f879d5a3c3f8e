//! Receiving SETs from upstream transmitters (an identity provider, say):
//! a compact JWS checked against the transmitter's JWKS (RS256 only, keys
//! of 2048 bits or more) and its claims against RFC 8417 and SSF 1.0 (one
//! event, `sub_id`, no `exp`), then read into a typed [`Received`]. Every
//! refusal carries the RFC 8935 error code a push receiver answers with.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use serde_json::{Map, Value};

use crate::Subject;

/// Why a received SET is refused: the RFC 8935 §2.4 code and a sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub err: &'static str,
    pub description: String,
}

fn refused(err: &'static str, description: impl Into<String>) -> Refused {
    Refused { err, description: description.into() }
}

/// A verified SET.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    pub iss: String,
    pub jti: String,
    pub iat: i64,
    pub txn: Option<String>,
    pub subject: Subject,
    /// The event type's URI and its claims.
    pub event_type: String,
    pub event: Map<String, Value>,
}

impl Received {
    /// The event type's last segment (`session-revoked`).
    pub fn kind(&self) -> &str {
        self.event_type.rsplit('/').next().unwrap_or(&self.event_type)
    }

    /// When it happened: the event's `event_timestamp`, else `iat`.
    pub fn at(&self) -> i64 {
        self.event.get("event_timestamp").and_then(Value::as_i64).unwrap_or(self.iat)
    }

    /// A string claim of the event.
    pub fn text(&self, claim: &str) -> Option<&str> {
        self.event.get(claim).and_then(Value::as_str)
    }

    /// `reason_admin` in English (or any language given).
    pub fn reason(&self) -> Option<&str> {
        let r = self.event.get("reason_admin")?;
        r.as_str()
            .or_else(|| r.get("en").and_then(Value::as_str))
            .or_else(|| r.as_object()?.values().find_map(Value::as_str))
    }
}

/// What the receiver expects of the transmitter's SETs.
#[derive(Debug, Clone)]
pub struct Expect<'a> {
    pub issuer: &'a str,
    /// The audience this receiver is; `None` accepts any.
    pub audience: Option<&'a str>,
    /// Seconds since the epoch, now: `iat` may not be later (beyond `leeway`).
    pub now: i64,
    pub leeway: i64,
}

fn part(token: &str) -> Result<(&str, &str, &str), Refused> {
    let mut it = token.trim().split('.');
    match (it.next(), it.next(), it.next(), it.next()) {
        (Some(h), Some(p), Some(s), None) if !h.is_empty() && !p.is_empty() && !s.is_empty() => Ok((h, p, s)),
        _ => Err(refused("invalid_request", "not a compact JWS (three base64url parts)")),
    }
}

fn decode_json(b64: &str, what: &str) -> Result<Map<String, Value>, Refused> {
    let bytes = B64.decode(b64).map_err(|e| refused("invalid_request", format!("the {what} is not base64url: {e}")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(o)) => Ok(o),
        _ => Err(refused("invalid_request", format!("the {what} is not a JSON object"))),
    }
}

/// The `iss` a SET claims, read before anything is verified: which
/// transmitter's keys to verify it with.
pub fn claimed_issuer(token: &str) -> Result<String, Refused> {
    let (_, payload, _) = part(token)?;
    decode_json(payload, "payload")?
        .get("iss")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| refused("invalid_issuer", "no iss claim"))
}

/// The `kid` a SET's header names, if any.
pub fn claimed_kid(token: &str) -> Result<Option<String>, Refused> {
    let (header, _, _) = part(token)?;
    Ok(decode_json(header, "header")?.get("kid").and_then(Value::as_str).map(str::to_string))
}

/// Verifies `token` with `jwks` and checks its claims.
pub fn verify(token: &str, jwks: &Value, expect: &Expect<'_>) -> Result<Received, Refused> {
    let (h, p, s) = part(token)?;
    let header = decode_json(h, "header")?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(refused("invalid_request", "only RS256-signed SETs are accepted"));
    }
    if let Some(typ) = header.get("typ").and_then(Value::as_str)
        && !typ.eq_ignore_ascii_case("secevent+jwt")
        && !typ.eq_ignore_ascii_case("application/secevent+jwt")
    {
        return Err(refused("invalid_request", format!("typ {typ:?} is not secevent+jwt")));
    }
    let kid = header.get("kid").and_then(Value::as_str);
    let keys: Vec<&Value> = jwks
        .get("keys")
        .and_then(Value::as_array)
        .map(|k| k.iter().filter(|k| k.get("kty").and_then(Value::as_str) == Some("RSA")).collect())
        .unwrap_or_default();
    let candidates: Vec<&&Value> = match kid {
        Some(kid) => keys.iter().filter(|k| k.get("kid").and_then(Value::as_str) == Some(kid)).collect(),
        None => keys.iter().collect(),
    };
    if candidates.is_empty() {
        return Err(refused(
            "invalid_key",
            format!("no RSA key {} in the transmitter's JWKS", kid.unwrap_or("(no kid)")),
        ));
    }
    let signature = B64.decode(s).map_err(|_| refused("invalid_request", "the signature is not base64url"))?;
    let signed = &token.trim()[..h.len() + 1 + p.len()];
    let verified = candidates.iter().any(|k| {
        let n = k.get("n").and_then(Value::as_str).and_then(|n| B64.decode(n).ok());
        let e = k.get("e").and_then(Value::as_str).and_then(|e| B64.decode(e).ok());
        match (n, e) {
            (Some(n), Some(e)) => RsaPublicKeyComponents { n: &n, e: &e }
                .verify(&RSA_PKCS1_2048_8192_SHA256, signed.as_bytes(), &signature)
                .is_ok(),
            _ => false,
        }
    });
    if !verified {
        return Err(refused("invalid_key", "the signature does not verify with the transmitter's keys"));
    }
    let claims = decode_json(p, "payload")?;
    let text = |k: &str| claims.get(k).and_then(Value::as_str);
    if text("iss") != Some(expect.issuer) {
        return Err(refused("invalid_issuer", format!("iss {:?} is not {:?}", text("iss"), expect.issuer)));
    }
    if let Some(aud) = expect.audience {
        let ok = match claims.get("aud") {
            Some(Value::String(a)) => a == aud,
            Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(aud)),
            _ => false,
        };
        if !ok {
            return Err(refused("invalid_audience", format!("aud does not include {aud:?}")));
        }
    }
    let iat = claims.get("iat").and_then(Value::as_i64).ok_or_else(|| refused("invalid_request", "no iat"))?;
    if iat > expect.now + expect.leeway {
        return Err(refused("invalid_request", "iat is in the future"));
    }
    let jti = text("jti").filter(|j| !j.is_empty()).ok_or_else(|| refused("invalid_request", "no jti"))?.to_string();
    if claims.contains_key("exp") || claims.contains_key("sub") {
        return Err(refused("invalid_request", "a SET has no exp and no sub (SSF 1.0 §4)"));
    }
    let subject = claims.get("sub_id").ok_or_else(|| refused("invalid_request", "no sub_id"))?;
    let subject = Subject::parse(subject).map_err(|why| refused("invalid_request", format!("sub_id: {why}")))?;
    let events =
        claims.get("events").and_then(Value::as_object).ok_or_else(|| refused("invalid_request", "no events"))?;
    if events.len() != 1 {
        return Err(refused("invalid_request", format!("{} events: a SET carries exactly one", events.len())));
    }
    let (event_type, event) = events.iter().next().map(|(k, v)| (k.clone(), v.clone())).unwrap_or_default();
    let Value::Object(event) = event else {
        return Err(refused("invalid_request", "the event is not a JSON object"));
    };
    Ok(Received {
        iss: expect.issuer.to_string(),
        jti,
        iat,
        txn: text("txn").map(str::to_string),
        subject,
        event_type,
        event,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Audience, Initiator, SecurityEvent, SetClaims, SigningKey, Why, jwks};

    fn key() -> SigningKey {
        SigningKey::from_pkcs8("k1", include_bytes!("../tests/fixtures/test-signing-key.pk8")).unwrap()
    }

    fn signed(iss: &str, aud: &str, iat: i64) -> String {
        key()
            .sign(&SetClaims {
                iss: iss.into(),
                aud: Audience::One(aud.into()),
                iat,
                jti: "j-1".into(),
                txn: None,
                sub_id: Subject::session_of(Subject::Email { email: "a@example.com".into() }, "s-9"),
                event: SecurityEvent::SessionRevoked {
                    why: Why { at: iat, initiator: Initiator::Admin, admin: "locked".into(), user: "u".into() },
                },
            })
            .unwrap()
    }

    fn expect(now: i64) -> Expect<'static> {
        Expect { issuer: "https://idp.example", audience: Some("https://tenet.example"), now, leeway: 60 }
    }

    #[test]
    fn a_set_signed_by_a_key_in_the_jwks_reads_back_typed() {
        let token = signed("https://idp.example", "https://tenet.example", 1_000);
        assert_eq!(claimed_issuer(&token).unwrap(), "https://idp.example");
        assert_eq!(claimed_kid(&token).unwrap().as_deref(), Some("k1"));
        let r = verify(&token, &jwks([&key()]), &expect(1_000)).unwrap();
        assert_eq!((r.kind(), r.jti.as_str(), r.at(), r.reason()), ("session-revoked", "j-1", 1_000, Some("locked")));
        assert!(matches!(r.subject, Subject::Complex(_)));
    }

    #[test]
    fn every_failed_check_is_refused_with_its_rfc_8935_code() {
        let jwks = jwks([&key()]);
        let good = signed("https://idp.example", "https://tenet.example", 1_000);
        // One character of the signature's middle changed: still base64url, no longer the signature.
        let at = good.rfind('.').unwrap() + 20;
        let mut tampered = good.clone().into_bytes();
        tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        let cases = [
            ("garbage".to_string(), "invalid_request"),
            (tampered, "invalid_key"),
            (signed("https://evil.example", "https://tenet.example", 1_000), "invalid_issuer"),
            (signed("https://idp.example", "https://someone-else.example", 1_000), "invalid_audience"),
            (signed("https://idp.example", "https://tenet.example", 5_000), "invalid_request"),
        ];
        for (token, err) in cases {
            assert_eq!(verify(&token, &jwks, &expect(1_000)).unwrap_err().err, err, "{token}");
        }
        let other = serde_json::json!({"keys": []});
        assert_eq!(verify(&good, &other, &expect(1_000)).unwrap_err().err, "invalid_key", "an unknown kid");
    }
}
