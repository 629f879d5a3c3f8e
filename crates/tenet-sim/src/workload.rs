//! Workloads whose identities churn: serverless functions, container tasks
//! and pods, and the deploys that replace them.
//!
//! - A function runs in execution environments. Each environment is a new
//!   role session: `AssumeRole` by `lambda.amazonaws.com` (session name:
//!   the function), its init reads (a secret or a SecureString parameter,
//!   with the KMS call the service makes for it), then invocations from
//!   the environment's own AWS address, a different /24 almost every time.
//!   Environments live 20–75 minutes, more run at peak, and a deploy
//!   recycles them all.
//! - A container task (ECS) is a role session named after the task id,
//!   refreshed hourly by `ecs-tasks.amazonaws.com`; a pod (EKS) calls
//!   `AssumeRoleWithWebIdentity` as its service account every hour. Both
//!   are replaced on every deploy and at least weekly, with new ids and
//!   addresses.
//! - Deploys: a function's through GitHub Actions (OIDC) and CloudFormation
//!   (`sam deploy`: a change set, then CloudFormation's service role
//!   updating the code); a container's through GitHub Actions pushing an
//!   image and updating the service or the deployment.
//!
//! Every environment, task and pod is a function of the hour it is in (its
//! lifetime grid, the deploy schedule of its day, the load of the hours
//! before), never state carried from one hour to the next.

use fastrand::Rng;
use serde_json::json;

use crate::org::*;
use crate::record::*;
use crate::rng;
use crate::world::{Hour, Simulation};
use crate::{DAY, HOUR};

const PY: &str =
    "Boto3/1.34.131 md/Botocore#1.34.131 ua/2.0 os/linux#5.10 lang/python#3.12.4 exec-env/AWS_Lambda_python3.12";
const NODE: &str = "aws-sdk-js/3.614.0 ua/2.0 os/linux#5.10.219-229.866.amzn2.x86_64 lang/js md/nodejs#20.15.0 exec-env/AWS_Lambda_nodejs20.x";
const GO: &str =
    "aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#arm64 exec-env/AWS_Lambda_provided.al2023";
const JAVA: &str = "aws-sdk-java/2.26.7 Linux/5.10.219-229.866.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/21.0.3+9-LTS Java/21.0.3 vendor/Amazon.com_Inc. exec-env/AWS_Lambda_java21 io/sync http/Apache cfg/retry-mode/legacy";
const FARGATE: &str = "aws-sdk-js/3.614.0 ua/2.0 os/linux#5.10 lang/js md/nodejs#20.15.1 exec-env/AWS_ECS_FARGATE";
const POD_GO: &str = "aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#amd64";
const POD_PY: &str = "Boto3/1.34.131 md/Botocore#1.34.131 ua/2.0 os/linux#5.15.0 lang/python#3.11.9 md/pyimpl#CPython";
/// What GitHub's `configure-aws-credentials` action sends to STS.
pub const GHA_CREDENTIALS_UA: &str = "aws-sdk-js/3.614.0 ua/2.0 os/linux#6.5.0-1025-azure lang/js md/nodejs#20.15.1 api/sts#3.614.0 configure-aws-credentials-for-github-actions";
const SAM_UA: &str = "Boto3/1.34.131 md/Botocore#1.34.131 ua/2.0 os/linux#6.5.0-1025-azure md/arch#x86_64 lang/python#3.11.9 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.131 aws-sam-cli/1.120.0";
const DEPLOY_CLI_UA: &str = "aws-cli/2.17.5 md/awscrt#0.20.11 ua/2.0 os/linux#6.5.0-1025-azure md/arch#x86_64 lang/python#3.11.9 md/pyimpl#CPython exec-env/github-actions";

/// First octets of the public addresses AWS gives functions and tasks
/// outside a VPC, per region.
fn aws_octets(region: &str) -> &'static [u8] {
    match region {
        "eu-west-1" => &[3, 18, 34, 52, 54, 63, 99],
        _ => &[3, 18, 34, 35, 44, 52, 54, 100, 107],
    }
}

/// A public address in AWS's space for `region`.
pub fn aws_address(r: &mut Rng, region: &str) -> String {
    let octets = aws_octets(region);
    format!("{}.{}.{}.{}", octets[r.usize(..octets.len())], r.u8(..), r.u8(..), r.u8(1..255))
}

fn h(weight: f64, account: usize, c: Call) -> Habit {
    Habit { weight, act: Act::Aws { account, call: c } }
}

#[allow(clippy::too_many_arguments)]
fn function(
    name: &'static str,
    role: &'static str,
    team: usize,
    account: usize,
    rate: f64,
    environments: u32,
    init: Option<Call>,
    habits: Vec<Habit>,
    ua: &'static str,
    deploys: f64,
) -> Service {
    let mut s = Service::new(name, team, account, Runtime::Lambda, role, environments, rate, habits, ua);
    s.init = init.into_iter().collect();
    s.deploys = deploys;
    s
}

#[allow(clippy::too_many_arguments)]
fn container(
    name: &'static str,
    role: &'static str,
    team: usize,
    runtime: Runtime,
    instances: u32,
    rate: f64,
    init: Option<Call>,
    habits: Vec<Habit>,
    ua: &'static str,
    deploys: f64,
    namespace: &'static str,
) -> Service {
    let mut s = Service::new(name, team, PROD, runtime, role, instances, rate, habits, ua);
    s.init = init.into_iter().collect();
    s.deploys = deploys;
    if runtime == Runtime::Eks {
        s.k8s_sa = Some((namespace, name));
    }
    s
}

fn secret(s: usize) -> Option<Call> {
    Some(call("secretsmanager.amazonaws.com", "GetSecretValue", true, Target::Secret(s)))
}

fn parameter(name: &'static str) -> Option<Call> {
    Some(call("ssm.amazonaws.com", "GetParameter", true, Target::Parameter(name)))
}

fn ddb(name: &'static str, table: &'static str, read_only: bool) -> Call {
    call("dynamodb.amazonaws.com", name, read_only, Target::Table(table))
}

fn sqs(name: &'static str, queue: &'static str) -> Call {
    call("sqs.amazonaws.com", name, false, Target::Queue(queue))
}

fn s3(name: &'static str, bucket: usize) -> Call {
    call("s3.amazonaws.com", name, name.starts_with("Get"), Target::Object(bucket))
}

