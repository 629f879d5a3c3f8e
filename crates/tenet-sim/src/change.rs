//! Legitimate change that comes with people, places, devices and
//! deployments, labelled `expected_adaptation`:
//!
//! - `business-travel`: a person works a week from another country (a new
//!   address, country and city; their working day in the local time zone;
//!   the same laptop);
//! - `new-device`: a replacement laptop (another OS, browser and CLI), with
//!   Okta Verify enrolled again;
//! - `new-hire`: a person created in the identity provider with their
//!   team's group and the AWS app, who signs in, enrols MFA and uses AWS for
//!   the first time the next working day;
//! - `new-deployment`: a new function and its role created by CloudFormation
//!   from CI, then taking traffic.
//!
//! The change's own events are labelled, and so is the new behaviour in its
//! first days (the traveller's first working days abroad, the first days on
//! the new laptop, the hire's first days, the function's first day).

use fastrand::Rng;

use crate::org::*;
use crate::record::*;
use crate::rng;
use crate::scenario::{Kind, Plan, ids_of};
use crate::world::{Hour, Simulation, cap, short_id};
use crate::{DAY, HOUR};

/// A place people travel to: where, its time zone, and its ISPs' addresses.
#[derive(Clone, Copy, Debug)]
pub struct Destination {
    pub place: Place,
    pub tz: i64,
    prefix: &'static str,
}

const DESTINATIONS: [Destination; 7] = [
    Destination { place: Place { city: "Berlin", state: "Berlin", country: "Germany" }, tz: 1, prefix: "84.157." },
    Destination {
        place: Place { city: "London", state: "England", country: "United Kingdom" },
        tz: 0,
        prefix: "86.142.",
    },
    Destination {
        place: Place { city: "New York", state: "New York", country: "United States" },
        tz: -5,
        prefix: "73.215.",
    },
    Destination { place: Place { city: "Austin", state: "Texas", country: "United States" }, tz: -6, prefix: "99.60." },
    Destination { place: Place { city: "Lisbon", state: "Lisbon", country: "Portugal" }, tz: 0, prefix: "85.241." },
    Destination { place: Place { city: "Toronto", state: "Ontario", country: "Canada" }, tz: -5, prefix: "174.93." },
    Destination { place: Place { city: "Helsinki", state: "Uusimaa", country: "Finland" }, tz: 2, prefix: "91.156." },
];

/// What a replacement laptop sends.
pub const NEW_LAPTOP_CLI: &str = "aws-cli/2.22.4 md/awscrt#0.22.0 ua/2.0 os/macos#24.1.0 md/arch#arm64 lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/prompt#off";
pub const NEW_LAPTOP_BROWSER: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/132.0.0.0 Safari/537.36";

/// How long after a change its new behaviour is still labelled.
const FIRST_DAYS: i64 = 2 * DAY;

/// The people a personal change can happen to: staff with cloud access
/// and no holiday, not already part of another change.
fn candidates(org: &Org, taken: &[usize]) -> Vec<usize> {
    (0..org.people.len())
        .filter(|&p| {
            let person = &org.people[p];
            !org.teams[person.team].accounts.is_empty()
                && person.holiday.is_none()
                && person.team != TEAM_ANALYTICS
                && !taken.contains(&p)
        })
        .collect()
}

