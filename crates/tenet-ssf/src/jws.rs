//! Signing SETs: RS256 compact JWS (RFC 7515) under an RSA key of at least
//! 2048 bits, and the JWKS (RFC 7517) receivers verify them with.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair, RsaPublicKeyComponents};
use serde_json::{Value, json};

use crate::SetClaims;

/// Why a key cannot sign SETs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// Not a PKCS#8 RSA private key ring accepts.
    Unreadable(String),
    /// Shorter than the 2048 bits RS256 SETs need.
    TooShort,
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyError::Unreadable(why) => write!(f, "not a PKCS#8 RSA private key: {why}"),
            KeyError::TooShort => write!(f, "an RSA key shorter than the 2048 bits SETs need"),
        }
    }
}

impl std::error::Error for KeyError {}

/// A SET could not be signed: the OS random source failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsigned;

impl std::fmt::Display for Unsigned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the SET was not signed: the OS random source failed")
    }
}

impl std::error::Error for Unsigned {}

/// A SET signing key and the id receivers find it by in the JWKS.
pub struct SigningKey {
    kid: String,
    pair: RsaKeyPair,
    rng: SystemRandom,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl SigningKey {
    /// `der`: a PKCS#8 RSA private key of at least 2048 bits.
    pub fn from_pkcs8(kid: &str, der: &[u8]) -> Result<Self, KeyError> {
        let pair = RsaKeyPair::from_pkcs8(der).map_err(|e| match e.to_string().as_str() {
            "TooSmall" => KeyError::TooShort,
            why => KeyError::Unreadable(why.to_string()),
        })?;
        if pair.public().modulus_len() < 256 {
            return Err(KeyError::TooShort);
        }
        Ok(SigningKey { kid: kid.to_string(), pair, rng: SystemRandom::new() })
    }

    /// A key read back from [`generate`]'s PKCS#8, named by its RFC 7638
    /// thumbprint: the same key has the same `kid` wherever it is loaded.
    pub fn from_pkcs8_thumbprinted(der: &[u8]) -> Result<Self, KeyError> {
        let mut key = SigningKey::from_pkcs8("", der)?;
        key.kid = key.thumbprint();
        Ok(key)
    }

    /// RFC 7638: SHA-256 of the required members in lexicographic order.
    pub fn thumbprint(&self) -> String {
        let jwk = self.jwk();
        thumbprint(jwk["n"].as_str().unwrap_or(""), jwk["e"].as_str().unwrap_or(""))
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public half as a JWK.
    pub fn jwk(&self) -> Value {
        let public: RsaPublicKeyComponents<Vec<u8>> = self.pair.public().into();
        // Big-endian, without leading zeros (RFC 7518 §6.3.1).
        let trim = |b: &[u8]| B64.encode(&b[b.iter().take_while(|x| **x == 0).count()..]);
        json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": trim(&public.n), "e": trim(&public.e)})
    }

    /// `claims` as a signed SET in compact serialisation. Fails only when
    /// the OS random source (RSA blinding) does.
    pub fn sign(&self, claims: &SetClaims) -> Result<String, Unsigned> {
        let header = B64.encode(SetClaims::header(&self.kid).to_string());
        let payload = B64.encode(claims.to_json().to_string());
        let input = format!("{header}.{payload}");
        let mut signature = vec![0; self.pair.public().modulus_len()];
        self.pair.sign(&RSA_PKCS1_SHA256, &self.rng, input.as_bytes(), &mut signature).map_err(|_| Unsigned)?;
        Ok(format!("{input}.{}", B64.encode(signature)))
    }
}

/// RFC 7638 for an RSA key given as its JWK's base64url `n` and `e`.
fn thumbprint(n: &str, e: &str) -> String {
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    B64.encode(ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes()))
}

/// A new 2048-bit RSA signing key as PKCS#8 DER, from the OS random source.
pub fn generate() -> Result<Vec<u8>, KeyError> {
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048)
        .map_err(|e| KeyError::Unreadable(format!("generating a key: {e}")))?;
    let der = key.to_pkcs8_der().map_err(|e| KeyError::Unreadable(format!("encoding a new key: {e}")))?;
    Ok(der.as_bytes().to_vec())
}

