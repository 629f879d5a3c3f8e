//! OCSF class and activity identifiers: the taxonomy events are filed under.
//!
//! Only the numbers live in the model; the OCSF adapter and exporter in
//! `tenet-sources` carry the mapping to and from OCSF records.

use serde::{Deserialize, Serialize};

/// An OCSF event class (`class_uid`), e.g. 6003 API Activity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClassUid(pub u32);

/// An OCSF activity within a class (`activity_id`); 0 is Unknown, 99 Other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ActivityId(pub u16);

impl ClassUid {
    pub const DETECTION_FINDING: ClassUid = ClassUid(2004);
    pub const ACCOUNT_CHANGE: ClassUid = ClassUid(3001);
    pub const AUTHENTICATION: ClassUid = ClassUid(3002);
    pub const AUTHORIZE_SESSION: ClassUid = ClassUid(3003);
    pub const ENTITY_MANAGEMENT: ClassUid = ClassUid(3004);
    pub const USER_ACCESS: ClassUid = ClassUid(3005);
    pub const GROUP_MANAGEMENT: ClassUid = ClassUid(3006);
    pub const USER_MANAGEMENT: ClassUid = ClassUid(3007);
    pub const ROLE_MANAGEMENT: ClassUid = ClassUid(3008);
    pub const HTTP_ACTIVITY: ClassUid = ClassUid(4002);
    pub const API_ACTIVITY: ClassUid = ClassUid(6003);

    /// OCSF's category is the class's thousands digit.
    pub fn category_uid(self) -> u32 {
        self.0 / 1000
    }

    /// The class's caption for the classes Tenet maps; `None` for the rest.
    pub fn caption(self) -> Option<&'static str> {
        Some(match self.0 {
            2004 => "Detection Finding",
            3001 => "Account Change",
            3002 => "Authentication",
            3003 => "Authorize Session",
            3004 => "Entity Management",
            3005 => "User Access Management",
            3006 => "Group Management",
            3007 => "User Management",
            3008 => "Role Management",
            4002 => "HTTP Activity",
            6003 => "API Activity",
            _ => return None,
        })
    }

    /// OCSF's `type_uid`: class × 100 + activity.
    pub fn type_uid(self, activity: ActivityId) -> u64 {
        u64::from(self.0) * 100 + u64::from(activity.0)
    }
}

impl ActivityId {
    pub const UNKNOWN: ActivityId = ActivityId(0);
    pub const OTHER: ActivityId = ActivityId(99);
}

/// API Activity (6003) activities.
pub mod api {
    use super::ActivityId;
    pub const CREATE: ActivityId = ActivityId(1);
    pub const READ: ActivityId = ActivityId(2);
    pub const UPDATE: ActivityId = ActivityId(3);
    pub const DELETE: ActivityId = ActivityId(4);
}

/// Authentication (3002) activities.
pub mod authentication {
    use super::ActivityId;
    pub const LOGON: ActivityId = ActivityId(1);
    pub const LOGOFF: ActivityId = ActivityId(2);
}

/// Classifies an operation name into an API Activity verb by its leading
/// word, the convention AWS, Kubernetes and most REST APIs share.
pub fn api_activity_for_operation(operation: &str) -> ActivityId {
    const PREFIXES: &[(&str, ActivityId)] = &[
        ("Create", api::CREATE),
        ("Put", api::CREATE),
        ("Run", api::CREATE),
        ("Add", api::CREATE),
        ("Register", api::CREATE),
        ("Import", api::CREATE),
        ("Get", api::READ),
        ("List", api::READ),
        ("Describe", api::READ),
        ("Head", api::READ),
        ("Lookup", api::READ),
        ("Search", api::READ),
        ("BatchGet", api::READ),
        ("Update", api::UPDATE),
        ("Modify", api::UPDATE),
        ("Set", api::UPDATE),
        ("Attach", api::UPDATE),
        ("Detach", api::UPDATE),
        ("Associate", api::UPDATE),
        ("Enable", api::UPDATE),
        ("Disable", api::UPDATE),
        ("Start", api::UPDATE),
        ("Stop", api::UPDATE),
        ("Delete", api::DELETE),
        ("Remove", api::DELETE),
        ("Terminate", api::DELETE),
        ("Deregister", api::DELETE),
    ];
    for (prefix, activity) in PREFIXES {
        if let Some(rest) = operation.strip_prefix(prefix) {
            // `Getaway` is not a Get: the verb must end at a word boundary.
            if rest.is_empty() || rest.starts_with(|c: char| c.is_ascii_uppercase()) {
                return *activity;
            }
        }
    }
    // snake_case, kebab-case and lower-case verbs (Kubernetes, MCP tools).
    let verb = operation.split(['_', '-', '.', '/', ' ']).next().unwrap_or("").to_ascii_lowercase();
    match verb.as_str() {
        "create" | "put" | "add" | "insert" | "write" | "upload" | "send" | "post" | "run" => api::CREATE,
        "get" | "list" | "watch" | "read" | "describe" | "search" | "query" | "fetch" | "download" | "lookup" => {
            api::READ
        }
        "update" | "patch" | "modify" | "set" | "edit" => api::UPDATE,
        "delete" | "deletecollection" | "remove" | "drop" => api::DELETE,
        _ => ActivityId::OTHER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_classify_only_at_word_boundaries() {
        assert_eq!(api_activity_for_operation("GetObject"), api::READ);
        assert_eq!(api_activity_for_operation("DeleteTrail"), api::DELETE);
        assert_eq!(api_activity_for_operation("Getaway"), ActivityId::OTHER);
        assert_eq!(api_activity_for_operation("patch"), api::UPDATE);
        assert_eq!(api_activity_for_operation("ConsoleLogin"), ActivityId::OTHER);
        assert_eq!(api_activity_for_operation("read_secret"), api::READ);
        assert_eq!(api_activity_for_operation("send-email"), api::CREATE);
    }
}