/// Fills in a change's plan: who, where, when.
pub fn plan(kind: Kind, p: &mut Plan, org: &Org, config: &crate::Config, r: &mut Rng, taken: &[usize]) {
    let start = config.start.unix_seconds();
    match kind {
        Kind::BusinessTravel => {
            let people = candidates(org, taken);
            if people.is_empty() {
                return;
            }
            let who = people[r.usize(..people.len())];
            let home = &org.people[who];
            let options: Vec<usize> = (0..DESTINATIONS.len())
                .filter(|&d| {
                    let dest = &DESTINATIONS[d];
                    dest.place.country != home.home.country && (dest.tz - home.tz).abs() <= 9
                })
                .collect();
            let dest = options[r.usize(..options.len())];
            // Leaving on the Sunday evening before, back the Saturday evening
            // after: 21:00 at home, half a day from any working-day boundary.
            let local = |t: i64| start + t + home.tz * HOUR;
            let day = local(p.at).div_euclid(DAY);
            let weekday = (day + 3).rem_euclid(7);
            let sunday = day - weekday - 1;
            let from = sunday * DAY + 21 * HOUR - home.tz * HOUR - start;
            let from = if from < 0 { from + 7 * DAY } else { from };
            p.person = Some(who);
            p.window = Some((from, from + 6 * DAY));
            p.destination = Some(dest);
            p.at = from;
        }
        Kind::NewDevice => {
            let people = candidates(org, taken);
            if people.is_empty() {
                return;
            }
            let who = people[r.usize(..people.len())];
            let person = &org.people[who];
            // Picked up from IT before work, set up before the day starts.
            let day = (start + p.at + person.tz * HOUR).div_euclid(DAY);
            p.at = day * DAY + (person.start_hour - person.tz) * HOUR - 40 * 60 - start;
            p.person = Some(who);
        }
        Kind::NewHire => {
            if !org.hires.is_empty() {
                p.person = Some(org.people.len());
            }
            // Early enough for the hire's first days to be in the run.
            let total = i64::from(config.days) * DAY;
            let weekday = |t: i64| ((start + t).div_euclid(DAY) + 3).rem_euclid(7);
            while p.at + 4 * DAY > total && p.at >= DAY {
                p.at -= DAY;
            }
            while weekday(p.at) >= 5 && p.at >= DAY {
                p.at -= DAY;
            }
        }
        Kind::NewDeployment => {
            p.service = Some(org.services.len());
        }
        _ => {}
    }
}

/// Applies the plans' changes to the organisation: the hire's creation,
/// the new function.
pub fn settle(plans: &[Plan], org: &mut Org) {
    for plan in plans {
        match plan.kind {
            Kind::NewHire => {
                if let Some(hire) = org.hires.first_mut() {
                    hire.created = Some(plan.at);
                }
            }
            Kind::NewDeployment => {
                let mut svc = crate::workload::returns_api();
                svc.launched = Some(launch_of(plan));
                org.services.push(svc);
            }
            _ => {}
        }
    }
}

/// When the new function's stack is complete and takes traffic.
fn launch_of(plan: &Plan) -> i64 {
    plan.at + 10 * 60
}

/// Where person `p` travels at `t`, if they do.
pub fn travel_at(sim: &Simulation, p: usize, t: i64) -> Option<&'static Destination> {
    sim.plans.iter().find_map(|plan| match (plan.kind, plan.person, plan.window, plan.destination) {
        (Kind::BusinessTravel, Some(q), Some((a, b)), Some(d)) if q == p && (a..b).contains(&t) => {
            Some(&DESTINATIONS[d])
        }
        _ => None,
    })
}

/// The address a traveller connects from: the hotel's, or now and then a
/// café's or a partner office's.
pub fn travel_ip(sim: &Simulation, r: &mut Rng, p: usize, t: i64) -> Option<String> {
    let d = travel_at(sim, p, t)?;
    let mut hotel = rng::rng(sim.config.seed, "hotel", &[p as u64]);
    Some(if r.f64() < 0.8 {
        format!("{}{}.{}", d.prefix, hotel.u8(..), hotel.u8(2..254))
    } else {
        format!("{}{}.{}", d.prefix, r.u8(..), r.u8(2..254))
    })
}

/// When person `p` switches to a replacement laptop, if they do.
pub fn new_device_since(sim: &Simulation, p: usize) -> Option<i64> {
    sim.plans.iter().find(|plan| plan.kind == Kind::NewDevice && plan.person == Some(p)).map(|plan| plan.at)
}