/// The JWKS document: every key a receiver may meet (both during rotation).
pub fn jwks<'a>(keys: impl IntoIterator<Item = &'a SigningKey>) -> Value {
    json!({"keys": keys.into_iter().map(SigningKey::jwk).collect::<Vec<_>>()})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Audience, Initiator, SecurityEvent, Subject, Why};
    use ring::signature::RSA_PKCS1_2048_8192_SHA256;

    fn key() -> SigningKey {
        SigningKey::from_pkcs8("k1", include_bytes!("../tests/fixtures/test-signing-key.pk8")).unwrap()
    }

    fn claims() -> SetClaims {
        SetClaims {
            iss: "https://tenet.example.com/".into(),
            aud: Audience::One("https://receiver.example.com/".into()),
            iat: 1_700_000_000,
            jti: "j-1".into(),
            txn: None,
            sub_id: Subject::Email { email: "alice@example.com".into() },
            event: SecurityEvent::SessionRevoked {
                why: Why { at: 1_700_000_000, initiator: Initiator::Policy, admin: "a".into(), user: "u".into() },
            },
        }
    }

    /// What a receiver does: take n and e from the JWKS, check the
    /// signature over `header.payload`, read the typed header and claims.
    #[test]
    fn a_signed_set_verifies_with_the_published_jwk_and_reads_back() {
        let key = key();
        let set = key.sign(&claims()).unwrap();
        let parts: Vec<&str> = set.split('.').collect();
        assert_eq!(parts.len(), 3);
        let jwks = jwks([&key]);
        let jwk = &jwks["keys"][0];
        assert_eq!(
            (jwk["kid"].as_str(), jwk["alg"].as_str(), jwk["kty"].as_str()),
            (Some("k1"), Some("RS256"), Some("RSA"))
        );
        let n = B64.decode(jwk["n"].as_str().unwrap()).unwrap();
        let e = B64.decode(jwk["e"].as_str().unwrap()).unwrap();
        let signature = B64.decode(parts[2]).unwrap();
        let signed = format!("{}.{}", parts[0], parts[1]);
        RsaPublicKeyComponents { n: &n, e: &e }
            .verify(&RSA_PKCS1_2048_8192_SHA256, signed.as_bytes(), &signature)
            .expect("the signature verifies with the published key");
        let mut tampered = signed.clone().into_bytes();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(
            RsaPublicKeyComponents { n: &n, e: &e }.verify(&RSA_PKCS1_2048_8192_SHA256, &tampered, &signature).is_err()
        );
        let header: Value = serde_json::from_slice(&B64.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header, json!({"typ": "secevent+jwt", "alg": "RS256", "kid": "k1"}));
        let payload: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(payload, claims().to_json());
    }

    #[test]
    fn a_generated_key_signs_and_is_named_by_its_thumbprint() {
        let der = generate().unwrap();
        let key = SigningKey::from_pkcs8_thumbprinted(&der).unwrap();
        assert_eq!(key.kid(), key.thumbprint());
        assert_eq!(key.kid().len(), 43, "base64url of 32 bytes");
        let again = SigningKey::from_pkcs8_thumbprinted(&der).unwrap();
        assert_eq!(again.kid(), key.kid(), "the same key, the same kid");
        assert_ne!(SigningKey::from_pkcs8_thumbprinted(&generate().unwrap()).unwrap().kid(), key.kid());
        assert_eq!(key.sign(&claims()).unwrap().split('.').count(), 3);
    }

    /// RFC 7638 §3.1's example key and thumbprint.
    #[test]
    fn the_thumbprint_is_rfc_7638s() {
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        assert_eq!(thumbprint(n, "AQAB"), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn keys_under_2048_bits_and_garbage_are_refused() {
        assert_eq!(
            SigningKey::from_pkcs8("weak", include_bytes!("../tests/fixtures/weak-1024.pk8")).unwrap_err(),
            KeyError::TooShort
        );
        assert!(matches!(SigningKey::from_pkcs8("junk", b"not a key"), Err(KeyError::Unreadable(_))));
    }
}
