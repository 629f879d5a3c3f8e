//! The inventory: what exists and who may do what, in the formats real
//! collectors export it: IAM as `aws iam get-account-authorization-details`
//! prints it, SCIM 2.0 users and groups (RFC 7643/7644), Kubernetes RBAC as
//! `kubectl get ... -o json` prints it, and the agent registry.
//!
//! A snapshot is a pure function of the simulation and an instant: the same
//! simulation and instant always give the same bytes. Everything is built in
//! fixed orders (org order, or sorted by name); serde_json's maps are ordered.

use std::collections::{BTreeMap, BTreeSet};

use fastrand::Rng;
use serde_json::{Value, json};
use tenet_model::Timestamp;

use crate::org::*;
use crate::render::short_hash;
use crate::rng;
use crate::scenario::{Kind, Plan};
use crate::world::{Simulation, cap};
use crate::{DAY, HOUR};

const SCIM_LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const SCIM_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const SCIM_GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const SCIM_ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const REGISTRY_FORMAT: &str = "tenet.agent-registry/v1";
const RBAC: &str = "rbac.authorization.k8s.io/v1";
/// The external id the Datadog integration role requires (as the crawler sends it).
const DATADOG_EXTERNAL_ID: &str = "a5f2c0e8b1d94f7e9c3a6b2d8e1f4c7a";
/// Where the dormant reporting user's uploads came from.
const REPORTING_HOST: &str = "198.51.100.200/32";

/// Instants (seconds from the start) at which the inventory is
/// snapshotted: 0, and the start of the day after each change to what it
/// describes (team reorg switches, each permission-creep grant, tool
/// rollout adoptions, the coding-agent reroute, the new data source, a new
/// hire, a new deployment), deduplicated, sorted, all < days*DAY.
pub fn snapshot_times(sim: &Simulation) -> Vec<i64> {
    let total = i64::from(sim.config.days) * DAY;
    let mut times = vec![0, day_after(sim.evolution.reroute_at), day_after(sim.evolution.new_source_at)];
    for plan in &sim.plans {
        match plan.kind {
            Kind::TeamReorg => times.extend(plan.switches.iter().map(|&(_, t)| day_after(t))),
            Kind::PermissionCreep => times.extend((0..CREEP_GRANTS).map(|i| creep_from(sim, plan, i))),
            Kind::AgentToolRollout => {
                times.push(day_after(plan.at));
                times.extend(plan.adoptions.iter().map(|&(_, t)| day_after(t)));
            }
            Kind::NewHire => times.push(day_after(plan.at)),
            Kind::NewDeployment => {
                let launched = plan.service.and_then(|s| sim.org.services.get(s)).and_then(|s| s.launched);
                times.extend(launched.map(day_after));
            }
            _ => {}
        }
    }
    times.retain(|&t| (0..total).contains(&t));
    times.sort_unstable();
    times.dedup();
    times
}

/// The inventory as it stood at `t`: (file name, bytes) pairs, deterministic (same sim + t => same bytes; iterate in fixed orders, no HashMap iteration).
pub fn snapshot(sim: &Simulation, t: i64) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for account in 0..sim.org.accounts.len() {
        files.push((format!("aws-iam-{}.json", sim.org.accounts[account].name), pretty(&iam(sim, account, t))));
    }
    files.push(("scim-users.json".to_string(), pretty(&scim_users(sim, t))));
    files.push(("scim-groups.json".to_string(), pretty(&scim_groups(sim, t))));
    files.push(("k8s-rbac.json".to_string(), pretty(&k8s_rbac(sim))));
    files.push(("agents.json".to_string(), pretty(&agent_registry(sim, t))));
    files
}

/// A Markdown description of the inventory files and especially the agent registry format, to be written as README text.
pub fn describe() -> &'static str {
    DESCRIPTION
}

const DESCRIPTION: &str = r#"## Inventory

`inventory/<YYYY-MM-DD>/` holds the inventory as collected at 00:00 UTC that
day: once at the start, then on the day after each change to what it
describes (a reorg moving people, a grant added to a role, a tool registered
or adopted, a policy widened for a new data source, a person hired, a
function and its role deployed). Every file is the real
format of its source, pretty-printed JSON.

### `aws-iam-<account>.json`

One per AWS account (`acme-prod`, `acme-dev`, `acme-data`): the output of
`aws iam get-account-authorization-details` (the CLI's merged pages, so no
`Marker`/`IsTruncated`), with the four lists `UserDetailList`,
`GroupDetailList`, `RoleDetailList` and `Policies`. Policy documents are JSON
objects, as the CLI prints them (the API returns them URL-encoded).

- Roles: the IAM Identity Center roles (`/aws-reserved/sso.amazonaws.com/`
  `AWSReservedSSO_<PermissionSet>_<suffix>`, trusting the account's
  `AWSSSO_..._DO_NOT_DELETE` SAML provider; a permission set's inline policy
  is the role's `AwsSSOInlinePolicy`), workload roles (trusting
  `lambda`/`ec2`/`ecs-tasks` service principals, the EKS cluster's OIDC
  provider for a service account, or a vendor account with an external id),
  `mcp-aws-tools` (assumed per tool call by the `aws-mcp` task role, with
  `sts:SetSourceIdentity`), the deploy / cross-account / break-glass roles,
  the CI roles GitHub Actions assumes through OIDC (`github-actions-plan`,
  `github-actions-terraform`, `github-actions-deploy`), CloudFormation's
  service role (`cfn-exec-role`) and the service-linked roles of Config,
  Access Analyzer and AWS Backup (`/aws-service-role/<service>/`).
- Users: legacy long-lived IAM users (group `legacy-engineers`) and service
  users.
- `Policies`: every customer managed policy of the account, and every AWS
  managed policy attached to something there, with `PolicyVersionList`
  holding the documents. AWS managed documents are the real ones, shortened
  for the larger policies (the statements that matter are kept); their
  version ids are illustrative.
- Ids (`AIDA…`, `AROA…`, `AGPA…`, `ANPA…`, `AIPA…`) are derived from names,
  and a role's or user's id is the one its CloudTrail `principalId` carries.
  `RoleLastUsed` is always empty: last use is for the telemetry to tell.

### `scim-users.json`, `scim-groups.json`

The identity provider's users and groups as SCIM 2.0 `ListResponse`
documents (RFC 7644 §3.4.2) of core `User` resources with the enterprise
extension (`department`), and core `Group` resources (`team-<name>`, members
by user `id`). `id`s are the Okta ids the Okta System Log uses; `userName`
is the email. Group membership is as of the snapshot.

### `k8s-rbac.json`

The cluster's RBAC objects as a `v1` `List`: `ClusterRole`s (including
aggregated ones, whose `rules` are filled in as the aggregation controller
does; `aggregationRule` says how), `ClusterRoleBinding`s, `Role`s and
`RoleBinding`s. People reach the cluster as their email with groups
`<team>-engineers`; workloads as `system:serviceaccount:<ns>:<name>`.

### `agents.json`: the agent registry

```json
{
  "format": "tenet.agent-registry/v1",
  "generated_at": "2026-10-05T00:00:00Z",
  "servers": [
    {
      "name": "aws-mcp",
      "transport": "streamable-http",
      "endpoint": "https://aws-mcp.tools.acme.internal/mcp",
      "identity": "arn:aws:iam::123456789012:role/aws-mcp-task",
      "tools": [
        {"name": "get_metrics", "description": "Read CloudWatch metrics", "reaches": "aws:cloudwatch:GetMetricData"}
      ]
    }
  ],
  "agents": [
    {
      "id": "agt-1a2b3c4d",
      "name": "platform-ops-2",
      "kind": "ops",
      "owner": "ada.adams@acme.example",
      "users": ["ada.adams@acme.example", "ben.brown@acme.example"],
      "model": "claude-sonnet-4",
      "app": "ops-copilot",
      "tools": [
        {"name": "get_metrics", "server": "aws-mcp", "registered_at": "2026-10-05T00:00:00Z"}
      ],
      "delegated_scopes": ["aws:acme-prod:role/mcp-aws-tools", "k8s:impersonate"]
    }
  ]
}
```

- `format`: always `tenet.agent-registry/v1`; `generated_at`: the snapshot
  instant (RFC 3339, UTC).
- `servers`: the MCP servers agents call. `name` is the server's OpenTelemetry
  `service.name` in the traces; `transport` the MCP transport
  (`streamable-http`); `endpoint` its URL (the traces' `server.address` is its
  host); `identity` the principal the server acts as, when it has one of its
  own (the `aws-mcp` ECS task role; the `k8s-mcp` service account). `tools`
  are the tools the server offers at `generated_at`: `name` (the traces'
  `gen_ai.tool.name`), `description`, and `reaches`, what a call touches:
  - `aws:<service>:<Operation>`: one AWS API call, named as an IAM action
    (service prefix, e.g. `cloudwatch:GetMetricData` for CloudTrail's
    `monitoring.amazonaws.com`), made under a per-call session of the target
    account's `mcp-aws-tools` role;
  - `k8s:<verb>:<resource>`: one Kubernetes API verb on a resource
    (subresources as `pods/log`), made by `k8s-mcp` impersonating the user;
  - `saas:<host>`: a SaaS API at that host;
  - `web:get` / `web:post`: an arbitrary URL on the open web, fetched or
    posted to.
