//! Bad input is named and contained: every malformed record becomes a located
//! rejection, the good records around it are still read, and nothing panics
//! or hangs, whatever the bytes.

use proptest::prelude::*;
use tenet_sources::formats::{cloudtrail::CloudTrail, otlp::Otlp};
use tenet_sources::{FORMATS, Format, read_all};

fn ct(id: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.08","eventTime":"2024-08-01T11:30:00Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","eventID":"{id}","userIdentity":{{"type":"IAMUser","arn":"arn:aws:iam::1:user/a","accountId":"1","userName":"a"}},"requestParameters":{{"bucketName":"b","key":"k"}}}}"#
    )
}

fn ids(events: &[tenet_model::Event]) -> Vec<String> {
    events.iter().map(|e| e.id.to_string()).collect()
}

fn delivery(records: &[String]) -> String {
    format!("{{\"Records\": [\n  {}\n]}}\n", records.join(",\n  "))
}

#[test]
fn truncated_delivery_file_keeps_the_records_before_the_cut() {
    let full = delivery(&[ct("a"), ct("b"), ct("c")]);
    let cut = &full[..full.find("\"c\"").unwrap()];
    let (events, errors) = read_all(&CloudTrail, cut.as_bytes());
    assert_eq!(ids(&events), vec!["a", "b"]);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].reason.contains("truncated"), "{}", errors[0].reason);
    assert_eq!(errors[0].location.index, Some(2));
}

#[test]
fn wrong_field_type_is_named_with_its_path() {
    let bad = ct("b").replace(r#""userName":"a""#, r#""userName":["a"]"#);
    let (events, errors) = read_all(&CloudTrail, delivery(&[ct("a"), bad, ct("c")]).as_bytes());
    assert_eq!(ids(&events), vec!["a", "c"]);
    assert_eq!(errors[0].location.path.as_deref(), Some("userIdentity.userName"));
    assert_eq!(errors[0].location.line, 3);
    assert!(errors[0].reason.contains("invalid type"), "{}", errors[0].reason);
}

#[test]
fn missing_required_field_is_named() {
    let bad = ct("b").replace(r#""eventSource":"s3.amazonaws.com","#, "");
    let (events, errors) = read_all(&CloudTrail, delivery(&[ct("a"), bad]).as_bytes());
    assert_eq!(ids(&events), vec!["a"]);
    assert!(errors[0].reason.contains("missing field `eventSource`"), "{}", errors[0].reason);
}

#[test]
fn invalid_utf8_rejects_only_its_record() {
    let mut data = format!("{}\n", ct("a")).into_bytes();
    data.extend_from_slice(ct("b").replace("GetObject", "Get\u{1}Object").as_bytes());
    let pos = data.iter().rposition(|&b| b == 1).unwrap();
    data[pos] = 0xff;
    data.extend_from_slice(format!("\n{}\n", ct("c")).as_bytes());
    let (events, errors) = read_all(&CloudTrail, &data);
    assert_eq!(ids(&events), vec!["a", "c"]);
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].location.line, 2);
}

