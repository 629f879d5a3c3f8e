//! The learner as a specification: what it learns as normal, what it
//! raises, and what it refuses to excuse. Events are built in the
//! normalised model's own JSON form.

use serde_json::{Value, json};
use tenet_learn::{Config, Learner};
use tenet_model::{Category, Event, Finding};

const DAY: i64 = 86_400;
/// 2026-10-05T00:00:00Z, a Monday.
const START: i64 = 1_791_158_400;

fn rfc3339(t: i64) -> String {
    tenet_model::Timestamp::from_unix_seconds(t).to_string()
}

struct Call<'a> {
    who: &'a str,
    t: i64,
    action: &'a str,
    ip: &'a str,
    ua: &'a str,
    resource: Option<&'a str>,
    failed: bool,
    /// The failure's code; a refusal (`AccessDenied`) unless said otherwise.
    code: &'a str,
}

fn call<'a>(who: &'a str, t: i64, action: &'a str) -> Call<'a> {
    Call {
        who,
        t,
        action,
        ip: "10.0.1.20",
        ua: "aws-cli/2.15.0 Python/3.11",
        resource: None,
        failed: false,
        code: "AccessDenied",
    }
}

fn event(c: &Call, n: u64) -> Event {
    let (service, operation) = c.action.split_once(':').unwrap();
    let mut resources = Vec::new();
    if let Some(r) = c.resource {
        resources.push(json!({"type": "AWS::S3::Object", "id": r}));
    }
    let v: Value = json!({
        "id": format!("{}-{n}", c.who),
        "time": rfc3339(c.t),
        "class_uid": 6003,
        "activity_id": 2,
        "actor": {"id": format!("arn:aws:iam::111122223333:user/{}", c.who), "kind": "human", "name": c.who, "account": "111122223333"},
        "action": {"service": service, "operation": operation},
        "resources": resources,
        "outcome": if c.failed { json!({"status": "failure", "code": c.code}) } else { json!({"status": "success"}) },
        "context": {"ip": c.ip, "user_agent": c.ua, "region": "eu-west-1"},
        "source": {"format": "cloudtrail", "system": "aws", "tenant": "111122223333"},
    });
    serde_json::from_value(v).expect("a valid normalised event")
}

/// `days` working days of the same routine for each of `people`: a few
/// reads an hour through office hours, from the office, with the CLI.
fn routine(learner: &mut Learner, people: &[&str], days: i64, n: &mut u64) {
    for d in 0..days {
        routine_day(learner, people, d, n);
    }
}

/// One working day of [`routine`], day `d`.
fn routine_day(learner: &mut Learner, people: &[&str], d: i64, n: &mut u64) {
    for h in 9..17 {
        for (i, who) in people.iter().enumerate() {
            for (k, action) in ["s3:GetObject", "s3:ListBucket", "ec2:DescribeInstances"].iter().enumerate() {
                let t = START + d * DAY + h * 3600 + (i as i64 * 97 + k as i64 * 631) % 3000;
                let mut c = call(who, t, action);
                let key = format!("arn:aws:s3:::reports/{}.csv", (d + h) % 5);
                c.resource = (k == 0).then_some(key.as_str());
                learner.observe(&event(&c, *n), &[]);
                *n += 1;
            }
        }
    }
}

/// `who` calls `action` at `t` from an address and with a tool never seen
/// in the routine: an intruder holding their credentials.
fn intruder_call(learner: &mut Learner, who: &str, t: i64, action: &str, n: &mut u64) {
    let mut c = call(who, t, action);
    c.ip = "203.0.113.66";
    c.ua = "python-requests/2.31";
    learner.observe(&event(&c, *n), &[]);
    *n += 1;
}

fn alerts(findings: &[Finding]) -> Vec<&Finding> {
    findings.iter().filter(|f| f.is_alert()).collect()
}

#[test]
fn routine_is_learned_as_normal_and_raises_no_alert() {
    let mut l = Learner::new(Config::default());
    let mut n = 0;
    routine(&mut l, &["ana", "ben", "cy"], 14, &mut n);
    let findings = l.take_findings();
    assert!(alerts(&findings).is_empty(), "{:?}", alerts(&findings));
    let stats = l.stats();
    assert_eq!(stats.events, n);
    assert!(stats.principals >= 3);
}