- `agents`: each deployed agent. `id` is the traces' `gen_ai.agent.id`,
  `name` their `gen_ai.agent.name`; `kind` one of `assistant`, `coding`,
  `ops`, `data`; `owner` and `users` are emails (the traces' `enduser.id`),
  `users` including the owner; `model` the model requested; `app` the
  application (`service.name`) hosting the agent. `tools` are the tools
  enabled for the agent at `generated_at`, each with the `server` offering it
  and `registered_at`, when it was enabled for this agent (the simulation's
  start for tools it had from the start). `delegated_scopes` is what the
  agent may do on its users' behalf, derived from its tools, sorted:
  `aws:<account name>:role/mcp-aws-tools` (AWS tools, per account they run
  in), `k8s:impersonate`, `github:repo`, `saas:<host>` (other SaaS),
  `web:fetch`, `web:post`.
"#;

// ----- time -----

fn day_after(t: i64) -> i64 {
    (t.div_euclid(DAY) + 1) * DAY
}

fn iso(sim: &Simulation, t: i64) -> String {
    Timestamp::from_unix_seconds(sim.abs(t)).to_string()
}

/// FNV-1a: stable across builds and platforms.
fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A creation instant (seconds from the start, negative) between
/// `min_days` and `max_days` before the start, fixed by `name`.
fn before_start(sim: &Simulation, name: &str, min_days: i64, max_days: i64) -> i64 {
    let mut r = rng::rng(sim.config.seed, "inventory-created", &[fnv(name)]);
    -(r.i64(min_days..max_days.max(min_days + 1)) * DAY + r.i64(8 * HOUR..18 * HOUR))
}

fn stable_uuid(s: &str) -> String {
    rng::uuid(&mut Rng::with_seed(fnv(s)))
}

fn pretty(v: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(v).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

// ----- what changes when -----

fn plan_of(sim: &Simulation, kind: Kind) -> Option<&Plan> {
    sim.plans.iter().find(|p| p.kind == kind)
}

const CREEP_GRANTS: usize = 5;

/// When permission-creep grant `i` is in the inventory: from the start of
/// the day after the latest instant `scenario::permission_creep` can make it
/// (`plan.at + span*i/5` plus under an hour).
fn creep_from(sim: &Simulation, plan: &Plan, i: usize) -> i64 {
    let total = i64::from(sim.config.days) * DAY;
    let span = ((total - plan.at) as f64 * 0.8) as i64;
    day_after(plan.at + span * i as i64 / CREEP_GRANTS as i64 + HOUR - 1)
}

/// How many permission-creep grants are in the inventory at `t`.
fn creep_grants(sim: &Simulation, t: i64) -> usize {
    plan_of(sim, Kind::PermissionCreep)
        .map_or(0, |plan| (0..CREEP_GRANTS).filter(|&i| t >= creep_from(sim, plan, i)).count())
}

/// The first reorg switch: team-ml (its group, its role) exists from then on.
fn ml_since(sim: &Simulation) -> Option<i64> {
    plan_of(sim, Kind::TeamReorg).and_then(|p| p.switches.iter().map(|&(_, t)| t).min())
}

/// When a tool is on its server (`None`: never in this run).
fn tool_registered(sim: &Simulation, tool: usize) -> Option<i64> {
    match tool {
        TOOL_SEMANTIC_SEARCH => Some(sim.evolution.reroute_at),
        TOOL_COST_REPORT => plan_of(sim, Kind::AgentToolRollout).map(|p| p.at),
        _ => Some(0),
    }
}

// ----- IAM -----

/// A managed policy reference: AWS managed, or the account's own.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Managed {
    Aws(&'static str),
    Customer(&'static str),
}

fn statement(effect: &str, actions: &[&str], resource: Value) -> Value {
    json!({"Effect": effect, "Action": actions, "Resource": resource})
}

fn allow(actions: &[&str], resource: Value) -> Value {
    statement("Allow", actions, resource)
}

fn sid(mut s: Value, id: &str) -> Value {
    s["Sid"] = json!(id);
    s
}

fn document(statements: Vec<Value>) -> Value {
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// An AWS managed policy: (path, default version, creation, last update,
/// description, document). Documents are the real ones, shortened where long.
fn aws_managed(name: &str) -> (&'static str, &'static str, &'static str, &'static str, &'static str, Value) {
    let all = json!("*");
    match name {
        "AdministratorAccess" => (
            "/",
            "v1",
            "2015-02-06T18:39:46Z",
            "2015-02-06T18:39:46Z",
            "Provides full access to AWS services and resources.",
            document(vec![allow(&["*"], all)]),
        ),
        "PowerUserAccess" => (
            "/",
            "v12",
            "2015-02-06T18:39:47Z",
            "2026-02-12T17:59:00Z",
            "Provides full access to AWS services and resources, but does not allow management of Users and groups.",
            document(vec![
                json!({"Effect": "Allow", "NotAction": ["iam:*", "organizations:*", "account:*"], "Resource": "*"}),
                allow(
                    &[
                        "account:GetAccountInformation",
                        "account:GetGovCloudAccountInformation",
                        "account:GetPrimaryEmail",
                        "account:ListRegions",
                        "iam:CreateServiceLinkedRole",
                        "iam:DeleteServiceLinkedRole",
                        "iam:ListRoles",
                        "organizations:DescribeEffectivePolicy",
                        "organizations:DescribeOrganization",
                    ],
                    all,
                ),
            ]),
        ),
        "ReadOnlyAccess" => (
            "/",
            "v120",
            "2015-02-06T18:39:48Z",
            "2025-06-20T17:12:00Z",
            "Provides read-only access to AWS services and resources.",
            document(vec![allow(
                &[
                    "athena:Batch*",
                    "athena:Get*",
                    "athena:List*",
                    "cloudfront:Get*",
                    "cloudfront:List*",
                    "cloudtrail:Describe*",
                    "cloudtrail:Get*",
                    "cloudtrail:List*",
                    "cloudtrail:LookupEvents",
                    "cloudwatch:Describe*",
                    "cloudwatch:Get*",
                    "cloudwatch:List*",
                    "dynamodb:BatchGet*",
                    "dynamodb:Describe*",
                    "dynamodb:Get*",
                    "dynamodb:List*",
                    "dynamodb:Query",
                    "dynamodb:Scan",
                    "ec2:Describe*",
                    "ec2:Get*",
                    "ecr:BatchGet*",
                    "ecr:Describe*",
                    "ecr:Get*",
                    "ecr:List*",
                    "ecs:Describe*",
                    "ecs:List*",
                    "eks:Describe*",
                    "eks:List*",
                    "glue:Get*",
                    "guardduty:Get*",
                    "guardduty:List*",
                    "iam:Generate*",
                    "iam:Get*",
                    "iam:List*",
                    "iam:Simulate*",
                    "kms:Describe*",
                    "kms:Get*",
                    "kms:List*",
                    "lambda:Get*",
                    "lambda:List*",
                    "logs:Describe*",
                    "logs:FilterLogEvents",
                    "logs:Get*",
                    "logs:ListTagsLogGroup",
                    "logs:StartQuery",
                    "logs:StopQuery",
                    "s3:Describe*",
                    "s3:Get*",
                    "s3:List*",
                    "sagemaker:Describe*",
                    "sagemaker:List*",
                    "secretsmanager:Describe*",
                    "secretsmanager:GetResourcePolicy",
                    "secretsmanager:List*",
                    "securityhub:Describe*",
                    "securityhub:Get*",
                    "securityhub:List*",
                    "sns:Get*",
                    "sns:List*",
                    "sqs:Get*",
                    "sqs:List*",
                    "ssm:Describe*",
                    "ssm:Get*",
                    "ssm:List*",
                    "sts:GetCallerIdentity",
                    "tag:Get*",
                ],
                all,
            )]),
        ),
        "SecurityAudit" => (
            "/",
            "v45",
            "2015-02-06T18:41:01Z",
            "2025-06-20T17:12:00Z",
            "The security audit template grants access to read security configuration metadata. It is useful for software that audits the configuration of an AWS account.",
            document(vec![allow(
                &[
                    "access-analyzer:Get*",
                    "access-analyzer:List*",
                    "cloudtrail:Describe*",
                    "cloudtrail:Get*",
                    "cloudtrail:List*",
                    "cloudtrail:LookupEvents",
                    "config:Describe*",
                    "config:Get*",
                    "config:List*",
                    "ec2:Describe*",
                    "ecr:Describe*",
                    "ecr:GetRepositoryPolicy",
                    "ecs:Describe*",
                    "ecs:List*",
                    "eks:Describe*",
                    "eks:List*",
                    "guardduty:Get*",
                    "guardduty:List*",
                    "iam:GenerateCredentialReport",
                    "iam:GenerateServiceLastAccessedDetails",
                    "iam:Get*",
                    "iam:List*",
                    "iam:SimulateCustomPolicy",
                    "iam:SimulatePrincipalPolicy",
                    "kms:Describe*",
                    "kms:Get*",
                    "kms:List*",
                    "lambda:GetFunctionUrlConfig",
                    "lambda:GetPolicy",
                    "lambda:List*",
                    "logs:Describe*",
                    "s3:GetAccountPublicAccessBlock",
                    "s3:GetBucket*",
                    "s3:GetEncryptionConfiguration",
                    "s3:GetLifecycleConfiguration",
                    "s3:ListAllMyBuckets",
                    "secretsmanager:DescribeSecret",
                    "secretsmanager:GetResourcePolicy",
                    "secretsmanager:ListSecrets",
                    "securityhub:Describe*",
                    "securityhub:Get*",
                    "securityhub:List*",
                    "sts:GetCallerIdentity",
                    "tag:GetResources",
                ],
                all,
            )]),
        ),
        "IAMReadOnlyAccess" => (
            "/",
            "v4",
            "2015-02-06T18:40:44Z",
            "2018-01-25T19:11:27Z",
            "Provides read only access to IAM via the AWS Management Console.",
            document(vec![allow(
                &[
                    "iam:GenerateCredentialReport",
                    "iam:GenerateServiceLastAccessedDetails",
                    "iam:Get*",
                    "iam:List*",
                    "iam:SimulateCustomPolicy",
                    "iam:SimulatePrincipalPolicy",
                ],
                all,
            )]),
        ),
        "AmazonS3FullAccess" => (
            "/",
            "v2",
            "2015-02-06T18:40:58Z",
            "2021-09-27T20:16:37Z",
            "Provides full access to all buckets via the AWS Management Console.",
            document(vec![allow(&["s3:*", "s3-object-lambda:*"], all)]),
        ),
        "AmazonAthenaFullAccess" => (
            "/",
            "v12",
            "2016-11-30T16:46:01Z",
            "2023-07-27T17:21:00Z",
            "Provide full access to Amazon Athena and scoped access to the dependencies needed to enable querying, writing results, and data management.",
            document(vec![
                sid(allow(&["athena:*"], all.clone()), "BaseAthenaPermissions"),
                sid(
                    allow(
                        &[
                            "glue:CreateDatabase",
                            "glue:DeleteDatabase",
                            "glue:GetDatabase",
                            "glue:GetDatabases",
                            "glue:UpdateDatabase",
                            "glue:CreateTable",
                            "glue:DeleteTable",
                            "glue:BatchDeleteTable",
                            "glue:UpdateTable",
                            "glue:GetTable",
                            "glue:GetTables",
                            "glue:BatchCreatePartition",
                            "glue:CreatePartition",
                            "glue:DeletePartition",
                            "glue:BatchDeletePartition",
                            "glue:UpdatePartition",
                            "glue:GetPartition",
                            "glue:GetPartitions",
                            "glue:BatchGetPartition",
                            "glue:StartColumnStatisticsTaskRun",
                            "glue:GetColumnStatisticsTaskRun",
                            "glue:GetColumnStatisticsTaskRuns",
                        ],
                        all.clone(),
                    ),
                    "BaseGluePermissions",
                ),
                sid(
                    allow(
                        &[
                            "s3:GetBucketLocation",
                            "s3:GetObject",
                            "s3:ListBucket",
                            "s3:ListBucketMultipartUploads",
                            "s3:ListMultipartUploadParts",
                            "s3:AbortMultipartUpload",
                            "s3:CreateBucket",
                            "s3:PutObject",
                            "s3:PutBucketPublicAccessBlock",
                        ],
                        json!(["arn:aws:s3:::aws-athena-query-results-*"]),
                    ),
                    "BaseQueryResultsPermissions",
                ),
                sid(
                    allow(&["s3:GetObject", "s3:ListBucket"], json!(["arn:aws:s3:::athena-examples*"])),
                    "BaseAthenaExamplesPermissions",
                ),
                sid(
                    allow(&["s3:ListBucket", "s3:GetBucketLocation", "s3:ListAllMyBuckets"], all.clone()),
                    "BaseS3BucketPermissions",
                ),
                sid(allow(&["sns:ListTopics", "sns:GetTopicAttributes"], all.clone()), "BaseSNSPermissions"),
                sid(
                    allow(
                        &[
                            "cloudwatch:PutMetricAlarm",
                            "cloudwatch:DescribeAlarms",
                            "cloudwatch:DeleteAlarms",
                            "cloudwatch:GetMetricData",
                        ],
                        all.clone(),
                    ),
                    "BaseCloudWatchPermissions",
                ),
                sid(allow(&["lakeformation:GetDataAccess"], all), "BaseLakeFormationPermissions"),
            ]),
        ),
        "AWSBillingReadOnlyAccess" => (
            "/",
            "v12",
            "2020-08-27T20:08:28Z",
            "2025-08-21T21:34:00Z",
            "Allows users to view bills on the Billing Console.",
            document(vec![sid(
                allow(
                    &[
                        "account:GetAccountInformation",
                        "aws-portal:ViewBilling",
                        "billing:GetBillingData",
                        "billing:GetBillingDetails",
                        "billing:GetBillingNotifications",
                        "billing:GetBillingPreferences",
                        "billing:GetCredits",
                        "billing:GetContractInformation",
                        "billing:GetIAMAccessPreference",
                        "billing:GetSellerOfRecord",
                        "billing:ListBillingViews",
                        "budgets:ViewBudget",
                        "budgets:DescribeBudgetActionsForBudget",
                        "budgets:DescribeBudgetAction",
                        "budgets:DescribeBudgetActionsForAccount",
                        "budgets:DescribeBudgetActionHistories",
                        "ce:DescribeCostCategoryDefinition",
                        "ce:GetCostAndUsage",
                        "ce:ListCostCategoryDefinitions",
                        "ce:ListTagsForResource",
                        "ce:ListCostAllocationTags",
                        "ce:GetTags",
                        "ce:GetDimensionValues",
                        "consolidatedbilling:ListLinkedAccounts",
                        "consolidatedbilling:GetAccountBillingRole",
                        "cur:GetClassicReport",
                        "cur:GetUsageReport",
                        "cur:DescribeReportDefinitions",
                        "freetier:GetFreeTierAlertPreference",
                        "freetier:GetFreeTierUsage",
                        "invoicing:GetInvoiceEmailDeliveryPreferences",
                        "invoicing:GetInvoicePDF",
                        "invoicing:ListInvoiceSummaries",
                        "payments:GetPaymentInstrument",
                        "payments:GetPaymentStatus",
                        "payments:ListPaymentPreferences",
                        "tax:GetTaxInheritance",
                        "tax:GetTaxRegistrationDocument",
                        "tax:ListTaxRegistrations",
                    ],
                    all,
                ),
                "VisualEditor0",
            )]),
        ),
        "AmazonSageMakerFullAccess" => (
            "/",
            "v27",
            "2017-11-29T23:26:08Z",
            "2025-03-05T19:02:00Z",
            "This policy grants administrative access to Amazon SageMaker AI.",
            document(vec![
                sid(allow(&["sagemaker:*"], all.clone()), "AllowAllNonAdminSageMakerActions"),
                sid(
                    allow(
                        &[
                            "cloudwatch:GetMetricData",
                            "cloudwatch:GetMetricStatistics",
                            "cloudwatch:ListMetrics",
                            "cloudwatch:PutMetricData",
                            "ec2:DescribeSecurityGroups",
                            "ec2:DescribeSubnets",
                            "ec2:DescribeVpcs",
                            "ecr:BatchGetImage",
                            "ecr:GetAuthorizationToken",
                            "ecr:GetDownloadUrlForLayer",
                            "logs:CreateLogGroup",
                            "logs:CreateLogStream",
                            "logs:DescribeLogStreams",
                            "logs:GetLogEvents",
                            "logs:PutLogEvents",
                        ],
                        all.clone(),
                    ),
                    "AllowSageMakerDependencies",
                ),
                sid(
                    allow(
                        &["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                        json!(["arn:aws:s3:::*SageMaker*", "arn:aws:s3:::*Sagemaker*", "arn:aws:s3:::*sagemaker*"]),
                    ),
                    "AllowSageMakerBuckets",
                ),
                sid(
                    json!({
                        "Effect": "Allow",
                        "Action": ["iam:PassRole"],
                        "Resource": "arn:aws:iam::*:role/*",
                        "Condition": {"StringEquals": {"iam:PassedToService": ["sagemaker.amazonaws.com"]}},
                    }),
                    "AllowPassRoleToSageMaker",
                ),
            ]),
        ),
        "AWSLambdaBasicExecutionRole" => (
            "/service-role/",
            "v1",
            "2015-04-09T15:03:43Z",
            "2015-04-09T15:03:43Z",
            "Provides write permissions to CloudWatch Logs.",
            document(vec![allow(&["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"], all)]),
        ),
        "AWSConfigServiceRolePolicy" => (
            "/aws-service-role/",
            "v58",
            "2018-05-30T23:31:46Z",
            "2025-06-11T17:20:00Z",
            "Allows Config to call AWS services and collect resource configurations on your behalf.",
            document(vec![allow(
                &[
                    "cloudtrail:DescribeTrails",
                    "dynamodb:DescribeTable",
                    "ec2:Describe*",
                    "ecs:Describe*",
                    "iam:GetPolicy",
                    "iam:GetRole",
                    "iam:List*",
                    "kms:DescribeKey",
                    "lambda:GetFunction",
                    "lambda:ListFunctions",
                    "logs:DescribeLogGroups",
                    "s3:GetBucketAcl",
                    "s3:GetBucketPolicy",
                    "s3:GetBucketVersioning",
                    "s3:GetEncryptionConfiguration",
                    "config:Describe*",
                    "config:Put*",
                ],
                all,
            )]),
        ),
        "AccessAnalyzerServiceRolePolicy" => (
            "/aws-service-role/",
            "v14",
            "2019-12-02T17:22:47Z",
            "2025-01-27T19:01:00Z",
            "Allow Access Analyzer to analyze resource metadata",
            document(vec![allow(
                &[
                    "iam:GetRole",
                    "iam:ListRoles",
                    "kms:GetKeyPolicy",
                    "kms:ListKeys",
                    "lambda:GetPolicy",
                    "lambda:ListFunctions",
                    "s3:GetBucketAcl",
                    "s3:GetBucketPolicyStatus",
                    "s3:GetBucketPublicAccessBlock",
                    "s3:ListAllMyBuckets",
                    "secretsmanager:GetResourcePolicy",
                    "secretsmanager:ListSecrets",
                    "sqs:ListQueues",
                ],
                all,
            )]),
        ),
        "AWSBackupServiceLinkedRolePolicyForBackup" => (
            "/aws-service-role/",
            "v23",
            "2019-11-21T19:29:08Z",
            "2025-03-18T20:16:00Z",
            "Provides AWS Backup permission to create backups of supported resource types on your behalf.",
            document(vec![allow(
                &[
                    "dynamodb:CreateBackup",
                    "dynamodb:DescribeTable",
                    "ec2:CreateSnapshot",
                    "ec2:CreateTags",
                    "ec2:DescribeVolumes",
                ],
                all,
            )]),
        ),
        _ => ("/", "v1", "2015-02-06T18:39:46Z", "2015-02-06T18:39:46Z", "", document(vec![])),
    }
}

fn aws_managed_arn(name: &str) -> String {
    format!("arn:aws:iam::aws:policy{}{name}", aws_managed(name).0)
}

struct RoleSpec {
    name: String,
    trust: Value,
    inline: Vec<(String, Value)>,
    managed: Vec<Managed>,
    boundary: Option<Managed>,
    tags: Vec<(&'static str, String)>,
    /// Seconds from the start (negative: before it).
    created: i64,
    instance_profile: bool,
}

/// One account's authorization details, built up entity by entity.
struct Iam<'a> {
    sim: &'a Simulation,
    acct: String,
    region: &'static str,
    users: Vec<Value>,
    groups: Vec<Value>,
    roles: Vec<Value>,
    /// Customer managed policies used in the account (name -> document, description).
    customer: BTreeMap<&'static str, (Value, &'static str)>,
    attachments: BTreeMap<Managed, usize>,
    boundary_uses: BTreeMap<Managed, usize>,
}

impl<'a> Iam<'a> {
    fn new(sim: &'a Simulation, account: usize) -> Self {
        let a = sim.org.account(account);
        Iam {
            sim,
            acct: a.id.clone(),
            region: a.region,
            users: vec![],
            groups: vec![],
            roles: vec![],
            customer: BTreeMap::new(),
            attachments: BTreeMap::new(),
            boundary_uses: BTreeMap::new(),
        }
    }

    fn policy_arn(&self, m: Managed) -> String {
        match m {
            Managed::Aws(name) => aws_managed_arn(name),
            Managed::Customer(name) => format!("arn:aws:iam::{}:policy/{name}", self.acct),
        }
    }

    fn note_customer(&mut self, m: Managed) {
        if let Managed::Customer(name) = m
            && !self.customer.contains_key(name)
        {
            let entry = self.customer_policy(name);
            self.customer.insert(name, entry);
        }
    }

    fn attach(&mut self, list: &[Managed]) -> Value {
        let mut out = Vec::new();
        for &m in list {
            self.note_customer(m);
            *self.attachments.entry(m).or_default() += 1;
            let name = match m {
                Managed::Aws(n) | Managed::Customer(n) => n,
            };
            out.push(json!({"PolicyName": name, "PolicyArn": self.policy_arn(m)}));
        }
        Value::Array(out)
    }

    fn bucket(&self, b: usize) -> (String, String) {
        let name = &self.sim.org.buckets[b].name;
        (format!("arn:aws:s3:::{name}"), format!("arn:aws:s3:::{name}/*"))
    }

    fn bucket_read(&self, buckets: &[usize]) -> Value {
        let mut objects = Vec::new();
        let mut names = Vec::new();
        for &b in buckets {
            let (bucket, objs) = self.bucket(b);
            names.push(bucket);
            objects.push(objs);
        }
        document(vec![
            sid(allow(&["s3:GetObject", "s3:GetObjectVersion"], json!(objects)), "ReadObjects"),
            sid(allow(&["s3:ListBucket", "s3:GetBucketLocation"], json!(names)), "ListBuckets"),
        ])
    }

    fn arn(&self, service: &str, rest: &str) -> String {
        format!("arn:aws:{service}:{}:{}:{rest}", self.region, self.acct)
    }

    fn customer_policy(&self, name: &str) -> (Value, &'static str) {
        let org = &self.sim.org;
        let dev = &org.account(DEV).id;
        match name {
            "PaymentsDeveloperAccess" => {
                let (artifacts, artifact_objects) = self.bucket(BUCKET_ARTIFACTS);
                (
                    document(vec![
                        sid(
                            allow(
                                &[
                                    "dynamodb:BatchGetItem",
                                    "dynamodb:DescribeTable",
                                    "dynamodb:GetItem",
                                    "dynamodb:Query",
                                    "dynamodb:Scan",
                                ],
                                json!([
                                    self.arn("dynamodb", "table/payments-ledger*"),
                                    self.arn("dynamodb", "table/payments-ledger*/index/*")
                                ]),
                            ),
                            "LedgerRead",
                        ),
                        sid(
                            allow(
                                &[
                                    "dynamodb:ListTables",
                                    "logs:DescribeLogGroups",
                                    "lambda:ListFunctions",
                                    "sqs:ListQueues",
                                ],
                                json!("*"),
                            ),
                            "List",
                        ),
                        sid(
                            allow(
                                &[
                                    "logs:DescribeLogStreams",
                                    "logs:FilterLogEvents",
                                    "logs:GetLogEvents",
                                    "logs:StartQuery",
                                ],
                                json!([
                                    self.arn("logs", "log-group:/ecs/payments-*"),
                                    self.arn("logs", "log-group:/aws/lambda/payments-*")
                                ]),
                            ),
                            "LogsRead",
                        ),
                        sid(
                            allow(
                                &[
                                    "lambda:GetFunction",
                                    "lambda:GetFunctionConfiguration",
                                    "lambda:ListVersionsByFunction",
                                ],
                                json!(self.arn("lambda", "function:payments-*")),
                            ),
                            "LambdaRead",
                        ),
                        sid(
                            allow(&["sqs:GetQueueAttributes", "sqs:GetQueueUrl"], json!(self.arn("sqs", "payments-*"))),
                            "QueuesRead",
                        ),
                        sid(
                            allow(&["s3:GetObject", "s3:ListBucket"], json!([artifacts, artifact_objects])),
                            "ArtifactsRead",
                        ),
                        sid(
                            allow(
                                &["secretsmanager:DescribeSecret"],
                                json!(self.arn("secretsmanager", "secret:*/payments/*")),
                            ),
                            "SecretsMetadata",
                        ),
                        sid(
                            allow(&["sts:AssumeRole"], json!(format!("arn:aws:iam::{dev}:role/dev-deploy"))),
                            "AssumeDeployRole",
                        ),
                    ]),
                    "Payments engineers: read the ledger, logs, functions and queues; deploy through dev-deploy.",
                )
            }
            "WebDeveloperAccess" => {
                let (web, web_objects) = self.bucket(BUCKET_WEB);
                (
                    document(vec![
                        sid(
                            allow(&["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], json!(web_objects)),
                            "WebAssetsObjects",
                        ),
                        sid(allow(&["s3:ListBucket", "s3:GetBucketLocation"], json!(web)), "WebAssetsBucket"),
                        sid(
                            allow(
                                &[
                                    "cloudfront:GetDistribution",
                                    "cloudfront:ListDistributions",
                                    "cloudfront:CreateInvalidation",
                                ],
                                json!("*"),
                            ),
                            "CloudFront",
                        ),
                        sid(
                            allow(
                                &["logs:FilterLogEvents", "logs:GetLogEvents"],
                                json!(self.arn("logs", "log-group:/ecs/web-frontend:*")),
                            ),
                            "LogsRead",
                        ),
                    ]),
                    "Web engineers: publish web assets, invalidate the CDN, read frontend logs.",
                )
            }
            "SupportReadOnlyAccess" => (
                document(vec![
                    sid(allow(&["logs:DescribeLogGroups"], json!("*")), "ListLogGroups"),
                    sid(
                        allow(
                            &["logs:FilterLogEvents", "logs:GetLogEvents"],
                            json!(self.arn("logs", "log-group:/ecs/web-frontend:*")),
                        ),
                        "LogsRead",
                    ),
                    sid(
                        json!({
                            "Effect": "Allow",
                            "Action": ["dynamodb:GetItem"],
                            "Resource": self.arn("dynamodb", "table/customers"),
                            "Condition": {
                                "ForAllValues:StringEquals": {"dynamodb:Attributes": ["customer_id", "name", "email", "plan", "status", "created_at"]},
                                "StringEqualsIfExists": {"dynamodb:Select": "SPECIFIC_ATTRIBUTES"},
                            },
                        }),
                        "CustomerLookup",
                    ),
                ]),
                "Support: read frontend logs and look up customer records (contact fields only).",
            ),
            "LegacyDeveloperAccess" => {
                let (web, web_objects) = self.bucket(BUCKET_WEB);
                let (artifacts, artifact_objects) = self.bucket(BUCKET_ARTIFACTS);
                (
                    document(vec![
                        sid(
                            allow(
                                &["dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan"],
                                json!(self.arn("dynamodb", "table/*-dev")),
                            ),
                            "DevTables",
                        ),
                        sid(
                            allow(
                                &[
                                    "cloudfront:ListDistributions",
                                    "dynamodb:ListTables",
                                    "ec2:Describe*",
                                    "lambda:GetFunction",
                                    "lambda:ListFunctions",
                                    "logs:Describe*",
                                    "logs:FilterLogEvents",
                                    "logs:GetLogEvents",
                                    "sqs:GetQueueAttributes",
                                    "sqs:ListQueues",
                                ],
                                json!("*"),
                            ),
                            "Read",
                        ),
                        sid(
                            allow(&["s3:GetObject", "s3:PutObject"], json!([web_objects, artifact_objects])),
                            "Objects",
                        ),
                        sid(allow(&["s3:ListBucket"], json!([web, artifacts])), "Buckets"),
                    ]),
                    "Long-lived developer keys (pre Identity Center); to be retired.",
                )
            }
            "CrossAccountReadOnlyBoundary" => (
                document(vec![
                    sid(
                        allow(
                            &[
                                "cloudwatch:Get*",
                                "cloudwatch:List*",
                                "dynamodb:Describe*",
                                "dynamodb:List*",
                                "ec2:Describe*",
                                "ecs:Describe*",
                                "ecs:List*",
                                "logs:Describe*",
                                "logs:FilterLogEvents",
                                "logs:Get*",
                                "s3:Get*",
                                "s3:List*",
                                "sts:AssumeRole",
                                "sts:GetCallerIdentity",
                            ],
                            json!("*"),
                        ),
                        "ReadOnlyWithinBoundary",
                    ),
                    sid(
                        statement("Deny", &["iam:*", "organizations:*", "account:*"], json!("*")),
                        "DenyIdentityAndAccountAdministration",
                    ),
                ]),
                "Permissions boundary for roles assumed from other accounts.",
            ),
            _ => (document(vec![]), ""),
        }
    }

    fn role(&mut self, spec: RoleSpec) {
        let sim = self.sim;
        let path = format!("/{}", crate::render::role_path(&spec.name));
        let arn = format!("arn:aws:iam::{}:role{path}{}", self.acct, spec.name);
        let role_id = format!("AROA{}", short_hash(&spec.name, 17));
        let created = iso(sim, spec.created);
        let attached = self.attach(&spec.managed);
        let mut role = json!({
            "Path": path,
            "RoleName": spec.name,
            "RoleId": role_id,
            "Arn": arn,
            "CreateDate": created,
            "AssumeRolePolicyDocument": spec.trust,
            "InstanceProfileList": [],
            "RolePolicyList": spec.inline.iter().map(|(n, d)| json!({"PolicyName": n, "PolicyDocument": d})).collect::<Vec<_>>(),
            "AttachedManagedPolicies": attached,
            "Tags": spec.tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>(),
            "RoleLastUsed": {},
        });
        if let Some(b) = spec.boundary {
            self.note_customer(b);
            *self.boundary_uses.entry(b).or_default() += 1;
            role["PermissionsBoundary"] =
                json!({"PermissionsBoundaryType": "Policy", "PermissionsBoundaryArn": self.policy_arn(b)});
        }
        if spec.instance_profile {
            role["InstanceProfileList"] = json!([{
                "Path": "/",
                "InstanceProfileName": spec.name,
                "InstanceProfileId": format!("AIPA{}", short_hash(&format!("{}/{}", self.acct, spec.name), 17)),
                "Arn": format!("arn:aws:iam::{}:instance-profile/{}", self.acct, spec.name),
                "CreateDate": created,
                "Roles": [{
                    "Path": path,
                    "RoleName": spec.name,
                    "RoleId": role["RoleId"],
                    "Arn": role["Arn"],
                    "CreateDate": created,
                    "AssumeRolePolicyDocument": role["AssumeRolePolicyDocument"],
                }],
            }]);
        }
        self.roles.push(role);
    }

    fn user(
        &mut self,
        name: &str,
        groups: &[&str],
        inline: Vec<(String, Value)>,
        managed: &[Managed],
        tags: Vec<(&'static str, String)>,
        created: i64,
    ) {
        let attached = self.attach(managed);
        self.users.push(json!({
            "Path": "/",
            "UserName": name,
            "UserId": format!("AIDA{}", short_hash(name, 17)),
            "Arn": format!("arn:aws:iam::{}:user/{name}", self.acct),
            "CreateDate": iso(self.sim, created),
            "UserPolicyList": inline.iter().map(|(n, d)| json!({"PolicyName": n, "PolicyDocument": d})).collect::<Vec<_>>(),
            "GroupList": groups,
            "AttachedManagedPolicies": attached,
            "Tags": tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>(),
        }));
    }

    fn group(&mut self, name: &str, inline: Vec<(String, Value)>, managed: &[Managed], created: i64) {
        let attached = self.attach(managed);
        self.groups.push(json!({
            "Path": "/",
            "GroupName": name,
            "GroupId": format!("AGPA{}", short_hash(&format!("{}/{name}", self.acct), 17)),
            "Arn": format!("arn:aws:iam::{}:group/{name}", self.acct),
            "CreateDate": iso(self.sim, created),
            "GroupPolicyList": inline.iter().map(|(n, d)| json!({"PolicyName": n, "PolicyDocument": d})).collect::<Vec<_>>(),
            "AttachedManagedPolicies": attached,
        }));
    }

    fn finish(mut self) -> Value {
        let sim = self.sim;
        let mut policies: BTreeMap<String, Value> = BTreeMap::new();
        let mut used: BTreeSet<Managed> = self.attachments.keys().copied().collect();
        used.extend(self.boundary_uses.keys().copied());
        used.extend(self.customer.keys().map(|&n| Managed::Customer(n)));
        for m in used {
            let attachments = self.attachments.get(&m).copied().unwrap_or(0);
            let boundaries = self.boundary_uses.get(&m).copied().unwrap_or(0);
            let arn = self.policy_arn(m);
            let (name, path, version, created, updated, description, doc) = match m {
                Managed::Aws(name) => {
                    let (path, version, created, updated, description, doc) = aws_managed(name);
                    (name, path, version, created.to_string(), updated.to_string(), description, doc)
                }
                Managed::Customer(name) => {
                    let (doc, description) = self.customer.get(name).cloned().unwrap_or((document(vec![]), ""));
                    let created = iso(sim, before_start(sim, &format!("{}/{name}", self.acct), 200, 700));
                    (name, "/", "v1", created.clone(), created, description, doc)
                }
            };
            let id_seed = match m {
                Managed::Aws(n) => format!("aws/{n}"),
                Managed::Customer(n) => format!("{}/{n}", self.acct),
            };
            policies.insert(
                name.to_string(),
                json!({
                    "PolicyName": name,
                    "PolicyId": format!("ANPA{}", short_hash(&id_seed, 17)),
                    "Arn": arn,
                    "Path": path,
                    "DefaultVersionId": version,
                    "AttachmentCount": attachments,
                    "PermissionsBoundaryUsageCount": boundaries,
                    "IsAttachable": true,
                    "Description": description,
                    "CreateDate": created,
                    "UpdateDate": updated,
                    "PolicyVersionList": [{
                        "Document": doc,
                        "VersionId": version,
                        "IsDefaultVersion": true,
                        "CreateDate": updated,
                    }],
                }),
            );
        }
        let by = |key: &'static str| move |a: &Value, b: &Value| a[key].as_str().cmp(&b[key].as_str());
        self.users.sort_by(by("UserName"));
        self.groups.sort_by(by("GroupName"));
        self.roles.sort_by(by("RoleName"));
        json!({
            "UserDetailList": self.users,
            "GroupDetailList": self.groups,
            "RoleDetailList": self.roles,
            "Policies": policies.into_values().collect::<Vec<_>>(),
        })
    }
}

fn trust(statements: Vec<Value>) -> Value {
    document(statements)
}

fn trust_service(service: &str) -> Value {
    trust(vec![json!({"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"})])
}

fn trust_aws(principal: &str, actions: &[&str]) -> Value {
    trust(vec![json!({"Effect": "Allow", "Principal": {"AWS": principal}, "Action": actions})])
}

/// The IAM Identity Center permission set a team's role carries in an account.
fn permission_set(iam: &Iam, team: usize, t: i64) -> (Vec<Managed>, Vec<(String, Value)>) {
    let sim = iam.sim;
    let inline = |doc: Value| vec![("AwsSSOInlinePolicy".to_string(), doc)];
    match sim.org.teams[team].permission_set {
        "PlatformEngineer" => {
            let roles = format!("arn:aws:iam::{}:role/*", iam.acct);
            let reserved = format!("arn:aws:iam::{}:role/aws-reserved/*", iam.acct);
            let doc = document(vec![
                sid(
                    allow(
                        &[
                            "iam:AttachRolePolicy",
                            "iam:CreateRole",
                            "iam:DeleteRolePolicy",
                            "iam:DetachRolePolicy",
                            "iam:PassRole",
                            "iam:PutRolePolicy",
                            "iam:TagRole",
                            "iam:UpdateAssumeRolePolicy",
                        ],
                        json!(roles),
                    ),
                    "ManageWorkloadRoles",
                ),
                sid(
                    statement(
                        "Deny",
                        &[
                            "iam:AttachRolePolicy",
                            "iam:DeleteRole",
                            "iam:DeleteRolePolicy",
                            "iam:DetachRolePolicy",
                            "iam:PutRolePolicy",
                            "iam:UpdateAssumeRolePolicy",
                        ],
                        json!(reserved),
                    ),
                    "ProtectIdentityCenterRoles",
                ),
            ]);
            (vec![Managed::Aws("PowerUserAccess"), Managed::Aws("IAMReadOnlyAccess")], inline(doc))
        }
        "PaymentsDeveloper" => (vec![Managed::Customer("PaymentsDeveloperAccess")], vec![]),
        "WebDeveloper" => (vec![Managed::Customer("WebDeveloperAccess")], vec![]),
        "DataAnalyst" => {
            let mut buckets = vec![BUCKET_LAKE];
            if t >= sim.evolution.new_source_at {
                buckets.push(BUCKET_EVENTS_V2);
            }
            (vec![Managed::Aws("AmazonAthenaFullAccess")], inline(iam.bucket_read(&buckets)))
        }
        "SecurityAudit" => (vec![Managed::Aws("SecurityAudit")], vec![]),
        "BillingAnalyst" => {
            (vec![Managed::Aws("AWSBillingReadOnlyAccess")], inline(iam.bucket_read(&[BUCKET_FINANCE])))
        }
        "SupportReadOnly" => (vec![Managed::Customer("SupportReadOnlyAccess")], vec![]),
        "MLEngineer" => (vec![Managed::Aws("AmazonSageMakerFullAccess")], inline(iam.bucket_read(&[BUCKET_LAKE]))),
        _ => (vec![Managed::Aws("ReadOnlyAccess")], vec![]),
    }
}

/// A workload role's own permissions.
fn service_permissions(iam: &Iam, svc: &Service) -> (Vec<Managed>, Vec<(String, Value)>) {
    let sim = iam.sim;
    let org = &sim.org;
    let name = |s: &str| s.to_string();
    match svc.name {
        "payments-api" => {
            let key = format!("arn:aws:kms:{}:{}:key/{}", iam.region, iam.acct, world_stable_uuid(&iam.acct));
            let doc = document(vec![
                sid(
                    allow(
                        &["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"],
                        json!([
                            iam.arn("dynamodb", "table/payments-ledger"),
                            iam.arn("dynamodb", "table/payments-ledger/index/*")
                        ]),
                    ),
                    "Ledger",
                ),
                sid(allow(&["kms:Decrypt", "kms:GenerateDataKey"], json!(key)), "LedgerKey"),
                sid(allow(&["sqs:SendMessage"], json!(iam.arn("sqs", "payments-events"))), "Events"),
                sid(
                    allow(&["secretsmanager:GetSecretValue"], json!(org.secrets[SECRET_PAYMENTS_DB].arn)),
                    "DatabaseSecret",
                ),
            ]);
            (vec![], vec![(name("payments-api"), doc)])
        }
        "web-frontend" => {
            let (_, objects) = iam.bucket(BUCKET_WEB);
            let doc = document(vec![
                sid(allow(&["s3:GetObject"], json!(objects)), "Assets"),
                sid(
                    allow(&["ssm:GetParameter", "ssm:GetParameters"], json!(iam.arn("ssm", "parameter/web/*"))),
                    "FeatureFlags",
                ),
            ]);
            (vec![], vec![(name("web-frontend"), doc)])
        }
        "ingest-lambda" => {
            let (_, raw) = iam.bucket(BUCKET_RAW);
            let (_, lake) = iam.bucket(BUCKET_LAKE);
            let doc = document(vec![
                sid(allow(&["s3:GetObject"], json!(raw)), "ReadRaw"),
                sid(allow(&["s3:PutObject"], json!(lake)), "WriteLake"),
                sid(
                    allow(
                        &["glue:GetTable", "glue:GetPartitions", "glue:BatchCreatePartition"],
                        json!([
                            iam.arn("glue", "catalog"),
                            iam.arn("glue", "database/lake"),
                            iam.arn("glue", "table/lake/*")
                        ]),
                    ),
                    "Catalog",
                ),
                sid(allow(&["ssm:GetParameter"], json!(iam.arn("ssm", "parameter/data/ingest/*"))), "Config"),
                sid(
                    json!({
                        "Effect": "Allow",
                        "Action": "kms:Decrypt",
                        "Resource": iam.arn("kms", &format!("key/{}", world_stable_uuid(&iam.acct))),
                        "Condition": {"StringEquals": {"kms:ViaService": format!("ssm.{}.amazonaws.com", iam.region)}},
                    }),
                    "DecryptConfig",
                ),
            ]);
            (vec![Managed::Aws("AWSLambdaBasicExecutionRole")], vec![(name("ingest-s3"), doc)])
        }
        "etl-batch" => {
            let (lake_bucket, lake) = iam.bucket(BUCKET_LAKE);
            let doc = document(vec![
                sid(
                    allow(
                        &["athena:GetQueryExecution", "athena:GetQueryResults", "athena:StartQueryExecution"],
                        json!(iam.arn("athena", "workgroup/etl")),
                    ),
                    "Athena",
                ),
                sid(allow(&["glue:GetDatabase", "glue:GetTable", "glue:GetPartitions"], json!("*")), "Catalog"),
                sid(allow(&["s3:GetObject", "s3:PutObject"], json!(lake)), "LakeObjects"),
                sid(allow(&["s3:ListBucket", "s3:GetBucketLocation"], json!(lake_bucket)), "LakeBucket"),
                sid(
                    allow(&["secretsmanager:GetSecretValue"], json!(org.secrets[SECRET_WAREHOUSE].arn)),
                    "WarehouseSecret",
                ),
            ]);
            (vec![], vec![(name("etl-batch"), doc)])
        }
        "ci-deployer" => {
            let (_, artifacts) = iam.bucket(BUCKET_ARTIFACTS);
            let doc = document(vec![
                sid(
                    allow(
                        &[
                            "ecr:BatchCheckLayerAvailability",
                            "ecr:CompleteLayerUpload",
                            "ecr:GetAuthorizationToken",
                            "ecr:InitiateLayerUpload",
                            "ecr:PutImage",
                            "ecr:UploadLayerPart",
                        ],
                        json!("*"),
                    ),
                    "PushImages",
                ),
                sid(
                    allow(&["ecs:DescribeServices", "ecs:RegisterTaskDefinition", "ecs:UpdateService"], json!("*")),
                    "Deploy",
                ),
                sid(allow(&["s3:PutObject"], json!(artifacts)), "Artifacts"),
                sid(
                    json!({
                        "Effect": "Allow",
                        "Action": "iam:PassRole",
                        "Resource": format!("arn:aws:iam::{}:role/*-task", iam.acct),
                        "Condition": {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}},
                    }),
                    "PassTaskRoles",
                ),
            ]);
            (vec![], vec![(name("ci-deployer"), doc)])
        }
        "aws-mcp" => {
            let targets: Vec<String> = (0..org.accounts.len()).map(|a| org.role_arn(a, "mcp-aws-tools")).collect();
            let doc = document(vec![
                sid(allow(&["sts:AssumeRole", "sts:SetSourceIdentity"], json!(targets)), "AssumeToolRole"),
                sid(allow(&["ecr:GetAuthorizationToken"], json!("*")), "PullImage"),
            ]);
            (vec![], vec![(name("assume-mcp-tools"), doc)])
        }
        "datadog" => {
            let doc = document(vec![allow(
                &[
                    "cloudwatch:Get*",
                    "cloudwatch:List*",
                    "ec2:Describe*",
                    "ecs:Describe*",
                    "ecs:List*",
                    "lambda:List*",
                    "logs:DescribeLogGroups",
                    "tag:GetResources",
                    "tag:GetTagKeys",
                    "tag:GetTagValues",
                ],
                json!("*"),
            )]);
            (vec![], vec![(name("DatadogIntegrationPolicy"), doc)])
        }
        _ => {
            let managed =
                if svc.runtime == Runtime::Lambda { vec![Managed::Aws("AWSLambdaBasicExecutionRole")] } else { vec![] };
            (managed, vec![(name(svc.name), generic_policy(sim, svc))])
        }
    }
}

/// The ARN a call's target names, for a policy's `Resource`.
fn target_arn(sim: &Simulation, account: usize, target: Target) -> String {
    let a = sim.org.account(account);
    let (region, acct) = (a.region, &a.id);
    match target {
        Target::NoResource | Target::Instance => "*".to_string(),
        Target::Bucket(b) => format!("arn:aws:s3:::{}", sim.org.buckets[b].name),
        Target::Object(b) => format!("arn:aws:s3:::{}/*", sim.org.buckets[b].name),
        Target::Secret(s) => sim.org.secrets[s].arn.clone(),
        Target::Table(t) => match t.split_once('.') {
            Some((db, table)) => format!("arn:aws:glue:{region}:{acct}:table/{db}/{table}"),
            None => format!("arn:aws:dynamodb:{region}:{acct}:table/{t}"),
        },
        Target::Function(f) => format!("arn:aws:lambda:{region}:{acct}:function:{f}"),
        Target::Parameter(n) => format!("arn:aws:ssm:{region}:{acct}:parameter{n}"),
        Target::Role(n) => format!("arn:aws:iam::{acct}:role/{n}"),
        Target::LogGroup(g) => format!("arn:aws:logs:{region}:{acct}:log-group:{g}:*"),
        Target::Queue(q) => format!("arn:aws:sqs:{region}:{acct}:{q}"),
        Target::Key => format!("arn:aws:kms:{region}:{acct}:key/{}", world_stable_uuid(acct)),
    }
}

/// A workload's own policy, from what it does: each resource it touches
/// with the actions it takes there, and KMS for the secrets and
/// SecureString parameters it reads.
fn generic_policy(sim: &Simulation, svc: &Service) -> Value {
    let mut by_resource: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut decrypt_via = BTreeSet::new();
    let calls = svc.habits.iter().filter_map(|h| match h.act {
        Act::Aws { account, call } => Some((account, call)),
        _ => None,
    });
    for (account, call) in calls.chain(svc.init.iter().map(|c| (svc.account, *c))) {
        by_resource.entry(target_arn(sim, account, call.target)).or_default().insert(iam_action(&call));
        match call.target {
            Target::Secret(_) => {
                decrypt_via.insert("secretsmanager");
            }
            Target::Parameter(n) if crate::world::secure_parameter(n) => {
                decrypt_via.insert("ssm");
            }
            _ => {}
        }
    }
    let mut statements: Vec<Value> = by_resource
        .into_iter()
        .map(|(resource, actions)| json!({"Effect": "Allow", "Action": actions.into_iter().collect::<Vec<_>>(), "Resource": resource}))
        .collect();
    if !decrypt_via.is_empty() {
        let region = sim.org.account(svc.account).region;
        statements.push(json!({
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": target_arn(sim, svc.account, Target::Key),
            "Condition": {"StringEquals": {"kms:ViaService": decrypt_via.iter().map(|v| format!("{v}.{region}.amazonaws.com")).collect::<Vec<_>>()}},
        }));
    }
    document(statements)
}

/// A workload's own policy as CloudFormation sends it (`PutRolePolicy`'s
/// `policyDocument`).
pub fn service_policy_json(sim: &Simulation, s: usize) -> String {
    serde_json::to_string(&generic_policy(sim, &sim.org.services[s])).unwrap_or_default()
}

/// The KMS key id the telemetry gives an account's key (`world::stable_uuid`).
fn world_stable_uuid(s: &str) -> String {
    rng::uuid(&mut Rng::with_seed(s.bytes().fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)))))
}

fn service_trust(iam: &Iam, svc: &Service) -> Value {
    let sim = iam.sim;
    if svc.name == "datadog" {
        return trust(vec![json!({
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{}:root", sim.org.vendor_account)},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": DATADOG_EXTERNAL_ID}},
        })]);
    }
    match svc.runtime {
        Runtime::Lambda => trust_service("lambda.amazonaws.com"),
        Runtime::Ec2 => trust_service("ec2.amazonaws.com"),
        Runtime::Ecs => trust(vec![json!({
            "Effect": "Allow",
            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "ArnLike": {"aws:SourceArn": format!("arn:aws:ecs:{}:{}:*", iam.region, iam.acct)},
                "StringEquals": {"aws:SourceAccount": iam.acct},
            },
        })]),
        Runtime::Eks => {
            // The issuer as the CloudTrail renderer names it.
            let issuer = format!("oidc.eks.us-east-1.amazonaws.com/id/{}", short_hash(&iam.acct, 32));
            let (ns, sa) = svc.k8s_sa.unwrap_or(("default", "default"));
            let mut cond = serde_json::Map::new();
            cond.insert(format!("{issuer}:sub"), json!(format!("system:serviceaccount:{ns}:{sa}")));
            cond.insert(format!("{issuer}:aud"), json!("sts.amazonaws.com"));
            trust(vec![json!({
                "Effect": "Allow",
                "Principal": {"Federated": format!("arn:aws:iam::{}:oidc-provider/{issuer}", iam.acct)},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": cond},
            })])
        }
    }
}