#[test]
fn ten_megabyte_string_is_refused_by_size_not_parsed() {
    let huge = ct("b").replace(r#""key":"k""#, &format!(r#""key":"{}""#, "x".repeat(10 << 20)));
    let (events, errors) = read_all(&CloudTrail, format!("{}\n{huge}\n{}\n", ct("a"), ct("c")).as_bytes());
    assert_eq!(ids(&events), vec!["a", "c"]);
    assert!(errors[0].reason.contains("limit"), "{}", errors[0].reason);
    assert_eq!(errors[0].location.line, 2);
}

#[test]
fn ten_thousand_deep_nesting_is_rejected_without_overflowing_the_stack() {
    let deep = format!(
        r#"{{"eventTime":"2024-08-01T11:30:00Z","eventSource":"s3.amazonaws.com","eventName":"X","eventID":"b","requestParameters":{}{}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    for f in FORMATS {
        let (_, errors) = read_all(*f, deep.as_bytes());
        assert!(!errors.is_empty(), "{} accepted a 10,000-deep record", f.name());
    }
    let (events, errors) = read_all(&CloudTrail, format!("[{},\n{deep},\n{}]", ct("a"), ct("c")).as_bytes());
    assert_eq!(ids(&events), vec!["a", "c"]);
    assert!(errors[0].reason.contains("nests deeper than 128 levels"), "{}", errors[0].reason);
}

#[test]
fn empty_input_is_a_named_rejection_for_every_format() {
    for f in FORMATS {
        let (events, errors) = read_all(*f, b"");
        assert!(events.is_empty());
        assert_eq!(errors.len(), 1, "{}", f.name());
        assert!(errors[0].reason.contains("empty"), "{}: {}", f.name(), errors[0].reason);
    }
}

#[test]
fn broken_span_is_rejected_alone() {
    let data = br#"{"resourceSpans":[{"resource":{"attributes":[]},"scopeSpans":[{"spans":[
      {"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203331","name":"ok","startTimeUnixNano":"1"},
      {"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":"b7ad6b7169203332","name":"bad","startTimeUnixNano":"soon"},
      {"traceId":"0af7651916cd43dd8448eb211c80319c","spanId":7,"name":"bad type","startTimeUnixNano":"1"}]}]}]}"#;
    let (events, errors) = read_all(&Otlp, data);
    assert_eq!(events.len(), 1);
    assert_eq!(errors.len(), 2);
    assert!(
        errors[0].location.to_string().contains("resourceSpans[0].scopeSpans[0].spans[1].startTimeUnixNano"),
        "{}",
        errors[0].location
    );
    assert!(errors[1].location.to_string().contains("spans[2].spanId"), "{}", errors[1].location);
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512)
}

fn formats() -> impl Strategy<Value = &'static str> {
    prop::sample::select(tenet_sources::format::names())
}

fn format(name: &str) -> &'static dyn Format {
    tenet_sources::format::by_name(name).expect("registered format")
}

const SAMPLES: &[&str] = &[
    r#"{"Records":[{"eventTime":"2024-08-01T11:30:00Z","eventSource":"sts.amazonaws.com","eventName":"AssumeRole","eventID":"x","userIdentity":{"type":"AssumedRole","arn":"arn:aws:sts::1:assumed-role/r/s","sessionContext":{"sessionIssuer":{"type":"Role","arn":"arn:aws:iam::1:role/r"},"attributes":{"mfaAuthenticated":"false"}}},"responseElements":{"credentials":{"accessKeyId":"ASIA"}}}]}"#,
    r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a","stage":"ResponseComplete","verb":"get","user":{"username":"u"},"impersonatedUser":{"username":"v"},"objectRef":{"resource":"pods","namespace":"n","name":"p"},"responseStatus":{"code":403},"stageTimestamp":"2026-01-01T00:00:00Z"}"#,
    r#"[{"uuid":"u","published":"2026-01-01T00:00:00Z","eventType":"user.session.start","actor":{"id":"1","type":"User"},"outcome":{"result":"FAILURE"},"target":[{"id":"t"}]}]"#,
    r#"{"class_uid":3002,"activity_id":1,"time":1,"user":{"uid":"a"},"metadata":{"uid":"m"},"status_id":2}"#,
    r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"enduser.id","value":{"stringValue":"a"}}]},"scopeSpans":[{"spans":[{"traceId":"01","spanId":"02","parentSpanId":"02","name":"execute_tool t","startTimeUnixNano":"1","attributes":[{"key":"gen_ai.tool.name","value":{"stringValue":"t"}}]}]}]}]}"#,
];

