//! AWS IAM: the output of `aws iam get-account-authorization-details`
//! (`UserDetailList`, `GroupDetailList`, `RoleDetailList`, `Policies`).
//!
//! Ids are the `Arn`s as given (paths included); an inline policy is
//! `<holder ARN>#inline/<PolicyName>`; an account is `arn:aws:iam::<id>:root`.
//! Policy documents are JSON objects (as the CLI prints them) or strings,
//! URL-encoded (as the API returns them) or plain JSON, parsed as the
//! CloudTrail adapter parses the documents in IAM calls.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};
use tenet_model::{Fact, NodeKind, PolicyDocument, Snapshot, Timestamp};

use super::walk::{
    Entry, Facts, Lines, Problem, Res, at, describe, entries, field, join, object, opt_array, opt_object, opt_str,
    problem, raw_list, req_str, top_object,
};
use super::{Imported, InventoryError};
use crate::formats::cloudtrail::parse_policy_document;
use crate::framing::Location;

const NAME: &str = "aws-iam";
const LISTS: [&str; 4] = ["UserDetailList", "GroupDetailList", "RoleDetailList", "Policies"];
/// The account AWS managed policies' ARNs name (`arn:aws:iam::aws:policy/…`).
const AWS_MANAGED: &str = "aws";

pub(super) fn import(text: &str, collected_at: Timestamp) -> Result<Imported, InventoryError> {
    let expected = "the output of `aws iam get-account-authorization-details` (an object with UserDetailList, GroupDetailList, RoleDetailList, Policies)";
    let top = top_object(NAME, text, expected)?;
    if !LISTS.iter().any(|k| top.contains_key(*k)) {
        return Err(InventoryError::Invalid {
            format: NAME,
            location: Location::line(1),
            reason: format!("none of {} is present; expected {expected}", LISTS.join(", ")),
        });
    }
    if let Some(raw) = top.get("IsTruncated")
        && raw.get().trim() == "true"
    {
        let mut lines = Lines::new(text);
        return Err(InventoryError::Incomplete {
            format: NAME,
            location: Location::line(lines.of(raw.get())).with_path("IsTruncated"),
            reason: "this is one page of a paginated response (IsTruncated is true); merge the pages, as the AWS CLI does, before importing".to_string(),
        });
    }

    let mut lines = Lines::new(text);
    let mut skipped = Vec::new();
    let mut lists: HashMap<&str, Vec<Entry>> = HashMap::new();
    for key in LISTS {
        let raws = raw_list(NAME, text, key, top.get(key).copied())?;
        lists.insert(key, entries(&mut lines, key, &raws, &mut skipped));
    }
    let list = |k: &str| lists.get(k).map_or(&[][..], Vec::as_slice);

    // Users name their groups; groups' ARNs (with their paths) come from the group list.
    let mut group_arns: HashMap<(String, String), String> = HashMap::new();
    for e in list("GroupDetailList") {
        let (Some(name), Some(arn)) = (e.value["GroupName"].as_str(), e.value["Arn"].as_str()) else { continue };
        if let Some((_, account)) = iam_arn(arn) {
            group_arns.insert((account.to_string(), name.to_string()), arn.to_string());
        }
    }

    let mut accounts = Accounts::default();
    let entity_lists: [(&str, Kind); 3] =
        [("GroupDetailList", Kind::Group), ("UserDetailList", Kind::User), ("RoleDetailList", Kind::Role)];
    for (key, kind) in entity_lists {
        for e in list(key) {
            match entity(e, kind, &group_arns) {
                Ok((partition, account, facts)) => accounts.add(account, partition, facts),
                Err(p) => skipped.push(e.skipped(entry_name(&e.value), p)),
            }
        }
    }
    for e in list("Policies") {
        match managed_policy(e) {
            Ok((partition, account, facts)) => accounts.add(account, partition, facts),
            Err(p) => skipped.push(e.skipped(entry_name(&e.value), p)),
        }
    }
    let snapshots = accounts.snapshots(collected_at);
    if snapshots.is_empty() && skipped.is_empty() {
        // A snapshot is an account's whole inventory; with no ARN there is
        // no account to say it of, and "imported 0 snapshots" hides that.
        return Err(InventoryError::Invalid {
            format: NAME,
            location: Location::line(1),
            reason: format!(
                "every list ({}) is empty: no entry names an account, so there is nothing to import",
                LISTS.join(", ")
            ),
        });
    }
    Ok(Imported { snapshots, skipped })
}

/// What names an entry in a report: its ARN, else its name.
fn entry_name(v: &Value) -> Option<String> {
    ["Arn", "RoleName", "UserName", "GroupName", "PolicyName"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_str))
        .map(str::to_string)
}

/// Facts per account, and the AWS managed policies every account shares.
#[derive(Default)]
struct Accounts {
    by_account: BTreeMap<String, Facts>,
    /// AWS managed policies, listed by (and so given to) every account.
    shared: Facts,
}

