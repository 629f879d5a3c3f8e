"""Decision-log flood: four clients send 1,000-item evaluation batches as fast
as they can for SECONDS; prints answers by status and the server's peak and
current RSS (VmHWM, VmRSS). A bounded queue sheds with 429 and keeps the RSS
flat. Usage: flood.py PORT SERVER_PID SECONDS"""
import http.client, json, sys, threading, time
port, pid, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
body = json.dumps({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
                   "evaluations": [{"resource": {"type": "record", "id": f"record-{i}"}} for i in range(1000)]})
counts, lock = {}, threading.Lock()
def client():
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    end = time.time() + secs
    while time.time() < end:
        try:
            c.request("POST", "/access/v1/evaluations", body, {"content-type": "application/json"})
            r = c.getresponse(); r.read()
            with lock: counts[r.status] = counts.get(r.status, 0) + 1
        except Exception as e:
            with lock: counts[type(e).__name__] = counts.get(type(e).__name__, 0) + 1
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
ts = [threading.Thread(target=client) for _ in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
hwm = [l for l in open(f"/proc/{pid}/status") if l.startswith(("VmHWM", "VmRSS"))]
print("answers:", counts, "|", " ".join(l.split()[0] + l.split()[1] + "kB" for l in hwm))
