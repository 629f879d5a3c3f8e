//! Infrastructure as code: Terraform plans and applies.
//!
//! A run refreshes every resource its workspace manages: hundreds of
//! `Describe*`/`Get*`/`List*` calls in about a minute, with the state read
//! from S3 and locked in DynamoDB. Every run of a workspace makes the same
//! reads, gets the same few `AccessDenied` (data sources reading what
//! another team owns) and the provider's usual `NoSuch*` /
//! `ResourceNotFoundException` probes (no website, CORS, replication… on a
//! bucket; no resource policy on a function).
//!
//! Runs come from GitHub Actions through OIDC (`AssumeRoleWithWebIdentity`
//! from a hosted runner, a new address each time): plans for pull requests
//! in working hours, a nightly drift check of every workspace (now and then
//! fixing drift), applies after merges; and from platform engineers'
//! laptops with their Identity Center sessions.

use fastrand::Rng;
use serde_json::{Value, json};

use crate::HOUR;
use crate::org::*;
use crate::record::*;
use crate::rng;
use crate::world::{Hour, Simulation};

/// The repository the infrastructure lives in.
pub const REPO: &str = "acme/infrastructure";
/// The plan role (read-only) and the apply role, in every account.
pub const PLAN_ROLE: &str = "github-actions-plan";
pub const APPLY_ROLE: &str = "github-actions-terraform";
/// The state lock table.
pub const LOCK_TABLE: &str = "terraform-locks";

/// First octets of GitHub-hosted runners' addresses (Azure).
const RUNNER_OCTETS: [u8; 11] = [4, 13, 20, 23, 40, 51, 52, 65, 104, 137, 172];

/// A hosted runner's public address: a different /24 almost every job.
pub fn runner_address(r: &mut Rng) -> String {
    format!("{}.{}.{}.{}", RUNNER_OCTETS[r.usize(..RUNNER_OCTETS.len())], r.u8(..), r.u8(..), r.u8(1..255))
}

fn terraform_ua(api: &str, laptop: bool) -> String {
    let (os, goos, arch) = if laptop { ("macos", "darwin", "arm64") } else { ("linux", "linux", "amd64") };
    format!(
        "APN/1.0 HashiCorp/1.0 Terraform/1.9.5 (+https://www.terraform.io) terraform-provider-aws/5.67.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.30.5 ua/2.0 os/{os} lang/go#1.22.6 md/GOOS#{goos} md/GOARCH#{arch} api/{api}#1.0.0"
    )
}

/// An error a call always gets: code and message.
type Failure = (&'static str, &'static str);

/// One API call a run makes: service, operation, request, the resource's
/// ARN (for CloudTrail's `resources`), and the error it always gets.
#[derive(Clone, Debug)]
pub struct Read {
    pub source: &'static str,
    pub name: &'static str,
    pub request: Value,
    pub arn: Option<(&'static str, String)>,
    pub error: Option<(&'static str, &'static str)>,
}

fn read(source: &'static str, name: &'static str, request: Value) -> Read {
    Read { source, name, request, arn: None, error: None }
}

/// A Terraform workspace: what it manages and what it reads but does not
/// manage, fixed for the run.
pub struct Workspace {
    pub name: String,
    pub account: usize,
    pub reads: Vec<Read>,
    pub writes: Vec<Read>,
}

/// An id in AWS's style (`vpc-0…`, `sg-0…`), fixed by the workspace stream.
fn aws_id(r: &mut Rng, prefix: &str) -> String {
    format!("{prefix}-0{}", rng::hex(r, 16))
}

struct Builder<'a> {
    sim: &'a Simulation,
    account: usize,
    r: Rng,
    reads: Vec<Read>,
    writes: Vec<Read>,
}

