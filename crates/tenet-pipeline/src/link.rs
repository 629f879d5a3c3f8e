//! Credential linking: completing actor chains across events.
//!
//! A session's events say which role it is, not who assumed it. The event
//! that minted the session's credential (STS `AssumeRole`,
//! `GetFederationToken` …) says who. The linker joins the two whichever
//! arrives first: issuances seen earlier complete chains as events pass,
//! and an issuance seen late completes the chains of events already stored.

use std::collections::{HashMap, HashSet};

use tenet_model::{Event, Principal, PrincipalKind};
use tenet_store::{EventReader, EventStore, Result};

/// Who a credential was issued to, and the chain of whoever issued it.
#[derive(Debug, Clone, PartialEq)]
pub struct Issuance {
    to: String,
    /// The issuing event's actor followed by its own chain, as completed.
    issuer_chain: Vec<Principal>,
    /// The credential the issuer presented (a role session assuming another
    /// role): when its issuance is learnt or completed, so is this one.
    via: Option<String>,
}

impl Issuance {
    fn of(e: &Event) -> Option<(String, Issuance)> {
        let issued = e.issued.as_ref()?;
        let issuer_chain = e.principals().cloned().collect();
        let via = credential(e).map(str::to_string);
        Some((issued.credential_id.clone(), Issuance { to: issued.to.id.clone(), issuer_chain, via }))
    }

    /// Completes the issuer's chain with the issuance of the credential it
    /// presented, as [`extend`] would the issuing event; true if it grew.
    fn complete(&mut self, with: &Issuance) -> bool {
        if self.issuer_chain.is_empty() {
            return false;
        }
        let mut chain = self.issuer_chain.split_off(1);
        let changed = extend_chain(&mut self.issuer_chain[0], &mut chain, with);
        self.issuer_chain.append(&mut chain);
        changed
    }
}

fn credential(e: &Event) -> Option<&str> {
    e.session.as_ref().and_then(|s| s.credential_id.as_deref())
}

/// Extends `event`'s chain with the issuer's; true if anything changed.
fn extend(event: &mut Event, issuance: &Issuance) -> bool {
    extend_chain(&mut event.actor, &mut event.chain, issuance)
}

/// Extends an actor's chain with the issuer's. Only ever appends, so a
/// chain completed in steps ends the same as one completed at once.
fn extend_chain(actor: &mut Principal, chain: &mut Vec<Principal>, issuance: &Issuance) -> bool {
    // The credential's holder must be this actor when both are named, so a
    // reused or mislabelled key cannot graft one identity onto another.
    if issuance.to != "unknown" && issuance.to != actor.id {
        return false;
    }
    let held_before = holder(chain.last().unwrap_or(actor));
    let mut changed = false;
    for p in &issuance.issuer_chain {
        if p.id != actor.id && !chain.iter().any(|c| c.id == p.id) {
            chain.push(p.clone());
            changed = true;
        }
    }
    if !changed {
        return false;
    }
    // A session is the kind of whoever holds it. A workload kind its
    // previous origin gave follows the origin further up, so a chain
    // completed in steps (a role chain whose first issuer came last) ends
    // with the kind it gets completed at once.
    let held = holder(chain.last().unwrap_or(actor));
    let follows = actor.kind == PrincipalKind::Workload && held_before == PrincipalKind::Workload;
    if actor.kind == PrincipalKind::Unknown || (follows && held != PrincipalKind::Unknown) {
        actor.kind = held;
    }
    true
}

/// The kind a session held by `origin` is.
fn holder(origin: &Principal) -> PrincipalKind {
    match origin.kind {
        PrincipalKind::Human => PrincipalKind::Human,
        PrincipalKind::Agent => PrincipalKind::Agent,
        PrincipalKind::Workload | PrincipalKind::CloudService | PrincipalKind::Role => PrincipalKind::Workload,
        _ => PrincipalKind::Unknown,
    }
}

#[derive(Default)]
pub struct CredentialLinker {
    /// Known answers, including "no issuer stored" (`None`) so each unknown
    /// credential costs one lookup per run, not one per event.
    known: HashMap<String, Option<Issuance>>,
    /// For each credential, those issued by someone presenting it (a set:
    /// one long-term key can mint thousands of sessions in a run).
    dependents: HashMap<String, HashSet<String>>,
}

/// A credential first seen issued in a batch, to complete the chains of
/// events stored before it.
pub type Fresh = (String, Issuance);

