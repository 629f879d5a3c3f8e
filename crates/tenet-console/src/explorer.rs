//! The trust graph explorer: a principal and what it can reach, or a
//! resource and who can reach it, as of any moment, with the reason on
//! every edge, conditional edges marked, and what changed since another
//! moment highlighted. Every view is a URL (`/graph?focus=…&at=…&since=…`),
//! so drilling in is following a link and the browser's back and forward
//! walk the views.

use std::collections::{BTreeMap, HashMap, HashSet};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use maud::{Markup, html};
use tenet_graph::graph::Payload;
use tenet_graph::intern::NONE;
use tenet_graph::{EdgeKind, OPEN, TrustGraph};
use tenet_model::{NodeKind, Timestamp};

use crate::drawing;
use crate::page::{self, PER_PAGE};
use crate::{Console, Params};

/// More leaves than this of one kind hanging off one node are drawn as one
/// node with their count (the table still lists each).
const FAN: usize = 6;
/// Grants of one identity beyond this are drawn per service.
const GRANTS_DRAWN: usize = 4;
/// Nodes further than this many hops from the focus are drawn as one node
/// per nearer node they hang from, with their count: drill in to see them.
const DEPTH_DRAWN: usize = 2;
/// At most about this many nodes are drawn: beyond, nearer nodes are grouped too.
const MAX_DRAWN: usize = 60;
/// Then, of each kind of the focus's neighbours, this many are drawn (those
/// reaching most), the rest counted in one node.
const KEPT_NEXT: usize = 12;
/// Labels are cut to this many characters in the drawing (whole on hover).
const LABEL: usize = 44;

/// What a person asked to see.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ask {
    pub focus: String,
    /// Seconds since the epoch; the graph's latest moment when absent.
    pub at: Option<i64>,
    /// The earlier moment to compare with, if any.
    pub since: Option<i64>,
    /// For a resource: the action asked about (`s3:GetObject`).
    pub action: Option<String>,
    pub page: usize,
}

impl Ask {
    pub(crate) fn from_params(params: &[(String, String)]) -> Ask {
        let get = |k: &str| params.iter().find(|(n, v)| n == k && !v.trim().is_empty()).map(|(_, v)| v.trim());
        Ask {
            focus: get("focus").unwrap_or_default().to_string(),
            at: get("at").and_then(parse_moment),
            since: get("since").and_then(parse_moment),
            action: get("action").map(str::to_string),
            page: page::page_number(params),
        }
    }

    /// The URL of this view with some parameters changed.
    fn url(&self, focus: &str, at: Option<i64>, since: Option<i64>, action: Option<&str>) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("focus", focus);
        if let Some(a) = at {
            q.append_pair("at", &a.to_string());
        }
        if let Some(s) = since {
            q.append_pair("since", &s.to_string());
        }
        if let Some(a) = action {
            q.append_pair("action", a);
        }
        format!("/graph?{}", q.finish())
    }
}

/// Seconds since the epoch, or an RFC 3339 time.
fn parse_moment(s: &str) -> Option<i64> {
    s.parse::<i64>().ok().or_else(|| Timestamp::parse_rfc3339(s).ok().map(|t| t.unix_seconds()))
}

/// One edge of an answer, by the names of its ends.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Link {
    pub from: String,
    pub to: String,
    /// membership, assumption, grant, delegation…
    pub edge: String,
    pub reason: String,
    pub conditional: bool,
}

impl Link {
    /// A hop of a reach or who-can path, with its reason in words.
    fn of_hop(hop: &tenet_graph::Hop<'_>) -> Link {
        Link {
            from: hop.from.into(),
            to: hop.to.into(),
            edge: hop.edge().into(),
            reason: hop.reason().to_string(),
            conditional: hop.conditional,
        }
    }

    fn key(&self) -> String {
        format!("{}|{}|{}", self.from, self.edge, self.to)
    }
}

/// How an edge stands between the two moments compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Standing {
    Added,
    Removed,
    Held,
}

impl Standing {
    fn as_str(self) -> &'static str {
        match self {
            Standing::Added => "added",
            Standing::Removed => "removed",
            Standing::Held => "held",
        }
    }
}

/// The answer at one moment.
#[derive(Debug, Default)]
pub(crate) struct Answer {
    pub links: Vec<Link>,
    /// Each node's kind, as the graph knows it.
    pub kinds: HashMap<String, &'static str>,
    /// What the question was, in words (`what alice can reach`).
    pub question: String,
    /// Actions seen on a resource, when no action was given.
    pub actions_seen: Vec<(String, u64)>,
    /// The names the inventory gives nodes (a group's or a person's name).
    pub names: HashMap<String, String>,
}