#[test]
fn a_first_secret_read_from_new_infrastructure_with_a_new_tool_is_likely_malicious() {
    let mut l = Learner::new(Config::default());
    let mut n = 0;
    routine(&mut l, &["ana", "ben", "cy"], 10, &mut n);
    l.take_findings();
    let t = START + 10 * DAY + 14 * 3600;
    for i in 0..5 {
        intruder_call(&mut l, "ana", t + i * 20, "secretsmanager:GetSecretValue", &mut n);
    }
    let findings = l.take_findings();
    let hit = alerts(&findings)
        .into_iter()
        .find(|f| f.principal == "arn:aws:iam::111122223333:user/ana")
        .unwrap_or_else(|| panic!("no alert on ana: {findings:?}"));
    assert_eq!(hit.category, Category::LikelyMalicious, "{hit:?}");
    assert!(hit.techniques.iter().any(|t| t == "T1078"), "{hit:?}");
    let detectors: Vec<&str> = hit.evidence.iter().map(|e| e.detector.as_str()).collect();
    assert!(detectors.contains(&"unfamiliar_access"), "{detectors:?}");
    assert!(hit.evidence.iter().any(|e| e.baseline.as_ref().is_some_and(|b| b.history > 100)), "{hit:?}");
    assert!(!hit.event_ids.is_empty() && !hit.summary.is_empty() && !hit.explanation.is_empty());
}

#[test]
fn the_same_secret_read_from_the_usual_place_and_tool_is_not_an_alert() {
    let mut l = Learner::new(Config::default());
    let mut n = 0;
    routine(&mut l, &["ana", "ben", "cy"], 10, &mut n);
    l.take_findings();
    let t = START + 10 * DAY + 14 * 3600;
    l.observe(&event(&call("ana", t, "secretsmanager:GetSecretValue"), n), &[]);
    let findings = l.take_findings();
    assert!(alerts(&findings).is_empty(), "one new action in the usual context is no attack: {findings:?}");
}

#[test]
fn a_principal_never_seen_is_judged_not_ignored() {
    let mut l = Learner::new(Config::default());
    let mut n = 0;
    routine(&mut l, &["ana", "ben"], 5, &mut n);
    let before = l.stats().deviations;
    let t = START + 5 * DAY + 10 * 3600;
    l.observe(&event(&call("stranger", t, "iam:CreateAccessKey"), n), &[]);
    assert!(l.stats().deviations > before, "a brand-new principal's first sensitive action is a deviation");
}

#[test]
fn a_sustained_change_becomes_normal() {
    let mut l = Learner::new(Config::default());
    let mut n = 0;
    routine(&mut l, &["ana", "ben", "cy"], 7, &mut n);
    // From day 7 on, ana also queries the data warehouse, every working hour.
    let mut per_day = Vec::new();
    for d in 7..21 {
        let before = l.stats().deviations;
        for h in 9..17 {
            let t = START + d * DAY + h * 3600 + 1800;
            for (k, a) in ["s3:GetObject", "s3:ListBucket", "ec2:DescribeInstances"].iter().enumerate() {
                l.observe(&event(&call("ana", t + k as i64, a), n), &[]);
                n += 1;
            }
            l.observe(&event(&call("ana", t + 10, "redshift-data:ExecuteStatement"), n), &[]);
            n += 1;
        }
        per_day.push(l.stats().deviations - before);
    }
    assert!(per_day[0] >= 1, "the first day of the new habit is noticed: {per_day:?}");
    assert!(per_day[7..].iter().all(|&d| d == 0), "a week later it is simply normal: {per_day:?}");
    assert!(alerts(&l.take_findings()).is_empty());
}

#[test]
fn refused_attempts_at_sensitive_actions_count() {
    let mut l = Learner::new(Config::default());
    let mut n = 0;
    routine(&mut l, &["ana", "ben", "cy"], 10, &mut n);
    let before = l.stats().deviations;
    let t = START + 10 * DAY + 11 * 3600;
    let mut c = call("ben", t, "cloudtrail:StopLogging");
    c.failed = true;
    l.observe(&event(&c, n), &[]);
    assert!(l.stats().deviations > before);
}

