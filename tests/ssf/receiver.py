"""An SSF push receiver built on an independent JOSE implementation (PyJWT
with `cryptography`), for Tenet's end-to-end tests.

    receiver.py PORT JWKS_URL ISSUER AUDIENCE LOG [EXPECTED_AUTHORIZATION]

Serves RFC 8935 push on 127.0.0.1:PORT. Each SET is verified against the
transmitter's JWKS and its claims checked against RFC 8417, SSF 1.0 and the
CAEP interoperability profile; an accepted SET gets 202 and one JSON line in
LOG (jti, type, claims, whether the jti was seen before, receive time); a
SET that fails a check gets RFC 8935's 400 error body and a line with
"rejected". Prints "ready" once listening.
"""

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt

port, jwks_url, issuer, audience, log_path = int(sys.argv[1]), *sys.argv[2:6]
expected_auth = sys.argv[6] if len(sys.argv) > 6 else None
jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, lifespan=1)
seen = set()
lock = threading.Lock()

INITIATORS = {"admin", "user", "policy", "system"}
CAEP = "https://schemas.openid.net/secevent/caep/event-type/"
RISC = "https://schemas.openid.net/secevent/risc/event-type/"
SSF = "https://schemas.openid.net/secevent/ssf/event-type/"
CREDENTIAL_TYPES = {"password", "pin", "x509", "fido2-platform", "fido2-roaming", "fido-u2f",
                    "verifiable-credential", "phone-voice", "phone-sms", "app", "cloud-access-key"}
LEVELS = {"LOW", "MEDIUM", "HIGH"}


def check_subject(s, top=True):
    assert isinstance(s, dict), f"sub_id {s!r}"
    fmt = s.get("format")
    if fmt == "email":
        assert isinstance(s.get("email"), str) and "@" in s["email"], s
    elif fmt == "iss_sub":
        assert isinstance(s.get("iss"), str) and isinstance(s.get("sub"), str), s
    elif fmt == "opaque":
        assert isinstance(s.get("id"), str) and s["id"], s
    elif fmt == "complex" and top:
        members = {k: v for k, v in s.items() if k != "format"}
        assert members, "a complex subject with no member"
        for v in members.values():
            check_subject(v, top=False)
    else:
        raise AssertionError(f"subject format {fmt!r}")


def check_event(etype, ev):
    assert isinstance(ev, dict), "an event is an object"
    if etype.startswith(CAEP) or etype.startswith(RISC):
        # Tenet sends when, who and why with every event.
        assert isinstance(ev.get("event_timestamp"), int), "event_timestamp"
        assert ev.get("event_timestamp") <= time.time() + 1, "event_timestamp in the future"
        assert ev.get("initiating_entity") in INITIATORS, "initiating_entity"
        for k in ("reason_admin", "reason_user"):
            assert isinstance(ev.get(k), dict) and ev[k] and all(
                isinstance(t, str) and t for t in ev[k].values()), k
    name = etype.rsplit("/", 1)[-1]
    if etype == CAEP + "risk-level-change":
        assert ev.get("current_level") in LEVELS and isinstance(ev.get("principal"), str)
        assert ev.get("previous_level", "LOW") in LEVELS
    elif etype == CAEP + "token-claims-change":
        assert isinstance(ev.get("claims"), dict) and ev["claims"]
    elif etype == CAEP + "credential-change":
        assert ev.get("credential_type") in CREDENTIAL_TYPES
        assert ev.get("change_type") in {"create", "revoke", "update", "delete"}
    elif etype == CAEP + "assurance-level-change":
        assert isinstance(ev.get("namespace"), str) and isinstance(ev.get("current_level"), str)
    elif etype == CAEP + "device-compliance-change":
        assert {ev.get("previous_status"), ev.get("current_status")} == {"compliant", "not-compliant"}
    elif etype == RISC + "credential-compromise":
        assert ev.get("credential_type") in CREDENTIAL_TYPES
    elif etype == RISC + "account-disabled":
        assert ev.get("reason", "hijacking") in {"hijacking", "bulk-account"}
    elif etype == SSF + "verification":
        assert set(ev) <= {"state"}, ev
    elif etype == SSF + "stream-updated":
        assert ev.get("status") in {"enabled", "paused", "disabled"}
    elif etype != CAEP + "session-revoked":
        raise AssertionError(f"unexpected event type {name}")


def check(token):
    header = jwt.get_unverified_header(token)
    assert header.get("typ") == "secevent+jwt", f"typ {header.get('typ')!r}"
    assert header.get("alg") == "RS256", f"alg {header.get('alg')!r}"
    key = jwks.get_signing_key_from_jwt(token)
    assert key.key.key_size >= 2048, f"a {key.key.key_size}-bit key"
    claims = jwt.decode(token, key.key, algorithms=["RS256"], audience=audience, issuer=issuer,
                        leeway=0, options={"require": ["iss", "aud", "iat", "jti"], "verify_iat": True})
    assert claims["iat"] <= time.time() + 0.5, "iat in the future"
    assert "sub" not in claims, "SSF SETs carry sub_id, never sub"
    assert "exp" not in claims, "SETs have no exp"
    assert "txn" not in claims or isinstance(claims["txn"], str)
    check_subject(claims.get("sub_id"))
    events = claims.get("events")
    assert isinstance(events, dict) and len(events) == 1, "exactly one event per SET"
    (etype, ev), = events.items()
    check_event(etype, ev)
    return claims, etype, header.get("kid")


def err_for(e):
    if isinstance(e, jwt.InvalidAudienceError):
        return "invalid_audience"
    if isinstance(e, jwt.InvalidIssuerError):
        return "invalid_issuer"
    if isinstance(e, (jwt.PyJWKClientError, jwt.InvalidSignatureError)):
        return "invalid_key"
    return "invalid_request"


def record(line):
    with lock:
        with open(log_path, "a") as f:
            f.write(json.dumps(line) + "\n")


class Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        problems = []
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/secevent+jwt":
            problems.append(f"content type {self.headers.get('Content-Type')!r}")
        if self.headers.get("Accept") != "application/json":
            problems.append(f"accept {self.headers.get('Accept')!r}")
        auth = self.headers.get("Authorization")
        if auth != expected_auth:
            problems.append(f"authorization {auth!r}")
        if problems:
            record({"rejected": "; ".join(problems)})
            return self.reply(400, {"err": "authentication_failed" if auth != expected_auth else "invalid_request",
                                    "description": "; ".join(problems)})
        try:
            claims, etype, kid = check(body)
        except Exception as e:  # every failed check is the receiver's 400
            record({"rejected": f"{type(e).__name__}: {e}"})
            return self.reply(400, {"err": err_for(e), "description": str(e)})
        with lock:
            dup = claims["jti"] in seen
            seen.add(claims["jti"])
        record({"received": time.time(), "jti": claims["jti"], "dup": dup, "type": etype, "kid": kid,
                "auth": auth, "claims": claims})
        self.reply(202, None)

    def reply(self, code, obj):
        data = json.dumps(obj).encode() if obj is not None else b""
        self.send_response(code)
        if obj is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", port), Receiver)
print("ready", flush=True)
server.serve_forever()
