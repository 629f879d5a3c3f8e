//! The simulated enterprise: accounts, teams, people, workloads, AI agents
//! and their tools, built deterministically from the seed.

use std::str::FromStr;

use crate::record::Place;
use crate::rng;
use crate::{Config, DAY};

/// The kind of organisation simulated: who works there and what runs there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Shape {
    /// Many people across departments, a handful of services and functions,
    /// some agents, Terraform now and then.
    #[default]
    Enterprise,
    /// Few people, mostly engineers; many serverless functions and
    /// containers, Terraform all day, agents in every team.
    CloudNative,
}

impl Shape {
    pub const ALL: [Shape; 2] = [Shape::Enterprise, Shape::CloudNative];

    pub fn name(self) -> &'static str {
        match self {
            Shape::Enterprise => "enterprise",
            Shape::CloudNative => "cloud-native",
        }
    }

    /// People when not told otherwise.
    pub fn default_humans(self) -> usize {
        match self {
            Shape::Enterprise => 60,
            Shape::CloudNative => 24,
        }
    }

    /// Agents when not told otherwise.
    pub fn default_agents(self) -> usize {
        match self {
            Shape::Enterprise => 12,
            Shape::CloudNative => 16,
        }
    }

    /// How many people each team gets, by weight.
    fn team_share(self) -> &'static [f64] {
        match self {
            Shape::Enterprise => &[0.12, 0.14, 0.12, 0.12, 0.06, 0.05, 0.16, 0.23, 0.0],
            Shape::CloudNative => &[0.26, 0.22, 0.2, 0.1, 0.06, 0.03, 0.06, 0.07, 0.0],
        }
    }

    /// How much more than a person's team habits say they use agents.
    pub fn agent_use(self) -> f64 {
        match self {
            Shape::Enterprise => 1.0,
            Shape::CloudNative => 2.5,
        }
    }

    /// Terraform plans run for pull requests per working hour.
    pub fn pr_plans_per_hour(self) -> f64 {
        match self {
            Shape::Enterprise => 0.5,
            Shape::CloudNative => 2.0,
        }
    }

    /// The share of pull-request plans that are merged and applied.
    pub fn apply_share(self) -> f64 {
        match self {
            Shape::Enterprise => 0.2,
            Shape::CloudNative => 0.35,
        }
    }

    /// Chance a platform engineer runs `terraform plan` from their laptop
    /// in a working hour.
    pub fn laptop_plans(self) -> f64 {
        match self {
            Shape::Enterprise => 0.02,
            Shape::CloudNative => 0.06,
        }
    }

    /// Chance a person with AWS access opens the console on a working day.
    pub fn console_days(self) -> f64 {
        match self {
            Shape::Enterprise => 0.35,
            Shape::CloudNative => 0.25,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown organisation shape `{0}`; known: enterprise, cloud-native")]
pub struct UnknownShape(pub String);

impl FromStr for Shape {
    type Err = UnknownShape;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Shape::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| UnknownShape(s.to_string()))
    }
}

/// An AWS account.
pub struct Account {
    pub id: String,
    pub name: &'static str,
    pub region: &'static str,
}

pub const PROD: usize = 0;
pub const DEV: usize = 1;
pub const DATA: usize = 2;