impl Answer {
    /// What people call `id` as of `view`.
    fn display_of(&self, view: &tenet_graph::View<'_>, id: &str) -> String {
        view.id(id).and_then(|i| view.display_name(i)).map_or_else(|| page::display_name(id), str::to_string)
    }

    /// What people call a node: the inventory's name, else one derived from its id.
    pub(crate) fn display(&self, id: &str) -> String {
        self.names.get(id).cloned().unwrap_or_else(|| page::display_name(id))
    }
}

/// The span of the graph's history: its first and last facts (nanoseconds).
pub(crate) fn span(graph: &TrustGraph) -> Option<(i64, i64)> {
    let (mut lo, mut hi) = (i64::MAX, i64::MIN);
    for e in graph.edges() {
        for v in e.versions() {
            if v.from > 0 {
                lo = lo.min(v.from);
                hi = hi.max(v.from);
            }
            if v.to != OPEN {
                hi = hi.max(v.to);
            }
        }
    }
    // Observed use runs to the newest event: the graph's "now".
    for u in graph.uses() {
        hi = hi.max(u.last);
    }
    (lo <= hi).then_some((lo, hi))
}

/// What the graph says about `focus` at `t` (nanoseconds).
pub(crate) fn answer(graph: &TrustGraph, focus: &str, t: i64, action: Option<&str>) -> Answer {
    let view = graph.view(t);
    let mut out = Answer::default();
    let kind_of = |out: &mut Answer, name: &str| {
        if !out.kinds.contains_key(name) {
            let id = view.id(name);
            out.kinds.insert(name.to_string(), id.map_or("resource", |id| kind_class(view.kind(id))));
            if let Some(n) = id.and_then(|id| view.display_name(id)) {
                out.names.insert(name.to_string(), n.to_string());
            }
        }
    };
    let id = graph.id(focus);
    let principal = id.is_some_and(|i| matches!(view.kind(i), NodeKind::Actor(_)));
    // The focus's own facts: memberships, delegations, ownership, aliases.
    if let Some(id) = id {
        let mine: HashSet<u32> = view.aliases(id).into_iter().collect();
        for e in graph.edges() {
            let k = e.key;
            if !(mine.contains(&k.a) || mine.contains(&k.b)) || matches!(k.kind, EdgeKind::Node | EdgeKind::Policy) {
                continue;
            }
            let Some(v) = e.at(t) else { continue };
            let to = if k.b != NONE {
                k.b
            } else {
                match graph.payload(v.payload) {
                    Payload::Ref(r) => *r,
                    _ => continue,
                }
            };
            let (a, b) = (graph.name(k.a), graph.name(to));
            let mut reason = fact_sentence(k.kind, a, b, graph.payload(v.payload));
            let by = graph.provenance(v.provenance);
            if !by.is_empty() {
                reason.push_str(&format!(" (declared by {by})"));
            }
            out.links.push(Link {
                from: a.into(),
                to: b.into(),
                edge: k.kind.as_str().into(),
                reason,
                conditional: false,
            });
        }
    }
    if principal {
        out.question = format!("what {} can reach", out.display_of(&view, focus));
        if let Some(reach) = view.reach(focus) {
            for r in &reach.identities {
                for hop in &r.via {
                    out.links.push(Link::of_hop(hop));
                }
                // Grants: each drawn to what it covers; many are drawn per service.
                let many = r.grants.len() > GRANTS_DRAWN;
                let mut per_service: BTreeMap<String, Vec<String>> = BTreeMap::new();
                for g in &r.grants {
                    let what = format!("{} on {}", g.actions(), g.resources());
                    let reason = format!(
                        "{}: Allow {what}{}",
                        g.source(),
                        if g.conditional() { " when its conditions hold" } else { "" }
                    );
                    let holder = g.group.unwrap_or(r.identity);
                    if many {
                        let service =
                            g.actions().split(':').next().unwrap_or("*").trim_start_matches(['[', '"']).to_string();
                        per_service.entry(service).or_default().push(reason);
                    } else {
                        out.kinds.insert(what.clone(), "grant");
                        out.links.push(Link {
                            from: holder.into(),
                            to: what,
                            edge: "grant".into(),
                            reason,
                            conditional: g.conditional(),
                        });
                    }
                }
                for (service, reasons) in per_service {
                    let node = format!("{service}: {} grants of {}", reasons.len(), page::display_name(r.identity));
                    out.kinds.insert(node.clone(), "group-of");
                    out.links.push(Link {
                        from: r.identity.into(),
                        to: node,
                        edge: "grant".into(),
                        reason: reasons.join("; "),
                        conditional: false,
                    });
                }
            }
        }
    } else if let Some(action) = action {
        out.question = format!("who can {action} on {}", out.display_of(&view, focus));
        for p in view.who_can(action, focus) {
            for path in p.paths.iter() {
                for hop in path {
                    out.links.push(Link::of_hop(hop));
                }
                if let Some(last) = path.last() {
                    out.links.push(Link {
                        from: last.to.into(),
                        to: focus.into(),
                        edge: "allows".into(),
                        reason: format!("{} allows {action} on {focus}", last.to),
                        conditional: p.conditional,
                    });
                }
            }
        }
    } else {
        out.question = format!("what {} is linked to", out.display_of(&view, focus));
    }
    if !principal {
        // What was seen done to it, to choose an action from.
        let mut seen: HashMap<&str, u64> = HashMap::new();
        if let Some(rid) = id {
            for u in graph.uses().iter().filter(|u| u.resource == rid && u.first <= t) {
                *seen.entry(graph.name(u.action)).or_default() += u.count;
            }
        }
        let mut seen: Vec<(String, u64)> = seen.into_iter().map(|(a, n)| (a.to_string(), n)).collect();
        seen.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out.actions_seen = seen;
    }
    out.links.sort();
    out.links.dedup_by(|a, b| a.key() == b.key());
    let names: Vec<String> = out.links.iter().flat_map(|l| [l.from.clone(), l.to.clone()]).collect();
    for n in names {
        kind_of(&mut out, &n);
    }
    kind_of(&mut out, focus);
    out
}

