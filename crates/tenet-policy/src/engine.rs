//! Deciding: an AuthZEN evaluation as a Cedar request over the entities it
//! touches, with the live trust signals in the context; and searching, by
//! deciding for every known candidate.

use std::collections::{HashMap, HashSet, VecDeque};

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, EntityUid, PolicySet, Request, RestrictedExpression,
};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::authzen::{self, Evaluation, Search, SearchTarget};
use crate::bundle::PolicyBundle;
use crate::signals::{TrustSignals, TrustSource};
use crate::values::{self, ValueError};

/// A decision and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub allowed: bool,
    /// The determining policies: the permits that allowed it, or the forbids that denied it.
    pub policies: Vec<String>,
    /// Policies that failed to evaluate (skipped, as Cedar does).
    pub errors: Vec<String>,
    #[serde(skip)]
    pub signals: TrustSignals,
}

/// A request Cedar cannot be asked: a bad type name, a value Cedar has no type for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    #[error(transparent)]
    Value(#[from] ValueError),
    #[error("{0}")]
    Cedar(String),
    #[error("page.token: {0}")]
    Token(String),
}

/// Distinct signal sets whose contexts are kept (one per principal at most, in practice).
const CONTEXTS_KEPT: usize = 16_384;

/// Request entity sets kept per bundle, and the largest set kept: memory
/// stays bounded whatever the directory's entities are like.
const ASSEMBLED_KEPT: usize = 4096;
const ASSEMBLED_MAX_ENTITIES: usize = 32;

/// The gathered entities stop here: a request touching more is an attack or a bug.
const MAX_REQUEST_ENTITIES: usize = 10_000;

impl PolicyBundle {
    /// Decides one evaluation with the signals `trust` has for it now.
    pub fn decide(&self, e: &Evaluation, trust: &dyn TrustSource) -> Result<Decision, DecideError> {
        let signals = trust.signals(&e.subject, &e.action, &e.resource);
        self.decide_with(e, trust, signals)
    }

    /// As [`Self::decide`], with the signals given (already computed, or fixed by a test).
    pub fn decide_with(
        &self,
        e: &Evaluation,
        trust: &dyn TrustSource,
        signals: TrustSignals,
    ) -> Result<Decision, DecideError> {
        let principal = values::uid(&e.subject.kind, &e.subject.id, "subject.type")?;
        let resource = values::uid(&e.resource.kind, &e.resource.id, "resource.type")?;
        let action = values::uid("Action", &e.action.name, "action.name")?;
        let entities = self.request_entities(e, trust, [&principal, &action, &resource])?;
        let context = self.context(e, &signals)?;
        let policies = self.policies_for(&action);
        let request = Request::new(principal, action, resource, context, None)
            .map_err(|err| DecideError::Cedar(err.to_string()))?;
        let response = Authorizer::new().is_authorized(&request, &policies, &entities);
        let allowed = response.decision() == CedarDecision::Allow;
        // The id as written (Display would escape it, through the formatter).
        let mut policies: Vec<String> =
            response.diagnostics().reason().map(|p| AsRef::<str>::as_ref(p).to_string()).collect();
        policies.sort();
        let errors: Vec<String> = response.diagnostics().errors().map(|err| err.to_string()).collect();
        Ok(Decision { allowed, policies, errors, signals })
    }