/// An AWS API call a habit makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call {
    pub source: &'static str,
    pub name: &'static str,
    pub read_only: bool,
    /// What the call touches, resolved against the org when rendered.
    pub target: Target,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Target {
    /// The service itself, no particular resource.
    NoResource,
    Bucket(usize),
    Object(usize),
    Secret(usize),
    Table(&'static str),
    Instance,
    Function(&'static str),
    /// An SSM parameter; SecureString parameters are read with decryption.
    Parameter(&'static str),
    Role(&'static str),
    LogGroup(&'static str),
    Queue(&'static str),
    Key,
}

pub(crate) const fn call(source: &'static str, name: &'static str, read_only: bool, target: Target) -> Call {
    Call { source, name, read_only, target }
}

/// Something a person or workload does, with a relative weight.
#[derive(Clone, Copy)]
pub enum Act {
    Aws { account: usize, call: Call },
    K8s { verb: &'static str, resource: &'static str },
    Agent,
}

#[derive(Clone, Copy)]
pub struct Habit {
    pub weight: f64,
    pub act: Act,
}

pub struct Team {
    pub name: &'static str,
    pub department: &'static str,
    /// The IAM Identity Center permission set the team's people use.
    pub permission_set: &'static str,
    pub accounts: &'static [usize],
    pub k8s_namespace: Option<&'static str>,
    pub habits: Vec<Habit>,
    /// Events per working hour for a typical member.
    pub rate: f64,
    pub okta_group_id: String,
    pub apps: &'static [&'static str],
}

pub struct Person {
    pub first: &'static str,
    pub last: &'static str,
    pub email: String,
    pub okta_id: String,
    pub team: usize,
    pub title: &'static str,
    /// Local time offset from UTC in hours.
    pub tz: i64,
    pub start_hour: i64,
    pub hours: i64,
    /// A long-lived IAM user with an access key (legacy access), if any.
    pub iam_user: Option<IamUser>,
    pub home_ip: String,
    /// Where they live and work, as the identity provider geolocates them.
    pub home: Place,
    pub laptop_ua: String,
    /// Days (from the start) the person is away.
    pub holiday: Option<(u32, u32)>,
    pub rate_factor: f64,
    /// Fails the first password attempt now and then.
    pub typo_prone: bool,
    /// When a new hire's account is created (seconds from the start);
    /// `None` for everyone employed before the simulation starts.
    pub created: Option<i64>,
}

pub struct IamUser {
    pub name: String,
    pub access_key: String,
    pub account: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    Lambda,
    Ecs,
    Ec2,
    Eks,
}

pub struct Service {
    pub name: &'static str,
    pub team: usize,
    pub account: usize,
    pub runtime: Runtime,
    pub role: &'static str,
    /// Tasks, pods or instances; for a function, its execution
    /// environments at peak load.
    pub instances: u32,
    /// Events per hour across instances.
    pub rate: f64,
    pub habits: Vec<Habit>,
    /// Active hours (UTC) for batch jobs; `None` runs around the clock.
    pub window: Option<(i64, i64)>,
    pub k8s_sa: Option<(&'static str, &'static str)>,
    pub ua: &'static str,
    /// What a new environment, task or pod reads as it starts (a secret,
    /// a parameter).
    pub init: Vec<Call>,
    /// Deploys per working day (each recycles every environment or task).
    pub deploys: f64,
    /// When it was deployed for the first time (seconds from the start);
    /// `None`: running before the simulation starts.
    pub launched: Option<i64>,
}

impl Service {
    /// A workload with no start-up reads, never deployed, always there.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        name: &'static str,
        team: usize,
        account: usize,
        runtime: Runtime,
        role: &'static str,
        instances: u32,
        rate: f64,
        habits: Vec<Habit>,
        ua: &'static str,
    ) -> Service {
        Service {
            name,
            team,
            account,
            runtime,
            role,
            instances,
            rate,
            habits,
            window: None,
            k8s_sa: None,
            ua,
            init: vec![],
            deploys: 0.0,
            launched: None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AgentKind {
    Assistant,
    Coding,
    Ops,
    Data,
}

impl AgentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentKind::Assistant => "assistant",
            AgentKind::Coding => "coding",
            AgentKind::Ops => "ops",
            AgentKind::Data => "data",
        }
    }
}

/// What a tool reaches when called.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Reach {
    /// An AWS API through the `aws-mcp` server, under a per-call role session.
    Aws { call: Call },
    /// The Kubernetes API through `k8s-mcp`, impersonating the end user.
    K8s { verb: &'static str, resource: &'static str },
    /// A SaaS API (GitHub, tickets, docs).
    Saas { host: &'static str },
    /// The open web: a URL fetched or posted to.
    Web { post: bool },
}

pub struct Tool {
    pub name: &'static str,
    pub server: &'static str,
    pub reach: Reach,
    pub description: &'static str,
}

pub struct Agent {
    pub id: String,
    pub name: String,
    pub kind: AgentKind,
    pub owner: usize,
    /// The people it serves (the owner included).
    pub users: Vec<usize>,
    /// Tools available from the start.
    pub tools: Vec<usize>,
    pub model: &'static str,
    pub app: &'static str,
}

pub struct Bucket {
    pub name: String,
    pub account: usize,
    pub sensitive: bool,
}

pub struct Secret {
    pub name: &'static str,
    pub account: usize,
    pub arn: String,
}

/// The whole enterprise.
pub struct Org {
    pub shape: Shape,
    pub domain: &'static str,
    pub accounts: Vec<Account>,
    pub teams: Vec<Team>,
    /// Everyone employed when the simulation starts.
    pub people: Vec<Person>,
    /// People hired during the run (`new-hire`); person index
    /// `people.len() + i` is `hires[i]`.
    pub hires: Vec<Person>,
    pub services: Vec<Service>,
    pub agents: Vec<Agent>,
    pub tools: Vec<Tool>,
    pub buckets: Vec<Bucket>,
    pub secrets: Vec<Secret>,
    pub cluster: &'static str,
    /// The external monitoring vendor's account, trusted by a role.
    pub vendor_account: &'static str,
    pub office_prefix: &'static str,
}

const FIRST: &[&str] = &[
    "alex", "bea", "carlos", "dana", "eli", "fatima", "gus", "hana", "ivan", "jules", "kai", "lena", "marco", "nina",
    "omar", "priya", "quinn", "rosa", "sam", "tara", "umar", "vera", "wes", "xia", "yusuf", "zoe", "ada", "ben",
    "chen", "dev", "emma", "finn", "greta", "hugo", "ines", "jon", "kim", "leo", "maya", "noah",
];
const LAST: &[&str] = &[
    "adams",
    "becker",
    "costa",
    "diaz",
    "evans",
    "fischer",
    "garcia",
    "hansen",
    "ito",
    "jensen",
    "kowalski",
    "lopez",
    "moreau",
    "nakamura",
    "okafor",
    "patel",
    "quispe",
    "rossi",
    "silva",
    "tanaka",
    "ueda",
    "vargas",
    "weber",
    "xu",
    "yilmaz",
    "zhang",
    "ali",
    "brown",
    "chowdhury",
    "dubois",
];

pub const BUCKET_ARTIFACTS: usize = 0;
pub const BUCKET_WEB: usize = 1;
pub const BUCKET_LAKE: usize = 2;
pub const BUCKET_RAW: usize = 3;
pub const BUCKET_CUSTOMER: usize = 4;
pub const BUCKET_FINANCE: usize = 5;
/// Created mid-run by the platform team: the "new data source".
pub const BUCKET_EVENTS_V2: usize = 6;
/// Terraform's remote state.
pub const BUCKET_TF_STATE: usize = 7;
/// Where Athena writes query results (data account).
pub const BUCKET_ATHENA_RESULTS: usize = 8;
/// Where CloudTrail delivers its logs.
pub const BUCKET_TRAIL: usize = 9;
/// Where `sam deploy` uploads packaged functions.
pub const BUCKET_SAM: usize = 10;

pub const SECRET_PAYMENTS_DB: usize = 0;
pub const SECRET_STRIPE: usize = 1;
pub const SECRET_WAREHOUSE: usize = 2;
pub const SECRET_ORDERS_DB: usize = 3;
pub const SECRET_SENDGRID: usize = 4;
pub const SECRET_PARTNER_FEED: usize = 5;

pub const TEAM_PLATFORM: usize = 0;
pub const TEAM_PAYMENTS: usize = 1;
pub const TEAM_WEB: usize = 2;
pub const TEAM_ANALYTICS: usize = 3;
pub const TEAM_SECOPS: usize = 4;
pub const TEAM_FINOPS: usize = 5;
pub const TEAM_SUPPORT: usize = 6;
pub const TEAM_SALES: usize = 7;
/// The group `team-reorg` moves a team into.
pub const TEAM_ML: usize = 8;

fn teams(seed: u64) -> Vec<Team> {
    use Target::*;
    let aws = |account: usize, weight: f64, call: Call| Habit { weight, act: Act::Aws { account, call } };
    let k8s =
        |weight: f64, verb: &'static str, resource: &'static str| Habit { weight, act: Act::K8s { verb, resource } };
    let agent = |weight: f64| Habit { weight, act: Act::Agent };
    let gid = |n: u64| format!("00g{}", rng::base62(&mut rng::rng(seed, "okta-group", &[n]), 17));
    vec![
        Team {
            name: "platform",
            department: "engineering",
            permission_set: "PlatformEngineer",
            accounts: &[PROD, DEV, DATA],
            k8s_namespace: Some("platform"),
            habits: vec![
                aws(PROD, 6.0, call("ec2.amazonaws.com", "DescribeInstances", true, NoResource)),
                aws(PROD, 4.0, call("ecs.amazonaws.com", "DescribeServices", true, NoResource)),
                aws(PROD, 4.0, call("monitoring.amazonaws.com", "GetMetricData", true, NoResource)),
                aws(PROD, 3.0, call("logs.amazonaws.com", "FilterLogEvents", true, LogGroup("/ecs/payments-api"))),
                aws(DEV, 3.0, call("ec2.amazonaws.com", "DescribeInstances", true, NoResource)),
                aws(PROD, 2.0, call("iam.amazonaws.com", "GetRole", true, Role("payments-api-irsa"))),
                aws(PROD, 2.0, call("s3.amazonaws.com", "ListObjectsV2", true, Bucket(BUCKET_ARTIFACTS))),
                aws(PROD, 1.0, call("ssm.amazonaws.com", "GetParameter", true, Parameter("/platform/cluster-version"))),
                aws(DATA, 1.0, call("ec2.amazonaws.com", "DescribeInstances", true, NoResource)),
                k8s(6.0, "get", "pods"),
                k8s(3.0, "list", "deployments"),
                k8s(1.0, "get", "nodes"),
                agent(3.0),
            ],
            rate: 14.0,
            okta_group_id: gid(0),
            apps: &["AWS IAM Identity Center", "GitHub", "Slack", "PagerDuty"],
        },
        Team {
            name: "payments",
            department: "engineering",
            permission_set: "PaymentsDeveloper",
            accounts: &[PROD, DEV],
            k8s_namespace: Some("payments"),
            habits: vec![
                aws(DEV, 5.0, call("dynamodb.amazonaws.com", "Query", true, Table("payments-ledger-dev"))),
                aws(PROD, 3.0, call("logs.amazonaws.com", "FilterLogEvents", true, LogGroup("/ecs/payments-api"))),
                aws(DEV, 3.0, call("lambda.amazonaws.com", "GetFunction", true, Function("payments-webhook"))),
                aws(PROD, 2.0, call("dynamodb.amazonaws.com", "DescribeTable", true, Table("payments-ledger"))),
                aws(DEV, 2.0, call("sqs.amazonaws.com", "GetQueueAttributes", true, Queue("payments-events-dev"))),
                aws(PROD, 1.0, call("s3.amazonaws.com", "GetObject", true, Object(BUCKET_ARTIFACTS))),
                aws(DEV, 0.5, call("secretsmanager.amazonaws.com", "DescribeSecret", true, Secret(SECRET_PAYMENTS_DB))),
                k8s(5.0, "get", "pods"),
                k8s(2.0, "get", "configmaps"),
                agent(4.0),
            ],
            rate: 10.0,
            okta_group_id: gid(1),
            apps: &["AWS IAM Identity Center", "GitHub", "Slack", "Jira"],
        },
        Team {
            name: "web",
            department: "engineering",
            permission_set: "WebDeveloper",
            accounts: &[PROD, DEV],
            k8s_namespace: Some("web"),
            habits: vec![
                aws(DEV, 4.0, call("s3.amazonaws.com", "PutObject", false, Object(BUCKET_WEB))),
                aws(PROD, 3.0, call("s3.amazonaws.com", "GetObject", true, Object(BUCKET_WEB))),
                aws(PROD, 2.0, call("cloudfront.amazonaws.com", "ListDistributions", true, NoResource)),
                aws(PROD, 2.0, call("logs.amazonaws.com", "FilterLogEvents", true, LogGroup("/ecs/web-frontend"))),
                k8s(4.0, "get", "pods"),
                agent(4.0),
            ],
            rate: 9.0,
            okta_group_id: gid(2),
            apps: &["AWS IAM Identity Center", "GitHub", "Slack", "Figma"],
        },
        Team {
            name: "analytics",
            department: "data",
            permission_set: "DataAnalyst",
            accounts: &[DATA],
            k8s_namespace: None,
            habits: vec![
                aws(DATA, 6.0, call("athena.amazonaws.com", "StartQueryExecution", false, NoResource)),
                aws(DATA, 6.0, call("athena.amazonaws.com", "GetQueryResults", true, NoResource)),
                aws(DATA, 3.0, call("glue.amazonaws.com", "GetTable", true, Table("lake.orders"))),
                aws(DATA, 3.0, call("s3.amazonaws.com", "GetObject", true, Object(BUCKET_LAKE))),
                aws(DATA, 1.0, call("s3.amazonaws.com", "ListObjectsV2", true, Bucket(BUCKET_LAKE))),
                agent(5.0),
            ],
            rate: 10.0,
            okta_group_id: gid(3),
            apps: &["AWS IAM Identity Center", "Slack", "Tableau"],
        },
        Team {
            name: "secops",
            department: "security",
            permission_set: "SecurityAudit",
            accounts: &[PROD, DEV, DATA],
            k8s_namespace: None,
            habits: vec![
                aws(PROD, 5.0, call("guardduty.amazonaws.com", "ListFindings", true, NoResource)),
                aws(PROD, 4.0, call("securityhub.amazonaws.com", "GetFindings", true, NoResource)),
                aws(PROD, 3.0, call("cloudtrail.amazonaws.com", "LookupEvents", true, NoResource)),
                aws(DATA, 2.0, call("guardduty.amazonaws.com", "ListFindings", true, NoResource)),
                aws(PROD, 1.0, call("iam.amazonaws.com", "GetAccountAuthorizationDetails", true, NoResource)),
                aws(PROD, 1.0, call("config.amazonaws.com", "DescribeComplianceByConfigRule", true, NoResource)),
                agent(2.0),
            ],
            rate: 8.0,
            okta_group_id: gid(4),
            apps: &["AWS IAM Identity Center", "Slack", "PagerDuty"],
        },
        Team {
            name: "finops",
            department: "finance",
            permission_set: "BillingAnalyst",
            accounts: &[PROD],
            k8s_namespace: None,
            habits: vec![
                aws(PROD, 5.0, call("ce.amazonaws.com", "GetCostAndUsage", true, NoResource)),
                aws(PROD, 2.0, call("budgets.amazonaws.com", "DescribeBudgets", true, NoResource)),
                aws(PROD, 1.0, call("s3.amazonaws.com", "GetObject", true, Object(BUCKET_FINANCE))),
                agent(2.0),
            ],
            rate: 4.0,
            okta_group_id: gid(5),
            apps: &["AWS IAM Identity Center", "Slack", "NetSuite"],
        },
        Team {
            name: "support",
            department: "customer",
            permission_set: "SupportReadOnly",
            accounts: &[PROD],
            k8s_namespace: None,
            habits: vec![
                aws(PROD, 2.0, call("logs.amazonaws.com", "FilterLogEvents", true, LogGroup("/ecs/web-frontend"))),
                aws(PROD, 1.0, call("dynamodb.amazonaws.com", "GetItem", true, Table("customers"))),
                agent(3.0),
            ],
            rate: 3.0,
            okta_group_id: gid(6),
            apps: &["AWS IAM Identity Center", "Zendesk", "Slack"],
        },
        Team {
            name: "sales",
            department: "customer",
            permission_set: "ReadOnly",
            accounts: &[],
            k8s_namespace: None,
            habits: vec![agent(1.0)],
            rate: 0.5,
            okta_group_id: gid(7),
            apps: &["Salesforce", "Slack", "Gong"],
        },
        Team {
            name: "ml",
            department: "data",
            permission_set: "MLEngineer",
            accounts: &[DATA],
            k8s_namespace: None,
            habits: vec![
                aws(DATA, 6.0, call("sagemaker.amazonaws.com", "DescribeTrainingJob", true, NoResource)),
                aws(DATA, 4.0, call("sagemaker.amazonaws.com", "ListModels", true, NoResource)),
                aws(DATA, 4.0, call("s3.amazonaws.com", "GetObject", true, Object(BUCKET_LAKE))),
                aws(DATA, 2.0, call("sagemaker.amazonaws.com", "CreateTrainingJob", false, NoResource)),
                agent(4.0),
            ],
            rate: 10.0,
            okta_group_id: gid(8),
            apps: &["AWS IAM Identity Center", "Slack", "GitHub"],
        },
    ]
}

fn services(shape: Shape) -> Vec<Service> {
    let mut all = core_services();
    all.extend(crate::workload::catalogue(shape));
    all
}

fn core_services() -> Vec<Service> {
    use Target::*;
    let h = |weight: f64, account: usize, c: Call| Habit { weight, act: Act::Aws { account, call: c } };
    let k =
        |weight: f64, verb: &'static str, resource: &'static str| Habit { weight, act: Act::K8s { verb, resource } };
    vec![
        Service {
            name: "payments-api",
            team: TEAM_PAYMENTS,
            account: PROD,
            runtime: Runtime::Eks,
            role: "payments-api-irsa",
            instances: 3,
            rate: 90.0,
            habits: vec![
                h(10.0, PROD, call("dynamodb.amazonaws.com", "PutItem", false, Table("payments-ledger"))),
                h(10.0, PROD, call("dynamodb.amazonaws.com", "GetItem", true, Table("payments-ledger"))),
                h(6.0, PROD, call("kms.amazonaws.com", "Decrypt", true, Key)),
                h(4.0, PROD, call("sqs.amazonaws.com", "SendMessage", false, Queue("payments-events"))),
                h(1.0, PROD, call("secretsmanager.amazonaws.com", "GetSecretValue", true, Secret(SECRET_PAYMENTS_DB))),
                k(2.0, "get", "configmaps"),
                k(2.0, "update", "leases"),
            ],
            window: None,
            k8s_sa: Some(("payments", "payments-api")),
            ua: "aws-sdk-go-v2/1.30.3 os/linux lang/go#1.22.5 md/GOOS#linux md/GOARCH#amd64",
            init: vec![call("secretsmanager.amazonaws.com", "GetSecretValue", true, Secret(SECRET_PAYMENTS_DB))],
            deploys: 0.4,
            launched: None,
        },
        Service {
            name: "web-frontend",
            team: TEAM_WEB,
            account: PROD,
            runtime: Runtime::Ecs,
            role: "web-frontend-task",
            instances: 2,
            rate: 40.0,
            habits: vec![
                h(10.0, PROD, call("s3.amazonaws.com", "GetObject", true, Object(BUCKET_WEB))),
                h(2.0, PROD, call("ssm.amazonaws.com", "GetParameter", true, Parameter("/web/feature-flags"))),
            ],
            window: None,
            k8s_sa: None,
            ua: "aws-sdk-js/3.614.0 ua/2.0 os/linux#5.10 lang/js md/nodejs#20.15.1 exec-env/AWS_ECS_FARGATE",
            init: vec![call("ssm.amazonaws.com", "GetParameter", true, Parameter("/web/feature-flags"))],
            deploys: 0.5,
            launched: None,
        },
        Service {
            name: "ingest-lambda",
            team: TEAM_ANALYTICS,
            account: DATA,
            runtime: Runtime::Lambda,
            role: "ingest-lambda-role",
            instances: 3,
            rate: 60.0,
            habits: vec![
                h(10.0, DATA, call("s3.amazonaws.com", "GetObject", true, Object(BUCKET_RAW))),
                h(10.0, DATA, call("s3.amazonaws.com", "PutObject", false, Object(BUCKET_LAKE))),
                h(2.0, DATA, call("glue.amazonaws.com", "GetTable", true, Table("lake.orders"))),
            ],
            window: None,
            k8s_sa: None,
            ua: "Boto3/1.34.131 md/Botocore#1.34.131 ua/2.0 os/linux#5.10 lang/python#3.12.4 exec-env/AWS_Lambda_python3.12",
            init: vec![call("ssm.amazonaws.com", "GetParameter", true, Parameter("/data/ingest/config"))],
            deploys: 0.2,
            launched: None,
        },
        Service {
            name: "etl-batch",
            team: TEAM_ANALYTICS,
            account: DATA,
            runtime: Runtime::Ec2,
            role: "etl-batch-role",
            instances: 2,
            rate: 120.0,
            habits: vec![
                h(6.0, DATA, call("athena.amazonaws.com", "StartQueryExecution", false, NoResource)),
                h(6.0, DATA, call("athena.amazonaws.com", "GetQueryResults", true, NoResource)),
                h(8.0, DATA, call("s3.amazonaws.com", "GetObject", true, Object(BUCKET_LAKE))),
                h(4.0, DATA, call("s3.amazonaws.com", "PutObject", false, Object(BUCKET_LAKE))),
                h(2.0, DATA, call("secretsmanager.amazonaws.com", "GetSecretValue", true, Secret(SECRET_WAREHOUSE))),
            ],
            window: Some((1, 5)),
            k8s_sa: None,
            ua: "aws-cli/2.17.5 md/awscrt#0.20.11 ua/2.0 os/linux#6.1.94 md/arch#x86_64 lang/python#3.11.9",
            init: vec![],
            deploys: 0.0,
            launched: None,
        },
        Service {
            name: "ci-deployer",
            team: TEAM_PLATFORM,
            account: PROD,
            runtime: Runtime::Ecs,
            role: "ci-deployer",
            instances: 1,
            rate: 12.0,
            habits: vec![
                h(4.0, PROD, call("ecr.amazonaws.com", "PutImage", false, NoResource)),
                h(3.0, PROD, call("ecs.amazonaws.com", "UpdateService", false, NoResource)),
                h(3.0, PROD, call("s3.amazonaws.com", "PutObject", false, Object(BUCKET_ARTIFACTS))),
                h(2.0, PROD, call("ecs.amazonaws.com", "DescribeServices", true, NoResource)),
                k(3.0, "patch", "deployments"),
            ],
            window: Some((7, 19)),
            k8s_sa: Some(("platform", "argo-deployer")),
            ua: "aws-cli/2.17.5 md/awscrt#0.20.11 ua/2.0 os/linux#6.1.94 md/arch#x86_64 lang/python#3.11.9 exec-env/github-actions",
            init: vec![],
            deploys: 0.0,
            launched: None,
        },
        Service {
            name: "aws-mcp",
            team: TEAM_PLATFORM,
            account: PROD,
            runtime: Runtime::Ecs,
            role: "aws-mcp-task",
            instances: 1,
            rate: 6.0,
            habits: vec![h(1.0, PROD, call("ecr.amazonaws.com", "GetAuthorizationToken", true, NoResource))],
            window: None,
            k8s_sa: None,
            ua: "aws-mcp/1.4.2 aws-sdk-python/1.34.131",
            init: vec![],
            deploys: 0.1,
            launched: None,
        },
        Service {
            name: "datadog",
            team: TEAM_PLATFORM,
            account: PROD,
            runtime: Runtime::Ecs,
            role: "DatadogIntegrationRole",
            instances: 1,
            rate: 30.0,
            habits: vec![
                h(10.0, PROD, call("monitoring.amazonaws.com", "GetMetricData", true, NoResource)),
                h(3.0, PROD, call("ec2.amazonaws.com", "DescribeInstances", true, NoResource)),
                h(2.0, PROD, call("tag.amazonaws.com", "GetResources", true, NoResource)),
            ],
            window: None,
            k8s_sa: None,
            ua: "datadog-aws-crawler/1.0 aws-sdk-go/1.44.0",
            init: vec![],
            deploys: 0.0,
            launched: None,
        },
    ]
}

fn tools() -> Vec<Tool> {
    use Target::*;
    let aws = |name, c: Call, description| Tool { name, server: "aws-mcp", reach: Reach::Aws { call: c }, description };
    vec![
        Tool {
            name: "search_docs",
            server: "docs-mcp",
            reach: Reach::Saas { host: "wiki.acme.example" },
            description: "Search the internal wiki",
        },
        Tool {
            name: "read_ticket",
            server: "docs-mcp",
            reach: Reach::Saas { host: "acme.zendesk.com" },
            description: "Read a support ticket",
        },
        Tool {
            name: "fetch_url",
            server: "web-mcp",
            reach: Reach::Web { post: false },
            description: "Fetch a web page",
        },
        Tool {
            name: "http_post",
            server: "web-mcp",
            reach: Reach::Web { post: true },
            description: "POST to a webhook",
        },
        Tool {
            name: "search_code",
            server: "github-mcp",
            reach: Reach::Saas { host: "api.github.com" },
            description: "Search code",
        },
        Tool {
            name: "read_file",
            server: "github-mcp",
            reach: Reach::Saas { host: "api.github.com" },
            description: "Read a file from a repository",
        },
        Tool {
            name: "create_pull_request",
            server: "github-mcp",
            reach: Reach::Saas { host: "api.github.com" },
            description: "Open a pull request",
        },
        aws("describe_instances", call("ec2.amazonaws.com", "DescribeInstances", true, Instance), "List EC2 instances"),
        aws(
            "get_metrics",
            call("monitoring.amazonaws.com", "GetMetricData", true, NoResource),
            "Read CloudWatch metrics",
        ),
        aws(
            "query_logs",
            call("logs.amazonaws.com", "FilterLogEvents", true, LogGroup("/ecs/payments-api")),
            "Search logs",
        ),
        aws(
            "get_secret",
            call("secretsmanager.amazonaws.com", "GetSecretValue", true, Secret(SECRET_PAYMENTS_DB)),
            "Read a secret",
        ),
        aws(
            "athena_query",
            call("athena.amazonaws.com", "StartQueryExecution", false, NoResource),
            "Run an Athena query",
        ),
        aws("read_object", call("s3.amazonaws.com", "GetObject", true, Object(BUCKET_LAKE)), "Read an S3 object"),
        Tool {
            name: "k8s_get_pods",
            server: "k8s-mcp",
            reach: Reach::K8s { verb: "list", resource: "pods" },
            description: "List pods",
        },
        Tool {
            name: "k8s_get_logs",
            server: "k8s-mcp",
            reach: Reach::K8s { verb: "get", resource: "pods/log" },
            description: "Read pod logs",
        },
        // Registered mid-run (evolution and `agent-tool-rollout`).
        Tool {
            name: "semantic_code_search",
            server: "github-mcp",
            reach: Reach::Saas { host: "search.acme.example" },
            description: "Search code by meaning",
        },
        aws("cost_report", call("ce.amazonaws.com", "GetCostAndUsage", true, NoResource), "Summarise cloud cost"),
        aws(
            "read_customer",
            call("dynamodb.amazonaws.com", "GetItem", true, Table("customers")),
            "Look up a customer record",
        ),
    ]
}

pub const TOOL_SEARCH_DOCS: usize = 0;
pub const TOOL_READ_TICKET: usize = 1;
pub const TOOL_FETCH_URL: usize = 2;
pub const TOOL_HTTP_POST: usize = 3;
pub const TOOL_SEARCH_CODE: usize = 4;
pub const TOOL_READ_FILE: usize = 5;
pub const TOOL_CREATE_PR: usize = 6;
pub const TOOL_DESCRIBE_INSTANCES: usize = 7;
pub const TOOL_GET_METRICS: usize = 8;
pub const TOOL_QUERY_LOGS: usize = 9;
pub const TOOL_GET_SECRET: usize = 10;
pub const TOOL_ATHENA: usize = 11;
pub const TOOL_READ_OBJECT: usize = 12;
pub const TOOL_K8S_PODS: usize = 13;
pub const TOOL_K8S_LOGS: usize = 14;
pub const TOOL_SEMANTIC_SEARCH: usize = 15;
pub const TOOL_COST_REPORT: usize = 16;
pub const TOOL_READ_CUSTOMER: usize = 17;

impl AgentKind {
    fn starting_tools(self) -> Vec<usize> {
        match self {
            AgentKind::Assistant => {
                vec![TOOL_SEARCH_DOCS, TOOL_READ_TICKET, TOOL_FETCH_URL, TOOL_HTTP_POST, TOOL_GET_METRICS]
            }
            AgentKind::Coding => vec![TOOL_SEARCH_CODE, TOOL_READ_FILE, TOOL_CREATE_PR, TOOL_DESCRIBE_INSTANCES],
            AgentKind::Ops => {
                vec![TOOL_DESCRIBE_INSTANCES, TOOL_GET_METRICS, TOOL_QUERY_LOGS, TOOL_K8S_PODS, TOOL_K8S_LOGS]
            }
            AgentKind::Data => vec![TOOL_ATHENA, TOOL_READ_OBJECT, TOOL_SEARCH_DOCS],
        }
    }
}

/// Where people in each time zone live, as the identity provider geolocates them.
pub fn place_of_tz(tz: i64) -> Place {
    match tz {
        -8 => Place { city: "San Francisco", state: "California", country: "United States" },
        -5 => Place { city: "New York", state: "New York", country: "United States" },
        0 => Place { city: "London", state: "England", country: "United Kingdom" },
        1 => Place { city: "Berlin", state: "Berlin", country: "Germany" },
        _ => Place { city: "Helsinki", state: "Uusimaa", country: "Finland" },
    }
}

const LAPTOP_UA: [&str; 3] = [
    "aws-cli/2.17.5 md/awscrt#0.20.11 ua/2.0 os/macos#23.5.0 md/arch#arm64 lang/python#3.11.9 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe prompt/off",
    "aws-cli/2.15.30 Python/3.11.8 Darwin/23.4.0 exe/x86_64 prompt/off",
    "aws-cli/2.16.1 md/awscrt#0.20.9 ua/2.0 os/linux#6.5.0 md/arch#x86_64 lang/python#3.11.8",
];

/// One person, drawn from their own stream.
fn person(
    seed: u64,
    i: usize,
    tag: &str,
    share: &[f64],
    days: u32,
    used: &mut std::collections::HashSet<(&'static str, &'static str)>,
) -> Person {
    let mut p = rng::rng(seed, tag, &[i as u64]);
    let team = rng::weighted(&mut p, share.iter().copied());
    let (first, last) = loop {
        let f = FIRST[p.usize(..FIRST.len())];
        let l = LAST[p.usize(..LAST.len())];
        if used.insert((f, l)) || used.len() >= FIRST.len() * LAST.len() {
            break (f, l);
        }
    };
    let suffix = if used.len() >= FIRST.len() * LAST.len() { format!("{i}") } else { String::new() };
    let email = format!("{first}.{last}{suffix}@acme.example");
    // A few engineers still have long-lived IAM users with keys.
    let engineer = matches!(team, TEAM_PLATFORM | TEAM_PAYMENTS | TEAM_WEB);
    let iam_user = (engineer && p.f64() < 0.25).then(|| IamUser {
        name: format!("{first}.{last}{suffix}"),
        access_key: format!("AKIA{}", rng::base32(&mut p, 16)),
        account: if team == TEAM_PLATFORM { PROD } else { DEV },
    });
    let tz = [-8i64, -5, -5, 0, 1, 1, 2][p.usize(..7)];
    let holiday = (days >= 10 && p.f64() < 0.15).then(|| {
        let from = p.u32(2..days.saturating_sub(5).max(3));
        (from, from + p.u32(3..8))
    });
    Person {
        first,
        last,
        email,
        okta_id: format!("00u{}", rng::base62(&mut p, 17)),
        team,
        title: ["engineer", "senior engineer", "analyst", "manager", "specialist"][p.usize(..5)],
        tz,
        start_hour: p.i64(7..11),
        hours: p.i64(7..10),
        iam_user,
        home_ip: format!("203.0.113.{}", p.u8(2..250)),
        home: place_of_tz(tz),
        laptop_ua: LAPTOP_UA[p.usize(..3)].to_string(),
        holiday,
        rate_factor: 0.6 + p.f64() * 0.8,
        typo_prone: p.f64() < 0.3,
        created: None,
    }
}

impl Org {
    pub fn build(config: &Config) -> Org {
        let seed = config.seed;
        let shape = config.shape;
        let mut r = rng::rng(seed, "org", &[]);
        let account_id = |r: &mut fastrand::Rng| format!("{:012}", r.u64(100_000_000_000..1_000_000_000_000));
        let accounts = vec![
            Account { id: account_id(&mut r), name: "acme-prod", region: "us-east-1" },
            Account { id: account_id(&mut r), name: "acme-dev", region: "us-east-1" },
            Account { id: account_id(&mut r), name: "acme-data", region: "eu-west-1" },
        ];
        let teams = teams(seed);
        let days = config.days;

        let mut people = Vec::with_capacity(config.humans);
        let mut used = std::collections::HashSet::new();
        for i in 0..config.humans {
            people.push(person(seed, i, "person", shape.team_share(), days, &mut used));
        }
        // A new hire joins an engineering team with cloud access; they have
        // no legacy key, no holiday, and nothing before their start.
        let mut hires = Vec::new();
        if config.scenarios.contains(&crate::ScenarioKind::NewHire) {
            let mut hire = person(seed, config.humans, "hire", &[0.4, 0.35, 0.25], days, &mut used);
            hire.iam_user = None;
            hire.holiday = None;
            hire.title = "engineer";
            hires.push(hire);
        }

        let mut agents = Vec::with_capacity(config.agents);
        let kinds = [AgentKind::Assistant, AgentKind::Coding, AgentKind::Ops, AgentKind::Data];
        for i in 0..config.agents {
            let mut a = rng::rng(seed, "agent", &[i as u64]);
            let kind = kinds[i % kinds.len()];
            let home_team = match kind {
                AgentKind::Assistant => [TEAM_SUPPORT, TEAM_PAYMENTS, TEAM_WEB, TEAM_FINOPS][a.usize(..4)],
                AgentKind::Coding => [TEAM_PAYMENTS, TEAM_WEB, TEAM_PLATFORM][a.usize(..3)],
                AgentKind::Ops => TEAM_PLATFORM,
                AgentKind::Data => TEAM_ANALYTICS,
            };
            let members: Vec<usize> =
                people.iter().enumerate().filter(|(_, p)| p.team == home_team).map(|(i, _)| i).collect();
            let pool = if members.is_empty() { (0..people.len()).collect() } else { members };
            if pool.is_empty() {
                break;
            }
            let owner = pool[a.usize(..pool.len())];
            // Coding agents are personal; the others serve their team.
            let users = match kind {
                AgentKind::Coding => vec![owner],
                _ => pool
                    .iter()
                    .copied()
                    .filter(|_| a.f64() < 0.8)
                    .chain([owner])
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect(),
            };
            agents.push(Agent {
                id: format!("agt-{}", rng::hex(&mut a, 8)),
                name: format!("{}-{}-{}", teams[home_team].name, kind.as_str(), i),
                kind,
                owner,
                users,
                tools: kind.starting_tools(),
                model: ["claude-sonnet-4", "gpt-4o", "gemini-2.0-pro"][a.usize(..3)],
                app: match kind {
                    AgentKind::Assistant => "assistant-gateway",
                    AgentKind::Coding => "code-agent",
                    AgentKind::Ops => "ops-copilot",
                    AgentKind::Data => "data-agent",
                },
            });
        }

        let mut b = rng::rng(seed, "buckets", &[]);
        let suffix = rng::hex(&mut b, 6);
        let bucket = |name: &str, account: usize, sensitive: bool| Bucket {
            name: format!("acme-{name}-{suffix}"),
            account,
            sensitive,
        };
        let mut buckets = vec![
            bucket("build-artifacts", PROD, false),
            bucket("web-assets", PROD, false),
            bucket("data-lake", DATA, true),
            bucket("raw-events", DATA, false),
            bucket("customer-exports", PROD, true),
            bucket("finance-reports", PROD, true),
            bucket("events-v2", DATA, false),
            bucket("terraform-state", PROD, true),
        ];
        buckets.push(Bucket {
            name: format!("aws-athena-query-results-{}-{}", accounts[DATA].id, accounts[DATA].region),
            account: DATA,
            sensitive: false,
        });
        buckets.push(bucket("cloudtrail-logs", PROD, true));
        buckets.push(Bucket {
            name: format!("aws-sam-cli-managed-default-samclisourcebucket-{}", rng::base32(&mut b, 12).to_lowercase()),
            account: PROD,
            sensitive: false,
        });
        let secret = |name: &'static str, account: usize, r: &mut fastrand::Rng| Secret {
            name,
            account,
            arn: format!(
                "arn:aws:secretsmanager:{}:{}:secret:{name}-{}",
                accounts[account].region,
                accounts[account].id,
                rng::base62(r, 6)
            ),
        };
        let secrets = vec![
            secret("prod/payments/db", PROD, &mut b),
            secret("prod/payments/stripe-api-key", PROD, &mut b),
            secret("data/warehouse/password", DATA, &mut b),
            secret("prod/orders/db", PROD, &mut b),
            secret("prod/notify/sendgrid-api-key", PROD, &mut b),
            secret("data/partner-feed/api-key", DATA, &mut b),
        ];

        Org {
            shape,
            domain: "acme.example",
            accounts,
            teams,
            people,
            hires,
            services: services(shape),
            agents,
            tools: tools(),
            buckets,
            secrets,
            cluster: "prod-eks",
            vendor_account: "464622532012",
            office_prefix: "198.51.100.",
        }
    }

    /// Person `p`: staff first, then hires.
    pub fn person(&self, p: usize) -> &Person {
        match self.people.get(p) {
            Some(person) => person,
            None => &self.hires[p - self.people.len()],
        }
    }

    /// Makes sure at least `wanted` people outside `except` have a
    /// long-lived IAM user with a key, issuing them to further engineers
    /// (then anyone on staff) in people order: replayed attacks each need a keyed person of their
    /// own, or two attacks fold into one identity's incident.
    pub fn issue_keys(&mut self, wanted: usize, seed: u64, except: &std::collections::HashSet<usize>) {
        let mut keyed =
            self.people.iter().enumerate().filter(|(i, p)| p.iam_user.is_some() && !except.contains(i)).count();
        let engineer = |p: &Person| matches!(p.team, TEAM_PLATFORM | TEAM_PAYMENTS | TEAM_WEB);
        for pass in [true, false] {
            for (i, p) in self.people.iter_mut().enumerate() {
                if keyed >= wanted {
                    return;
                }
                if p.iam_user.is_some() || engineer(p) != pass || except.contains(&i) {
                    continue;
                }
                let mut r = rng::rng(seed, "issued-key", &[i as u64]);
                p.iam_user = Some(IamUser {
                    name: p.email.split('@').next().unwrap_or(p.first).to_string(),
                    access_key: format!("AKIA{}", rng::base32(&mut r, 16)),
                    account: if p.team == TEAM_PLATFORM { PROD } else { DEV },
                });
                keyed += 1;
            }
        }
    }

    /// Everyone who works here at some point: staff and hires.
    pub fn headcount(&self) -> usize {
        self.people.len() + self.hires.len()
    }

    /// Every AWS call the org's people and workloads make in `account`
    /// (habits and start-up reads) by `t`, in a fixed order.
    fn calls_in(&self, account: usize, t: i64) -> Vec<Call> {
        let mut out = Vec::new();
        let running = |s: &&Service| s.launched.is_none_or(|l| t >= l);
        let habits = self
            .teams
            .iter()
            .flat_map(|t| t.habits.iter())
            .chain(self.services.iter().filter(running).flat_map(|s| s.habits.iter()));
        for h in habits {
            if let Act::Aws { account: a, call } = h.act
                && a == account
            {
                out.push(call);
            }
        }
        for s in self.services.iter().filter(running).filter(|s| s.account == account) {
            out.extend(s.init.iter().copied());
        }
        out
    }

    fn names_in(&self, account: usize, t: i64, pick: impl Fn(Target) -> Option<&'static str>) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::new();
        for c in self.calls_in(account, t) {
            if let Some(n) = pick(c.target)
                && !out.contains(&n)
            {
                out.push(n);
            }
        }
        out
    }

    /// The DynamoDB tables used in `account` at `t` (Glue tables, with a
    /// dot, are not).
    pub fn tables(&self, account: usize, t: i64) -> Vec<&'static str> {
        self.names_in(account, t, |t| match t {
            Target::Table(n) if !n.contains('.') && !self.glue_only(n) => Some(n),
            _ => None,
        })
    }

    fn glue_only(&self, name: &str) -> bool {
        name == "lake"
    }

    /// The SQS queues used in `account` at `t`.
    pub fn queues(&self, account: usize, t: i64) -> Vec<&'static str> {
        self.names_in(account, t, |t| match t {
            Target::Queue(n) => Some(n),
            _ => None,
        })
    }

    /// The SSM parameters read in `account` at `t`.
    pub fn parameters(&self, account: usize, t: i64) -> Vec<&'static str> {
        self.names_in(account, t, |t| match t {
            Target::Parameter(n) => Some(n),
            _ => None,
        })
    }

    /// The Lambda functions that run in `account` at `t`.
    pub fn functions(&self, account: usize, t: i64) -> Vec<&'static str> {
        self.services
            .iter()
            .filter(|s| s.account == account && s.runtime == Runtime::Lambda && s.launched.is_none_or(|l| t >= l))
            .map(|s| s.name)
            .collect()
    }

    pub fn account(&self, i: usize) -> &Account {
        &self.accounts[i]
    }

    /// The IAM Identity Center role of a permission set in an account.
    pub fn sso_role(&self, team: usize, account: usize) -> String {
        let t = &self.teams[team];
        format!(
            "arn:aws:iam::{}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_{}_{}",
            self.accounts[account].id,
            t.permission_set,
            self.sso_suffix(team)
        )
    }

    pub fn sso_role_name(&self, team: usize) -> String {
        format!("AWSReservedSSO_{}_{}", self.teams[team].permission_set, self.sso_suffix(team))
    }

    fn sso_suffix(&self, team: usize) -> String {
        let mut h: u64 = 0x811c_9dc5;
        for b in self.teams[team].permission_set.bytes().chain(self.accounts[0].id.bytes()) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0193);
        }
        format!("{:016x}", h)
    }

    pub fn role_arn(&self, account: usize, role: &str) -> String {
        format!("arn:aws:iam::{}:role/{role}", self.accounts[account].id, role = role)
    }

    /// Whether a person is at work during the hour starting at `t` (Unix
    /// seconds) in time zone `tz`, on day `day_index` (from the start).
    pub fn working(&self, person: usize, t: i64, tz: i64, day_index: u32) -> bool {
        let p = self.person(person);
        let local = t + tz * 3600;
        // 1970-01-01 was a Thursday: Monday = 0.
        let weekday = (local.div_euclid(DAY) + 3).rem_euclid(7);
        if weekday >= 5 {
            return false;
        }
        if let Some((a, b)) = p.holiday
            && (a..=b).contains(&day_index)
        {
            return false;
        }
        let local_hour = (local / 3600).rem_euclid(24);
        local_hour >= p.start_hour && local_hour < p.start_hour + p.hours
    }
}

/// Seconds in a day, re-exported for callers that think in days.
pub const SECONDS_PER_DAY: i64 = DAY;
