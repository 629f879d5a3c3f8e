//! Bounded, time-decayed summaries. A baseline must stay small however long
//! a principal lives and however many distinct things it touches, so sets
//! are Bloom filters that age out and frequencies are decayed heavy hitters.

use serde::{Deserialize, Serialize};

/// Nanoseconds in an hour and a day.
pub const HOUR: i64 = 3_600_000_000_000;
pub const DAY: i64 = 24 * HOUR;

/// A 64-bit hash of a feature value, namespaced so that the same string as
/// an action and as a resource are different members.
pub fn key(namespace: u8, value: &str) -> u64 {
    // FNV-1a then a finaliser: cheap, stable across runs and platforms
    // (baselines are persisted), and well mixed for the filter's indices.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(namespace);
    for b in value.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

/// [`key`] of two values joined by a separator, without building the joined string.
pub fn key2(namespace: u8, a: &str, b: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(namespace);
    for byte in a.as_bytes().iter().chain(b"\x1f").chain(b.as_bytes()) {
        h ^= u64::from(*byte);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

const BLOOM_WORDS: usize = 32; // 2,048 bits
const BLOOM_HASHES: u32 = 3;
/// Members a generation takes before it is retired: at this load the
/// false-positive rate reaches about 4% (2,048 bits, 3 hashes; (1-e^(-3n/m))^3).
const GENERATION_LIMIT: u32 = 280;

/// "Seen before?" for an unbounded set in 512 bytes: two generations of
/// Bloom filter. Members go into the current one; when it fills, it
/// becomes the previous one and the oldest is forgotten, so what has not
/// been seen for two generations becomes new again.
#[derive(Clone, Serialize, Deserialize)]
pub struct Novelty {
    current: Vec<u64>,
    previous: Vec<u64>,
    count: u32,
}

impl Default for Novelty {
    fn default() -> Self {
        Novelty { current: vec![0; BLOOM_WORDS], previous: vec![0; BLOOM_WORDS], count: 0 }
    }
}

impl Novelty {
    fn bits(k: u64) -> impl Iterator<Item = usize> {
        let (h1, h2) = (k as u32, (k >> 32) as u32 | 1);
        (0..BLOOM_HASHES).map(move |i| (h1.wrapping_add(i.wrapping_mul(h2)) as usize) % (BLOOM_WORDS * 64))
    }

    fn contains_in(words: &[u64], k: u64) -> bool {
        Self::bits(k).all(|b| words.get(b / 64).is_some_and(|w| w & (1 << (b % 64)) != 0))
    }

    pub fn contains(&self, k: u64) -> bool {
        Self::contains_in(&self.current, k) || Self::contains_in(&self.previous, k)
    }

    /// Adds `k`; returns whether it was new.
    pub fn insert(&mut self, k: u64) -> bool {
        if Self::contains_in(&self.current, k) {
            return false;
        }
        let new = !Self::contains_in(&self.previous, k);
        if self.count >= GENERATION_LIMIT {
            self.previous = std::mem::replace(&mut self.current, vec![0; BLOOM_WORDS]);
            self.count = 0;
        }
        for b in Self::bits(k) {
            if let Some(w) = self.current.get_mut(b / 64) {
                *w |= 1 << (b % 64);
            }
        }
        self.count += 1;
        new
    }

    pub fn heap_bytes(&self) -> usize {
        (self.current.capacity() + self.previous.capacity()) * 8
    }
}

/// A count that halves every `half_life`: recent behaviour weighs more,
/// and a sustained change overtakes the old habit.
#[derive(Clone, Copy, Default, Serialize, Deserialize)]
pub struct Decayed {
    pub value: f32,
    pub at: i64,
}

impl Decayed {
    pub fn value_at(&self, t: i64, half_life: i64) -> f32 {
        if t <= self.at {
            return self.value;
        }
        self.value * 0.5f32.powf((t - self.at) as f32 / half_life as f32)
    }

    pub fn add(&mut self, t: i64, amount: f32, half_life: i64) {
        self.value = self.value_at(t, half_life) + amount;
        self.at = self.at.max(t);
    }
}

/// The most frequent values with decayed weights, in fixed space (the
/// Space-Saving algorithm: a new value evicts the lightest when full and
/// inherits its weight as an error bound). Weights share one reference
/// time, so each takes 4 bytes beside its key.
#[derive(Clone, Serialize, Deserialize)]
pub struct TopK {
    keys: Vec<u64>,
    weights: Vec<f32>,
    /// The time every weight is decayed to.
    at: i64,
    capacity: u8,
    half_life: i64,
}

impl TopK {
    pub fn new(capacity: u8, half_life: i64) -> Self {
        TopK { keys: Vec::new(), weights: Vec::new(), at: 0, capacity, half_life }
    }

    fn factor(&self, t: i64) -> f32 {
        if t <= self.at { 1.0 } else { 0.5f32.powf((t - self.at) as f32 / self.half_life as f32) }
    }

    pub fn add(&mut self, k: u64, t: i64) {
        if t > self.at {
            let f = self.factor(t);
            self.weights.iter_mut().for_each(|w| *w *= f);
            self.at = t;
        }
        if let Some(i) = self.keys.iter().position(|&x| x == k) {
            self.weights[i] += 1.0;
            return;
        }
        if self.keys.len() < self.capacity as usize {
            // Exactly the capacity: doubling growth would waste up to half.
            if self.keys.is_empty() {
                self.keys.reserve_exact(self.capacity as usize);
                self.weights.reserve_exact(self.capacity as usize);
            }
            self.keys.push(k);
            self.weights.push(1.0);
            return;
        }
        if let Some((i, _)) = self.weights.iter().enumerate().min_by(|a, b| a.1.total_cmp(b.1)) {
            self.keys[i] = k;
            self.weights[i] += 1.0;
        }
    }

    /// The decayed weight of `k` (0 when not among the heavy hitters).
    pub fn weight(&self, k: u64, t: i64) -> f32 {
        self.keys.iter().position(|&x| x == k).map_or(0.0, |i| self.weights[i] * self.factor(t))
    }

    pub fn total(&self, t: i64) -> f32 {
        self.weights.iter().sum::<f32>() * self.factor(t)
    }

    /// Share of each heavy hitter, normalised.
    pub fn distribution(&self, t: i64) -> Vec<(u64, f32)> {
        let total = self.total(t).max(f32::MIN_POSITIVE);
        let f = self.factor(t);
        self.keys.iter().zip(&self.weights).map(|(k, w)| (*k, w * f / total)).collect()
    }

    pub fn heap_bytes(&self) -> usize {
        self.keys.capacity() * 8 + self.weights.capacity() * 4
    }
}

/// Total variation distance between two distributions over heavy hitters:
/// 0 for the same mix, 1 for disjoint ones.
pub fn total_variation(a: &[(u64, f32)], b: &[(u64, f32)]) -> f32 {
    let mut d = 0.0;
    for (k, p) in a {
        let q = b.iter().find(|(x, _)| x == k).map_or(0.0, |(_, q)| *q);
        d += (p - q).abs();
    }
    for (k, q) in b {
        if !a.iter().any(|(x, _)| x == k) {
            d += q;
        }
    }
    d / 2.0
}

/// Activity by hour of the week (168 buckets), decayed with a long half-life,
/// quantised to 16 bits: 336 bytes.
#[derive(Clone, Serialize, Deserialize)]
pub struct HourOfWeek {
    counts: Vec<u16>,
    total: u32,
}

impl Default for HourOfWeek {
    fn default() -> Self {
        HourOfWeek { counts: vec![0; 168], total: 0 }
    }
}

impl HourOfWeek {
    pub fn bucket(t: i64) -> usize {
        // 1970-01-01 was a Thursday: shift so that bucket 0 is Monday 00:00 UTC.
        let hours = t.div_euclid(HOUR) + 3 * 24;
        hours.rem_euclid(168) as usize
    }

    pub fn add(&mut self, t: i64) {
        let b = Self::bucket(t);
        if self.counts[b] == u16::MAX || self.total >= 60_000 {
            // Halve everything: old habits fade and the counts stay in range.
            for c in &mut self.counts {
                *c /= 2;
            }
            self.total /= 2;
        }
        self.counts[b] += 1;
        self.total += 1;
    }

    /// The share of activity in `t`'s hour and the two next to it.
    pub fn share_near(&self, t: i64) -> f32 {
        if self.total == 0 {
            return 0.0;
        }
        let b = Self::bucket(t);
        let near: u32 = [167, 0, 1].iter().map(|d| u32::from(self.counts[(b + d) % 168])).sum();
        near as f32 / self.total as f32
    }

    pub fn total(&self) -> u32 {
        self.total
    }

    pub fn heap_bytes(&self) -> usize {
        self.counts.capacity() * 2
    }
}

/// Events per hour: an exponentially weighted mean and variance of past
/// hours (empty hours included), and an alarm the moment the current hour
/// runs far above them.
#[derive(Clone, Copy, Default, Serialize, Deserialize)]
pub struct Rate {
    hour: i64,
    in_hour: u32,
    mean: f32,
    var: f32,
    hours: u32,
    alarmed: bool,
}

/// A rate alarm: the hour's count so far and what was expected.
pub struct RateAlarm {
    pub count: u32,
    pub mean: f32,
    pub sd: f32,
}

impl Rate {
    const ALPHA: f32 = 0.05;

    /// Counts one event at `t`; returns an alarm (once per hour) when the
    /// hour's count passes the mean by six standard deviations and at least
    /// twenty events, after a day of history.
    pub fn add(&mut self, t: i64) -> Option<RateAlarm> {
        let hour = t.div_euclid(HOUR);
        if hour > self.hour {
            if self.hours > 0 || self.in_hour > 0 {
                self.fold(self.in_hour as f32);
                // Quiet hours in between pull the mean down (a week at most).
                for _ in 0..(hour - self.hour - 1).clamp(0, 24 * 7) {
                    self.fold(0.0);
                }
            }
            self.hour = hour;
            self.in_hour = 0;
            self.alarmed = false;
        }
        self.in_hour += 1;
        let sd = self.var.sqrt().max(1.0);
        let over = self.in_hour as f32 > self.mean + (6.0 * sd).max(10.0);
        if self.hours >= 24 && self.in_hour >= 20 && over && !self.alarmed {
            self.alarmed = true;
            return Some(RateAlarm { count: self.in_hour, mean: self.mean, sd });
        }
        None
    }

    fn fold(&mut self, x: f32) {
        if self.hours == 0 {
            self.mean = x;
            self.var = 0.0;
        } else {
            let d = x - self.mean;
            self.mean += Self::ALPHA * d;
            self.var = (1.0 - Self::ALPHA) * (self.var + Self::ALPHA * d * d);
        }
        self.hours += 1;
    }

    pub fn mean(&self) -> f32 {
        self.mean
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn novelty_remembers_and_forgets_after_two_generations() {
        let mut n = Novelty::default();
        assert!(n.insert(key(1, "s3:GetObject")));
        assert!(!n.insert(key(1, "s3:GetObject")));
        assert!(n.contains(key(1, "s3:GetObject")));
        assert!(!n.contains(key(2, "s3:GetObject")), "namespaces keep features apart");
        let old: Vec<u64> = (0..100).map(|i| key(1, &format!("old-{i}"))).collect();
        for &k in &old {
            n.insert(k);
        }
        for i in 0..(2 * GENERATION_LIMIT + 1) {
            n.insert(key(3, &format!("other-{i}")));
        }
        // Forgotten, but for the filter's false positives (about 4% at capacity).
        let remembered = old.iter().filter(|&&k| n.contains(k)).count();
        assert!(remembered <= 12, "unseen for two generations: new again ({remembered} of 100 still match)");
    }

    #[test]
    fn novelty_false_positives_stay_low_at_capacity() {
        let mut n = Novelty::default();
        for i in 0..GENERATION_LIMIT {
            n.insert(key(1, &format!("member-{i}")));
        }
        let fp = (0..10_000).filter(|i| n.contains(key(1, &format!("absent-{i}")))).count();
        assert!(fp < 400, "{fp} false positives in 10,000");
    }

    #[test]
    fn top_k_keeps_the_heavy_hitters_and_decays() {
        let mut t = TopK::new(4, DAY);
        for i in 0..100 {
            t.add(key(1, "a"), i * HOUR / 10);
            if i % 10 == 0 {
                t.add(key(1, &format!("rare-{i}")), i * HOUR / 10);
            }
        }
        let now = 10 * HOUR;
        assert!(t.weight(key(1, "a"), now) > 50.0);
        assert!(t.weight(key(1, "a"), now + DAY) < t.weight(key(1, "a"), now) * 0.51);
    }

    #[test]
    fn rate_alarms_on_a_burst_and_not_on_steady_activity() {
        let mut r = Rate::default();
        let mut alarms = 0;
        for h in 0..200 {
            for k in 0..5 {
                alarms += r.add(h * HOUR + k * 60_000_000_000).is_some() as u32;
            }
        }
        assert_eq!(alarms, 0, "steady five an hour");
        let burst: Vec<bool> = (0..200).map(|k| r.add(200 * HOUR + k * 10_000_000_000).is_some()).collect();
        assert_eq!(burst.iter().filter(|a| **a).count(), 1, "one alarm for the burst, within its hour");
        assert!(burst[..15].iter().all(|a| !a), "not before the count is far above normal");
    }

    #[test]
    fn hour_of_week_buckets_start_on_monday() {
        // 2026-11-23 was a Monday.
        let monday = tenet_model::Timestamp::parse_rfc3339("2026-11-23T00:30:00Z").unwrap().unix_nanos();
        assert_eq!(HourOfWeek::bucket(monday), 0);
        assert_eq!(HourOfWeek::bucket(monday + 25 * HOUR), 25);
    }

    #[test]
    fn total_variation_is_zero_for_equal_and_one_for_disjoint() {
        let a = vec![(1, 0.5), (2, 0.5)];
        assert!(total_variation(&a, &a) < 1e-6);
        assert!((total_variation(&a, &[(3, 1.0)]) - 1.0).abs() < 1e-6);
    }
}