/// The functions and containers a shape runs besides the core services.
pub fn catalogue(shape: Shape) -> Vec<Service> {
    let mut all = vec![
        function(
            "payments-webhook",
            "payments-webhook-role",
            TEAM_PAYMENTS,
            PROD,
            45.0,
            4,
            secret(SECRET_STRIPE),
            vec![
                h(5.0, PROD, ddb("PutItem", "payments-ledger", false)),
                h(2.0, PROD, ddb("GetItem", "payments-ledger", true)),
                h(3.0, PROD, sqs("SendMessage", "payments-events")),
            ],
            NODE,
            0.3,
        ),
        function(
            "orders-api",
            "orders-api-role",
            TEAM_PAYMENTS,
            PROD,
            70.0,
            6,
            secret(SECRET_ORDERS_DB),
            vec![
                h(6.0, PROD, ddb("GetItem", "orders", true)),
                h(3.0, PROD, ddb("Query", "orders", true)),
                h(2.0, PROD, ddb("PutItem", "orders", false)),
                h(1.0, PROD, sqs("SendMessage", "order-events")),
            ],
            JAVA,
            0.4,
        ),
        function(
            "notify-email",
            "notify-email-role",
            TEAM_WEB,
            PROD,
            25.0,
            3,
            secret(SECRET_SENDGRID),
            vec![
                h(4.0, PROD, ddb("GetItem", "notification-prefs", true)),
                h(2.0, PROD, s3("GetObject", BUCKET_WEB)),
                h(2.0, PROD, sqs("DeleteMessage", "notify-email")),
            ],
            NODE,
            0.2,
        ),
        function(
            "image-resize",
            "image-resize-role",
            TEAM_WEB,
            PROD,
            35.0,
            5,
            parameter("/web/image-resize/config"),
            vec![h(5.0, PROD, s3("GetObject", BUCKET_WEB)), h(5.0, PROD, s3("PutObject", BUCKET_WEB))],
            NODE,
            0.2,
        ),
        function(
            "report-builder",
            "report-builder-role",
            TEAM_ANALYTICS,
            DATA,
            15.0,
            2,
            secret(SECRET_WAREHOUSE),
            vec![
                h(3.0, DATA, call("athena.amazonaws.com", "StartQueryExecution", false, Target::NoResource)),
                h(4.0, DATA, call("athena.amazonaws.com", "GetQueryExecution", true, Target::NoResource)),
                h(3.0, DATA, call("athena.amazonaws.com", "GetQueryResults", true, Target::NoResource)),
                h(2.0, DATA, s3("PutObject", BUCKET_LAKE)),
            ],
            PY,
            0.1,
        ),
        function(
            "session-cleanup",
            "session-cleanup-role",
            TEAM_PLATFORM,
            PROD,
            8.0,
            1,
            parameter("/platform/session-cleanup/config"),
            vec![h(1.0, PROD, ddb("Scan", "sessions", true)), h(2.0, PROD, ddb("BatchWriteItem", "sessions", false))],
            GO,
            0.05,
        ),
        function(
            "audit-export",
            "audit-export-role",
            TEAM_SECOPS,
            PROD,
            6.0,
            1,
            parameter("/secops/audit-export/config"),
            vec![
                h(2.0, PROD, call("securityhub.amazonaws.com", "GetFindings", true, Target::NoResource)),
                h(1.0, PROD, call("guardduty.amazonaws.com", "ListFindings", true, Target::NoResource)),
                h(1.0, PROD, s3("PutObject", BUCKET_TRAIL)),
            ],
            PY,
            0.05,
        ),
        container(
            "checkout-web",
            "checkout-web-task",
            TEAM_WEB,
            Runtime::Ecs,
            3,
            30.0,
            parameter("/web/checkout/config"),
            vec![
                h(4.0, PROD, ddb("GetItem", "orders", true)),
                h(2.0, PROD, sqs("SendMessage", "order-events")),
                h(2.0, PROD, s3("GetObject", BUCKET_WEB)),
            ],
            FARGATE,
            0.6,
            "",
        ),
        container(
            "search-api",
            "search-api-irsa",
            TEAM_PLATFORM,
            Runtime::Eks,
            2,
            25.0,
            None,
            vec![h(4.0, PROD, ddb("Query", "catalog", true)), h(1.0, PROD, s3("GetObject", BUCKET_ARTIFACTS))],
            POD_GO,
            0.3,
            "platform",
        ),
    ];
    if shape == Shape::CloudNative {
        all.extend(cloud_native());
    }
    all
}