/// What Okta's risk engine says about a sign-in: new place, new device.
pub fn sign_in_behaviors(sim: &Simulation, p: usize, t: i64) -> String {
    let yes = |b: bool| if b { "POSITIVE" } else { "NEGATIVE" };
    let travel = sim.plans.iter().find(|plan| plan.kind == Kind::BusinessTravel && plan.person == Some(p));
    let (new_geo, velocity) = match travel.and_then(|plan| plan.window) {
        Some((a, b)) => (((a..a + DAY).contains(&t)) || ((b..b + DAY).contains(&t)), (a..a + DAY).contains(&t)),
        None => (false, false),
    };
    let new_device = new_device_since(sim, p).is_some_and(|since| (since..since + DAY).contains(&t))
        || sim.org.person(p).created.is_some_and(|c| t < c + 2 * DAY);
    format!(
        "{{New Geo-Location={}, New Device={}, New IP={}, New State={}, New Country={}, Velocity={}, New City={}}}",
        yes(new_geo),
        yes(new_device),
        yes(new_geo || new_device),
        yes(new_geo),
        yes(new_geo),
        yes(velocity),
        yes(new_geo),
    )
}

/// The first instant person `p` starts work at or after `after`.
pub fn first_morning(sim: &Simulation, p: usize, after: i64) -> i64 {
    let person = sim.org.person(p);
    let start = sim.config.start.unix_seconds();
    let mut day = (start + after + person.tz * HOUR).div_euclid(DAY);
    loop {
        let t = day * DAY + (person.start_hour - person.tz) * HOUR - start;
        if t >= after && (day + 3).rem_euclid(7) < 5 {
            return t;
        }
        day += 1;
    }
}

/// The window a plan labels a person's activity in.
pub fn person_window(sim: &Simulation, plan: &Plan, p: usize) -> Option<(i64, i64)> {
    if plan.person != Some(p) {
        return None;
    }
    match plan.kind {
        Kind::BusinessTravel => plan.window.map(|(a, _)| (a, a + FIRST_DAYS + 12 * HOUR)),
        Kind::NewDevice => Some((plan.at, plan.at + FIRST_DAYS)),
        Kind::NewHire => Some((plan.at, first_morning(sim, p, plan.at + 12 * HOUR) + FIRST_DAYS)),
        _ => None,
    }
}

/// Labels for a workload's records in the hour from `start`: the new
/// function's first day of traffic.
pub fn service_labels(sim: &Simulation, s: usize, start: i64, records: &[Record]) -> Vec<Label> {
    let mut labels = Vec::new();
    for plan in &sim.plans {
        if plan.kind == Kind::NewDeployment
            && plan.service == Some(s)
            && let Some(launched) = sim.org.services[s].launched
            && start + HOUR > launched
            && start < launched + DAY
        {
            let principal = sim.org.role_arn(sim.org.services[s].account, sim.org.services[s].role);
            for r in records {
                for id in ids_of(r) {
                    labels.push(plan.label(id, &principal));
                }
            }
        }
    }
    labels
}

fn okta_admin(sim: &Simulation) -> (usize, OktaEntity) {
    let admin = (0..sim.org.people.len()).find(|&p| sim.org.people[p].team == TEAM_SECOPS).unwrap_or(0);
    (admin, sim.okta_actor(admin))
}

fn user_target(sim: &Simulation, p: usize) -> OktaEntity {
    let person = sim.org.person(p);
    (person.okta_id.clone(), "User", person.email.clone(), format!("{} {}", cap(person.first), cap(person.last)))
}