impl Accounts {
    fn add(&mut self, account: String, partition: String, facts: Vec<Fact>) {
        if account == AWS_MANAGED {
            self.shared.extend(facts);
            return;
        }
        let entry = self.by_account.entry(account.clone()).or_insert_with(|| {
            let mut f = Facts::default();
            f.push(Fact::Node {
                id: format!("arn:{partition}:iam::{account}:root"),
                kind: NodeKind::ACCOUNT,
                name: None,
            });
            f
        });
        entry.extend(facts);
    }

    fn snapshots(self, collected_at: Timestamp) -> Vec<Snapshot> {
        let shared = self.shared.into_vec();
        let snapshot =
            |scope: String, facts: Vec<Fact>| Snapshot { source: NAME.to_string(), scope, collected_at, facts };
        if self.by_account.is_empty() {
            // Only AWS managed policies: they are the `aws` pseudo-account's.
            return if shared.is_empty() { Vec::new() } else { vec![snapshot(format!("aws:{AWS_MANAGED}"), shared)] };
        }
        self.by_account
            .into_iter()
            .map(|(account, mut facts)| {
                facts.extend(shared.iter().cloned());
                snapshot(format!("aws:{account}"), facts.into_vec())
            })
            .collect()
    }
}

/// `(partition, account)` of an IAM ARN (`arn:aws:iam::123456789012:role/x`).
fn iam_arn(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (arn_, partition, service, _region, account, resource) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    (arn_ == "arn" && !partition.is_empty() && service == "iam" && !account.is_empty() && !resource.is_empty())
        .then_some((partition, account))
}

