//! Trace linking: completing an agent span's actor chain across deliveries.
//!
//! Within one OTLP export the adapter walks a span's ancestors to find the
//! agent and the person it acts for. A live collector does not always send
//! a trace whole: a span can arrive in one export and its parent in the
//! next (children end first, and are often exported first). The linker
//! remembers, per trace and span, who acted (the actor and its chain) and
//! joins a span to its parent whichever arrives first: a parent seen earlier
//! completes a child's chain before it is stored; a parent seen later
//! completes the chains of children already stored (relinked).
//!
//! Chains are completed, never invented: only what the span's own ancestors
//! in the same trace say is appended, and only when the span's chain names
//! no person yet.

use std::collections::{HashMap, VecDeque};

use tenet_model::{Event, Principal, PrincipalKind};

/// Spans remembered at most (oldest forgotten first): bounded memory
/// however many traces pass.
pub const REMEMBERED: usize = 65_536;

type SpanKey = (String, String);

#[derive(Default)]
pub struct TraceLinker {
    /// (trace, span) → the span's actor followed by its chain.
    who: HashMap<SpanKey, Vec<Principal>>,
    /// (trace, span) → its parent span, to walk further up.
    parents: HashMap<SpanKey, String>,
    /// (trace, parent span) → children stored before their parent, waiting.
    orphans: HashMap<SpanKey, Vec<Event>>,
    /// Insertion order of `who` and `orphans` keys, for forgetting.
    order: VecDeque<(SpanKey, bool)>,
}

fn names_a_person(e: &Event) -> bool {
    e.principals().any(|p| p.kind == PrincipalKind::Human)
}

/// Appends the agents and the person among `ancestors` to `e`'s chain (as
/// the adapter links a span within one export: nearest tool, agents, the
/// person), skipping what it already names.
fn complete(e: &mut Event, ancestors: &[Principal]) -> bool {
    let mut changed = false;
    for p in ancestors.iter().filter(|p| matches!(p.kind, PrincipalKind::Agent | PrincipalKind::Human)) {
        if e.actor.id != p.id && !e.chain.iter().any(|c| c.id == p.id) {
            e.chain.push(p.clone());
            changed = true;
        }
    }
    changed
}

impl TraceLinker {
    fn remember(&mut self, key: SpanKey, orphan: bool) {
        self.order.push_back((key, orphan));
        while self.order.len() > REMEMBERED {
            let Some((old, was_orphan)) = self.order.pop_front() else { break };
            if was_orphan {
                self.orphans.remove(&old);
            } else {
                self.who.remove(&old);
                self.parents.remove(&old);
            }
        }
    }

    /// Completes the chains of `batch`'s trace events from parents seen
    /// before (or in this batch), and returns the events stored earlier
    /// whose chains this batch's spans complete: to be relinked.
    pub fn link_batch(&mut self, batch: &mut [Event]) -> Vec<crate::link::Completed> {
        // Parents within the batch first, so order inside it does not matter.
        for e in batch.iter() {
            if let Some((trace, Some(span))) = e.trace.as_ref().map(|t| (&t.trace_id, &t.span_id)) {
                let who: Vec<Principal> = e.principals().cloned().collect();
                if let Some(parent) = e.trace.as_ref().and_then(|t| t.parent_span_id.clone()) {
                    self.parents.insert((trace.clone(), span.clone()), parent);
                }
                if self.who.insert((trace.clone(), span.clone()), who).is_none() {
                    self.remember((trace.clone(), span.clone()), false);
                }
            }
        }
        // Children: complete from the nearest remembered ancestor that names
        // a person (a tool's parent may be an agent span whose own parent
        // carries the person).
        for e in batch.iter_mut() {
            if names_a_person(e) {
                continue;
            }
            let Some(t) = e.trace.clone() else { continue };
            let Some(mut parent) = t.parent_span_id.clone() else { continue };
            let mut hops = 0;
            let mut linked = false;
            while hops < 16 {
                hops += 1;
                let key = (t.trace_id.clone(), parent.clone());
                let Some(ancestors) = self.who.get(&key).cloned() else { break };
                complete(e, &ancestors);
                if ancestors.iter().any(|p| p.kind == PrincipalKind::Human) {
                    linked = true;
                    break;
                }
                // Up one more: the parent's own parent, if it was remembered with one.
                match self.parent_of(&key) {
                    Some(p) => parent = p,
                    None => break,
                }
            }
            if let (true, Some(span)) = (linked, t.span_id.as_ref()) {
                self.who.insert((t.trace_id.clone(), span.clone()), e.principals().cloned().collect());
            }
            if !linked {
                let key = (t.trace_id.clone(), t.parent_span_id.clone().unwrap_or_default());
                let new = !self.orphans.contains_key(&key);
                // Relinking needs who and when, not the record: the raw
                // bytes would keep the whole delivery's buffer alive.
                let mut kept = e.clone();
                kept.raw = tenet_model::RawRecord::default();
                self.orphans.entry(key.clone()).or_default().push(kept);
                if new {
                    self.remember(key, true);
                }
            }
        }
        // Children stored earlier whose parent is in this batch.
        let mut relink = Vec::new();
        for e in batch.iter() {
            let Some((trace, Some(span))) = e.trace.as_ref().map(|t| (t.trace_id.clone(), t.span_id.clone())) else {
                continue;
            };
            let Some(children) = self.orphans.remove(&(trace, span)) else { continue };
            let ancestors: Vec<Principal> = e.principals().cloned().collect();
            for mut child in children {
                if batch.iter().any(|b| b.id == child.id && b.time == child.time) {
                    continue; // completed above, before storing
                }
                let known = child.principals().count();
                if complete(&mut child, &ancestors) {
                    relink.push(crate::link::Completed { event: child, known });
                }
            }
        }
        relink
    }

