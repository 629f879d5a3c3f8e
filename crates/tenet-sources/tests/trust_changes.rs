//! Events record the trust changes they make, typed at the edge: IAM calls
//! in CloudTrail, RBAC writes and authenticated groups in Kubernetes audit,
//! group membership in Okta, delegations in agent traces.

use tenet_model::{
    Condition, Effect, Event, Fact, Matcher, NodeKind, PolicyDocument, PrincipalMatcher, RbacRule, TrustChange,
};
use tenet_sources::formats::cloudtrail::{CloudTrail, parse_policy_document};
use tenet_sources::formats::{k8s_audit::K8sAudit, okta::Okta, otlp::Otlp};
use tenet_sources::{Format, read_all};

// ----- helpers -----

fn read(format: &dyn Format, data: &[u8]) -> Vec<Event> {
    let (events, errors) = read_all(format, data);
    assert!(errors.is_empty(), "{errors:?}");
    events
}

fn changes(format: &dyn Format, data: &[u8]) -> Vec<TrustChange> {
    read(format, data).into_iter().flat_map(|e| e.changes).collect()
}

fn asserted(changes: &[TrustChange]) -> Vec<Fact> {
    changes
        .iter()
        .filter_map(|c| match c {
            TrustChange::Assert { fact } => Some(fact.clone()),
            TrustChange::Retract { .. } | TrustChange::Observe { .. } => None,
        })
        .collect()
}

fn observed(changes: &[TrustChange]) -> Vec<Fact> {
    changes
        .iter()
        .filter_map(|c| match c {
            TrustChange::Observe { fact } => Some(fact.clone()),
            TrustChange::Retract { .. } | TrustChange::Assert { .. } => None,
        })
        .collect()
}

fn retracted(changes: &[TrustChange]) -> Vec<String> {
    changes
        .iter()
        .filter_map(|c| match c {
            TrustChange::Retract { key } => Some(key.clone()),
            TrustChange::Assert { .. } | TrustChange::Observe { .. } => None,
        })
        .collect()
}

fn shared(path: &str) -> Vec<u8> {
    let full = format!("{}/../../../shared/data/{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// A JSON string literal holding `text` (how CloudTrail carries policy documents).
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

const ACCT: &str = "111122223333";

/// An IAM call by an IAM user, as CloudTrail delivers it.
fn iam_with(event: &str, params: &str, response: &str, extra: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.08","userIdentity":{{"type":"IAMUser","principalId":"AIDAEXAMPLE","arn":"arn:aws:iam::{ACCT}:user/admin","accountId":"{ACCT}","accessKeyId":"AKIAEXAMPLE","userName":"admin"}},"eventTime":"2024-08-01T13:33:28Z","eventSource":"iam.amazonaws.com","eventName":"{event}","awsRegion":"us-east-1","sourceIPAddress":"198.51.100.7","userAgent":"aws-cli/2.15","requestParameters":{params},"responseElements":{response},"requestID":"r-{event}","eventID":"e-{event}","readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"{ACCT}","eventCategory":"Management"{extra}}}"#
    )
}

fn iam(event: &str, params: &str) -> String {
    iam_with(event, params, "null", "")
}

fn ct_changes(records: &[String]) -> Vec<TrustChange> {
    changes(&CloudTrail, format!("{{\"Records\":[{}]}}", records.join(",")).as_bytes())
}

fn user(name: &str) -> String {
    format!("arn:aws:iam::{ACCT}:user/{name}")
}

fn role(name: &str) -> String {
    format!("arn:aws:iam::{ACCT}:role/{name}")
}

fn group(name: &str) -> String {
    format!("arn:aws:iam::{ACCT}:group/{name}")
}

const ADMIN: &str = "arn:aws:iam::aws:policy/AdministratorAccess";