fn kind_class(k: NodeKind) -> &'static str {
    match k {
        NodeKind::Actor(p) => p.as_str(),
        NodeKind::Group => "group",
        NodeKind::Session => "session",
        NodeKind::Policy => "policy",
        NodeKind::Tool => "tool",
        NodeKind::Resource => "resource",
    }
}

/// Why a fact of the inventory holds, in words.
fn fact_sentence(kind: EdgeKind, a: &str, b: &str, payload: &Payload) -> String {
    match kind {
        EdgeKind::Member => format!("{a} is a member of {b}"),
        EdgeKind::Attached => format!("policy {b} is attached to {a}"),
        EdgeKind::Boundary => format!("{b} is the permissions boundary of {a}"),
        EdgeKind::Trust => format!("the trust policy of {a} names {b}"),
        EdgeKind::RbacBinding => format!("{a} is bound to {b}"),
        EdgeKind::ActsFor => match payload {
            Payload::Delegation { scope, expires } => {
                let scope = if scope.is_empty() { "any scope".to_string() } else { scope.join(", ") };
                let until = expires.map(|e| format!(", until {}", page::when(e))).unwrap_or_default();
                format!("{a} acts for {b} ({scope}{until})")
            }
            _ => format!("{a} acts for {b}"),
        },
        EdgeKind::Owns => format!("{a} owns {b}"),
        EdgeKind::Tool => format!("{a} has the tool {b}"),
        EdgeKind::SameAs => format!("{a} and {b} are the same identity"),
        other => format!("{} {a} → {b}", other.as_str()),
    }
}

/// Links at `at` compared with `since`: added, removed, held.
pub(crate) fn compare(now: &Answer, before: Option<&Answer>) -> Vec<(Standing, Link)> {
    let Some(before) = before else { return now.links.iter().map(|l| (Standing::Held, l.clone())).collect() };
    let then: HashSet<String> = before.links.iter().map(Link::key).collect();
    let current: HashSet<String> = now.links.iter().map(Link::key).collect();
    let mut out: Vec<(Standing, Link)> = now
        .links
        .iter()
        .map(|l| (if then.contains(&l.key()) { Standing::Held } else { Standing::Added }, l.clone()))
        .collect();
    out.extend(before.links.iter().filter(|l| !current.contains(&l.key())).map(|l| (Standing::Removed, l.clone())));
    out.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    out
}