/// What a cloud-native company runs on top: many small functions and services.
fn cloud_native() -> Vec<Service> {
    let mut all = vec![
        function(
            "search-indexer",
            "search-indexer-role",
            TEAM_PLATFORM,
            PROD,
            40.0,
            4,
            None,
            vec![h(3.0, PROD, ddb("Query", "catalog", true)), h(1.0, PROD, s3("PutObject", BUCKET_ARTIFACTS))],
            NODE,
            0.5,
        ),
        function(
            "fraud-score",
            "fraud-score-role",
            TEAM_PAYMENTS,
            PROD,
            55.0,
            5,
            parameter("/payments/fraud-score/model-key"),
            vec![
                h(3.0, PROD, ddb("GetItem", "payments-ledger", true)),
                h(2.0, PROD, ddb("PutItem", "fraud-scores", false)),
            ],
            PY,
            0.6,
        ),
        function(
            "ledger-reconcile",
            "ledger-reconcile-role",
            TEAM_PAYMENTS,
            PROD,
            60.0,
            3,
            secret(SECRET_PAYMENTS_DB),
            vec![h(4.0, PROD, ddb("Query", "payments-ledger", true)), h(1.0, PROD, s3("PutObject", BUCKET_FINANCE))],
            JAVA,
            0.2,
        ),
        function(
            "geo-lookup",
            "geo-lookup-role",
            TEAM_WEB,
            PROD,
            50.0,
            4,
            parameter("/web/geo-lookup/config"),
            vec![h(4.0, PROD, ddb("GetItem", "geo-cache", true))],
            GO,
            0.4,
        ),
        function(
            "pricing-quote",
            "pricing-quote-role",
            TEAM_PAYMENTS,
            PROD,
            45.0,
            4,
            secret(SECRET_ORDERS_DB),
            vec![h(4.0, PROD, ddb("GetItem", "pricing", true)), h(1.0, PROD, ddb("Query", "orders", true))],
            NODE,
            0.6,
        ),
        function(
            "inventory-sync",
            "inventory-sync-role",
            TEAM_PAYMENTS,
            PROD,
            20.0,
            2,
            parameter("/payments/inventory-sync/api-token"),
            vec![
                h(3.0, PROD, ddb("BatchWriteItem", "inventory", false)),
                h(1.0, PROD, sqs("SendMessage", "inventory-events")),
            ],
            PY,
            0.3,
        ),
        function(
            "cart-expiry",
            "cart-expiry-role",
            TEAM_WEB,
            PROD,
            10.0,
            1,
            None,
            vec![h(1.0, PROD, ddb("Scan", "carts", true)), h(2.0, PROD, ddb("DeleteItem", "carts", false))],
            GO,
            0.2,
        ),
        function(
            "sms-sender",
            "sms-sender-role",
            TEAM_WEB,
            PROD,
            15.0,
            2,
            parameter("/notify/sms/api-token"),
            vec![
                h(2.0, PROD, ddb("GetItem", "notification-prefs", true)),
                h(1.0, PROD, sqs("DeleteMessage", "notify-sms")),
            ],
            NODE,
            0.3,
        ),
        function(
            "kyc-check",
            "kyc-check-role",
            TEAM_PAYMENTS,
            PROD,
            20.0,
            2,
            secret(SECRET_STRIPE),
            vec![h(2.0, PROD, ddb("GetItem", "customers", true)), h(2.0, PROD, ddb("PutItem", "kyc-results", false))],
            JAVA,
            0.3,
        ),
        function(
            "refund-worker",
            "refund-worker-role",
            TEAM_PAYMENTS,
            PROD,
            15.0,
            2,
            secret(SECRET_STRIPE),
            vec![h(2.0, PROD, ddb("UpdateItem", "orders", false)), h(1.0, PROD, sqs("SendMessage", "payments-events"))],
            NODE,
            0.4,
        ),
        function(
            "usage-meter",
            "usage-meter-role",
            TEAM_PLATFORM,
            PROD,
            35.0,
            3,
            None,
            vec![h(5.0, PROD, ddb("UpdateItem", "usage", false))],
            GO,
            0.4,
        ),
        function(
            "billing-webhook",
            "billing-webhook-role",
            TEAM_PAYMENTS,
            PROD,
            25.0,
            3,
            secret(SECRET_STRIPE),
            vec![h(3.0, PROD, ddb("PutItem", "payments-ledger", false))],
            NODE,
            0.4,
        ),
        function(
            "catalog-import",
            "catalog-import-role",
            TEAM_ANALYTICS,
            DATA,
            20.0,
            2,
            secret(SECRET_PARTNER_FEED),
            vec![
                h(4.0, DATA, s3("GetObject", BUCKET_RAW)),
                h(2.0, DATA, s3("PutObject", BUCKET_LAKE)),
                h(1.0, DATA, call("glue.amazonaws.com", "GetTable", true, Target::Table("lake.orders"))),
            ],
            PY,
            0.3,
        ),
        function(
            "thumbnailer",
            "thumbnailer-role",
            TEAM_WEB,
            PROD,
            30.0,
            4,
            None,
            vec![h(3.0, PROD, s3("GetObject", BUCKET_WEB)), h(3.0, PROD, s3("PutObject", BUCKET_WEB))],
            NODE,
            0.3,
        ),
        function(
            "feature-flags-sync",
            "feature-flags-sync-role",
            TEAM_PLATFORM,
            PROD,
            12.0,
            1,
            parameter("/platform/flags/api-token"),
            vec![h(2.0, PROD, ddb("PutItem", "feature-flags", false))],
            GO,
            0.5,
        ),
        function(
            "invoice-render",
            "invoice-render-role",
            TEAM_FINOPS,
            PROD,
            18.0,
            2,
            secret(SECRET_ORDERS_DB),
            vec![h(2.0, PROD, ddb("Query", "orders", true)), h(2.0, PROD, s3("PutObject", BUCKET_FINANCE))],
            JAVA,
            0.2,
        ),
        container(
            "orders-worker",
            "orders-worker-task",
            TEAM_PAYMENTS,
            Runtime::Ecs,
            4,
            50.0,
            secret(SECRET_ORDERS_DB),
            vec![
                h(4.0, PROD, ddb("UpdateItem", "orders", false)),
                h(3.0, PROD, sqs("DeleteMessage", "order-events")),
                h(1.0, PROD, sqs("SendMessage", "payments-events")),
            ],
            FARGATE,
            0.8,
            "",
        ),
        container(
            "gateway",
            "gateway-task",
            TEAM_PLATFORM,
            Runtime::Ecs,
            4,
            20.0,
            parameter("/platform/gateway/jwt-key"),
            vec![h(3.0, PROD, ddb("GetItem", "sessions", true)), h(1.0, PROD, ddb("PutItem", "sessions", false))],
            FARGATE,
            0.7,
            "",
        ),
        container(
            "catalog-api",
            "catalog-api-irsa",
            TEAM_WEB,
            Runtime::Eks,
            3,
            35.0,
            None,
            vec![h(4.0, PROD, ddb("GetItem", "catalog", true)), h(1.0, PROD, s3("GetObject", BUCKET_WEB))],
            POD_GO,
            0.9,
            "web",
        ),
        container(
            "recommendations",
            "recommendations-irsa",
            TEAM_ANALYTICS,
            Runtime::Eks,
            2,
            20.0,
            None,
            vec![h(3.0, PROD, s3("GetObject", BUCKET_ARTIFACTS)), h(2.0, PROD, ddb("Query", "catalog", true))],
            POD_PY,
            0.4,
            "platform",
        ),
    ];
    // The nightly reconciliation runs at night only.
    for s in all.iter_mut() {
        if s.name == "ledger-reconcile" {
            s.window = Some((2, 5));
        }
    }
    all
}

/// The function `new-deployment` brings: created by CloudFormation from
/// CI, then taking traffic.
pub fn returns_api() -> Service {
    function(
        "returns-api",
        "returns-api-role",
        TEAM_PAYMENTS,
        PROD,
        30.0,
        3,
        parameter("/payments/returns-api/config"),
        vec![
            h(4.0, PROD, ddb("GetItem", "returns", true)),
            h(3.0, PROD, ddb("PutItem", "returns", false)),
            h(2.0, PROD, ddb("GetItem", "orders", true)),
            h(1.0, PROD, sqs("SendMessage", "returns-events")),
        ],
        NODE,
        0.3,
    )
}

/// Load through the day (UTC hour), for traffic that follows the
/// customers: low at night, highest in the US afternoon.
const CURVE: [f64; 24] = [
    0.55, 0.48, 0.4, 0.33, 0.28, 0.25, 0.25, 0.28, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.92, 0.97, 1.0, 1.0, 0.98,
    0.95, 0.9, 0.82, 0.72, 0.62,
];

impl Simulation {
    pub fn service_index(&self, name: &str) -> usize {
        self.org.services.iter().position(|s| s.name == name).unwrap_or(0)
    }

    pub(crate) fn instances(&self, s: usize, t: i64) -> u32 {
        let svc = &self.org.services[s];
        if svc.name == "payments-api" && t >= self.evolution.scale_out_at { svc.instances * 2 } else { svc.instances }
    }

    /// Whether the workload runs (has been deployed) by `t`.
    pub fn service_running(&self, s: usize, t: i64) -> bool {
        self.org.services[s].launched.is_none_or(|l| t >= l)
    }

    /// A workload's deploys on day `day` (from the start; seconds from the
    /// start): on working days, in the afternoon UTC, a few minutes into the
    /// hour so the whole rollout fits in it.
    pub fn deploys_on(&self, s: usize, day: i64) -> Vec<i64> {
        let svc = &self.org.services[s];
        if svc.deploys <= 0.0 {
            return vec![];
        }
        let abs_day = (self.abs(day * DAY)).div_euclid(DAY);
        if (abs_day + 3).rem_euclid(7) >= 5 {
            return vec![];
        }
        let mut r = rng::rng(self.config.seed, "deploy", &[s as u64, day as u64]);
        let n = rng::poisson(&mut r, svc.deploys);
        let mut times: Vec<i64> = (0..n)
            .map(|_| day * DAY + r.i64(13..23) * HOUR + r.i64(6 * 60..50 * 60))
            .filter(|&t| svc.launched.is_none_or(|l| t > l + 2 * HOUR))
            .collect();
        times.sort_unstable();
        times
    }

    /// The latest deploy of a workload in `[from, t]`.
    pub fn last_deploy(&self, s: usize, from: i64, t: i64) -> Option<i64> {
        let mut day = t.div_euclid(DAY);
        while day >= from.div_euclid(DAY) {
            if let Some(&d) = self.deploys_on(s, day).iter().rev().find(|&&d| d <= t && d >= from) {
                return Some(d);
            }
            day -= 1;
        }
        None
    }