const S3_READ: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Read","Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":"arn:aws:s3:::reports/*"}]}"#;

fn s3_read() -> PolicyDocument {
    PolicyDocument {
        statements: vec![tenet_model::Statement {
            sid: Some("Read".into()),
            effect: Effect::Allow,
            actions: Matcher::Only(vec!["s3:GetObject".into(), "s3:ListBucket".into()]),
            resources: Matcher::Only(vec!["arn:aws:s3:::reports/*".into()]),
            principals: None,
            conditions: Vec::new(),
        }],
    }
}

// ----- CloudTrail: managed and inline policies -----

#[test]
fn attach_and_detach_managed_policies_for_users_groups_and_roles() {
    let got = ct_changes(&[
        iam("AttachUserPolicy", &format!(r#"{{"userName":"bob","policyArn":"{ADMIN}"}}"#)),
        iam("AttachGroupPolicy", &format!(r#"{{"groupName":"ops","policyArn":"{ADMIN}"}}"#)),
        iam("AttachRolePolicy", &format!(r#"{{"roleName":"deployer","policyArn":"{ADMIN}"}}"#)),
        iam("DetachUserPolicy", &format!(r#"{{"userName":"bob","policyArn":"{ADMIN}"}}"#)),
        iam("DetachGroupPolicy", &format!(r#"{{"groupName":"ops","policyArn":"{ADMIN}"}}"#)),
        iam("DetachRolePolicy", &format!(r#"{{"roleName":"deployer","policyArn":"{ADMIN}"}}"#)),
    ]);
    let attached = |holder: String| Fact::Attached { holder, policy: ADMIN.into() };
    assert_eq!(asserted(&got), vec![attached(user("bob")), attached(group("ops")), attached(role("deployer"))]);
    assert_eq!(
        retracted(&got),
        vec![attached(user("bob")).key(), attached(group("ops")).key(), attached(role("deployer")).key()]
    );
    assert_eq!(retracted(&got)[0], format!("attached|{}|{ADMIN}", user("bob")));
}

#[test]
fn put_inline_policy_asserts_its_document_and_attachment() {
    let got = ct_changes(&[
        iam(
            "PutUserPolicy",
            &format!(r#"{{"userName":"bob","policyName":"read","policyDocument":{}}}"#, quoted(S3_READ)),
        ),
        iam(
            "PutGroupPolicy",
            &format!(r#"{{"groupName":"ops","policyName":"read","policyDocument":{}}}"#, quoted(S3_READ)),
        ),
        iam(
            "PutRolePolicy",
            &format!(r#"{{"roleName":"app","policyName":"read","policyDocument":{}}}"#, quoted(S3_READ)),
        ),
    ]);
    let mut expected = Vec::new();
    for holder in [user("bob"), group("ops"), role("app")] {
        let policy = format!("{holder}#inline/read");
        expected.push(Fact::Policy { policy: policy.clone(), document: s3_read() });
        expected.push(Fact::Attached { holder, policy });
    }
    assert_eq!(asserted(&got), expected);
}

#[test]
fn put_inline_policy_reads_url_encoded_documents() {
    let encoded: String = S3_READ
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    let got = ct_changes(&[iam(
        "PutRolePolicy",
        &format!(r#"{{"roleName":"app","policyName":"read","policyDocument":"{encoded}"}}"#),
    )]);
    assert_eq!(asserted(&got)[0], Fact::Policy { policy: format!("{}#inline/read", role("app")), document: s3_read() });
}

#[test]
fn delete_inline_policy_retracts_its_attachment() {
    let got = ct_changes(&[
        iam("DeleteUserPolicy", r#"{"userName":"bob","policyName":"read"}"#),
        iam("DeleteGroupPolicy", r#"{"groupName":"ops","policyName":"read"}"#),
        iam("DeleteRolePolicy", r#"{"roleName":"app","policyName":"read"}"#),
    ]);
    let keys = retracted(&got);
    for holder in [user("bob"), group("ops"), role("app")] {
        let attached = Fact::Attached { holder: holder.clone(), policy: format!("{holder}#inline/read") };
        assert!(keys.contains(&attached.key()), "{keys:?}");
        assert!(keys.contains(&format!("policy|{holder}#inline/read")), "{keys:?}");
    }
    assert!(asserted(&got).is_empty());
}

#[test]
fn create_policy_and_default_versions_assert_the_document() {
    let arn = format!("arn:aws:iam::{ACCT}:policy/team/reports-read");
    let v2 = S3_READ.replace("s3:ListBucket", "s3:*");
    let got = ct_changes(&[
        iam_with(
            "CreatePolicy",
            &format!(r#"{{"policyName":"reports-read","path":"/team/","policyDocument":{}}}"#, quoted(S3_READ)),
            &format!(
                r#"{{"policy":{{"policyName":"reports-read","policyId":"ANPA1","arn":"{arn}","path":"/team/","defaultVersionId":"v1","attachmentCount":0,"isAttachable":true,"createDate":"Aug 1, 2024 1:33:28 PM"}}}}"#
            ),
            "",
        ),
        iam(
            "CreatePolicyVersion",
            &format!(r#"{{"policyArn":"{arn}","policyDocument":{},"setAsDefault":false}}"#, quoted(&v2)),
        ),
        iam(
            "CreatePolicyVersion",
            &format!(r#"{{"policyArn":"{arn}","policyDocument":{},"setAsDefault":true}}"#, quoted(&v2)),
        ),
    ]);
    let facts = asserted(&got);
    assert_eq!(facts.len(), 3, "a non-default version changes nothing: {facts:?}");
    assert_eq!(facts[0], Fact::Node { id: arn.clone(), kind: NodeKind::Policy, name: Some("reports-read".into()) });
    assert_eq!(facts[1], Fact::Policy { policy: arn.clone(), document: s3_read() });
    let Fact::Policy { policy, document } = &facts[2] else { panic!("{facts:?}") };
    assert_eq!(policy, &arn);
    assert_eq!(document.statements[0].actions, Matcher::Only(vec!["s3:GetObject".into(), "s3:*".into()]));
}

// ----- CloudTrail: roles, users, groups, boundaries -----

const TRUST_EC2: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

#[test]
fn create_role_asserts_node_trust_and_boundary_using_the_response_arn() {
    let arn = format!("arn:aws:iam::{ACCT}:role/service/app");
    let got = ct_changes(&[iam_with(
        "CreateRole",
        &format!(
            r#"{{"roleName":"app","path":"/service/","assumeRolePolicyDocument":{},"permissionsBoundary":"arn:aws:iam::aws:policy/PowerUserAccess"}}"#,
            quoted(TRUST_EC2)
        ),
        &format!(r#"{{"role":{{"path":"/service/","roleName":"app","roleId":"AROA1","arn":"{arn}"}}}}"#),
        "",
    )]);
    let facts = asserted(&got);
    assert_eq!(facts[0], Fact::Node { id: arn.clone(), kind: NodeKind::ROLE, name: Some("app".into()) });
    let Fact::Trust { role, document } = &facts[1] else { panic!("{facts:?}") };
    assert_eq!(role, &arn);
    let who = document.statements[0].principals.as_ref().unwrap();
    assert_eq!(who.service, vec!["ec2.amazonaws.com"]);
    assert_eq!(document.statements[0].resources, Matcher::Any);
    assert_eq!(facts[2], Fact::Boundary { holder: arn, policy: "arn:aws:iam::aws:policy/PowerUserAccess".into() });
}

#[test]
fn update_assume_role_policy_and_delete_role() {
    let got = ct_changes(&[
        iam("UpdateAssumeRolePolicy", &format!(r#"{{"roleName":"app","policyDocument":{}}}"#, quoted(TRUST_EC2))),
        iam("DeleteRole", r#"{"roleName":"app"}"#),
    ]);
    assert!(matches!(&asserted(&got)[..], [Fact::Trust { role: r, .. }] if *r == role("app")));
    let keys = retracted(&got);
    assert!(keys.contains(&format!("node|{}", role("app"))), "{keys:?}");
    assert!(keys.contains(&format!("trust|{}", role("app"))), "{keys:?}");
}

#[test]
fn users_groups_and_membership() {
    let got = ct_changes(&[
        iam_with(
            "CreateUser",
            r#"{"userName":"carol"}"#,
            &format!(
                r#"{{"user":{{"path":"/staff/","userName":"carol","arn":"arn:aws:iam::{ACCT}:user/staff/carol"}}}}"#
            ),
            "",
        ),
        iam("CreateUser", r#"{"userName":"dave"}"#),
        iam("CreateGroup", r#"{"groupName":"ops"}"#),
        iam("AddUserToGroup", r#"{"groupName":"ops","userName":"dave"}"#),
        iam("RemoveUserFromGroup", r#"{"groupName":"ops","userName":"dave"}"#),
        iam("DeleteUser", r#"{"userName":"dave"}"#),
        iam("DeleteGroup", r#"{"groupName":"ops"}"#),
    ]);
    let member = Fact::Member { member: user("dave"), group: group("ops") };
    assert_eq!(
        asserted(&got),
        vec![
            Fact::Node {
                id: format!("arn:aws:iam::{ACCT}:user/staff/carol"),
                kind: NodeKind::HUMAN,
                name: Some("carol".into())
            },
            Fact::Node { id: user("dave"), kind: NodeKind::HUMAN, name: Some("dave".into()) },
            Fact::Node { id: group("ops"), kind: NodeKind::Group, name: Some("ops".into()) },
            member.clone(),
        ]
    );
    let keys = retracted(&got);
    assert_eq!(keys[0], member.key());
    assert!(keys.contains(&format!("node|{}", user("dave"))), "{keys:?}");
    assert!(keys.contains(&format!("node|{}", group("ops"))), "{keys:?}");
}

#[test]
fn permissions_boundaries_put_and_delete() {
    let pb = format!("arn:aws:iam::{ACCT}:policy/boundary");
    let got = ct_changes(&[
        iam("PutUserPermissionsBoundary", &format!(r#"{{"userName":"bob","permissionsBoundary":"{pb}"}}"#)),
        iam("PutRolePermissionsBoundary", &format!(r#"{{"roleName":"app","permissionsBoundary":"{pb}"}}"#)),
        iam("DeleteUserPermissionsBoundary", r#"{"userName":"bob"}"#),
        iam("DeleteRolePermissionsBoundary", r#"{"roleName":"app"}"#),
    ]);
    assert_eq!(
        asserted(&got),
        vec![
            Fact::Boundary { holder: user("bob"), policy: pb.clone() },
            Fact::Boundary { holder: role("app"), policy: pb },
        ]
    );
    assert_eq!(retracted(&got), vec![format!("boundary|{}", user("bob")), format!("boundary|{}", role("app"))]);
}

#[test]
fn failed_calls_change_nothing() {
    let denied = iam_with(
        "AttachUserPolicy",
        &format!(r#"{{"userName":"bob","policyArn":"{ADMIN}"}}"#),
        "null",
        r#","errorCode":"AccessDenied","errorMessage":"User: admin is not authorized""#,
    );
    let events = read(&CloudTrail, denied.as_bytes());
    assert_eq!(events.len(), 1);
    assert!(events[0].changes.is_empty(), "{:?}", events[0].changes);
}

#[test]
fn surprising_request_parameters_cost_the_changes_not_the_record() {
    let records = [
        // A name that is not a string: the lenient parse gives up, the record stays.
        iam("AttachUserPolicy", &format!(r#"{{"userName":42,"policyArn":"{ADMIN}"}}"#)),
        // A policy document that is not JSON: the attachment still holds.
        iam("PutUserPolicy", r#"{"userName":"bob","policyName":"p","policyDocument":"{not json"}"#),
        // Request parameters that are not an object at all.
        iam("UpdateAssumeRolePolicy", r#""redacted""#),
        // A trust policy CloudTrail could not log.
        iam(
            "CreateRole",
            r#"{"roleName":"x","assumeRolePolicyDocument":{"Statement":"HIDDEN_DUE_TO_SECURITY_REASONS"}}"#,
        ),
    ];
    let events = read(&CloudTrail, format!("[{}]", records.join(",")).as_bytes());
    assert_eq!(events.len(), 4);
    assert!(events[0].changes.is_empty());
    assert_eq!(
        asserted(&events[1].changes),
        vec![Fact::Attached { holder: user("bob"), policy: format!("{}#inline/p", user("bob")) }]
    );
    assert!(events[2].changes.is_empty());
    assert_eq!(
        asserted(&events[3].changes),
        vec![Fact::Node { id: role("x"), kind: NodeKind::ROLE, name: Some("x".into()) }]
    );
}

#[test]
fn non_iam_calls_change_no_iam_facts() {
    // An S3 call whose parameters look like an IAM call's.
    let s3 = iam("PutBucketPolicy", &format!(r#"{{"bucketName":"b","userName":"bob","policyArn":"{ADMIN}"}}"#))
        .replace("iam.amazonaws.com", "s3.amazonaws.com")
        .replace("PutBucketPolicy", "AttachUserPolicy");
    let events = read(&CloudTrail, s3.as_bytes());
    assert!(events[0].changes.is_empty());
}

// ----- CloudTrail: identity observations -----

#[test]
fn saml_users_and_source_identities_with_emails_are_the_same_person() {
    let saml = r#"{"eventTime":"2024-08-01T10:00:00Z","eventSource":"sts.amazonaws.com","eventName":"AssumeRoleWithSAML","eventID":"s1","recipientAccountId":"111122223333",
      "userIdentity":{"type":"SAMLUser","principalId":"abc:alice@corp.example","userName":"alice@corp.example","identityProvider":"arn:aws:iam::111122223333:saml-provider/okta"}}"#;
    let saml_no_email = saml.replace("alice@corp.example", "alice").replace("\"s1\"", "\"s2\"");
    let assumed = r#"{"eventTime":"2024-08-01T10:05:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","eventID":"s3","recipientAccountId":"111122223333",
      "userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::111122223333:assumed-role/dev/alice","accountId":"111122223333","accessKeyId":"ASIA1",
        "sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::111122223333:role/dev","userName":"dev"},"sourceIdentity":"alice@corp.example"}}}"#;
    let failed = assumed.replace("\"s3\",", "\"s4\",\"errorCode\":\"AccessDenied\",");
    let events = read(&CloudTrail, format!("[{saml},{saml_no_email},{assumed},{failed}]").as_bytes());
    assert_eq!(
        events[0].changes,
        vec![TrustChange::Observe {
            fact: Fact::SameAs { a: "aws:samluser/alice@corp.example".into(), b: "user:alice@corp.example".into() }
        }]
    );
    assert_eq!(events[0].actor.id, "aws:samluser/alice@corp.example");
    assert!(events[1].changes.is_empty());
    assert_eq!(
        events[2].changes,
        vec![TrustChange::Observe {
            fact: Fact::SameAs {
                a: "aws:source-identity/alice@corp.example".into(),
                b: "user:alice@corp.example".into()
            }
        }]
    );
    assert!(events[2].chain.iter().any(|p| p.id == "aws:source-identity/alice@corp.example"));
    assert!(events[3].changes.is_empty());
}

// ----- CloudTrail: real Stratus Red Team detonations -----

#[test]
fn stratus_backdoor_role_trusts_the_attacker_account() {
    let got = changes(&CloudTrail, &shared("cloudtrail/stratus-red-team/aws.persistence.iam-backdoor-role.json"));
    let facts = asserted(&got);
    let [Fact::Trust { role, document }] = &facts[..] else { panic!("{facts:?}") };
    assert!(role.ends_with(":role/stratus-red-team-backdoor-r-role"), "{role}");
    let aws: Vec<&str> = document
        .statements
        .iter()
        .filter_map(|s| s.principals.as_ref())
        .flat_map(|p| p.aws.iter().map(String::as_str))
        .collect();
    assert_eq!(aws, vec!["arn:aws:iam::193672423079:root"]);
    let services: Vec<&str> = document
        .statements
        .iter()
        .flat_map(|s| s.principals.iter().flat_map(|p| p.service.iter()))
        .map(String::as_str)
        .collect();
    assert_eq!(services, vec!["ec2.amazonaws.com"]);
    assert!(
        document
            .statements
            .iter()
            .all(|s| s.effect == Effect::Allow && s.actions == Matcher::Only(vec!["sts:AssumeRole".into()]))
    );
}

#[test]
fn stratus_create_admin_user_creates_a_user_with_administrator_access() {
    let events = read(&CloudTrail, &shared("cloudtrail/stratus-red-team/aws.persistence.iam-create-admin-user.json"));
    let facts: Vec<Fact> = events.iter().flat_map(|e| asserted(&e.changes)).collect();
    let arn = "arn:aws:iam::229654561268:user/malicious-iam-user";
    assert!(
        facts.contains(&Fact::Node { id: arn.into(), kind: NodeKind::HUMAN, name: Some("malicious-iam-user".into()) }),
        "{facts:?}"
    );
    assert!(facts.contains(&Fact::Attached { holder: arn.into(), policy: ADMIN.into() }), "{facts:?}");
    // CreateAccessKey mints a credential; it changes no trust fact.
    let key = events.iter().find(|e| e.action.operation == "CreateAccessKey").unwrap();
    assert!(key.changes.is_empty());
}

#[test]
fn stratus_backdoor_user_access_key_changes_no_trust() {
    let got = changes(&CloudTrail, &shared("cloudtrail/stratus-red-team/aws.persistence.iam-backdoor-user.json"));
    assert!(got.is_empty(), "{got:?}");
}

#[test]
fn stratus_create_backdoor_role_with_boundary_and_admin_policy() {
    let got =
        changes(&CloudTrail, &shared("cloudtrail/stratus-red-team/aws.persistence.iam-create-backdoor-role.json"));
    let facts = asserted(&got);
    let arn = "arn:aws:iam::609418236337:role/stratus-red-team-malicious-iam-role";
    assert!(facts.contains(&Fact::Attached { holder: arn.into(), policy: ADMIN.into() }), "{facts:?}");
    assert!(facts.iter().any(|f| matches!(f, Fact::Node { id, kind: NodeKind::ROLE, .. } if id == arn)));
    assert!(
        facts.contains(&Fact::Boundary { holder: arn.into(), policy: "arn:aws:iam::aws:policy/AWSDenyAll".into() })
    );
    let trust = facts.iter().find_map(|f| match f {
        Fact::Trust { role, document } if role == arn => Some(document),
        _ => None,
    });
    let who = trust.expect("trust asserted").statements[0].principals.clone().unwrap();
    assert_eq!(who.aws, vec!["arn:aws:iam::193672423079:root"]);
}

// ----- Policy documents -----

#[test]
fn policy_documents_parse_every_element_form() {
    let doc = parse_policy_document(
        r#"{
      "Version": "2012-10-17",
      "Statement": [
        {"Effect": "Deny", "NotAction": ["iam:*", "sts:*"], "NotResource": "arn:aws:s3:::keep",
         "Condition": {"StringEquals": {"aws:RequestedRegion": ["eu-west-1", "eu-central-1"]},
                       "Bool": {"aws:MultiFactorAuthPresent": false},
                       "NumericLessThan": {"aws:MultiFactorAuthAge": 3600}}},
        {"Sid": "Anyone", "Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": ["123456789012", "*"], "Federated": "accounts.google.com"},
         "Action": "sts:AssumeRoleWithWebIdentity"},
        {"Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:iam::123456789012:role/admin"}, "Action": "*"}
      ]
    }"#,
    )
    .unwrap();
    let [deny, anyone, federated, not] = &doc.statements[..] else { panic!("{doc:?}") };
    assert_eq!(deny.effect, Effect::Deny);
    assert_eq!(deny.actions, Matcher::Not(vec!["iam:*".into(), "sts:*".into()]));
    assert_eq!(deny.resources, Matcher::Not(vec!["arn:aws:s3:::keep".into()]));
    assert!(deny.principals.is_none());
    let mut conditions = deny.conditions.clone();
    conditions.sort_by(|a, b| a.operator.cmp(&b.operator));
    assert_eq!(
        conditions,
        vec![
            Condition {
                operator: "Bool".into(),
                key: "aws:MultiFactorAuthPresent".into(),
                values: vec!["false".into()]
            },
            Condition {
                operator: "NumericLessThan".into(),
                key: "aws:MultiFactorAuthAge".into(),
                values: vec!["3600".into()]
            },
            Condition {
                operator: "StringEquals".into(),
                key: "aws:RequestedRegion".into(),
                values: vec!["eu-west-1".into(), "eu-central-1".into()]
            },
        ]
    );
    assert_eq!(anyone.sid.as_deref(), Some("Anyone"));
    assert_eq!(
        anyone.principals,
        Some(PrincipalMatcher { not: false, anyone: true, aws: vec![], service: vec![], federated: vec![] })
    );
    let f = federated.principals.as_ref().unwrap();
    assert!(f.anyone, "`AWS: *` is anyone");
    assert_eq!(f.aws, vec!["123456789012"]);
    assert_eq!(f.federated, vec!["accounts.google.com"]);
    assert_eq!(federated.resources, Matcher::Any);
    let n = not.principals.as_ref().unwrap();
    assert!(n.not && !n.anyone);
    assert_eq!(n.aws, vec!["arn:aws:iam::123456789012:role/admin"]);
}

#[test]
fn policy_documents_accept_one_statement_object_and_url_encoding() {
    let one = parse_policy_document(r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#).unwrap();
    assert_eq!(one.statements.len(), 1);
    let encoded = "%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22s3%3A%2A%22%7D%5D%7D";
    let doc = parse_policy_document(encoded).unwrap();
    assert_eq!(doc.statements[0].actions, Matcher::Only(vec!["s3:*".into()]));
}

#[test]
fn policy_documents_that_are_not_policies_are_errors() {
    for bad in [
        "",
        "null",
        "[]",
        "{not json",
        r#"{"Version":"2012-10-17"}"#,
        r#"{"Statement":[{"Action":"s3:*"}]}"#,
        r#"{"Statement":[{"Effect":"Maybe","Action":"s3:*"}]}"#,
        r#"{"Statement":[{"Effect":"Allow","Principal":"someone"}]}"#,
        r#"{"Statement":[{"Effect":"Allow","Action":{"a":1}}]}"#,
        "%ZZ",
    ] {
        assert!(parse_policy_document(bad).is_err(), "{bad:?} parsed");
    }
    let err = parse_policy_document(r#"{"Statement":[{"Effect":"Allow"},{"Effect":"Nope"}]}"#).unwrap_err();
    assert!(err.contains("Statement[1]"), "{err}");
}

// ----- Kubernetes audit -----

fn falco(name: &str) -> Vec<Event> {
    read(&K8sAudit, &shared(&format!("k8s-audit/falco/{name}")))
}

/// The RBAC changes only, without the groups every request observes.
fn rbac(events: &[Event]) -> Vec<TrustChange> {
    events
        .iter()
        .flat_map(|e| e.changes.iter().cloned())
        .filter(|c| !matches!(c, TrustChange::Observe { .. }))
        .collect()
}

#[test]
fn falco_cluster_role_binding_binds_its_subject() {
    let events = falco("create_clusterrolebinding.json");
    assert_eq!(
        rbac(&events),
        vec![TrustChange::Assert {
            fact: Fact::RbacBinding {
                subject: "k8s:minikube".into(),
                role: "k8s:clusterrole/system:basic-user".into(),
                namespace: None
            }
        }]
    );
    let admin = falco("attach_cluster_admin_role.json");
    assert_eq!(
        asserted(&rbac(&admin)),
        vec![Fact::RbacBinding {
            subject: "k8s:minikube".into(),
            role: "k8s:clusterrole/cluster-admin".into(),
            namespace: None
        }]
    );
}

#[test]
fn every_request_observes_the_users_groups() {
    let events = falco("create_clusterrolebinding.json");
    let members: Vec<Fact> =
        observed(&events[0].changes).into_iter().filter(|f| matches!(f, Fact::Member { .. })).collect();
    assert_eq!(
        members,
        vec![
            Fact::Member { member: "k8s:minikube-user".into(), group: "k8s:group/system:masters".into() },
            Fact::Member { member: "k8s:minikube-user".into(), group: "k8s:group/system:authenticated".into() },
        ]
    );
    // A pod create is no RBAC change but still observes the groups.
    let pod = falco("create_nginx_pod_privileged.json");
    assert!(asserted(&pod[0].changes).iter().all(|f| matches!(f, Fact::Member { .. })));
    assert!(!pod[0].changes.is_empty());
}

#[test]
fn falco_cluster_roles_carry_their_rules_and_labels() {
    let events = falco("create_cluster_role_wildcard_verbs.json");
    let facts = asserted(&rbac(&events));
    let [Fact::RbacRole { role, namespace, rules, labels, aggregate }] = &facts[..] else { panic!("{facts:?}") };
    assert_eq!(role, "k8s:clusterrole/some-reader");
    assert_eq!(namespace, &None);
    assert_eq!(labels, &vec![("kubernetes.io/bootstrapping".to_string(), "rbac-defaults".to_string())]);
    assert!(aggregate.is_empty());
    assert_eq!(
        rules[0],
        RbacRule {
            api_groups: vec!["".into()],
            resources: vec!["pods".into()],
            verbs: vec!["*".into()],
            ..Default::default()
        }
    );
    assert!(rules[1].non_resource_urls.contains(&"/healthz".to_string()));
    assert_eq!(rules[1].verbs, vec!["get"]);

    for name in [
        "create_cluster_role_pod_exec.json",
        "create_cluster_role_wildcard_resources.json",
        "create_cluster_role_write_privileges.json",
        "create_clusterrole.json",
    ] {
        let facts = asserted(&rbac(&falco(name)));
        assert!(
            matches!(&facts[..], [Fact::RbacRole { role, rules, .. }] if role == "k8s:clusterrole/some-reader" && !rules.is_empty()),
            "{name}: {facts:?}"
        );
    }
}

#[test]
fn falco_patched_cluster_role_is_read_from_the_response() {
    let facts = asserted(&rbac(&falco("modify_cluster_role_node_problem_detector.json")));
    let [Fact::RbacRole { role, rules, labels, .. }] = &facts[..] else { panic!("{facts:?}") };
    assert_eq!(role, "k8s:clusterrole/system:node-problem-detector");
    assert_eq!(rules.len(), 3);
    assert_eq!(rules[2].verbs, vec!["create", "patch", "update", "list"]);
    assert!(!labels.is_empty(), "the full object, not the patch");
}

#[test]
fn falco_deletes_retract_roles_and_skip_unknown_binding_subjects() {
    assert_eq!(
        rbac(&falco("delete_clusterrole.json")),
        vec![TrustChange::Retract { key: "rbac-role|k8s:clusterrole/some-reader".into() }]
    );
    assert_eq!(
        rbac(&falco("delete_cluster_role_kube_aggregator.json")),
        vec![TrustChange::Retract { key: "rbac-role|k8s:clusterrole/system:kube-aggregator".into() }]
    );
    // DeleteOptions in, Status out: the subjects are unknown.
    assert!(rbac(&falco("delete_clusterrolebinding.json")).is_empty());
}

fn audit(verb: &str, resource: &str, ns: Option<&str>, name: &str, code: u16, body: &str, user: &str) -> String {
    let ns_field = ns.map(|n| format!(r#""namespace":"{n}","#)).unwrap_or_default();
    format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"{verb}-{resource}-{name}","stage":"ResponseComplete","requestURI":"/apis/rbac.authorization.k8s.io/v1/{resource}","verb":"{verb}","user":{{"username":"{user}","groups":["devs","system:authenticated"]}},"sourceIPs":["10.0.0.5"],"objectRef":{{"resource":"{resource}",{ns_field}"name":"{name}","apiGroup":"rbac.authorization.k8s.io","apiVersion":"v1"}},"responseStatus":{{"metadata":{{}},"code":{code}}},"requestObject":{body},"requestReceivedTimestamp":"2026-01-01T10:00:00.000000Z","stageTimestamp":"2026-01-01T10:00:00.010000Z","annotations":{{"authorization.k8s.io/decision":"{}","authorization.k8s.io/reason":""}}}}"#,
        if code == 403 { "forbid" } else { "allow" }
    )
}

#[test]
fn namespaced_roles_bindings_and_subject_kinds() {
    let role_body = r#"{"kind":"Role","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"secret-reader","namespace":"prod"},"rules":[{"apiGroups":[""],"resources":["secrets"],"resourceNames":["db"],"verbs":["get"]}]}"#;
    let binding_body = r#"{"kind":"RoleBinding","apiVersion":"rbac.authorization.k8s.io/v1","metadata":{"name":"read-secrets","namespace":"prod"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"secret-reader"},"subjects":[{"kind":"User","name":"alice@corp.example"},{"kind":"Group","name":"oncall"},{"kind":"ServiceAccount","name":"ci"},{"kind":"ServiceAccount","name":"agent","namespace":"tools"},{"kind":"Robot","name":"r2"}]}"#;
    let cr_binding = r#"{"kind":"RoleBinding","metadata":{"name":"view","namespace":"prod"},"roleRef":{"kind":"ClusterRole","name":"view"},"subjects":[{"kind":"Group","name":"viewers"}]}"#;
    let data = [
        audit("create", "roles", Some("prod"), "secret-reader", 201, role_body, "admin"),
        audit("update", "rolebindings", Some("prod"), "read-secrets", 200, binding_body, "admin"),
        audit("create", "rolebindings", Some("prod"), "view", 201, cr_binding, "admin"),
        audit("delete", "roles", Some("prod"), "secret-reader", 200, r#"{"kind":"DeleteOptions"}"#, "admin"),
    ]
    .join("\n");
    let events = read(&K8sAudit, data.as_bytes());
    assert_eq!(
        asserted(&rbac(&events[..1])),
        vec![Fact::RbacRole {
            role: "k8s:role/prod/secret-reader".into(),
            namespace: Some("prod".into()),
            rules: vec![RbacRule {
                api_groups: vec!["".into()],
                resources: vec!["secrets".into()],
                verbs: vec!["get".into()],
                resource_names: vec!["db".into()],
                non_resource_urls: vec![],
            }],
            labels: vec![],
            aggregate: vec![],
        }]
    );
    let bind = |subject: &str, role: &str| Fact::RbacBinding {
        subject: subject.into(),
        role: role.into(),
        namespace: Some("prod".into()),
    };
    assert_eq!(
        asserted(&rbac(&events[1..3])),
        vec![
            bind("k8s:alice@corp.example", "k8s:role/prod/secret-reader"),
            bind("k8s:group/oncall", "k8s:role/prod/secret-reader"),
            bind("k8s:system:serviceaccount:prod:ci", "k8s:role/prod/secret-reader"),
            bind("k8s:system:serviceaccount:tools:agent", "k8s:role/prod/secret-reader"),
            bind("k8s:group/viewers", "k8s:clusterrole/view"),
        ]
    );
    assert_eq!(rbac(&events[3..]), vec![TrustChange::Retract { key: "rbac-role|k8s:role/prod/secret-reader".into() }]);
}

#[test]
fn aggregated_cluster_roles_keep_their_selectors() {
    let body = r#"{"kind":"ClusterRole","metadata":{"name":"monitoring","labels":{"team":"sre"}},"aggregationRule":{"clusterRoleSelectors":[{"matchLabels":{"rbac.example.com/aggregate-to-monitoring":"true"}}]},"rules":[]}"#;
    let events = read(&K8sAudit, audit("create", "clusterroles", None, "monitoring", 201, body, "admin").as_bytes());
    assert_eq!(
        asserted(&rbac(&events)),
        vec![Fact::RbacRole {
            role: "k8s:clusterrole/monitoring".into(),
            namespace: None,
            rules: vec![],
            labels: vec![("team".into(), "sre".into())],
            aggregate: vec![vec![("rbac.example.com/aggregate-to-monitoring".into(), "true".into())]],
        }]
    );
}

#[test]
fn k8s_users_with_emails_are_people_and_forbidden_requests_change_nothing() {
    let body = r#"{"kind":"ClusterRoleBinding","metadata":{"name":"x"},"roleRef":{"kind":"ClusterRole","name":"cluster-admin"},"subjects":[{"kind":"User","name":"mallory@corp.example"}]}"#;
    let data = [
        audit("create", "clusterrolebindings", None, "x", 201, body, "alice@corp.example"),
        audit("create", "clusterrolebindings", None, "x", 403, body, "mallory@corp.example"),
    ]
    .join("\n");
    let events = read(&K8sAudit, data.as_bytes());
    let facts = observed(&events[0].changes);
    assert!(facts.contains(&Fact::SameAs { a: "k8s:alice@corp.example".into(), b: "user:alice@corp.example".into() }));
    assert!(facts.contains(&Fact::Member { member: "k8s:alice@corp.example".into(), group: "k8s:group/devs".into() }));
    assert!(events[1].changes.is_empty(), "{:?}", events[1].changes);
}

#[test]
fn surprising_k8s_bodies_and_groups_cost_the_changes_not_the_record() {
    let data = [
        audit("create", "clusterroles", None, "odd", 201, r#"{"kind":"ClusterRole","rules":"everything"}"#, "admin"),
        audit("create", "clusterrolebindings", None, "odd", 201, "[1,2,3]", "admin"),
        audit("patch", "clusterroles", None, "odd", 200, r#"[{"op":"add","path":"/rules/-","value":{}}]"#, "admin")
            .replace(r#""groups":["devs","system:authenticated"]"#, r#""groups":"devs""#),
    ]
    .join("\n");
    let events = read(&K8sAudit, data.as_bytes());
    assert_eq!(events.len(), 3);
    assert!(rbac(&events).is_empty(), "{:?}", rbac(&events));
    assert!(events[2].changes.is_empty());
}

// ----- Okta -----

fn okta_event(event_type: &str, result: &str) -> String {
    format!(
        r#"{{"uuid":"{event_type}-{result}","published":"2026-03-01T09:00:00.000Z","eventType":"{event_type}","version":"0","severity":"INFO","displayMessage":"Add user to group membership",
        "actor":{{"id":"00uadmin","type":"User","alternateId":"admin@corp.example","displayName":"Admin"}},
        "client":{{"ipAddress":"203.0.113.9"}},"outcome":{{"result":"{result}"}},
        "target":[{{"id":"00ubob","type":"User","alternateId":"bob@corp.example","displayName":"Bob"}},{{"id":"00gops","type":"UserGroup","alternateId":"unknown","displayName":"Ops"}}]}}"#
    )
}

#[test]
fn okta_membership_add_and_remove() {
    let data = format!(
        "[{},{},{}]",
        okta_event("group.user_membership.add", "SUCCESS"),
        okta_event("group.user_membership.remove", "SUCCESS"),
        okta_event("group.user_membership.add", "FAILURE"),
    );
    let events = read(&Okta, data.as_bytes());
    let member = Fact::Member { member: "okta:00ubob".into(), group: "okta:00gops".into() };
    let same = |id: &str, email: &str| Fact::SameAs { a: format!("okta:{id}"), b: format!("user:{email}") };
    assert_eq!(asserted(&events[0].changes), vec![member.clone()]);
    assert_eq!(
        observed(&events[0].changes),
        vec![same("00uadmin", "admin@corp.example"), same("00ubob", "bob@corp.example")]
    );
    assert_eq!(retracted(&events[1].changes), vec![member.key()]);
    assert!(events[2].changes.is_empty());
}

#[test]
fn okta_user_actors_are_their_emails() {
    let data = r#"{"uuid":"u1","published":"2026-03-01T09:00:00Z","eventType":"user.session.start","actor":{"id":"00u1","type":"User","alternateId":"alice@corp.example"},"outcome":{"result":"SUCCESS"}}
{"uuid":"u2","published":"2026-03-01T09:00:00Z","eventType":"user.session.start","actor":{"id":"0oa1","type":"PublicClientApp","alternateId":"svc@corp.example"},"outcome":{"result":"SUCCESS"}}"#;
    let events = read(&Okta, data.as_bytes());
    assert_eq!(
        events[0].changes,
        vec![TrustChange::Observe {
            fact: Fact::SameAs { a: "okta:00u1".into(), b: "user:alice@corp.example".into() }
        }]
    );
    assert!(events[1].changes.is_empty());
}

// ----- OTLP agent traces -----

fn agent_trace() -> Vec<Event> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/otlp/agent-tool-call.json");
    read(&Otlp, &std::fs::read(path).expect("fixture exists"))
}

fn span(events: &[Event], id: &str) -> Event {
    events.iter().find(|e| e.id.as_str().ends_with(id)).cloned().unwrap_or_else(|| panic!("no span {id}"))
}

#[test]
fn invoke_agent_for_an_end_user_is_an_observed_delegation() {
    let events = agent_trace();
    assert_eq!(
        span(&events, "00f067aa0ba902b7").changes,
        vec![TrustChange::Observe {
            fact: Fact::ActsFor {
                agent: "agent:agt-42".into(),
                person: "user:alice@example.com".into(),
                scope: vec![],
                expires: None
            }
        }]
    );
    // A model call inside the agent delegates nothing new.
    assert!(span(&events, "00f067aa0ba902b8").changes.is_empty());
}

#[test]
fn tool_calls_are_use_not_trust() {
    // Which identity a tool runs as is the registry's to say; a span only
    // shows the tool being used.
    let events = agent_trace();
    for span_id in ["00f067aa0ba902b9", "00f067aa0ba902ba", "1a2b3c4d5e6f7081", "00f067aa0ba902bb"] {
        assert!(span(&events, span_id).changes.is_empty(), "{span_id}");
    }
}

#[test]
fn agents_without_an_end_user_delegate_nothing() {
    let data = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"batch"}}]},"scopeSpans":[{"spans":[
      {"traceId":"aa","spanId":"01","name":"invoke_agent nightly","startTimeUnixNano":"1767258000000000000","attributes":[{"key":"gen_ai.operation.name","value":{"stringValue":"invoke_agent"}},{"key":"gen_ai.agent.id","value":{"stringValue":"nightly"}}]}
    ]}]}]}"#;
    let events = read(&Otlp, data.as_bytes());
    assert_eq!(events[0].actor.id, "agent:nightly");
    assert!(events[0].changes.is_empty());
}