/// Nodes and edges to draw: leaves fanning out of one node in numbers are
/// drawn as one node with their count.
fn sketch(
    ask: &Ask,
    links: &[(Standing, Link)],
    kinds: &HashMap<String, &'static str>,
    display: &dyn Fn(&str) -> String,
) -> (Vec<drawing::Node>, Vec<drawing::Edge>) {
    let kind = |n: &str| kinds.get(n).copied().unwrap_or("resource");
    let mut plan = Plan::new(ask, links, &kind, display, DEPTH_DRAWN);
    if plan.shown(links) > MAX_DRAWN {
        plan = Plan::new(ask, links, &kind, display, 1);
    }
    if plan.shown(links) > MAX_DRAWN {
        plan.by_kind_next_to_focus(ask, links, &kind, display);
    }
    let Plan { grouped, sizes: group_sizes, far: far_groups } = plan;
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut nodes = Vec::new();
    let mut node = |name: &str, nodes: &mut Vec<drawing::Node>| -> usize {
        let shown = grouped.get(name).map_or(name, String::as_str);
        if let Some(i) = index.get(shown) {
            return *i;
        }
        let group = group_sizes.contains_key(shown);
        let k = kind(name);
        let n = if let Some(near) = far_groups.get(shown) {
            drawing::Node {
                label: shown.to_string(),
                class: "group-of",
                href: ask.url(near, ask.at, ask.since, None),
                title: format!("{shown}: explore from there, or see each in the table below"),
            }
        } else if group {
            drawing::Node {
                label: shown.to_string(),
                class: "group-of",
                href: "#edges".into(),
                title: format!("{shown}: each is listed in the table below"),
            }
        } else if matches!(k, "grant" | "group-of") {
            drawing::Node { label: cut(shown), class: k, href: "#edges".into(), title: shown.to_string() }
        } else {
            drawing::Node {
                label: cut(&display(shown)),
                class: if shown == ask.focus { "focus" } else { k },
                href: ask.url(shown, ask.at, ask.since, None),
                title: shown.to_string(),
            }
        };
        nodes.push(n);
        index.insert(shown.to_string(), nodes.len() - 1);
        nodes.len() - 1
    };
    node(&ask.focus, &mut nodes);
    let mut edges: Vec<drawing::Edge> = Vec::new();
    // Within a group, edges are not drawn (the group stands for them).
    let links = links.iter().filter(|(_, l)| {
        let group = grouped.get(&l.from);
        group.is_none() || group != grouped.get(&l.to)
    });
    // One drawn edge per pair of nodes: parallel facts (a tool and a
    // delegation, a fan drawn as one node) share it, words and reasons joined.
    let mut drawn: HashMap<(usize, usize), usize> = HashMap::new();
    for (standing, l) in links {
        let (a, b) = (node(&l.from, &mut nodes), node(&l.to, &mut nodes));
        let word = match standing {
            Standing::Held => l.edge.clone(),
            s => format!("{} ({})", l.edge, s.as_str()),
        };
        let class = format!("{}{}", standing.as_str(), if l.conditional { " conditional" } else { "" });
        match drawn.get(&(a, b)) {
            Some(&i) => {
                let e: &mut drawing::Edge = &mut edges[i];
                if !e.word.split(", ").any(|w| w == word) {
                    e.word = format!("{}, {word}", e.word);
                }
                e.reason = format!("{}; {}", e.reason, l.reason);
                // A change shows over what merely held.
                if e.class.starts_with("held") && *standing != Standing::Held {
                    e.class = class;
                }
            }
            None => {
                drawn.insert((a, b), edges.len());
                edges.push(drawing::Edge { from: a, to: b, word, reason: l.reason.clone(), class, key: l.key() });
            }
        }
    }
    (nodes, edges)
}

/// Which nodes are drawn as one, under which name.
struct Plan {
    /// Node → the group it is drawn in.
    grouped: HashMap<String, String>,
    /// Group → how many it stands for.
    sizes: HashMap<String, usize>,
    /// Group of far nodes → the near node to explore them from.
    far: HashMap<String, String>,
}