impl CredentialLinker {
    /// Completes the chains of a batch about to be stored, using issuances in
    /// the batch itself, earlier batches and the store. Returns the
    /// credentials first issued in this batch, for [`relink_stored`].
    ///
    /// A chain comes out the same whichever batch or run its events arrive
    /// in: an issuance carries its issuer's chain as completed (through the
    /// issuer's own credential, in this batch, an earlier one or the store),
    /// which is what reading the issuer back from the store gives.
    pub fn link_batch(&mut self, store: &dyn EventReader, batch: &mut [Event]) -> Result<Vec<Fresh>> {
        let mut fresh = Vec::new();
        // The batch's own issuers, by credential: a session may come before its issuer.
        let mut issuer_at: HashMap<String, usize> = HashMap::new();
        for (i, e) in batch.iter().enumerate() {
            if let Some((cred, iss)) = Issuance::of(e) {
                if !matches!(self.known.get(&cred), Some(Some(_))) {
                    fresh.push(cred.clone());
                }
                self.learn(cred.clone(), iss);
                issuer_at.insert(cred, i);
            }
        }
        for e in batch.iter() {
            let Some(cred) = credential(e) else { continue };
            if !self.known.contains_key(cred) {
                match store.issuer_of(cred)?.and_then(|issuer| Issuance::of(&issuer)) {
                    Some((_, iss)) => {
                        self.learn(cred.to_string(), iss);
                    }
                    None => {
                        self.known.insert(cred.to_string(), None);
                    }
                }
            }
        }
        // An issuer whose chain grows here passes it on to what it issued,
        // and to the events presenting that (built when first needed).
        let mut users: Option<HashMap<String, Vec<usize>>> = None;
        let mut work: Vec<usize> = (0..batch.len()).rev().collect();
        while let Some(i) = work.pop() {
            let Some(Some(iss)) = credential(&batch[i]).and_then(|c| self.known.get(c)) else { continue };
            if !extend(&mut batch[i], iss) {
                continue;
            }
            let Some((issued, iss)) = Issuance::of(&batch[i]) else { continue };
            if issuer_at.get(&issued) != Some(&i) {
                continue;
            }
            let users = users.get_or_insert_with(|| {
                let mut by: HashMap<String, Vec<usize>> = HashMap::new();
                for (j, e) in batch.iter().enumerate() {
                    if let Some(c) = credential(e) {
                        by.entry(c.to_string()).or_default().push(j);
                    }
                }
                by
            });
            for changed in self.learn(issued, iss) {
                work.extend(users.get(&changed).into_iter().flatten());
            }
        }
        Ok(fresh.into_iter().filter_map(|c| self.known.get(&c).cloned().flatten().map(|iss| (c, iss))).collect())
    }

    /// Credentials whose issuance another writer stored (another node of a
    /// cluster, analysing another partition): what this linker took for
    /// unknown is looked up again, and the events stored using them,
    /// whoever stored them, are completed. Two nodes storing an issuance
    /// and its uses at the same moment each miss the other's uncommitted
    /// events; this, run after the issuer's commit, joins them.
    pub fn issued_elsewhere(&mut self, store: &mut dyn EventStore, creds: &[String]) -> Result<Vec<Completed>> {
        let mut fresh = Vec::new();
        for cred in creds {
            // Only a credential this linker looked for and did not find can
            // have events stored here without their issuer: one it never
            // met was presented by none of them, one it knew linked them.
            if !matches!(self.known.get(cred), Some(None)) {
                continue;
            }
            self.known.remove(cred);
            if let Some((_, iss)) = store.issuer_of(cred)?.and_then(|issuer| Issuance::of(&issuer)) {
                self.learn(cred.clone(), iss);
            }
            if let Some(Some(iss)) = self.known.get(cred) {
                fresh.push((cred.clone(), iss.clone()));
            }
        }
        relink_stored(store, &fresh)
    }

