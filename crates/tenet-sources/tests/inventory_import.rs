//! Inventory importers: every file the simulator writes, and handwritten
//! edge cases of each format.

use std::collections::BTreeSet;

use tenet_model::{Fact, Matcher, NodeKind, Snapshot, Timestamp};
use tenet_sim::inventory::{snapshot, snapshot_times};
use tenet_sim::{Config, ScenarioKind, Simulation};
use tenet_sources::inventory::{ImportOptions, Imported, InventoryError, InventoryFormat, detect, import, merge};

const AT: Timestamp = Timestamp::from_unix_seconds(1_791_158_400);

fn sim() -> Simulation {
    Simulation::new(Config {
        seed: 3,
        days: 14,
        humans: 30,
        agents: 8,
        scenarios: ScenarioKind::ALL.to_vec(),
        ..Default::default()
    })
}

fn expected_format(file: &str) -> InventoryFormat {
    match file {
        f if f.starts_with("aws-iam-") => InventoryFormat::AwsIam,
        f if f.starts_with("scim-") => InventoryFormat::Scim,
        "k8s-rbac.json" => InventoryFormat::K8sRbac,
        "agents.json" => InventoryFormat::AgentRegistry,
        other => panic!("unexpected inventory file {other}"),
    }
}

/// Every file of the inventory at `t`, detected and imported cleanly.
fn import_all(sim: &Simulation, t: i64) -> Vec<Snapshot> {
    let at = sim.config.start.saturating_add_seconds(t);
    let mut out = Vec::new();
    for (name, bytes) in snapshot(sim, t) {
        let format = detect(&bytes).unwrap_or_else(|| panic!("{name}: not detected"));
        assert_eq!(format, expected_format(&name), "{name}");
        assert!(tenet_sources::format::detect(&bytes).is_none(), "{name}: a telemetry format claims an inventory file");
        let Imported { snapshots, skipped } =
            import(format, &bytes, at, &ImportOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            skipped.is_empty(),
            "{name}: {}",
            skipped.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
        );
        assert!(!snapshots.is_empty(), "{name}");
        for s in &snapshots {
            assert_eq!(s.source, format.name());
            assert_eq!(s.collected_at, at);
            assert!(!s.facts.is_empty(), "{name}: {}", s.scope);
            let unique: BTreeSet<String> = s.facts.iter().map(|f| format!("{f:?}")).collect();
            assert_eq!(unique.len(), s.facts.len(), "{name}: duplicate facts");
        }
        out.extend(snapshots);
    }
    out
}

fn facts(snaps: &[Snapshot]) -> impl Iterator<Item = &Fact> {
    snaps.iter().flat_map(|s| s.facts.iter())
}

fn has(snaps: &[Snapshot], pred: impl Fn(&Fact) -> bool) -> bool {
    facts(snaps).any(pred)
}

