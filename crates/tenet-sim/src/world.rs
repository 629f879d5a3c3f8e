//! The simulation: who does what, hour by hour.
//!
//! Every hour is generated from its own random stream (`rng::rng(seed,
//! "hour", [h])`), so hours can be produced in parallel and in any order
//! while the output stays byte-identical. State that spans hours (role
//! sessions, on-call weeks, holidays, a team's move, a tool's rollout) is a
//! function of the hour, not something carried from one hour to the next.

use std::collections::BTreeMap;

use fastrand::Rng;
use serde_json::{Value, json};

use crate::org::*;
use crate::record::*;
use crate::rng;
use crate::scenario::{self, Plan};
use crate::{Config, DAY, HOUR};

/// Legitimate change over the period, always present (unlabelled): a new
/// data source, a service scaling out, a coding workflow re-routed to a new
/// tool, holidays, on-call incidents.
pub struct Evolution {
    pub new_source_at: i64,
    pub scale_out_at: i64,
    pub reroute_at: i64,
    /// Night hours (seconds from start) with an incident for the on-call.
    pub incidents: Vec<i64>,
}

pub struct Simulation {
    pub config: Config,
    pub org: Org,
    pub evolution: Evolution,
    pub plans: Vec<Plan>,
    /// What Terraform manages.
    pub workspaces: Vec<crate::iac::Workspace>,
    /// The agents serving each person.
    serving: Vec<Vec<usize>>,
    /// Scenario and evolution events fixed in advance, by hour.
    fixed: BTreeMap<u32, Vec<(Record, Vec<Label>)>>,
}

/// What one hour produced.
#[derive(Default)]
pub struct Hour {
    pub records: Vec<Record>,
    pub labels: Vec<Label>,
}

impl Hour {
    pub fn push(&mut self, r: Record) {
        self.records.push(r);
    }
}

/// How long after the local start hour the morning sign-in has surely
/// happened (it comes within the hour's first ten minutes and a few seconds).
const SIGN_IN_LAG: i64 = 15 * 60;

impl Simulation {
    pub fn new(config: Config) -> Simulation {
        let mut org = Org::build(&config);
        let total = i64::from(config.days) * DAY;
        let mut r = rng::rng(config.seed, "evolution", &[]);
        let at = |r: &mut Rng, frac: f64| ((total as f64 * frac) as i64 / HOUR) * HOUR + r.i64(9..15) * HOUR;
        let weeks = (config.days / 7).max(1);
        let evolution = Evolution {
            new_source_at: at(&mut r, 0.30).min(total - HOUR),
            scale_out_at: at(&mut r, 0.42).min(total - HOUR),
            reroute_at: at(&mut r, 0.50).min(total - HOUR),
            incidents: (0..weeks)
                .map(|w| i64::from(w) * 7 * DAY + i64::from(r.u32(0..5)) * DAY + r.i64(0..5) * HOUR)
                .filter(|t| *t < total)
                .collect(),
        };
        let plans = scenario::plan(&config, &org);
        crate::change::settle(&plans, &mut org);
        let serving = (0..org.headcount())
            .map(|p| (0..org.agents.len()).filter(|&a| org.agents[a].users.contains(&p)).collect())
            .collect();
        let mut sim =
            Simulation { config, org, evolution, plans, workspaces: Vec::new(), serving, fixed: BTreeMap::new() };
        sim.workspaces = sim.build_workspaces();
        let mut fixed: BTreeMap<u32, Vec<(Record, Vec<Label>)>> = BTreeMap::new();
        for (record, labels) in scenario::fixed_events(&sim).into_iter().chain(sim.evolution_events()) {
            let t = record_offset(&sim, &record);
            if t >= 0 && t < total {
                fixed.entry((t / HOUR) as u32).or_default().push((record, labels));
            }
        }
        sim.fixed = fixed;
        sim
    }

    pub fn hours(&self) -> u32 {
        self.config.days * 24
    }

    /// Absolute Unix seconds of simulation second `t`.
    pub fn abs(&self, t: i64) -> i64 {
        self.config.start.unix_seconds() + t
    }

    /// Everything that happens in hour `h`, in no particular order.
    pub fn hour(&self, h: u32) -> Hour {
        let mut out = Hour::default();
        let mut r = rng::rng(self.config.seed, "hour", &[u64::from(h)]);
        let start = i64::from(h) * HOUR;
        for p in 0..self.org.headcount() {
            self.person_hour(&mut r, p, start, &mut out);
        }
        for s in 0..self.org.services.len() {
            self.service_hour(&mut r, s, start, &mut out);
        }
        self.dormant_user_hour(&mut r, start, &mut out);
        self.controllers_hour(&mut r, start, &mut out);
        self.incident_hour(&mut r, start, &mut out);
        // Each of these draws from its own stream: adding one never moves
        // what another generates.
        self.terraform_hour(start, &mut out);
        self.aws_services_hour(start, &mut out);
        if let Some(fixed) = self.fixed.get(&h) {
            for (record, labels) in fixed {
                out.records.push(record.clone());
                out.labels.extend(labels.iter().cloned());
            }
        }
        out
    }

    // ----- people -----

    /// The team a person works in at `t`: a reorg moves people.
    pub fn team_at(&self, person: usize, t: i64) -> usize {
        for plan in &self.plans {
            if let Some(switch) = plan.reorg_switch(person)
                && t >= switch
            {
                return TEAM_ML;
            }
        }
        self.org.person(person).team
    }

    pub(crate) fn day_of(&self, t: i64) -> (u32, u32) {
        let abs = self.abs(t);
        let day = (t / DAY) as u32;
        // 1970-01-01 was a Thursday: Monday = 0.
        let weekday = ((abs.div_euclid(DAY) + 3).rem_euclid(7)) as u32;
        (day, weekday)
    }

