//! Why a failed action failed. Sources say it in their own words (an AWS
//! error code, an HTTP status, a JSON-RPC or gRPC code, an IdP's result, or
//! only a message); detection must not confuse them. Only an authorization
//! refusal is a denial: a rate limit, a timeout, a server error, a missing
//! resource or a tool's own error is a failure of another kind, and an
//! automation retrying it is not probing.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The caller was authenticated and refused: `AccessDenied`, 403,
    /// `PERMISSION_DENIED`, an IdP's deny, a Kubernetes `forbid`.
    Denied,
    /// The caller's credential was not accepted: 401, a wrong password, an
    /// invalid or expired token.
    Unauthenticated,
    /// What was asked for does not exist: `NoSuch*`, `*NotFound`, 404.
    NotFound,
    /// Too many requests: 429, `Throttling`, `RESOURCE_EXHAUSTED`.
    Throttled,
    /// The service failed or was unreachable: 5xx, timeouts, JSON-RPC -32603.
    Unavailable,
    /// The request was malformed or conflicted with state: 400, 409, `Validation*`.
    Invalid,
    /// Anything else (a tool's own error status, say).
    Other,
}

impl FailureKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Denied => "denied",
            FailureKind::Unauthenticated => "unauthenticated",
            FailureKind::NotFound => "not_found",
            FailureKind::Throttled => "throttled",
            FailureKind::Unavailable => "unavailable",
            FailureKind::Invalid => "invalid",
            FailureKind::Other => "other",
        }
    }

    /// Classifies a failure from its code (tried first) and message.
    pub fn classify(code: Option<&str>, message: Option<&str>) -> FailureKind {
        code.and_then(from_code).or_else(|| message.and_then(from_text)).unwrap_or(FailureKind::Other)
    }
}

fn from_status(n: i64) -> Option<FailureKind> {
    Some(match n {
        401 | 407 => FailureKind::Unauthenticated,
        403 => FailureKind::Denied,
        404 | 410 => FailureKind::NotFound,
        408 | 504 => FailureKind::Unavailable,
        429 => FailureKind::Throttled,
        400..=499 => FailureKind::Invalid,
        500..=599 => FailureKind::Unavailable,
        // JSON-RPC: parse error, invalid request, method not found, invalid params.
        -32700 | -32602..=-32600 => FailureKind::Invalid,
        // Internal error and the implementation-defined server errors.
        -32603 | -32099..=-32000 => FailureKind::Unavailable,
        _ => return None,
    })
}

/// gRPC status names as OpenTelemetry and Google APIs spell them.
fn from_grpc(code: &str) -> Option<FailureKind> {
    Some(match code {
        "PERMISSION_DENIED" => FailureKind::Denied,
        "UNAUTHENTICATED" => FailureKind::Unauthenticated,
        "NOT_FOUND" => FailureKind::NotFound,
        "RESOURCE_EXHAUSTED" => FailureKind::Throttled,
        "UNAVAILABLE" | "DEADLINE_EXCEEDED" | "INTERNAL" | "ABORTED" | "UNKNOWN" | "DATA_LOSS" => {
            FailureKind::Unavailable
        }
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" | "ALREADY_EXISTS" | "UNIMPLEMENTED" => {
            FailureKind::Invalid
        }
        _ => return None,
    })
}