fn arn_field<'v>(m: &'v Map<String, Value>, path: &str) -> Res<(&'v str, String, String)> {
    let arn = req_str(m, path, "Arn")?;
    match iam_arn(arn) {
        Some((partition, account)) => Ok((arn, partition.to_string(), account.to_string())),
        None => {
            problem(join(path, "Arn"), format!("`{arn}` is not an IAM ARN (arn:<partition>:iam::<account>:<resource>)"))
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    User,
    Group,
    Role,
}

/// A user, group or role: its node and everything attached to it.
fn entity(e: &Entry, kind: Kind, group_arns: &HashMap<(String, String), String>) -> Res<(String, String, Vec<Fact>)> {
    let path = e.path.as_str();
    let m = object(&e.value, path)?;
    let (arn, partition, account) = arn_field(m, path)?;
    let (name_key, inline_key, node_kind) = match kind {
        Kind::User => ("UserName", "UserPolicyList", user_kind(m, path)?),
        Kind::Group => ("GroupName", "GroupPolicyList", NodeKind::Group),
        Kind::Role => ("RoleName", "RolePolicyList", NodeKind::ROLE),
    };
    let name = opt_str(m, path, name_key)?.map(str::to_string).or_else(|| arn.rsplit('/').next().map(str::to_string));
    let mut facts = vec![Fact::Node { id: arn.to_string(), kind: node_kind, name }];

    if kind == Kind::User {
        let p = join(path, "GroupList");
        for (i, g) in opt_array(m, path, "GroupList")?.iter().enumerate() {
            let Value::String(group) = g else {
                return problem(at(&p, i), format!("expected a group name, found {}", describe(g)));
            };
            let group_arn = group_arns
                .get(&(account.clone(), group.clone()))
                .cloned()
                .unwrap_or_else(|| format!("arn:{partition}:iam::{account}:group/{group}"));
            facts.push(Fact::Member { member: arn.to_string(), group: group_arn });
        }
    }

    let p = join(path, inline_key);
    for (i, item) in opt_array(m, path, inline_key)?.iter().enumerate() {
        let ip = at(&p, i);
        let im = object(item, &ip)?;
        let policy_name = req_str(im, &ip, "PolicyName")?;
        let Some(doc) = field(im, "PolicyDocument") else {
            return problem(join(&ip, "PolicyDocument"), "is missing");
        };
        let id = format!("{arn}#inline/{policy_name}");
        let document = document(doc, &join(&ip, "PolicyDocument"))?;
        facts.push(Fact::Node { id: id.clone(), kind: NodeKind::Policy, name: Some(policy_name.to_string()) });
        facts.push(Fact::Policy { policy: id.clone(), document });
        facts.push(Fact::Attached { holder: arn.to_string(), policy: id });
    }

    let p = join(path, "AttachedManagedPolicies");
    for (i, item) in opt_array(m, path, "AttachedManagedPolicies")?.iter().enumerate() {
        let ip = at(&p, i);
        let policy = req_str(object(item, &ip)?, &ip, "PolicyArn")?;
        facts.push(Fact::Attached { holder: arn.to_string(), policy: policy.to_string() });
    }

    if kind != Kind::Group
        && let Some(b) = opt_object(m, path, "PermissionsBoundary")?
    {
        let bp = join(path, "PermissionsBoundary");
        let policy = req_str(b, &bp, "PermissionsBoundaryArn")?;
        facts.push(Fact::Boundary { holder: arn.to_string(), policy: policy.to_string() });
    }

    if kind == Kind::Role
        && let Some(doc) = field(m, "AssumeRolePolicyDocument")
    {
        let document = document(doc, &join(path, "AssumeRolePolicyDocument"))?;
        facts.push(Fact::Trust { role: arn.to_string(), document });
    }
    Ok((partition, account, facts))
}

/// A user is a person unless tagged `kind`/`type` = `service`/`workload`.
fn user_kind(m: &Map<String, Value>, path: &str) -> Res<NodeKind> {
    let p = join(path, "Tags");
    for (i, tag) in opt_array(m, path, "Tags")?.iter().enumerate() {
        let tp = at(&p, i);
        let t = object(tag, &tp)?;
        let key = req_str(t, &tp, "Key")?;
        if key.eq_ignore_ascii_case("kind") || key.eq_ignore_ascii_case("type") {
            let value = opt_str(t, &tp, "Value")?.unwrap_or("");
            if value.eq_ignore_ascii_case("service") || value.eq_ignore_ascii_case("workload") {
                return Ok(NodeKind::WORKLOAD);
            }
        }
    }
    Ok(NodeKind::HUMAN)
}

/// A managed policy: its node and its default version's document.
fn managed_policy(e: &Entry) -> Res<(String, String, Vec<Fact>)> {
    let path = e.path.as_str();
    let m = object(&e.value, path)?;
    let (arn, partition, account) = arn_field(m, path)?;
    let name =
        opt_str(m, path, "PolicyName")?.map(str::to_string).or_else(|| arn.rsplit('/').next().map(str::to_string));
    let default = opt_str(m, path, "DefaultVersionId")?;
    let vp = join(path, "PolicyVersionList");
    let versions = opt_array(m, path, "PolicyVersionList")?;
    let mut chosen = None;
    for (i, v) in versions.iter().enumerate() {
        let ip = at(&vp, i);
        let vm = object(v, &ip)?;
        let is_default = match field(vm, "IsDefaultVersion") {
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return problem(
                    join(&ip, "IsDefaultVersion"),
                    format!("expected a boolean, found {}", describe(other)),
                );
            }
            None => false,
        };
        if is_default || (default.is_some() && opt_str(vm, &ip, "VersionId")? == default) {
            chosen = Some((vm, ip));
            if is_default {
                break;
            }
        }
    }
    let Some((vm, ip)) = chosen else {
        return problem(
            vp,
            format!("no default version ({}) among the policy's versions", default.unwrap_or("none named")),
        );
    };
    let Some(doc) = field(vm, "Document") else {
        return problem(join(&ip, "Document"), "is missing");
    };
    let document = document(doc, &join(&ip, "Document"))?;
    let facts = vec![
        Fact::Node { id: arn.to_string(), kind: NodeKind::Policy, name },
        Fact::Policy { policy: arn.to_string(), document },
    ];
    Ok((partition, account, facts))
}

// ----- policy documents -----

/// A policy document: a JSON object (as the CLI prints it) or a string
/// holding one, URL-encoded (as the IAM API returns it) or plain. Parsed by
/// the same function the CloudTrail adapter uses for the documents in IAM
/// calls, so a policy reads the same from an event and from the inventory.
fn document(v: &Value, path: &str) -> Res<PolicyDocument> {
    let text = match v {
        Value::String(s) => Cow::Borrowed(s.as_str()),
        Value::Object(_) => Cow::Owned(v.to_string()),
        other => {
            return problem(
                path,
                format!("expected a policy document (an object or a URL-encoded string), found {}", describe(other)),
            );
        }
    };
    parse_policy_document(&text).map_err(|reason| {
        // `Statement[2]: …` names a statement: make it part of the path.
        let (statement, reason) = match reason.split_once("]: ") {
            Some((s, rest)) if s.starts_with("Statement[") => (format!(".{s}]"), rest.to_string()),
            _ => (String::new(), reason),
        };
        Problem { path: format!("{path}{statement}"), reason }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tenet_model::Matcher;

    #[test]
    fn documents_as_objects_and_as_text() {
        let plain = r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/a+b"}}"#;
        let encoded: String = plain
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        let object = document(&serde_json::from_str(plain).unwrap(), "D").unwrap();
        assert_eq!(document(&Value::String(plain.into()), "D").unwrap(), object);
        assert_eq!(document(&Value::String(encoded), "D").unwrap(), object);
        assert_eq!(object.statements[0].actions, Matcher::Only(vec!["s3:GetObject".into()]));
        assert_eq!(object.statements[0].resources, Matcher::Only(vec!["arn:aws:s3:::b/a+b".into()]));
        let e = document(&json!(3), "RoleDetailList[0].AssumeRolePolicyDocument").unwrap_err();
        assert_eq!(e.path, "RoleDetailList[0].AssumeRolePolicyDocument");
        assert!(document(&json!({"Version": "2012-10-17"}), "D").is_err());
    }

    #[test]
    fn arns() {
        assert_eq!(
            iam_arn("arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/X"),
            Some(("aws", "123456789012"))
        );
        assert_eq!(iam_arn("arn:aws-cn:iam::aws:policy/ReadOnlyAccess"), Some(("aws-cn", "aws")));
        assert_eq!(iam_arn("arn:aws:s3:::bucket"), None);
        assert_eq!(iam_arn("nonsense"), None);
    }
}