proptest! {
    // 512 cases by default; `PROPTEST_CASES=20000` for a longer hunt.
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// Any bytes at all: every format answers with events or errors, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(name in formats(), bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = read_all(format(name), &bytes);
    }

    /// Valid samples with bytes flipped, inserted or cut off.
    #[test]
    fn mutated_records_never_panic(
        name in formats(),
        sample in prop::sample::select(SAMPLES),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut bytes = sample.as_bytes().to_vec();
        for (at, byte, op) in edits {
            if bytes.is_empty() { break; }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                _ => bytes.truncate(i),
            }
        }
        let _ = read_all(format(name), &bytes);
    }

    /// One garbage line among good NDJSON lines costs exactly that line.
    #[test]
    fn garbage_line_costs_only_itself(n in 1usize..20, at in any::<prop::sample::Index>(), garbage in "[^\n\r]{1,80}") {
        // A leading byte-order mark is legitimate, not garbage.
        prop_assume!(!garbage.trim_start_matches('\u{feff}').trim().is_empty());
        let mut lines: Vec<String> = (0..n).map(|i| ct(&format!("id{i}"))).collect();
        lines.insert(at.index(n + 1), garbage);
        let (events, errors) = read_all(&CloudTrail, lines.join("\n").as_bytes());
        prop_assert_eq!(events.len(), n);
        prop_assert_eq!(errors.len(), 1);
    }

    /// One record per line (in an array, a wrapper, or after a pretty-printed
    /// first document), one line cut off anywhere: that record is rejected,
    /// every other one is read. Records quote a bracket in a string, as error
    /// messages do, so a cut string cannot be left to pair with the next
    /// line's quotes.
    #[test]
    fn a_cut_line_costs_only_its_record(n in 3usize..10, which in any::<prop::sample::Index>(), cut in any::<prop::sample::Index>(), shape in 0u8..3) {
        let rec = |i: usize| ct(&format!("id{i}")).replace(r#""eventID""#, r#""errorMessage":"unexpected '}' in policy","eventID""#);
        let k = 1 + which.index(n - 1);
        let full = rec(k);
        let at = 1 + cut.index(full.len() - 2);
        let lines: Vec<String> = (0..n).map(|i| if i == k { full[..at].to_string() } else { rec(i) }).collect();
        let join = |lines: &[String]| {
            let mut out = String::new();
            for (i, l) in lines.iter().enumerate() {
                out.push_str(l);
                // A cut line lost its comma with the rest of it.
                if i + 1 < lines.len() && i != k { out.push(','); }
                out.push('\n');
            }
            out
        };
        let data = match shape {
            0 => format!("[\n{}]\n", join(&lines)),
            1 => format!("{{\"Records\":[\n{}]}}\n", join(&lines)),
            _ => {
                let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
                format!("{}\n{}", serde_json::to_string_pretty(&first).unwrap(), lines[1..].join("\n"))
            }
        };
        let (events, errors) = read_all(&CloudTrail, data.as_bytes());
        let expected: Vec<String> = (0..n).filter(|&i| i != k).map(|i| format!("id{i}")).collect();
        prop_assert_eq!(ids(&events), expected, "{}", data);
        prop_assert_eq!(errors.len(), 1, "{:?}", errors);
        prop_assert_eq!(errors[0].location.index, Some(k));
    }

    /// A delivery file cut anywhere yields every record that ended before the cut.
    #[test]
    fn any_truncation_keeps_complete_records(n in 1usize..8, cut in any::<prop::sample::Index>()) {
        let full = delivery(&(0..n).map(|i| ct(&format!("id{i}"))).collect::<Vec<_>>());
        let at = cut.index(full.len());
        let prefix = &full[..at];
        let complete = (0..n).filter(|i| {
            let rec = ct(&format!("id{i}"));
            prefix.find(&rec).is_some_and(|p| p + rec.len() <= at)
        }).count();
        let (events, _) = read_all(&CloudTrail, prefix.as_bytes());
        prop_assert_eq!(events.len(), complete);
    }
}

#[test]
fn garbage_first_line_that_opens_a_bracket_costs_only_itself() {
    for garbage in ["[A", "[¡", "[]", "{\"x\":", "[{", "]"] {
        let data = format!("{garbage}\n{}\n{}\n", ct("a"), ct("b"));
        let (events, errors) = read_all(&CloudTrail, data.as_bytes());
        assert_eq!(ids(&events), vec!["a", "b"], "after {garbage:?}");
        assert_eq!(errors.len(), 1, "after {garbage:?}");
        assert_eq!(errors[0].location.line, 1);
    }
}
