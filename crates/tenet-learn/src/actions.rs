//! What an action is, beyond its name: whether it reads or changes, and
//! whether it touches secrets, credentials, logging, sharing, privilege or
//! trust. Detectors weigh novelty by this, and sequences are made of it.

use tenet_model::Event;

/// Traits of one action (a small bit set).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traits(u16);

impl Traits {
    pub const READ: Traits = Traits(1);
    pub const CHANGE: Traits = Traits(1 << 1);
    /// Reads a secret, a decrypted parameter, a credential.
    pub const SECRET_READ: Traits = Traits(1 << 2);
    /// Creates credentials (for itself or someone else).
    pub const CREDENTIAL: Traits = Traits(1 << 3);
    /// Turns logging or monitoring down.
    pub const LOGGING_OFF: Traits = Traits(1 << 4);
    /// Shares data or images outside (snapshot/AMI attribute changes, exports).
    pub const SHARING: Traits = Traits(1 << 5);
    /// Changes who may do what (policies, users, groups, login profiles).
    pub const PRIVILEGE: Traits = Traits(1 << 6);
    /// Changes who may assume or call what (trust policies, resource policies).
    pub const TRUST: Traits = Traits(1 << 7);
    /// Sends data to an outside endpoint.
    pub const OUTBOUND: Traits = Traits(1 << 8);
    /// Reads bulk data (objects, items, query results).
    pub const DATA_READ: Traits = Traits(1 << 9);
    /// Runs code or commands somewhere (SSM, user data, exec, lambda code).
    pub const EXECUTION: Traits = Traits(1 << 10);
    /// Enumerates (List*, Describe*, GetCallerIdentity).
    pub const DISCOVERY: Traits = Traits(1 << 11);
    /// Brings outside content in (an agent fetching a URL).
    pub const INBOUND: Traits = Traits(1 << 12);

    pub fn has(self, t: Traits) -> bool {
        self.0 & t.0 != 0
    }

    /// The bits, for keeping which kinds of action a principal ever took.
    pub fn bits(self) -> u16 {
        self.0
    }

    /// The sensitive kinds among these.
    pub fn sensitive_bits(self) -> u16 {
        self.0
            & (Self::SECRET_READ.0
                | Self::CREDENTIAL.0
                | Self::LOGGING_OFF.0
                | Self::SHARING.0
                | Self::PRIVILEGE.0
                | Self::TRUST.0
                | Self::OUTBOUND.0
                | Self::EXECUTION.0)
    }

    /// Traits that make an action security-relevant on first use.
    pub fn sensitive(self) -> bool {
        self.has(Traits(
            Self::SECRET_READ.0
                | Self::CREDENTIAL.0
                | Self::LOGGING_OFF.0
                | Self::SHARING.0
                | Self::PRIVILEGE.0
                | Self::TRUST.0
                | Self::OUTBOUND.0
                | Self::EXECUTION.0,
        ))
    }
}

impl std::ops::BitOr for Traits {
    type Output = Traits;
    fn bitor(self, o: Traits) -> Traits {
        Traits(self.0 | o.0)
    }
}

impl std::ops::BitOrAssign for Traits {
    fn bitor_assign(&mut self, o: Traits) {
        self.0 |= o.0;
    }
}

fn starts(op: &str, prefixes: &[&str]) -> bool {
    prefixes.iter().any(|p| op.starts_with(p))
}

/// The internal domain suffix: URLs elsewhere are outside.
pub fn is_external_url(url: &str, internal_suffixes: &[String]) -> bool {
    let host = url.split("://").nth(1).unwrap_or(url).split(['/', ':', '?']).next().unwrap_or("");
    !host.is_empty()
        && !internal_suffixes.iter().any(|s| host == s.trim_start_matches('.') || host.ends_with(s.as_str()))
}

