//! The agent registry (`tenet.agent-registry/v1`, described in the
//! simulator's `inventory::describe`): MCP servers with their tools and the
//! identity they act as, and agents with their owner, users, tools and
//! delegated scopes.
//!
//! An agent is `agent:<id>` (the traces' `gen_ai.agent.id`); a person
//! `user:<email>` (the traces' `enduser.id`); a tool `tool:<server>/<name>`
//! (the MCP server span's `service.name` and `gen_ai.tool.name`). A tool acts
//! as its server's identity: an IAM role ARN as is, a Kubernetes service
//! account `system:serviceaccount:<ns>:<name>` as `k8s:system:serviceaccount:<ns>:<name>`;
//! a server without one acts as itself, `service:<server>` (the id the
//! OTLP adapter gives a service's own spans).

use std::collections::HashMap;

use serde_json::Value;
use tenet_model::{Fact, NodeKind, Snapshot, Timestamp};

use super::walk::{
    Entry, Facts, Lines, Res, at, entries, join, json_error, object, opt_array, opt_str, raw_list, req_str, str_list,
    top_object,
};
use super::{Imported, InventoryError};
use crate::framing::Location;

const NAME: &str = "agent-registry";
pub(super) const FORMAT_PREFIX: &str = "tenet.agent-registry/";
const FORMAT: &str = "tenet.agent-registry/v1";

pub(super) fn import(text: &str, collected_at: Timestamp) -> Result<Imported, InventoryError> {
    let expected = "an agent registry (an object with format tenet.agent-registry/v1, servers and agents)";
    let top = top_object(NAME, text, expected)?;
    let mut lines = Lines::new(text);
    match top.get("format") {
        Some(raw) => {
            let format: Value = serde_json::from_str(raw.get()).map_err(|e| json_error(NAME, text, raw.get(), &e))?;
            if format.as_str() != Some(FORMAT) {
                return Err(InventoryError::Invalid {
                    format: NAME,
                    location: Location::line(lines.of(raw.get())).with_path("format"),
                    reason: format!("format is {format}; this importer reads {FORMAT}"),
                });
            }
        }
        None if top.contains_key("agents") => {}
        None => {
            return Err(InventoryError::Invalid {
                format: NAME,
                location: Location::line(1),
                reason: format!("neither format nor agents is present; expected {expected}"),
            });
        }
    }
    let servers = raw_list(NAME, text, "servers", top.get("servers").copied())?;
    let agents = raw_list(NAME, text, "agents", top.get("agents").copied())?;
    let mut skipped = Vec::new();
    let servers = entries(&mut lines, "servers", &servers, &mut skipped);
    let agents = entries(&mut lines, "agents", &agents, &mut skipped);

    let mut facts = Facts::default();
    let mut identities: HashMap<String, String> = HashMap::new();
    for e in &servers {
        match server(e) {
            Ok((name, identity, tools)) => {
                identities.insert(name, identity);
                facts.extend(tools);
            }
            Err(p) => skipped.push(e.skipped(entry_name(&e.value), p)),
        }
    }
    for e in &agents {
        match agent(e, &identities) {
            Ok(f) => facts.extend(f),
            Err(p) => skipped.push(e.skipped(entry_name(&e.value), p)),
        }
    }
    let snapshot =
        Snapshot { source: NAME.to_string(), scope: "agents".to_string(), collected_at, facts: facts.into_vec() };
    Ok(Imported { snapshots: vec![snapshot], skipped })
}

fn entry_name(v: &Value) -> Option<String> {
    ["id", "name"].iter().find_map(|k| v.get(*k).and_then(Value::as_str)).map(str::to_string)
}

/// The principal a server's `identity` names, as the adapters write it.
fn identity(id: &str) -> String {
    if id.starts_with("system:serviceaccount:") { format!("k8s:{id}") } else { id.to_string() }
}

fn tool_node(server: &str, tool: &str) -> (String, Fact) {
    let id = format!("tool:{server}/{tool}");
    (id.clone(), Fact::Node { id, kind: NodeKind::Tool, name: Some(tool.to_string()) })
}

/// A server: its name, the identity its tools act as, and its tools' nodes.
fn server(e: &Entry) -> Res<(String, String, Vec<Fact>)> {
    let path = e.path.as_str();
    let m = object(&e.value, path)?;
    let name = req_str(m, path, "name")?;
    let acts_as = opt_str(m, path, "identity")?.filter(|s| !s.trim().is_empty());
    let acts_as = acts_as.map_or_else(|| format!("service:{name}"), identity);
    let tp = join(path, "tools");
    let mut facts = Vec::new();
    for (i, t) in opt_array(m, path, "tools")?.iter().enumerate() {
        let p = at(&tp, i);
        let tool = req_str(object(t, &p)?, &p, "name")?;
        facts.push(tool_node(name, tool).1);
    }
    Ok((name.to_string(), acts_as, facts))
}

fn agent(e: &Entry, identities: &HashMap<String, String>) -> Res<Vec<Fact>> {
    let path = e.path.as_str();
    let m = object(&e.value, path)?;
    let agent = format!("agent:{}", req_str(m, path, "id")?);
    let name = opt_str(m, path, "name")?.map(str::to_string);
    let owner = req_str(m, path, "owner")?;
    let users = str_list(m, path, "users")?;
    let scope = str_list(m, path, "delegated_scopes")?;
    let mut facts = vec![
        Fact::Node { id: agent.clone(), kind: NodeKind::AGENT, name },
        Fact::Owns { owner: format!("user:{owner}"), agent: agent.clone() },
    ];
    // Agents of one kind (assistant, coding, ops …) are each other's peers:
    // a group in the graph like any team.
    if let Some(kind) = opt_str(m, path, "kind")?.map(str::trim).filter(|k| !k.is_empty()) {
        facts.push(Fact::Member { member: agent.clone(), group: format!("agents:group/{kind}") });
    }
    for user in users {
        facts.push(Fact::ActsFor {
            agent: agent.clone(),
            person: format!("user:{user}"),
            scope: scope.clone(),
            expires: None,
        });
    }
    let tp = join(path, "tools");
    for (i, t) in opt_array(m, path, "tools")?.iter().enumerate() {
        let p = at(&tp, i);
        let t = object(t, &p)?;
        let tool_name = req_str(t, &p, "name")?;
        let server = req_str(t, &p, "server")?;
        let (tool, node) = tool_node(server, tool_name);
        let identity = identities.get(server).cloned().unwrap_or_else(|| format!("service:{server}"));
        facts.push(node);
        facts.push(Fact::Tool { agent: agent.clone(), tool, identity });
    }
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_become_principal_ids() {
        assert_eq!(
            identity("arn:aws:iam::123456789012:role/aws-mcp-task"),
            "arn:aws:iam::123456789012:role/aws-mcp-task"
        );
        assert_eq!(identity("system:serviceaccount:agents:k8s-mcp"), "k8s:system:serviceaccount:agents:k8s-mcp");
    }
}
