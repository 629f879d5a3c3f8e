//! OTLP GenAI/MCP traces resolve to actor chains: tool call → agent → user.

use tenet_model::{Event, PrincipalKind, Status};
use tenet_sources::formats::otlp::Otlp;
use tenet_sources::{format, read_all};

fn fixture() -> Vec<u8> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/otlp/agent-tool-call.json");
    std::fs::read(path).expect("fixture exists")
}

fn by_span(events: &[Event], span: &str) -> Event {
    events.iter().find(|e| e.id.as_str().ends_with(span)).cloned().unwrap_or_else(|| panic!("no span {span}"))
}

fn chain_ids(e: &Event) -> Vec<&str> {
    e.principals().map(|p| p.id.as_str()).collect()
}

#[test]
fn agent_trace_is_detected_as_otlp() {
    assert_eq!(format::detect(&fixture()).map(|f| f.name()), Some("otlp"));
}

#[test]
fn execute_tool_span_resolves_to_tool_agent_user() {
    let (events, errors) = read_all(&Otlp, &fixture());
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(events.len(), 6);
    let tool = by_span(&events, "00f067aa0ba902b9");
    assert_eq!(tool.id.as_str(), "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b9");
    assert_eq!(chain_ids(&tool), vec!["tool:assistant-app/get_secret", "agent:agt-42", "user:alice@example.com"]);
    assert_eq!(tool.actor.kind, PrincipalKind::Workload);
    assert_eq!(tool.chain[0].kind, PrincipalKind::Agent);
    assert_eq!(tool.chain[1].kind, PrincipalKind::Human);
    assert_eq!(tool.action.qualified(), "gen_ai.tool:get_secret");
    assert_eq!(tool.session.as_ref().and_then(|s| s.id.as_deref()), Some("call_9"));
    assert_eq!(tool.trace.as_ref().and_then(|t| t.parent_span_id.as_deref()), Some("00f067aa0ba902b7"));
}

#[test]
fn mcp_server_span_in_another_service_inherits_the_chain_through_the_client_span() {
    let (events, _) = read_all(&Otlp, &fixture());
    let server = by_span(&events, "1a2b3c4d5e6f7081");
    assert_eq!(chain_ids(&server), vec!["tool:vault-mcp/get_secret", "agent:agt-42", "user:alice@example.com"]);
    assert_eq!(server.action.qualified(), "mcp:get_secret");
    assert_eq!(server.resources[0].id, "vault://prod/db-password");
    assert_eq!(server.source.system, "vault-mcp");
    let client = by_span(&events, "00f067aa0ba902ba");
    assert_eq!(
        chain_ids(&client),
        vec!["tool:vault-mcp.internal/get_secret", "agent:agt-42", "user:alice@example.com"]
    );
}

#[test]
fn agent_and_model_spans_act_for_the_end_user() {
    let (events, _) = read_all(&Otlp, &fixture());
    let agent = by_span(&events, "00f067aa0ba902b7");
    assert_eq!(chain_ids(&agent), vec!["agent:agt-42", "user:alice@example.com"]);
    assert_eq!(agent.actor.name.as_deref(), Some("travel-helper"));
    let chat = by_span(&events, "00f067aa0ba902b8");
    assert_eq!(chain_ids(&chat), vec!["agent:agt-42", "user:alice@example.com"]);
    assert_eq!(chat.resources[0].id, "gpt-4o");
}

#[test]
fn failed_tool_call_keeps_its_status_and_target() {
    let (events, _) = read_all(&Otlp, &fixture());
    let send = by_span(&events, "00f067aa0ba902bb");
    assert_eq!(send.outcome.status, Status::Failure);
    assert_eq!(send.outcome.message.as_deref(), Some("blocked by egress policy"));
    assert_eq!(send.resources[0].kind, "url");
}

#[test]
fn shared_otlp_example_trace_reads_one_span() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/otlp/trace.json");
    let (events, errors) = read_all(&Otlp, &std::fs::read(path).expect("shared data present"));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor.id, "service:my.service");
}