#[test]
fn every_simulated_inventory_file_imports_cleanly() {
    let sim = sim();
    let times = snapshot_times(&sim);
    let first = import_all(&sim, times[0]);
    let last = import_all(&sim, *times.last().unwrap());

    // One snapshot per account, scoped by account id; the rest one each.
    let scopes: BTreeSet<&str> = first.iter().map(|s| s.scope.as_str()).collect();
    for account in &sim.org.accounts {
        assert!(scopes.contains(format!("aws:{}", account.id).as_str()), "{scopes:?}");
        assert!(has(
            &first,
            |f| matches!(f, Fact::Node { id, kind: NodeKind::ACCOUNT, .. } if *id == format!("arn:aws:iam::{}:root", account.id))
        ));
    }
    for scope in ["idp:okta", "k8s:k8s", "agents"] {
        assert!(scopes.contains(scope), "{scopes:?}");
    }
    // SCIM users and groups share their scope: merged, one snapshot.
    let merged = merge(first.clone());
    assert_eq!(merged.iter().filter(|s| s.scope == "idp:okta").count(), 1);
    assert_eq!(merged.len(), first.len() - 1);

    // IAM: the lambda role trusts lambda.amazonaws.com.
    let lambda_trust = facts(&first).find_map(|f| match f {
        Fact::Trust { role, document } if role.ends_with(":role/ingest-lambda-role") => Some(document),
        _ => None,
    });
    let lambda_trust = lambda_trust.expect("ingest-lambda-role trust");
    assert!(
        lambda_trust
            .statements
            .iter()
            .any(|s| { s.principals.as_ref().is_some_and(|p| p.service.iter().any(|x| x == "lambda.amazonaws.com")) })
    );
    // PowerUserAccess: NotAction.
    let power = facts(&first).find_map(|f| match f {
        Fact::Policy { policy, document } if policy == "arn:aws:iam::aws:policy/PowerUserAccess" => Some(document),
        _ => None,
    });
    assert!(
        power
            .expect("PowerUserAccess")
            .statements
            .iter()
            .any(|s| matches!(&s.actions, Matcher::Not(a) if a.contains(&"iam:*".to_string())))
    );
    // The cross-account role is bounded.
    assert!(has(&first, |f| matches!(f, Fact::Boundary { holder, policy }
        if holder.ends_with(":role/prod-cross-account-readonly") && policy.ends_with(":policy/CrossAccountReadOnlyBoundary"))));
    // Identity Center roles keep their path; their inline policy is named after them.
    assert!(has(&first, |f| matches!(f, Fact::Node { id, kind: NodeKind::ROLE, .. }
        if id.contains(":role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_"))));
    assert!(has(&first, |f| matches!(f, Fact::Attached { holder, policy }
        if holder.contains("AWSReservedSSO_") && *policy == format!("{holder}#inline/AwsSSOInlinePolicy"))));
    // Legacy users belong to their group.
    if let Some(p) = sim.org.people.iter().find(|p| p.iam_user.is_some()) {
        let user = &p.iam_user.as_ref().unwrap().name;
        assert!(has(&first, |f| matches!(f, Fact::Member { member, group }
            if member.ends_with(&format!(":user/{user}")) && group.ends_with(":group/legacy-engineers"))));
    }
    // Conditions are kept.
    assert!(has(&first, |f| matches!(f, Fact::Policy { document, .. }
        if document.statements.iter().any(|s| s.conditions.iter().any(|c| c.key == "iam:PassedToService")))));

    // SCIM: people, their aliases, membership by IdP id.
    for (i, p) in sim.org.people.iter().enumerate() {
        let person = format!("user:{}", p.email);
        let okta = format!("okta:{}", p.okta_id);
        assert!(has(&first, |f| matches!(f, Fact::Node { id, kind: NodeKind::HUMAN, .. } if *id == person)));
        for alias in [okta.clone(), format!("aws:samluser/{}", p.email), format!("k8s:{}", p.email)] {
            assert!(has(&first, |f| *f == Fact::SameAs { a: alias.clone(), b: person.clone() }), "{alias}");
        }
        let group = format!("okta:{}", sim.org.teams[sim.team_at(i, 0)].okta_group_id);
        assert!(
            has(&first, |f| *f == Fact::Member { member: okta.clone(), group: group.clone() }),
            "{okta} in {group}"
        );
    }
    assert!(has(
        &first,
        |f| matches!(f, Fact::Node { id, kind: NodeKind::Group, name: Some(n) } if id.starts_with("okta:") && n.starts_with("team-"))
    ));

    // RBAC: aggregation, bindings of every subject kind.
    let view = facts(&first).find_map(|f| match f {
        Fact::RbacRole { role, aggregate, rules, namespace: None, .. } if role == "k8s:clusterrole/view" => {
            Some((aggregate, rules))
        }
        _ => None,
    });
    let (aggregate, rules) = view.expect("view ClusterRole");
    assert_eq!(aggregate, &vec![vec![("rbac.authorization.k8s.io/aggregate-to-view".to_string(), "true".to_string())]]);
    assert!(!rules.is_empty());
    assert!(has(&first, |f| matches!(f, Fact::RbacRole { role, labels, .. }
        if role == "k8s:clusterrole/acme-view-extra" && labels.iter().any(|(k, _)| k == "rbac.authorization.k8s.io/aggregate-to-view"))));
    assert!(has(&first, |f| *f
        == Fact::RbacBinding {
            subject: "k8s:group/platform-engineers".into(),
            role: "k8s:clusterrole/cluster-admin".into(),
            namespace: None
        }));
    assert!(has(&first, |f| matches!(f, Fact::RbacBinding { subject, role, namespace: None }
        if subject == "k8s:system:serviceaccount:agents:k8s-mcp" && role == "k8s:clusterrole/impersonator")));
    assert!(has(&first, |f| matches!(f, Fact::RbacBinding { subject, role, namespace: Some(ns) }
        if subject.starts_with("k8s:group/") && *role == format!("k8s:role/{ns}/developer"))));
    assert!(has(&first, |f| matches!(f, Fact::RbacRole { role, namespace: Some(ns), rules, .. }
        if *role == format!("k8s:role/{ns}/developer") && rules.iter().any(|r| !r.resource_names.is_empty()))));

    // Agents: each acts for its users, is owned, and its tools act as their server.
    for a in &sim.org.agents {
        let agent = format!("agent:{}", a.id);
        assert!(has(
            &first,
            |f| matches!(f, Fact::Node { id, kind: NodeKind::AGENT, name: Some(n) } if *id == agent && *n == a.name)
        ));
        let owner = format!("user:{}", sim.org.people[a.owner].email);
        assert!(has(&first, |f| *f == Fact::Owns { owner: owner.clone(), agent: agent.clone() }));
        for &u in &a.users {
            let person = format!("user:{}", sim.org.people[u].email);
            assert!(
                has(&first, |f| matches!(f, Fact::ActsFor { agent: x, person: p, scope, expires: None }
                if *x == agent && *p == person && !scope.is_empty())),
                "{agent} for {person}"
            );
        }
    }
    let prod = &sim.org.accounts[0].id;
    assert!(has(&first, |f| matches!(f, Fact::Tool { tool, identity, .. }
        if tool.starts_with("tool:aws-mcp/") && *identity == format!("arn:aws:iam::{prod}:role/aws-mcp-task"))));
    assert!(has(&first, |f| matches!(f, Fact::Tool { tool, identity, .. }
        if tool.starts_with("tool:k8s-mcp/") && identity == "k8s:system:serviceaccount:agents:k8s-mcp")));
    assert!(has(&first, |f| matches!(f, Fact::Node { id, kind: NodeKind::Tool, .. } if id.starts_with("tool:"))));

    // What changed between the first and the last snapshot shows.
    let tools = |s: &[Snapshot]| facts(s).filter(|f| matches!(f, Fact::Tool { .. })).count();
    assert!(tools(&last) > tools(&first));
    let lambda_grants = |s: &[Snapshot]| {
        facts(s)
            .filter(|f| matches!(f, Fact::Attached { holder, .. } if holder.ends_with(":role/ingest-lambda-role")))
            .count()
    };
    assert!(lambda_grants(&last) > lambda_grants(&first), "permission creep");
}

