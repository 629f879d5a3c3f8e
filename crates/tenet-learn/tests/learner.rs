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
}

fn call<'a>(who: &'a str, t: i64, action: &'a str) -> Call<'a> {
    Call { who, t, action, ip: "10.0.1.20", ua: "aws-cli/2.15.0 Python/3.11", resource: None, failed: false }
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
        "outcome": if c.failed { json!({"status": "failure", "code": "AccessDenied"}) } else { json!({"status": "success"}) },
        "context": {"ip": c.ip, "user_agent": c.ua, "region": "eu-west-1"},
        "source": {"format": "cloudtrail", "system": "aws", "tenant": "111122223333"},
    });
    serde_json::from_value(v).expect("a valid normalised event")
}

/// `days` working days of the same routine for each of `people`: a few
/// reads an hour through office hours, from the office, with the CLI.
fn routine(learner: &mut Learner, people: &[&str], days: i64, n: &mut u64) {
    for d in 0..days {
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
        let mut c = call("ana", t + i * 20, "secretsmanager:GetSecretValue");
        c.ip = "203.0.113.66";
        c.ua = "python-requests/2.31";
        l.observe(&event(&c, n), &[]);
        n += 1;
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
