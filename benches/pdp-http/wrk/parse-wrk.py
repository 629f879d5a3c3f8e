#!/usr/bin/env python3
"""Parse the text output of `wrk --latency` and print one line:

    <requests/s> <p50 ms> <p99 ms> <total requests> <non-2xx/3xx> <socket errors>

Fields that are missing print as "NA". usage: parse-wrk.py WRK_OUTPUT_FILE
"""
import re
import sys

UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def to_ms(value, unit):
    return float(value) * UNIT_MS[unit]


def main():
    text = open(sys.argv[1]).read()
    out = {"rps": "NA", "p50": "NA", "p99": "NA", "reqs": "NA", "non2xx": "0", "errors": "0"}
    m = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if m:
        out["rps"] = f"{float(m.group(1)):.1f}"
    dist = text.split("Latency Distribution", 1)[1] if "Latency Distribution" in text else ""
    for pct, key in (("50", "p50"), ("99", "p99")):
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s|m|h)\s*$", dist, re.M)
        if m:
            out[key] = f"{to_ms(m.group(1), m.group(2)):.2f}"
    m = re.search(r"^\s*(\d+) requests in", text, re.M)
    if m:
        out["reqs"] = m.group(1)
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m:
        out["non2xx"] = m.group(1)
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        out["errors"] = str(sum(int(g) for g in m.groups()))
    print(out["rps"], out["p50"], out["p99"], out["reqs"], out["non2xx"], out["errors"])


if __name__ == "__main__":
    main()