#[test]
fn a_restored_learner_continues_exactly_where_it_stopped() {
    let mut whole = Learner::new(Config::default());
    let mut n = 0;
    routine(&mut whole, &["ana", "ben"], 6, &mut n);
    let saved = serde_json::to_vec(&whole).unwrap();
    let mut restored: Learner = serde_json::from_slice(&saved).unwrap();
    let t = START + 6 * DAY + 15 * 3600;
    for l in [&mut whole, &mut restored] {
        let mut c = call("ben", t, "iam:AttachUserPolicy");
        c.ip = "198.51.100.9";
        l.observe(&event(&c, 99_999), &[]);
    }
    let a = serde_json::to_value(whole.take_findings()).unwrap();
    let b = serde_json::to_value(restored.take_findings()).unwrap();
    assert_eq!(a, b, "same state, same input, same findings");
    assert_eq!(whole.stats().deviations, restored.stats().deviations);
}

#[test]
fn a_principals_baseline_stays_under_two_kib_however_varied_its_activity() {
    let mut l = Learner::new(Config::default());
    for i in 0..20_000u64 {
        let t = START + (i as i64) * 30;
        let action = format!("svc{}:Op{}", i % 97, i % 89);
        let mut c = call("busy", t, &action);
        let ip = format!("10.{}.{}.{}", i % 200, i % 251, i % 13);
        c.ip = &ip;
        let res = format!("arn:aws:s3:::bucket/{i}");
        c.resource = Some(&res);
        l.observe(&event(&c, i), &[]);
    }
    let stats = l.stats();
    assert!(stats.bytes_per_principal <= 2048, "{} bytes", stats.bytes_per_principal);
}

/// Every piece of evidence, alerting or recorded, that names `what`.
fn evidence_about<'f>(findings: &'f [Finding], who: &str, what: &str) -> Vec<&'f str> {
    findings
        .iter()
        .filter(|f| f.principal.ends_with(&format!("/{who}")))
        .flat_map(|f| f.evidence.iter())
        .filter(|e| e.detail.contains(what))
        .map(|e| e.detail.as_str())
        .collect()
}

#[test]
fn a_new_address_is_news_only_for_a_principal_whose_addresses_do_not_churn() {
    let mut l = Learner::new(Config::default());
    let mut n = 0;
    // ana always works from one address; hopper (a workload-like caller)
    // comes from a new address every hour.
    for d in 0..10 {
        for h in 9..17 {
            let t = START + d * DAY + h * 3600;
            l.observe(&event(&call("ana", t, "s3:GetObject"), n), &[]);
            let ip = format!("{}.{}.{h}.7", 3 + d, 18 + h);
            let mut c = call("hopper", t + 60, "s3:GetObject");
            c.ip = &ip;
            l.observe(&event(&c, n + 1), &[]);
            n += 2;
        }
    }
    l.take_findings();
    let t = START + 10 * DAY + 10 * 3600;
    let mut noted = Vec::new();
    for (who, ip) in [("ana", "192.0.2.44"), ("hopper", "192.0.2.45")] {
        let before = l.stats().deviations;
        let mut c = call(who, t, "s3:GetObject");
        c.ip = ip;
        l.observe(&event(&c, n), &[]);
        n += 1;
        noted.push(l.stats().deviations - before);
    }
    assert!(noted[0] >= 1, "ana's new address is noted: {noted:?}");
    assert_eq!(noted[1], 0, "one more for hopper is no news: {noted:?}");
    assert!(alerts(&l.take_findings()).is_empty());
}

