//! AWS acting on its own and on its callers' behalf.
//!
//! - On a caller's behalf, as the caller (`invokedBy` set): Secrets Manager
//!   and SSM decrypting with KMS for `GetSecretValue` and SecureString
//!   parameters; Athena reading the Glue catalog and S3 and writing the
//!   results for a query.
//! - On its own, through service-linked roles: Config describing what it
//!   records (hourly, and a daily snapshot), Access Analyzer reading every
//!   resource policy, AWS Backup backing up tables and volumes at night.
//! - CloudTrail calling `kms:GenerateDataKey` for every log file it
//!   delivers.

use fastrand::Rng;
use serde_json::json;
use tenet_model::Timestamp;

use crate::HOUR;
use crate::org::*;
use crate::record::*;
use crate::rng;
use crate::world::{Hour, Simulation, stable_uuid};

/// A service-linked role, the service that assumes it and its session name.
pub const SERVICE_LINKED: [(&str, &str, &str); 3] = [
    ("AWSServiceRoleForConfig", "config.amazonaws.com", "AWSConfig-Describe"),
    ("AWSServiceRoleForAccessAnalyzer", "access-analyzer.amazonaws.com", "access-analyzer"),
    ("AWSServiceRoleForBackup", "backup.amazonaws.com", "AWSBackup-AWSServiceRoleForBackup"),
];

impl Simulation {
    /// Pushes a call and what AWS services do on the caller's behalf because
    /// of it.
    pub fn push_call(&self, r: &mut Rng, trail: Trail, out: &mut Hour) {
        let follows = self.on_behalf(r, &trail);
        out.push(Record::Trail(trail));
        for f in follows {
            out.push(Record::Trail(f));
        }
    }

    /// The account's KMS key, as `Target::Key` names it.
    pub fn kms_key(&self, account: usize) -> String {
        let a = self.org.account(account);
        format!("arn:aws:kms:{}:{}:key/{}", a.region, a.id, stable_uuid(&a.id))
    }

