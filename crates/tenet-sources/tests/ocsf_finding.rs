//! Findings exported as OCSF Detection Findings are valid OCSF (see
//! `common/ocsf.rs` for the validator).

mod common;

use common::ocsf::*;
use serde_json::{Value, json};
use tenet_model::{
    BaselineStat, Category, EventId, Evidence, Finding, FindingStatus, RuleMatch, Severity, StatusChange, Timestamp,
};
use tenet_sources::formats::ocsf::{FINDING_SCHEMA_VERSION, finding_to_ocsf};

// ----- findings -----

fn at(s: &str) -> Timestamp {
    Timestamp::parse_rfc3339(s).expect("test time")
}

const STATUSES: [FindingStatus; 4] =
    [FindingStatus::Open, FindingStatus::Acknowledged, FindingStatus::Resolved, FindingStatus::Suppressed];
const SEVERITIES: [Severity; 4] = [Severity::Low, Severity::Medium, Severity::High, Severity::Critical];
const PRINCIPALS: [&str; 3] = ["arn:aws:iam::123456789012:role/deploy", "user:alice@corp", "agent:agt-1"];

fn history(status: FindingStatus) -> Vec<StatusChange> {
    let step = |t: &str, from, to, reason: Option<&str>| StatusChange {
        at: at(t),
        from,
        to,
        reason: reason.map(String::from),
    };
    let ack = step("2026-11-27T11:00:00Z", FindingStatus::Open, FindingStatus::Acknowledged, None);
    match status {
        FindingStatus::Open => Vec::new(),
        FindingStatus::Acknowledged => vec![ack],
        FindingStatus::Resolved => vec![
            ack,
            step("2026-11-27T12:30:00Z", FindingStatus::Acknowledged, FindingStatus::Resolved, Some("key rotated")),
        ],
        FindingStatus::Suppressed => vec![step(
            "2026-11-27T11:15:00Z",
            FindingStatus::Open,
            FindingStatus::Suppressed,
            Some("approved migration"),
        )],
    }
}

/// A finding with evidence of every kind: a baseline departure, a Sigma
/// match and a trust-graph path.
fn full_finding(category: Category, status: FindingStatus, n: usize) -> Finding {
    let principal = PRINCIPALS[n % PRINCIPALS.len()];
    Finding {
        id: format!("fnd-{n:04}"),
        category,
        severity: SEVERITIES[n % SEVERITIES.len()],
        confidence: 0.83,
        score: 60.0,
        principal: principal.to_string(),
        first_seen: at("2026-11-27T09:58:12Z"),
        last_seen: at("2026-11-27T10:04:40.250Z"),
        raised_at: at("2026-11-27T10:02:00Z"),
        event_ids: vec![EventId::from("ct:a1"), EventId::from("ct:a2"), EventId::from("k8s:b7")],
        techniques: vec!["T1078.004".into(), "T1098".into()],
        summary: format!("{principal} assumed role/admin for the first time and attached a policy"),
        status,
        alert: true,
        behaviours: vec![],
        explanation: "No change ticket or deploy explains the new role; the policy widens access.".into(),
        evidence: vec![
            Evidence {
                behaviour: None,
                detector: "novelty".into(),
                detail: "first AssumeRole into role/admin".into(),
                at: at("2026-11-27T09:58:12Z"),
                event_ids: vec![EventId::from("ct:a1")],
                baseline: Some(BaselineStat {
                    scope: "principal".into(),
                    feature: "action".into(),
                    observed: "sts:AssumeRole role/admin".into(),
                    expected: "never seen in 1,204 events over 9 days".into(),
                    history: 1204,
                }),
                rule: None,
                path: Vec::new(),
            },
            Evidence {
                behaviour: None,
                detector: "sigma".into(),
                detail: "matched an AWS IAM policy attachment rule".into(),
                at: at("2026-11-27T10:01:00Z"),
                event_ids: vec![EventId::from("ct:a2"), EventId::from("ct:a9")],
                baseline: None,
                rule: Some(RuleMatch {
                    id: "6a0c5b9d-0b57-4ad1-a5b6-6b3b9b0a7f3e".into(),
                    title: "AWS IAM Backdoor Users Keys".into(),
                    level: "medium".into(),
                    file: "cloud/aws/cloudtrail/aws_iam_backdoor_users_keys.yml".into(),
                }),
                path: Vec::new(),
            },
            Evidence {
                behaviour: None,
                detector: "trust_edge".into(),
                detail: "a new path to role/admin".into(),
                at: at("2026-11-27T10:04:40.250Z"),
                event_ids: vec![EventId::from("k8s:b7")],
                baseline: None,
                rule: None,
                path: vec![
                    format!("{principal} →[assumption] role/deploy"),
                    "role/deploy →[assumption] role/admin".into(),
                ],
            },
        ],
        history: history(status),
    }
}

