//! The messy routine of a real organisation: churning workload sessions,
//! Terraform bursts, AWS services acting for people, the console's own
//! calls, retried tool calls, Okta's sign-in steps; the legitimate changes
//! that come with travel, new laptops, new hires and new deployments; and
//! the two organisation shapes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

use serde_json::Value;
use tenet_sim::record::{Okta, Record, Span, Trail, Who};
use tenet_sim::{Config, HOUR, ScenarioKind, Shape, Simulation, inventory};

fn config(shape: Shape, seed: u64, days: u32) -> Config {
    Config {
        seed,
        shape,
        days,
        humans: shape.default_humans(),
        agents: shape.default_agents(),
        scenarios: ScenarioKind::ALL.to_vec(),
        ..Config::default()
    }
}

struct World {
    sim: Simulation,
    records: Vec<Record>,
    labels: Vec<tenet_sim::Label>,
}

impl World {
    fn new(c: Config) -> World {
        let sim = Simulation::new(c);
        let mut records = Vec::new();
        let mut labels = Vec::new();
        for h in 0..sim.hours() {
            let hour = sim.hour(h);
            records.extend(hour.records);
            labels.extend(hour.labels);
        }
        World { sim, records, labels }
    }

    fn trails(&self) -> impl Iterator<Item = &Trail> {
        self.records.iter().filter_map(|r| match r {
            Record::Trail(t) => Some(t),
            _ => None,
        })
    }

    fn okta(&self) -> impl Iterator<Item = &Okta> {
        self.records.iter().filter_map(|r| match r {
            Record::Okta(o) => Some(o),
            _ => None,
        })
    }

    fn spans(&self) -> impl Iterator<Item = &Span> {
        self.records.iter().flat_map(|r| match r {
            Record::Trace(t) => t.spans.as_slice(),
            _ => &[],
        })
    }
}

/// A week of a cloud-native company, with every scenario.
fn cloud() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| World::new(config(Shape::CloudNative, 5, 8)))
}

/// Ten days of an enterprise, with every scenario.
fn enterprise() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| World::new(Config { humans: 40, ..config(Shape::Enterprise, 3, 10) }))
}

fn role_of(who: &Who) -> Option<(&str, &str, &str)> {
    match who {
        Who::Role { role, session, key, .. } => Some((role.as_str(), session.as_str(), key.as_str())),
        _ => None,
    }
}

fn issued_key(t: &Trail) -> Option<&str> {
    t.response.as_ref()?.get("credentials")?.get("accessKeyId")?.as_str()
}

#[test]
fn function_sessions_churn_across_many_networks_and_start_with_their_init_reads() {
    let w = cloud();
    let role = "orders-api-role";
    let calls: Vec<&Trail> =
        w.trails().filter(|t| role_of(&t.who).is_some_and(|(r, _, _)| r == role) && t.invoked_by.is_none()).collect();
    let networks: BTreeSet<String> =
        calls.iter().map(|t| t.ip.rsplit_once('.').map_or(t.ip.clone(), |(net, _)| net.to_string())).collect();
    let keys: BTreeSet<&str> = calls.iter().filter_map(|t| role_of(&t.who).map(|(_, _, k)| k)).collect();
    assert!(networks.len() > 100, "{} /24s", networks.len());
    assert!(keys.len() > 100, "{} sessions", keys.len());
    // Always the function's name as session name.
    assert!(calls.iter().all(|t| role_of(&t.who).is_some_and(|(_, s, _)| s == "orders-api")));
    // Each session was issued by Lambda (AWSService) before it was used,
    // except those already running when the simulation starts.
    let issued: HashMap<&str, &Trail> = w
        .trails()
        .filter(|t| t.call.name == "AssumeRole" && matches!(t.who, Who::Service { invoked_by: "lambda.amazonaws.com" }))
        .filter_map(|t| issued_key(t).map(|k| (k, t)))
        .collect();
    let start = w.sim.abs(0);
    for t in &calls {
        let (_, _, key) = role_of(&t.who).unwrap();
        match issued.get(key) {
            Some(i) => assert!(i.time <= t.time, "{key} used before it was issued"),
            None => assert!(t.time < start + 2 * HOUR, "{key} never issued ({})", t.time - start),
        }
    }
    // Cold start: the init read through Secrets Manager, which decrypts with
    // KMS as the function.
    for key in
        issued.iter().filter(|(_, t)| t.request.as_ref().unwrap()["roleSessionName"] == "orders-api").map(|(k, _)| k)
    {
        let of_session: Vec<&&Trail> = calls.iter().filter(|t| role_of(&t.who).unwrap().2 == *key).collect();
        if of_session.is_empty() {
            continue;
        }
        let first = of_session.iter().min_by_key(|t| t.time).unwrap();
        assert_eq!(first.call.name, "GetSecretValue", "{key}");
        assert!(
            w.trails().any(|t| t.call.name == "Decrypt"
                && t.invoked_by == Some("secretsmanager.amazonaws.com")
                && role_of(&t.who).is_some_and(|(_, _, k)| k == *key)),
            "{key}: no KMS call on its behalf"
        );
    }
}

