//! The trust graph against cases whose answers are known by construction.

use tenet_graph::{Principal, TrustGraph};
use tenet_model::{
    Condition, Effect, Fact, Matcher, NodeKind, PolicyDocument, PrincipalMatcher, Snapshot, Statement, Timestamp,
    TrustChange,
};

fn stmt(effect: Effect, actions: Matcher, resources: &[&str]) -> Statement {
    Statement {
        sid: None,
        effect,
        actions,
        resources: Matcher::Only(resources.iter().map(|s| s.to_string()).collect()),
        principals: None,
        conditions: vec![],
    }
}

fn only(v: &[&str]) -> Matcher {
    Matcher::Only(v.iter().map(|s| s.to_string()).collect())
}

fn allow(actions: &[&str], resources: &[&str]) -> Statement {
    stmt(Effect::Allow, only(actions), resources)
}

fn doc(statements: Vec<Statement>) -> PolicyDocument {
    PolicyDocument { statements }
}

fn trust(aws: &[&str]) -> PolicyDocument {
    doc(vec![Statement {
        sid: None,
        effect: Effect::Allow,
        actions: only(&["sts:AssumeRole"]),
        resources: Matcher::Any,
        principals: Some(PrincipalMatcher {
            not: false,
            anyone: false,
            aws: aws.iter().map(|s| s.to_string()).collect(),
            service: vec![],
            federated: vec![],
        }),
        conditions: vec![],
    }])
}

fn node(id: &str, kind: NodeKind) -> Fact {
    Fact::Node { id: id.into(), kind, name: None }
}

fn inline(holder: &str, name: &str, document: PolicyDocument) -> Vec<Fact> {
    let policy = format!("{holder}#inline/{name}");
    vec![Fact::Policy { policy: policy.clone(), document }, Fact::Attached { holder: holder.into(), policy }]
}

fn t(secs: i64) -> Timestamp {
    Timestamp::from_unix_seconds(1_790_000_000 + secs)
}

fn snapshot(scope: &str, at: i64, facts: Vec<Fact>) -> Snapshot {
    Snapshot { source: "test".into(), scope: scope.into(), collected_at: t(at), facts }
}

fn graph(facts: Vec<Fact>) -> TrustGraph {
    let mut g = TrustGraph::new();
    g.apply_snapshot(&snapshot("aws:111111111111", 0, facts), "fixture");
    g
}

fn names<'g>(ps: &[Principal<'g>]) -> Vec<&'g str> {
    ps.iter().map(|p| p.principal).collect()
}

const A: &str = "111111111111";
const ALICE: &str = "arn:aws:iam::111111111111:user/alice";
const BOB: &str = "arn:aws:iam::111111111111:user/bob";
const BUCKET: &str = "arn:aws:s3:::reports/q3.csv";

fn at_end(g: &TrustGraph) -> tenet_graph::View<'_> {
    g.view(t(10).unix_nanos())
}

#[test]
fn nested_groups_grant_to_their_members_with_every_hop_named() {
    let mut facts = vec![
        node(ALICE, NodeKind::HUMAN),
        node("arn:aws:iam::111111111111:group/analysts", NodeKind::Group),
        node("arn:aws:iam::111111111111:group/data", NodeKind::Group),
        Fact::Member { member: ALICE.into(), group: "arn:aws:iam::111111111111:group/analysts".into() },
        Fact::Member {
            member: "arn:aws:iam::111111111111:group/analysts".into(),
            group: "arn:aws:iam::111111111111:group/data".into(),
        },
    ];
    facts.extend(inline(
        "arn:aws:iam::111111111111:group/data",
        "read",
        doc(vec![allow(&["s3:GetObject"], &["arn:aws:s3:::reports/*"])]),
    ));
    let g = graph(facts);
    let who = at_end(&g).who_can("s3:GetObject", BUCKET);
    assert_eq!(names(&who), vec![ALICE]);
    let hops: Vec<&str> = who[0].paths[0].iter().map(|h| h.edge()).collect();
    assert_eq!(hops, vec!["membership", "membership", "grant"]);
    assert!(!who[0].conditional);
}

