#!/usr/bin/env python3
"""Generate the request bodies for the pdp-http benchmark.

Reads the AuthZEN "todo" interop decisions file (AuthZEN 1.0 draft 01, 40
evaluations) and writes, into OUT_DIR:

  authzen.jsonl   one AuthZEN evaluation body per line (POST /access/v1/evaluation)
  cerbos.jsonl    the equivalent Cerbos CheckResources body per line
                  (POST /api/check/resources)
  expected.jsonl  {"i", "action", "expected"} per line, same order

Line i of every file describes the same decision. The files are generated at
run time so the project does not embed the shared decisions file.

AuthZEN requests carry only the subject id (the user's PID); the PDP is expected
to resolve the user's roles and email itself (its PIP). Cerbos is stateless, so
for Cerbos the caller (here: this generator, playing the PEP) attaches the
principal's roles and attributes from the scenario's user directory below.

With --properties every request also carries properties, as a PEP that
knows its caller and object sends them: the subject's directory attributes
(email, name, department) and, for the resource, its tenant beside what the
scenario gives; Cerbos gets the same values as principal and resource
attributes. No policy reads the added ones, so every decision stays as
expected, but each request brings entity data of its own: the PDP must
assemble entities per request instead of reusing a cached set.

usage: gen-bodies.py [--decisions FILE] [--properties] OUT_DIR
"""
import argparse
import json
import os
import sys

DEFAULT_DECISIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../shared/specs/authzen/todo/decisions-authorization-api-1_0-01.json")

# User directory of the todo scenario ("Attributes associated with users",
# scenario-docs/todo-1.0-id.md): PID -> attributes. `id` is the user's email,
# which is what resource.properties.ownerID refers to.
USERS = {
    "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs": {
        "id": "rick@the-citadel.com", "name": "Rick Sanchez",
        "email": "rick@the-citadel.com", "roles": ["admin", "evil_genius"]},
    "CiRmZDE2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs": {
        "id": "morty@the-citadel.com", "name": "Morty Smith",
        "email": "morty@the-citadel.com", "roles": ["editor"]},
    "CiRmZDI2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs": {
        "id": "summer@the-smiths.com", "name": "Summer Smith",
        "email": "summer@the-smiths.com", "roles": ["editor"]},
    "CiRmZDM2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs": {
        "id": "beth@the-smiths.com", "name": "Beth Smith",
        "email": "beth@the-smiths.com", "roles": ["viewer"]},
    "CiRmZDQ2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs": {
        "id": "jerry@the-smiths.com", "name": "Jerry Smith",
        "email": "jerry@the-smiths.com", "roles": ["viewer"]},
}


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=False)


DEPARTMENTS = {"rick@the-citadel.com": "research", "morty@the-citadel.com": "research"}


def with_properties(req):
    """The request with subject and resource properties added (see --properties)."""
    req = json.loads(json.dumps(req))
    user = USERS[req["subject"]["id"]]
    req["subject"]["properties"] = {
        "email": user["email"], "name": user["name"],
        "department": DEPARTMENTS.get(user["email"], "family"),
        **req["subject"].get("properties", {}),
    }
    req["resource"]["properties"] = {"tenant": "the-citadel", **req["resource"].get("properties", {})}
    return req


def authzen_body(req):
    """The AuthZEN evaluation body, normalised to type/id/properties."""
    subj, act, res = req["subject"], req["action"], req["resource"]
    body = {
        "subject": {"type": subj["type"], "id": subj["id"]},
        "action": {"name": act["name"]},
        "resource": {"type": res["type"], "id": res["id"]},
    }
    if subj.get("properties"):
        body["subject"]["properties"] = subj["properties"]
    if res.get("properties"):
        body["resource"]["properties"] = res["properties"]
    if req.get("context"):
        body["context"] = req["context"]
    return body


def cerbos_body(i, req):
    """The equivalent Cerbos CheckResources body (one resource, one action)."""
    subj, act, res = req["subject"], req["action"], req["resource"]
    user = USERS.get(subj["id"])
    if user is None:
        sys.exit(f"gen-bodies: evaluation {i}: unknown subject id {subj['id']!r}")
    principal = {
        "id": subj["id"],
        "roles": list(user["roles"]),
        "attr": {"id": user["id"], "name": user["name"], "email": user["email"]},
    }
    for k, v in subj.get("properties", {}).items():
        principal["attr"].setdefault(k, v)
    resource = {"kind": res["type"], "id": res["id"]}
    if res.get("properties"):
        resource["attr"] = dict(res["properties"])
    body = {
        "requestId": f"todo-{i}",
        "principal": principal,
        "resources": [{"actions": [act["name"]], "resource": resource}],
    }
    # AuthZEN `context` is empty/absent in every todo evaluation; Cerbos gets none.
    return body


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--decisions", default=os.environ.get("AUTHZEN_TODO_DECISIONS", DEFAULT_DECISIONS))
    ap.add_argument("--properties", action="store_true",
                    help="every request carries subject and resource properties")
    ap.add_argument("out_dir")
    args = ap.parse_args()

    with open(args.decisions) as f:
        evaluations = json.load(f)["evaluation"]
    os.makedirs(args.out_dir, exist_ok=True)

    paths = {k: os.path.join(args.out_dir, k + ".jsonl") for k in ("authzen", "cerbos", "expected")}
    with open(paths["authzen"], "w") as fa, open(paths["cerbos"], "w") as fc, \
            open(paths["expected"], "w") as fe:
        for i, ev in enumerate(evaluations):
            req = with_properties(ev["request"]) if args.properties else ev["request"]
            if not isinstance(ev.get("expected"), bool):
                sys.exit(f"gen-bodies: evaluation {i}: 'expected' is not a boolean")
            fa.write(dumps(authzen_body(req)) + "\n")
            fc.write(dumps(cerbos_body(i, req)) + "\n")
            fe.write(dumps({"i": i, "action": req["action"]["name"], "expected": ev["expected"]}) + "\n")
    print(f"gen-bodies: {len(evaluations)} requests -> {args.out_dir}", file=sys.stderr)


if __name__ == "__main__":
    main()