#[test]
fn tasks_and_pods_refresh_hourly_and_are_replaced_on_deploys() {
    let w = cloud();
    let refreshes = |role: &str| -> BTreeMap<i64, usize> {
        let mut by_hour = BTreeMap::new();
        for t in w.trails().filter(|t| t.call.source == "sts.amazonaws.com") {
            if t.request.as_ref().is_some_and(|r| r["roleArn"].as_str().is_some_and(|a| a.ends_with(role))) {
                *by_hour.entry((t.time - w.sim.abs(0)) / HOUR).or_default() += 1;
            }
        }
        by_hour
    };
    // Four ECS tasks, each refreshed every hour (more when they restart).
    let ecs = refreshes("role/orders-worker-task");
    assert!(ecs.len() as u32 >= w.sim.hours() - 1, "{} hours with refreshes", ecs.len());
    assert!(ecs.values().all(|&n| n >= 4), "{ecs:?}");
    // Pods: AssumeRoleWithWebIdentity every hour.
    let pods = refreshes("role/catalog-api-irsa");
    assert!(pods.len() as u32 >= w.sim.hours() - 1);
    // A deploy replaces tasks: new task ids (session names) after it.
    let deploys: Vec<i64> = w
        .trails()
        .filter(|t| {
            t.call.name == "UpdateService" && t.request.as_ref().is_some_and(|r| r["service"] == "orders-worker")
        })
        .map(|t| t.time)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(!deploys.is_empty(), "container deploys");
    let sessions = |from: i64, to: i64| -> BTreeSet<String> {
        w.trails()
            .filter(|t| (from..to).contains(&t.time))
            .filter_map(|t| role_of(&t.who))
            .filter(|(r, _, _)| *r == "orders-worker-task")
            .map(|(_, s, _)| s.to_string())
            .collect()
    };
    let d = deploys[0];
    let (before, after) = (sessions(d - 1800, d), sessions(d + 600, d + 2400));
    assert!(!before.is_empty() && !after.is_empty());
    assert!(before.is_disjoint(&after), "tasks replaced: {before:?} / {after:?}");
}