    /// Records `cred`'s issuance, completed with what is known of the
    /// credential its issuer presented, and completes those issued through
    /// `cred` in turn. Returns every credential whose issuance changed.
    fn learn(&mut self, cred: String, mut iss: Issuance) -> Vec<String> {
        if let Some(Some(via)) = iss.via.as_ref().and_then(|v| self.known.get(v)) {
            let via = via.clone();
            iss.complete(&via);
        }
        if let Some(via) = &iss.via {
            self.dependents.entry(via.clone()).or_default().insert(cred.clone());
        }
        if matches!(self.known.get(&cred), Some(Some(old)) if *old == iss) {
            return Vec::new();
        }
        self.known.insert(cred.clone(), Some(iss));
        let mut changed = vec![cred];
        let mut i = 0;
        while i < changed.len() {
            let Some(Some(with)) = self.known.get(&changed[i]).cloned() else { break };
            let deps: Vec<String> = self.dependents.get(&changed[i]).into_iter().flatten().cloned().collect();
            for dep in deps {
                // Each step only grows a chain, so this ends, cycles included.
                if let Some(Some(d)) = self.known.get_mut(&dep)
                    && d.complete(&with)
                {
                    changed.push(dep);
                }
            }
            i += 1;
        }
        changed
    }
}

/// A stored event whose chain was completed: as now stored, and how many
/// principals it named before (a chain only grows).
#[derive(Debug, Clone)]
pub struct Completed {
    pub event: Event,
    pub known: usize,
}

/// Completes the chains of events stored before their credential's
/// issuance was seen, and, when such an event issued a credential itself
/// (role chaining), of the events stored with that one. Returns each
/// completion.
pub fn relink_stored(store: &mut dyn EventStore, fresh: &[Fresh]) -> Result<Vec<Completed>> {
    let mut changed = Vec::new();
    let mut work: Vec<Fresh> = fresh.to_vec();
    while let Some((cred, iss)) = work.pop() {
        for mut e in store.using_credential(&cred)? {
            let known = e.principals().count();
            // Each relink only grows a chain, so this ends.
            if extend(&mut e, &iss) {
                let stored = store.relink(&e, known)?;
                if stored < e.principals().count() {
                    work.extend(Issuance::of(&e));
                    changed.push(Completed { event: e, known: stored });
                }
            }
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenet_model::{Action, IssuedCredential, Session, Source, Timestamp};
    use tenet_store::SqliteStore;

    /// `actor`, presenting `presents`, mints `mints` for `to`.
    fn assume(id: &str, actor: &str, presents: Option<&str>, mints: &str, to: &str) -> Event {
        Event {
            session: presents.map(|c| Session { credential_id: Some(c.into()), ..Default::default() }),
            issued: Some(IssuedCredential {
                credential_id: mints.into(),
                to: Principal::new(to, PrincipalKind::Unknown),
                expires: None,
            }),
            ..Event::api_call(
                id,
                Timestamp::from_unix_seconds(1),
                Principal::new(actor, PrincipalKind::Unknown),
                Action::new("sts", "AssumeRole"),
                Source { format: "cloudtrail".into(), system: "aws".into(), tenant: None },
            )
        }
    }

    fn ids(e: &Event) -> Vec<&str> {
        e.chain.iter().map(|p| p.id.as_str()).collect()
    }

    #[test]
    fn credentials_minted_through_each_other_in_a_cycle_complete_once_and_stop() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_dir(dir.path()).unwrap();
        // a, holding K2, mints K1 for b; b, holding K1, mints K2 for a.
        let mut batch = vec![assume("1", "a", Some("K2"), "K1", "b"), assume("2", "b", Some("K1"), "K2", "a")];
        let fresh = CredentialLinker::default().link_batch(&*store.reader().unwrap(), &mut batch).unwrap();
        assert_eq!(ids(&batch[0]), vec!["b"]);
        assert_eq!(ids(&batch[1]), vec!["a"]);
        assert_eq!(fresh.len(), 2);
    }

    #[test]
    fn an_issuance_learnt_before_its_issuers_own_carries_the_chain_completed_later() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open_dir(dir.path()).unwrap();
        let reader = store.reader().unwrap();
        let mut linker = CredentialLinker::default();
        // The second hop of a role chain, then the first, in separate batches.
        let mut second = vec![assume("2", "s1", Some("K1"), "K2", "s2")];
        linker.link_batch(&*reader, &mut second).unwrap();
        let mut first = vec![assume("1", "alice", None, "K1", "s1")];
        linker.link_batch(&*reader, &mut first).unwrap();
        let mut uses = vec![assume("3", "s2", Some("K2"), "K3", "s3")];
        linker.link_batch(&*reader, &mut uses).unwrap();
        assert_eq!(ids(&uses[0]), vec!["s1", "alice"]);
    }
}