    fn person_hour(&self, r: &mut Rng, p: usize, start: i64, out: &mut Hour) {
        let (day, _) = self.day_of(start);
        if !self.employed(p, start) {
            return;
        }
        let tz = self.tz_at(p, start);
        if !self.org.working(p, self.abs(start), tz, day) {
            return;
        }
        // Dormant or stolen identities are scenario business, not habits.
        let person = self.org.person(p);
        let team = self.team_at(p, start);
        let mark = out.records.len();
        let local = (self.abs(start) / HOUR + tz).rem_euclid(24);
        if local == person.start_hour {
            self.morning(r, p, team, start, out);
        }
        if local == self.console_hour(p, start) {
            self.console_session(p, team, start, out);
        }
        if team == TEAM_PLATFORM
            && rng::rng(self.config.seed, "tf-laptop", &[p as u64, (start / HOUR) as u64]).f64()
                < self.org.shape.laptop_plans()
        {
            self.terraform_laptop(p, start, out);
        }
        let t = &self.org.teams[team];
        let n = rng::poisson(r, t.rate * person.rate_factor);
        // A new hire's first calls come after their first sign-in.
        let not_before = self.first_day(p).map_or(i64::MIN, |first| first + SIGN_IN_LAG);
        let habits = self.habits_of(team, start);
        for _ in 0..n {
            let when = start + r.i64(0..HOUR);
            if when < not_before {
                continue;
            }
            let i = rng::weighted(r, habits.iter().map(|h| h.weight));
            match habits[i].act {
                Act::Aws { account, call } => self.person_aws(r, p, team, when, account, call, out),
                Act::K8s { verb, resource } => self.person_k8s(r, p, team, when, verb, resource, out),
                Act::Agent => self.use_agent(r, p, when, out),
            }
        }
        let labels = scenario::ongoing_labels(self, Some(p), None, start, &out.records[mark..]);
        out.labels.extend(labels);
    }

    /// Whether person `p` works here in the hour from `t`: a new hire from
    /// the first morning after their account was created.
    pub fn employed(&self, p: usize, t: i64) -> bool {
        self.first_day(p).is_none_or(|first| t + HOUR > first)
    }

    /// A new hire's first morning at work.
    pub fn first_day(&self, p: usize) -> Option<i64> {
        let created = self.org.person(p).created?;
        Some(crate::change::first_morning(self, p, created + 12 * HOUR))
    }

    /// The time zone a person works in at `t`: their own, or where they travel.
    pub fn tz_at(&self, p: usize, t: i64) -> i64 {
        crate::change::travel_at(self, p, t).map_or(self.org.person(p).tz, |d| d.tz)
    }

    /// Where the identity provider places a person at `t`.
    pub fn place_at(&self, p: usize, t: i64) -> crate::record::Place {
        crate::change::travel_at(self, p, t).map_or(self.org.person(p).home, |d| d.place)
    }

    /// The AWS CLI a person's laptop sends at `t`: a replacement laptop brings another.
    pub fn laptop_ua_at(&self, p: usize, t: i64) -> String {
        match crate::change::new_device_since(self, p) {
            Some(since) if t >= since => crate::change::NEW_LAPTOP_CLI.to_string(),
            _ => self.org.person(p).laptop_ua.clone(),
        }
    }

    /// The browser a person signs in with at `t`.
    pub fn browser_ua_at(&self, p: usize, t: i64) -> String {
        match crate::change::new_device_since(self, p) {
            Some(since) if t >= since => crate::change::NEW_LAPTOP_BROWSER.to_string(),
            _ => browser_ua(p),
        }
    }

    /// A team's habits, plus what evolution added by `t`.
    fn habits_of(&self, team: usize, t: i64) -> Vec<Habit> {
        let mut habits = self.org.teams[team].habits.clone();
        for h in habits.iter_mut() {
            if let Act::Agent = h.act {
                h.weight *= self.org.shape.agent_use();
            }
        }
        if team == TEAM_ANALYTICS && t >= self.evolution.new_source_at {
            // The new data source is adopted over three days.
            let ramp = ((t - self.evolution.new_source_at) as f64 / (3 * DAY) as f64).min(1.0);
            habits.push(Habit {
                weight: 4.0 * ramp,
                act: Act::Aws {
                    account: DATA,
                    call: Call {
                        source: "s3.amazonaws.com",
                        name: "GetObject",
                        read_only: true,
                        target: Target::Object(BUCKET_EVENTS_V2),
                    },
                },
            });
        }
        habits
    }

    /// Where a person connects from at `t`: the office, home, or wherever
    /// they travel.
    pub fn office_or_home(&self, r: &mut Rng, p: usize, t: i64) -> String {
        if let Some(ip) = crate::change::travel_ip(self, r, p, t) {
            return ip;
        }
        if r.f64() < 0.7 {
            format!("{}{}", self.org.office_prefix, 10 + (p % 40))
        } else {
            self.org.person(p).home_ip.clone()
        }
    }

    /// The Identity Center session credential a person uses in an account
    /// at `t`: the one their latest morning sign-in issued. The morning
    /// sign-in comes within [`SIGN_IN_LAG`] of the local start hour; until
    /// then (late evening, early on-call, the first minutes of the day) the
    /// previous morning's key is the one in hand, never one not issued yet.
    pub fn sso_key(&self, person: usize, team: usize, account: usize, t: i64) -> String {
        self.sso_key_of_day(person, team, account, self.working_day(person, t - SIGN_IN_LAG))
    }

    /// The working day (from one local start hour to the next) `t` is in.
    /// Travel moves the day with the time zone; it starts and ends half a
    /// day away from a day boundary, so no working day is counted twice.
    fn working_day(&self, person: usize, t: i64) -> i64 {
        let who = self.org.person(person);
        (t + (self.tz_at(person, t) - who.start_hour) * HOUR).div_euclid(DAY)
    }

    fn sso_key_of_day(&self, person: usize, team: usize, account: usize, working_day: i64) -> String {
        let mut k =
            rng::rng(self.config.seed, "sso-key", &[person as u64, team as u64, account as u64, working_day as u64]);
        format!("ASIA{}", rng::base32(&mut k, 16))
    }

    pub fn sso_who(&self, person: usize, team: usize, account: usize, t: i64) -> Who {
        Who::Role {
            account,
            role: self.org.sso_role_name(team),
            session: self.org.person(person).email.clone(),
            key: self.sso_key(person, team, account, t),
            source_identity: None,
            mfa: true,
            federated: None,
        }
    }

    /// Okta's actor entry for person `p`.
    pub fn okta_actor(&self, p: usize) -> crate::record::OktaEntity {
        let person = self.org.person(p);
        (person.okta_id.clone(), "User", person.email.clone(), format!("{} {}", cap(person.first), cap(person.last)))
    }

