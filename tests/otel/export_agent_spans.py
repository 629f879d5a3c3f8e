"""Exports one agent run's spans to a Tenet service with the official
OpenTelemetry Python SDK and its OTLP/HTTP (protobuf) exporter.

usage: export_agent_spans.py ENDPOINT gzip|none RUN_ID [batch|simple]

An agent (invoke_agent, for a person) calls two tools (execute_tool); the
span processor hands them to the exporter, which posts them to ENDPOINT
(…/v1/traces) as protobuf, compressed or not: the batch processor sends a
run's spans together, the simple one each span alone as it ends (the
tools before the agent span that is their parent). Exits non-zero if an
export did not succeed.
"""

import sys

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter, SpanExportResult

endpoint, compression, run = sys.argv[1], sys.argv[2], sys.argv[3]
processor = sys.argv[4] if len(sys.argv) > 4 else "batch"
exporter = OTLPSpanExporter(
    endpoint=endpoint,
    compression=Compression.Gzip if compression == "gzip" else Compression.NoCompression,
)

results = []


class Recording(SpanExporter):
    """The OTLP exporter, keeping each export's result so a refused export
    fails the script."""

    def __init__(self, inner):
        self.inner = inner

    def export(self, spans):
        result = self.inner.export(spans)
        results.append((len(spans), result))
        return result

    def shutdown(self):
        self.inner.shutdown()

    def force_flush(self, timeout_millis=30000):
        return True


provider = TracerProvider(resource=Resource.create({"service.name": "support-agent"}))
# The batch processor, as deployments run it: a run's spans go out together;
# the simple one exports each span alone as it ends.
Processor = SimpleSpanProcessor if processor == "simple" else BatchSpanProcessor
provider.add_span_processor(Processor(Recording(exporter)))
tracer = provider.get_tracer("tenet-live-test")

with tracer.start_as_current_span(
    "invoke_agent support-agent",
    attributes={
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.id": "agt-support-" + run,
        "gen_ai.agent.name": "support-agent",
        "enduser.id": "alice@example.com",
    },
):
    for tool in ("search_tickets", "read_customer"):
        with tracer.start_as_current_span(
            "execute_tool " + tool,
            attributes={
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": tool,
                "gen_ai.tool.call.id": run + "-" + tool,
            },
        ):
            pass

provider.shutdown()
ok = results and all(r == SpanExportResult.SUCCESS for _, r in results)
print("exported", sum(n for n, _ in results), "spans in", len(results), "requests:", "ok" if ok else "FAILED")
sys.exit(0 if ok else 1)