#[test]
fn role_chains_cross_accounts() {
    const DEPLOY: &str = "arn:aws:iam::111111111111:role/deploy";
    const READER: &str = "arn:aws:iam::222222222222:role/reader";
    let mut facts = vec![
        node(ALICE, NodeKind::HUMAN),
        node(DEPLOY, NodeKind::ROLE),
        node(READER, NodeKind::ROLE),
        node("arn:aws:iam::111111111111:root", NodeKind::ACCOUNT),
        Fact::Trust { role: DEPLOY.into(), document: trust(&[ALICE]) },
        Fact::Trust { role: READER.into(), document: trust(&[A]) },
    ];
    facts.extend(inline(DEPLOY, "hop", doc(vec![allow(&["sts:AssumeRole"], &[READER])])));
    facts.extend(inline(READER, "read", doc(vec![allow(&["s3:GetObject"], &["arn:aws:s3:::reports/*"])])));
    let g = graph(facts);
    let who = at_end(&g).who_can("s3:GetObject", BUCKET);
    let names = names(&who);
    assert!(names.contains(&ALICE), "{names:?}");
    assert!(names.contains(&DEPLOY));
    assert!(names.contains(&READER));
    assert!(names.contains(&"arn:aws:iam::111111111111:root"), "the trusted account as a whole");
    let alice = who.iter().find(|p| p.principal == ALICE).unwrap();
    let route: Vec<&str> = alice.paths[0].iter().map(|h| h.to).collect();
    assert_eq!(route, vec![DEPLOY, READER, "arn:aws:iam::222222222222:role/reader#inline/read"]);
    assert!(alice.paths[0][1].reason().to_string().contains("trusts account 111111111111"));
    // Bob has no way in.
    assert!(!names.contains(&BOB));
}

#[test]
fn explicit_deny_wins_and_not_action_excludes() {
    let mut facts = vec![node(ALICE, NodeKind::HUMAN), node(BOB, NodeKind::HUMAN)];
    facts.extend(inline(
        ALICE,
        "s3",
        doc(vec![allow(&["s3:*"], &["*"]), stmt(Effect::Deny, only(&["s3:DeleteObject"]), &["*"])]),
    ));
    facts.extend(inline(BOB, "power", doc(vec![stmt(Effect::Allow, Matcher::Not(vec!["iam:*".into()]), &["*"])])));
    let g = graph(facts);
    let v = at_end(&g);
    assert_eq!(names(&v.who_can("s3:GetObject", BUCKET)), vec![ALICE, BOB]);
    assert_eq!(names(&v.who_can("s3:DeleteObject", BUCKET)), vec![BOB], "alice's deny wins over her allow");
    assert!(
        v.who_can("iam:CreateUser", "arn:aws:iam::111111111111:user/x").is_empty(),
        "NotAction iam:* grants no IAM"
    );
}

#[test]
fn not_resource_excludes_what_it_names() {
    let mut facts = vec![node(ALICE, NodeKind::HUMAN)];
    let mut everything_but_secrets = allow(&["s3:GetObject"], &[]);
    everything_but_secrets.resources = Matcher::Not(vec!["arn:aws:s3:::secrets/*".into()]);
    facts.extend(inline(ALICE, "read", doc(vec![everything_but_secrets])));
    let g = graph(facts);
    let v = at_end(&g);
    assert_eq!(names(&v.who_can("s3:GetObject", BUCKET)), vec![ALICE]);
    assert!(v.who_can("s3:GetObject", "arn:aws:s3:::secrets/db.txt").is_empty());
}

#[test]
fn permission_boundaries_intersect() {
    let mut facts = vec![
        node(ALICE, NodeKind::HUMAN),
        Fact::Policy {
            policy: "arn:aws:iam::111111111111:policy/read-only-boundary".into(),
            document: doc(vec![allow(&["s3:Get*"], &["*"])]),
        },
        Fact::Boundary { holder: ALICE.into(), policy: "arn:aws:iam::111111111111:policy/read-only-boundary".into() },
    ];
    facts.extend(inline(ALICE, "s3", doc(vec![allow(&["s3:*"], &["*"])])));
    let g = graph(facts);
    let v = at_end(&g);
    let get = v.who_can("s3:GetObject", BUCKET);
    assert_eq!(names(&get), vec![ALICE]);
    assert!(get[0].paths[0].iter().any(|h| h.edge() == "boundary"));
    assert!(v.who_can("s3:PutObject", BUCKET).is_empty(), "outside the boundary");
}