#[test]
fn a_terraform_run_reads_hundreds_in_a_minute_with_the_same_denials_every_time() {
    let w = cloud();
    // Runs from CI: each job its own session.
    let mut runs: BTreeMap<&str, Vec<&Trail>> = BTreeMap::new();
    let ci = |t: &&Trail| matches!(t.who, Who::Role { federated: Some(tenet_sim::record::Idp::GitHub), .. });
    for t in w.trails().filter(|t| t.ua.contains("Terraform/")).filter(ci) {
        runs.entry(role_of(&t.who).map_or("?", |(_, _, k)| k)).or_default().push(t);
    }
    assert!(runs.len() > 20, "{} runs", runs.len());
    let mut denials: BTreeMap<String, BTreeSet<BTreeSet<(String, String)>>> = BTreeMap::new();
    let mut probes = 0;
    for (key, run) in &runs {
        let state = run
            .iter()
            .find(|t| t.call.name == "GetObject")
            .and_then(|t| t.request.as_ref()?["key"].as_str())
            .unwrap_or_else(|| panic!("{key}: no state read"));
        let reads: Vec<&&Trail> = run.iter().filter(|t| t.call.read_only).collect();
        let first = reads.iter().map(|t| t.time).min().unwrap();
        let within = reads.iter().filter(|t| t.time - first <= 120).count();
        assert!(within > 100, "{state}: {within} reads in two minutes ({} in all)", reads.len());
        let denied: BTreeSet<(String, String)> = run
            .iter()
            .filter(|t| t.error.as_ref().is_some_and(|(c, _)| c.starts_with("AccessDenied")))
            .map(|t| (t.call.name.to_string(), t.request.as_ref().map_or(String::new(), |r| r.to_string())))
            .collect();
        assert!(!denied.is_empty(), "{state}: no denial");
        denials.entry(state.to_string()).or_default().insert(denied);
        probes += run
            .iter()
            .filter(|t| t.error.as_ref().is_some_and(|(c, _)| c.starts_with("NoSuch") || c.contains("NotFound")))
            .count();
    }
    assert!(probes > 0, "the provider's NoSuch*/NotFound probes");
    for (state, sets) in &denials {
        assert_eq!(sets.len(), 1, "{state}: the same denials every run: {sets:?}");
    }
    // Where runs come from: GitHub Actions through OIDC (plans, nightly
    // drift checks, applies) and a laptop now and then.
    let oidc: Vec<&Trail> =
        w.trails().filter(|t| matches!(t.who, Who::WebIdentity { idp: tenet_sim::record::Idp::GitHub, .. })).collect();
    let subjects: BTreeSet<&str> = oidc
        .iter()
        .filter_map(|t| match &t.who {
            Who::WebIdentity { subject, .. } => Some(subject.as_str()),
            _ => None,
        })
        .collect();
    assert!(subjects.contains("repo:acme/infrastructure:pull_request"), "{subjects:?}");
    assert!(subjects.contains("repo:acme/infrastructure:ref:refs/heads/main"), "{subjects:?}");
    assert!(w.trails().any(|t| t.ua.contains("Terraform/") && t.ua.contains("darwin")), "a laptop run");
    assert!(
        w.trails()
            .any(|t| t.ua.contains("Terraform/") && !t.call.read_only && t.call.source != "dynamodb.amazonaws.com"),
        "an apply writes"
    );
    let runners: BTreeSet<&str> = oidc.iter().map(|t| t.ip.as_str()).collect();
    assert!(runners.len() * 10 > oidc.len() * 9, "hosted runners' addresses rotate");
}

#[test]
fn aws_services_act_on_their_own_and_for_their_callers() {
    let w = enterprise();
    let via = |service: &'static str| w.trails().filter(move |t| t.invoked_by == Some(service));
    // Athena reads the lake as the analyst.
    let athena: Vec<&Trail> = via("athena.amazonaws.com").collect();
    assert!(athena.iter().any(|t| t.call.source == "glue.amazonaws.com"));
    assert!(athena.iter().any(|t| t.call.name == "GetObject"));
    assert!(
        athena.iter().any(|t| role_of(&t.who).is_some_and(|(r, _, _)| r.starts_with("AWSReservedSSO_DataAnalyst")))
    );
    assert!(athena.iter().all(|t| t.ip == "athena.amazonaws.com"));
    // Secrets Manager and SSM decrypt with KMS for their callers.
    assert!(via("secretsmanager.amazonaws.com").all(|t| t.call.name == "Decrypt"));
    assert!(via("ssm.amazonaws.com").any(|t| t.call.name == "Decrypt"));
    // CloudFormation's service role builds what a deploy asks for.
    assert!(via("cloudformation.amazonaws.com").any(|t| t.call.name.starts_with("UpdateFunctionCode")));
    // Service-linked roles describe everything.
    for (role, calls) in
        [("AWSServiceRoleForConfig", 100), ("AWSServiceRoleForAccessAnalyzer", 20), ("AWSServiceRoleForBackup", 5)]
    {
        let n = w.trails().filter(|t| role_of(&t.who).is_some_and(|(r, _, _)| r == role)).count();
        assert!(n > calls, "{role}: {n}");
    }
    // CloudTrail's own data keys, one per delivered file.
    let keys = w
        .trails()
        .filter(|t| {
            t.call.name == "GenerateDataKey" && matches!(t.who, Who::Service { invoked_by: "cloudtrail.amazonaws.com" })
        })
        .count();
    assert_eq!(keys as u32, w.sim.hours() * 12 * 3);
}