/// The IAM action an AWS call is authorised as (CloudTrail names Lambda's
/// operations with their API version: `GetFunction20150331v2`).
fn iam_action(call: &Call) -> String {
    let service = call.source.trim_end_matches(".amazonaws.com");
    let prefix = match service {
        "monitoring" => "cloudwatch",
        other => other,
    };
    let name = match call.name.find("20") {
        Some(i) if call.name[i..].bytes().take(8).all(|b| b.is_ascii_digit()) && call.name.len() >= i + 8 => {
            &call.name[..i]
        }
        _ => call.name,
    };
    format!("{prefix}:{name}")
}

/// The CI roles GitHub Actions assumes through OIDC, CloudFormation's
/// service role, and the service-linked roles of the account.
fn ci_roles(iam: &mut Iam, account: usize, long_ago: &dyn Fn(&str) -> i64) {
    let sim = iam.sim;
    let org = &sim.org;
    let acct = iam.acct.clone();
    let provider = crate::render::oidc_provider(&acct, crate::record::Idp::GitHub);
    let github = |sub: &str| {
        trust(vec![json!({
            "Effect": "Allow",
            "Principal": {"Federated": provider},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"},
                "StringLike": {"token.actions.githubusercontent.com:sub": sub},
            },
        })])
    };
    let state = org.buckets[BUCKET_TF_STATE].name.clone();
    let prod = org.account(PROD);
    let lock = format!("arn:aws:dynamodb:{}:{}:table/{}", prod.region, prod.id, crate::iac::LOCK_TABLE);
    let state_doc = |write: bool| {
        let mut objects = vec!["s3:GetObject"];
        if write {
            objects.push("s3:PutObject");
        }
        document(vec![
            sid(allow(&objects, json!(format!("arn:aws:s3:::{state}/*"))), "State"),
            sid(allow(&["s3:ListBucket"], json!(format!("arn:aws:s3:::{state}"))), "StateBucket"),
            sid(allow(&["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem"], json!(lock)), "Lock"),
        ])
    };
    // What the workspaces' data sources read but another team owns.
    let foreign = document(vec![sid(
        json!({
            "Effect": "Deny",
            "Action": ["kms:GetKeyPolicy", "s3:GetBucketPolicy", "secretsmanager:GetResourcePolicy"],
            "Resource": [
                format!("arn:aws:kms:{}:{acct}:key/{}", iam.region, crate::world::stable_uuid(&format!("{acct}/secops-audit"))),
                format!("arn:aws:s3:::{}", org.buckets[BUCKET_FINANCE].name),
                org.secrets[SECRET_STRIPE].arn.clone(),
            ],
        }),
        "OtherTeamsResources",
    )]);
    let team = |name: &str| vec![("team", org.teams[TEAM_PLATFORM].name.to_string()), ("purpose", name.to_string())];
    iam.role(RoleSpec {
        name: crate::iac::PLAN_ROLE.to_string(),
        trust: github(&format!("repo:{}:*", crate::iac::REPO)),
        inline: vec![("terraform-state".to_string(), state_doc(false)), ("deny-foreign".to_string(), foreign.clone())],
        managed: vec![Managed::Aws("ReadOnlyAccess")],
        boundary: None,
        tags: team("terraform-plan"),
        created: long_ago(crate::iac::PLAN_ROLE),
        instance_profile: false,
    });
    iam.role(RoleSpec {
        name: crate::iac::APPLY_ROLE.to_string(),
        trust: github(&format!("repo:{}:ref:refs/heads/main", crate::iac::REPO)),
        inline: vec![("terraform-state".to_string(), state_doc(true)), ("deny-foreign".to_string(), foreign)],
        managed: vec![Managed::Aws("AdministratorAccess")],
        boundary: None,
        tags: team("terraform-apply"),
        created: long_ago(crate::iac::APPLY_ROLE),
        instance_profile: false,
    });
    let deploy = document(vec![
        sid(
            allow(&["cloudformation:*"], json!(format!("arn:aws:cloudformation:{}:{acct}:stack/*", iam.region))),
            "Stacks",
        ),
        sid(
            allow(&["s3:PutObject", "s3:GetObject"], json!(format!("arn:aws:s3:::{}/*", org.buckets[BUCKET_SAM].name))),
            "Packages",
        ),
        sid(allow(&["iam:PassRole"], json!(format!("arn:aws:iam::{acct}:role/cfn-exec-role"))), "PassStackRole"),
        sid(
            allow(
                &[
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:CompleteLayerUpload",
                    "ecr:GetAuthorizationToken",
                    "ecr:InitiateLayerUpload",
                    "ecr:PutImage",
                    "ecr:UploadLayerPart",
                    "ecs:DescribeServices",
                    "ecs:DescribeTaskDefinition",
                    "ecs:RegisterTaskDefinition",
                    "ecs:UpdateService",
                    "eks:DescribeCluster",
                ],
                json!("*"),
            ),
            "Containers",
        ),
    ]);
    iam.role(RoleSpec {
        name: "github-actions-deploy".to_string(),
        trust: github("repo:acme/*"),
        inline: vec![("deploy".to_string(), deploy)],
        managed: vec![],
        boundary: None,
        tags: team("deploy"),
        created: long_ago("github-actions-deploy"),
        instance_profile: false,
    });
    let stack_roles = document(vec![sid(
        allow(
            &[
                "iam:AttachRolePolicy",
                "iam:CreateRole",
                "iam:DeleteRole",
                "iam:DeleteRolePolicy",
                "iam:DetachRolePolicy",
                "iam:GetRole",
                "iam:PassRole",
                "iam:PutRolePolicy",
                "iam:TagRole",
            ],
            json!(format!("arn:aws:iam::{acct}:role/*-role")),
        ),
        "FunctionRoles",
    )]);
    iam.role(RoleSpec {
        name: "cfn-exec-role".to_string(),
        trust: trust_service("cloudformation.amazonaws.com"),
        inline: vec![("function-roles".to_string(), stack_roles)],
        managed: vec![Managed::Aws("PowerUserAccess")],
        boundary: None,
        tags: team("cloudformation"),
        created: long_ago("cfn-exec-role"),
        instance_profile: false,
    });
    for (role, service, _) in crate::cloud::SERVICE_LINKED {
        let policy = match role {
            "AWSServiceRoleForConfig" => "AWSConfigServiceRolePolicy",
            "AWSServiceRoleForAccessAnalyzer" => "AccessAnalyzerServiceRolePolicy",
            _ if account != PROD => continue,
            _ => "AWSBackupServiceLinkedRolePolicyForBackup",
        };
        iam.role(RoleSpec {
            name: role.to_string(),
            trust: trust_service(service),
            inline: vec![],
            managed: vec![Managed::Aws(policy)],
            boundary: None,
            tags: vec![],
            created: long_ago(role),
            instance_profile: false,
        });
    }
}