#[test]
fn importing_is_deterministic() {
    let sim = sim();
    assert_eq!(import_all(&sim, 0), import_all(&sim, 0));
}

// ----- handwritten files -----

fn ok(format: InventoryFormat, text: &str) -> Imported {
    assert_eq!(detect(text.as_bytes()), Some(format), "detect: {text}");
    import(format, text.as_bytes(), AT, &ImportOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

fn err(format: InventoryFormat, text: &str) -> InventoryError {
    import(format, text.as_bytes(), AT, &ImportOptions::default()).expect_err("should fail")
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn iam_api_output_with_url_encoded_documents() {
    let trust = url_encode(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"x"},"NumericLessThan":{"aws:MultiFactorAuthAge":3600},"Bool":{"aws:SecureTransport":true}}}]}"#,
    );
    let inline =
        url_encode(r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}}"#);
    let managed = url_encode(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","NotAction":["iam:*"],"NotResource":"arn:aws:s3:::x"}]}"#,
    );
    let text = format!(
        r#"{{
  "UserDetailList": [
    {{"UserName": "svc", "Arn": "arn:aws:iam::111122223333:user/svc", "GroupList": ["ops"], "AttachedManagedPolicies": [],
      "Tags": [{{"Key": "type", "Value": "Service"}}], "PermissionsBoundary": {{"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": "arn:aws:iam::111122223333:policy/b"}}}}
  ],
  "GroupDetailList": [
    {{"GroupName": "ops", "Path": "/teams/", "Arn": "arn:aws:iam::111122223333:group/teams/ops", "GroupPolicyList": [], "AttachedManagedPolicies": [{{"PolicyName": "m", "PolicyArn": "arn:aws:iam::111122223333:policy/m"}}]}}
  ],
  "RoleDetailList": [
    {{"RoleName": "r", "Arn": "arn:aws:iam::111122223333:role/r", "AssumeRolePolicyDocument": "{trust}",
      "RolePolicyList": [{{"PolicyName": "read", "PolicyDocument": "{inline}"}}], "AttachedManagedPolicies": []}}
  ],
  "Policies": [
    {{"PolicyName": "m", "Arn": "arn:aws:iam::111122223333:policy/m", "DefaultVersionId": "v2",
      "PolicyVersionList": [{{"Document": "{managed}", "VersionId": "v2", "IsDefaultVersion": true}}, {{"Document": {{"Statement": []}}, "VersionId": "v1", "IsDefaultVersion": false}}]}}
  ],
  "IsTruncated": false
}}"#
    );
    let imported = ok(InventoryFormat::AwsIam, &text);
    assert!(imported.skipped.is_empty(), "{:?}", imported.skipped);
    assert_eq!(imported.snapshots.len(), 1);
    let s = &imported.snapshots[0];
    assert_eq!(s.scope, "aws:111122223333");
    let f = &s.facts;
    assert!(f.contains(&Fact::Node {
        id: "arn:aws:iam::111122223333:root".into(),
        kind: NodeKind::ACCOUNT,
        name: None
    }));
    assert!(f.contains(&Fact::Node {
        id: "arn:aws:iam::111122223333:user/svc".into(),
        kind: NodeKind::WORKLOAD,
        name: Some("svc".into())
    }));
    // The group's ARN, path and all, from the group list.
    assert!(f.contains(&Fact::Member {
        member: "arn:aws:iam::111122223333:user/svc".into(),
        group: "arn:aws:iam::111122223333:group/teams/ops".into()
    }));
    assert!(f.contains(&Fact::Boundary {
        holder: "arn:aws:iam::111122223333:user/svc".into(),
        policy: "arn:aws:iam::111122223333:policy/b".into()
    }));
    assert!(f.contains(&Fact::Attached {
        holder: "arn:aws:iam::111122223333:group/teams/ops".into(),
        policy: "arn:aws:iam::111122223333:policy/m".into()
    }));
    let trust = f
        .iter()
        .find_map(|f| match f {
            Fact::Trust { document, .. } => Some(document),
            _ => None,
        })
        .unwrap();
    let st = &trust.statements[0];
    assert!(st.principals.as_ref().unwrap().anyone);
    assert_eq!(st.actions, Matcher::Only(vec!["sts:AssumeRole".into()]));
    assert_eq!(st.resources, Matcher::Any);
    let conditions: BTreeSet<(String, String, Vec<String>)> =
        st.conditions.iter().map(|c| (c.operator.clone(), c.key.clone(), c.values.clone())).collect();
    assert!(conditions.contains(&("NumericLessThan".into(), "aws:MultiFactorAuthAge".into(), vec!["3600".into()])));
    assert!(conditions.contains(&("Bool".into(), "aws:SecureTransport".into(), vec!["true".into()])));
    let inline_id = "arn:aws:iam::111122223333:role/r#inline/read".to_string();
    assert!(
        f.contains(&Fact::Attached { holder: "arn:aws:iam::111122223333:role/r".into(), policy: inline_id.clone() })
    );
    assert!(f.iter().any(|x| matches!(x, Fact::Policy { policy, document } if *policy == inline_id && document.statements[0].actions == Matcher::Only(vec!["s3:GetObject".into()]))));
    // The default version, not the other.
    let m = f
        .iter()
        .find_map(|x| match x {
            Fact::Policy { policy, document } if policy.ends_with(":policy/m") => Some(document),
            _ => None,
        })
        .unwrap();
    assert_eq!(m.statements.len(), 1);
    assert_eq!(m.statements[0].actions, Matcher::Not(vec!["iam:*".into()]));
    assert_eq!(m.statements[0].resources, Matcher::Not(vec!["arn:aws:s3:::x".into()]));
}