    // ----- functions -----

    /// How much of its peak traffic a workload sees in hour `h`.
    fn load(&self, s: usize, h: i64) -> f64 {
        let svc = &self.org.services[s];
        let hour_utc = (self.abs(h * HOUR) / HOUR).rem_euclid(24);
        if let Some((a, b)) = svc.window {
            return if (a..b).contains(&hour_utc) { 1.0 } else { 0.0 };
        }
        let weekday = ((self.abs(h * HOUR)).div_euclid(DAY) + 3).rem_euclid(7);
        let weekend = if weekday >= 5 { 0.55 } else { 1.0 };
        CURVE[hour_utc as usize] * weekend
    }

    /// Execution environments a function keeps warm in hour `h`.
    fn environments(&self, s: usize, h: i64) -> u32 {
        let svc = &self.org.services[s];
        if svc.launched.is_some_and(|l| l >= (h + 1) * HOUR) {
            return 0;
        }
        let load = self.load(s, h);
        if load <= 0.0 {
            return 0;
        }
        let noise = 0.8 + 0.4 * rng::rng(self.config.seed, "lambda-load", &[s as u64, h as u64]).f64();
        ((f64::from(svc.instances) * load * noise).ceil() as u32).clamp(1, svc.instances.max(1))
    }

    /// An environment slot's lifetime and the phase of its grid.
    fn lifetime(&self, s: usize, slot: u32) -> (i64, i64) {
        let mut r = rng::rng(self.config.seed, "lambda-slot", &[s as u64, u64::from(slot)]);
        let life = r.i64(20 * 60..75 * 60);
        (life, r.i64(0..life))
    }

    /// When the environment in `slot` at `t` started: its lifetime grid
    /// turning over, the hour the slot became busy, the latest deploy or the
    /// launch, whichever is latest.
    fn environment_at(&self, s: usize, slot: u32, t: i64) -> i64 {
        let (life, phase) = self.lifetime(s, slot);
        let mut start = phase + (t - phase).div_euclid(life) * life;
        let h = t.div_euclid(HOUR);
        // Lifetimes are under two hours: busy since this hour or the one before.
        if slot >= self.environments(s, h - 1) {
            start = start.max(h * HOUR);
        } else if slot >= self.environments(s, h - 2) {
            start = start.max((h - 1) * HOUR);
        }
        let jitter = 1 + i64::from(slot * 7 % 23);
        if let Some(d) = self.last_deploy(s, t - 2 * HOUR, t - jitter) {
            start = start.max(d + jitter);
        }
        if let Some(l) = self.org.services[s].launched
            && t >= l + jitter
        {
            start = start.max(l + jitter);
        }
        start
    }

    /// An environment's credential and address.
    fn environment_identity(&self, s: usize, slot: u32, since: i64) -> (String, String) {
        let mut r = rng::rng(self.config.seed, "lambda-env", &[s as u64, u64::from(slot), since as u64]);
        let key = format!("ASIA{}", rng::base32(&mut r, 16));
        let region = self.org.account(self.org.services[s].account).region;
        (key, aws_address(&mut r, region))
    }

    fn lambda_who(&self, s: usize, key: String) -> Who {
        let svc = &self.org.services[s];
        Who::Role {
            account: svc.account,
            role: svc.role.to_string(),
            session: svc.name.to_string(),
            key,
            source_identity: None,
            mfa: false,
            federated: None,
        }
    }

    fn lambda_hour(&self, s: usize, start: i64, out: &mut Hour) {
        let svc = &self.org.services[s];
        let h = start / HOUR;
        let envs = self.environments(s, h);
        if envs == 0 {
            return;
        }
        let mut r = rng::rng(self.config.seed, "lambda-hour", &[s as u64, h as u64]);
        // Cold starts: every environment whose identity begins this hour.
        for slot in 0..envs {
            let (life, phase) = self.lifetime(s, slot);
            let mut starts = vec![start];
            let mut g = phase + (start - phase).div_euclid(life) * life + life;
            while g < start + HOUR {
                starts.push(g);
                g += life;
            }
            let jitter = 1 + i64::from(slot * 7 % 23);
            for day in [start.div_euclid(DAY) - 1, start.div_euclid(DAY)] {
                starts.extend(self.deploys_on(s, day).into_iter().map(|d| d + jitter));
            }
            if let Some(l) = svc.launched {
                starts.push(l + jitter);
            }
            starts.retain(|&c| (start..start + HOUR).contains(&c) && svc.launched.is_none_or(|l| c >= l + jitter));
            starts.sort_unstable();
            starts.dedup();
            for c in starts {
                if self.environment_at(s, slot, c) == c {
                    self.cold_start(&mut r, s, slot, c, out);
                }
            }
        }
        // Invocations, spread over the warm environments (the first busiest).
        let n = rng::poisson(&mut r, svc.rate * self.load(s, h));
        let weights: Vec<f64> = (0..envs).map(|i| 1.0 / (1.0 + f64::from(i) * 0.4)).collect();
        let mut identities: Vec<(u32, i64, String, String)> = Vec::new();
        for _ in 0..n {
            let slot = rng::weighted(&mut r, weights.iter().copied()) as u32;
            let mut when = start + r.i64(0..HOUR);
            if svc.launched.is_some_and(|l| when < l + 60) {
                continue;
            }
            let since = self.environment_at(s, slot, when);
            // Init takes a few seconds before the first invocation runs.
            when = when.max(since + 3);
            let i = rng::weighted(&mut r, svc.habits.iter().map(|h| h.weight));
            let Act::Aws { account, call } = svc.habits[i].act else { continue };
            let (key, ip) = match identities.iter().find(|(sl, si, _, _)| *sl == slot && *si == since) {
                Some((_, _, k, ip)) => (k.clone(), ip.clone()),
                None => {
                    let (k, ip) = self.environment_identity(s, slot, since);
                    identities.push((slot, since, k.clone(), ip.clone()));
                    (k, ip)
                }
            };
            let trail = self.call_trail(&mut r, account, when, call, self.lambda_who(s, key), ip, svc.ua.to_string());
            self.push_call(&mut r, trail, out);
        }
    }

    /// A new execution environment: Lambda assumes the execution role for
    /// it, then the function's init code reads its configuration.
    fn cold_start(&self, r: &mut Rng, s: usize, slot: u32, at: i64, out: &mut Hour) {
        let svc = &self.org.services[s];
        let (key, ip) = self.environment_identity(s, slot, at);
        let who = Who::Service { invoked_by: "lambda.amazonaws.com" };
        out.push(Record::Trail(self.issue(r, s, at, "AssumeRole", who, svc.name, &key, "lambda.amazonaws.com", 43200)));
        for (i, &c) in svc.init.iter().enumerate() {
            let trail = self.call_trail(
                r,
                svc.account,
                at + 1 + i as i64,
                c,
                self.lambda_who(s, key.clone()),
                ip.clone(),
                svc.ua.to_string(),
            );
            self.push_call(r, trail, out);
        }
    }