fn iam(sim: &Simulation, account: usize, t: i64) -> Value {
    let org = &sim.org;
    let mut iam = Iam::new(sim, account);
    let acct = iam.acct.clone();
    let long_ago = |name: &str| before_start(sim, &format!("{acct}/{name}"), 300, 1200);

    // IAM Identity Center roles.
    for team in 0..org.teams.len() {
        if !org.teams[team].accounts.contains(&account) {
            continue;
        }
        let created = if team == TEAM_ML {
            match ml_since(sim) {
                Some(since) if t >= since => since - 1800,
                _ => continue,
            }
        } else {
            long_ago(org.teams[team].permission_set)
        };
        let (managed, inline) = permission_set(&iam, team, t);
        let saml = format!("arn:aws:iam::{acct}:saml-provider/AWSSSO_{}_DO_NOT_DELETE", short_hash(&acct, 16));
        iam.role(RoleSpec {
            name: org.sso_role_name(team),
            trust: trust(vec![json!({
                "Effect": "Allow",
                "Principal": {"Federated": saml},
                "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession"],
                "Condition": {"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}},
            })]),
            inline,
            managed,
            boundary: None,
            tags: vec![],
            created,
            instance_profile: false,
        });
    }

    // Workload roles, from the day they are deployed.
    for svc in org.services.iter().filter(|s| s.account == account && s.launched.is_none_or(|l| t >= l)) {
        let (mut managed, mut inline) = service_permissions(&iam, svc);
        if svc.role == "ingest-lambda-role" {
            let grants = creep_grants(sim, t);
            let doc = |action: &str| document(vec![allow(&[action], json!("*"))]);
            for i in 0..grants {
                match i {
                    0 => managed.push(Managed::Aws("AmazonS3FullAccess")),
                    1 => inline.push(("debug-secrets".to_string(), doc("secretsmanager:*"))),
                    2 => managed.push(Managed::Aws("AmazonAthenaFullAccess")),
                    3 => managed.push(Managed::Aws("IAMReadOnlyAccess")),
                    _ => inline.push(("kms-any".to_string(), doc("kms:*"))),
                }
            }
        }
        iam.role(RoleSpec {
            name: svc.role.to_string(),
            trust: service_trust(&iam, svc),
            inline,
            managed,
            boundary: None,
            tags: vec![("team", org.teams[svc.team].name.to_string()), ("service", svc.name.to_string())],
            created: svc.launched.map_or_else(|| long_ago(svc.role), |l| l - 5 * 60),
            instance_profile: svc.runtime == Runtime::Ec2,
        });
    }

    // The roles CI and CloudFormation work through, and AWS's own.
    ci_roles(&mut iam, account, &long_ago);

    // The role the AWS MCP server assumes per tool call.
    let mut actions: Vec<String> = Vec::new();
    for (i, tool) in org.tools.iter().enumerate() {
        if let Reach::Aws { call } = tool.reach
            && tool_registered(sim, i).is_some_and(|since| t >= since)
        {
            actions.push(iam_action(&call));
        }
    }
    actions.sort();
    actions.dedup();
    let actions: Vec<&str> = actions.iter().map(String::as_str).collect();
    iam.role(RoleSpec {
        name: "mcp-aws-tools".to_string(),
        trust: trust(vec![json!({
            "Effect": "Allow",
            "Principal": {"AWS": org.role_arn(PROD, "aws-mcp-task")},
            "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
            "Condition": {"StringLike": {"sts:SourceIdentity": format!("*@{}", org.domain)}},
        })]),
        inline: vec![("mcp-tool-actions".to_string(), document(vec![sid(allow(&actions, json!("*")), "ToolCalls")]))],
        managed: vec![],
        boundary: None,
        tags: vec![("team", org.teams[TEAM_PLATFORM].name.to_string()), ("service", "aws-mcp".to_string())],
        created: long_ago("mcp-aws-tools"),
        instance_profile: false,
    });

    // Deploy, cross-account and break-glass roles.
    if account == DEV {
        iam.role(RoleSpec {
            name: "dev-deploy".to_string(),
            trust: trust_aws(&org.sso_role(TEAM_PAYMENTS, DEV), &["sts:AssumeRole"]),
            inline: vec![],
            managed: vec![Managed::Aws("PowerUserAccess")],
            boundary: None,
            tags: vec![("team", org.teams[TEAM_PLATFORM].name.to_string()), ("purpose", "deploy".to_string())],
            created: long_ago("dev-deploy"),
            instance_profile: false,
        });
    }
    if account == PROD {
        iam.role(RoleSpec {
            name: "prod-cross-account-readonly".to_string(),
            trust: trust_aws(&org.role_arn(DEV, "dev-deploy"), &["sts:AssumeRole"]),
            inline: vec![],
            managed: vec![Managed::Aws("ReadOnlyAccess")],
            boundary: Some(Managed::Customer("CrossAccountReadOnlyBoundary")),
            tags: vec![
                ("team", org.teams[TEAM_PLATFORM].name.to_string()),
                ("purpose", "cross-account-read".to_string()),
            ],
            created: long_ago("prod-cross-account-readonly"),
            instance_profile: false,
        });
        iam.role(RoleSpec {
            name: "prod-break-glass-admin".to_string(),
            trust: trust_aws(&org.role_arn(PROD, "prod-cross-account-readonly"), &["sts:AssumeRole"]),
            inline: vec![],
            managed: vec![Managed::Aws("AdministratorAccess")],
            boundary: None,
            tags: vec![("team", org.teams[TEAM_SECOPS].name.to_string()), ("purpose", "break-glass".to_string())],
            created: long_ago("prod-break-glass-admin"),
            instance_profile: false,
        });
    }

    // Legacy IAM users with long-lived keys.
    let legacy: Vec<&Person> =
        org.people.iter().filter(|p| p.iam_user.as_ref().is_some_and(|u| u.account == account)).collect();
    if !legacy.is_empty() {
        let me = format!("arn:aws:iam::{acct}:user/${{aws:username}}");
        let doc = document(vec![
            sid(
                allow(
                    &[
                        "iam:CreateAccessKey",
                        "iam:DeleteAccessKey",
                        "iam:GetUser",
                        "iam:ListAccessKeys",
                        "iam:ListAttachedUserPolicies",
                        "iam:ListGroupsForUser",
                        "iam:ListMFADevices",
                        "iam:ListUserPolicies",
                        "iam:UpdateAccessKey",
                    ],
                    json!(me),
                ),
                "ManageOwnCredentials",
            ),
            sid(allow(&["iam:ListUsers"], json!("*")), "ListUsers"),
            sid(
                json!({
                    "Effect": "Deny",
                    "Action": [
                        "iam:CreateAccessKey",
                        "iam:CreateLoginProfile",
                        "iam:DeactivateMFADevice",
                        "iam:DeleteAccessKey",
                        "iam:UpdateAccessKey",
                        "iam:UpdateLoginProfile",
                    ],
                    "Resource": "*",
                    "Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}},
                }),
                "DenyCredentialChangesWithoutMFA",
            ),
            sid(
                statement("Deny", &["secretsmanager:GetSecretValue", "secretsmanager:ListSecrets"], json!("*")),
                "DenySecretsToLongLivedKeys",
            ),
        ]);
        iam.group("legacy-engineers", vec![("legacy-key-hygiene".to_string(), doc)], &[], long_ago("legacy-engineers"));
        for p in legacy {
            let Some(u) = &p.iam_user else { continue };
            let managed = if p.team == TEAM_PLATFORM {
                Managed::Aws("PowerUserAccess")
            } else {
                Managed::Customer("LegacyDeveloperAccess")
            };
            let tags = vec![("owner", p.email.clone()), ("team", org.teams[p.team].name.to_string())];
            iam.user(&u.name, &["legacy-engineers"], vec![], &[managed], tags, before_start(sim, &u.name, 700, 1500));
        }
    }

    // The reporting service user (the dormant-reactivation scenario's).
    if account == PROD
        && let Some(d) = sim.plans.iter().find_map(|p| p.dormant())
    {
        let (_, finance) = iam.bucket(BUCKET_FINANCE);
        let doc = document(vec![
            sid(
                json!({
                    "Effect": "Allow",
                    "Action": "s3:PutObject",
                    "Resource": finance,
                    "Condition": {"IpAddress": {"aws:SourceIp": REPORTING_HOST}},
                }),
                "UploadReportsFromReportingHost",
            ),
            sid(
                // The grant nobody remembers: broad read, from anywhere, left
                // over from when the job ran on an analyst's laptop.
                json!({
                    "Effect": "Allow",
                    "Action": ["s3:Get*", "s3:List*"],
                    "Resource": "*",
                }),
                "LegacyReadForReportBuilder",
            ),
        ]);
        let tags = vec![
            ("team", org.teams[TEAM_FINOPS].name.to_string()),
            ("purpose", "nightly cost report export".to_string()),
        ];
        iam.user(
            &d.user,
            &[],
            vec![("finance-report-upload".to_string(), doc)],
            &[Managed::Aws("AWSBillingReadOnlyAccess")],
            tags,
            before_start(sim, &d.user, 900, 1400),
        );
    }

    iam.finish()
}