impl Builder<'_> {
    fn acct(&self) -> String {
        self.sim.org.account(self.account).id.clone()
    }

    fn region(&self) -> &'static str {
        self.sim.org.account(self.account).region
    }

    fn push(&mut self, source: &'static str, name: &'static str, request: Value) -> &mut Read {
        self.reads.push(read(source, name, request));
        self.reads.last_mut().expect("just pushed")
    }

    fn network(&mut self) {
        let vpc = aws_id(&mut self.r, "vpc");
        self.push("ec2.amazonaws.com", "DescribeAvailabilityZones", json!({"filterSet": {}}));
        self.push("ec2.amazonaws.com", "DescribeVpcs", json!({"vpcSet": {"items": [{"vpcId": vpc}]}}));
        for attribute in ["enableDnsSupport", "enableDnsHostnames"] {
            self.push("ec2.amazonaws.com", "DescribeVpcAttribute", json!({"vpcId": vpc, "attribute": attribute}));
        }
        for _ in 0..self.r.usize(12..16) {
            let id = aws_id(&mut self.r, "subnet");
            self.push("ec2.amazonaws.com", "DescribeSubnets", json!({"subnetSet": {"items": [{"subnetId": id}]}}));
        }
        for _ in 0..self.r.usize(20..30) {
            let id = aws_id(&mut self.r, "sg");
            self.push(
                "ec2.amazonaws.com",
                "DescribeSecurityGroups",
                json!({"securityGroupIdSet": {"items": [{"groupId": id}]}}),
            );
            self.push(
                "ec2.amazonaws.com",
                "DescribeSecurityGroupRules",
                json!({"DescribeSecurityGroupRulesRequest": {"Filter": {"Name": "group-id", "Value": id}}}),
            );
        }
        for _ in 0..self.r.usize(4..8) {
            let id = aws_id(&mut self.r, "rtb");
            self.push(
                "ec2.amazonaws.com",
                "DescribeRouteTables",
                json!({"routeTableIdSet": {"items": [{"routeTableId": id}]}}),
            );
        }
        for _ in 0..3 {
            let id = aws_id(&mut self.r, "nat");
            self.push("ec2.amazonaws.com", "DescribeNatGateways", json!({"NatGatewayId": id}));
            let eip = aws_id(&mut self.r, "eipalloc");
            self.push(
                "ec2.amazonaws.com",
                "DescribeAddresses",
                json!({"allocationIdsSet": {"items": [{"allocationId": eip}]}}),
            );
        }
        let igw = aws_id(&mut self.r, "igw");
        self.push(
            "ec2.amazonaws.com",
            "DescribeInternetGateways",
            json!({"internetGatewayIdSet": {"items": [{"internetGatewayId": igw}]}}),
        );
        for _ in 0..self.r.usize(4..8) {
            let id = aws_id(&mut self.r, "vpce");
            self.push("ec2.amazonaws.com", "DescribeVpcEndpoints", json!({"VpcEndpointId": {"item": id}}));
        }
        self.push(
            "ec2.amazonaws.com",
            "DescribeNetworkAcls",
            json!({"filterSet": {"items": [{"name": "vpc-id", "valueSet": {"items": [{"value": vpc}]}}]}}),
        );
        self.push(
            "ec2.amazonaws.com",
            "DescribeFlowLogs",
            json!({"filterSet": {"items": [{"name": "resource-id", "valueSet": {"items": [{"value": vpc}]}}]}}),
        );
        self.log_group(&format!("/vpc/{vpc}/flow-logs"));
        self.role("vpc-flow-logs", 1);
        self.key();
        let dhcp = aws_id(&mut self.r, "dopt");
        self.push(
            "ec2.amazonaws.com",
            "DescribeDhcpOptions",
            json!({"dhcpOptionsSet": {"items": [{"dhcpOptionsId": dhcp}]}}),
        );
        self.push("ec2.amazonaws.com", "DescribeVpcPeeringConnections", json!({"filterSet": {}}));
        let zone = format!("Z0{}", rng::base32(&mut self.r, 19));
        for name in ["GetHostedZone", "ListTagsForResource", "GetDNSSEC"] {
            self.push("route53.amazonaws.com", name, json!({"hostedZoneId": zone}));
        }
        for _ in 0..self.r.usize(8..14) {
            self.push(
                "route53.amazonaws.com",
                "ListResourceRecordSets",
                json!({"hostedZoneId": zone, "maxItems": "300"}),
            );
        }
        self.writes.push(read(
            "ec2.amazonaws.com",
            "CreateTags",
            json!({"resourcesSet": {"items": [{"resourceId": vpc}]}, "tagSet": {"items": [{"key": "managed-by", "value": "terraform"}]}}),
        ));
    }

    fn bucket(&mut self, b: usize) {
        let bucket = &self.sim.org.buckets[b];
        let name = bucket.name.clone();
        let arn = format!("arn:aws:s3:::{name}");
        let web = b == BUCKET_WEB;
        // The sub-resources a bucket does not have answer with their own error.
        let probes: [(&'static str, &'static str, Option<Failure>); 14] = [
            ("HeadBucket", "", None),
            ("GetBucketAcl", "acl", None),
            (
                "GetBucketPolicy",
                "policy",
                (!bucket.sensitive).then_some(("NoSuchBucketPolicy", "The bucket policy does not exist")),
            ),
            (
                "GetBucketCors",
                "cors",
                (!web).then_some(("NoSuchCORSConfiguration", "The CORS configuration does not exist")),
            ),
            (
                "GetBucketWebsite",
                "website",
                (!web).then_some((
                    "NoSuchWebsiteConfiguration",
                    "The specified bucket does not have a website configuration",
                )),
            ),
            ("GetBucketVersioning", "versioning", None),
            ("GetAccelerateConfiguration", "accelerate", None),
            ("GetBucketRequestPayment", "requestPayment", None),
            ("GetBucketLogging", "logging", None),
            (
                "GetBucketLifecycle",
                "lifecycle",
                (!bucket.sensitive)
                    .then_some(("NoSuchLifecycleConfiguration", "The lifecycle configuration does not exist")),
            ),
            (
                "GetBucketReplication",
                "replication",
                Some(("ReplicationConfigurationNotFoundError", "The replication configuration was not found")),
            ),
            ("GetBucketEncryption", "encryption", None),
            (
                "GetBucketObjectLockConfiguration",
                "object-lock",
                Some((
                    "ObjectLockConfigurationNotFoundError",
                    "Object Lock configuration does not exist for this bucket",
                )),
            ),
            (
                "GetBucketTagging",
                "tagging",
                b.is_multiple_of(3).then_some(("NoSuchTagSet", "The TagSet does not exist")),
            ),
        ];
        for (op, sub, error) in probes {
            let mut request = json!({"bucketName": name, "Host": format!("{name}.s3.amazonaws.com")});
            if !sub.is_empty() {
                request[sub] = json!("");
            }
            let r = self.push("s3.amazonaws.com", op, request);
            r.arn = Some(("AWS::S3::Bucket", arn.clone()));
            r.error = error;
        }
        self.writes.push(Read {
            arn: Some(("AWS::S3::Bucket", arn)),
            ..read(
                "s3.amazonaws.com",
                "PutBucketTagging",
                json!({"bucketName": name, "Host": format!("{name}.s3.amazonaws.com"), "tagging": ""}),
            )
        });
    }

    fn role(&mut self, role: &str, inline: usize) {
        for name in ["GetRole", "ListRolePolicies", "ListAttachedRolePolicies", "ListInstanceProfilesForRole"] {
            self.push("iam.amazonaws.com", name, json!({"roleName": role}));
        }
        for i in 0..inline {
            self.push(
                "iam.amazonaws.com",
                "GetRolePolicy",
                json!({"roleName": role, "policyName": format!("{role}-{i}")}),
            );
        }
        if inline == 0 {
            self.writes.push(read(
                "iam.amazonaws.com",
                "TagRole",
                json!({"roleName": role, "tags": [{"key": "managed-by", "value": "terraform"}]}),
            ));
        }
    }

    fn function(&mut self, f: &str) {
        let arn = format!("arn:aws:lambda:{}:{}:function:{f}", self.region(), self.acct());
        for name in ["GetFunction20150331v2", "ListVersionsByFunction20150331", "GetFunctionCodeSigningConfig"] {
            self.push("lambda.amazonaws.com", name, json!({"functionName": f})).arn =
                Some(("AWS::Lambda::Function", arn.clone()));
        }
        let p = self.push("lambda.amazonaws.com", "GetPolicy20150331v2", json!({"functionName": f}));
        p.error = Some(("ResourceNotFoundException", "The resource you requested does not exist."));
        let group = format!("/aws/lambda/{f}");
        self.log_group(&group);
        self.writes.push(read(
            "lambda.amazonaws.com",
            "UpdateFunctionConfiguration20150331v2",
            json!({"functionName": f, "environment": {}}),
        ));
    }

    fn log_group(&mut self, group: &str) {
        self.push("logs.amazonaws.com", "DescribeLogGroups", json!({"logGroupNamePrefix": group}));
        self.push(
            "logs.amazonaws.com",
            "ListTagsForResource",
            json!({"resourceArn": format!("arn:aws:logs:{}:{}:log-group:{group}", self.region(), self.acct())}),
        );
    }

    fn table(&mut self, t: &str) {
        let arn = format!("arn:aws:dynamodb:{}:{}:table/{t}", self.region(), self.acct());
        for name in ["DescribeTable", "DescribeContinuousBackups", "DescribeTimeToLive", "ListTagsOfResource"] {
            let request =
                if name == "ListTagsOfResource" { json!({"resourceArn": arn}) } else { json!({"tableName": t}) };
            self.push("dynamodb.amazonaws.com", name, request).arn = Some(("AWS::DynamoDB::Table", arn.clone()));
        }
    }

    fn queue(&mut self, q: &str) {
        let url = format!("https://sqs.{}.amazonaws.com/{}/{q}", self.region(), self.acct());
        self.push("sqs.amazonaws.com", "GetQueueAttributes", json!({"queueUrl": url, "attributeNames": ["All"]}));
        self.push("sqs.amazonaws.com", "ListQueueTags", json!({"queueUrl": url}));
    }

    fn key(&mut self) {
        let arn = self.sim.kms_key(self.account);
        for name in ["DescribeKey", "GetKeyPolicy", "GetKeyRotationStatus", "ListResourceTags", "ListAliases"] {
            self.push("kms.amazonaws.com", name, json!({"keyId": arn})).arn = Some(("AWS::KMS::Key", arn.clone()));
        }
    }

    fn secret(&mut self, s: usize) {
        let arn = self.sim.org.secrets[s].arn.clone();
        for name in ["DescribeSecret", "GetResourcePolicy"] {
            self.push("secretsmanager.amazonaws.com", name, json!({"secretId": arn}));
        }
    }

    fn parameter(&mut self, p: &str) {
        self.push(
            "ssm.amazonaws.com",
            "DescribeParameters",
            json!({"parameterFilters": [{"key": "Name", "option": "Equals", "values": [p]}]}),
        );
        self.push("ssm.amazonaws.com", "GetParameter", json!({"name": p, "withDecryption": false}));
        self.push("ssm.amazonaws.com", "ListTagsForResource", json!({"resourceType": "Parameter", "resourceId": p}));
    }

    fn service(&mut self, svc: &Service) {
        match svc.runtime {
            Runtime::Ecs => {
                self.push("ecs.amazonaws.com", "DescribeServices", json!({"cluster": "prod", "services": [svc.name]}));
                self.push("ecs.amazonaws.com", "DescribeTaskDefinition", json!({"taskDefinition": svc.name}));
                self.push("ecr.amazonaws.com", "DescribeRepositories", json!({"repositoryNames": [svc.name]}));
                self.push("ecr.amazonaws.com", "GetLifecyclePolicy", json!({"repositoryName": svc.name}));
                self.log_group(&format!("/ecs/{}", svc.name));
            }
            Runtime::Eks => {
                self.push("ecr.amazonaws.com", "DescribeRepositories", json!({"repositoryNames": [svc.name]}));
                self.push("ecr.amazonaws.com", "GetLifecyclePolicy", json!({"repositoryName": svc.name}));
            }
            Runtime::Lambda => self.function(svc.name),
            Runtime::Ec2 => {
                self.push("ec2.amazonaws.com", "DescribeLaunchTemplates", json!({"LaunchTemplateName": svc.name}));
                self.push(
                    "autoscaling.amazonaws.com",
                    "DescribeAutoScalingGroups",
                    json!({"autoScalingGroupNames": [svc.name]}),
                );
            }
        }
        self.role(svc.role, 1);
    }

    fn cluster(&mut self) {
        let cluster = self.sim.org.cluster;
        self.push("eks.amazonaws.com", "DescribeCluster", json!({"name": cluster}));
        for ng in ["system", "general", "spot"] {
            self.push("eks.amazonaws.com", "DescribeNodegroup", json!({"name": cluster, "nodegroupName": ng}));
        }
        for addon in ["vpc-cni", "coredns", "kube-proxy", "aws-ebs-csi-driver"] {
            self.push("eks.amazonaws.com", "DescribeAddon", json!({"clusterName": cluster, "addonName": addon}));
        }
        self.push(
            "iam.amazonaws.com",
            "GetOpenIDConnectProvider",
            json!({"openIDConnectProviderArn": crate::render::oidc_provider(&self.acct(), Idp::Eks)}),
        );
        self.writes.push(read(
            "eks.amazonaws.com",
            "UpdateNodegroupConfig",
            json!({"name": cluster, "nodegroupName": "general", "scalingConfig": {"desiredSize": 4}}),
        ));
    }

    /// The data sources that read what this workspace does not manage: the
    /// plan role is denied them every run.
    fn foreign(&mut self, which: usize) {
        let org = &self.sim.org;
        let denials: [Read; 4] = [
            Read {
                arn: Some((
                    "AWS::KMS::Key",
                    format!(
                        "arn:aws:kms:{}:{}:key/{}",
                        self.region(),
                        self.acct(),
                        crate::world::stable_uuid(&format!("{}/secops-audit", self.acct()))
                    ),
                )),
                error: Some((
                    "AccessDeniedException",
                    "User is not authorized to perform: kms:GetKeyPolicy because no resource-based policy allows the kms:GetKeyPolicy action",
                )),
                ..read(
                    "kms.amazonaws.com",
                    "GetKeyPolicy",
                    json!({"keyId": "alias/secops-audit", "policyName": "default"}),
                )
            },
            Read {
                arn: Some(("AWS::S3::Bucket", format!("arn:aws:s3:::{}", org.buckets[BUCKET_FINANCE].name))),
                error: Some(("AccessDenied", "Access Denied")),
                ..read(
                    "s3.amazonaws.com",
                    "GetBucketPolicy",
                    json!({"bucketName": org.buckets[BUCKET_FINANCE].name, "policy": "", "Host": format!("{}.s3.amazonaws.com", org.buckets[BUCKET_FINANCE].name)}),
                )
            },
            Read {
                error: Some((
                    "AccessDeniedException",
                    "User is not authorized to perform: secretsmanager:GetResourcePolicy because an explicit deny in an identity-based policy",
                )),
                ..read(
                    "secretsmanager.amazonaws.com",
                    "GetResourcePolicy",
                    json!({"secretId": org.secrets[SECRET_STRIPE].arn}),
                )
            },
            Read {
                error: Some(("AccessDeniedException", "You don't have permissions to access this resource.")),
                ..read("organizations.amazonaws.com", "DescribeOrganization", Value::Null)
            },
        ];
        let n = 1 + which % 3;
        for i in 0..n {
            self.reads.push(denials[(which + i) % denials.len()].clone());
        }
    }
}