    /// A credential issued for a workload's role: the STS call, with the
    /// key it returned.
    #[allow(clippy::too_many_arguments)]
    fn issue(
        &self,
        r: &mut Rng,
        s: usize,
        at: i64,
        name: &'static str,
        who: Who,
        session: &str,
        key: &str,
        ip: &str,
        duration: i64,
    ) -> Trail {
        let svc = &self.org.services[s];
        let account = svc.account;
        let acct = self.org.account(account).id.clone();
        let role = svc.role;
        let role_arn = self.org.role_arn(account, role);
        let mut trail = self.call_trail(
            r,
            account,
            at,
            call("sts.amazonaws.com", name, true, Target::NoResource),
            who,
            ip.to_string(),
            if ip.ends_with(".amazonaws.com") { ip.to_string() } else { svc.ua.to_string() },
        );
        trail.request = Some(json!({"roleArn": role_arn, "roleSessionName": session, "durationSeconds": duration}));
        trail.response = Some(json!({
            "credentials": {
                "accessKeyId": key,
                "expiration": tenet_model::Timestamp::from_unix_seconds(self.abs(at) + duration).to_string(),
            },
            "assumedRoleUser": {
                "assumedRoleId": format!("{}:{session}", crate::render::role_id(role)),
                "arn": format!("arn:aws:sts::{acct}:assumed-role/{role}/{session}"),
            },
        }));
        trail.resources = vec![("AWS::IAM::Role", role_arn)];
        trail
    }

    // ----- tasks, pods and instances -----

    /// When the task or pod in `instance` at `t` started: the latest deploy
    /// (plus its place in the rolling update), the weekly replacement, or
    /// the launch.
    pub fn task_since(&self, s: usize, instance: u32, t: i64) -> i64 {
        let svc = &self.org.services[s];
        let stagger = 40 + i64::from(instance) * 45;
        let week = (t - stagger - 3 * HOUR).div_euclid(7 * DAY) * 7 * DAY + 3 * HOUR + stagger;
        let mut since = week;
        if let Some(d) = self.last_deploy(s, week - stagger, t - stagger) {
            since = since.max(d + stagger);
        }
        if let Some(l) = svc.launched {
            since = since.max(l + stagger);
        }
        since
    }

    /// A workload instance's role session at `t`.
    pub fn service_who(&self, s: usize, instance: u32, t: i64) -> Who {
        let svc = &self.org.services[s];
        if svc.runtime == Runtime::Lambda {
            let since = self.environment_at(s, instance, t);
            return self.lambda_who(s, self.environment_identity(s, instance, since).0);
        }
        let churns = matches!(svc.runtime, Runtime::Ecs | Runtime::Eks) && svc.name != "datadog";
        // Credentials refresh at the top of the hour, or when the task starts.
        let issued = if churns { self.refreshed_at(s, instance, t) } else { t / HOUR };
        let mut k = rng::rng(self.config.seed, "svc-key", &[s as u64, u64::from(instance), issued as u64]);
        let key = format!("ASIA{}", rng::base32(&mut k, 16));
        let session = match svc.runtime {
            Runtime::Lambda => svc.name.to_string(),
            Runtime::Ec2 => format!(
                "i-0{}",
                rng::hex(&mut rng::rng(self.config.seed, "instance", &[s as u64, u64::from(instance)]), 16)
            ),
            Runtime::Ecs => self.task_id(s, instance, self.task_since(s, instance, t)),
            Runtime::Eks => format!("botocore-session-{}", self.abs(self.refreshed_at(s, instance, t))),
        };
        let session = if svc.name == "datadog" { "DatadogAWSIntegration".to_string() } else { session };
        Who::Role {
            account: svc.account,
            role: svc.role.to_string(),
            session,
            key,
            source_identity: None,
            mfa: false,
            federated: (svc.runtime == Runtime::Eks).then_some(Idp::Eks),
        }
    }

    /// An ECS task's id (its role session name).
    fn task_id(&self, s: usize, instance: u32, since: i64) -> String {
        rng::hex(&mut rng::rng(self.config.seed, "task", &[s as u64, u64::from(instance), since as u64]), 32)
    }

    /// When the credential in use at `t` was issued: the top of the hour,
    /// or the task's start if that came later.
    fn refreshed_at(&self, s: usize, instance: u32, t: i64) -> i64 {
        let top = t.div_euclid(HOUR) * HOUR + i64::from(instance * 7 % 50);
        let top = if top > t { top - HOUR } else { top };
        top.max(self.task_since(s, instance, t))
    }

    /// A task's or pod's private address.
    fn task_ip(&self, s: usize, instance: u32, since: i64) -> String {
        let mut r = rng::rng(self.config.seed, "task-ip", &[s as u64, u64::from(instance), since as u64]);
        let svc = &self.org.services[s];
        match svc.runtime {
            Runtime::Eks => format!("10.40.{}.{}", r.u8(64..128), r.u8(2..254)),
            _ => format!("10.{}.{}.{}", 20 + svc.account, r.u8(128..192), r.u8(2..254)),
        }
    }

    pub(crate) fn service_hour(&self, r: &mut Rng, s: usize, start: i64, out: &mut Hour) {
        let svc = &self.org.services[s];
        if !self.service_running(s, start + HOUR - 1) {
            return;
        }
        let mark = out.records.len();
        if svc.runtime == Runtime::Lambda {
            self.lambda_hour(s, start, out);
        } else {
            self.long_running_hour(r, s, start, out);
        }
        self.deploy_hour(s, start, out);
        let labels = crate::change::service_labels(self, s, start, &out.records[mark..]);
        out.labels.extend(labels);
    }