#[test]
fn conditions_are_kept_and_a_principal_is_conditional_only_if_every_path_is() {
    let mut conditional = allow(&["s3:GetObject"], &["*"]);
    conditional.conditions =
        vec![Condition { operator: "IpAddress".into(), key: "aws:SourceIp".into(), values: vec!["10.0.0.0/8".into()] }];
    let mut facts = vec![node(ALICE, NodeKind::HUMAN), node(BOB, NodeKind::HUMAN)];
    facts.extend(inline(ALICE, "cond", doc(vec![conditional.clone()])));
    facts.extend(inline(BOB, "cond", doc(vec![conditional])));
    facts.extend(inline(BOB, "plain", doc(vec![allow(&["s3:GetObject"], &["*"])])));
    let g = graph(facts);
    let who = at_end(&g).who_can("s3:GetObject", BUCKET);
    let alice = who.iter().find(|p| p.principal == ALICE).unwrap();
    let bob = who.iter().find(|p| p.principal == BOB).unwrap();
    assert!(alice.conditional, "only a conditional path");
    assert!(alice.paths[0].iter().any(|h| h.conditional && h.reason().to_string().contains("conditions")));
    assert!(!bob.conditional, "one unconditional path is enough");
    assert_eq!(bob.paths.len(), 2);
}

#[test]
fn an_agent_acting_for_two_people_holds_the_union_of_their_access() {
    const AGENT: &str = "agent:agt-1";
    let mut facts = vec![
        node(ALICE, NodeKind::HUMAN),
        node(BOB, NodeKind::HUMAN),
        node(AGENT, NodeKind::AGENT),
        Fact::ActsFor { agent: AGENT.into(), person: ALICE.into(), scope: vec![], expires: None },
        Fact::ActsFor { agent: AGENT.into(), person: BOB.into(), scope: vec![], expires: None },
    ];
    facts.extend(inline(ALICE, "read", doc(vec![allow(&["s3:GetObject"], &["arn:aws:s3:::reports/*"])])));
    let g = graph(facts);
    let v = at_end(&g);
    let who = v.who_can("s3:GetObject", BUCKET);
    // Bob cannot read the reports himself, but the agent he uses can: the
    // confused-deputy shape, visible in who-can and in his reach.
    assert_eq!(names(&who), vec![ALICE, AGENT, BOB]);
    let agent = who.iter().find(|p| p.principal == AGENT).unwrap();
    assert_eq!(agent.paths[0][0].edge(), "delegation");
    let through: Vec<&str> = who[2].paths[0].iter().map(|h| h.to).collect();
    assert_eq!(through[..2], [AGENT, ALICE]);
    assert!(v.who_can("s3:GetObject", "arn:aws:s3:::other/x").is_empty());
    let bob = v.reach(BOB).unwrap();
    let (alice, _) = bob
        .grants()
        .find(|(r, g)| r.identity == ALICE && g.actions().contains("s3:GetObject"))
        .expect("reaches alice's grant");
    let route: Vec<&str> = alice.via.iter().map(|h| h.to).collect();
    assert_eq!(route, vec![AGENT, ALICE]);
}

#[test]
fn time_travel_shows_a_removed_grant_before_and_not_after() {
    let mut g = TrustGraph::new();
    let mut day0 = vec![node(ALICE, NodeKind::HUMAN)];
    day0.extend(inline(ALICE, "read", doc(vec![allow(&["s3:GetObject"], &["*"])])));
    g.apply_snapshot(&snapshot("aws:111111111111", 0, day0.clone()), "day0");
    // The same inventory again the next night changes nothing.
    let versions = g.version_count();
    let effect = g.apply_snapshot(&snapshot("aws:111111111111", 100, day0), "day1");
    assert_eq!((effect.opened, effect.closed), (0, 0));
    assert_eq!(g.version_count(), versions, "nightly snapshots must not churn history");
    // Then the grant is gone.
    let effect = g.apply_snapshot(&snapshot("aws:111111111111", 200, vec![node(ALICE, NodeKind::HUMAN)]), "day2");
    assert_eq!(effect.closed, 2, "the inline policy and its attachment");
    assert_eq!(names(&g.view(t(199).unix_nanos()).who_can("s3:GetObject", BUCKET)), vec![ALICE]);
    assert!(g.view(t(201).unix_nanos()).who_can("s3:GetObject", BUCKET).is_empty());
    assert!(g.view(t(-1).unix_nanos()).who_can("s3:GetObject", BUCKET).is_empty(), "nothing before the first snapshot");
    // Drift names what closed it.
    let drift = g.drift(t(150).unix_nanos(), t(250).unix_nanos());
    assert!(!drift.changes.is_empty());
    assert!(drift.changes.iter().all(|c| c.change == "removed" && c.provenance == "day2"), "{:?}", drift.changes);
}