/// A code: a number (HTTP, JSON-RPC), a gRPC status, or an error name
/// (`AccessDenied`, `Client.UnauthorizedOperation`, `ThrottlingException`).
fn from_code(code: &str) -> Option<FailureKind> {
    let code = code.trim();
    if let Ok(n) = code.parse::<i64>() {
        return from_status(n);
    }
    if let Some(k) = from_grpc(code) {
        return Some(k);
    }
    let norm: String = code.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect();
    let has = |words: &[&str]| words.iter().any(|w| norm.contains(w));
    Some(
        if norm == "deny"
            || has(&["accessdenied", "unauthorizedoperation", "unauthorizedaccess", "forbid"])
            || has(&[
                "permissiondenied",
                "notauthorized",
                "authorizationerror",
                "authorizationfailure",
                "accessforbidden",
            ])
        {
            FailureKind::Denied
        } else if has(&[
            "unauthorized",
            "unauthenticated",
            "invalidclienttokenid",
            "signaturedoesnotmatch",
            "authfailure",
            "invalidcredential",
            "expiredtoken",
            "tokenexpired",
            "incorrectpassword",
        ]) {
            FailureKind::Unauthenticated
        } else if has(&["throttl", "toomanyrequests", "ratelimit", "requestlimitexceeded", "slowdown", "limitexceeded"])
        {
            FailureKind::Throttled
        } else if has(&["nosuch", "notfound", "doesnotexist", "nonexistent"]) {
            FailureKind::NotFound
        } else if has(&["unavailable", "internalerror", "internalfailure", "internalserver", "timeout", "timedout"])
            || has(&["serviceexception", "serverexception", "deadlineexceeded"])
        {
            FailureKind::Unavailable
        } else if has(&["validation", "invalid", "malformed", "badrequest", "conflict", "alreadyexists", "inuse"]) {
            FailureKind::Invalid
        } else {
            // Generic words (`ERROR`, `FAILURE`, `tool_error`) say nothing: the message may.
            return None;
        },
    )
}

/// A message: phrases first, then an HTTP status written in it.
fn from_text(message: &str) -> Option<FailureKind> {
    let m = message.to_ascii_lowercase().replace(['_', '-'], " ");
    let has = |words: &[&str]| words.iter().any(|w| m.contains(w));
    if has(&["forbidden", "access denied", "accessdenied", "permission denied", "not authorized", "not permitted"]) {
        return Some(FailureKind::Denied);
    }
    if has(&["unauthorized", "unauthenticated", "invalid credentials", "authentication failed", "invalid token"]) {
        return Some(FailureKind::Unauthenticated);
    }
    if has(&["too many requests", "rate limit", "throttl", "quota exceeded"]) {
        return Some(FailureKind::Throttled);
    }
    if has(&["unavailable", "timed out", "timeout", "internal error", "internal server error", "bad gateway"]) {
        return Some(FailureKind::Unavailable);
    }
    if has(&["not found", "no such", "does not exist"]) {
        return Some(FailureKind::NotFound);
    }
    // A three-digit status standing alone ("HTTP 503", "status 429").
    m.split(|c: char| !c.is_ascii_digit())
        .filter(|w| w.len() == 3)
        .filter_map(|w| w.parse::<i64>().ok())
        .find_map(|n| (400..600).contains(&n).then(|| from_status(n)).flatten())
}

#[cfg(test)]
mod tests {
    use super::FailureKind::*;
    use super::*;

    #[test]
    fn only_an_authorization_refusal_is_a_denial() {
        for (code, message, kind) in [
            (Some("AccessDenied"), None, Denied),
            (Some("Client.UnauthorizedOperation"), None, Denied),
            (Some("AccessDeniedException"), None, Denied),
            (Some("403"), None, Denied),
            (Some("PERMISSION_DENIED"), None, Denied),
            (Some("DENY"), None, Denied),
            (Some("forbid"), None, Denied),
            (Some("FAILURE"), Some("INVALID_CREDENTIALS"), Unauthenticated),
            (Some("InvalidClientTokenId"), None, Unauthenticated),
            (Some("ThrottlingException"), None, Throttled),
            (Some("429"), None, Throttled),
            (Some("-32603"), None, Unavailable),
            (Some("tool_error"), Some("upstream returned HTTP 503 Service Unavailable"), Unavailable),
            (Some("tool_error"), Some("HTTP 403 Forbidden"), Denied),
            (Some("ERROR"), Some("status 429"), Throttled),
            (Some("NoSuchBucketPolicy"), None, NotFound),
            (Some("ResourceNotFoundException"), None, NotFound),
            (Some("ValidationException"), None, Invalid),
            (Some("tool_error"), Some("the tool could not parse its input"), Other),
            (None, None, Other),
        ] {
            assert_eq!(FailureKind::classify(code, message), kind, "{code:?} {message:?}");
        }
    }
}
