//! Live sessions: the sessions enforcement points hold, learned from the
//! AuthZEN requests that name one (`context.session_id`), each with its
//! most recent decisions, so that when a principal's trust changes those
//! decisions can be taken again and the sessions they no longer justify
//! revoked. Bounded in sessions and in decisions per session; kept in
//! `sessions.db` behind the decisions (see [`follow`]), so a restarted
//! service still knows the sessions established before it.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tenet_policy::authzen::Evaluation;
use tenet_server::access::{DecisionPoint, SessionUse};
use tenet_store::sessions::{SessionStore, StoredSession};

use crate::trust::LiveTrust;

/// Sessions kept; beyond, the least recently used are forgotten.
pub const MAX_SESSIONS: usize = 200_000;
/// Distinct requests kept per session (the newest).
pub const MAX_RECENT: usize = 8;

struct Recent {
    evaluation: Evaluation,
    allowed: bool,
}

struct Session {
    principal: String,
    origin: Option<String>,
    recent: Vec<Recent>,
    last: u64,
    /// Revoked: nothing more is said about it until it is used again.
    revoked: bool,
}

/// What re-evaluating a session concluded.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Everything it was allowed is now denied.
    Revoke,
    /// Some of what it was allowed is now denied: `action resource` pairs.
    Lower { denied: Vec<String> },
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<String, Session>,
    /// Principal (or the person an agent acts for) → its session ids.
    by_principal: HashMap<String, Vec<String>>,
    clock: u64,
    /// Changed since the last save, and forgotten since.
    dirty: HashSet<String>,
    gone: HashSet<String>,
}

impl Inner {
    fn changed(&mut self, id: &str) {
        self.gone.remove(id);
        self.dirty.insert(id.to_string());
    }

    fn forgotten(&mut self, id: &str) {
        self.dirty.remove(id);
        self.gone.insert(id.to_string());
    }

    fn index(&mut self, id: &str) {
        let keys: Vec<String> = match self.sessions.get(id) {
            Some(s) => std::iter::once(s.principal.clone()).chain(s.origin.clone()).collect(),
            None => return,
        };
        for key in keys {
            self.by_principal.entry(key).or_default().push(id.to_string());
        }
    }
}

/// The live sessions.
#[derive(Default)]
pub struct Sessions {
    inner: Mutex<Inner>,
}

