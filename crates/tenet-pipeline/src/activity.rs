//! How much activity a store holds, counted the way findings are
//! attributed: distinct principals (the learner's subjects: a person
//! wherever they act, an agent, a workload's role rather than each of its
//! sessions) and principal-days, the denominator of a false-alert rate.

use std::collections::HashSet;

use tenet_learn::identity::IdentityIndex;
use tenet_model::Timestamp;
use tenet_store::{EventQuery, EventReader, Result};

const DAY_NANOS: i64 = 86_400_000_000_000;

/// Distinct principals and principal-days in the store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Activity {
    pub principals: u64,
    /// Distinct (principal, UTC day) pairs with at least one event.
    pub principal_days: u64,
    /// UTC days from the first event's to the last's, both counted.
    pub days: u64,
}

/// Reads every stored event once, a day at a time, in time order.
pub fn activity(reader: &dyn EventReader) -> Result<Activity> {
    let Some((first, last)) = reader.time_range()? else { return Ok(Activity::default()) };
    let (first_day, last_day) = (first.unix_nanos().div_euclid(DAY_NANOS), last.unix_nanos().div_euclid(DAY_NANOS));
    let mut identity = IdentityIndex::default();
    let mut principals: HashSet<String> = HashSet::new();
    let mut principal_days: u64 = 0;
    for day in first_day..=last_day {
        let query = EventQuery {
            since: Some(Timestamp::from_unix_nanos(day * DAY_NANOS)),
            until: Some(Timestamp::from_unix_nanos((day + 1) * DAY_NANOS - 1)),
            ..EventQuery::default()
        };
        let mut today: HashSet<String> = HashSet::new();
        for e in reader.query(&query)? {
            identity.apply_event(&e);
            let s = identity.subject(&e);
            today.insert(s.id);
        }
        principal_days += today.len() as u64;
        principals.extend(today);
    }
    Ok(Activity { principals: principals.len() as u64, principal_days, days: (last_day - first_day + 1) as u64 })
}