    fn long_running_hour(&self, r: &mut Rng, s: usize, start: i64, out: &mut Hour) {
        let svc = &self.org.services[s];
        let hour_utc = (self.abs(start) / HOUR).rem_euclid(24);
        if let Some((a, b)) = svc.window
            && !(a..b).contains(&hour_utc)
        {
            return;
        }
        let (_, weekday) = self.day_of(start);
        let diurnal = if svc.window.is_some() {
            1.0
        } else {
            0.6 + 0.4 * (((hour_utc as f64 - 6.0) / 24.0) * std::f64::consts::TAU).sin().max(0.0)
        };
        let weekend = if weekday >= 5 && svc.name == "ci-deployer" { 0.0 } else { 1.0 };
        let scale =
            if svc.name == "payments-api" { self.instances(s, start) as f64 / svc.instances as f64 } else { 1.0 };
        let instances = self.instances(s, start);
        let churns = matches!(svc.runtime, Runtime::Ecs | Runtime::Eks) && svc.name != "datadog";
        if churns {
            // Tasks and pods refresh their credentials every hour whether
            // busy or not, and start (with their start-up reads) on deploys.
            let mut k = rng::rng(self.config.seed, "task-hour", &[s as u64, (start / HOUR) as u64]);
            for inst in 0..instances {
                let first = start + i64::from(inst * 7 % 50);
                let mut starts = vec![first];
                let since = self.task_since(s, inst, start + HOUR - 1);
                if since >= start {
                    starts.push(since);
                }
                for at in starts {
                    if at < self.task_since(s, inst, at) {
                        continue;
                    }
                    let fresh = at == self.task_since(s, inst, at);
                    self.service_issuance(&mut k, s, inst, at, out);
                    if fresh {
                        self.task_start(&mut k, s, inst, at, out);
                    }
                }
            }
        }
        let n = rng::poisson(r, svc.rate * diurnal * weekend * scale);
        if n == 0 {
            return;
        }
        let mut issued = vec![churns; instances as usize];
        for _ in 0..n {
            let when = start + r.i64(60..HOUR);
            let inst = r.u32(0..instances);
            if !issued[inst as usize] {
                issued[inst as usize] = true;
                let at = start + r.i64(0..60);
                self.service_issuance(r, s, inst, at, out);
            }
            let i = rng::weighted(r, svc.habits.iter().map(|h| h.weight));
            match svc.habits[i].act {
                Act::Aws { account, call } => {
                    let who = self.service_who(s, inst, when);
                    let ip = if svc.name == "datadog" {
                        "44.192.28.7".to_string()
                    } else if churns {
                        self.task_ip(s, inst, self.task_since(s, inst, when))
                    } else {
                        format!("10.{}.{}.{}", 20 + account, s, 10 + inst)
                    };
                    let trail = self.call_trail(r, account, when, call, who, ip, svc.ua.to_string());
                    self.push_call(r, trail, out);
                }
                Act::K8s { verb, resource } => {
                    let Some((ns, sa)) = svc.k8s_sa else { continue };
                    out.push(Record::Audit(Audit {
                        time_us: self.abs(when) * 1_000_000 + r.i64(0..1_000_000),
                        id: rng::uuid(r),
                        verb,
                        user: format!("system:serviceaccount:{ns}:{sa}"),
                        groups: vec![
                            "system:serviceaccounts".into(),
                            format!("system:serviceaccounts:{ns}"),
                            "system:authenticated".into(),
                        ],
                        impersonated: None,
                        resource,
                        namespace: Some(ns.into()),
                        name: Some(format!("{}-{}", svc.name, ["config", "leader", "v2"][r.usize(..3)])),
                        code: 200,
                        ip: self.task_ip(s, inst, self.task_since(s, inst, when)),
                        ua: format!("{}/v1.8.3 (linux/amd64) kubernetes/client-go", svc.name),
                    }));
                }
                Act::Agent => {}
            }
        }
    }

    /// A new task or pod reads its configuration as it starts.
    fn task_start(&self, r: &mut Rng, s: usize, inst: u32, at: i64, out: &mut Hour) {
        let svc = &self.org.services[s];
        let ip = self.task_ip(s, inst, at);
        for (i, &c) in svc.init.iter().enumerate() {
            let when = at + 2 + i as i64;
            let trail = self.call_trail(
                r,
                svc.account,
                when,
                c,
                self.service_who(s, inst, when),
                ip.clone(),
                svc.ua.to_string(),
            );
            self.push_call(r, trail, out);
        }
    }

    /// How a workload instance got its session: at `at`.
    fn service_issuance(&self, r: &mut Rng, s: usize, inst: u32, at: i64, out: &mut Hour) {
        let svc = &self.org.services[s];
        let Who::Role { account, session, key, .. } = self.service_who(s, inst, at) else { return };
        let (name, who) = match svc.runtime {
            Runtime::Lambda => ("AssumeRole", Who::Service { invoked_by: "lambda.amazonaws.com" }),
            Runtime::Ec2 => ("AssumeRole", Who::Service { invoked_by: "ec2.amazonaws.com" }),
            Runtime::Ecs if svc.name == "datadog" => (
                "AssumeRole",
                Who::OtherAccount {
                    account_id: self.org.vendor_account,
                    principal_id: "AROAZTDMVDT5OPF2MN7RQ:datadog-crawler".into(),
                },
            ),
            Runtime::Ecs => ("AssumeRole", Who::Service { invoked_by: "ecs-tasks.amazonaws.com" }),
            Runtime::Eks => (
                "AssumeRoleWithWebIdentity",
                Who::WebIdentity {
                    account,
                    subject: svc.k8s_sa.map(|(ns, sa)| format!("system:serviceaccount:{ns}:{sa}")).unwrap_or_default(),
                    idp: Idp::Eks,
                },
            ),
        };
        let ip = match svc.runtime {
            Runtime::Lambda => "lambda.amazonaws.com".to_string(),
            Runtime::Ec2 => "ec2.amazonaws.com".to_string(),
            Runtime::Ecs if svc.name == "datadog" => "44.192.28.7".to_string(),
            Runtime::Ecs => "ecs-tasks.amazonaws.com".to_string(),
            Runtime::Eks => self.task_ip(s, inst, self.task_since(s, inst, at)),
        };
        let duration = if svc.runtime == Runtime::Ecs { 21600 } else { 3600 };
        let mut trail = self.issue(r, s, at, name, who, &session, &key, &ip, duration);
        if svc.name == "datadog" {
            trail.ua = svc.ua.to_string();
            if let Some(req) = trail.request.as_mut() {
                req["externalId"] = json!("a5f2c0e8b1d94f7e9c3a6b2d8e1f4c7a");
            }
        }
        if svc.runtime == Runtime::Eks
            && let Some(resp) = trail.response.as_mut()
        {
            resp["provider"] = json!(crate::render::oidc_provider(&self.org.account(account).id, Idp::Eks));
            resp["audience"] = json!("sts.amazonaws.com");
            resp["subjectFromWebIdentityToken"] =
                json!(svc.k8s_sa.map(|(ns, sa)| format!("system:serviceaccount:{ns}:{sa}")).unwrap_or_default());
        }
        out.push(Record::Trail(trail));
    }

    // ----- deploys -----

    /// The deploys of workload `s` that happen in the hour from `start`.
    fn deploy_hour(&self, s: usize, start: i64, out: &mut Hour) {
        for d in self.deploys_on(s, start.div_euclid(DAY)) {
            if (start..start + HOUR).contains(&d) {
                let mut r = rng::rng(self.config.seed, "deploy-events", &[s as u64, d as u64]);
                let svc = &self.org.services[s];
                match svc.runtime {
                    Runtime::Lambda => self.sam_deploy(&mut r, s, d, false, out),
                    Runtime::Ecs | Runtime::Eks => self.container_deploy(&mut r, s, d, out),
                    Runtime::Ec2 => {}
                }
            }
        }
    }