    /// The morning sign-in (Okta Identity Engine: the password, now and
    /// then mistyped first, an Okta Verify push, the sign-on policy), the
    /// day's apps, and the day's AWS sessions.
    fn morning(&self, r: &mut Rng, p: usize, team: usize, start: i64, out: &mut Hour) {
        let person = self.org.person(p);
        let t0 = start + r.i64(0..600);
        let ip = self.office_or_home(r, p, t0);
        let session = format!("102{}", rng::base62(r, 22));
        let ua = self.browser_ua_at(p, t0);
        let place = self.place_at(p, t0);
        let me = self.okta_actor(p);
        let behaviors = crate::change::sign_in_behaviors(self, p, t0);
        let at = |s: i64, r: &mut Rng| self.abs(t0 + s) * 1000 + r.i64(0..1000);
        if person.typo_prone && r.f64() < 0.08 {
            let mut typo = Okta::new(
                at(-14, r),
                rng::uuid(r),
                "user.session.start",
                "User login to Okta",
                me.clone(),
                ip.clone(),
                ua.clone(),
                place,
            );
            typo.result = "FAILURE";
            typo.reason = Some("INVALID_CREDENTIALS");
            typo.credential = Some("PASSWORD");
            typo.behaviors = Some(behaviors.clone());
            out.push(Record::Okta(typo));
        }
        let push = Okta::new(
            at(2, r),
            rng::uuid(r),
            "system.push.send_factor_verify_push",
            "A push notification was sent to the user's Okta Verify",
            me.clone(),
            ip.clone(),
            ua.clone(),
            place,
        );
        out.push(Record::Okta(push));
        // The sign-on policy, the push verified, the session.
        for (offset, (event_type, message, credential, factor)) in [
            (0, ("policy.evaluate_sign_on", "Evaluation of sign-on policy", None, None)),
            (
                6,
                (
                    "user.authentication.auth_via_mfa",
                    "Authentication of user via MFA",
                    Some("OKTA_VERIFY_PUSH"),
                    Some("OKTA_VERIFY_PUSH"),
                ),
            ),
            (7, ("user.session.start", "User login to Okta", Some("PASSWORD"), None)),
        ] {
            let mut o =
                Okta::new(at(offset, r), rng::uuid(r), event_type, message, me.clone(), ip.clone(), ua.clone(), place);
            o.session = Some(session.clone());
            o.credential = credential;
            o.factor = factor;
            if event_type == "policy.evaluate_sign_on" {
                o.result = "ALLOW";
            }
            if event_type == "user.session.start" {
                o.behaviors = Some(behaviors.clone());
            }
            out.push(Record::Okta(o));
        }
        for (i, app) in self.org.teams[team].apps.iter().enumerate() {
            let mut o = Okta::new(
                at(20 + i as i64 * 30, r),
                rng::uuid(r),
                "user.authentication.sso",
                "User single sign on to app",
                me.clone(),
                ip.clone(),
                ua.clone(),
                place,
            );
            o.session = Some(session.clone());
            o.targets = vec![(format!("0oa{}", short_id(app)), "AppInstance", app.to_string(), app.to_string())];
            out.push(Record::Okta(o));
        }
        // The day's AWS sessions, one per account the team works in.
        for &account in self.org.teams[team].accounts {
            let time = self.abs(t0 + 40 + account as i64 * 7);
            out.push(Record::Trail(self.assume_role_with_saml(r, p, team, account, time, &ip)));
        }
    }