#[test]
fn retried_calls_that_fail_for_other_reasons_than_refusal_are_not_denials() {
    let mut l = Learner::new(Config::default());
    let mut n = 0;
    routine(&mut l, &["ana", "ben", "cy"], 10, &mut n);
    l.take_findings();
    let t = START + 10 * DAY + 11 * 3600;
    // The same call throttled, timing out and failing on the server, with
    // backoff, then succeeding: a retry, not a refusal.
    for (i, code) in
        ["ThrottlingException", "RequestTimeout", "InternalError", "ThrottlingException"].iter().enumerate()
    {
        let mut c = call("ana", t + (1 << i) * 2, "ec2:DescribeInstances");
        c.failed = true;
        c.code = code;
        l.observe(&event(&c, n), &[]);
        n += 1;
    }
    l.observe(&event(&call("ana", t + 40, "ec2:DescribeInstances"), n), &[]);
    n += 1;
    let findings = l.take_findings();
    assert!(evidence_about(&findings, "ana", "denied").is_empty(), "{findings:?}");
    assert!(evidence_about(&findings, "ana", "refus").is_empty(), "{findings:?}");
    // Refused across many different actions: somebody trying doors.
    for (i, action) in [
        "iam:ListUsers",
        "iam:ListRoles",
        "secretsmanager:ListSecrets",
        "kms:ListKeys",
        "ssm:DescribeParameters",
        "lambda:ListFunctions",
        "rds:DescribeDBInstances",
        "dynamodb:ListTables",
    ]
    .iter()
    .enumerate()
    {
        let mut c = call("ben", t + 100 + i as i64 * 3, action);
        c.failed = true;
        l.observe(&event(&c, n), &[]);
        n += 1;
    }
    let findings = l.take_findings();
    let on_ben: Vec<&Finding> = findings.iter().filter(|f| f.principal.ends_with("/ben")).collect();
    assert!(on_ben.iter().any(|f| f.evidence.iter().any(|e| e.detector == "refusals")), "{on_ben:?}");
}

#[test]
fn a_pattern_recurring_every_night_is_raised_at_most_on_its_first_nights() {
    let mut l = Learner::new(Config::default());
    let mut n = 0;
    routine(&mut l, &["ana", "ben", "cy"], 7, &mut n);
    l.take_findings();
    // From day 7, ben's nightly export runs at 03:00, an hour he never worked.
    let mut raised_per_night = Vec::new();
    for d in 7..17 {
        let before = l.stats().deviations;
        for k in 0..6 {
            let mut c = call("ben", START + d * DAY + 3 * 3600 + k * 30, "s3:PutObject");
            c.resource = Some("arn:aws:s3:::exports/nightly.csv");
            l.observe(&event(&c, n), &[]);
            n += 1;
        }
        raised_per_night.push(l.stats().deviations - before);
        routine_day(&mut l, &["ana", "ben", "cy"], d, &mut n);
    }
    assert!(raised_per_night[0] >= 1, "the first night is noticed: {raised_per_night:?}");
    assert!(raised_per_night[4..].iter().all(|&d| d == 0), "a habit by the fifth night: {raised_per_night:?}");
    assert!(alerts(&l.take_findings()).is_empty());
}

#[test]
fn a_pile_of_first_actions_without_impact_is_at_most_medium_and_not_malicious() {
    let mut l = Learner::new(Config::default());
    let mut n = 0;
    routine(&mut l, &["ana", "ben", "cy"], 10, &mut n);
    l.take_findings();
    let t = START + 10 * DAY + 10 * 3600;
    for (i, action) in [
        "athena:StartQueryExecution",
        "glue:GetTables",
        "glue:GetDatabases",
        "athena:GetQueryResults",
        "quicksight:ListDashboards",
        "redshift:DescribeClusters",
        "sagemaker:ListNotebookInstances",
        "emr:ListClusters",
        "kinesis:ListStreams",
        "firehose:ListDeliveryStreams",
        "es:ListDomainNames",
        "cloudwatch:GetMetricData",
    ]
    .iter()
    .enumerate()
    {
        l.observe(&event(&call("cy", t + i as i64 * 40, action), n), &[]);
        n += 1;
    }
    assert!(l.stats().deviations >= 12, "each first is noticed");
    let findings = l.take_findings();
    for f in findings.iter().filter(|f| f.principal.ends_with("/cy")) {
        assert!(f.severity <= tenet_model::Severity::Medium, "{f:?}");
        assert_ne!(f.category, Category::LikelyMalicious, "first actions alone are no attack: {f:?}");
        assert!(!f.is_alert(), "{f:?}");
    }
}