    /// The request's own entities (graph data, then `entities.json`, then
    /// the request's properties, each overriding the last) and every entity
    /// of the policy directory they reach through attributes (and through
    /// parents, where a policy reads a literal entity's attributes); `None`
    /// when the request brings nothing of its own.
    fn request_entities(
        &self,
        e: &Evaluation,
        trust: &dyn TrustSource,
        roots: [&EntityUid; 3],
    ) -> Result<std::sync::Arc<Entities>, DecideError> {
        use cedar_policy_core::ast::{Entity as CoreEntity, PartialValue};
        // Built on Cedar's core entity: the directory's attributes are
        // already evaluated values, and only what the request or the graph
        // adds is evaluated here (rebuilding through the public `Entity`
        // re-evaluated every attribute, a tenth of a decision).
        let extensions = cedar_policy_core::extensions::Extensions::all_available();
        let evaluator = cedar_policy_core::evaluator::RestrictedEvaluator::new(extensions);
        let value = |x: &RestrictedExpression, path: &str, name: &str| -> Result<PartialValue, DecideError> {
            evaluator
                .partial_interpret(x.as_ref().as_borrowed())
                .map_err(|err| DecideError::Cedar(format!("{path}.{name}: {err}")))
        };
        let mut built: HashMap<EntityUid, CoreEntity> = HashMap::with_capacity(4);
        let own = [
            (roots[0], Some((&e.subject.kind, &e.subject.id)), &e.subject.properties, "subject.properties"),
            (roots[1], None, &e.action.properties, "action.properties"),
            (roots[2], Some((&e.resource.kind, &e.resource.id)), &e.resource.properties, "resource.properties"),
        ];
        let mut extra_parents: Vec<EntityUid> = Vec::new();
        for (uid, key, props, path) in own {
            let known = key.and_then(|(k, id)| trust.entity(k, id));
            if known.is_none() && props.is_empty() {
                continue; // the directory's entity (or none) as it is
            }
            // The directory's entity carries its closed ancestor set; the
            // graph's parents join it (see below).
            let (mut attrs, indirect, mut parents, tags) = match self.entities.get(uid) {
                Some(base) => {
                    let (_, attrs, indirect, parents, tags) = base.as_ref().clone().into_inner();
                    (attrs, indirect, parents, tags)
                }
                None => Default::default(),
            };
            if let Some(k) = &known {
                for (name, v) in &k.attrs {
                    if !attrs.contains_key(name.as_str()) {
                        attrs.insert(name.into(), value(&v.to_cedar(), "trust graph", name)?);
                    }
                }
                for (t, id) in &k.parents {
                    let p = values::uid(t, id, "trust graph parent")?;
                    extra_parents.push(p.clone());
                    parents.insert(p.into());
                }
            }
            for (name, v) in props {
                match values::field_to_cedar(v, path, name)? {
                    Some(x) => {
                        attrs.insert(name.into(), value(&x, path, name)?);
                    }
                    None => {
                        attrs.remove(name.as_str());
                    }
                }
            }
            let entity = CoreEntity::new_with_attr_partial_value(uid.as_ref().clone(), attrs, indirect, parents, tags);
            built.insert(uid.clone(), entity);
        }
        // With nothing from the request or the graph, the set depends on the
        // three ids and this (immutable) bundle alone: assembled once.
        let shared = built.is_empty().then(|| [roots[0].clone(), roots[1].clone(), roots[2].clone()]);
        if let Some(key) = &shared
            && let Some(set) = self.assembled.lock().unwrap_or_else(|p| p.into_inner()).get(key)
        {
            return Ok(set.clone());
        }
        // Everything reachable from the request's entities, from the directory's data.
        let mut seen: HashSet<EntityUid> = HashSet::new();
        let mut queue: VecDeque<EntityUid> = roots.iter().map(|u| (*u).clone()).collect();
        if self.literal_attrs {
            queue.extend(extra_parents);
        }
        let mut out: Vec<cedar_policy_core::ast::Entity> = Vec::with_capacity(8);
        while let Some(uid) = queue.pop_front() {
            if !seen.insert(uid.clone()) || seen.len() > MAX_REQUEST_ENTITIES {
                continue;
            }
            // `in` reads an entity's own (closed) ancestor set; the ancestor
            // entities themselves are needed only where a policy reads one's
            // attributes by its literal name.
            if self.literal_attrs
                && let Some(ancestors) = self.entities.ancestors(&uid)
            {
                queue.extend(ancestors.cloned());
            }
            if let Some(r) = self.refs.get(&uid) {
                queue.extend(r.iter().cloned());
            }
            if let Some(b) = built.remove(&uid) {
                if self.literal_attrs {
                    queue.extend(b.parents().map(|p| EntityUid::from(p.clone())));
                }
                out.push(b);
            } else if let Some(base) = self.entities.get(&uid) {
                out.push(base.as_ref().clone());
            }
        }
        // The directory's entities carry their closed ancestor sets, and the
        // request's own were given all of theirs: computing the closure again
        // (Cedar's `from_entities` always does) would be a third of the decision.
        let small = out.len() <= ASSEMBLED_MAX_ENTITIES;
        let set = cedar_policy_core::entities::Entities::from_entities(
            out,
            None::<&cedar_policy_core::entities::NoEntitiesSchema>,
            cedar_policy_core::entities::TCComputation::AssumeAlreadyComputed,
            cedar_policy_core::extensions::Extensions::all_available(),
        )
        .map(|e| std::sync::Arc::new(Entities::from(e)))
        .map_err(|err| DecideError::Cedar(err.to_string()))?;
        if let Some(key) = shared
            && small
        {
            let mut cache = self.assembled.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() >= ASSEMBLED_KEPT {
                cache.clear();
            }
            cache.insert(key, set.clone());
        }
        Ok(set)
    }