/// The events a change makes when it happens. Returns the principal the
/// labels name.
pub fn fixed_events(sim: &Simulation, plan: &Plan, r: &mut Rng, out: &mut Hour) -> Option<String> {
    match plan.kind {
        Kind::BusinessTravel => {
            // Nothing happens at departure but the traveller's own activity.
            plan.person.map(|p| format!("user:{}", sim.org.person(p).email))
        }
        Kind::NewDevice => {
            let p = plan.person?;
            let me = sim.okta_actor(p);
            let ip = format!("{}{}", sim.org.office_prefix, 10 + p % 40);
            let place = sim.org.person(p).home;
            let (_, admin) = okta_admin(sim);
            let mut t = plan.at;
            for (actor, event_type, message, factor) in [
                (admin.clone(), "user.mfa.factor.deactivate", "Reset factor for user", "OKTA_VERIFY_PUSH"),
                (me.clone(), "device.enrollment.create", "Enroll device", "OKTA_VERIFY_PUSH"),
                (me.clone(), "user.mfa.factor.activate", "Activate factor or replace factor", "OKTA_VERIFY_PUSH"),
            ] {
                t += r.i64(30..240);
                let mut o = Okta::new(
                    sim.abs(t) * 1000 + r.i64(0..1000),
                    rng::uuid(r),
                    event_type,
                    message,
                    actor,
                    ip.clone(),
                    NEW_LAPTOP_BROWSER.to_string(),
                    place,
                );
                o.targets = vec![user_target(sim, p)];
                o.factor = Some(factor);
                out.records.push(Record::Okta(o));
            }
            Some(format!("user:{}", sim.org.person(p).email))
        }
        Kind::NewHire => {
            let p = plan.person?;
            let hire = sim.org.person(p);
            let (admin, actor) = okta_admin(sim);
            let ip = format!("{}{}", sim.org.office_prefix, 10 + admin % 40);
            let place = sim.org.person(admin).home;
            let ua = crate::world::browser_ua(admin);
            let team = &sim.org.teams[hire.team];
            let mut t = plan.at;
            let event = |r: &mut Rng, t: i64, event_type, message, targets: Vec<OktaEntity>| {
                let mut o = Okta::new(
                    sim.abs(t) * 1000 + r.i64(0..1000),
                    rng::uuid(r),
                    event_type,
                    message,
                    actor.clone(),
                    ip.clone(),
                    ua.clone(),
                    place,
                );
                o.targets = targets;
                Record::Okta(o)
            };
            out.records.push(event(r, t, "user.lifecycle.create", "Create okta user", vec![user_target(sim, p)]));
            t += r.i64(5..30);
            out.records.push(event(r, t, "user.lifecycle.activate", "Activate Okta user", vec![user_target(sim, p)]));
            t += r.i64(5..30);
            let group =
                (team.okta_group_id.clone(), "UserGroup", format!("team-{}", team.name), format!("team-{}", team.name));
            out.records.push(event(
                r,
                t,
                "group.user_membership.add",
                "Add user to group membership",
                vec![user_target(sim, p), group],
            ));
            for app in team.apps {
                t += r.i64(2..10);
                let app_target = (format!("0oa{}", short_id(app)), "AppInstance", app.to_string(), app.to_string());
                out.records.push(event(
                    r,
                    t,
                    "application.user_membership.add",
                    "Add user to application membership",
                    vec![user_target(sim, p), app_target],
                ));
            }
            // The first morning: a password set and Okta Verify enrolled
            // just before the first sign-in.
            let first = first_morning(sim, p, plan.at + 12 * HOUR);
            let me = sim.okta_actor(p);
            let own_ip = hire.home_ip.clone();
            let own_ua = crate::world::browser_ua(p);
            for (k, (event_type, message, factor)) in [
                ("user.account.update_password", "User update password for Okta", None),
                ("user.mfa.factor.activate", "Activate factor or replace factor", Some("OKTA_VERIFY_PUSH")),
                ("device.enrollment.create", "Enroll device", Some("OKTA_VERIFY_PUSH")),
            ]
            .into_iter()
            .enumerate()
            {
                let mut o = Okta::new(
                    sim.abs(first - 600 + k as i64 * 90) * 1000 + r.i64(0..1000),
                    rng::uuid(r),
                    event_type,
                    message,
                    me.clone(),
                    own_ip.clone(),
                    own_ua.clone(),
                    hire.home,
                );
                o.targets = vec![user_target(sim, p)];
                o.factor = factor;
                out.records.push(Record::Okta(o));
            }
            Some(format!("user:{}", hire.email))
        }
        Kind::NewDeployment => {
            let s = plan.service?;
            let svc = sim.org.services.get(s)?;
            sim.sam_deploy(r, s, launch_of(plan), true, out);
            Some(sim.org.role_arn(svc.account, svc.role))
        }
        _ => None,
    }
}
