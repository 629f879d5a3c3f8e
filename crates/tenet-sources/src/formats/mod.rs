//! One module per telemetry format. Register new ones in `crate::format::FORMATS`.

pub mod cloudtrail;
pub mod k8s_audit;
pub mod ocsf;
pub mod okta;
pub mod otlp;
