//! The AWS console: a person's sign-in, then what the console calls by
//! itself (service health, cost, notifications, the account alias, KMS
//! aliases for its pickers), failing with `AccessDenied` where the person's
//! permission set does not reach, then the pages they look at.

use fastrand::Rng;
use serde_json::json;

use crate::HOUR;
use crate::org::*;
use crate::record::*;
use crate::rng;
use crate::world::{Hour, Simulation};

/// The console home page's own calls: `(source, operation, region, the
/// permission sets that may make it)`.
const BACKGROUND: [(&str, &str, Option<&str>, &[&str]); 7] = [
    ("health.amazonaws.com", "DescribeEventAggregates", Some("us-east-1"), &["PlatformEngineer"]),
    ("ce.amazonaws.com", "GetCostAndUsage", Some("us-east-1"), &["PlatformEngineer", "BillingAnalyst"]),
    ("notifications.amazonaws.com", "ListNotificationEvents", Some("us-east-1"), &["PlatformEngineer"]),
    ("iam.amazonaws.com", "ListAccountAliases", Some("us-east-1"), &["PlatformEngineer", "SecurityAudit"]),
    ("kms.amazonaws.com", "ListAliases", None, &["PlatformEngineer", "SecurityAudit"]),
    ("servicecatalog-appregistry.amazonaws.com", "ListApplications", None, &["PlatformEngineer"]),
    ("resource-explorer-2.amazonaws.com", "ListIndexes", None, &["PlatformEngineer", "SecurityAudit"]),
];

impl Simulation {
    /// The local hour a person opens the console on the working day of
    /// `t`, or -1 for a day without.
    pub(crate) fn console_hour(&self, p: usize, t: i64) -> i64 {
        let person = self.org.person(p);
        if self.org.teams[self.team_at(p, t)].accounts.is_empty() {
            return -1;
        }
        let day = (self.abs(t) / HOUR + self.tz_at(p, t)).div_euclid(24);
        let mut r = rng::rng(self.config.seed, "console-day", &[p as u64, day as u64]);
        if r.f64() >= self.org.shape.console_days() {
            return -1;
        }
        person.start_hour + 1 + r.i64(0..(person.hours - 2).max(1))
    }

    /// A console session in the hour from `start`.
    pub(crate) fn console_session(&self, p: usize, team: usize, start: i64, out: &mut Hour) {
        let mut r = rng::rng(self.config.seed, "console", &[p as u64, (start / HOUR) as u64]);
        let t = &self.org.teams[team];
        let account = t.accounts[r.usize(..t.accounts.len())];
        let person = self.org.person(p);
        let at = start + r.i64(0..40 * 60);
        let ip = self.office_or_home(&mut r, p, at);
        let browser = self.browser_ua_at(p, at);
        // The federation: a console credential of its own.
        let key = format!("ASIA{}", rng::base32(&mut r, 16));
        let mut saml = self.assume_role_with_saml(&mut r, p, team, account, self.abs(at), &ip);
        if let Some(resp) = saml.response.as_mut() {
            resp["credentials"]["accessKeyId"] = json!(key);
            resp["credentials"]["expiration"] =
                json!(tenet_model::Timestamp::from_unix_seconds(self.abs(at) + 3600).to_string());
        }
        if let Some(req) = saml.request.as_mut() {
            req["durationSeconds"] = json!(3600);
        }
        out.push(Record::Trail(saml));
        let who = Who::Role {
            account,
            role: self.org.sso_role_name(team),
            session: person.email.clone(),
            key,
            source_identity: None,
            mfa: true,
            federated: None,
        };
        let mut login = self.call_trail(
            &mut r,
            account,
            at + 2,
            call("signin.amazonaws.com", "ConsoleLogin", false, Target::NoResource),
            who.clone(),
            ip.clone(),
            browser.clone(),
        );
        login.console = true;
        login.region = "us-east-1";
        login.request = None;
        login.response = Some(json!({"ConsoleLogin": "Success"}));
        out.push(Record::Trail(login));
        let arn = format!(
            "arn:aws:sts::{}:assumed-role/{}/{}",
            self.org.account(account).id,
            self.org.sso_role_name(team),
            person.email
        );
        let mut when = at + 4;
        let console_call = |r: &mut Rng, when: i64, c: Call, ua: &str| {
            let mut trail = self.call_trail(r, account, when, c, who.clone(), ip.clone(), ua.to_string());
            trail.from_console = true;
            trail
        };
        for (source, name, region, allowed) in BACKGROUND {
            when += r.i64(0..3);
            let ua = if source == "kms.amazonaws.com" { browser.as_str() } else { "AWS Internal" };
            let mut trail = console_call(&mut r, when, call(source, name, true, Target::NoResource), ua);
            if let Some(region) = region {
                trail.region = region;
            }
            // Some widgets are served by AWS on the person's behalf: the
            // record says who, not where the browser is.
            match source {
                "health.amazonaws.com" => {
                    trail.invoked_by = Some("health.amazonaws.com");
                    trail.ip = "health.amazonaws.com".into();
                }
                "ce.amazonaws.com" | "notifications.amazonaws.com" => {
                    trail.invoked_by = Some("AWS Internal");
                    trail.ip = "AWS Internal".into();
                }
                _ => {}
            }
            if !allowed.contains(&t.permission_set) {
                let service = source.split('.').next().unwrap_or(source);
                let prefix = match service {
                    "servicecatalog-appregistry" => "servicecatalog",
                    "resource-explorer-2" => "resource-explorer-2",
                    other => other,
                };
                let code = if service == "iam" { "AccessDenied" } else { "AccessDeniedException" };
                trail.error =
                    Some((code, format!("User: {arn} is not authorized to perform: {prefix}:{name} on resource: *")));
            }
            out.push(Record::Trail(trail));
        }
        // The pages: what the team looks at, every few seconds to minutes,
        // with the console refreshing them.
        let reads: Vec<Call> = t
            .habits
            .iter()
            .filter_map(|h| match h.act {
                Act::Aws { account: a, call } if a == account && call.read_only => Some(call),
                _ => None,
            })
            .collect();
        if reads.is_empty() {
            return;
        }
        for _ in 0..r.usize(3..12) {
            when += r.i64(5..240);
            let c = reads[r.usize(..reads.len())];
            let ua = if r.f64() < 0.6 { "AWS Internal".to_string() } else { browser.clone() };
            let trail = console_call(&mut r, when, c, &ua);
            self.push_call(&mut r, trail, out);
        }
    }
}