#[test]
fn an_old_snapshot_imported_late_slots_into_history() {
    let mut g = TrustGraph::new();
    let mut with_grant = vec![node(ALICE, NodeKind::HUMAN)];
    with_grant.extend(inline(ALICE, "read", doc(vec![allow(&["s3:GetObject"], &["*"])])));
    g.apply_snapshot(&snapshot("aws:111111111111", 200, with_grant.clone()), "later");
    g.apply_snapshot(&snapshot("aws:111111111111", 100, with_grant), "earlier");
    assert_eq!(names(&g.view(t(150).unix_nanos()).who_can("s3:GetObject", BUCKET)), vec![ALICE]);
    assert!(g.view(t(50).unix_nanos()).who_can("s3:GetObject", BUCKET).is_empty());
}

#[test]
fn drift_reports_a_newly_emerged_indirect_path() {
    const ADMIN: &str = "arn:aws:iam::111111111111:role/break-glass";
    let mut facts = vec![
        node(ALICE, NodeKind::HUMAN),
        node(ADMIN, NodeKind::ROLE),
        Fact::Trust { role: ADMIN.into(), document: trust(&["arn:aws:iam::111111111111:role/ops"]) },
    ];
    facts.extend(inline(ADMIN, "admin", doc(vec![allow(&["*"], &["*"])])));
    let mut g = graph(facts);
    // Someone rewrites the trust policy to let alice in.
    g.apply_changes(
        &[TrustChange::Assert { fact: Fact::Trust { role: ADMIN.into(), document: trust(&[ALICE]) } }],
        t(50),
        "event-1234",
    );
    let drift = g.drift(t(10).unix_nanos(), t(60).unix_nanos());
    assert!(
        drift
            .changes
            .iter()
            .any(|c| c.edge == "trust" && c.from == ADMIN && c.change == "changed" && c.provenance == "event-1234")
    );
    let top = drift.emerged.first().expect("a new path");
    assert_eq!(top.principal, ALICE);
    assert_eq!(top.grant.expect("a grant").actions(), "*");
    assert!(
        drift.emerged.iter().any(|e| e.principal == ALICE && e.identity == ADMIN && e.grant.is_none()),
        "alice can now act as the role itself"
    );
    assert_eq!(top.via[0].to, ADMIN);
    assert!(top.score >= 100);
    assert!(g.view(t(60).unix_nanos()).who_can("iam:CreateUser", "*").iter().any(|p| p.principal == ALICE));
    assert!(!g.view(t(40).unix_nanos()).who_can("iam:CreateUser", "*").iter().any(|p| p.principal == ALICE));
}

#[test]
fn kubernetes_rbac_bindings_aggregation_and_resource_names() {
    let facts = vec![
        Fact::RbacRole {
            role: "k8s:clusterrole/view".into(),
            namespace: None,
            rules: vec![],
            labels: vec![],
            aggregate: vec![vec![("rbac.example.com/aggregate-to-view".into(), "true".into())]],
        },
        Fact::RbacRole {
            role: "k8s:clusterrole/pod-reader".into(),
            namespace: None,
            rules: vec![tenet_model::RbacRule {
                api_groups: vec!["".into()],
                resources: vec!["pods".into()],
                verbs: vec!["get".into(), "list".into()],
                ..Default::default()
            }],
            labels: vec![("rbac.example.com/aggregate-to-view".into(), "true".into())],
            aggregate: vec![],
        },
        Fact::RbacRole {
            role: "k8s:role/prod/db-secret".into(),
            namespace: Some("prod".into()),
            rules: vec![tenet_model::RbacRule {
                api_groups: vec!["".into()],
                resources: vec!["secrets".into()],
                verbs: vec!["get".into()],
                resource_names: vec!["db".into()],
                ..Default::default()
            }],
            labels: vec![],
            aggregate: vec![],
        },
        Fact::RbacBinding { subject: "k8s:group/oncall".into(), role: "k8s:clusterrole/view".into(), namespace: None },
        Fact::RbacBinding {
            subject: "k8s:system:serviceaccount:prod:api".into(),
            role: "k8s:role/prod/db-secret".into(),
            namespace: Some("prod".into()),
        },
        Fact::Member { member: "k8s:alice@corp".into(), group: "k8s:group/oncall".into() },
    ];
    let mut g = TrustGraph::new();
    g.apply_snapshot(
        &Snapshot { source: "k8s-rbac".into(), scope: "k8s:k8s".into(), collected_at: t(0), facts },
        "rbac",
    );
    let v = g.view(t(1).unix_nanos());
    assert_eq!(
        names(&v.who_can("k8s:get", "k8s:core/pods/payments/web-1")),
        vec!["k8s:alice@corp"],
        "through aggregation"
    );
    assert_eq!(names(&v.who_can("k8s:get", "k8s:core/secrets/prod/db")), vec!["k8s:system:serviceaccount:prod:api"]);
    assert!(v.who_can("k8s:get", "k8s:core/secrets/prod/other").is_empty(), "resourceNames restrict");
    assert!(
        v.who_can("k8s:get", "k8s:core/secrets/staging/db").is_empty(),
        "a RoleBinding grants in its namespace only"
    );
}

