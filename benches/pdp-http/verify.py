#!/usr/bin/env python3
"""Send each generated todo request once and compare the PDP's decision with
the expected decision from the AuthZEN decisions file.

usage: verify.py {cerbos|authzen} BASE_URL BODIES_DIR

  cerbos   POST BASE_URL/api/check/resources with BODIES_DIR/cerbos.jsonl;
           decision = results[0].actions[<action>] == "EFFECT_ALLOW"
  authzen  POST BASE_URL/access/v1/evaluation with BODIES_DIR/authzen.jsonl;
           decision = response "decision" (boolean)

Prints one line per mismatch and a summary "verify <flavor>: P/N decisions match".
Exit status 0 only if all N match.
"""
import json
import os
import sys
import urllib.error
import urllib.request

PATHS = {"cerbos": "/api/check/resources", "authzen": "/access/v1/evaluation"}


def decision(flavor, action, resp):
    if flavor == "cerbos":
        effect = resp["results"][0]["actions"][action]
        return effect == "EFFECT_ALLOW"
    d = resp["decision"]
    if not isinstance(d, bool):
        raise ValueError(f"decision is not a boolean: {d!r}")
    return d


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in PATHS:
        sys.exit(__doc__)
    flavor, base, bodies_dir = sys.argv[1], sys.argv[2].rstrip("/"), sys.argv[3]
    url = base + PATHS[flavor]
    with open(os.path.join(bodies_dir, f"{flavor}.jsonl")) as f:
        bodies = [line.strip() for line in f if line.strip()]
    with open(os.path.join(bodies_dir, "expected.jsonl")) as f:
        expected = [json.loads(line) for line in f if line.strip()]
    if len(bodies) != len(expected):
        sys.exit(f"verify: {len(bodies)} bodies but {len(expected)} expectations")

    ok = 0
    for body, exp in zip(bodies, expected):
        req = urllib.request.Request(url, data=body.encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                resp = json.load(r)
            got = decision(flavor, exp["action"], resp)
        except urllib.error.HTTPError as e:
            print(f"  #{exp['i']:2d} {exp['action']}: HTTP {e.code}: {e.read()[:300]!r}")
            continue
        except Exception as e:  # noqa: BLE001 - report anything as a failed check
            print(f"  #{exp['i']:2d} {exp['action']}: error: {e}")
            continue
        if got == exp["expected"]:
            ok += 1
        else:
            print(f"  #{exp['i']:2d} {exp['action']}: got {got}, expected {exp['expected']}  body={body}")
    print(f"verify {flavor}: {ok}/{len(bodies)} decisions match")
    sys.exit(0 if ok == len(bodies) else 1)


if __name__ == "__main__":
    main()