// ----- SCIM -----

fn list_response(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [SCIM_LIST],
        "totalResults": resources.len(),
        "itemsPerPage": resources.len(),
        "startIndex": 1,
        "Resources": resources,
    })
}

fn group_name(sim: &Simulation, team: usize) -> String {
    format!("team-{}", sim.org.teams[team].name)
}

/// When a person's group membership last changed, as of `t`.
fn moved_at(sim: &Simulation, person: usize, t: i64) -> Option<i64> {
    sim.plans.iter().filter_map(|p| p.reorg_switch(person)).filter(|&s| t >= s).max()
}

/// Whether person `p` has an account in the identity provider at `t`.
fn exists(sim: &Simulation, p: usize, t: i64) -> bool {
    sim.org.person(p).created.is_none_or(|c| t >= c)
}

fn scim_users(sim: &Simulation, t: i64) -> Value {
    let org = &sim.org;
    let mut users = Vec::with_capacity(org.headcount());
    for i in (0..org.headcount()).filter(|&i| exists(sim, i, t)) {
        let p = org.person(i);
        let team = sim.team_at(i, t);
        let created = p.created.unwrap_or_else(|| before_start(sim, &p.okta_id, 30, 1500));
        let modified = moved_at(sim, i, t).map_or(created, |s| s - 1800);
        let (given, family) = (cap(p.first), cap(p.last));
        let mut user = json!({
            "schemas": [SCIM_USER, SCIM_ENTERPRISE],
            "id": p.okta_id,
            "userName": p.email,
            "name": {"givenName": given, "familyName": family, "formatted": format!("{given} {family}")},
            "displayName": format!("{given} {family}"),
            "emails": [{"value": p.email, "type": "work", "primary": true}],
            "title": p.title,
            "active": true,
            "groups": [{"value": org.teams[team].okta_group_id, "display": group_name(sim, team)}],
            "meta": {"resourceType": "User", "created": iso(sim, created), "lastModified": iso(sim, modified)},
        });
        user[SCIM_ENTERPRISE] = json!({"department": org.teams[team].department});
        users.push(user);
    }
    list_response(users)
}