/// Traits of an event's action, from its service and operation (and, for
/// agent tools, the URL it reached).
pub fn traits(e: &Event, internal_suffixes: &[String]) -> Traits {
    let (svc, op) = (e.action.service.as_str(), e.action.operation.as_str());
    let mut t = Traits::default();
    let read = e.action.read_only.unwrap_or(false)
        || starts(op, &["Get", "List", "Describe", "Head", "Lookup", "Search", "Scan", "Query"]);
    t |= if read { Traits::READ } else { Traits::CHANGE };
    if starts(op, &["List", "Describe", "GetCallerIdentity", "GetAccountAuthorizationDetails"]) {
        t |= Traits::DISCOVERY;
    }
    match svc {
        "secretsmanager" if starts(op, &["GetSecretValue", "BatchGetSecretValue"]) => t |= Traits::SECRET_READ,
        "ssm" if starts(op, &["GetParameter"]) => t |= Traits::SECRET_READ,
        "ssm" if starts(op, &["SendCommand", "StartSession", "StartAutomationExecution"]) => t |= Traits::EXECUTION,
        "kms" if op == "Decrypt" => t |= Traits::SECRET_READ,
        "ec2" if op == "GetPasswordData" => t |= Traits::SECRET_READ,
        "ec2" if starts(op, &["ModifyImageAttribute", "ModifySnapshotAttribute", "CreateInstanceExportTask"]) => {
            t |= Traits::SHARING
        }
        "ec2" if op == "ModifyInstanceAttribute" => t |= Traits::EXECUTION,
        // Opens a console path into every instance of the account.
        "ec2" if op == "EnableSerialConsoleAccess" => t |= Traits::EXECUTION | Traits::TRUST,
        "ec2" if starts(op, &["DeleteFlowLogs"]) => t |= Traits::LOGGING_OFF,
        "ec2" if starts(op, &["AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress"]) => t |= Traits::TRUST,
        "ec2-instance-connect" | "ec2instanceconnect" => t |= Traits::EXECUTION | Traits::CREDENTIAL,
        "rds" if starts(op, &["ModifyDBSnapshotAttribute", "ModifyDBClusterSnapshotAttribute"]) => t |= Traits::SHARING,
        "cloudtrail" if starts(op, &["StopLogging", "DeleteTrail", "PutEventSelectors", "UpdateTrail"]) => {
            t |= Traits::LOGGING_OFF
        }
        "guardduty" if starts(op, &["DeleteDetector", "UpdateDetector", "DisassociateFromMasterAccount"]) => {
            t |= Traits::LOGGING_OFF
        }
        "config"
            if starts(op, &["StopConfigurationRecorder", "DeleteConfigurationRecorder", "DeleteDeliveryChannel"]) =>
        {
            t |= Traits::LOGGING_OFF
        }
        "route53resolver" if starts(op, &["DeleteResolverQueryLogConfig", "DisassociateResolverQueryLogConfig"]) => {
            t |= Traits::LOGGING_OFF
        }
        "organizations" if starts(op, &["LeaveOrganization", "RemoveAccountFromOrganization"]) => {
            t |= Traits::LOGGING_OFF | Traits::TRUST
        }
        "iam" if starts(op, &["CreateAccessKey", "CreateLoginProfile", "UpdateLoginProfile"]) => {
            t |= Traits::CREDENTIAL | Traits::PRIVILEGE
        }
        "iam"
            if starts(
                op,
                &["UpdateAssumeRolePolicy", "CreateRole", "CreateOpenIDConnectProvider", "CreateSAMLProvider"],
            ) =>
        {
            t |= Traits::TRUST | Traits::PRIVILEGE
        }
        "iam" if !read => t |= Traits::PRIVILEGE,
        "sts" if starts(op, &["GetFederationToken", "GetSessionToken"]) => t |= Traits::CREDENTIAL,
        "rolesanywhere" if starts(op, &["CreateTrustAnchor", "CreateProfile"]) => {
            t |= Traits::TRUST | Traits::CREDENTIAL
        }
        "lambda" if starts(op, &["AddPermission", "CreateFunctionUrlConfig"]) => t |= Traits::TRUST,
        "lambda" if starts(op, &["UpdateFunctionCode", "UpdateFunctionConfiguration", "PublishLayerVersion"]) => {
            t |= Traits::EXECUTION
        }
        "s3" if starts(op, &["PutBucketPolicy", "PutBucketAcl", "PutObjectAcl", "DeleteBucketPolicy"]) => {
            t |= Traits::TRUST
        }
        "s3" if op == "GetObject" => t |= Traits::DATA_READ,
        "dynamodb" if starts(op, &["GetItem", "Scan", "Query", "BatchGetItem"]) => t |= Traits::DATA_READ,
        "signin" => {}
        // Kubernetes: verbs on resources.
        "k8s" | "kubernetes" => {
            let resource = e.resources.first().map_or("", |r| r.kind.as_str());
            if resource.contains("secrets") && op == "get" {
                t |= Traits::SECRET_READ;
            }
            if (resource.contains("rolebindings") || resource.contains("clusterroles") || resource.contains("roles"))
                && !read
            {
                t |= Traits::PRIVILEGE;
            }
            if resource.contains("pods/exec") || resource.contains("pods/attach") {
                t |= Traits::EXECUTION;
            }
            if resource.contains("serviceaccounts/token") {
                t |= Traits::CREDENTIAL;
            }
        }
        _ => {}
    }
    // Agent tools: what the tool does, and where it reaches.
    if svc == "gen_ai.tool" || svc == "mcp" {
        let tool = op.to_ascii_lowercase();
        if tool.contains("secret") || tool.contains("credential") || tool.contains("password") {
            t |= Traits::SECRET_READ;
        }
        let url = e.resources.iter().find(|r| r.kind == "url").map(|r| r.id.as_str());
        let external = url.is_some_and(|u| is_external_url(u, internal_suffixes));
        if external
            && (tool.contains("post") || tool.contains("upload") || tool.contains("send") || tool.contains("put"))
        {
            t |= Traits::OUTBOUND;
        } else if external {
            t |= Traits::INBOUND;
        }
        if tool.contains("exec") || tool.contains("shell") || tool.contains("run_command") {
            t |= Traits::EXECUTION;
        }
        // Tools that change who may do what: group membership, roles, grants.
        let adds =
            ["add", "assign", "grant", "attach", "put", "set", "create", "update"].iter().any(|w| tool.contains(w));
        let access = ["group", "role", "permission", "policy", "member", "access", "privilege"];
        if adds && access.iter().any(|w| tool.contains(w)) {
            t |= Traits::PRIVILEGE;
        }
        if ["access_key", "api_key", "reset_password", "create_token", "create_credential"]
            .iter()
            .any(|w| tool.contains(w))
        {
            t |= Traits::CREDENTIAL;
        }
    }
    t
}

/// MITRE ATT&CK techniques an action's traits point to.
pub fn techniques(e: &Event, t: Traits) -> Vec<&'static str> {
    let mut out = Vec::new();
    if t.has(Traits::LOGGING_OFF) {
        out.push("T1562.008");
    }
    if t.has(Traits::SECRET_READ) {
        out.push("T1555.006");
    }
    if t.has(Traits::CREDENTIAL) {
        out.push("T1098.001");
    }
    if t.has(Traits::SHARING) {
        out.push("T1537");
    }
    if t.has(Traits::OUTBOUND) {
        out.push("T1567");
    }
    if t.has(Traits::TRUST) {
        out.push("T1098");
    }
    if t.has(Traits::EXECUTION) {
        out.push("T1651");
    }
    if t.has(Traits::DISCOVERY) && e.action.service == "iam" {
        out.push("T1087.004");
    }
    if e.action.operation == "CreateUser" {
        out.push("T1136.003");
    }
    out
}
