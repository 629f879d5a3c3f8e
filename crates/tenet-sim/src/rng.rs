//! Deterministic randomness: every stream is derived from the seed and a
//! path of tags (the hour, the entity, the scenario), so any part of the
//! simulation can be generated independently, in any order, on any thread,
//! and still come out byte-identical.

use fastrand::Rng;

/// SplitMix64's finaliser: a good 64-bit mixer.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn tag_hash(tag: &str) -> u64 {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in tag.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A seed for the stream named by `tag` and `parts` under `seed`.
pub fn derive(seed: u64, tag: &str, parts: &[u64]) -> u64 {
    let mut h = mix(seed ^ tag_hash(tag));
    for p in parts {
        h = mix(h ^ p.wrapping_mul(0x2545_f491_4f6c_dd1d));
    }
    h
}

pub fn rng(seed: u64, tag: &str, parts: &[u64]) -> Rng {
    Rng::with_seed(derive(seed, tag, parts))
}

const HEX: &[u8; 16] = b"0123456789abcdef";
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

pub fn hex(r: &mut Rng, n: usize) -> String {
    (0..n).map(|_| HEX[r.usize(..16)] as char).collect()
}

pub fn base62(r: &mut Rng, n: usize) -> String {
    (0..n).map(|_| BASE62[r.usize(..62)] as char).collect()
}

pub fn base32(r: &mut Rng, n: usize) -> String {
    (0..n).map(|_| BASE32[r.usize(..32)] as char).collect()
}

/// A version-4 UUID: CloudTrail `eventID`, Kubernetes `auditID`, Okta `uuid`.
pub fn uuid(r: &mut Rng) -> String {
    let a = r.u64(..);
    let b = r.u64(..);
    let b = (b & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    let a = (a & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

/// A Poisson draw (Knuth for small means, normal approximation above).
pub fn poisson(r: &mut Rng, mean: f64) -> u32 {
    if mean <= 0.0 {
        return 0;
    }
    if mean > 30.0 {
        // Box-Muller.
        let u1 = r.f64().max(1e-12);
        let u2 = r.f64();
        let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        return (mean + z * mean.sqrt()).round().max(0.0) as u32;
    }
    let l = (-mean).exp();
    let mut k = 0;
    let mut p = 1.0;
    loop {
        p *= r.f64();
        if p <= l {
            return k;
        }
        k += 1;
    }
}

/// Picks an index with probability proportional to its weight.
pub fn weighted(r: &mut Rng, weights: impl Iterator<Item = f64> + Clone) -> usize {
    let total: f64 = weights.clone().sum();
    let mut x = r.f64() * total;
    let mut last = 0;
    for (i, w) in weights.enumerate() {
        last = i;
        if x < w {
            return i;
        }
        x -= w;
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_independent() {
        let a: Vec<u64> = (0..4).map(|_| rng(7, "hour", &[3]).u64(..)).collect();
        assert!(a.windows(2).all(|w| w[0] == w[1]));
        assert_ne!(rng(7, "hour", &[3]).u64(..), rng(7, "hour", &[4]).u64(..));
        assert_ne!(rng(7, "hour", &[3]).u64(..), rng(8, "hour", &[3]).u64(..));
    }

    #[test]
    fn uuids_have_the_v4_shape() {
        let u = uuid(&mut Rng::with_seed(1));
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(matches!(&u[19..20], "8" | "9" | "a" | "b"));
    }
}