    /// A GitHub Actions job's credential: `AssumeRoleWithWebIdentity` with
    /// the workflow's OIDC token. Returns the record and the session.
    pub fn github_session(
        &self,
        r: &mut Rng,
        account: usize,
        role: &str,
        subject: &str,
        at: i64,
        ip: &str,
    ) -> (Trail, Who) {
        let acct = self.org.account(account).id.clone();
        let role_arn = self.org.role_arn(account, role);
        let key = format!("ASIA{}", rng::base32(r, 16));
        let session = "GitHubActions";
        let provider = crate::render::oidc_provider(&acct, Idp::GitHub);
        let mut trail = self.call_trail(
            r,
            account,
            at,
            call("sts.amazonaws.com", "AssumeRoleWithWebIdentity", true, Target::NoResource),
            Who::WebIdentity { account, subject: subject.to_string(), idp: Idp::GitHub },
            ip.to_string(),
            GHA_CREDENTIALS_UA.to_string(),
        );
        trail.request = Some(json!({"roleArn": role_arn, "roleSessionName": session, "durationSeconds": 3600}));
        trail.response = Some(json!({
            "credentials": {
                "accessKeyId": key,
                "expiration": tenet_model::Timestamp::from_unix_seconds(self.abs(at) + 3600).to_string(),
            },
            "subjectFromWebIdentityToken": subject,
            "assumedRoleUser": {
                "assumedRoleId": format!("{}:{session}", crate::render::role_id(role)),
                "arn": format!("arn:aws:sts::{acct}:assumed-role/{role}/{session}"),
            },
            "provider": provider,
            "audience": "sts.amazonaws.com",
        }));
        trail.resources = vec![("AWS::IAM::Role", role_arn)];
        let who = Who::Role {
            account,
            role: role.to_string(),
            session: session.to_string(),
            key,
            source_identity: None,
            mfa: false,
            federated: Some(Idp::GitHub),
        };
        (trail, who)
    }

    /// CloudFormation's own session of its service role for a stack
    /// operation: `AssumeRole` by `cloudformation.amazonaws.com`.
    pub fn cloudformation_session(&self, r: &mut Rng, account: usize, at: i64) -> (Trail, Who) {
        let acct = self.org.account(account).id.clone();
        let role = "cfn-exec-role";
        let role_arn = self.org.role_arn(account, role);
        let key = format!("ASIA{}", rng::base32(r, 16));
        let session = "AWSCloudFormation";
        let mut trail = self.call_trail(
            r,
            account,
            at,
            call("sts.amazonaws.com", "AssumeRole", true, Target::NoResource),
            Who::Service { invoked_by: "cloudformation.amazonaws.com" },
            "cloudformation.amazonaws.com".into(),
            "cloudformation.amazonaws.com".into(),
        );
        trail.request = Some(json!({"roleArn": role_arn, "roleSessionName": session, "durationSeconds": 3600}));
        trail.response = Some(json!({
            "credentials": {
                "accessKeyId": key,
                "expiration": tenet_model::Timestamp::from_unix_seconds(self.abs(at) + 3600).to_string(),
            },
            "assumedRoleUser": {
                "assumedRoleId": format!("{}:{session}", crate::render::role_id(role)),
                "arn": format!("arn:aws:sts::{acct}:assumed-role/{role}/{session}"),
            },
        }));
        trail.resources = vec![("AWS::IAM::Role", role_arn)];
        let who = Who::Role {
            account,
            role: role.to_string(),
            session: session.to_string(),
            key,
            source_identity: None,
            mfa: false,
            federated: None,
        };
        (trail, who)
    }

