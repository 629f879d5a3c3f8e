"""Idle-socket flood: opens N connections that never send a byte, then asks
/healthz as a newcomer; after 12 s (past the header timeout) counts how many
are still open, and asks /healthz again. Usage: idle.py PORT N"""
import socket, sys, time, http.client
port, n = int(sys.argv[1]), int(sys.argv[2])
held = []
for _ in range(n):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5); held.append(s)
    except Exception as e:
        break
t = time.time()
try:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10); c.request("GET", "/healthz"); r = c.getresponse()
    status = r.status; r.read()
except Exception as e:
    status = type(e).__name__
print(f"held {len(held)} idle sockets; newcomer got {status} in {time.time()-t:.2f}s")
time.sleep(12)
def still_open(s):
    # Drain what the server sent (a 503 to those over the cap); open means
    # no end of stream yet.
    s.settimeout(0.05)
    try:
        while True:
            if s.recv(4096) == b"":
                return False
    except socket.timeout:
        return True
    except OSError:
        return False
alive = sum(still_open(s) for s in held)
print(f"after 12 s: {alive} of {len(held)} still open (the header timeout closes silent ones; those over the cap were answered 503 and closed)")
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10); c.request("GET", "/healthz"); r = c.getresponse()
print("then /healthz:", r.status)