#[test]
fn a_trust_policy_naming_a_principal_of_another_account_needs_its_own_allow_too() {
    const SHARED: &str = "arn:aws:iam::222222222222:role/shared";
    let mut facts = vec![
        node(ALICE, NodeKind::HUMAN),
        node(BOB, NodeKind::HUMAN),
        node(SHARED, NodeKind::ROLE),
        Fact::Trust { role: SHARED.into(), document: trust(&[ALICE, BOB]) },
    ];
    facts.extend(inline(ALICE, "hop", doc(vec![allow(&["sts:AssumeRole"], &[SHARED])])));
    facts.extend(inline(SHARED, "read", doc(vec![allow(&["s3:GetObject"], &["*"])])));
    let g = graph(facts);
    let v = at_end(&g);
    let who = v.who_can("s3:GetObject", BUCKET);
    assert_eq!(names(&who), vec![SHARED, ALICE], "bob is named but his account never let him assume it");
    assert!(who[1].paths[0][0].reason().to_string().contains("may assume it: statement #0"));
    let bob = v.reach(BOB).unwrap();
    assert_eq!(bob.identities.len(), 1, "bob reaches nothing beyond himself");
    let alice = v.reach(ALICE).unwrap();
    assert!(alice.identities.iter().any(|r| r.identity == SHARED));
}

#[test]
fn an_observation_is_evidence_not_a_change() {
    const OPS: &str = "arn:aws:iam::111111111111:group/ops";
    let mut facts = vec![node(ALICE, NodeKind::HUMAN), node(OPS, NodeKind::Group)];
    facts.extend(inline(OPS, "read", doc(vec![allow(&["s3:GetObject"], &["*"])])));
    let mut g = graph(facts.clone());
    // A request at t(50) shows alice in ops (as an authenticator's groups would).
    let seen = Fact::Member { member: ALICE.into(), group: OPS.into() };
    g.apply_changes(&[TrustChange::Observe { fact: seen.clone() }], t(50), "request-1");
    assert_eq!(names(&g.view(t(60).unix_nanos()).who_can("s3:GetObject", BUCKET)), vec![ALICE]);
    assert!(g.view(t(40).unix_nanos()).who_can("s3:GetObject", BUCKET).is_empty(), "not known before it was seen");
    // Drift over the sighting: no change, no newly emerged path.
    let drift = g.drift(t(10).unix_nanos(), t(60).unix_nanos());
    assert!(drift.changes.is_empty(), "{:?}", drift.changes);
    assert!(drift.emerged.is_empty(), "{:?}", drift.emerged.iter().map(|e| e.principal).collect::<Vec<_>>());
    // The next inventory of the account does not list it: inventories do
    // not speak of observations, so it stays.
    let effect = g.apply_snapshot(&snapshot("aws:111111111111", 100, facts.clone()), "day1");
    assert_eq!(effect.closed, 0);
    assert_eq!(names(&g.view(t(110).unix_nanos()).who_can("s3:GetObject", BUCKET)), vec![ALICE]);
    // Once an inventory lists it, it is the inventory's: the next one that
    // drops it closes it.
    let mut listed = facts.clone();
    listed.push(seen);
    g.apply_snapshot(&snapshot("aws:111111111111", 200, listed), "day2");
    let effect = g.apply_snapshot(&snapshot("aws:111111111111", 300, facts), "day3");
    assert_eq!(effect.closed, 1);
    assert!(g.view(t(310).unix_nanos()).who_can("s3:GetObject", BUCKET).is_empty());
    assert_eq!(names(&g.view(t(250).unix_nanos()).who_can("s3:GetObject", BUCKET)), vec![ALICE]);
}