#[test]
fn an_attack_keeps_its_evidence_grouped_per_behaviour_and_cites_only_what_deviates() {
    let mut l = Learner::new(Config::default());
    let mut n = 0;
    routine(&mut l, &["ana", "ben", "cy"], 10, &mut n);
    l.take_findings();
    let t = START + 10 * DAY + 15 * 3600;
    // The usual work just before it.
    l.observe(&event(&call("ana", t - 300, "s3:GetObject"), n), &[]);
    n += 1;
    let routine_ids = n;
    let steps = [
        "iam:ListUsers",
        "iam:ListAttachedUserPolicies",
        "secretsmanager:GetSecretValue",
        "iam:CreateAccessKey",
        "cloudtrail:StopLogging",
    ];
    for (i, action) in steps.iter().enumerate() {
        intruder_call(&mut l, "ana", t + i as i64 * 30, action, &mut n);
    }
    let findings = l.take_findings();
    let hit = alerts(&findings)
        .into_iter()
        .find(|f| f.principal.ends_with("/ana"))
        .unwrap_or_else(|| panic!("no alert on ana: {findings:?}"));
    assert_eq!(hit.category, Category::LikelyMalicious);
    assert!(hit.behaviours.len() >= 2, "several behaviours, each its own group: {:?}", hit.behaviours);
    assert!(hit.behaviours.iter().any(|g| g.tactic.is_some() && !g.techniques.is_empty() && !g.event_ids.is_empty()));
    let evasion = hit.behaviours.iter().find(|g| g.tactic.as_deref() == Some("TA0005")).expect("defence evasion");
    assert!(evasion.techniques.iter().any(|t| t.starts_with("T1562")), "{evasion:?}");
    assert!(hit.summary.matches(". ").count() <= 2, "one or two sentences: {}", hit.summary);
    for id in &hit.event_ids {
        let k: u64 = id.as_str().rsplit('-').next().unwrap().parse().unwrap();
        assert!((routine_ids..n).contains(&k), "{id} is not one of the deviating calls: {hit:#?}");
    }
}

#[test]
fn what_a_tracked_learner_sends_lets_another_node_decide_as_the_learner_would() {
    let mut learner = Learner::new(Config::default());
    learner.track_learned();
    let mut n = 0;
    routine(&mut learner, &["alice", "bob"], 3, &mut n);
    let mut elsewhere = tenet_learn::KnowledgeIndex::default();
    // It travels as JSON on the trust stream.
    let sent = serde_json::to_vec(&learner.take_learned()).unwrap();
    elsewhere.absorb(serde_json::from_slice(&sent).unwrap());
    assert_eq!(elsewhere.principals(), 2, "both people the events were about");

    let mut c = call("alice", START + 3 * DAY + 10 * 3600, "s3:DeleteObject");
    c.resource = Some("arn:aws:s3:::reports/0.csv");
    learner.observe(&event(&c, n), &[]);
    let learned = learner.take_learned();
    assert_eq!(learned.principals.len(), 1, "only alice acted since the last send");
    elsewhere.absorb(learned);
    assert!(learner.take_learned().is_empty(), "nothing learned twice");

    let asked = [
        ("alice", "s3:GetObject", "AWS::S3::Object"),
        ("alice", "s3:DeleteObject", "AWS::S3::Object"),
        ("bob", "s3:DeleteObject", "AWS::S3::Object"),
        ("bob", "s3:GetObject", "AWS::S3::Object"),
        ("bob", "ec2:DescribeInstances", ""),
        ("arn:aws:iam::111122223333:user/alice", "s3:GetObject", "AWS::S3::Object"),
        ("carol", "s3:GetObject", "AWS::S3::Object"),
    ];
    let mut before = 0;
    for (who, action, kind) in asked {
        let id = if who.contains(':') { who.to_string() } else { format!("arn:aws:iam::111122223333:user/{who}") };
        let here = learner.knowledge(&id, action, kind);
        assert_eq!(elsewhere.knowledge(&id, action, kind), here, "{who} {action} on {kind:?}");
        before += usize::from(here.is_some_and(|k| k.principal_before));
    }
    assert_eq!(before, 4, "the routine and alice's new call were learned, bob's never made");
}

#[test]
fn an_untracked_learner_sends_nothing() {
    let mut learner = Learner::new(Config::default());
    let mut n = 0;
    routine(&mut learner, &["alice"], 1, &mut n);
    assert!(learner.take_learned().is_empty());
}