    /// The policies whose action scope can admit `action` (by equality, or
    /// membership through the action's ancestors in the directory's
    /// entities, as Cedar would judge it): the others cannot apply, and
    /// Cedar stops at a failed scope before any condition could err. Built
    /// once per action name.
    fn policies_for(&self, action: &EntityUid) -> std::sync::Arc<PolicySet> {
        let key = action.id().unescaped().to_string();
        if let Some(set) = self.by_action.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return set.clone();
        }
        let ancestors: HashSet<&EntityUid> = self.entities.ancestors(action).into_iter().flatten().collect();
        let admits = |p: &cedar_policy::Policy| match p.action_constraint() {
            cedar_policy::ActionConstraint::Any => true,
            cedar_policy::ActionConstraint::Eq(a) => &a == action,
            cedar_policy::ActionConstraint::In(list) => list.iter().any(|a| a == action || ancestors.contains(a)),
        };
        let set = std::sync::Arc::new(
            PolicySet::from_policies(self.policies.policies().filter(|p| admits(p)).cloned())
                .unwrap_or_else(|_| self.policies.clone()),
        );
        let mut cache = self.by_action.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CONTEXTS_KEPT {
            cache.clear();
        }
        cache.insert(key, set.clone());
        set
    }

    /// The request's Cedar context: the caller's attributes and Tenet's
    /// `tenet` record. Without caller attributes the context depends on the
    /// signals alone and is built once per distinct set of signals.
    fn context(&self, e: &Evaluation, signals: &TrustSignals) -> Result<Context, DecideError> {
        let own = e.context.iter().any(|(k, _)| k != "tenet");
        if !own && let Some(c) = self.contexts.lock().unwrap_or_else(|p| p.into_inner()).get(signals) {
            return Ok(c.clone());
        }
        let mut fields: Vec<(String, RestrictedExpression)> = Vec::with_capacity(e.context.len() + 1);
        for (k, v) in &e.context {
            // Signals are Tenet's to state: a caller cannot supply its own.
            if k == "tenet" {
                continue;
            }
            if let Some(x) = values::field_to_cedar(v, "context", k)? {
                fields.push((k.clone(), x));
            }
        }
        fields.push(("tenet".to_string(), signals.to_cedar()));
        let context = Context::from_pairs(fields).map_err(|err| DecideError::Cedar(format!("context: {err}")))?;
        if !own {
            let mut cache = self.contexts.lock().unwrap_or_else(|p| p.into_inner());
            if cache.len() >= CONTEXTS_KEPT {
                cache.clear();
            }
            cache.insert(signals.clone(), context.clone());
        }
        Ok(context)
    }

    /// The entities of the searched type this decision point knows, and of
    /// those the ones permitted, sorted by id, one page of them.
    pub fn search(&self, s: &Search, trust: &dyn TrustSource) -> Result<SearchPage, DecideError> {
        let fingerprint = fingerprint(s);
        let offset = match &s.page.token {
            None => 0,
            Some(t) => parse_token(t, &fingerprint)?,
        };
        let mut candidates: Vec<String> = match s.target {
            SearchTarget::Action => self.actions.clone(),
            SearchTarget::Subject => self.candidates_of(&s.subject.kind, trust),
            SearchTarget::Resource => self.candidates_of(&s.resource.kind, trust),
        };
        candidates.sort();
        candidates.dedup();
        let input = |p: &authzen::EntityPattern, id: &str| authzen::Entity {
            kind: p.kind.clone(),
            id: id.to_string(),
            properties: p.properties.clone(),
        };
        let mut permitted = Vec::new();
        for c in candidates {
            let e = Evaluation {
                subject: input(
                    &s.subject,
                    if s.target == SearchTarget::Subject { &c } else { s.subject.id.as_deref().unwrap_or("") },
                ),
                action: match (&s.action, s.target) {
                    (_, SearchTarget::Action) | (None, _) => {
                        authzen::Action { name: c.clone(), properties: Default::default() }
                    }
                    (Some(a), _) => a.clone(),
                },
                resource: input(
                    &s.resource,
                    if s.target == SearchTarget::Resource { &c } else { s.resource.id.as_deref().unwrap_or("") },
                ),
                context: s.context.clone(),
            };
            if self.decide(&e, trust)?.allowed {
                permitted.push(c);
            }
        }
        let total = permitted.len();
        let start = offset.min(total);
        let end = s.page.limit.map_or(total, |l| start.saturating_add(l).min(total));
        let next_token = if end < total { format!("{end}.{fingerprint}") } else { String::new() };
        let kind = match s.target {
            SearchTarget::Subject => s.subject.kind.clone(),
            SearchTarget::Resource => s.resource.kind.clone(),
            SearchTarget::Action => String::new(),
        };
        Ok(SearchPage { kind, ids: permitted[start..end].to_vec(), next_token, total })
    }

    fn candidates_of(&self, kind: &str, trust: &dyn TrustSource) -> Vec<String> {
        let mut out = self.by_type.get(kind).cloned().unwrap_or_default();
        out.extend(trust.candidates(kind));
        out
    }
}