    pub fn assume_role_with_saml(
        &self,
        r: &mut Rng,
        p: usize,
        team: usize,
        account: usize,
        time: i64,
        ip: &str,
    ) -> Trail {
        let person = self.org.person(p);
        let role_arn = self.org.sso_role(team, account);
        let acct = &self.org.account(account).id;
        Trail {
            time,
            id: rng::uuid(r),
            account,
            region: self.org.account(account).region,
            call: Call {
                source: "sts.amazonaws.com",
                name: "AssumeRoleWithSAML",
                read_only: true,
                target: Target::NoResource,
            },
            who: Who::SamlUser { account, email: person.email.clone() },
            ip: ip.to_string(),
            ua: "aws-internal/3 aws-sdk-java/1.12.720 Linux/5.10.219 OpenJDK_64-Bit_Server_VM/25.412-b09".into(),
            request: Some(json!({
                "roleArn": role_arn,
                "principalArn": format!("arn:aws:iam::{acct}:saml-provider/AWSSSO_DO_NOT_DELETE"),
                "durationSeconds": 43200,
            })),
            response: Some(json!({
                "credentials": {
                    // The sign-in opens its working day's key.
                    "accessKeyId": self.sso_key_of_day(
                        p,
                        team,
                        account,
                        self.working_day(p, time - self.config.start.unix_seconds()),
                    ),
                    "expiration": tenet_model::Timestamp::from_unix_seconds(time + 43200).to_string(),
                },
                "assumedRoleUser": {
                    "assumedRoleId": format!("{}:{}", crate::render::role_id(&self.org.sso_role_name(team)), person.email),
                    "arn": format!("arn:aws:sts::{acct}:assumed-role/{}/{}", self.org.sso_role_name(team), person.email),
                },
                "subject": person.email,
                "subjectType": "persistent",
                "audience": "https://signin.aws.amazon.com/saml",
            })),
            error: None,
            resources: vec![("AWS::IAM::Role", role_arn)],
            console: false,
            invoked_by: None,
            from_console: false,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn person_aws(&self, r: &mut Rng, p: usize, team: usize, when: i64, account: usize, call: Call, out: &mut Hour) {
        let person = self.org.person(p);
        let use_key = person.iam_user.as_ref().filter(|u| u.account == account && r.f64() < 0.5);
        let who = match use_key {
            Some(u) => Who::IamUser { account, name: u.name.clone(), key: u.access_key.clone() },
            None if self.org.teams[team].accounts.contains(&account) => self.sso_who(p, team, account, when),
            None => return,
        };
        let ua = self.laptop_ua_at(p, when);
        let ip = self.office_or_home(r, p, when);
        let mut trail = self.call_trail(r, account, when, call, who, ip, ua);
        if r.f64() < 0.004 {
            trail.error = Some(("AccessDenied", format!("User is not authorized to perform: {}", trail.call.name)));
        }
        self.push_call(r, trail, out);
    }

    /// A call's CloudTrail record with request parameters for its target.
    #[allow(clippy::too_many_arguments)]
    pub fn call_trail(
        &self,
        r: &mut Rng,
        account: usize,
        when: i64,
        call: Call,
        who: Who,
        ip: String,
        ua: String,
    ) -> Trail {
        let (request, resources) = self.target_params(r, account, call.target);
        Trail {
            time: self.abs(when),
            id: rng::uuid(r),
            account,
            region: self.org.account(account).region,
            call,
            who,
            ip,
            ua,
            request,
            response: None,
            error: None,
            resources,
            console: false,
            invoked_by: None,
            from_console: false,
        }
    }

    fn target_params(
        &self,
        r: &mut Rng,
        account: usize,
        target: Target,
    ) -> (Option<Value>, Vec<(&'static str, String)>) {
        let acct = &self.org.account(account).id;
        let region = self.org.account(account).region;
        match target {
            Target::NoResource => (None, vec![]),
            Target::Bucket(b) => {
                let name = &self.org.buckets[b].name;
                (
                    Some(json!({"bucketName": name, "list-type": "2", "prefix": "2026/"})),
                    vec![("AWS::S3::Bucket", format!("arn:aws:s3:::{name}"))],
                )
            }
            Target::Object(b) => {
                let name = &self.org.buckets[b].name;
                let key = format!(
                    "{}/part-{:05}.parquet",
                    ["2026/10", "2026/11", "daily", "exports"][r.usize(..4)],
                    r.u32(0..400)
                );
                (
                    Some(json!({"bucketName": name, "key": key})),
                    vec![
                        ("AWS::S3::Object", format!("arn:aws:s3:::{name}/{key}")),
                        ("AWS::S3::Bucket", format!("arn:aws:s3:::{name}")),
                    ],
                )
            }
            Target::Secret(s) => (Some(json!({"secretId": self.org.secrets[s].arn})), vec![]),
            Target::Table(t) => (
                Some(json!({"tableName": t})),
                vec![("AWS::DynamoDB::Table", format!("arn:aws:dynamodb:{region}:{acct}:table/{t}"))],
            ),
            Target::Instance => {
                let id = format!("i-0{}", rng::hex(r, 16));
                (Some(json!({"instancesSet": {"items": [{"instanceId": id}]}})), vec![])
            }
            Target::Function(f) => (Some(json!({"functionName": f})), vec![]),
            Target::Parameter(n) => (Some(json!({"name": n, "withDecryption": secure_parameter(n)})), vec![]),
            Target::Role(n) => (Some(json!({"roleName": n})), vec![]),
            Target::LogGroup(g) => (Some(json!({"logGroupName": g, "filterPattern": "ERROR"})), vec![]),
            Target::Queue(q) => {
                (Some(json!({"queueUrl": format!("https://sqs.{region}.amazonaws.com/{acct}/{q}")})), vec![])
            }
            Target::Key => (
                Some(json!({"encryptionAlgorithm": "SYMMETRIC_DEFAULT"})),
                vec![("AWS::KMS::Key", format!("arn:aws:kms:{region}:{acct}:key/{}", stable_uuid(acct)))],
            ),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn person_k8s(
        &self,
        r: &mut Rng,
        p: usize,
        team: usize,
        when: i64,
        verb: &'static str,
        resource: &'static str,
        out: &mut Hour,
    ) {
        let Some(ns) = self.org.teams[team].k8s_namespace else { return };
        let person = self.org.person(p);
        out.push(Record::Audit(Audit {
            time_us: self.abs(when) * 1_000_000 + r.i64(0..1_000_000),
            id: rng::uuid(r),
            verb,
            user: person.email.clone(),
            groups: vec![format!("{}-engineers", self.org.teams[team].name), "system:authenticated".into()],
            impersonated: None,
            resource,
            namespace: (resource != "nodes").then(|| ns.to_string()),
            name: (verb == "get").then(|| format!("{ns}-{}", rng::hex(r, 5))),
            code: 200,
            ip: format!("{}{}", self.org.office_prefix, 10 + (p % 40)),
            ua: "kubectl/v1.30.2 (darwin/arm64) kubernetes/39683505".into(),
        }));
    }

    // ----- agents -----

    fn use_agent(&self, r: &mut Rng, p: usize, when: i64, out: &mut Hour) {
        let serving = &self.serving[p];
        if serving.is_empty() {
            return;
        }
        let a = serving[r.usize(..serving.len())];
        let tools = self.tool_choices(a, when);
        if tools.is_empty() {
            return;
        }
        let n = 1 + r.usize(..3);
        let mut calls = Vec::with_capacity(n);
        for _ in 0..n {
            let i = rng::weighted(r, tools.iter().map(|(_, w)| *w));
            calls.push(ToolCall::normal(tools[i].0));
        }
        let mark = out.records.len();
        self.agent_trace(r, a, p, when, &calls, out, None);
        if calls.iter().any(|c| c.tool == TOOL_COST_REPORT) {
            let labels = scenario::ongoing_labels(self, None, Some((a, true)), when, &out.records[mark..]);
            out.labels.extend(labels);
        }
    }

    /// The tools an agent uses at `t`, weighted: its registry, re-routes and rollouts applied.
    pub fn tool_choices(&self, agent: usize, t: i64) -> Vec<(usize, f64)> {
        let a = &self.org.agents[agent];
        let mut tools: Vec<(usize, f64)> = a
            .tools
            .iter()
            .map(|&tool| {
                let w = match tool {
                    TOOL_HTTP_POST | TOOL_FETCH_URL => 0.6,
                    TOOL_CREATE_PR => 0.5,
                    _ => 2.0,
                };
                (tool, w)
            })
            .collect();
        if a.kind == AgentKind::Coding && t >= self.evolution.reroute_at {
            // Code search re-routed to the new semantic search over four days.
            let shift = ((t - self.evolution.reroute_at) as f64 / (4 * DAY) as f64).min(1.0);
            for (tool, w) in tools.iter_mut() {
                if *tool == TOOL_SEARCH_CODE {
                    *w *= 1.0 - 0.9 * shift;
                }
            }
            tools.push((TOOL_SEMANTIC_SEARCH, 2.0 * shift));
        }
        for plan in &self.plans {
            if let Some((tool, weight)) = plan.rollout_tool(agent, t) {
                tools.push((tool, weight));
            }
        }
        tools.retain(|(_, w)| *w > 0.0);
        tools
    }

    /// A whole agent trace: invoke_agent → chat → tool calls (each
    /// execute_tool → one MCP client span per attempt → MCP server, and
    /// what the tool reached: CloudTrail for AWS, Kubernetes audit for the
    /// cluster) → chat. About 6.5% of calls first fail with a rate limit, an
    /// upstream 503 or a JSON-RPC internal error and are retried with
    /// exponential backoff until they succeed; in the background about 1.5%
    /// fail for good with a 4xx (a scenario's calls never do: the scenario
    /// is what they reach). Pushes the ids of the events created into
    /// `ids`, for labels.
    #[allow(clippy::too_many_arguments)]
    pub fn agent_trace(
        &self,
        r: &mut Rng,
        agent: usize,
        user: usize,
        when: i64,
        calls: &[ToolCall],
        out: &mut Hour,
        mut ids: Option<&mut Vec<String>>,
    ) {
        let a = &self.org.agents[agent];
        let person = self.org.person(user);
        let trace_id = rng::hex(r, 32);
        let mut t_ns = self.abs(when) * 1_000_000_000 + r.i64(0..1_000_000_000);
        let root = rng::hex(r, 16);
        let scenario = ids.is_some();
        let outcomes: Vec<ToolOutcome> =
            calls.iter().map(|c| ToolOutcome::draw(r, &self.org.tools[c.tool], scenario)).collect();
        let mut spans = Vec::new();
        let new_span = |service: &str,
                        id: String,
                        parent: Option<&str>,
                        name: String,
                        kind: u8,
                        start: i64,
                        dur: i64,
                        attrs: Vec<(&'static str, String)>| Span {
            service: service.to_string(),
            trace_id: trace_id.clone(),
            span_id: id,
            parent: parent.map(str::to_string),
            name,
            kind,
            start_ns: start,
            end_ns: start + dur,
            attrs,
            ints: vec![],
            error: None,
        };
        let conversation = format!("conv_{}", rng::hex(r, 12));
        // The invocation's end is set once its children are placed.
        let total = 0;
        spans.push(new_span(
            a.app,
            root.clone(),
            None,
            format!("invoke_agent {}", a.name),
            1,
            t_ns,
            total,
            vec![
                ("gen_ai.operation.name", "invoke_agent".into()),
                ("gen_ai.agent.id", a.id.clone()),
                ("gen_ai.agent.name", a.name.clone()),
                ("gen_ai.conversation.id", conversation),
                ("gen_ai.provider.name", provider(a.model).into()),
                ("gen_ai.request.model", a.model.into()),
                ("enduser.id", person.email.clone()),
            ],
        ));
        let chat = |r: &mut Rng| rng::hex(r, 16);
        let c1 = chat(r);
        t_ns += 50_000_000;
        spans.push(new_span(
            a.app,
            c1,
            Some(&root),
            format!("chat {}", a.model),
            3,
            t_ns,
            900_000_000,
            vec![
                ("gen_ai.operation.name", "chat".into()),
                ("gen_ai.request.model", a.model.into()),
                ("gen_ai.provider.name", provider(a.model).into()),
            ],
        ));
        t_ns += 950_000_000;
        for (c, outcome) in calls.iter().zip(&outcomes) {
            let tool = &self.org.tools[c.tool];
            let exec = rng::hex(r, 16);
            let call_id = format!("call_{}", rng::base62(r, 20));
            let mcp_session = rng::hex(r, 32);
            let server_host = format!("{}.tools.acme.internal", tool.server);
            // The target stays the same across attempts.
            let target = match tool.reach {
                Reach::Web { .. } => Some(("url.full", c.url.clone().unwrap_or_else(|| normal_url(r, tool.name)))),
                Reach::Saas { host } => Some(("server.address", host.to_string())),
                _ => None,
            };
            let exec_start = t_ns;
            let mut attempt_start = t_ns + 10_000_000;
            let attempts = outcome.attempts();
            for (k, failure) in attempts.iter().enumerate() {
                let client = rng::hex(r, 16);
                let mut client_span = new_span(
                    a.app,
                    client.clone(),
                    Some(&exec),
                    format!("tools/call {}", tool.name),
                    3,
                    attempt_start,
                    if failure.is_some() { 180_000_000 } else { 1_150_000_000 },
                    vec![
                        ("mcp.method.name", "tools/call".into()),
                        ("gen_ai.tool.name", tool.name.into()),
                        ("mcp.session.id", mcp_session.clone()),
                        ("jsonrpc.request.id", r.u32(1..10_000).to_string()),
                        ("server.address", server_host.clone()),
                        ("network.transport", "tcp".into()),
                        ("network.protocol.name", "http".into()),
                    ],
                );
                client_span.ints.push(("server.port", 443));
                if let Some(f) = failure {
                    f.mark(&mut client_span);
                }
                let server_id = rng::hex(r, 16);
                // A rate limit is answered by the gateway: the server never sees it.
                let reaches_server = !matches!(failure, Some(Failure::RateLimited));
                let mut server_span = reaches_server.then(|| {
                    let mut attrs = vec![
                        ("mcp.method.name", "tools/call".to_string()),
                        ("gen_ai.tool.name", tool.name.to_string()),
                        ("mcp.session.id", mcp_session.clone()),
                        (
                            "jsonrpc.request.id",
                            client_span
                                .attrs
                                .iter()
                                .find(|(k, _)| *k == "jsonrpc.request.id")
                                .map_or_else(String::new, |(_, v)| v.clone()),
                        ),
                    ];
                    attrs.extend(target.clone());
                    new_span(
                        tool.server,
                        server_id.clone(),
                        Some(&client),
                        format!("tools/call {}", tool.name),
                        2,
                        attempt_start + 10_000_000,
                        if failure.is_some() { 150_000_000 } else { 1_100_000_000 },
                        attrs,
                    )
                });
                if let (Some(f), Some(s)) = (failure, server_span.as_mut()) {
                    f.mark(s);
                }
                if let Some(ids) = ids.as_deref_mut() {
                    ids.push(span_event_id(&trace_id, &client));
                    if reaches_server {
                        ids.push(span_event_id(&trace_id, &server_id));
                    }
                }
                spans.push(client_span);
                spans.extend(server_span);
                if k + 1 < attempts.len() {
                    // Exponential backoff with jitter: 1 s, 2 s, …
                    attempt_start += 200_000_000 + (1_000_000_000 << k) + r.i64(0..250_000_000);
                }
            }
            let exec_end =
                attempt_start + if matches!(outcome, ToolOutcome::Fails(_)) { 230_000_000 } else { 1_200_000_000 };
            let mut exec_span = new_span(
                a.app,
                exec.clone(),
                Some(&root),
                format!("execute_tool {}", tool.name),
                1,
                exec_start,
                exec_end - exec_start,
                vec![
                    ("gen_ai.operation.name", "execute_tool".into()),
                    ("gen_ai.tool.name", tool.name.into()),
                    ("gen_ai.tool.call.id", call_id.clone()),
                    ("gen_ai.tool.type", "extension".into()),
                    ("gen_ai.tool.description", tool.description.into()),
                ],
            );
            if let ToolOutcome::Fails(f) = outcome {
                f.mark(&mut exec_span);
            }
            if let Some(ids) = ids.as_deref_mut() {
                ids.push(span_event_id(&trace_id, &exec));
            }
            spans.push(exec_span);
            // What the tool reached, once the attempt that got through ran.
            let reached = match outcome {
                ToolOutcome::Fails(f) => f.reaches_downstream(),
                _ => true,
            };
            let at = (attempt_start + 300_000_000) / 1_000_000_000 - self.config.start.unix_seconds();
            match tool.reach {
                Reach::Aws { call } if reached => {
                    let identity = c.identity.unwrap_or(user);
                    let account = tool_account(a.kind, call);
                    let (issue, mut use_) = self.mcp_aws_call(r, agent, identity, &call_id, account, call, at);
                    if let ToolOutcome::Fails(_) = outcome {
                        use_.error = Some((
                            not_found_code(call.source),
                            format!("The requested resource was not found ({})", call.name),
                        ));
                    }
                    let mut downstream = Hour::default();
                    downstream.push(Record::Trail(issue));
                    self.push_call(r, use_, &mut downstream);
                    if let Some(ids) = ids.as_deref_mut() {
                        for rec in &downstream.records {
                            ids.extend(scenario::ids_of(rec));
                        }
                    }
                    out.records.extend(downstream.records);
                }
                Reach::K8s { verb, resource } if reached => {
                    let audit = Audit {
                        time_us: self.abs(at) * 1_000_000 + r.i64(0..1_000_000),
                        id: rng::uuid(r),
                        verb,
                        user: "system:serviceaccount:agents:k8s-mcp".into(),
                        groups: vec![
                            "system:serviceaccounts".into(),
                            "system:serviceaccounts:agents".into(),
                            "system:authenticated".into(),
                        ],
                        impersonated: Some(person.email.clone()),
                        resource,
                        namespace: Some("payments".into()),
                        name: (verb == "get").then(|| format!("payments-api-{}", rng::hex(r, 5))),
                        code: if matches!(outcome, ToolOutcome::Fails(_)) { 404 } else { 200 },
                        ip: "10.40.3.17".into(),
                        ua: "k8s-mcp/0.9.1 (linux/amd64) kubernetes/client-go".into(),
                    };
                    if let Some(ids) = ids.as_deref_mut() {
                        ids.push(audit.id.clone());
                    }
                    out.push(Record::Audit(audit));
                }
                _ => {}
            }
            t_ns = exec_end + 300_000_000;
        }
        let c2 = chat(r);
        spans.push(new_span(
            a.app,
            c2,
            Some(&root),
            format!("chat {}", a.model),
            3,
            t_ns,
            700_000_000,
            vec![
                ("gen_ai.operation.name", "chat".into()),
                ("gen_ai.request.model", a.model.into()),
                ("gen_ai.provider.name", provider(a.model).into()),
            ],
        ));
        spans[0].end_ns = t_ns + 750_000_000;
        out.push(Record::Trace(Trace { spans }));
    }

    /// The AWS side of an MCP tool call: the `aws-mcp` task assumes the
    /// per-call role session (session name `<agent>.<call id>`, source
    /// identity the person whose access is used), then makes the call.
    #[allow(clippy::too_many_arguments)]
    fn mcp_aws_call(
        &self,
        r: &mut Rng,
        agent: usize,
        identity: usize,
        call_id: &str,
        account: usize,
        call: Call,
        at: i64,
    ) -> (Trail, Trail) {
        let a = &self.org.agents[agent];
        let email = self.org.person(identity).email.clone();
        let session = format!("{}.{}", a.id, &call_id[..call_id.len().min(40)]);
        let key = format!("ASIA{}", rng::base32(r, 16));
        let acct = self.org.account(account).id.clone();
        let task = self.service_who(self.service_index("aws-mcp"), 0, at);
        let issue = Trail {
            time: self.abs(at),
            id: rng::uuid(r),
            account,
            region: self.org.account(account).region,
            call: Call { source: "sts.amazonaws.com", name: "AssumeRole", read_only: true, target: Target::NoResource },
            who: task,
            ip: "3.236.12.40".into(),
            ua: "aws-mcp/1.4.2 aws-sdk-python/1.34.131".into(),
            request: Some(json!({
                "roleArn": self.org.role_arn(account, "mcp-aws-tools"),
                "roleSessionName": session,
                "sourceIdentity": email,
                "durationSeconds": 900,
            })),
            response: Some(json!({
                "credentials": {
                    "accessKeyId": key,
                    "expiration": tenet_model::Timestamp::from_unix_seconds(self.abs(at) + 900).to_string(),
                },
                "assumedRoleUser": {
                    "assumedRoleId": format!("{}:{session}", crate::render::role_id("mcp-aws-tools")),
                    "arn": format!("arn:aws:sts::{acct}:assumed-role/mcp-aws-tools/{session}"),
                },
                "sourceIdentity": email,
            })),
            error: None,
            resources: vec![("AWS::IAM::Role", self.org.role_arn(account, "mcp-aws-tools"))],
            console: false,
            invoked_by: None,
            from_console: false,
        };
        let who = Who::Role {
            account,
            role: "mcp-aws-tools".into(),
            session,
            key,
            source_identity: Some(email),
            mfa: false,
            federated: None,
        };
        let use_ = self.call_trail(
            r,
            account,
            at + 1,
            call,
            who,
            "3.236.12.40".into(),
            "aws-mcp/1.4.2 aws-sdk-python/1.34.131".into(),
        );
        (issue, use_)
    }

    /// The reporting account used early on, before it went quiet.
    fn dormant_user_hour(&self, r: &mut Rng, start: i64, out: &mut Hour) {
        let Some(plan) = self.plans.iter().find_map(|p| p.dormant()) else { return };
        let hour_utc = (self.abs(start) / HOUR).rem_euclid(24);
        let (_, weekday) = self.day_of(start);
        if start >= plan.quiet_from || hour_utc != 6 || weekday >= 5 {
            return;
        }
        let who = Who::IamUser { account: PROD, name: plan.user.clone(), key: plan.key.clone() };
        for call in [
            Call { source: "ce.amazonaws.com", name: "GetCostAndUsage", read_only: true, target: Target::NoResource },
            Call {
                source: "s3.amazonaws.com",
                name: "PutObject",
                read_only: false,
                target: Target::Object(BUCKET_FINANCE),
            },
        ] {
            let when = start + r.i64(0..600);
            out.push(Record::Trail(self.call_trail(
                r,
                PROD,
                when,
                call,
                who.clone(),
                "198.51.100.200".into(),
                "Boto3/1.26.90 Python/3.9.16 Linux/5.15.0 Botocore/1.29.90".into(),
            )));
        }
    }

    fn controllers_hour(&self, r: &mut Rng, start: i64, out: &mut Hour) {
        for (user, verb, resource, ns) in [
            ("system:kube-controller-manager", "update", "leases", "kube-system"),
            ("system:kube-scheduler", "update", "leases", "kube-system"),
            ("system:node:ip-10-40-1-23.ec2.internal", "list", "pods", "payments"),
        ] {
            for _ in 0..2 {
                out.push(Record::Audit(Audit {
                    time_us: self.abs(start + r.i64(0..HOUR)) * 1_000_000 + r.i64(0..1_000_000),
                    id: rng::uuid(r),
                    verb,
                    user: user.into(),
                    groups: vec!["system:authenticated".into()],
                    impersonated: None,
                    resource,
                    namespace: Some(ns.into()),
                    name: None,
                    code: 200,
                    ip: "10.40.0.5".into(),
                    ua: format!(
                        "{}/v1.30.2 (linux/amd64) kubernetes/39683505",
                        user.trim_start_matches("system:").split(':').next().unwrap_or("kubelet")
                    ),
                }));
            }
        }
    }

    /// On-call incidents: the platform on-call works at night, with the ops agent.
    fn incident_hour(&self, r: &mut Rng, start: i64, out: &mut Hour) {
        if !self.evolution.incidents.iter().any(|&t| t / HOUR == start / HOUR) {
            return;
        }
        let platform: Vec<usize> =
            (0..self.org.people.len()).filter(|&p| self.team_at(p, start) == TEAM_PLATFORM).collect();
        if platform.is_empty() {
            return;
        }
        let week = (start / (7 * DAY)) as usize;
        let oncall = platform[week % platform.len()];
        let ops: Vec<usize> = (0..self.org.agents.len())
            .filter(|&a| self.org.agents[a].kind == AgentKind::Ops && self.org.agents[a].users.contains(&oncall))
            .collect();
        let ip = self.org.people[oncall].home_ip.clone();
        self_push_saml(self, r, oncall, start, &ip, out);
        for _ in 0..r.usize(12..30) {
            let when = start + r.i64(120..HOUR);
            match r.usize(..4) {
                0 => self.person_k8s(r, oncall, TEAM_PLATFORM, when, "get", "pods", out),
                1 => self.person_aws(
                    r,
                    oncall,
                    TEAM_PLATFORM,
                    when,
                    PROD,
                    Call {
                        source: "logs.amazonaws.com",
                        name: "FilterLogEvents",
                        read_only: true,
                        target: Target::LogGroup("/ecs/payments-api"),
                    },
                    out,
                ),
                2 => self.person_aws(
                    r,
                    oncall,
                    TEAM_PLATFORM,
                    when,
                    PROD,
                    Call {
                        source: "ecs.amazonaws.com",
                        name: "DescribeServices",
                        read_only: true,
                        target: Target::NoResource,
                    },
                    out,
                ),
                _ => {
                    if let Some(&a) = ops.first() {
                        let calls = [ToolCall::normal(TOOL_K8S_LOGS), ToolCall::normal(TOOL_GET_METRICS)];
                        self.agent_trace(r, a, oncall, when, &calls, out, None);
                    }
                }
            }
        }
    }

    /// Evolution that happens once, at a fixed time: the platform team
    /// creates the new data source and scales payments out.
    fn evolution_events(&self) -> Vec<(Record, Vec<Label>)> {
        let mut r = rng::rng(self.config.seed, "evolution-events", &[]);
        let Some(admin) = (0..self.org.people.len()).find(|&p| self.org.people[p].team == TEAM_PLATFORM) else {
            return vec![];
        };
        let mut out = Vec::new();
        let bucket = self.org.buckets[BUCKET_EVENTS_V2].name.clone();
        let t = self.evolution.new_source_at;
        let who = self.sso_who(admin, TEAM_PLATFORM, DATA, t);
        let ip = format!("{}{}", self.org.office_prefix, 10 + admin % 40);
        let ua = self.org.people[admin].laptop_ua.clone();
        let mut create = self.call_trail(
            &mut r,
            DATA,
            t,
            Call {
                source: "s3.amazonaws.com",
                name: "CreateBucket",
                read_only: false,
                target: Target::Bucket(BUCKET_EVENTS_V2),
            },
            who.clone(),
            ip.clone(),
            ua.clone(),
        );
        create.request =
            Some(json!({"bucketName": bucket, "CreateBucketConfiguration": {"LocationConstraint": "eu-west-1"}}));
        out.push((Record::Trail(create), vec![]));
        let mut policy = self.call_trail(
            &mut r,
            DATA,
            t + 120,
            Call {
                source: "s3.amazonaws.com",
                name: "PutBucketPolicy",
                read_only: false,
                target: Target::Bucket(BUCKET_EVENTS_V2),
            },
            who,
            ip.clone(),
            ua.clone(),
        );
        policy.request = Some(
            json!({"bucketName": bucket, "bucketPolicy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": self.org.sso_role(TEAM_ANALYTICS, DATA)}, "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": [format!("arn:aws:s3:::{bucket}"), format!("arn:aws:s3:::{bucket}/*")]}]}}),
        );
        out.push((Record::Trail(policy), vec![]));
        let t = self.evolution.scale_out_at;
        out.push((
            Record::Audit(Audit {
                time_us: self.abs(t) * 1_000_000,
                id: rng::uuid(&mut r),
                verb: "patch",
                user: self.org.people[admin].email.clone(),
                groups: vec!["platform-engineers".into(), "system:authenticated".into()],
                impersonated: None,
                resource: "deployments/scale",
                namespace: Some("payments".into()),
                name: Some("payments-api".into()),
                code: 200,
                ip,
                ua: "kubectl/v1.30.2 (darwin/arm64) kubernetes/39683505".into(),
            }),
            vec![],
        ));
        out.push((self.tools_changed(&mut r, "github-mcp", self.evolution.reroute_at), vec![]));
        out
    }

    /// An MCP server announcing its tool list changed (a tool registered).
    pub fn tools_changed(&self, r: &mut Rng, server: &str, t: i64) -> Record {
        let start = self.abs(t) * 1_000_000_000;
        Record::Trace(Trace {
            spans: vec![Span {
                service: server.to_string(),
                trace_id: rng::hex(r, 32),
                span_id: rng::hex(r, 16),
                parent: None,
                name: "notifications/tools/list_changed".into(),
                kind: 4,
                start_ns: start,
                end_ns: start + 2_000_000,
                attrs: vec![
                    ("mcp.method.name", "notifications/tools/list_changed".into()),
                    ("mcp.protocol.version", "2025-06-18".into()),
                ],
                ints: vec![],
                error: None,
            }],
        })
    }
}

fn self_push_saml(sim: &Simulation, r: &mut Rng, p: usize, start: i64, ip: &str, out: &mut Hour) {
    let at = sim.abs(start + r.i64(0..60));
    let trail = sim.assume_role_with_saml(r, p, TEAM_PLATFORM, PROD, at, ip);
    out.push(Record::Trail(trail));
}

/// One tool call an agent makes; scenarios bend the defaults.
#[derive(Clone)]
pub struct ToolCall {
    pub tool: usize,
    /// Whose access the call uses (default: the person served).
    pub identity: Option<usize>,
    /// The URL for web tools (default: an ordinary internal one).
    pub url: Option<String>,
}

impl ToolCall {
    pub fn normal(tool: usize) -> Self {
        ToolCall { tool, identity: None, url: None }
    }
}

/// Why an attempt at a tool call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// HTTP 429 from the MCP gateway: retried.
    RateLimited,
    /// The server's upstream answered 503: retried.
    Unavailable,
    /// JSON-RPC -32603: retried.
    Internal,
    /// The tool ran and failed with an upstream 4xx (`CallToolResult.isError`): final.
    Client(u16),
}

