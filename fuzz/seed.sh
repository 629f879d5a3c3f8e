#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ with small real inputs, chosen at run time
# (the corpus is gitignored: shared data is read, never copied into the
# tree). Small samples keep libFuzzer fast; it mutates from real shapes
# instead of discovering JSON from nothing.
#
#   telemetry   CloudTrail (array, delivery file, NDJSON), Kubernetes audit,
#               OTLP from ../shared/data; Okta, OTLP GenAI and CloudTrail
#               from the shared dev-set generator; OCSF written here (no
#               OCSF telemetry is shared)
#   inventory   IAM authorization details and SCIM from the dev-set
#               generator, RBAC objects from the Kubernetes audit traces'
#               request bodies, and an RBAC YAML stream and an agent
#               registry written here (neither is shared)
#   authzen     every request in the AuthZEN interop suites
#               (../shared/specs/authzen) and examples/policies/cases.json,
#               plus batches made of them
#   policy_dir  the repository's policy directories (examples/policies,
#               tests/authzen/*) in the harness's `//@ NAME` layout
#   ssf         stream configuration, status, subject, verification and
#               poll bodies as SSF 1.0 and RFC 8936 show them, and a SET
#
# Needs python3 (standard library only). Re-running adds nothing twice:
# files are named by their content's hash, as libFuzzer names its own.
set -euo pipefail
cd "$(dirname "$0")"
SHARED="${TENET_SHARED:-../../shared}"
test -d "$SHARED/data" || { echo "seed.sh: no shared data at $SHARED (set TENET_SHARED)" >&2; exit 1; }

devset="$(mktemp -d)"
trap 'rm -rf "$devset"' EXIT
# One week, the generator's minimum: a few seconds of CPU.
python3 "$SHARED/tools/enterprise-devset/gen.py" "$devset/out" --seed 1 --days 7 --profile agentic >"$devset/gen.log" 2>&1 \
  || { cat "$devset/gen.log" >&2; exit 1; }

python3 - "$SHARED" "$devset/out" <<'PY'
import glob, gzip, hashlib, json, os, sys

shared, devset = sys.argv[1], sys.argv[2]
counts = {}