fn scim_groups(sim: &Simulation, t: i64) -> Value {
    let org = &sim.org;
    let mut groups = Vec::with_capacity(org.teams.len());
    for team in 0..org.teams.len() {
        let created = if team == TEAM_ML {
            match ml_since(sim) {
                Some(since) if t >= since => since - 1800,
                _ => continue,
            }
        } else {
            before_start(sim, &org.teams[team].okta_group_id, 400, 1500)
        };
        let members: Vec<usize> =
            (0..org.headcount()).filter(|&p| exists(sim, p, t) && sim.team_at(p, t) == team).collect();
        // Membership changes: people moving in or out of this group, people joining it.
        let modified = (0..org.people.len())
            .filter(|&p| org.people[p].team == team || sim.team_at(p, t) == team)
            .filter_map(|p| moved_at(sim, p, t))
            .map(|s| s - 1800)
            .chain(org.hires.iter().filter(|h| h.team == team).filter_map(|h| h.created).filter(|&c| t >= c))
            .max()
            .unwrap_or(created)
            .max(created);
        groups.push(json!({
            "schemas": [SCIM_GROUP],
            "id": org.teams[team].okta_group_id,
            "displayName": group_name(sim, team),
            "members": members.iter().map(|&p| json!({"value": org.person(p).okta_id, "display": org.person(p).email, "type": "User"})).collect::<Vec<_>>(),
            "meta": {"resourceType": "Group", "created": iso(sim, created), "lastModified": iso(sim, modified)},
        }));
    }
    list_response(groups)
}