impl Plan {
    /// Nodes beyond `depth` hops under the near node they hang from, then
    /// fans of leaves of one kind under their hub.
    fn new(
        ask: &Ask,
        links: &[(Standing, Link)],
        kind: &dyn Fn(&str) -> &'static str,
        display: &dyn Fn(&str) -> String,
        depth: usize,
    ) -> Plan {
        let mut plan = Plan { grouped: HashMap::new(), sizes: HashMap::new(), far: HashMap::new() };
        let far = beyond(&ask.focus, links, depth);
        let mut through: HashMap<&str, Vec<&str>> = HashMap::new();
        for (node, near) in &far {
            through.entry(near.as_str()).or_default().push(node.as_str());
        }
        for (near, nodes) in &through {
            let name = format!("{} more through {}", nodes.len(), display(near));
            for n in nodes {
                plan.grouped.insert(n.to_string(), name.clone());
            }
            plan.sizes.insert(name.clone(), nodes.len());
            plan.far.insert(name, near.to_string());
        }
        let mut degree: HashMap<&str, usize> = HashMap::new();
        for (_, l) in links {
            *degree.entry(&l.from).or_default() += 1;
            *degree.entry(&l.to).or_default() += 1;
        }
        // (hub, leaf kind, edge, direction) → leaves.
        let mut fans: HashMap<(String, &'static str, String, bool), Vec<String>> = HashMap::new();
        for (_, l) in links {
            for (hub, leaf, outward) in [(&l.from, &l.to, true), (&l.to, &l.from, false)] {
                if degree.get(leaf.as_str()) == Some(&1) && *leaf != ask.focus && !plan.grouped.contains_key(leaf) {
                    fans.entry((hub.clone(), kind(leaf), l.edge.clone(), outward)).or_default().push(leaf.clone());
                }
            }
        }
        for ((hub, k, edge, _), leaves) in &fans {
            if leaves.len() > FAN && !plan.grouped.contains_key(hub) {
                let name = format!("{} {k} ({edge} of {})", leaves.len(), display(hub));
                for l in leaves {
                    plan.grouped.insert(l.clone(), name.clone());
                }
                plan.sizes.insert(name, leaves.len());
            }
        }
        plan
    }

    /// How many nodes the drawing would have.
    fn shown(&self, links: &[(Standing, Link)]) -> usize {
        let mut seen: HashSet<&str> = HashSet::new();
        for (_, l) in links {
            for n in [&l.from, &l.to] {
                seen.insert(self.grouped.get(n).unwrap_or(n));
            }
        }
        seen.len()
    }

    /// The focus's own neighbours drawn by kind, each group standing also
    /// for everything reached through its members.
    fn by_kind_next_to_focus(
        &mut self,
        ask: &Ask,
        links: &[(Standing, Link)],
        kind: &dyn Fn(&str) -> &'static str,
        display: &dyn Fn(&str) -> String,
    ) {
        let mut next: HashMap<&'static str, Vec<&str>> = HashMap::new();
        for (_, l) in links {
            for (a, b) in [(&l.from, &l.to), (&l.to, &l.from)] {
                if *a == ask.focus && *b != ask.focus && !self.grouped.contains_key(b) {
                    next.entry(kind(b)).or_default().push(b);
                }
            }
        }
        for (k, mut members) in next {
            members.sort_unstable();
            members.dedup();
            // The ones reaching most stay drawn; the rest are counted.
            let reaches = |m: &str| {
                self.far
                    .iter()
                    .filter(|(_, near)| near.as_str() == m)
                    .map(|(g, _)| self.sizes.get(g).copied().unwrap_or(0))
                    .sum::<usize>()
            };
            members.sort_by_cached_key(|m| std::cmp::Reverse(reaches(m)));
            if members.len() <= KEPT_NEXT {
                continue;
            }
            let rest = members.split_off(KEPT_NEXT);
            let name = format!("{} more {k} next to {}", rest.len(), display(&ask.focus));
            // Groups of far nodes hanging from one of the rest fold into this one.
            let folded: Vec<String> =
                self.far.iter().filter(|(_, near)| rest.contains(&near.as_str())).map(|(g, _)| g.clone()).collect();
            let mut size = rest.len();
            for g in folded {
                self.far.remove(&g);
                size += self.sizes.remove(&g).unwrap_or(0);
                for target in self.grouped.values_mut().filter(|t| **t == g) {
                    *target = name.clone();
                }
            }
            for m in rest {
                self.grouped.insert(m.to_string(), name.clone());
            }
            self.sizes.insert(name, size);
        }
    }
}

/// Each node further than `depth` hops from `focus` (either way along
/// the links), with the node at `depth` it is reached through.
fn beyond(focus: &str, links: &[(Standing, Link)], depth: usize) -> HashMap<String, String> {
    let mut next: HashMap<&str, Vec<&str>> = HashMap::new();
    for (_, l) in links {
        next.entry(&l.from).or_default().push(&l.to);
        next.entry(&l.to).or_default().push(&l.from);
    }
    // Breadth first, remembering for each node its ancestor at `depth`.
    let mut seen: HashMap<&str, (usize, Option<&str>)> = HashMap::from([(focus, (0, None))]);
    let mut queue = std::collections::VecDeque::from([focus]);
    while let Some(n) = queue.pop_front() {
        let (d, anchor) = seen[n];
        for &m in next.get(n).into_iter().flatten() {
            if seen.contains_key(m) {
                continue;
            }
            let anchor = if d + 1 == depth { Some(m) } else { anchor };
            seen.insert(m, (d + 1, anchor));
            queue.push_back(m);
        }
    }
    seen.into_iter()
        .filter(|(_, (d, _))| *d > depth)
        .filter_map(|(n, (_, a))| Some((n.to_string(), a?.to_string())))
        .collect()
}

fn cut(label: &str) -> String {
    cut_to(label, LABEL)
}

fn cut_to(text: &str, most: usize) -> String {
    if text.chars().count() <= most {
        return text.to_string();
    }
    let mut s: String = text.chars().take(most - 1).collect();
    s.push('…');
    s
}

/// What changed in the trust graph over one window, for the overview.
#[derive(Debug, Clone, Default)]
pub(crate) struct DriftWindow {
    /// Seconds since the epoch.
    pub since: i64,
    pub until: i64,
    /// Facts that started holding: grants, memberships, trust, delegations.
    pub added: usize,
    pub removed: usize,
    pub changed: usize,
    /// Indirect access that did not exist at the window's start.
    pub emerged: usize,
    /// The widest new indirect access: (principal, what it newly reaches, how).
    pub widest: Vec<(String, String, String)>,
}

/// Drift over the day and the week before the graph's newest moment.
pub(crate) fn drift_windows(graph: &TrustGraph) -> Vec<(&'static str, DriftWindow)> {
    let Some((_, until)) = span(graph) else { return Vec::new() };
    [("Since yesterday", 86_400), ("Since last week", 7 * 86_400)]
        .into_iter()
        .map(|(name, back)| {
            let since = until - back * 1_000_000_000;
            let d = graph.drift(since, until);
            let count =
                |c: &str| d.changes.iter().filter(|x| x.change == c && !matches!(x.edge, "node" | "same-as")).count();
            let widest = d
                .emerged
                .iter()
                .take(5)
                .map(|e| {
                    let what = match &e.grant {
                        Some(g) => {
                            format!("{} on {} (as {})", g.actions(), g.resources(), page::display_name(e.identity))
                        }
                        None => format!("acting as {}", page::display_name(e.identity)),
                    };
                    let how = e.via.iter().map(|h| h.reason().to_string()).collect::<Vec<_>>().join("; then ");
                    (e.principal.to_string(), cut_to(&what, 160), how)
                })
                .collect();
            let w = DriftWindow {
                since: since.div_euclid(1_000_000_000),
                until: until.div_euclid(1_000_000_000),
                added: count("added"),
                removed: count("removed"),
                changed: count("changed"),
                emerged: d.emerged.len(),
                widest,
            };
            (name, w)
        })
        .collect()
}

/// The explorer comparing `focus` over a drift window.
pub(crate) fn compare_url(focus: &str, w: &DriftWindow) -> String {
    Ask::default().url(focus, Some(w.until), Some(w.since), None)
}

pub(crate) async fn page(State(c): State<Console>, headers: HeaderMap, params: Params) -> Response {
    let Some(viewer) = c.access.viewer(&headers) else { return crate::access::sign_in_redirect("/graph") };
    let ask = Ask::from_params(&params.0);
    let wrap = move |site: &dyn crate::Site| build(site, &ask).map(|body| Some(("Trust graph".to_string(), body)));
    page::built(c.site.clone(), &viewer, "/graph", "", wrap).await
}

fn build(site: &dyn crate::Site, ask: &Ask) -> Result<Markup, String> {
    let shared = site.graph();
    let graph = shared.read();
    let span = span(&graph);
    let form = |ask: &Ask, span: Option<(i64, i64)>| time_form(ask, span);
    if ask.focus.is_empty() {
        drop(graph);
        return Ok(html! {
            h1 { "Trust graph" }
            (form(ask, span))
            p { "Choose a principal to see what it can reach, or a resource (with an action) to see who can reach it. "
                "Every principal's page links here too." }
        });
    }
    let Some((_, last)) = span else {
        return Ok(
            html! { h1 { "Trust graph" } (form(ask, span)) p { "The graph is empty: no inventory or events yet." } },
        );
    };
    let secs = |ns: i64| ns.div_euclid(1_000_000_000);
    let at = ask.at.map_or(last, |s| s.saturating_mul(1_000_000_000));
    let action = ask.action.as_deref();
    let now = answer(&graph, &ask.focus, at, action);
    let before = ask.since.map(|s| answer(&graph, &ask.focus, s.saturating_mul(1_000_000_000), action));
    drop(graph);
    let links = compare(&now, before.as_ref());
    let display = |id: &str| now.display(id);
    let ask_shown = Ask { at: Some(secs(at)), ..ask.clone() };
    let (nodes, edges) = sketch(&ask_shown, &links, &now.kinds, &display);
    let drawing = drawing::draw(&nodes, &edges);
    let (added, removed) = (
        links.iter().filter(|(s, _)| *s == Standing::Added).count(),
        links.iter().filter(|(s, _)| *s == Standing::Removed).count(),
    );
    let total = links.len();
    let pg = ask.page;
    let shown: Vec<&(Standing, Link)> = links.iter().skip((pg - 1) * PER_PAGE).take(PER_PAGE).collect();
    let params: Vec<(String, String)> = [
        ("focus", Some(ask.focus.clone())),
        ("at", ask.at.map(|a| a.to_string())),
        ("since", ask.since.map(|s| s.to_string())),
        ("action", ask.action.clone()),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k.to_string(), v?)))
    .collect();
    Ok(html! {
        h1 { "Trust graph: " (now.question) }
        (form(&ask_shown, span))
        p.summary {
            "As of " strong { (page::when(Timestamp::from_unix_nanos(at))) } ": " (now.links.len()) " edges"
            @if let Some(s) = ask.since {
                " · compared with " (page::when(Timestamp::from_unix_seconds(s))) ": "
                span.added { (added) " added" } ", " span.removed { (removed) " removed" }
            }
            " · " a href=(format!("/principals/{}", page::encode(&ask.focus))) { "the principal's page" }
        }
        @if !now.actions_seen.is_empty() && action.is_none() {
            section.card aria-labelledby="actions" {
                h2 #actions { "Actions seen on it: ask who can" }
                ul.inline {
                    @for (a, n) in now.actions_seen.iter().take(20) {
                        li { a href=(ask.url(&ask.focus, ask.at, ask.since, Some(a))) { (a) } " (" (n) ")" }
                    }
                }
            }
        }
        @match drawing {
            Ok(svg) if !svg.is_empty() => { figure.graph { (page::svg(svg)) figcaption { "Select a node to explore from it; hover an edge for its reason. "
                span.legend.added { "added" } " " span.legend.removed { "removed" } " " span.legend.conditional { "conditional" } } } }
            Ok(_) => { p { @match action { Some(a) => { "Nobody can " code { (a) } " on it at this moment, as the inventory tells." }, None => { "Nothing links to it at this moment." } } } }
            Err(why) => { p role="alert" { (why) } }
        }
        section.card aria-labelledby="edges" {
            h2 #edges { "Every edge, with its reason" }
            @if shown.is_empty() { p { "None." } } @else {
                table {
                    thead { tr { th scope="col" { "From" } th scope="col" { "Edge" } th scope="col" { "To" } th scope="col" { "Why" } th scope="col" { "Change" } } }
                    tbody {
                        @for (s, l) in &shown {
                            tr.(s.as_str()) data-edge=(l.key()) {
                                td { (endpoint(ask, &l.from, &now)) }
                                td { (l.edge) @if l.conditional { " " span.badge.conditional { "conditional" } } }
                                td { (endpoint(ask, &l.to, &now)) }
                                td { (l.reason) }
                                td { (s.as_str()) }
                            }
                        }
                    }
                }
                (page::pager("/graph", &params, pg, total))
            }
        }
    })
}