#[test]
fn a_declaration_of_what_was_already_observed_is_not_a_change() {
    // A new hire's Okta id and email: first seen together in an Okta event,
    // then listed by the next day's SCIM inventory.
    const OKTA: &str = "okta:00u1newhire";
    const EMAIL: &str = "user:new.hire@acme.example";
    let same = Fact::SameAs { a: OKTA.into(), b: EMAIL.into() };
    let mut g = TrustGraph::new();
    g.apply_changes(&[TrustChange::Observe { fact: same.clone() }], t(50), "okta event");
    let effect = g.apply_snapshot(&snapshot("idp:okta", 100, vec![same.clone()]), "scim day2");
    assert_eq!(effect.opened, 0, "already held");
    // Neither a window holding both the sighting and the declaration nor
    // one holding only the declaration reports it.
    for since in [10, 60] {
        let drift = g.drift(t(since).unix_nanos(), t(200).unix_nanos());
        assert!(drift.changes.is_empty(), "since t({since}): {:?}", drift.changes);
    }
    // Declared now, it is the inventory's: dropping it is a removal.
    g.apply_snapshot(&snapshot("idp:okta", 300, vec![]), "scim day4");
    let drift = g.drift(t(200).unix_nanos(), t(400).unix_nanos());
    assert_eq!(drift.changes.len(), 1, "{:?}", drift.changes);
    assert_eq!((drift.changes[0].change, drift.changes[0].edge), ("removed", "same-as"));
    // A link declared without having been seen first is still an addition.
    let mut fresh = TrustGraph::new();
    fresh.apply_snapshot(&snapshot("idp:okta", 100, vec![same]), "scim day2");
    let drift = fresh.drift(t(10).unix_nanos(), t(200).unix_nanos());
    assert_eq!(drift.changes.len(), 1, "{:?}", drift.changes);
    assert_eq!((drift.changes[0].change, drift.changes[0].edge), ("added", "same-as"));
}

/// One view answers queries from several threads at once (the server's
/// workers share it), each thread getting what a lone caller gets, its
/// memory of derived answers filled by whichever thread asked first.
#[test]
fn one_view_answers_from_many_threads_as_it_does_from_one() {
    let mut facts = vec![
        node(ALICE, NodeKind::HUMAN),
        node("arn:aws:iam::111111111111:group/analysts", NodeKind::Group),
        Fact::Member { member: ALICE.into(), group: "arn:aws:iam::111111111111:group/analysts".into() },
    ];
    facts.extend(inline(
        "arn:aws:iam::111111111111:group/analysts",
        "read",
        doc(vec![allow(&["s3:GetObject"], &["arn:aws:s3:::reports/*"])]),
    ));
    let g = graph(facts);
    let lone = {
        let v = at_end(&g);
        (names(&v.who_can("s3:GetObject", BUCKET)).join(","), v.reach(ALICE).map(|r| r.identities.len()))
    };
    let shared = at_end(&g);
    let answers: Vec<(String, Option<usize>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let v = &shared;
                s.spawn(move || {
                    (0..50)
                        .map(|_| {
                            (
                                names(&v.who_can("s3:GetObject", BUCKET)).join(","),
                                v.reach(ALICE).map(|r| r.identities.len()),
                            )
                        })
                        .last()
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(answers.iter().all(|a| *a == lone), "{answers:?} vs {lone:?}");
    assert_eq!(lone.0, ALICE);
}

/// The revision moves when a fact starts or stops holding, never when one
/// is re-asserted or re-observed as it was (a live service re-derives its
/// view only then).
#[test]
fn the_revision_moves_only_when_what_holds_changes() {
    use tenet_model::TrustChange;
    let mut g = graph(vec![node(ALICE, NodeKind::HUMAN)]);
    let acts = Fact::ActsFor { agent: "agent:a1".into(), person: ALICE.into(), scope: vec![], expires: None };
    let r0 = g.revision();
    g.apply_changes(&[TrustChange::Observe { fact: acts.clone() }], t(10), "e1");
    let r1 = g.revision();
    assert_ne!(r0, r1, "a new delegation holds");
    g.apply_changes(&[TrustChange::Observe { fact: acts.clone() }], t(20), "e2");
    g.apply_changes(&[TrustChange::Assert { fact: node(ALICE, NodeKind::HUMAN) }], t(20), "e3");
    assert_eq!(g.revision(), r1, "seen again, as it was");
}