// ----- Kubernetes RBAC -----

fn k8s_meta(
    sim: &Simulation,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    labels: Value,
    annotations: Value,
) -> Value {
    let key = format!("{kind}/{}/{name}", namespace.unwrap_or(""));
    let mut r = rng::rng(sim.config.seed, "k8s-meta", &[fnv(&key)]);
    let mut meta = json!({
        "name": name,
        "uid": stable_uuid(&format!("{}/{key}", sim.config.seed)),
        "resourceVersion": r.u32(1_000..9_000_000).to_string(),
        "creationTimestamp": iso(sim, before_start(sim, &key, 60, 900)),
    });
    if let Some(ns) = namespace {
        meta["namespace"] = json!(ns);
    }
    if labels.as_object().is_some_and(|m| !m.is_empty()) {
        meta["labels"] = labels;
    }
    if annotations.as_object().is_some_and(|m| !m.is_empty()) {
        meta["annotations"] = annotations;
    }
    meta
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
}

fn cluster_role(sim: &Simulation, name: &str, labels: Value, rules: Vec<Value>, aggregate_from: Option<&str>) -> Value {
    let defaults = name == "cluster-admin" || name == "view" || name == "edit" || name.starts_with("system:");
    let annotations = if defaults { json!({"rbac.authorization.kubernetes.io/autoupdate": "true"}) } else { json!({}) };
    let mut labels = labels;
    if defaults {
        labels["kubernetes.io/bootstrapping"] = json!("rbac-defaults");
    }
    let mut role = json!({
        "apiVersion": RBAC,
        "kind": "ClusterRole",
        "metadata": k8s_meta(sim, "ClusterRole", None, name, labels, annotations),
        "rules": rules,
    });
    if let Some(label) = aggregate_from {
        role["aggregationRule"] = json!({"clusterRoleSelectors": [{"matchLabels": {label: "true"}}]});
    }
    role
}

fn binding(
    sim: &Simulation,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    role_kind: &str,
    role: &str,
    subjects: Vec<Value>,
) -> Value {
    json!({
        "apiVersion": RBAC,
        "kind": kind,
        "metadata": k8s_meta(sim, kind, namespace, name, json!({}), json!({})),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": subjects,
    })
}

fn group_subject(name: &str) -> Value {
    json!({"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": name})
}

fn sa_subject(ns: &str, name: &str) -> Value {
    json!({"kind": "ServiceAccount", "name": name, "namespace": ns})
}