impl Failure {
    /// `error.type` as the MCP conventions write it.
    pub fn error_type(self) -> &'static str {
        match self {
            Failure::RateLimited => "429",
            Failure::Unavailable => "503",
            Failure::Internal => "-32603",
            Failure::Client(_) => "tool_error",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Failure::RateLimited => "Too Many Requests",
            Failure::Unavailable => "Service Unavailable",
            Failure::Internal => "Internal error",
            Failure::Client(400) => "Bad Request",
            Failure::Client(403) => "Forbidden",
            Failure::Client(404) => "Not Found",
            Failure::Client(409) => "Conflict",
            Failure::Client(_) => "Unprocessable Entity",
        }
    }

    /// Sets a span's status and error attributes.
    fn mark(self, span: &mut Span) {
        span.error = Some(self.message().to_string());
        span.attrs.push(("error.type", self.error_type().to_string()));
        match self {
            Failure::RateLimited => span.ints.push(("http.response.status_code", 429)),
            Failure::Unavailable => span.ints.push(("http.response.status_code", 503)),
            Failure::Internal => {
                span.attrs.push(("rpc.response.status_code", "-32603".to_string()));
                span.ints.push(("rpc.jsonrpc.error_code", -32603));
            }
            Failure::Client(code) => span.ints.push(("http.response.status_code", i64::from(code))),
        }
    }

    /// Whether the failing call got as far as the system the tool reaches.
    fn reaches_downstream(self) -> bool {
        matches!(self, Failure::Client(404))
    }
}