impl Simulation {
    /// The workspaces Terraform manages, in a fixed order (built once, with
    /// the simulation).
    pub(crate) fn build_workspaces(&self) -> Vec<Workspace> {
        let org = &self.org;
        let mut names: Vec<(&str, usize)> = vec![
            ("network-prod", PROD),
            ("network-dev", DEV),
            ("network-data", DATA),
            ("platform", PROD),
            ("payments", PROD),
            ("data", DATA),
        ];
        if org.shape == Shape::CloudNative {
            names.extend([("web", PROD), ("serverless", PROD), ("observability", PROD), ("sandbox", DEV)]);
        }
        let mut out = Vec::new();
        for (i, (name, account)) in names.into_iter().enumerate() {
            let mut b = Builder {
                sim: self,
                account,
                r: rng::rng(self.config.seed, "tf-workspace", &[i as u64]),
                reads: Vec::new(),
                writes: Vec::new(),
            };
            let team_of = |team: usize| {
                org.services.iter().filter(move |s| s.team == team && s.account == account && s.launched.is_none())
            };
            match name {
                n if n.starts_with("network") => b.network(),
                "platform" => {
                    b.cluster();
                    for bk in [BUCKET_ARTIFACTS, BUCKET_TF_STATE, BUCKET_TRAIL, BUCKET_SAM] {
                        b.bucket(bk);
                    }
                    b.key();
                    for svc in team_of(TEAM_PLATFORM) {
                        b.service(svc);
                    }
                    for role in [
                        "mcp-aws-tools",
                        "prod-cross-account-readonly",
                        PLAN_ROLE,
                        APPLY_ROLE,
                        "github-actions-deploy",
                        "cfn-exec-role",
                    ] {
                        b.role(role, 1);
                    }
                    b.table(LOCK_TABLE);
                    b.parameter("/platform/cluster-version");
                }
                "payments" => {
                    for svc in team_of(TEAM_PAYMENTS) {
                        b.service(svc);
                    }
                    for t in ["payments-ledger", "orders", "customers"] {
                        b.table(t);
                    }
                    for q in ["payments-events", "order-events"] {
                        b.queue(q);
                    }
                    for s in [SECRET_PAYMENTS_DB, SECRET_STRIPE, SECRET_ORDERS_DB] {
                        b.secret(s);
                    }
                    b.bucket(BUCKET_CUSTOMER);
                }
                "data" => {
                    for bk in [BUCKET_LAKE, BUCKET_RAW, BUCKET_EVENTS_V2, BUCKET_ATHENA_RESULTS] {
                        b.bucket(bk);
                    }
                    for svc in team_of(TEAM_ANALYTICS) {
                        b.service(svc);
                    }
                    for wg in ["primary", "etl", "analysts"] {
                        b.push("athena.amazonaws.com", "GetWorkGroup", json!({"workGroup": wg}));
                    }
                    for t in ["orders", "events", "customers", "sessions"] {
                        b.push("glue.amazonaws.com", "GetTable", json!({"databaseName": "lake", "name": t}));
                    }
                    b.push("glue.amazonaws.com", "GetDatabase", json!({"name": "lake"}));
                    b.secret(SECRET_WAREHOUSE);
                    b.key();
                }
                "web" => {
                    for svc in team_of(TEAM_WEB) {
                        b.service(svc);
                    }
                    b.bucket(BUCKET_WEB);
                    let distribution = format!("E{}", rng::base32(&mut b.r, 13));
                    b.push("cloudfront.amazonaws.com", "GetDistribution", json!({"id": distribution}));
                }
                "serverless" => {
                    for f in org.functions(PROD, 0) {
                        b.function(f);
                    }
                }
                "observability" => {
                    for svc in org.services.iter().filter(|s| s.account == PROD && s.launched.is_none()) {
                        for alarm in ["errors", "latency"] {
                            b.push(
                                "monitoring.amazonaws.com",
                                "DescribeAlarms",
                                json!({"alarmNames": [format!("{}-{alarm}", svc.name)]}),
                            );
                        }
                        let group = match svc.runtime {
                            Runtime::Lambda => format!("/aws/lambda/{}", svc.name),
                            _ => format!("/ecs/{}", svc.name),
                        };
                        b.log_group(&group);
                        b.push("logs.amazonaws.com", "DescribeMetricFilters", json!({"logGroupName": group}));
                    }
                    for dashboard in ["overview", "payments", "web", "platform", "cost"] {
                        b.push("monitoring.amazonaws.com", "GetDashboard", json!({"dashboardName": dashboard}));
                    }
                    for topic in ["alerts-critical", "alerts-warning", "deploys"] {
                        let arn = format!("arn:aws:sns:{}:{}:{topic}", b.region(), b.acct());
                        for name in ["GetTopicAttributes", "ListTagsForResource", "ListSubscriptionsByTopic"] {
                            b.push("sns.amazonaws.com", name, json!({"topicArn": arn}));
                        }
                    }
                }
                _ => {
                    for t in org.tables(DEV, 0) {
                        b.table(t);
                    }
                    b.role("dev-deploy", 0);
                    b.network();
                }
            }
            b.foreign(i);
            out.push(Workspace { name: name.to_string(), account, reads: b.reads, writes: b.writes });
        }
        out
    }