/// A finding with nothing optional filled in.
fn bare_finding(confidence: f64) -> Finding {
    Finding {
        id: "fnd-bare".into(),
        category: Category::UnintendedDrift,
        severity: Severity::Low,
        confidence,
        score: 60.0,
        principal: "user:bob@corp".into(),
        first_seen: at("2026-11-27T10:00:00Z"),
        last_seen: at("2026-11-27T10:00:00Z"),
        raised_at: at("2026-11-27T10:00:00Z"),
        event_ids: Vec::new(),
        techniques: Vec::new(),
        summary: String::new(),
        status: FindingStatus::Open,
        alert: true,
        behaviours: vec![],
        explanation: String::new(),
        evidence: Vec::new(),
        history: Vec::new(),
    }
}

fn strs(v: &Value) -> Vec<&str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str).collect()
}

// ----- tests -----

#[test]
fn schema_resolution_follows_extends_includes_and_profiles() {
    let schema = schema();
    let mut report = Report::default();
    let class = schema.class(2004, &mut report).expect("Detection Finding resolves");
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert_eq!(class.name, "detection_finding");
    let attr = |name: &str| class.attributes.get(name).unwrap_or_else(|| panic!("`{name}` resolved"));
    // One attribute from each level of the chain, completed from the dictionary.
    assert_eq!(str_field(attr("metadata"), "requirement"), Some("required"), "base_event");
    assert_eq!(str_field(attr("finding_info"), "requirement"), Some("required"), "finding");
    assert_eq!(str_field(attr("evidences"), "type"), Some("evidences"), "detection_finding + dictionary");
    assert_eq!(attr("evidences")["is_array"], json!(true));
    // Profile attributes are tagged; the class's `"profile": null` untags.
    assert_eq!(str_field(attr("actor"), "profile"), Some("host"));
    assert_eq!(str_field(attr("osint"), "profile"), Some("osint"));
    assert_eq!(str_field(attr("osint"), "requirement"), Some("required"));
    assert_eq!(attr("confidence_score").get("profile"), Some(&Value::Null));
    // Enums merge down the chain: the dictionary's 0 and 99, the Finding's 1–3.
    // (As sets: whether JSON maps keep insertion order depends on the
    // serde_json features the workspace enables.)
    let keys = |name: &str| {
        let mut k: Vec<&String> = attr(name)["enum"].as_object().expect("enum").keys().collect();
        k.sort_by_key(|s| s.parse::<u64>().unwrap_or(u64::MAX));
        k
    };
    assert_eq!(keys("activity_id"), ["0", "1", "2", "3", "99"]);
    assert_eq!(keys("type_uid"), ["200400", "200401", "200402", "200403", "200499"]);
    assert_eq!(schema.version, FINDING_SCHEMA_VERSION, "the exporter names the schema it is checked against");
}

#[test]
fn every_category_and_status_exports_a_valid_detection_finding() {
    let schema = schema();
    let mut n = 0;
    for category in Category::ALL {
        for status in STATUSES {
            let finding = full_finding(category, status, n);
            n += 1;
            let doc = finding_to_ocsf(&finding);
            assert_valid(&schema, &doc, &format!("{category}/{status}"));

            assert!(strs(&doc["finding_info"]["types"]).contains(&category.as_str()), "{category}: types");
            let (activity, status_id, status_caption) = match status {
                FindingStatus::Open => (1, 1, "New"),
                FindingStatus::Acknowledged => (2, 2, "In Progress"),
                FindingStatus::Resolved => (3, 4, "Resolved"),
                FindingStatus::Suppressed => (3, 3, "Suppressed"),
            };
            assert_eq!(doc["activity_id"], json!(activity), "{status}");
            assert_eq!(doc["type_uid"], json!(200400 + activity), "{status}");
            assert_eq!((&doc["status_id"], &doc["status"]), (&json!(status_id), &json!(status_caption)));
            assert_eq!(doc["is_alert"], json!(category.is_alert() && activity != 3), "{category}/{status}");
            assert_eq!(doc["unmapped"]["history"].as_array().map_or(0, Vec::len), finding.history.len());
        }
    }
}