/// How a tool call went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ToolOutcome {
    Ok,
    /// Failed with these (transient) errors, then succeeded.
    Retried(Vec<Failure>),
    /// Failed for good.
    Fails(Failure),
}

impl ToolOutcome {
    fn draw(r: &mut Rng, tool: &Tool, scenario: bool) -> ToolOutcome {
        let u = r.f64();
        let transient = |r: &mut Rng| match r.usize(..20) {
            0..=8 => Failure::RateLimited,
            9..=14 => Failure::Unavailable,
            _ => Failure::Internal,
        };
        if u < 0.065 {
            let mut failures = vec![transient(r)];
            if r.f64() < 0.25 {
                failures.push(transient(r));
            }
            ToolOutcome::Retried(failures)
        } else if u < 0.08 && !scenario {
            // What fails for good depends on what the tool reaches: a page or
            // an object that is not there, arguments the API rejects, a pull
            // request that conflicts. A genuine permission denial is rare: a
            // SaaS repository or page the person cannot see.
            let k = r.usize(..20);
            let code = match tool.reach {
                Reach::Web { .. } => [404, 404, 404, 400, 422][k % 5],
                Reach::Saas { .. } if k == 0 => 403,
                Reach::Saas { .. } => [404, 404, 422, 409, 400][k % 5],
                Reach::Aws { .. } => [404, 404, 404, 400, 400][k % 5],
                Reach::K8s { .. } => 404,
            };
            ToolOutcome::Fails(Failure::Client(code))
        } else {
            ToolOutcome::Ok
        }
    }

