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

/// Activity by hour of the week (168 buckets), decayed by halving whenever
/// a bucket fills, quantised to 8 bits: 168 bytes. Only the shape matters
/// (the share of activity near an hour), and halving keeps it.
#[derive(Clone, Serialize, Deserialize)]
pub struct HourOfWeek {
    counts: Vec<u8>,
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
        if self.counts[b] == u8::MAX || self.total >= 30_000 {
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
        self.counts.capacity()
    }
}

/// Features whose churn is estimated, by slot.
pub const CHURN_FEATURES: usize = 9;
/// Half-life of the churn estimate: a week of behaviour.
const CHURN_HALF_LIFE: i64 = 7 * DAY;

/// How readily a principal shows values never seen before, per feature:
/// decayed counts of observations and of first sightings. Their ratio is
/// the share of recent observations that were new, a Good–Turing style
/// estimate of the probability that the next one is new (a conservative
/// one: it counts every first sighting where Good–Turing counts values
/// seen once). A Lambda role whose every cold start brings a new address
/// has a high rate, and a new address means little; a person who works
/// from two places has a rate near zero, and a third means much. 100 bytes.
#[derive(Clone, Copy, Default, Serialize, Deserialize)]
pub struct Churn {
    at: i64,
    obs: [f32; CHURN_FEATURES],
    new: [f32; CHURN_FEATURES],
    /// The last value of each switching feature in the current hour (see
    /// [`Churn::switched`]).
    #[serde(default)]
    last: [u32; SWITCHING],
    #[serde(default)]
    hour: i64,
}

/// Features counted per switch of value, not per event: slots 1 to 4
/// (network, wider network, user agent, region; see `baseline::feature`).
const SWITCHING: usize = 5;

impl Churn {
    fn age_to(&mut self, t: i64) {
        // Decayed in steps of an hour or more: the estimate moves over days.
        if t - self.at >= HOUR {
            let f = 0.5f32.powf((t - self.at) as f32 / CHURN_HALF_LIFE as f32);
            self.obs.iter_mut().chain(self.new.iter_mut()).for_each(|x| *x *= f);
            self.at = t;
        } else if self.at == 0 {
            self.at = t;
        }
    }

    /// Counts one observation of feature `slot`, new or not. The first
    /// value a principal ever shows is where it starts, not churn.
    pub fn observe(&mut self, t: i64, slot: usize, new: bool) {
        self.age_to(t);
        if let (Some(o), Some(n)) = (self.obs.get_mut(slot), self.new.get_mut(slot)) {
            if new && *o > 0.0 {
                *n += 1.0;
            }
            *o += 1.0;
        }
    }

    /// Whether `value` is a new observation of `slot` at `t`: context
    /// (where from, with what) is counted once an hour per value, or when it
    /// switches, not once per call: a pipeline run of 300 calls from one new
    /// runner address is one new address, not one in 300, while a person's
    /// working hours each count. Other slots count every event.
    pub fn switched(&mut self, t: i64, slot: usize, value: u64) -> bool {
        if slot == 0 || slot >= SWITCHING {
            return true;
        }
        let hour = t.div_euclid(HOUR);
        if hour != self.hour {
            self.hour = hour;
            self.last = [0; SWITCHING];
        }
        match self.last.get_mut(slot) {
            Some(last) if *last == value as u32 => false,
            Some(last) => {
                *last = value as u32;
                true
            }
            None => true,
        }
    }

    /// Decayed observations of `slot`.
    pub fn observations(&self, slot: usize) -> f32 {
        self.obs.get(slot).copied().unwrap_or(0.0)
    }

    /// The rate of several counts pooled (one peer group's members, kept
    /// by several learners); `None` before `min_obs` observations in all.
    pub fn pooled_rate<'a>(parts: impl Iterator<Item = &'a Churn>, slot: usize, min_obs: f32) -> Option<f32> {
        let (mut o, mut n) = (0.0, 0.0);
        for c in parts {
            o += c.observations(slot);
            n += c.new.get(slot).copied().unwrap_or(0.0);
        }
        (o >= min_obs).then(|| n / o)
    }

    /// The own rate alone (`None` before `min_obs` observations).
    pub fn own_rate(&self, slot: usize, min_obs: f32) -> Option<f32> {
        let o = self.observations(slot);
        (o >= min_obs).then(|| self.new.get(slot).copied().unwrap_or(0.0) / o)
    }

    /// The probability that the next value of `slot` is new: the own rate,
    /// shrunk towards `prior` by `weight` pseudo-observations, so a young
    /// principal is judged by its peers' rate and an old one by its own.
    pub fn rate(&self, slot: usize, prior: f32, weight: f32) -> f32 {
        let (o, n) = (self.observations(slot), self.new.get(slot).copied().unwrap_or(0.0));
        ((n + weight * prior) / (o + weight)).clamp(0.0, 1.0)
    }
}