fn same_request(a: &Evaluation, b: &Evaluation) -> bool {
    a.action.name == b.action.name && a.resource.kind == b.resource.kind && a.resource.id == b.resource.id
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn len(&self) -> usize {
        self.lock().sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records a decision made within a session.
    pub fn record(&self, used: SessionUse, trust: &LiveTrust) {
        let (principal, origin) =
            trust.current().principal_of(&used.evaluation.subject.kind, &used.evaluation.subject.id);
        let mut inner = self.lock();
        inner.clock += 1;
        let clock = inner.clock;
        let fresh = !inner.sessions.contains_key(&used.session_id);
        if fresh && inner.sessions.len() >= MAX_SESSIONS {
            evict(&mut inner);
        }
        let session = inner.sessions.entry(used.session_id.clone()).or_insert_with(|| Session {
            principal: principal.clone(),
            origin: origin.clone(),
            recent: Vec::new(),
            last: clock,
            revoked: false,
        });
        session.last = clock;
        if used.allowed {
            session.revoked = false;
        }
        session.recent.retain(|r| !same_request(&r.evaluation, &used.evaluation));
        if session.recent.len() >= MAX_RECENT {
            session.recent.remove(0);
        }
        session.recent.push(Recent { evaluation: used.evaluation, allowed: used.allowed });
        if fresh {
            inner.index(&used.session_id);
        }
        inner.changed(&used.session_id);
    }

    /// A session an enforcement point said it established or was
    /// presented (`session-established` / `session-presented`), with no
    /// decision of Tenet's behind it yet.
    pub fn learn(&self, session_id: &str, principal: &str) {
        let mut inner = self.lock();
        inner.clock += 1;
        let clock = inner.clock;
        if let Some(s) = inner.sessions.get_mut(session_id) {
            s.last = clock;
            inner.changed(session_id);
            return;
        }
        if inner.sessions.len() >= MAX_SESSIONS {
            evict(&mut inner);
        }
        inner.sessions.insert(
            session_id.to_string(),
            Session { principal: principal.to_string(), origin: None, recent: Vec::new(), last: clock, revoked: false },
        );
        inner.index(session_id);
        inner.changed(session_id);
    }

    /// A session ended elsewhere (the identity provider revoked it).
    pub fn forget(&self, session_id: &str) {
        let mut inner = self.lock();
        if let Some(s) = inner.sessions.remove(session_id) {
            for key in std::iter::once(&s.principal).chain(s.origin.as_ref()) {
                if let Some(list) = inner.by_principal.get_mut(key) {
                    list.retain(|x| x != session_id);
                }
            }
            inner.forgotten(session_id);
        }
    }

    /// Re-decides the recent decisions of every live session of
    /// `principal` (and of the agents acting for it) with the policies and
    /// signals of now. Returns the sessions whose access fell, with the
    /// principal each belongs to. A session Tenet decided nothing for (one
    /// it only heard of) is revoked when the change is `severe` (critical
    /// risk, a likely-malicious finding): there is no decision to take again.
    pub fn reevaluate(
        &self,
        principal: &str,
        decisions: &DecisionPoint,
        severe: bool,
    ) -> Vec<(String, String, Verdict)> {
        let mut inner = self.lock();
        let ids = inner.by_principal.get(principal).cloned().unwrap_or_default();
        let mut out = Vec::new();
        for id in ids {
            let Some(session) = inner.sessions.get_mut(&id) else { continue };
            if session.revoked {
                continue;
            }
            if session.recent.is_empty() {
                if severe {
                    session.revoked = true;
                    out.push((id, session.principal.clone(), Verdict::Revoke));
                }
                continue;
            }
            let mut denied = Vec::new();
            let mut still = 0;
            for r in session.recent.iter_mut().filter(|r| r.allowed) {
                match decisions.reevaluate(&r.evaluation) {
                    Ok(d) if d.allowed => still += 1,
                    // A request that can no longer be decided is not access to keep.
                    _ => {
                        r.allowed = false;
                        denied.push(format!(
                            "{} {}:{}",
                            r.evaluation.action.name, r.evaluation.resource.kind, r.evaluation.resource.id
                        ));
                    }
                }
            }
            if denied.is_empty() {
                continue;
            }
            let verdict = if still == 0 {
                session.revoked = true;
                Verdict::Revoke
            } else {
                Verdict::Lower { denied }
            };
            out.push((id, session.principal.clone(), verdict));
        }
        for (id, _, _) in &out {
            inner.changed(id);
        }
        out
    }
}

impl Sessions {
    /// Revokes every live session of `principal` (and of the agents acting
    /// for it), whatever the policies say: a confirmed compromise.
    pub fn revoke_all(&self, principal: &str) -> Vec<(String, String, Verdict)> {
        let mut inner = self.lock();
        let ids = inner.by_principal.get(principal).cloned().unwrap_or_default();
        let mut out = Vec::new();
        for id in ids {
            if let Some(s) = inner.sessions.get_mut(&id)
                && !s.revoked
            {
                s.revoked = true;
                for r in &mut s.recent {
                    r.allowed = false;
                }
                out.push((id, s.principal.clone(), Verdict::Revoke));
            }
        }
        for (id, _, _) in &out {
            inner.changed(id);
        }
        out
    }

    /// The sessions kept in `store` (the most recent [`MAX_SESSIONS`]);
    /// a session whose record cannot be read is left out, and said so.
    pub fn restore(store: &SessionStore) -> Result<Sessions, tenet_store::StoreError> {
        let rows = store.load(MAX_SESSIONS)?;
        let mut inner = Inner::default();
        for row in rows {
            let recent = match recent_from_json(&row.recent) {
                Ok(r) => r,
                Err(why) => {
                    tracing::warn!(session = %row.id, %why, "a kept session is unreadable; it is forgotten");
                    inner.gone.insert(row.id);
                    continue;
                }
            };
            inner.clock = inner.clock.max(row.last_used);
            let session = Session {
                principal: row.principal,
                origin: row.origin,
                recent,
                last: row.last_used,
                revoked: row.revoked,
            };
            inner.sessions.insert(row.id.clone(), session);
            inner.index(&row.id);
        }
        Ok(Sessions { inner: Mutex::new(inner) })
    }

    /// What changed since the last call: sessions to write and ids to remove.
    pub fn take_changes(&self) -> (Vec<StoredSession>, Vec<String>) {
        let mut inner = self.lock();
        let dirty = std::mem::take(&mut inner.dirty);
        let gone = std::mem::take(&mut inner.gone).into_iter().collect();
        let changed = dirty
            .into_iter()
            .filter_map(|id| {
                let s = inner.sessions.get(&id)?;
                Some(StoredSession {
                    principal: s.principal.clone(),
                    origin: s.origin.clone(),
                    recent: recent_to_json(&s.recent),
                    last_used: s.last,
                    revoked: s.revoked,
                    id,
                })
            })
            .collect();
        (changed, gone)
    }

    /// Puts back changes a failed save did not keep, unless newer ones replaced them.
    fn keep_for_later(&self, changed: Vec<StoredSession>, gone: Vec<String>) {
        let mut inner = self.lock();
        for s in changed {
            if !inner.gone.contains(&s.id) {
                inner.dirty.insert(s.id);
            }
        }
        for id in gone {
            if !inner.sessions.contains_key(&id) {
                inner.gone.insert(id);
            }
        }
    }
}

fn recent_to_json(recent: &[Recent]) -> String {
    let list: Vec<Value> =
        recent.iter().map(|r| json!({"request": r.evaluation.to_json(), "allowed": r.allowed})).collect();
    Value::Array(list).to_string()
}

fn recent_from_json(text: &str) -> Result<Vec<Recent>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let list = v.as_array().ok_or("not an array")?;
    list.iter()
        .enumerate()
        .map(|(i, r)| {
            let evaluation =
                tenet_policy::authzen::parse_evaluation(&r["request"]).map_err(|e| format!("decision {i}: {e}"))?;
            let allowed = r["allowed"].as_bool().ok_or_else(|| format!("decision {i}: allowed is not a boolean"))?;
            Ok(Recent { evaluation, allowed })
        })
        .collect()
}