#[test]
fn a_bad_iam_entry_is_reported_and_the_rest_imported() {
    let text = r#"{
  "UserDetailList": [],
  "RoleDetailList": [
    {"RoleName": "good", "Arn": "arn:aws:iam::111122223333:role/good", "AssumeRolePolicyDocument": {"Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}},
    {"RoleName": "bad", "Arn": "arn:aws:iam::111122223333:role/bad",
     "AssumeRolePolicyDocument": {"Statement": [{"Effect": "Permit", "Action": "sts:AssumeRole"}]}},
    {"RoleName": "no-arn"},
    {"RoleName": "also-good", "Arn": "arn:aws:iam::111122223333:role/also-good"}
  ]
}"#;
    let imported = ok(InventoryFormat::AwsIam, text);
    assert_eq!(imported.skipped.len(), 2, "{:?}", imported.skipped);
    let bad = &imported.skipped[0];
    assert_eq!(bad.location.line, 5);
    assert_eq!(bad.location.index, Some(1));
    assert_eq!(bad.location.path.as_deref(), Some("RoleDetailList[1].AssumeRolePolicyDocument.Statement[0]"));
    assert_eq!(bad.entry.as_deref(), Some("arn:aws:iam::111122223333:role/bad"));
    assert!(bad.to_string().contains("Permit"), "{bad}");
    assert_eq!(imported.skipped[1].location.path.as_deref(), Some("RoleDetailList[2].Arn"));
    assert_eq!(imported.skipped[1].entry.as_deref(), Some("no-arn"));
    let f = &imported.snapshots[0].facts;
    assert!(f.iter().any(|x| matches!(x, Fact::Node { id, .. } if id.ends_with("role/good"))));
    assert!(f.iter().any(|x| matches!(x, Fact::Node { id, .. } if id.ends_with("role/also-good"))));
    assert!(!f.iter().any(|x| matches!(x, Fact::Node { id, .. } if id.ends_with("role/bad"))));
}

#[test]
fn malformed_files_are_located_errors() {
    // Truncated inside the third line.
    let e = err(InventoryFormat::AwsIam, "{\n  \"UserDetailList\": [\n    {\"UserName\": \"a\", \"Arn\": \"arn:aw");
    assert!(matches!(&e, InventoryError::Malformed { location, .. } if location.line == 3), "{e}");
    // A syntax error on line 4.
    let e = err(
        InventoryFormat::Scim,
        "{\n\"schemas\": [\"urn:ietf:params:scim:api:messages:2.0:ListResponse\"],\n\"Resources\": [\n {\"id\": 1,, }\n]}",
    );
    assert!(matches!(&e, InventoryError::Malformed { location, .. } if location.line == 4), "{e}");
    assert!(e.to_string().contains("line 4"), "{e}");
    // Not the format asked for.
    let e = err(InventoryFormat::AwsIam, r#"{"format": "tenet.agent-registry/v1", "agents": []}"#);
    assert!(matches!(e, InventoryError::Invalid { .. }), "{e}");
    let e = err(InventoryFormat::Scim, "[1, 2]");
    assert!(matches!(e, InventoryError::Invalid { .. }), "{e}");
    // A list that is not a list.
    let e = err(InventoryFormat::AwsIam, "{\n\"RoleDetailList\": {\"a\": 1}}");
    assert!(
        matches!(&e, InventoryError::Invalid { location, .. } if location.line == 2 && location.path.as_deref() == Some("RoleDetailList")),
        "{e}"
    );
    // Lists all empty: no account named, nothing whose inventory it could be.
    let e = err(
        InventoryFormat::AwsIam,
        r#"{"UserDetailList": [], "GroupDetailList": [], "RoleDetailList": [], "Policies": []}"#,
    );
    assert!(matches!(&e, InventoryError::Invalid { .. }) && e.to_string().contains("no entry names an account"), "{e}");
    // Not UTF-8; empty.
    let e =
        import(InventoryFormat::AgentRegistry, b"{\"agents\": [\"\xff\"]}", AT, &ImportOptions::default()).unwrap_err();
    assert!(matches!(e, InventoryError::Malformed { .. }), "{e}");
    assert!(matches!(err(InventoryFormat::K8sRbac, ""), InventoryError::Invalid { .. }));
    // Nesting past the parser's limit: an error, not a stack overflow.
    let deep = format!("{{\"UserDetailList\": [{}{}]}}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(
        import(InventoryFormat::AwsIam, deep.as_bytes(), AT, &ImportOptions::default())
            .is_ok_and(|i| i.skipped.len() == 1)
            || import(InventoryFormat::AwsIam, deep.as_bytes(), AT, &ImportOptions::default()).is_err()
    );
    // YAML: the line in the file, not in the document.
    let yaml = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: a\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: b\n   namespace: x\n";
    let e = err(InventoryFormat::K8sRbac, yaml);
    assert!(matches!(&e, InventoryError::Malformed { location, .. } if location.line == 10), "{e}");
}

#[test]
fn paginated_pages_are_refused() {
    let e = err(InventoryFormat::AwsIam, "{\"UserDetailList\": [],\n\"IsTruncated\": true, \"Marker\": \"abc\"}");
    assert!(matches!(&e, InventoryError::Incomplete { location, .. } if location.line == 2), "{e}");
    let e = err(
        InventoryFormat::Scim,
        r#"{"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "totalResults": 3, "Resources": [{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g1"}]}"#,
    );
    assert!(matches!(e, InventoryError::Incomplete { .. }), "{e}");
}

#[test]
fn scim_users_groups_and_single_resources() {
    let text = r#"{
  "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
  "totalResults": 5,
  "Resources": [
    {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "00u1", "userName": "ada@acme.example", "displayName": "Ada",
     "emails": [{"value": "ada@acme.example", "primary": true}, {"value": "ada.lovelace@acme.example"}],
     "groups": [{"value": "00g1"}], "active": true},
    {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "00u2", "userName": "gone@acme.example", "active": false},
    {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "00g1", "displayName": "team-a",
     "members": [{"value": "00u1", "type": "User"}, {"value": "00u3"}]},
    {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "00u4"},
    {"schemas": ["urn:example:Device"], "id": "d1"}
  ]
}"#;
    let imported = ok(InventoryFormat::Scim, text);
    let s = &imported.snapshots[0];
    assert_eq!((s.source.as_str(), s.scope.as_str()), ("scim", "idp:okta"));
    let f = &s.facts;
    let same = |a: &str| Fact::SameAs { a: a.into(), b: "user:ada@acme.example".into() };
    assert!(f.contains(&Fact::Node {
        id: "user:ada@acme.example".into(),
        kind: NodeKind::HUMAN,
        name: Some("Ada".into())
    }));
    for b in [
        "okta:00u1",
        "user:ada.lovelace@acme.example",
        "aws:samluser/ada@acme.example",
        "aws:source-identity/ada@acme.example",
        "k8s:ada@acme.example",
    ] {
        assert!(f.contains(&same(b)), "{b}");
    }
    assert!(!f.contains(&same("user:ada@acme.example")));
    // Membership from both sides, once.
    let m = Fact::Member { member: "okta:00u1".into(), group: "okta:00g1".into() };
    assert_eq!(f.iter().filter(|x| **x == m).count(), 1);
    assert!(f.contains(&Fact::Member { member: "okta:00u3".into(), group: "okta:00g1".into() }));
    assert!(f.contains(&Fact::Node { id: "okta:00g1".into(), kind: NodeKind::Group, name: Some("team-a".into()) }));
    // Inactive: gone.
    assert!(!f.iter().any(|x| matches!(x, Fact::Node { id, .. } if id.contains("gone"))));
    // No userName, and not a User or Group: reported.
    assert_eq!(imported.skipped.len(), 2, "{:?}", imported.skipped);
    assert_eq!(imported.skipped[0].location.path.as_deref(), Some("Resources[3].userName"));
    assert_eq!(imported.skipped[0].location.line, 11);
    assert_eq!(imported.skipped[1].location.index, Some(4));

    // One resource: complete only for itself.
    let one = ok(
        InventoryFormat::Scim,
        r#"{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "00u9", "userName": "bo@acme.example", "name": {"formatted": "Bo B"}}"#,
    );
    assert_eq!(one.snapshots[0].scope, "idp:okta/Users/00u9");
    assert!(one.snapshots[0].facts.contains(&Fact::Node {
        id: "user:bo@acme.example".into(),
        kind: NodeKind::HUMAN,
        name: Some("Bo B".into())
    }));
    let custom = import(
        InventoryFormat::Scim,
        br#"{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g"}"#,
        AT,
        &ImportOptions { idp: "entra".into(), ..Default::default() },
    )
    .unwrap();
    assert_eq!(custom.snapshots[0].facts[0], Fact::Node { id: "entra:g".into(), kind: NodeKind::Group, name: None });
}

const RBAC_YAML: &str = "# exported by hand
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: monitoring
  labels:
    team: sre
aggregationRule:
  clusterRoleSelectors:
  - matchLabels:
      rbac.example.com/aggregate-to-monitoring: \"true\"
rules: []
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: read-pods
  namespace: payments
subjects:
- kind: User
  name: ada@acme.example
  apiGroup: rbac.authorization.k8s.io
- kind: ServiceAccount
  name: deployer
- kind: Group
  name: payments-engineers
roleRef:
  kind: ClusterRole
  name: view
  apiGroup: rbac.authorization.k8s.io
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: not-rbac
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: pod-reader
  namespace: payments
rules:
- apiGroups: [\"\"]
  resources: [pods, pods/log]
  verbs: [get, list]
  resourceNames: [api-0]
- nonResourceURLs: [/healthz]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: broken
roleRef:
  kind: Role
  name: pod-reader
subjects: []
";

#[test]
fn rbac_yaml_stream() {
    let imported = ok(InventoryFormat::K8sRbac, RBAC_YAML);
    let s = &imported.snapshots[0];
    assert_eq!((s.source.as_str(), s.scope.as_str()), ("k8s-rbac", "k8s:k8s"));
    let f = &s.facts;
    assert!(f.contains(&Fact::RbacRole {
        role: "k8s:clusterrole/monitoring".into(),
        namespace: None,
        rules: vec![],
        labels: vec![("team".into(), "sre".into())],
        aggregate: vec![vec![("rbac.example.com/aggregate-to-monitoring".into(), "true".into())]],
    }));
    for subject in
        ["k8s:ada@acme.example", "k8s:system:serviceaccount:payments:deployer", "k8s:group/payments-engineers"]
    {
        assert!(
            f.contains(&Fact::RbacBinding {
                subject: subject.into(),
                role: "k8s:clusterrole/view".into(),
                namespace: Some("payments".into())
            }),
            "{subject}"
        );
    }
    assert!(f.contains(&Fact::Node {
        id: "k8s:system:serviceaccount:payments:deployer".into(),
        kind: NodeKind::WORKLOAD,
        name: Some("system:serviceaccount:payments:deployer".into())
    }));
    assert!(f.contains(&Fact::Node {
        id: "k8s:group/payments-engineers".into(),
        kind: NodeKind::Group,
        name: Some("payments-engineers".into())
    }));
    assert!(f.contains(&Fact::Node {
        id: "k8s:ada@acme.example".into(),
        kind: NodeKind::HUMAN,
        name: Some("ada@acme.example".into())
    }));
    let reader = f.iter().find_map(|x| match x {
        Fact::RbacRole { role, namespace, rules, .. } if role == "k8s:role/payments/pod-reader" => {
            Some((namespace, rules))
        }
        _ => None,
    });
    let (ns, rules) = reader.expect("pod-reader");
    assert_eq!(ns.as_deref(), Some("payments"));
    assert_eq!(rules[0].resources, vec!["pods", "pods/log"]);
    assert_eq!(rules[0].api_groups, vec![""]);
    assert_eq!(rules[0].resource_names, vec!["api-0"]);
    assert_eq!(rules[1].non_resource_urls, vec!["/healthz"]);
    assert!(f.contains(&Fact::Node {
        id: "k8s:role/payments/pod-reader".into(),
        kind: NodeKind::Policy,
        name: Some("pod-reader".into())
    }));
    // The ConfigMap and the ClusterRoleBinding to a Role: reported, with their documents' lines.
    assert_eq!(imported.skipped.len(), 2, "{:?}", imported.skipped);
    assert_eq!(imported.skipped[0].location.line, 31);
    assert!(imported.skipped[0].reason.contains("ConfigMap"));
    assert_eq!(imported.skipped[1].location.line, 49);
    assert_eq!(imported.skipped[1].entry.as_deref(), Some("ClusterRoleBinding/broken"));
    assert!(imported.skipped[1].location.path.as_deref().is_some_and(|p| p.ends_with("roleRef.kind")));
}

#[test]
fn rbac_selectors_read_as_the_audit_adapter_reads_them() {
    let yaml = "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: agg}
aggregationRule:
  clusterRoleSelectors:
  - matchExpressions: [{key: tier, operator: In, values: [a]}]
  - matchLabels: {}
  - matchLabels: {b: \"1\", a: x}
";
    let imported = ok(InventoryFormat::K8sRbac, yaml);
    assert_eq!(imported.snapshots[0].scope, "k8s:k8s/clusterrole/agg");
    assert!(imported.snapshots[0].facts.iter().any(|f| matches!(f, Fact::RbacRole { aggregate, .. }
        if *aggregate == vec![vec![("a".to_string(), "x".to_string()), ("b".to_string(), "1".to_string())]])));
    // The expression is not modelled, and says so.
    assert_eq!(imported.skipped.len(), 1);
    assert_eq!(
        imported.skipped[0].location.path.as_deref(),
        Some("aggregationRule.clusterRoleSelectors[0].matchExpressions")
    );
}

#[test]
fn rbac_json_lists_and_lone_objects() {
    // The same objects as a JSON List: identical facts.
    let docs: Vec<serde_json::Value> =
        RBAC_YAML.split("\n---\n").map(|d| serde_yaml_ng::from_str(d).unwrap()).collect();
    let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": docs});
    let from_json = ok(InventoryFormat::K8sRbac, &serde_json::to_string_pretty(&list).unwrap());
    let from_yaml = ok(InventoryFormat::K8sRbac, RBAC_YAML);
    assert_eq!(from_json.snapshots, from_yaml.snapshots);
    assert_eq!(from_json.skipped.len(), 2);
    assert_eq!(from_json.skipped[0].location.index, Some(2));
    // A YAML List too.
    let yaml_list = serde_yaml_ng::to_string(&list).unwrap();
    assert_eq!(ok(InventoryFormat::K8sRbac, &yaml_list).snapshots, from_yaml.snapshots);
    // One object alone is complete for itself only.
    let one = ok(InventoryFormat::K8sRbac, &serde_json::to_string(&list["items"][3]).unwrap());
    assert_eq!(one.snapshots[0].scope, "k8s:k8s/role/payments/pod-reader");
    let other_cluster = import(
        InventoryFormat::K8sRbac,
        RBAC_YAML.as_bytes(),
        AT,
        &ImportOptions { cluster: "prod-eks".into(), ..Default::default() },
    )
    .unwrap();
    assert_eq!(other_cluster.snapshots[0].scope, "k8s:prod-eks");
}

#[test]
fn agent_registry_entries() {
    let text = r#"{
  "format": "tenet.agent-registry/v1",
  "generated_at": "2026-10-05T00:00:00Z",
  "servers": [
    {"name": "aws-mcp", "identity": "arn:aws:iam::123456789012:role/aws-mcp-task", "tools": [{"name": "get_metrics"}, {"name": "unused"}]},
    {"name": "k8s-mcp", "identity": "system:serviceaccount:agents:k8s-mcp", "tools": [{"name": "get_pods"}]},
    {"name": "web", "tools": [{"name": "fetch"}]}
  ],
  "agents": [
    {"id": "agt-1", "name": "ops-1", "owner": "ada@acme.example", "users": ["ada@acme.example", "ben@acme.example"],
     "tools": [{"name": "get_metrics", "server": "aws-mcp"}, {"name": "get_pods", "server": "k8s-mcp"}, {"name": "fetch", "server": "web"}],
     "delegated_scopes": ["aws:acme-prod:role/mcp-aws-tools", "k8s:impersonate"]},
    {"id": "agt-2", "owner": "ada@acme.example", "users": "ada@acme.example"}
  ]
}"#;
    let imported = ok(InventoryFormat::AgentRegistry, text);
    let s = &imported.snapshots[0];
    assert_eq!((s.source.as_str(), s.scope.as_str()), ("agent-registry", "agents"));
    let f = &s.facts;
    assert!(f.contains(&Fact::Node { id: "agent:agt-1".into(), kind: NodeKind::AGENT, name: Some("ops-1".into()) }));
    assert!(f.contains(&Fact::Owns { owner: "user:ada@acme.example".into(), agent: "agent:agt-1".into() }));
    for person in ["user:ada@acme.example", "user:ben@acme.example"] {
        assert!(f.contains(&Fact::ActsFor {
            agent: "agent:agt-1".into(),
            person: person.into(),
            scope: vec!["aws:acme-prod:role/mcp-aws-tools".into(), "k8s:impersonate".into()],
            expires: None
        }));
    }
    let tool = |t: &str, i: &str| Fact::Tool { agent: "agent:agt-1".into(), tool: t.into(), identity: i.into() };
    assert!(f.contains(&tool("tool:aws-mcp/get_metrics", "arn:aws:iam::123456789012:role/aws-mcp-task")));
    assert!(f.contains(&tool("tool:k8s-mcp/get_pods", "k8s:system:serviceaccount:agents:k8s-mcp")));
    assert!(f.contains(&tool("tool:web/fetch", "service:web")));
    assert!(f.contains(&Fact::Node {
        id: "tool:aws-mcp/unused".into(),
        kind: NodeKind::Tool,
        name: Some("unused".into())
    }));
    // `users` must be a list: the second agent is reported.
    assert_eq!(imported.skipped.len(), 1);
    assert_eq!(imported.skipped[0].location.path.as_deref(), Some("agents[1].users"));
    assert_eq!(imported.skipped[0].location.line, 13);
    assert_eq!(imported.skipped[0].entry.as_deref(), Some("agt-2"));

    let e = err(InventoryFormat::AgentRegistry, r#"{"format": "tenet.agent-registry/v9", "agents": []}"#);
    assert!(e.to_string().contains("v9"), "{e}");
}

#[test]
fn detection_says_no_to_what_is_not_inventory() {
    for data in [
        &br#"{"Records": [{"eventSource": "s3.amazonaws.com", "eventName": "GetObject", "eventTime": "2026-01-01T00:00:00Z"}]}"#[..],
        br#"{"resourceSpans": []}"#,
        br#"{"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [{"kind": "Event", "auditID": "a"}]}"#,
        br#"{"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "ConfigMap"}]}"#,
        b"apiVersion: v1\nkind: ConfigMap\n",
        b"",
        b"   ",
        b"\xff\xfe garbage",
        b"[1, 2, 3]",
    ] {
        assert_eq!(detect(data), None, "{}", String::from_utf8_lossy(data));
    }
    // Detection reads a prefix: a huge file is still recognised by its start.
    let mut big = String::from("{\"RoleDetailList\": [");
    while big.len() < 3 << 20 {
        big.push_str(r#"{"RoleName": "r", "Arn": "arn:aws:iam::111122223333:role/r"},"#);
    }
    assert_eq!(detect(big.as_bytes()), Some(InventoryFormat::AwsIam));
    // SCIM with Resources first (as serde_json orders keys), and a registry without `format`.
    assert_eq!(
        detect(br#"{"Resources": [{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]}], "schemas": []}"#),
        Some(InventoryFormat::Scim)
    );
    assert_eq!(
        detect(br#"{"agents": [{"id": "a", "owner": "o", "users": []}]}"#),
        Some(InventoryFormat::AgentRegistry)
    );
    assert_eq!(
        detect(b"\xEF\xBB\xBF- apiVersion: rbac.authorization.k8s.io/v1\n  kind: Role\n"),
        Some(InventoryFormat::K8sRbac)
    );
    for f in InventoryFormat::ALL {
        assert_eq!(InventoryFormat::by_name(f.name()), Some(f));
    }
}

// ----- nothing panics -----

mod never_panics {
    use std::sync::OnceLock;

    use proptest::prelude::*;

    use super::*;

    /// Small real files of every format, and the handwritten YAML.
    fn samples() -> &'static [Vec<u8>] {
        static SAMPLES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
        SAMPLES.get_or_init(|| {
            let sim = Simulation::new(Config { seed: 9, days: 2, humans: 4, agents: 2, ..Default::default() });
            let mut files: Vec<Vec<u8>> = snapshot(&sim, 0).into_iter().map(|(_, bytes)| bytes).collect();
            files.push(RBAC_YAML.as_bytes().to_vec());
            files
        })
    }

    fn check(bytes: &[u8]) {
        let _ = detect(bytes);
        for format in InventoryFormat::ALL {
            if let Ok(imported) = import(format, bytes, AT, &ImportOptions::default()) {
                for s in &imported.skipped {
                    let _ = s.to_string();
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
            check(&bytes);
        }

        /// Real files with bytes flipped, inserted or cut off.
        #[test]
        fn mutated_files(
            which in any::<prop::sample::Index>(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6),
        ) {
            let mut bytes = which.get(samples()).clone();
            for (at, byte, op) in edits {
                if bytes.is_empty() { break; }
                let i = at.index(bytes.len());
                match op {
                    0 => bytes[i] = byte,
                    1 => bytes.insert(i, byte),
                    _ => bytes.truncate(i),
                }
            }
            check(&bytes);
        }
    }
}