    /// Each attempt's failure, `None` for the one that succeeded.
    fn attempts(&self) -> Vec<Option<Failure>> {
        match self {
            ToolOutcome::Ok => vec![None],
            ToolOutcome::Retried(f) => f.iter().copied().map(Some).chain([None]).collect(),
            ToolOutcome::Fails(f) => vec![Some(*f)],
        }
    }
}

/// The error code an AWS API answers for a resource that is not there.
fn not_found_code(source: &str) -> &'static str {
    match source {
        "s3.amazonaws.com" => "NoSuchKey",
        "ec2.amazonaws.com" => "InvalidInstanceID.NotFound",
        "athena.amazonaws.com" => "InvalidRequestException",
        "ce.amazonaws.com" => "ValidationException",
        "monitoring.amazonaws.com" => "InvalidParameterValue",
        _ => "ResourceNotFoundException",
    }
}

fn tool_account(kind: AgentKind, call: Call) -> usize {
    match (kind, call.source) {
        (AgentKind::Data, _) | (_, "athena.amazonaws.com") => DATA,
        _ => PROD,
    }
}

fn normal_url(r: &mut Rng, tool: &str) -> String {
    if tool == "http_post" {
        format!("https://hooks.slack.com/services/T0ACME01/B0{}/{}", rng::base62(r, 8), rng::base62(r, 24))
    } else {
        [
            "https://wiki.acme.example/display/ENG/Runbooks",
            "https://docs.aws.amazon.com/IAM/latest/UserGuide/",
            "https://status.acme.example/",
            "https://wiki.acme.example/display/PAY/Refunds",
        ][r.usize(..4)]
        .to_string()
    }
}