#[test]
fn export_maps_each_finding_field_to_its_ocsf_attribute() {
    let finding = full_finding(Category::LikelyMalicious, FindingStatus::Resolved, 2);
    let doc = finding_to_ocsf(&finding);
    let info = &doc["finding_info"];

    assert_eq!((&doc["class_uid"], &doc["category_uid"]), (&json!(2004), &json!(2)));
    assert_eq!(doc["metadata"]["version"], json!(FINDING_SCHEMA_VERSION));
    assert_eq!(doc["metadata"]["product"]["name"], json!("Tenet"));
    assert_eq!(doc["metadata"]["profiles"], json!(["host"]));
    assert_eq!((&doc["severity_id"], &doc["severity"]), (&json!(4), &json!("High")));
    assert_eq!(doc["confidence_score"], json!(83));
    assert_eq!(doc["time"], json!(finding.raised_at.unix_millis()));
    assert_eq!(doc["start_time"], json!(finding.first_seen.unix_millis()));
    assert_eq!(doc["end_time"], json!(at("2026-11-27T10:04:40.250Z").unix_millis()));
    assert_eq!(doc["message"], json!(finding.summary));
    assert_eq!(doc["actor"]["user"]["uid"], json!("agent:agt-1"));

    assert_eq!(info["uid"], json!("fnd-0002"));
    assert_eq!(info["title"], json!("Likely malicious: agent:agt-1"));
    assert_eq!(info["desc"], json!(format!("{}\n{}", finding.summary, finding.explanation)));
    assert_eq!(info["created_time"], doc["time"]);
    assert_eq!((&info["first_seen_time"], &info["last_seen_time"]), (&doc["start_time"], &doc["end_time"]));
    assert_eq!(info["modified_time"], json!(at("2026-11-27T12:30:00Z").unix_millis()));
    assert_eq!(
        info["attacks"],
        json!([
            {"technique": {"uid": "T1078"}, "sub_technique": {"uid": "T1078.004"}},
            {"technique": {"uid": "T1098"}},
        ])
    );
    let related: Vec<&str> =
        info["related_events"].as_array().expect("related").iter().filter_map(|e| e["uid"].as_str()).collect();
    assert_eq!(related, ["ct:a1", "ct:a2", "k8s:b7", "ct:a9"], "the finding's events, then the evidence's others");
    assert_eq!(info["related_events_count"], json!(4));
    assert_eq!(info["analytic"], json!({"name": "novelty", "type_id": 2, "type": "Behavioral"}));
    assert_eq!(
        info["related_analytics"],
        json!([
            {"uid": "6a0c5b9d-0b57-4ad1-a5b6-6b3b9b0a7f3e", "name": "AWS IAM Backdoor Users Keys", "type_id": 1, "type": "Rule"},
            {"name": "trust_edge", "type_id": 2, "type": "Behavioral"},
        ])
    );

    let evidences = doc["evidences"].as_array().expect("evidences");
    assert_eq!(evidences.len(), 3);
    assert_eq!(evidences[0]["name"], json!("novelty"));
    assert_eq!(evidences[0]["data"]["baseline"]["history"], json!(1204));
    assert_eq!(evidences[1]["data"]["rule"]["file"], json!("cloud/aws/cloudtrail/aws_iam_backdoor_users_keys.yml"));
    assert_eq!(evidences[2]["data"]["path"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        doc["anomaly_analyses"],
        json!([{
            "analysis_targets": [{"name": "agent:agt-1", "type": "principal"}],
            "anomalies": [{"observation_parameter": "action", "observations": [{"value": "sts:AssumeRole role/admin"}]}],
            "baselines": [{"observation_parameter": "action", "observations": [{"value": "never seen in 1,204 events over 9 days"}]}],
        }])
    );
    assert_eq!(doc["unmapped"]["history"][1]["reason"], json!("key rotated"));
}

#[test]
fn validator_reports_exactly_the_errors_planted_in_a_broken_document() {
    let schema = schema();
    let mut doc = finding_to_ocsf(&full_finding(Category::UnintendedDrift, FindingStatus::Open, 0));
    assert_valid(&schema, &doc, "before breaking it");

    let fields = doc.as_object_mut().expect("object");
    fields.remove("severity_id");
    fields.insert("time".into(), json!("2026-11-27T10:02:00Z"));
    fields.insert("status_id".into(), json!(42));
    doc["finding_info"]["colour"] = json!("red");

    assert_exact_violations(
        &schema.validate_event(&doc),
        &[
            ("severity_id", Problem::MissingRequired),
            ("finding_info.colour", Problem::UnknownAttribute),
            ("time", Problem::WrongType),
            ("status_id", Problem::InvalidEnumValue),
        ],
    );
}

#[test]
fn validator_reaches_into_arrays_profiles_constraints_and_type_uid() {
    let schema = schema();
    let mut doc = finding_to_ocsf(&full_finding(Category::LikelyMalicious, FindingStatus::Acknowledged, 1));
    // Deep in an array of objects: a required uid gone, an enum out of range.
    doc["finding_info"]["related_events"][1].as_object_mut().expect("related event").remove("uid");
    doc["finding_info"]["analytic"]["type_id"] = json!(12);
    // A constraint: an ATT&CK entry naming neither tactic nor technique.
    doc["finding_info"]["attacks"][1] = json!({"version": "14.1"});
    // Arrays must be arrays; strings must be strings.
    doc["finding_info"]["types"] = json!("likely_malicious");
    doc["evidences"][0]["name"] = json!(7);
    // `actor` needs the Host profile declared; `cloud` its own.
    doc["metadata"]["profiles"] = json!(["no_such_profile"]);
    doc["cloud"] = json!({"provider": "aws"});
    doc["type_uid"] = json!(200401);

    assert_exact_violations(
        &schema.validate_event(&doc),
        &[
            ("finding_info.related_events[1].uid", Problem::MissingRequired),
            ("finding_info.analytic.type_id", Problem::InvalidEnumValue),
            ("finding_info.attacks[1]", Problem::ConstraintFailed),
            ("finding_info.types", Problem::WrongType),
            ("evidences[0].name", Problem::WrongType),
            ("metadata.profiles[0]", Problem::UnknownProfile),
            ("actor", Problem::UnknownAttribute),
            ("cloud", Problem::UnknownAttribute),
            ("type_uid", Problem::TypeUidMismatch),
        ],
    );
}

#[test]
fn odd_findings_still_export_valid_detection_findings() {
    let schema = schema();
    for (confidence, score) in [(1.0, Some(100)), (0.0, Some(0)), (-0.5, Some(0)), (7.0, Some(100)), (0.005, Some(1))] {
        let doc = finding_to_ocsf(&bare_finding(confidence));
        assert_valid(&schema, &doc, &format!("confidence {confidence}"));
        assert_eq!(doc.get("confidence_score"), score.map(|s: i64| json!(s)).as_ref(), "confidence {confidence}");
        assert!(doc.get("message").is_none(), "an empty summary is no message");
        assert!(doc["finding_info"].get("related_events").is_none() && doc["finding_info"].get("attacks").is_none());
        assert_eq!(strs(&doc["finding_info"]["types"]), ["unintended_drift"]);
    }
    for confidence in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let doc = finding_to_ocsf(&bare_finding(confidence));
        assert_valid(&schema, &doc, &format!("confidence {confidence}"));
        assert!(doc.get("confidence_score").is_none(), "{confidence} is no score");
    }

    let mut nobody = bare_finding(0.5);
    nobody.id = String::new();
    nobody.principal = String::new();
    nobody.first_seen = Timestamp::MIN;
    nobody.raised_at = Timestamp::MAX;
    nobody.last_seen = Timestamp::MAX;
    nobody.techniques = vec![String::new(), "  ".into(), "T1078.004".into(), "T1078.004".into(), "x.y.z".into()];
    nobody.event_ids = vec![EventId::from(""), EventId::from("")];
    nobody.evidence = vec![Evidence {
        behaviour: None,
        detector: String::new(),
        detail: String::new(),
        at: Timestamp::MIN,
        event_ids: Vec::new(),
        baseline: Some(BaselineStat {
            scope: String::new(),
            feature: String::new(),
            observed: String::new(),
            expected: String::new(),
            history: u64::MAX,
        }),
        rule: Some(RuleMatch { id: String::new(), title: String::new(), level: String::new(), file: String::new() }),
        path: vec![String::new()],
    }];
    nobody.summary = "ünïcödé \u{0} \"quoted\" ".repeat(500);
    let doc = finding_to_ocsf(&nobody);
    assert_valid(&schema, &doc, "empty ids, extreme times, blank evidence");
    assert!(doc.get("actor").is_none(), "no principal, no actor");
    assert_eq!(doc["metadata"]["profiles"], json!([]));
    assert_eq!(doc["finding_info"]["attacks"].as_array().map(Vec::len), Some(2), "blank and repeated ids dropped");
    assert_eq!(doc["finding_info"]["related_events_count"], json!(1));
}