#[test]
fn console_sign_ins_bring_the_consoles_own_calls_some_denied() {
    let w = enterprise();
    let logins: Vec<&Trail> =
        w.trails().filter(|t| t.call.name == "ConsoleLogin" && t.console && role_of(&t.who).is_some()).collect();
    assert!(logins.len() > 20, "{}", logins.len());
    let mut denied = 0;
    let mut allowed = 0;
    for login in &logins {
        let key = role_of(&login.who).unwrap().2;
        let background: Vec<&Trail> = w
            .trails()
            .filter(|t| t.from_console && role_of(&t.who).is_some_and(|(_, _, k)| k == key))
            .filter(|t| (login.time..login.time + 60).contains(&t.time))
            .collect();
        assert!(background.iter().any(|t| t.call.name == "DescribeEventAggregates"), "health");
        assert!(background.iter().any(|t| t.call.name == "GetCostAndUsage"), "cost");
        denied += background.iter().filter(|t| t.error.is_some()).count();
        allowed += background.iter().filter(|t| t.error.is_none()).count();
    }
    assert!(denied > 0 && allowed > 0, "{denied} denied, {allowed} allowed");
}

fn attr<'a>(s: &'a Span, key: &str) -> Option<&'a str> {
    s.attrs.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
}

fn int(s: &Span, key: &str) -> Option<i64> {
    s.ints.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

#[test]
fn tool_calls_are_retried_after_rate_limits_and_upstream_errors_and_rarely_fail_for_good() {
    let w = cloud();
    let spans: Vec<&Span> = w.spans().collect();
    let by_parent: HashMap<(&str, &str), Vec<&Span>> = spans.iter().fold(HashMap::new(), |mut m, s| {
        if let Some(p) = &s.parent {
            m.entry((s.trace_id.as_str(), p.as_str())).or_default().push(s);
        }
        m
    });
    let (mut calls, mut retried, mut failed, mut forbidden) = (0, 0, 0, 0);
    for exec in spans.iter().filter(|s| attr(s, "gen_ai.operation.name") == Some("execute_tool")) {
        calls += 1;
        let mut attempts: Vec<&Span> = by_parent
            .get(&(exec.trace_id.as_str(), exec.span_id.as_str()))
            .map(|v| v.iter().copied().filter(|s| s.kind == 3).collect())
            .unwrap_or_default();
        attempts.sort_by_key(|s| s.start_ns);
        assert!(!attempts.is_empty());
        let tool = attr(exec, "gen_ai.tool.name");
        assert!(attempts.iter().all(|a| attr(a, "gen_ai.tool.name") == tool));
        if attempts.len() > 1 {
            retried += 1;
            let (last, failures) = attempts.split_last().unwrap();
            assert!(last.error.is_none() && exec.error.is_none(), "the retry succeeds");
            let mut previous_end = 0;
            let mut gaps = Vec::new();
            let mut targets = BTreeSet::new();
            for f in failures {
                let kind = attr(f, "error.type").expect("error.type");
                assert!(["429", "503", "-32603"].contains(&kind), "{kind}");
                assert!(f.error.is_some(), "status ERROR");
                match kind {
                    "-32603" => assert_eq!(int(f, "rpc.jsonrpc.error_code"), Some(-32603)),
                    code => {
                        assert_eq!(int(f, "http.response.status_code").map(|c| c.to_string()).as_deref(), Some(code))
                    }
                }
                if previous_end > 0 {
                    gaps.push(f.start_ns - previous_end);
                }
                previous_end = f.end_ns;
            }
            gaps.push(last.start_ns - previous_end);
            assert!(gaps.windows(2).all(|g| g[1] > g[0]), "backoff grows: {gaps:?}");
            assert!(gaps[0] >= 1_000_000_000, "{gaps:?}");
            // The same target each attempt (as the server saw it).
            for a in &attempts {
                for server in by_parent.get(&(a.trace_id.as_str(), a.span_id.as_str())).into_iter().flatten() {
                    targets.insert(attr(server, "url.full").or(attr(server, "server.address")).map(str::to_string));
                }
            }
            assert!(targets.len() <= 1, "{targets:?}");
        } else if let Some(kind) = attr(exec, "error.type") {
            failed += 1;
            assert_eq!(kind, "tool_error");
            let code = int(exec, "http.response.status_code").unwrap();
            assert!((400..500).contains(&code) && code != 401, "{code}");
            if code == 403 {
                forbidden += 1;
            }
        }
    }
    let rate = |n: i32| f64::from(n) / f64::from(calls);
    assert!(calls > 1000, "{calls}");
    assert!((0.045..0.09).contains(&rate(retried)), "retried {}", rate(retried));
    assert!((0.007..0.025).contains(&rate(failed)), "failed {}", rate(failed));
    assert!(rate(forbidden) < 0.004, "forbidden {}", rate(forbidden));
}

#[test]
fn okta_sign_ins_evaluate_policy_push_and_sometimes_start_with_a_typo() {
    let w = enterprise();
    let okta: Vec<&Okta> = w.okta().collect();
    let count = |t: &str| okta.iter().filter(|o| o.event_type == t).count();
    let starts = okta.iter().filter(|o| o.event_type == "user.session.start" && o.result == "SUCCESS").count();
    assert!(starts > 100);
    assert_eq!(count("system.push.send_factor_verify_push"), starts);
    assert!(okta.iter().filter(|o| o.event_type == "policy.evaluate_sign_on").all(|o| o.result == "ALLOW"));
    let typos: Vec<&&Okta> = okta.iter().filter(|o| o.result == "FAILURE").collect();
    assert!(!typos.is_empty() && typos.len() * 20 < starts, "{} typos in {starts} sign-ins", typos.len());
    for typo in typos {
        assert_eq!(typo.reason, Some("INVALID_CREDENTIALS"));
        assert!(okta.iter().any(|o| o.actor.0 == typo.actor.0
            && o.event_type == "user.session.start"
            && o.result == "SUCCESS"
            && (typo.time_ms..typo.time_ms + 60_000).contains(&o.time_ms)));
    }
}

#[test]
fn new_change_scenarios_are_expected_adaptation_and_show_in_the_inventory() {
    for w in [cloud(), enterprise()] {
        let sim = &w.sim;
        let by: BTreeMap<&str, Vec<&tenet_sim::Label>> = w.labels.iter().fold(BTreeMap::new(), |mut m, l| {
            m.entry(l.scenario.as_str()).or_default().push(l);
            m
        });
        for kind in
            [ScenarioKind::BusinessTravel, ScenarioKind::NewDevice, ScenarioKind::NewHire, ScenarioKind::NewDeployment]
        {
            let labels = by.get(kind.name()).unwrap_or_else(|| panic!("{} labels nothing", kind.name()));
            assert!(labels.len() > 5, "{}: {}", kind.name(), labels.len());
            assert!(labels.iter().all(|l| l.category == "expected_adaptation"));
        }
        let plan = |k: ScenarioKind| sim.plans.iter().find(|p| p.kind == k).unwrap();
        let ids = |k: ScenarioKind| -> BTreeSet<&str> { by[k.name()].iter().map(|l| l.event_id.as_str()).collect() };

        // Travel: labelled sign-ins come from abroad.
        let travel = plan(ScenarioKind::BusinessTravel);
        let home = sim.org.people[travel.person.unwrap()].home;
        let travel_ids = ids(ScenarioKind::BusinessTravel);
        let abroad: Vec<&Okta> = w.okta().filter(|o| travel_ids.contains(o.uuid.as_str())).collect();
        assert!(!abroad.is_empty() && abroad.iter().all(|o| o.place.country != home.country), "{home:?}");

        // A new laptop: a new CLI from the switch on.
        let device = plan(ScenarioKind::NewDevice);
        let person = sim.org.people[device.person.unwrap()].email.clone();
        let device_ids = ids(ScenarioKind::NewDevice);
        let after: Vec<&Trail> = w
            .trails()
            .filter(|t| device_ids.contains(t.id.as_str()))
            .filter(|t| role_of(&t.who).is_some_and(|(_, s, _)| s == person) && t.ua.starts_with("aws-cli"))
            .collect();
        assert!(!after.is_empty() && after.iter().all(|t| t.ua.contains("os/macos#24")));

        // A new hire: in the directory from the day after, and using AWS.
        let hire = plan(ScenarioKind::NewHire);
        let p = hire.person.unwrap();
        let email = &sim.org.person(p).email;
        let users = |t: i64| -> String {
            let files = inventory::snapshot(sim, t);
            String::from_utf8(files.iter().find(|(n, _)| n == "scim-users.json").unwrap().1.clone()).unwrap()
        };
        let after_hire = inventory::snapshot_times(sim).into_iter().find(|&t| t > hire.at).expect("a snapshot after");
        assert!(!users(0).contains(email.as_str()));
        assert!(users(after_hire).contains(email.as_str()));
        let hire_ids = ids(ScenarioKind::NewHire);
        assert!(w.okta().any(|o| o.event_type == "user.lifecycle.create" && hire_ids.contains(o.uuid.as_str())));
        assert!(w.trails().any(|t| hire_ids.contains(t.id.as_str()) && t.call.name == "AssumeRoleWithSAML"));

        // A new deployment: the role created by CloudFormation, in IAM from
        // the next snapshot on, then traffic.
        let deploy = plan(ScenarioKind::NewDeployment);
        let svc = &sim.org.services[deploy.service.unwrap()];
        let iam = |t: i64| -> Value {
            let files = inventory::snapshot(sim, t);
            serde_json::from_slice(&files.iter().find(|(n, _)| n == "aws-iam-acme-prod.json").unwrap().1).unwrap()
        };
        let has_role = |v: &Value| v["RoleDetailList"].as_array().unwrap().iter().any(|r| r["RoleName"] == svc.role);
        let next = inventory::snapshot_times(sim).into_iter().find(|&t| t > deploy.at).expect("a snapshot after");
        assert!(!has_role(&iam(0)));
        assert!(has_role(&iam(next)));
        let deploy_ids = ids(ScenarioKind::NewDeployment);
        let created = w
            .trails()
            .find(|t| t.call.name == "CreateRole" && deploy_ids.contains(t.id.as_str()))
            .expect("CreateRole labelled");
        assert_eq!(created.invoked_by, Some("cloudformation.amazonaws.com"));
        assert!(
            w.trails().any(|t| deploy_ids.contains(t.id.as_str())
                && role_of(&t.who).is_some_and(|(r, _, _)| r == svc.role)
                && t.call.source == "dynamodb.amazonaws.com"),
            "its traffic is labelled"
        );
        if let Some(early) =
            w.trails().find(|t| role_of(&t.who).is_some_and(|(r, _, _)| r == svc.role) && t.time < created.time)
        {
            panic!("{} used before it was created: {early:?}", svc.role);
        }
    }
}

#[test]
fn shapes_differ_and_each_is_deterministic() {
    let hours = |c: Config| -> Vec<Vec<u8>> {
        let sim = Simulation::new(c);
        [5u32, 14, 30]
            .iter()
            .map(|&h| {
                tenet_sim::output::render_hour(&sim, h, HOUR, false).chunks.into_iter().flat_map(|c| c.bytes).collect()
            })
            .collect()
    };
    for shape in Shape::ALL {
        let c = config(shape, 9, 2);
        assert_eq!(hours(c.clone()), hours(c.clone()), "{shape:?}");
        assert_eq!(shape.name().parse::<Shape>().ok(), Some(shape));
    }
    assert!("startup".parse::<Shape>().is_err());
    let (e, c) = (Simulation::new(config(Shape::Enterprise, 9, 2)), Simulation::new(config(Shape::CloudNative, 9, 2)));
    let functions =
        |s: &Simulation| s.org.services.iter().filter(|w| w.runtime == tenet_sim::org::Runtime::Lambda).count();
    assert!(functions(&c) >= 2 * functions(&e));
    assert!(c.org.people.len() < e.org.people.len());
    assert!(c.org.agents.len() > e.org.agents.len());
    assert!(c.workspaces.len() > e.workspaces.len());
    assert!(Shape::CloudNative.pr_plans_per_hour() > Shape::Enterprise.pr_plans_per_hour());
}