fn endpoint(ask: &Ask, name: &str, answer: &Answer) -> Markup {
    match answer.kinds.get(name).copied() {
        Some("grant" | "group-of") => html! { (name) },
        _ => html! { a href=(ask.url(name, ask.at, ask.since, None)) title=(name) { (answer.display(name)) } },
    }
}

/// The focus, the moment shown and the moment compared with. The sliders
/// submit as they are let go (console.js), each view a history entry.
fn time_form(ask: &Ask, span: Option<(i64, i64)>) -> Markup {
    let secs = |ns: i64| ns.div_euclid(1_000_000_000);
    let (lo, hi) = span.map_or((0, 0), |(a, b)| (secs(a), secs(b) + 1));
    let at = ask.at.unwrap_or(hi).clamp(lo, hi);
    html! {
        form.explore method="get" action="/graph" {
            label { "Principal or resource " input type="text" name="focus" value=(ask.focus) required size="48"; }
            label { "Action (for a resource) " input type="text" name="action" value=[ask.action.as_deref()] placeholder="s3:GetObject"; }
            @if span.is_some() {
                label.slider {
                    "As of " output #at-shown { (page::when(Timestamp::from_unix_seconds(at))) }
                    input #at type="range" name="at" min=(lo) max=(hi) step="1" value=(at) data-submit="change" data-shows="at-shown";
                }
                label.slider {
                    "Compare with " output #since-shown { (ask.since.map(|s| page::when(Timestamp::from_unix_seconds(s))).unwrap_or_else(|| "nothing".into())) }
                    input #since type="range" name="since" min=(lo) max=(hi) step="1" value=(ask.since.unwrap_or((at - 86_400).max(lo))) data-submit="change" data-shows="since-shown" disabled[ask.since.is_none()];
                }
                // Unset, comparing starts a day before the moment shown.
                label { input type="checkbox" #compare checked[ask.since.is_some()] data-enables="since"; " compare" }
            }
            button type="submit" { "Show" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(from: &str, to: &str) -> Link {
        Link { from: from.into(), to: to.into(), edge: "membership".into(), reason: "r".into(), conditional: false }
    }

    #[test]
    fn comparing_two_moments_marks_what_was_added_and_removed() {
        let then = Answer { links: vec![link("alice", "admins"), link("alice", "ops")], ..Default::default() };
        let now = Answer { links: vec![link("alice", "ops"), link("alice", "devs")], ..Default::default() };
        let got: Vec<(Standing, String)> = compare(&now, Some(&then)).into_iter().map(|(s, l)| (s, l.to)).collect();
        assert_eq!(
            got,
            vec![
                (Standing::Added, "devs".to_string()),
                (Standing::Removed, "admins".to_string()),
                (Standing::Held, "ops".to_string())
            ]
        );
    }

    #[test]
    fn many_leaves_of_one_kind_are_drawn_as_one_node_with_their_count() {
        let links: Vec<(Standing, Link)> =
            (0..20).map(|i| (Standing::Held, link("alice", &format!("group-{i}")))).collect();
        let kinds: HashMap<String, &'static str> =
            (0..20).map(|i| (format!("group-{i}"), "group")).chain([("alice".to_string(), "human")]).collect();
        let ask = Ask { focus: "alice".into(), ..Default::default() };
        let (nodes, edges) = sketch(&ask, &links, &kinds, &|s: &str| s.to_string());
        assert_eq!(nodes.len(), 2, "alice and one node for her twenty groups");
        assert!(nodes[1].label.starts_with("20 group"), "{}", nodes[1].label);
        assert_eq!(edges.len(), 1);
    }

    #[test]
    fn a_principal_reaching_hundreds_of_identities_is_drawn_in_a_few_dozen_nodes() {
        // alice can assume 200 roles, each holding two grants.
        let mut links = Vec::new();
        let mut kinds: HashMap<String, &'static str> = HashMap::from([("alice".to_string(), "human")]);
        for i in 0..200 {
            let role = format!("role-{i}");
            links.push((Standing::Held, Link { edge: "assumption".into(), ..link("alice", &role) }));
            kinds.insert(role.clone(), "role");
            for g in 0..2 {
                let grant = format!("grant {g} of {role}");
                links.push((Standing::Held, Link { edge: "grant".into(), ..link(&role, &grant) }));
                kinds.insert(grant, "grant");
            }
        }
        let ask = Ask { focus: "alice".into(), ..Default::default() };
        let (nodes, edges) = sketch(&ask, &links, &kinds, &|s: &str| s.to_string());
        assert!(nodes.len() <= MAX_DRAWN, "{} nodes drawn", nodes.len());
        assert!(
            nodes.iter().any(|n| n.label.starts_with("188 more role")),
            "{:?}",
            nodes.iter().map(|n| &n.label).collect::<Vec<_>>()
        );
        assert_eq!(nodes.iter().filter(|n| n.class == "role").count(), KEPT_NEXT, "the first roles drawn one by one");
        assert!(!edges.is_empty());
    }

    #[test]
    fn nodes_far_from_the_focus_are_counted_under_the_near_node_they_hang_from() {
        let links: Vec<(Standing, Link)> =
            [("alice", "agent"), ("agent", "bob"), ("bob", "ops"), ("ops", "s3"), ("alice", "devs")]
                .iter()
                .map(|(a, b)| (Standing::Held, link(a, b)))
                .collect();
        let far = beyond("alice", &links, 2);
        assert_eq!(far.get("ops").map(String::as_str), Some("bob"));
        assert_eq!(far.get("s3").map(String::as_str), Some("bob"));
        assert!(!far.contains_key("bob") && !far.contains_key("devs"));
    }

    #[test]
    fn a_moment_is_given_in_seconds_or_as_a_time() {
        assert_eq!(parse_moment("1700000000"), Some(1_700_000_000));
        assert_eq!(parse_moment("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(parse_moment("yesterday"), None);
    }
}