    /// Terraform's runs from CI in the hour from `start`.
    pub(crate) fn terraform_hour(&self, start: i64, out: &mut Hour) {
        let h = start / HOUR;
        let mut r = rng::rng(self.config.seed, "terraform", &[h as u64]);
        let hour_utc = (self.abs(start) / HOUR).rem_euclid(24);
        let (_, weekday) = self.day_of(start);
        let shape = self.org.shape;
        let workspaces = &self.workspaces;
        let main = format!("repo:{REPO}:ref:refs/heads/main");
        if hour_utc == 2 {
            // The nightly drift check, one job per workspace; now and then
            // drift is found and fixed.
            for (i, ws) in workspaces.iter().enumerate() {
                let at = start + 60 + i as i64 * 240 + r.i64(0..90);
                let fix = r.f64() < 0.05;
                let role = if fix { APPLY_ROLE } else { PLAN_ROLE };
                self.terraform_run(&mut r, ws, at, Runner::Ci { role, subject: &main }, fix, out);
            }
        }
        // Pull requests and merges in working hours (Europe and the US).
        let busy = weekday < 5 && (7..23).contains(&hour_utc);
        if busy {
            let plans = rng::poisson(&mut r, shape.pr_plans_per_hour());
            let pr = format!("repo:{REPO}:pull_request");
            for _ in 0..plans {
                let ws = &workspaces[r.usize(..workspaces.len())];
                let at = start + r.i64(0..HOUR - 5 * 60);
                self.terraform_run(&mut r, ws, at, Runner::Ci { role: PLAN_ROLE, subject: &pr }, false, out);
            }
            let applies = rng::poisson(&mut r, shape.pr_plans_per_hour() * shape.apply_share());
            for _ in 0..applies {
                let ws = &workspaces[r.usize(..workspaces.len())];
                let at = start + r.i64(0..HOUR - 5 * 60);
                self.terraform_run(&mut r, ws, at, Runner::Ci { role: APPLY_ROLE, subject: &main }, true, out);
            }
        }
    }