    /// The parent span of a remembered span.
    fn parent_of(&self, key: &SpanKey) -> Option<String> {
        self.parents.get(key).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tenet_model::{Action, Source, Timestamp, TraceLink};

    fn span(id: &str, parent: Option<&str>, actor: Principal, chain: Vec<Principal>) -> Event {
        let mut e = Event::api_call(
            id,
            Timestamp::from_unix_seconds(1),
            actor,
            Action::new("gen_ai.tool", "search"),
            Source { format: "otlp".into(), system: "support".into(), tenant: None },
        );
        e.chain = chain;
        e.trace = Some(TraceLink {
            trace_id: "t1".into(),
            span_id: Some(id.into()),
            parent_span_id: parent.map(str::to_string),
        });
        e
    }

    fn agent() -> Principal {
        Principal::new("agent:agt-1", PrincipalKind::Agent)
    }

    fn alice() -> Principal {
        Principal::new("user:alice@example.com", PrincipalKind::Human)
    }

    fn tool() -> Principal {
        Principal::new("tool:search", PrincipalKind::Workload)
    }

    #[test]
    fn a_parent_seen_first_completes_a_child_before_it_is_stored() {
        let mut l = TraceLinker::default();
        let mut first = vec![span("root", None, agent(), vec![alice()])];
        assert!(l.link_batch(&mut first).is_empty());
        let mut second = vec![span("c1", Some("root"), tool(), vec![])];
        assert!(l.link_batch(&mut second).is_empty());
        let chain: Vec<&str> = second[0].chain.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(chain, vec!["agent:agt-1", "user:alice@example.com"]);
    }

    #[test]
    fn a_parent_seen_later_completes_the_stored_child_for_relinking() {
        let mut l = TraceLinker::default();
        let mut first = vec![span("c1", Some("root"), tool(), vec![])];
        assert!(l.link_batch(&mut first).is_empty());
        assert!(first[0].chain.is_empty(), "nothing invented meanwhile");
        let mut second = vec![span("root", None, agent(), vec![alice()])];
        let relink = l.link_batch(&mut second);
        assert_eq!(relink.len(), 1);
        let chain: Vec<&str> = relink[0].event.chain.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(chain, vec!["agent:agt-1", "user:alice@example.com"]);
        assert_eq!(relink[0].known, 1, "stored naming the tool's actor alone");
    }

    #[test]
    fn a_tool_under_an_agent_span_reaches_the_person_two_spans_up() {
        let mut l = TraceLinker::default();
        let mut b = vec![
            span("root", None, Principal::new("service:support", PrincipalKind::Workload), vec![alice()]),
            span("agent", Some("root"), agent(), vec![]),
        ];
        l.link_batch(&mut b);
        let mut later = vec![span("tool", Some("agent"), tool(), vec![])];
        l.link_batch(&mut later);
        let chain: Vec<&str> = later[0].chain.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(chain, vec!["agent:agt-1", "user:alice@example.com"], "agents and the person, nothing else");
    }

    #[test]
    fn a_span_that_already_names_its_person_is_left_alone_and_memory_is_bounded() {
        let mut l = TraceLinker::default();
        let mut b = vec![span("root", None, agent(), vec![alice()]), span("c1", Some("root"), agent(), vec![alice()])];
        l.link_batch(&mut b);
        assert_eq!(b[1].chain.len(), 1);
        for i in 0..(REMEMBERED + 10) {
            let mut one = vec![span(&format!("s{i}"), None, agent(), vec![alice()])];
            l.link_batch(&mut one);
        }
        assert!(l.who.len() <= REMEMBERED && l.order.len() <= REMEMBERED);
    }
}