def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join("corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)
    counts[target] = counts.get(target, 0) + 1

def load(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return json.load(f)

def files(pattern, n=None):
    found = sorted(glob.glob(pattern, recursive=True))
    return found if n is None else found[:n]

# --- telemetry ---------------------------------------------------------
for p in files(f"{shared}/data/cloudtrail/stratus-red-team/*.json"):
    put("telemetry", json.dumps(load(p)[:2], indent=2))          # a pretty array, as detonation logs are
for p in files(f"{shared}/data/cloudtrail/invictus-ir/*.json", 6):
    put("telemetry", json.dumps({"Records": load(p)["Records"][:2]}))  # an S3 delivery file
for p in files(f"{shared}/data/cloudtrail/otrf/*.json"):
    with open(p, encoding="utf-8") as f:
        put("telemetry", "".join(f.readlines()[:4]))               # NDJSON, ELK export
for p in files(f"{shared}/data/k8s-audit/falco/*.json"):
    with open(p, "rb") as f:
        put("telemetry", f.read())
for p in files(f"{shared}/data/otlp/*.json"):
    with open(p, "rb") as f:
        put("telemetry", f.read())
for p in files(f"{devset}/okta/*.json", 2):
    put("telemetry", json.dumps(load(p)[:3], indent=2))
for p in files(f"{devset}/otlp/*.json", 3):
    req = load(p)
    rs = req["resourceSpans"][:2]
    for r in rs:
        for s in r.get("scopeSpans", []):
            s["spans"] = s["spans"][:3]
    put("telemetry", json.dumps({"resourceSpans": rs}))
for p in files(f"{devset}/cloudtrail/**/*.json.gz", 3):
    put("telemetry", json.dumps({"Records": load(p)["Records"][:2]}))
ocsf = [
    {"class_uid": 3002, "activity_id": 1, "time": 1757930400000, "status_id": 1, "is_mfa": True,
     "user": {"uid": "00u1", "name": "ada@acme.example", "email_addr": "ada@acme.example"},
     "src_endpoint": {"ip": "203.0.113.7"}, "metadata": {"uid": "ev-1", "product": {"name": "Okta", "vendor_name": "Okta"}}},
    {"class_uid": 6003, "activity_id": 2, "time_dt": "2025-09-15T10:00:00Z", "status_id": 2,
     "actor": {"user": {"uid": "arn:aws:iam::111122223333:user/ben", "type": "IAMUser"},
               "session": {"uid": "s-1", "issuer": "arn:aws:iam::111122223333:role/ops", "is_mfa": False}},
     "api": {"operation": "GetObject", "service": {"name": "s3.amazonaws.com"}},
     "resources": [{"uid": "arn:aws:s3:::reports/q3.csv", "type": "AWS::S3::Object"}],
     "metadata": {"uid": "ev-2", "tenant_uid": "111122223333"}},
    {"class_uid": 3005, "activity_id": 1, "time": 1757930400000, "user": {"uid": "u1"}, "group": {"uid": "g1", "name": "admins"},
     "ai_agent": {"uid": "agt-1"}, "metadata": {"uid": "ev-3"}},
]
put("telemetry", json.dumps(ocsf[0]))
put("telemetry", "\n".join(json.dumps(o) for o in ocsf) + "\n")
put("telemetry", json.dumps(ocsf, indent=2))
with open("../tests/fixtures/otlp/agent-tool-call.json", "rb") as f:
    put("telemetry", f.read())

# --- inventory -----------------------------------------------------------
for p in files(f"{devset}/inventory/*/aws-iam-*.json", 2):
    doc = load(p)
    for k in ("UserDetailList", "GroupDetailList", "RoleDetailList", "Policies"):
        if isinstance(doc.get(k), list):
            doc[k] = doc[k][:2]
    put("inventory", json.dumps(doc, indent=2))
for p in files(f"{devset}/inventory/*/scim-*.json", 2):
    doc = load(p)
    doc["Resources"] = doc["Resources"][:3]
    doc["totalResults"] = doc["itemsPerPage"] = len(doc["Resources"])
    put("inventory", json.dumps(doc, indent=2))
    put("inventory", json.dumps(doc["Resources"][0], indent=2))   # one resource alone
rbac = []
for p in files(f"{shared}/data/k8s-audit/falco/*.json"):
    with open(p, encoding="utf-8") as f:
        for line in f:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            obj = ev.get("requestObject")
            if isinstance(obj, dict) and str(obj.get("apiVersion", "")).startswith("rbac.authorization.k8s.io/"):
                rbac.append(obj)
for obj in rbac:
    put("inventory", json.dumps(obj, indent=2))
if rbac:
    put("inventory", json.dumps({"apiVersion": "v1", "kind": "List", "items": rbac[:4]}, indent=2))
put("inventory", """apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: pod-reader
rules:
- apiGroups: [""]
  resources: ["pods", "pods/log"]
  verbs: ["get", "list", "watch"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: read-pods
  namespace: prod
subjects:
- kind: User
  name: ada@acme.example
- kind: ServiceAccount
  name: deployer
  namespace: ci
- kind: Group
  name: sre
roleRef:
  kind: ClusterRole
  name: pod-reader
  apiGroup: rbac.authorization.k8s.io
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: monitoring
aggregationRule:
  clusterRoleSelectors:
  - matchLabels:
      rbac.example.com/aggregate-to-monitoring: "true"
rules: []
""")
put("inventory", json.dumps({
    "format": "tenet.agent-registry/v1",
    "generated_at": "2026-10-05T00:00:00Z",
    "servers": [
        {"name": "aws-mcp", "identity": "arn:aws:iam::123456789012:role/aws-mcp-task",
         "tools": [{"name": "get_metrics"}, {"name": "unused"}]},
        {"name": "k8s-mcp", "identity": "system:serviceaccount:agents:k8s-mcp", "tools": [{"name": "get_pods"}]},
        {"name": "web", "tools": [{"name": "fetch"}]},
    ],
    "agents": [
        {"id": "agt-1", "name": "ops-1", "owner": "ada@acme.example", "users": ["ada@acme.example", "ben@acme.example"],
         "tools": [{"name": "get_metrics", "server": "aws-mcp"}, {"name": "fetch", "server": "web"}],
         "delegated_scopes": ["aws:acme-prod:role/mcp-aws-tools", "k8s:impersonate"]},
        {"id": "agt-2", "owner": "ada@acme.example", "users": "ada@acme.example"},
    ],
}, indent=2))

# --- authzen -------------------------------------------------------------
def requests(v):
    if isinstance(v, dict):
        for k, x in v.items():
            if k == "request" and isinstance(x, dict):
                yield x
            else:
                yield from requests(x)
    elif isinstance(v, list):
        for x in v:
            yield from requests(x)

reqs = []
for p in files(f"{shared}/specs/authzen/**/*.json") + ["../examples/policies/cases.json"]:
    if "/schemas/" in p:
        continue
    try:
        reqs.extend(requests(load(p)))
    except ValueError:
        continue
seen = set()
for r in reqs:
    body = json.dumps(r)
    if body not in seen:
        seen.add(body)
        put("authzen", body)
singles = [r for r in reqs if all(k in r for k in ("subject", "action", "resource"))]
for i, sem in enumerate(["execute_all", "deny_on_first_deny", "permit_on_first_permit"]):
    batch = singles[i * 3:i * 3 + 3]
    if batch:
        put("authzen", json.dumps({
            "subject": batch[0]["subject"],
            "evaluations": [{"action": b["action"], "resource": b["resource"]} for b in batch] + [{}],
            "options": {"evaluations_semantic": sem},
        }))
if singles:
    put("authzen", json.dumps(dict(singles[0], page={"limit": 2, "token": ""})))

# --- policy_dir ----------------------------------------------------------
wanted = lambda n: n.endswith(".cedar") or n.endswith(".cedarschema") or n == "entities.json"
for d in sorted(glob.glob("../tests/authzen/*/")) + ["../examples/policies/"]:
    parts = []
    for name in sorted(os.listdir(d)):
        if wanted(name):
            with open(os.path.join(d, name), encoding="utf-8") as f:
                parts.append(f"//@ {name}\n" + f.read())
    if parts:
        put("policy_dir", "".join(p if p.endswith("\n") else p + "\n" for p in parts))

# --- ssf ------------------------------------------------------------------
caep = "https://schemas.openid.net/secevent/caep/event-type/"
for body in [
    {"events_requested": [caep + "session-revoked", caep + "risk-level-change"],
     "delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": "https://rx.example/ssf", "authorization_header": "Bearer x"},
     "description": "an IdP"},
    {"events_requested": [caep + "credential-change"], "delivery": {"method": "urn:ietf:rfc:8936"}},
    {"stream_id": "s1", "aud": "urn:tenet:ssf:receiver:rx", "description": None},
    {"stream_id": "s1", "status": "paused", "reason": "maintenance"},
    {"stream_id": "s1", "subject": {"format": "complex", "user": {"format": "email", "email": "a@example.com"},
                                    "session": {"format": "opaque", "id": "s-1"}}, "verified": True},
    {"stream_id": "s1", "state": "VGhpcyBpcyBhbiBleGFtcGxl"},
    {"maxEvents": 0, "returnImmediately": True, "ack": ["j1", "j2"],
     "setErrs": {"j3": {"err": "invalid_key", "description": "unknown kid"}}},
]:
    put("ssf", json.dumps(body))
put("ssf", "eyJhbGciOiJSUzI1NiIsInR5cCI6InNlY2V2ZW50K2p3dCIsImtpZCI6ImsxIn0."
           "eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlIiwiYXVkIjoiaHR0cHM6Ly90ZW5ldC5leGFtcGxlIiwiaWF0IjoxNzAwMDAwMDAwLCJqdGkiOiJqMSIsInN1Yl9pZCI6eyJmb3JtYXQiOiJlbWFpbCIsImVtYWlsIjoiYUBleGFtcGxlLmNvbSJ9LCJldmVudHMiOnsiaHR0cHM6Ly9zY2hlbWFzLm9wZW5pZC5uZXQvc2VjZXZlbnQvY2FlcC9ldmVudC10eXBlL3Nlc3Npb24tcmV2b2tlZCI6e319fQ."
           "c2lnbmF0dXJl")

for t in sorted(counts):
    print(f"seeded {t}: {counts[t]} inputs")
PY