    /// A platform engineer's `terraform plan` from their laptop, in the hour
    /// from `start`, with their Identity Center session.
    pub(crate) fn terraform_laptop(&self, p: usize, start: i64, out: &mut Hour) {
        let mut r = rng::rng(self.config.seed, "tf-laptop-run", &[p as u64, (start / HOUR) as u64]);
        let ws = &self.workspaces[r.usize(..self.workspaces.len())];
        let at = start + r.i64(SIGN_IN_LAG_MARGIN..HOUR - 5 * 60);
        self.terraform_run(&mut r, ws, at, Runner::Laptop(p), false, out);
    }

    /// One run: credentials, state and lock, the refresh, the writes of an
    /// apply, the unlock.
    fn terraform_run(&self, r: &mut Rng, ws: &Workspace, at: i64, runner: Runner, apply: bool, out: &mut Hour) {
        let account = ws.account;
        let (who, ip, laptop) = match runner {
            Runner::Ci { role, subject } => {
                let ip = runner_address(r);
                let (assume, who) = self.github_session(r, account, role, subject, at, &ip);
                out.push(Record::Trail(assume));
                (who, ip, false)
            }
            Runner::Laptop(p) => {
                let ip = self.office_or_home(r, p, at);
                (self.sso_who(p, TEAM_PLATFORM, account, at), ip, true)
            }
        };
        let mut t = at + r.i64(2..6);
        let mut emit = |r: &mut Rng, rd: &Read, t: i64, trail_account: usize| {
            let service = rd.source.trim_end_matches(".amazonaws.com");
            let mut trail = self.call_trail(
                r,
                trail_account,
                t,
                call(rd.source, rd.name, is_read(rd.name), Target::NoResource),
                who.clone(),
                ip.clone(),
                terraform_ua(service, laptop),
            );
            trail.request = (!rd.request.is_null()).then(|| rd.request.clone());
            trail.resources = rd.arn.iter().cloned().collect();
            trail.error = rd.error.map(|(c, m)| (c, m.to_string()));
            if matches!(rd.source, "iam.amazonaws.com" | "route53.amazonaws.com" | "organizations.amazonaws.com") {
                trail.region = "us-east-1";
            }
            out.push(Record::Trail(trail));
        };
        // Provider start-up, the lock and the state (in the state account).
        emit(r, &read("sts.amazonaws.com", "GetCallerIdentity", Value::Null), t, account);
        let state_key = format!("{}/terraform.tfstate", ws.name);
        let lock = |name| {
            read(
                "dynamodb.amazonaws.com",
                name,
                json!({"tableName": LOCK_TABLE, "key": {"LockID": format!("{}/{state_key}", self.org.buckets[BUCKET_TF_STATE].name)}}),
            )
        };
        t += r.i64(1..3);
        emit(r, &lock("PutItem"), t, PROD);
        let state_bucket = self.org.buckets[BUCKET_TF_STATE].name.clone();
        let state = Read {
            arn: Some(("AWS::S3::Object", format!("arn:aws:s3:::{state_bucket}/{state_key}"))),
            ..read("s3.amazonaws.com", "GetObject", json!({"bucketName": state_bucket, "key": state_key}))
        };
        t += 1;
        emit(r, &state, t, PROD);
        emit(r, &lock("GetItem"), t, PROD);
        // The refresh: parallel reads spread over about a minute.
        let span = 25 + (ws.reads.len() as i64 / 6).min(60) + r.i64(0..15);
        let refresh_start = t + 2;
        let mut order: Vec<usize> = (0..ws.reads.len()).collect();
        r.shuffle(&mut order);
        let mut times: Vec<i64> = (0..order.len()).map(|_| refresh_start + r.i64(0..span)).collect();
        times.sort_unstable();
        for (k, &i) in order.iter().enumerate() {
            emit(r, &ws.reads[i], times[k], account);
        }
        t = refresh_start + span + r.i64(1..4);
        if apply && !ws.writes.is_empty() {
            let n = r.usize(1..=ws.writes.len().min(3));
            for _ in 0..n {
                let w = &ws.writes[r.usize(..ws.writes.len())];
                t += r.i64(1..8);
                emit(r, w, t, account);
            }
            let put = Read {
                arn: Some(("AWS::S3::Object", format!("arn:aws:s3:::{state_bucket}/{state_key}"))),
                ..read("s3.amazonaws.com", "PutObject", json!({"bucketName": state_bucket, "key": state_key}))
            };
            t += 2;
            emit(r, &put, t, PROD);
        }
        t += 1;
        emit(r, &lock("DeleteItem"), t, PROD);
    }
}

/// A laptop run starts after the morning sign-in has issued the day's key.
const SIGN_IN_LAG_MARGIN: i64 = 16 * 60;

/// Where a run comes from.
#[derive(Clone, Copy)]
enum Runner<'a> {
    Ci { role: &'static str, subject: &'a str },
    Laptop(usize),
}

fn is_read(name: &str) -> bool {
    ["Get", "List", "Describe", "Head"].iter().any(|p| name.starts_with(p))
}
