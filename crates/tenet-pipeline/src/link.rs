//! Credential linking: completing actor chains across events.
//!
//! A session's events say which role it is, not who assumed it. The event
//! that minted the session's credential (STS `AssumeRole`,
//! `GetFederationToken` …) says who. The linker joins the two whichever
//! arrives first: issuances seen earlier complete chains as events pass,
//! and an issuance seen late completes the chains of events already stored.

use std::collections::HashMap;

use tenet_model::{Event, Principal, PrincipalKind};
use tenet_store::{EventReader, EventStore, Result};

/// Who a credential was issued to, and the chain of whoever issued it.
#[derive(Debug, Clone)]
pub struct Issuance {
    to: String,
    /// The issuing event's actor followed by its own chain.
    issuer_chain: Vec<Principal>,
}

impl Issuance {
    fn of(e: &Event) -> Option<(String, Issuance)> {
        let issued = e.issued.as_ref()?;
        let issuer_chain = e.principals().cloned().collect();
        Some((issued.credential_id.clone(), Issuance { to: issued.to.id.clone(), issuer_chain }))
    }
}

/// Extends `event`'s chain with the issuer's; true if anything changed.
fn extend(event: &mut Event, issuance: &Issuance) -> bool {
    // The credential's holder must be this actor when both are named, so a
    // reused or mislabelled key cannot graft one identity onto another.
    if issuance.to != "unknown" && issuance.to != event.actor.id {
        return false;
    }
    let mut changed = false;
    for p in &issuance.issuer_chain {
        if p.id != event.actor.id && !event.chain.iter().any(|c| c.id == p.id) {
            event.chain.push(p.clone());
            changed = true;
        }
    }
    if changed && event.actor.kind == PrincipalKind::Unknown {
        // A session is the kind of whoever holds it.
        event.actor.kind = match event.origin().kind {
            PrincipalKind::Human => PrincipalKind::Human,
            PrincipalKind::Agent => PrincipalKind::Agent,
            PrincipalKind::Workload | PrincipalKind::CloudService | PrincipalKind::Role => PrincipalKind::Workload,
            _ => PrincipalKind::Unknown,
        };
    }
    changed
}

#[derive(Default)]
pub struct CredentialLinker {
    /// Known answers, including "no issuer stored" (`None`) so each unknown
    /// credential costs one lookup per run, not one per event.
    known: HashMap<String, Option<Issuance>>,
}

/// A credential first seen issued in a batch, to complete the chains of
/// events stored before it.
pub type Fresh = (String, Issuance);

impl CredentialLinker {
    /// Completes the chains of a batch about to be stored, using issuances in
    /// the batch itself, earlier batches and the store. Returns the
    /// credentials first issued in this batch, for [`relink_stored`].
    pub fn link_batch(&mut self, store: &dyn EventReader, batch: &mut [Event]) -> Result<Vec<Fresh>> {
        let mut fresh = Vec::new();
        for e in batch.iter() {
            if let Some((cred, iss)) = Issuance::of(e) {
                if !matches!(self.known.get(&cred), Some(Some(_))) {
                    fresh.push((cred.clone(), iss.clone()));
                }
                self.known.insert(cred, Some(iss));
            }
        }
        for e in batch.iter_mut() {
            let Some(cred) = e.session.as_ref().and_then(|s| s.credential_id.as_deref()) else { continue };
            if !self.known.contains_key(cred) {
                let found = store.issuer_of(cred)?.and_then(|issuer| Issuance::of(&issuer)).map(|(_, i)| i);
                self.known.insert(cred.to_string(), found);
            }
            if let Some(Some(iss)) = self.known.get(cred) {
                let iss = iss.clone();
                extend(e, &iss);
            }
        }
        Ok(fresh)
    }
}

/// Completes the chains of events stored before their credential's
/// issuance was seen. Returns how many changed.
pub fn relink_stored(store: &mut dyn EventStore, fresh: &[Fresh]) -> Result<usize> {
    let mut changed = 0;
    for (cred, iss) in fresh {
        for mut e in store.using_credential(cred)? {
            if extend(&mut e, iss) {
                store.relink(&e)?;
                changed += 1;
            }
        }
    }
    Ok(changed)
}