/// How surprising a first sighting is under a churn rate: 0 when new values
/// come one time in five or more often, 1 when rarer than one in 500,
/// logarithmic between.
pub fn surprise(rate: f32) -> f32 {
    const COMMON: f32 = 0.2;
    const RARE: f32 = 0.002;
    ((COMMON / rate.max(1e-6)).ln() / (COMMON / RARE).ln()).clamp(0.0, 1.0)
}

/// Deviations that recur become habit: for a few signatures (a detector and
/// what it saw), the days of the last sixteen on which each occurred. A
/// nightly job's burst or a daily plan's denials occur most days; the
/// same alert every day is a defect. 8 entries of 8 bytes.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Habits {
    entries: Vec<(u32, u16, u16)>,
}

const HABITS_KEPT: usize = 8;

impl Habits {
    /// Notes signature `sig` on day `day` (days since the epoch); returns on
    /// how many distinct earlier days of the last fifteen it occurred.
    pub fn note(&mut self, sig: u64, day: i64) -> u32 {
        let (sig, day) = (sig as u32, day.clamp(0, i64::from(u16::MAX)) as u16);
        if let Some(e) = self.entries.iter_mut().find(|e| e.0 == sig) {
            let shift = day.saturating_sub(e.1);
            e.2 = if shift >= 16 { 0 } else { e.2 << shift };
            e.2 |= 1;
            e.1 = e.1.max(day);
            return (e.2 >> 1).count_ones();
        }
        if self.entries.len() >= HABITS_KEPT {
            // The signature seen longest ago makes room.
            if let Some(i) = self.entries.iter().enumerate().min_by_key(|(_, e)| e.1).map(|(i, _)| i) {
                self.entries.swap_remove(i);
            }
        }
        if self.entries.is_empty() {
            self.entries.reserve_exact(HABITS_KEPT);
        }
        self.entries.push((sig, day, 1));
        0
    }

    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<(u32, u16, u16)>()
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
    /// The busiest hour lately, decaying slowly: a principal that works in
    /// bursts (a plan, an apply, a batch) is measured against its bursts.
    #[serde(default)]
    peak: f32,
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
        let over = self.in_hour as f32 > (self.mean + (6.0 * sd).max(10.0)).max(2.0 * self.peak);
        if self.hours >= 24 && self.in_hour >= 20 && over && !self.alarmed {
            self.alarmed = true;
            return Some(RateAlarm { count: self.in_hour, mean: self.mean, sd });
        }
        None
    }

    fn fold(&mut self, x: f32) {
        // Halves in about two weeks of hours.
        self.peak = (self.peak * 0.998).max(x);
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
    fn churn_rate_follows_the_share_of_first_sightings_and_leans_on_the_prior_when_young() {
        let mut c = Churn::default();
        assert!((c.rate(0, 0.1, 20.0) - 0.1).abs() < 1e-6, "no history: the prior");
        for i in 0..1000 {
            c.observe(i * 60_000_000_000, 0, i % 4 == 0);
        }
        let r = c.rate(0, 0.0, 20.0);
        assert!((0.2..0.26).contains(&r), "a quarter new: {r}");
        assert!(surprise(r) < 0.05, "a churning feature's new value is no news");
        let mut steady = Churn::default();
        for i in 0..1000 {
            steady.observe(i * 60_000_000_000, 0, i == 0);
        }
        assert!(surprise(steady.rate(0, 0.0, 20.0)) > 0.9, "a steady feature's new value is");
    }

    #[test]
    fn a_signature_on_most_days_becomes_habit() {
        let mut h = Habits::default();
        assert_eq!(h.note(7, 100), 0);
        assert_eq!(h.note(7, 100), 0, "the same day twice is one day");
        assert_eq!(h.note(7, 101), 1);
        assert_eq!(h.note(7, 103), 2);
        assert_eq!(h.note(7, 130), 0, "a month later the habit is forgotten");
        for sig in 0..20 {
            h.note(1000 + sig, 131);
        }
        assert!(h.heap_bytes() <= 8 * 8, "bounded: {}", h.heap_bytes());
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