    /// `sam deploy` of a function from GitHub Actions: the package uploaded,
    /// a change set created and executed, then CloudFormation's service
    /// role updating (or, for a new stack, creating) the function. The
    /// records end at `at`, when the new code takes traffic.
    pub fn sam_deploy(&self, r: &mut Rng, s: usize, at: i64, create: bool, out: &mut Hour) {
        let svc = &self.org.services[s];
        let account = svc.account;
        let region = self.org.account(account).region;
        let acct = self.org.account(account).id.clone();
        let runner = crate::iac::runner_address(r);
        let subject = format!("repo:acme/{}:environment:production", svc.name);
        let t0 = at - 150 - r.i64(0..60);
        let (assume, ci) = self.github_session(r, account, "github-actions-deploy", &subject, t0, &runner);
        out.push(Record::Trail(assume));
        let stack = format!("{}-prod", svc.name);
        let stack_arn =
            format!("arn:aws:cloudformation:{region}:{acct}:stack/{stack}/{}", crate::world::stable_uuid(&stack));
        let change_set = format!("samcli-deploy{}", self.abs(t0));
        let mut t = t0 + 4;
        let ci_call = |r: &mut Rng, source: &'static str, name: &'static str, read_only: bool, t: i64| {
            let mut trail = self.call_trail(
                r,
                account,
                t,
                call(source, name, read_only, Target::NoResource),
                ci.clone(),
                runner.clone(),
                SAM_UA.to_string(),
            );
            trail.request = Some(match source {
                "s3.amazonaws.com" => json!({
                    "bucketName": self.org.buckets[BUCKET_SAM].name,
                    "key": format!("{}/{}.template", svc.name, rng::hex(r, 32)),
                }),
                _ => json!({"stackName": stack, "changeSetName": change_set}),
            });
            if source != "s3.amazonaws.com" {
                trail.resources = vec![("AWS::CloudFormation::Stack", stack_arn.clone())];
            }
            trail
        };
        if account == PROD {
            for _ in 0..2 {
                out.push(Record::Trail(ci_call(r, "s3.amazonaws.com", "PutObject", false, t)));
                t += r.i64(1..4);
            }
        }
        for (name, read_only) in [
            ("DescribeStacks", true),
            ("CreateChangeSet", false),
            ("DescribeChangeSet", true),
            ("DescribeChangeSet", true),
            ("ExecuteChangeSet", false),
        ] {
            out.push(Record::Trail(ci_call(r, "cloudformation.amazonaws.com", name, read_only, t)));
            t += r.i64(2..9);
        }
        let (cfn_assume, cfn) = self.cloudformation_session(r, account, t);
        out.push(Record::Trail(cfn_assume));
        let function_arn = format!("arn:aws:lambda:{region}:{acct}:function:{}", svc.name);
        let role_arn = self.org.role_arn(account, svc.role);
        let mut steps: Vec<(&'static str, &'static str, bool, serde_json::Value)> = Vec::new();
        if create {
            steps.push((
                "iam.amazonaws.com",
                "CreateRole",
                false,
                json!({
                    "roleName": svc.role,
                    "assumeRolePolicyDocument": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"Service\":\"lambda.amazonaws.com\"},\"Action\":\"sts:AssumeRole\"}]}",
                    "tags": [{"key": "service", "value": svc.name}, {"key": "team", "value": self.org.teams[svc.team].name}],
                }),
            ));
            steps.push((
                "iam.amazonaws.com",
                "AttachRolePolicy",
                false,
                json!({"roleName": svc.role, "policyArn": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"}),
            ));
            steps.push((
                "iam.amazonaws.com",
                "PutRolePolicy",
                false,
                json!({
                    "roleName": svc.role,
                    "policyName": svc.name,
                    "policyDocument": crate::inventory::service_policy_json(self, s),
                }),
            ));
            steps.push(("iam.amazonaws.com", "GetRole", true, json!({"roleName": svc.role})));
            steps.push((
                "logs.amazonaws.com",
                "CreateLogGroup",
                false,
                json!({"logGroupName": format!("/aws/lambda/{}", svc.name)}),
            ));
            steps.push((
                "lambda.amazonaws.com",
                "CreateFunction20150331",
                false,
                json!({
                    "functionName": svc.name,
                    "runtime": runtime_of(svc.ua),
                    "role": role_arn,
                    "handler": "index.handler",
                    "memorySize": 512,
                    "timeout": 30,
                    "publish": false,
                }),
            ));
            steps.push((
                "lambda.amazonaws.com",
                "AddPermission20150331v2",
                false,
                json!({
                    "functionName": function_arn,
                    "statementId": format!("{}-api-invoke", svc.name),
                    "action": "lambda:InvokeFunction",
                    "principal": "apigateway.amazonaws.com",
                }),
            ));
        } else {
            steps.push((
                "lambda.amazonaws.com",
                "UpdateFunctionCode20150331v2",
                false,
                json!({"functionName": function_arn, "s3Bucket": self.org.buckets[BUCKET_SAM].name, "publish": false}),
            ));
            steps.push(("lambda.amazonaws.com", "GetFunction20150331v2", true, json!({"functionName": function_arn})));
            steps.push((
                "lambda.amazonaws.com",
                "UpdateFunctionConfiguration20150331v2",
                false,
                json!({"functionName": function_arn, "timeout": 30}),
            ));
        }
        steps.push(("lambda.amazonaws.com", "PublishVersion20150331", false, json!({"functionName": function_arn})));
        steps.push((
            "lambda.amazonaws.com",
            if create { "CreateAlias20150331" } else { "UpdateAlias20150331" },
            false,
            json!({"functionName": function_arn, "name": "live"}),
        ));
        let mut t = t + 2;
        let validates =
            |name: &str| name.starts_with("CreateFunction") || name.starts_with("UpdateFunctionConfiguration");
        for (source, name, read_only, request) in steps {
            t += r.i64(1..6);
            let mut trail = self.call_trail(
                r,
                account,
                t.min(at - 1),
                call(source, name, read_only, Target::NoResource),
                cfn.clone(),
                "cloudformation.amazonaws.com".into(),
                "cloudformation.amazonaws.com".into(),
            );
            trail.invoked_by = Some("cloudformation.amazonaws.com");
            trail.request = Some(request);
            trail.resources = match source {
                "iam.amazonaws.com" => vec![("AWS::IAM::Role", role_arn.clone())],
                "lambda.amazonaws.com" => vec![("AWS::Lambda::Function", function_arn.clone())],
                _ => vec![],
            };
            out.push(Record::Trail(trail));
            if validates(name) {
                // Lambda checks it can assume the execution role; the
                // credential is never used.
                let session = format!(
                    "awslambda_{}_{}{:03}",
                    r.u32(100..1000),
                    tenet_model::Timestamp::from_unix_seconds(self.abs(t)).to_chrono().format("%Y%m%d%H%M%S"),
                    r.u32(..1000)
                );
                let key = format!("ASIA{}", rng::base32(r, 16));
                let who = Who::Service { invoked_by: "lambda.amazonaws.com" };
                let mut check =
                    self.issue(r, s, t.min(at - 1), "AssumeRole", who, &session, &key, "lambda.amazonaws.com", 3600);
                if let Some(req) = check.request.as_mut() {
                    req.as_object_mut().map(|m| m.remove("durationSeconds"));
                }
                if let Some(resp) = check.response.as_mut() {
                    resp["assumedRoleUser"] = serde_json::Value::Null;
                }
                out.push(Record::Trail(check));
            }
        }
        for _ in 0..2 {
            t += r.i64(3..10);
            out.push(Record::Trail(ci_call(r, "cloudformation.amazonaws.com", "DescribeStackEvents", true, t)));
        }
    }

    /// A container deploy from GitHub Actions: the image pushed to ECR,
    /// then the ECS service updated (new tasks roll out from `at`) or the
    /// deployment patched by Argo CD.
    fn container_deploy(&self, r: &mut Rng, s: usize, at: i64, out: &mut Hour) {
        let svc = &self.org.services[s];
        let runner = crate::iac::runner_address(r);
        let subject = format!("repo:acme/{}:ref:refs/heads/main", svc.name);
        let mut t = at - 120 - r.i64(0..40);
        let (assume, ci) = self.github_session(r, PROD, "github-actions-deploy", &subject, t, &runner);
        out.push(Record::Trail(assume));
        let mut steps = vec![
            ("ecr.amazonaws.com", "GetAuthorizationToken", true),
            ("ecr.amazonaws.com", "BatchCheckLayerAvailability", true),
            ("ecr.amazonaws.com", "InitiateLayerUpload", false),
            ("ecr.amazonaws.com", "CompleteLayerUpload", false),
            ("ecr.amazonaws.com", "PutImage", false),
        ];
        if svc.runtime == Runtime::Ecs {
            steps.extend([
                ("ecs.amazonaws.com", "DescribeTaskDefinition", true),
                ("ecs.amazonaws.com", "RegisterTaskDefinition", false),
                ("ecs.amazonaws.com", "UpdateService", false),
                ("ecs.amazonaws.com", "DescribeServices", true),
            ]);
        } else {
            steps.push(("eks.amazonaws.com", "DescribeCluster", true));
        }
        for (source, name, read_only) in steps {
            t += r.i64(2..12);
            let mut trail = self.call_trail(
                r,
                PROD,
                t.min(at - 1),
                call(source, name, read_only, Target::NoResource),
                ci.clone(),
                runner.clone(),
                DEPLOY_CLI_UA.to_string(),
            );
            trail.request = Some(match source {
                "ecr.amazonaws.com" => json!({"repositoryName": svc.name}),
                "eks.amazonaws.com" => json!({"name": self.org.cluster}),
                _ => json!({"cluster": "prod", "service": svc.name, "taskDefinition": svc.name}),
            });
            out.push(Record::Trail(trail));
        }
        if let (Runtime::Eks, Some((ns, _))) = (svc.runtime, svc.k8s_sa) {
            out.push(Record::Audit(Audit {
                time_us: self.abs(at - 5) * 1_000_000 + r.i64(0..1_000_000),
                id: rng::uuid(r),
                verb: "patch",
                user: "system:serviceaccount:platform:argo-deployer".into(),
                groups: vec![
                    "system:serviceaccounts".into(),
                    "system:serviceaccounts:platform".into(),
                    "system:authenticated".into(),
                ],
                impersonated: None,
                resource: "deployments",
                namespace: Some(ns.into()),
                name: Some(svc.name.into()),
                code: 200,
                ip: "10.40.2.31".into(),
                ua: "argocd-application-controller/v2.11.3 (linux/amd64) kubernetes/client-go".into(),
            }));
        }
    }
}

/// The Lambda runtime a user agent says a function was built for.
fn runtime_of(ua: &str) -> &'static str {
    if ua.contains("nodejs") {
        "nodejs20.x"
    } else if ua.contains("java") {
        "java21"
    } else if ua.contains("python") {
        "python3.12"
    } else {
        "provided.al2023"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Config;

    fn sim(shape: Shape) -> Simulation {
        Simulation::new(Config { seed: 4, days: 3, humans: 10, agents: 2, shape, ..Config::default() })
    }

    #[test]
    fn an_environment_is_the_same_identity_for_its_whole_life() {
        let s = sim(Shape::CloudNative);
        let f = s.service_index("orders-api");
        for slot in 0..3 {
            let mut t = 10 * HOUR;
            while t < 30 * HOUR {
                let since = s.environment_at(f, slot, t);
                assert!(since <= t);
                // Until the next start, the environment is the same one.
                assert_eq!(s.environment_at(f, slot, since), since);
                t += 97;
            }
        }
    }
}