/// Forgets the least recently used tenth of the sessions.
fn evict(inner: &mut Inner) {
    let mut ages: Vec<(u64, String)> = inner.sessions.iter().map(|(id, s)| (s.last, id.clone())).collect();
    ages.sort_unstable();
    for (_, id) in ages.into_iter().take((MAX_SESSIONS / 10).max(1)) {
        if let Some(s) = inner.sessions.remove(&id) {
            for key in std::iter::once(&s.principal).chain(s.origin.as_ref()) {
                if let Some(list) = inner.by_principal.get_mut(key) {
                    list.retain(|x| *x != id);
                    if list.is_empty() {
                        inner.by_principal.remove(key);
                    }
                }
            }
            inner.forgotten(&id);
        }
    }
}

/// How often what changed is written to `sessions.db`.
const SAVE_EVERY: Duration = Duration::from_millis(250);

/// Records the session uses decisions publish, until the decision point is
/// gone, and writes what changed (here and by re-evaluation) to `store`
/// every [`SAVE_EVERY`]; a failed save is tried again with the next.
pub fn follow(
    uses: crossbeam_channel::Receiver<SessionUse>,
    sessions: std::sync::Arc<Sessions>,
    trust: std::sync::Arc<LiveTrust>,
    mut store: SessionStore,
) {
    let save = move |sessions: &Sessions, store: &mut SessionStore| {
        let (changed, gone) = sessions.take_changes();
        if changed.is_empty() && gone.is_empty() {
            return;
        }
        if let Err(e) = store.save(&changed, &gone) {
            tracing::warn!(error = %e, sessions = changed.len(), "live sessions not saved; trying again");
            sessions.keep_for_later(changed, gone);
        }
    };
    let spawned = std::thread::Builder::new().name("tenet-sessions".into()).spawn(move || {
        let mut saved = Instant::now();
        loop {
            match uses.recv_timeout(SAVE_EVERY) {
                Ok(used) => sessions.record(used, &trust),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            }
            if saved.elapsed() >= SAVE_EVERY {
                save(&sessions, &mut store);
                saved = Instant::now();
            }
        }
        save(&sessions, &mut store);
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "sessions are not followed: no thread");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;
    use tenet_policy::signals::Risk;
    use tenet_policy::{PolicyBundle, SourceFile};
    use tenet_server::access::DecisionPoint;

    use super::*;
    use crate::trust::{LiveTrust, TrustSnapshot};

    /// People read anything and write their drafts; nobody writes at high risk; nobody does anything critical.
    const POLICIES: &str = r#"
        permit (principal, action == Action::"read", resource);
        permit (principal, action == Action::"write", resource);
        forbid (principal, action == Action::"write", resource)
          when { context.tenet.risk.available && context.tenet.risk has score && context.tenet.risk.score >= 50 };
        forbid (principal, action, resource)
          when { context.tenet.risk.available && context.tenet.risk has score && context.tenet.risk.score >= 75 };
    "#;

    fn at_risk(score: u8) -> TrustSnapshot {
        let level = if score >= 75 {
            "critical"
        } else if score >= 50 {
            "high"
        } else {
            "low"
        };
        TrustSnapshot::default()
            .with_risk([("user:alice".to_string(), Risk { score, level: level.into() })].into_iter().collect())
    }

    fn used(session: &str, action: &str, allowed: bool) -> SessionUse {
        let e = tenet_policy::authzen::parse_evaluation(&json!({"subject": {"type": "user", "id": "alice"},
            "action": {"name": action}, "resource": {"type": "document", "id": "draft"}, "context": {"session_id": session}}))
        .unwrap();
        SessionUse { session_id: session.into(), evaluation: e, allowed, at: tenet_model::Timestamp::now() }
    }

    fn point(trust: &Arc<LiveTrust>) -> DecisionPoint {
        let bundle = PolicyBundle::load(vec![SourceFile { name: "p.cedar".into(), text: POLICIES.into() }]).unwrap();
        let metrics = Arc::new(tenet_server::metrics::Metrics::new());
        DecisionPoint::new(bundle, trust.clone() as Arc<dyn tenet_policy::TrustSource>, metrics)
    }

    #[test]
    fn a_session_that_loses_part_of_its_access_is_lowered_and_one_that_loses_all_is_revoked() {
        let trust = LiveTrust::new(at_risk(10));
        let decisions = point(&trust);
        let sessions = Sessions::default();
        sessions.record(used("s1", "read", true), &trust);
        sessions.record(used("s1", "write", true), &trust);
        assert!(sessions.reevaluate("user:alice", &decisions, false).is_empty(), "nothing changed, nothing said");

        trust.publish(at_risk(60));
        let lowered = sessions.reevaluate("user:alice", &decisions, false);
        assert_eq!(
            lowered,
            vec![(
                "s1".to_string(),
                "user:alice".to_string(),
                Verdict::Lower { denied: vec!["write document:draft".into()] }
            )],
            "high risk: writing is gone, reading stays: the token's claims change"
        );
        assert!(sessions.reevaluate("user:alice", &decisions, false).is_empty(), "said once");

        trust.publish(at_risk(90));
        let revoked = sessions.reevaluate("user:alice", &decisions, false);
        assert_eq!(revoked, vec![("s1".to_string(), "user:alice".to_string(), Verdict::Revoke)]);
        assert!(
            sessions.reevaluate("user:alice", &decisions, true).is_empty(),
            "a revoked session is not revoked twice"
        );
        sessions.record(used("s1", "read", true), &trust);
        assert_eq!(sessions.len(), 1);
    }

    #[test]
    fn a_session_tenet_only_heard_of_is_revoked_by_a_severe_change_and_forgotten_when_ended_elsewhere() {
        let trust = LiveTrust::new(at_risk(10));
        let decisions = point(&trust);
        let sessions = Sessions::default();
        sessions.learn("idp-1", "user:alice");
        assert!(sessions.reevaluate("user:alice", &decisions, false).is_empty(), "no decision to take again");
        assert_eq!(sessions.reevaluate("user:alice", &decisions, true).len(), 1, "a severe change ends it");
        sessions.learn("idp-2", "user:alice");
        sessions.forget("idp-2");
        assert_eq!(sessions.revoke_all("user:alice").len(), 0, "revoked or forgotten: nothing left");
    }

    /// A restart keeps the sessions: what was recorded, re-evaluated and
    /// forgotten before is what a registry restored from the store holds,
    /// and a trust change after the restart still lowers the session.
    #[test]
    fn sessions_saved_to_the_store_are_restored_and_still_reevaluated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sessions.db");
        let trust = LiveTrust::new(at_risk(10));
        let decisions = point(&trust);
        let sessions = Sessions::default();
        sessions.record(used("s1", "read", true), &trust);
        sessions.record(used("s1", "write", true), &trust);
        sessions.learn("idp-1", "user:alice");
        sessions.learn("idp-2", "user:alice");
        let mut store = SessionStore::open(&path).unwrap();
        let (changed, gone) = sessions.take_changes();
        assert_eq!((changed.len(), gone.len()), (3, 0));
        store.save(&changed, &gone).unwrap();
        sessions.forget("idp-2");
        assert_eq!(sessions.reevaluate("user:alice", &decisions, true).len(), 1, "idp-1, with no decision, ends");
        let (changed, gone) = sessions.take_changes();
        assert_eq!((changed.len(), gone.clone()), (1, vec!["idp-2".to_string()]));
        store.save(&changed, &gone).unwrap();
        assert_eq!(sessions.take_changes(), (vec![], vec![]), "nothing new");
        drop(store);

        let restored = Sessions::restore(&SessionStore::open(&path).unwrap()).unwrap();
        assert_eq!(restored.len(), 2, "s1 and idp-1; idp-2 was forgotten");
        trust.publish(at_risk(60));
        assert_eq!(
            restored.reevaluate("user:alice", &decisions, true),
            vec![(
                "s1".to_string(),
                "user:alice".to_string(),
                Verdict::Lower { denied: vec!["write document:draft".into()] }
            )],
            "s1's decisions came back and are taken again; idp-1 stays revoked"
        );
    }
}