/// One page of search results.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage {
    /// The type of the results (empty for actions, which are named).
    pub kind: String,
    pub ids: Vec<String>,
    /// Empty when this is the last page.
    pub next_token: String,
    pub total: usize,
}

/// Ties a page token to the request it continues: a token from another
/// query (or an altered one) is refused, as the spec asks.
fn fingerprint(s: &Search) -> String {
    let mut h = Sha256::new();
    h.update(s.target.as_str());
    for p in [&s.subject, &s.resource] {
        h.update([0]);
        h.update(&p.kind);
        h.update([0]);
        h.update(p.id.as_deref().unwrap_or(""));
        h.update(serde_json::to_vec(&p.properties).unwrap_or_default());
    }
    if let Some(a) = &s.action {
        h.update(&a.name);
        h.update(serde_json::to_vec(&a.properties).unwrap_or_default());
    }
    h.update(serde_json::to_vec(&s.context).unwrap_or_default());
    h.update(s.page.limit.unwrap_or(usize::MAX).to_le_bytes());
    h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

fn parse_token(token: &str, fingerprint: &str) -> Result<usize, DecideError> {
    let (offset, fp) =
        token.split_once('.').ok_or_else(|| DecideError::Token("not a token this server issued".into()))?;
    if fp != fingerprint {
        return Err(DecideError::Token(
            "the token belongs to a different query: every field but the token must stay the same".into(),
        ));
    }
    offset.parse().map_err(|_| DecideError::Token("not a token this server issued".into()))
}

impl Decision {
    /// Why, in one sentence (built on demand: most decisions are never read).
    pub fn reason(&self) -> String {
        let list = |p: &[String]| match p {
            [one] => format!("policy {one}"),
            many => format!("policies {}", many.join(", ")),
        };
        let mut r = match (self.allowed, self.policies.is_empty()) {
            (true, _) => format!("Permitted by {}", list(&self.policies)),
            (false, false) => format!("Denied by forbid {}", list(&self.policies)),
            (false, true) => "Denied: no permit policy applies (default deny)".to_string(),
        };
        if !self.errors.is_empty() {
            r.push_str(&format!("; {} policy evaluation error(s), those policies skipped", self.errors.len()));
        }
        r.push('.');
        r
    }
}