    fn on_behalf(&self, r: &mut Rng, t: &Trail) -> Vec<Trail> {
        if t.error.is_some() || t.invoked_by.is_some() {
            return vec![];
        }
        let region = t.region;
        let acct = self.org.account(t.account).id.clone();
        let follow = |r: &mut Rng, service: &'static str, after: i64, c: Call| {
            let mut f = self.call_trail(
                r,
                t.account,
                t.time - self.config.start.unix_seconds() + after,
                c,
                t.who.clone(),
                service.to_string(),
                service.to_string(),
            );
            f.invoked_by = Some(service);
            f
        };
        let decrypt = call("kms.amazonaws.com", "Decrypt", true, Target::Key);
        match (t.call.source, t.call.name) {
            ("secretsmanager.amazonaws.com", "GetSecretValue") => {
                let Target::Secret(s) = t.call.target else { return vec![] };
                let arn = &self.org.secrets[s].arn;
                let mut f = follow(r, "secretsmanager.amazonaws.com", 0, decrypt);
                f.request = Some(json!({
                    "encryptionContext": {"SecretARN": arn, "SecretVersionId": stable_uuid(&format!("{arn}/v"))},
                    "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
                }));
                vec![f]
            }
            ("ssm.amazonaws.com", "GetParameter") => {
                let Target::Parameter(name) = t.call.target else { return vec![] };
                if !crate::world::secure_parameter(name) {
                    return vec![];
                }
                let mut f = follow(r, "ssm.amazonaws.com", 0, decrypt);
                f.request = Some(json!({
                    "encryptionContext": {"PARAMETER_ARN": format!("arn:aws:ssm:{region}:{acct}:parameter{name}")},
                    "encryptionAlgorithm": "SYMMETRIC_DEFAULT",
                }));
                vec![f]
            }
            ("athena.amazonaws.com", "StartQueryExecution") if t.account == DATA => {
                let mut out = Vec::new();
                let mut after = r.i64(1..3);
                for (name, target) in [
                    ("GetDatabase", Target::Table("lake")),
                    ("GetTable", Target::Table("lake.orders")),
                    ("GetPartitions", Target::Table("lake.orders")),
                ] {
                    out.push(follow(r, "athena.amazonaws.com", after, call("glue.amazonaws.com", name, true, target)));
                }
                for _ in 0..r.usize(2..6) {
                    after += r.i64(0..3);
                    let get = call("s3.amazonaws.com", "GetObject", true, Target::Object(BUCKET_LAKE));
                    out.push(follow(r, "athena.amazonaws.com", after, get));
                }
                after += r.i64(2..20);
                let mut put = follow(
                    r,
                    "athena.amazonaws.com",
                    after,
                    call("s3.amazonaws.com", "PutObject", false, Target::Object(BUCKET_ATHENA_RESULTS)),
                );
                let bucket = &self.org.buckets[BUCKET_ATHENA_RESULTS].name;
                let key = format!("{}.csv", rng::uuid(r));
                put.request = Some(json!({"bucketName": bucket, "key": key}));
                put.resources = vec![
                    ("AWS::S3::Object", format!("arn:aws:s3:::{bucket}/{key}")),
                    ("AWS::S3::Bucket", format!("arn:aws:s3:::{bucket}")),
                ];
                out.push(put);
                out
            }
            _ => vec![],
        }
    }

    /// AWS services' own activity in the hour from `start`.
    pub(crate) fn aws_services_hour(&self, start: i64, out: &mut Hour) {
        let h = start / HOUR;
        let mut r = rng::rng(self.config.seed, "aws-services", &[h as u64]);
        let hour_utc = (self.abs(start) / HOUR).rem_euclid(24);
        for account in 0..self.org.accounts.len() {
            self.trail_data_keys(&mut r, account, start, out);
            // Config records changes all day and snapshots once a day.
            let describes = if hour_utc == 6 { 70 } else { r.usize(4..20) };
            self.config_hour(&mut r, account, start, describes, out);
            if hour_utc % 6 == 2 {
                self.access_analyzer(&mut r, account, start, out);
            }
        }
        if hour_utc == 4 {
            self.backup(&mut r, start, out);
        }
    }

    /// A service-linked role's session in the hour containing `t`, and the
    /// record of the service assuming it (emitted when `out` is given).
    fn service_linked(&self, r: &mut Rng, account: usize, i: usize, at: i64, out: Option<&mut Hour>) -> Who {
        let (role, service, session) = SERVICE_LINKED[i];
        let h = at.div_euclid(HOUR);
        let mut k = rng::rng(self.config.seed, "slr-key", &[account as u64, i as u64, h as u64]);
        let key = format!("ASIA{}", rng::base32(&mut k, 16));
        if let Some(out) = out {
            let acct = self.org.account(account).id.clone();
            let role_arn = format!("arn:aws:iam::{acct}:role/{}{role}", crate::render::role_path(role));
            let mut t = self.call_trail(
                r,
                account,
                at,
                call("sts.amazonaws.com", "AssumeRole", true, Target::NoResource),
                Who::Service { invoked_by: service },
                service.to_string(),
                service.to_string(),
            );
            t.request = Some(json!({"roleArn": role_arn, "roleSessionName": session, "durationSeconds": 3600}));
            t.response = Some(json!({
                "credentials": {
                    "accessKeyId": key,
                    "expiration": Timestamp::from_unix_seconds(self.abs(at) + 3600).to_string(),
                },
                "assumedRoleUser": {
                    "assumedRoleId": format!("{}:{session}", crate::render::role_id(role)),
                    "arn": format!("arn:aws:sts::{acct}:assumed-role/{role}/{session}"),
                },
            }));
            t.resources = vec![("AWS::IAM::Role", role_arn)];
            out.push(Record::Trail(t));
        }
        Who::Role {
            account,
            role: role.to_string(),
            session: session.to_string(),
            key,
            source_identity: None,
            mfa: false,
            federated: None,
        }
    }

    /// A call a service makes through its service-linked role.
    #[allow(clippy::too_many_arguments)]
    fn service_call(
        &self,
        r: &mut Rng,
        account: usize,
        i: usize,
        who: &Who,
        at: i64,
        source: &'static str,
        name: &'static str,
        target: Target,
    ) -> Trail {
        let service = SERVICE_LINKED[i].1;
        let read_only = !matches!(name, "CreateBackup" | "CreateSnapshot" | "CreateTags");
        let mut t = self.call_trail(
            r,
            account,
            at,
            call(source, name, read_only, target),
            who.clone(),
            service.into(),
            service.into(),
        );
        t.invoked_by = Some(service);
        t
    }

    fn config_hour(&self, r: &mut Rng, account: usize, start: i64, describes: usize, out: &mut Hour) {
        let at = start + r.i64(0..120);
        let who = self.service_linked(r, account, 0, at, Some(out));
        let buckets: Vec<usize> =
            (0..self.org.buckets.len()).filter(|&b| self.org.buckets[b].account == account).collect();
        let tables = self.org.tables(account, start);
        let functions = self.org.functions(account, start);
        let mut t = at + 5;
        for _ in 0..describes {
            t += r.i64(0..(HOUR - 300) / describes.max(1) as i64 + 1);
            let (source, name, target) = match r.usize(..14) {
                0 => ("ec2.amazonaws.com", "DescribeInstances", Target::NoResource),
                1 => ("ec2.amazonaws.com", "DescribeSecurityGroups", Target::NoResource),
                2 => ("ec2.amazonaws.com", "DescribeNetworkInterfaces", Target::NoResource),
                3 => ("ec2.amazonaws.com", "DescribeVolumes", Target::NoResource),
                4 => ("iam.amazonaws.com", "ListRoles", Target::NoResource),
                5 => ("iam.amazonaws.com", "ListAttachedRolePolicies", Target::NoResource),
                6 => ("iam.amazonaws.com", "GetPolicy", Target::NoResource),
                7 if !buckets.is_empty() => {
                    let b = buckets[r.usize(..buckets.len())];
                    (
                        "s3.amazonaws.com",
                        ["GetBucketAcl", "GetBucketPolicy", "GetBucketVersioning", "GetBucketEncryption"][r.usize(..4)],
                        Target::Bucket(b),
                    )
                }
                8 if !tables.is_empty() => {
                    ("dynamodb.amazonaws.com", "DescribeTable", Target::Table(tables[r.usize(..tables.len())]))
                }
                9 if !functions.is_empty() => (
                    "lambda.amazonaws.com",
                    "GetFunction20150331v2",
                    Target::Function(functions[r.usize(..functions.len())]),
                ),
                10 => ("kms.amazonaws.com", "DescribeKey", Target::Key),
                11 => ("cloudtrail.amazonaws.com", "DescribeTrails", Target::NoResource),
                12 => ("logs.amazonaws.com", "DescribeLogGroups", Target::NoResource),
                _ => ("config.amazonaws.com", "DescribeConfigurationRecorderStatus", Target::NoResource),
            };
            let mut trail = self.service_call(r, account, 0, &who, t, source, name, target);
            if let Target::Bucket(b) = target {
                trail.request = Some(json!({"bucketName": self.org.buckets[b].name, name_param(name): ""}));
                if name == "GetBucketPolicy" && !self.org.buckets[b].sensitive {
                    trail.error = Some(("NoSuchBucketPolicy", "The bucket policy does not exist".into()));
                }
            }
            out.push(Record::Trail(trail));
        }
    }

    fn access_analyzer(&self, r: &mut Rng, account: usize, start: i64, out: &mut Hour) {
        let at = start + r.i64(300..900);
        let who = self.service_linked(r, account, 1, at, Some(out));
        let mut t = at + 3;
        let mut push = |r: &mut Rng, t: &mut i64, source, name, target, error: Option<(&'static str, &str)>| {
            *t += r.i64(0..3);
            let mut trail = self.service_call(r, account, 1, &who, *t, source, name, target);
            trail.error = error.map(|(c, m)| (c, m.to_string()));
            out.push(Record::Trail(trail));
        };
        push(r, &mut t, "iam.amazonaws.com", "ListRoles", Target::NoResource, None);
        push(r, &mut t, "s3.amazonaws.com", "ListBuckets", Target::NoResource, None);
        for b in (0..self.org.buckets.len()).filter(|&b| self.org.buckets[b].account == account) {
            for name in ["GetBucketPolicyStatus", "GetBucketAcl", "GetBucketPublicAccessBlock"] {
                push(r, &mut t, "s3.amazonaws.com", name, Target::Bucket(b), None);
            }
        }
        push(r, &mut t, "kms.amazonaws.com", "ListKeys", Target::NoResource, None);
        push(r, &mut t, "kms.amazonaws.com", "GetKeyPolicy", Target::Key, None);
        push(r, &mut t, "secretsmanager.amazonaws.com", "ListSecrets", Target::NoResource, None);
        for s in (0..self.org.secrets.len()).filter(|&s| self.org.secrets[s].account == account) {
            push(r, &mut t, "secretsmanager.amazonaws.com", "GetResourcePolicy", Target::Secret(s), None);
        }
        push(r, &mut t, "lambda.amazonaws.com", "ListFunctions20150331", Target::NoResource, None);
        for f in self.org.functions(account, start) {
            let missing = Some(("ResourceNotFoundException", "The resource you requested does not exist."));
            push(r, &mut t, "lambda.amazonaws.com", "GetPolicy20150331v2", Target::Function(f), missing);
        }
        push(r, &mut t, "sqs.amazonaws.com", "ListQueues", Target::NoResource, None);
    }

    fn backup(&self, r: &mut Rng, start: i64, out: &mut Hour) {
        let at = start + r.i64(0..600);
        let who = self.service_linked(r, PROD, 2, at, Some(out));
        let mut t = at + 5;
        for table in self.org.tables(PROD, start) {
            for name in ["DescribeTable", "CreateBackup"] {
                t += r.i64(1..20);
                out.push(Record::Trail(self.service_call(
                    r,
                    PROD,
                    2,
                    &who,
                    t,
                    "dynamodb.amazonaws.com",
                    name,
                    Target::Table(table),
                )));
            }
        }
        for name in ["DescribeVolumes", "CreateSnapshot", "CreateSnapshot", "CreateTags"] {
            t += r.i64(1..20);
            out.push(Record::Trail(self.service_call(
                r,
                PROD,
                2,
                &who,
                t,
                "ec2.amazonaws.com",
                name,
                Target::NoResource,
            )));
        }
    }

    /// CloudTrail asks KMS for a data key for every log file it delivers:
    /// one per five-minute delivery.
    fn trail_data_keys(&self, r: &mut Rng, account: usize, start: i64, out: &mut Hour) {
        let a = self.org.account(account);
        let trail_arn = format!("arn:aws:cloudtrail:{}:{}:trail/acme-management-events", a.region, a.id);
        let bucket = &self.org.buckets[BUCKET_TRAIL].name;
        for i in 0..12 {
            let at = start + i * 300 + r.i64(10..120);
            let stamp = Timestamp::from_unix_seconds(self.abs(at)).to_chrono();
            let object = format!(
                "arn:aws:s3:::{bucket}/AWSLogs/{}/CloudTrail/{}/{}/{}_CloudTrail_{}_{}Z_{}.json.gz",
                a.id,
                a.region,
                stamp.format("%Y/%m/%d"),
                a.id,
                a.region,
                stamp.format("%Y%m%dT%H%M"),
                rng::base62(r, 16)
            );
            let mut t = self.call_trail(
                r,
                account,
                at,
                call("kms.amazonaws.com", "GenerateDataKey", true, Target::Key),
                Who::Service { invoked_by: "cloudtrail.amazonaws.com" },
                "cloudtrail.amazonaws.com".into(),
                "cloudtrail.amazonaws.com".into(),
            );
            t.request = Some(json!({
                "keySpec": "AES_256",
                "encryptionContext": {"aws:cloudtrail:arn": trail_arn, "aws:s3:arn": object},
            }));
            out.push(Record::Trail(t));
        }
    }
}

/// The query parameter CloudTrail shows for an S3 bucket sub-resource read.
fn name_param(name: &str) -> &'static str {
    match name {
        "GetBucketAcl" => "acl",
        "GetBucketPolicy" => "policy",
        "GetBucketVersioning" => "versioning",
        _ => "encryption",
    }
}