fn provider(model: &str) -> &'static str {
    if model.starts_with("claude") {
        "anthropic"
    } else if model.starts_with("gpt") {
        "openai"
    } else {
        "gcp.gemini"
    }
}

/// Whether a parameter is a SecureString (read with decryption, through KMS).
pub fn secure_parameter(name: &str) -> bool {
    ["config", "token", "key", "secret"].iter().any(|w| name.contains(w))
}

pub fn cap(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

pub fn short_id(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut r = Rng::with_seed(h);
    rng::base62(&mut r, 17)
}

pub(crate) fn stable_uuid(s: &str) -> String {
    rng::uuid(&mut Rng::with_seed(s.bytes().fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))))
}

pub fn browser_ua(p: usize) -> String {
    if p.is_multiple_of(3) {
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0".into()
    } else {
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36".into()
    }
}

/// The event time of a record, in simulation-absolute Unix seconds relative to nothing:
/// callers subtract the start.
fn record_time(r: &Record) -> i64 {
    match r {
        Record::Trail(t) => t.time,
        Record::Okta(o) => o.time_ms / 1000,
        Record::Audit(a) => a.time_us / 1_000_000,
        Record::Trace(t) => t.start_ns() / 1_000_000_000,
    }
}

/// The event time of a record, in seconds from the simulation's start.
pub fn record_offset(sim: &Simulation, r: &Record) -> i64 {
    record_time(r) - sim.config.start.unix_seconds()
}