fn k8s_rbac(sim: &Simulation) -> Value {
    let org = &sim.org;
    const TO_VIEW: &str = "rbac.authorization.k8s.io/aggregate-to-view";
    const TO_EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
    const TO_ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";
    let read = ["get", "list", "watch"];
    let write = ["create", "delete", "deletecollection", "patch", "update"];

    let view_base = vec![
        rule(
            &[""],
            &[
                "configmaps",
                "endpoints",
                "persistentvolumeclaims",
                "pods",
                "replicationcontrollers",
                "serviceaccounts",
                "services",
            ],
            &read,
        ),
        rule(&[""], &["events", "limitranges", "namespaces", "pods/status", "resourcequotas"], &read),
        rule(&["apps"], &["daemonsets", "deployments", "deployments/scale", "replicasets", "statefulsets"], &read),
        rule(&["autoscaling"], &["horizontalpodautoscalers"], &read),
        rule(&["batch"], &["cronjobs", "jobs"], &read),
        rule(&["networking.k8s.io"], &["ingresses", "networkpolicies"], &read),
    ];
    let view_extra = vec![rule(&[""], &["pods/log"], &read)];
    let edit_base = vec![
        rule(
            &[""],
            &["pods/attach", "pods/exec", "pods/portforward", "pods/proxy", "secrets", "services/proxy"],
            &["get", "list", "watch"],
        ),
        rule(&[""], &["serviceaccounts"], &["impersonate"]),
        rule(
            &[""],
            &[
                "configmaps",
                "endpoints",
                "persistentvolumeclaims",
                "pods",
                "replicationcontrollers",
                "secrets",
                "serviceaccounts",
                "services",
            ],
            &write,
        ),
        rule(
            &["apps"],
            &["daemonsets", "deployments", "deployments/rollback", "deployments/scale", "replicasets", "statefulsets"],
            &write,
        ),
        rule(&["autoscaling"], &["horizontalpodautoscalers"], &write),
        rule(&["batch"], &["cronjobs", "jobs"], &write),
        rule(&["networking.k8s.io"], &["ingresses", "networkpolicies"], &write),
    ];
    // What the aggregation controller fills in.
    let view_rules: Vec<Value> = view_base.iter().chain(&view_extra).cloned().collect();
    let edit_rules: Vec<Value> = edit_base.iter().chain(&view_rules).cloned().collect();

    let mut items = vec![
        cluster_role(
            sim,
            "cluster-admin",
            json!({}),
            vec![rule(&["*"], &["*"], &["*"]), json!({"nonResourceURLs": ["*"], "verbs": ["*"]})],
            None,
        ),
        cluster_role(sim, "edit", json!({TO_ADMIN: "true"}), edit_rules, Some(TO_EDIT)),
        cluster_role(sim, "view", json!({TO_EDIT: "true"}), view_rules, Some(TO_VIEW)),
        cluster_role(sim, "system:aggregate-to-edit", json!({TO_EDIT: "true"}), edit_base, None),
        cluster_role(sim, "system:aggregate-to-view", json!({TO_VIEW: "true"}), view_base, None),
        cluster_role(sim, "acme-view-extra", json!({TO_VIEW: "true"}), view_extra, None),
        cluster_role(sim, "impersonator", json!({}), vec![rule(&[""], &["users", "groups"], &["impersonate"])], None),
        binding(
            sim,
            "ClusterRoleBinding",
            None,
            "platform-engineers",
            "ClusterRole",
            "cluster-admin",
            vec![group_subject("platform-engineers")],
        ),
    ];
    if let Some(ci) = org.services.iter().find(|s| s.name == "ci-deployer")
        && let Some((ns, sa)) = ci.k8s_sa
    {
        items.push(binding(sim, "ClusterRoleBinding", None, sa, "ClusterRole", "edit", vec![sa_subject(ns, sa)]));
    }
    items.push(binding(
        sim,
        "ClusterRoleBinding",
        None,
        "k8s-mcp-impersonator",
        "ClusterRole",
        "impersonator",
        vec![sa_subject("agents", "k8s-mcp")],
    ));

    for team in &org.teams {
        let Some(ns) = team.k8s_namespace else { continue };
        items.push(json!({
            "apiVersion": RBAC,
            "kind": "Role",
            "metadata": k8s_meta(sim, "Role", Some(ns), "developer", json!({}), json!({})),
            "rules": [
                rule(&[""], &["pods", "pods/log", "configmaps", "services", "events"], &read),
                rule(&["apps"], &["deployments", "replicasets"], &read),
                {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": [format!("{ns}-feature-flags")], "verbs": ["update", "patch"]},
            ],
        }));
        let group = format!("{}-engineers", team.name);
        items.push(binding(sim, "RoleBinding", Some(ns), &group, "Role", "developer", vec![group_subject(&group)]));
    }
    for svc in &org.services {
        let Some((ns, sa)) = svc.k8s_sa else { continue };
        if svc.name == "ci-deployer" {
            continue;
        }
        let mut rules = Vec::new();
        for habit in &svc.habits {
            if let Act::K8s { verb, resource } = habit.act {
                let group = if resource == "leases" { "coordination.k8s.io" } else { "" };
                let verbs: &[&str] =
                    if verb == "update" { &["get", "create", "update"] } else { &["get", "list", "watch"] };
                rules.push(rule(&[group], &[resource], verbs));
            }
        }
        if rules.is_empty() {
            continue;
        }
        items.push(json!({
            "apiVersion": RBAC,
            "kind": "Role",
            "metadata": k8s_meta(sim, "Role", Some(ns), svc.name, json!({}), json!({})),
            "rules": rules,
        }));
        items.push(binding(sim, "RoleBinding", Some(ns), svc.name, "Role", svc.name, vec![sa_subject(ns, sa)]));
    }
    json!({"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}})
}

// ----- the agent registry -----

/// The account an agent's AWS tool runs in (as the simulation routes it).
fn tool_account(kind: AgentKind, call: &Call) -> usize {
    if kind == AgentKind::Data || call.source == "athena.amazonaws.com" { DATA } else { PROD }
}

fn reaches(reach: &Reach) -> String {
    match reach {
        Reach::Aws { call } => format!("aws:{}", iam_action(call)),
        Reach::K8s { verb, resource } => format!("k8s:{verb}:{resource}"),
        Reach::Saas { host } => format!("saas:{host}"),
        Reach::Web { post } => if *post { "web:post" } else { "web:get" }.to_string(),
    }
}

fn server_identity(sim: &Simulation, server: &str) -> Option<String> {
    match server {
        "aws-mcp" => Some(sim.org.role_arn(PROD, "aws-mcp-task")),
        "k8s-mcp" => Some("system:serviceaccount:agents:k8s-mcp".to_string()),
        _ => None,
    }
}

fn agent_registry(sim: &Simulation, t: i64) -> Value {
    let org = &sim.org;
    let mut servers: Vec<&str> = Vec::new();
    for tool in &org.tools {
        if !servers.contains(&tool.server) {
            servers.push(tool.server);
        }
    }
    let servers: Vec<Value> = servers
        .iter()
        .map(|&server| {
            let tools: Vec<Value> = org
                .tools
                .iter()
                .enumerate()
                .filter(|(i, tool)| tool.server == server && tool_registered(sim, *i).is_some_and(|since| t >= since))
                .map(|(_, tool)| json!({"name": tool.name, "description": tool.description, "reaches": reaches(&tool.reach)}))
                .collect();
            let mut s = json!({
                "name": server,
                "transport": "streamable-http",
                "endpoint": format!("https://{server}.tools.acme.internal/mcp"),
                "tools": tools,
            });
            if let Some(identity) = server_identity(sim, server) {
                s["identity"] = json!(identity);
            }
            s
        })
        .collect();

    let mut agents = Vec::with_capacity(org.agents.len());
    for (i, a) in org.agents.iter().enumerate() {
        let mut tools: Vec<usize> = Vec::new();
        for (tool, _) in sim.tool_choices(i, t) {
            if !tools.contains(&tool) {
                tools.push(tool);
            }
        }
        let mut scopes = BTreeSet::new();
        let registered = |tool: usize| -> i64 {
            if a.tools.contains(&tool) {
                return 0;
            }
            match tool {
                TOOL_SEMANTIC_SEARCH => sim.evolution.reroute_at,
                TOOL_COST_REPORT => sim
                    .plans
                    .iter()
                    .flat_map(|p| p.adoptions.iter())
                    .find(|(agent, _)| *agent == i)
                    .map_or(0, |&(_, since)| since),
                _ => 0,
            }
        };
        let tool_list: Vec<Value> = tools
            .iter()
            .map(|&tool| {
                let def = &org.tools[tool];
                scopes.insert(match def.reach {
                    Reach::Aws { call } => {
                        format!("aws:{}:role/mcp-aws-tools", org.accounts[tool_account(a.kind, &call)].name)
                    }
                    Reach::K8s { .. } => "k8s:impersonate".to_string(),
                    Reach::Saas { host: "api.github.com" } => "github:repo".to_string(),
                    Reach::Saas { host } => format!("saas:{host}"),
                    Reach::Web { post: false } => "web:fetch".to_string(),
                    Reach::Web { post: true } => "web:post".to_string(),
                });
                json!({"name": def.name, "server": def.server, "registered_at": iso(sim, registered(tool))})
            })
            .collect();
        agents.push(json!({
            "id": a.id,
            "name": a.name,
            "kind": a.kind.as_str(),
            "owner": org.people[a.owner].email,
            "users": a.users.iter().map(|&u| org.people[u].email.as_str()).collect::<Vec<_>>(),
            "model": a.model,
            "app": a.app,
            "tools": tool_list,
            "delegated_scopes": scopes.into_iter().collect::<Vec<_>>(),
        }));
    }
    json!({
        "format": REGISTRY_FORMAT,
        "generated_at": iso(sim, t),
        "servers": servers,
        "agents": agents,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, ScenarioKind};

    fn sim(seed: u64) -> Simulation {
        Simulation::new(Config {
            seed,
            days: 14,
            humans: 30,
            agents: 8,
            scenarios: ScenarioKind::ALL.to_vec(),
            ..Default::default()
        })
    }

    fn parse(files: &[(String, Vec<u8>)], name: &str) -> Value {
        let (_, bytes) = files.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no {name}"));
        assert_eq!(bytes.last(), Some(&b'\n'));
        serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn role<'v>(iam: &'v Value, name: &str) -> Option<&'v Value> {
        iam["RoleDetailList"].as_array()?.iter().find(|r| r["RoleName"] == name)
    }

    #[test]
    fn times_are_sorted_unique_within_the_run() {
        let s = sim(1);
        let times = snapshot_times(&s);
        let total = i64::from(s.config.days) * DAY;
        assert_eq!(times[0], 0);
        assert!(times.windows(2).all(|w| w[0] < w[1]));
        assert!(times.iter().all(|&t| t < total && t % DAY == 0));
        assert!(times.contains(&day_after(s.evolution.reroute_at)));
        assert!(times.len() > 3);
    }

    #[test]
    fn snapshots_are_deterministic() {
        let (a, b) = (sim(7), sim(7));
        for t in snapshot_times(&a) {
            assert_eq!(snapshot(&a, t), snapshot(&b, t));
        }
        assert_ne!(snapshot(&a, 0), snapshot(&sim(8), 0));
    }

    #[test]
    fn iam_files_have_the_authorization_details_shape() {
        let s = sim(1);
        let files = snapshot(&s, 0);
        for account in &s.org.accounts {
            let iam = parse(&files, &format!("aws-iam-{}.json", account.name));
            let keys: Vec<&str> = iam.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(keys.len(), 4);
            for key in ["UserDetailList", "GroupDetailList", "RoleDetailList", "Policies"] {
                assert!(iam[key].is_array(), "{key}");
            }
            let mcp = role(&iam, "mcp-aws-tools").expect("mcp-aws-tools");
            assert_eq!(
                mcp["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["AWS"],
                s.org.role_arn(PROD, "aws-mcp-task")
            );
            // Every attached policy is listed with its document.
            let listed: BTreeSet<&str> =
                iam["Policies"].as_array().unwrap().iter().map(|p| p["Arn"].as_str().unwrap()).collect();
            for entity in ["UserDetailList", "GroupDetailList", "RoleDetailList"] {
                for e in iam[entity].as_array().unwrap() {
                    for p in e["AttachedManagedPolicies"].as_array().unwrap() {
                        assert!(listed.contains(p["PolicyArn"].as_str().unwrap()), "{}", p["PolicyArn"]);
                    }
                }
            }
            for p in iam["Policies"].as_array().unwrap() {
                assert!(
                    p["PolicyVersionList"][0]["Document"]["Statement"].as_array().is_some_and(|s| !s.is_empty()),
                    "{}",
                    p["PolicyName"]
                );
            }
        }
        let prod = parse(&files, "aws-iam-acme-prod.json");
        let chain = role(&prod, "prod-break-glass-admin").expect("break-glass");
        assert_eq!(chain["AttachedManagedPolicies"][0]["PolicyName"], "AdministratorAccess");
        let ro = role(&prod, "prod-cross-account-readonly").expect("cross-account");
        assert!(
            ro["PermissionsBoundary"]["PermissionsBoundaryArn"]
                .as_str()
                .unwrap()
                .ends_with("policy/CrossAccountReadOnlyBoundary")
        );
        let dev = parse(&files, "aws-iam-acme-dev.json");
        let deploy = role(&dev, "dev-deploy").expect("dev-deploy");
        assert_eq!(
            deploy["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["AWS"],
            s.org.sso_role(TEAM_PAYMENTS, DEV)
        );
    }

    fn first_with_reorg() -> Simulation {
        (1..40)
            .map(sim)
            .find(|s| s.plans.iter().any(|p| p.kind == Kind::TeamReorg && !p.switches.is_empty()))
            .expect("a seed with people to move")
    }

    #[test]
    fn a_reorg_moves_scim_membership_and_adds_the_ml_role() {
        let s = first_with_reorg();
        let plan = plan_of(&s, Kind::TeamReorg).unwrap();
        let (person, _) = plan.switches[0];
        let okta = &s.org.people[person].okta_id;
        let members = |groups: &Value, name: &str| -> Vec<String> {
            groups["Resources"]
                .as_array()
                .unwrap()
                .iter()
                .find(|g| g["displayName"] == name)
                .map(|g| {
                    g["members"].as_array().unwrap().iter().map(|m| m["value"].as_str().unwrap().to_string()).collect()
                })
                .unwrap_or_default()
        };
        let times = snapshot_times(&s);
        let before = snapshot(&s, 0);
        let after = snapshot(&s, *times.last().unwrap());
        let (g0, g1) = (parse(&before, "scim-groups.json"), parse(&after, "scim-groups.json"));
        assert!(members(&g0, "team-analytics").contains(okta));
        assert!(!g0["Resources"].as_array().unwrap().iter().any(|g| g["displayName"] == "team-ml"));
        assert!(!members(&g1, "team-analytics").contains(okta));
        assert!(members(&g1, "team-ml").contains(okta));
        let users = parse(&after, "scim-users.json");
        let user = users["Resources"].as_array().unwrap().iter().find(|u| u["id"] == *okta).unwrap();
        assert_eq!(user["groups"][0]["display"], "team-ml");
        assert_eq!(users["totalResults"], s.org.headcount(), "staff and the new hire");

        let ml = s.org.sso_role_name(TEAM_ML);
        assert!(role(&parse(&before, "aws-iam-acme-data.json"), &ml).is_none());
        assert!(role(&parse(&after, "aws-iam-acme-data.json"), &ml).is_some());
    }

    #[test]
    fn permission_creep_grows_the_role_across_snapshots() {
        let s = sim(3);
        let grants = |t: i64| {
            let iam = parse(&snapshot(&s, t), "aws-iam-acme-data.json");
            let r = role(&iam, "ingest-lambda-role").expect("ingest-lambda-role").clone();
            r["AttachedManagedPolicies"].as_array().unwrap().len() + r["RolePolicyList"].as_array().unwrap().len()
        };
        let counts: Vec<usize> = snapshot_times(&s).into_iter().map(grants).collect();
        assert!(counts.windows(2).all(|w| w[0] <= w[1]), "{counts:?}");
        assert!(counts.last() > counts.first(), "{counts:?}");
        assert_eq!(counts[0], 2);
    }

    #[test]
    fn the_registry_follows_reroute_and_rollout() {
        let s = sim(5);
        let times = snapshot_times(&s);
        let tools_of = |t: i64, kind: &str| -> BTreeSet<String> {
            let reg = parse(&snapshot(&s, t), "agents.json");
            assert_eq!(reg["format"], REGISTRY_FORMAT);
            reg["agents"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["kind"] == kind)
                .flat_map(|a| a["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_string()))
                .collect()
        };
        let last = *times.last().unwrap();
        assert!(!tools_of(0, "coding").contains("semantic_code_search"));
        assert!(tools_of(last, "coding").contains("semantic_code_search"));
        assert!(!tools_of(0, "assistant").contains("cost_report"));
        assert!(tools_of(last, "assistant").contains("cost_report"));
        let reg = parse(&snapshot(&s, 0), "agents.json");
        let aws = reg["servers"].as_array().unwrap().iter().find(|s| s["name"] == "aws-mcp").unwrap();
        assert!(aws["tools"].as_array().unwrap().iter().any(|t| t["reaches"] == "aws:cloudwatch:GetMetricData"));
        assert!(!aws["tools"].as_array().unwrap().iter().any(|t| t["name"] == "cost_report"));
    }
}
