#!/usr/bin/env python3
"""Measures what a logged-in peer can make a server hold over TCP JSON.

Starts the kv-server binary given, logs in as a stock Python
`multiprocessing.connection` client would, says a JSON hello, and for each
case prints the bytes sent, the server's peak RSS growth (VmHWM) and its
RSS growth after the attacking connection closed, and how long honest calls
on another connection took meanwhile:

    python3 examples/hostile/amplify.py target/release/kv-server

Loopback only; every wait is bounded.
"""
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Client

KEY = b"amplify-key"
CONFIG = """
[server]
listen = "127.0.0.1:0"
authkey = "amplify-key"
codecs = ["json"]
allow_legacy_auth = true
"""


def status(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def reset_peak(pid):
    # Writing 5 to clear_refs resets VmHWM to the current RSS.
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def session(address):
    conn = Client(address, authkey=KEY)
    conn.send_bytes(json.dumps({"protocol": 1, "codec": "json", "max_frame_bytes": 1 << 30}).encode())
    answer = json.loads(conn.recv_bytes())
    assert "error" not in answer, answer
    return conn


def call(conn, id, method, params):
    conn.send_bytes(json.dumps({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).encode())
    return json.loads(conn.recv_bytes())


class Honest(threading.Thread):
    """Calls `KeyValue.exists` in a loop on its own connection; keeps the slowest."""

    def __init__(self, address):
        super().__init__(daemon=True)
        self.conn = session(address)
        self.stop = threading.Event()
        self.worst = 0.0
        self.calls = 0

    def run(self):
        while not self.stop.is_set():
            t = time.monotonic()
            call(self.conn, 1, "KeyValue.exists", ["honest"])
            self.worst = max(self.worst, time.monotonic() - t)
            self.calls += 1
            time.sleep(0.01)


def case(pid, address, name, payload, expect_reply=True):
    honest = Honest(address)
    honest.start()
    time.sleep(0.1)
    conn = session(address)
    base = status(pid, "VmRSS")
    reset_peak(pid)
    t = time.monotonic()
    conn.send_bytes(payload)
    answer = None
    if expect_reply and conn.poll(60):
        raw = conn.recv_bytes()
        answer = f"{len(raw)} bytes: {raw[:160]!r}"
    took = time.monotonic() - t
    peak = status(pid, "VmHWM") - base
    conn.close()
    time.sleep(1.0)
    after = status(pid, "VmRSS") - base
    honest.stop.set()
    honest.join(5)
    mib = 1 << 20
    print(f"{name}: sent {len(payload)} B; peak +{peak / mib:.1f} MiB (x{peak / len(payload):.0f}); "
          f"after close +{after / mib:.1f} MiB; reply in {took:.2f} s; "
          f"honest worst {honest.worst * 1000:.0f} ms over {honest.calls} calls")
    print(f"    reply: {answer}")


def main():
    binary = sys.argv[1]
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(CONFIG)
    server = subprocess.Popen([binary, "--config", f.name], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = server.stdout.readline().split()
        host, port = line[1].rsplit(":", 1)
        address = (host, int(port))
        setup = session(address)
        print(f"baseline RSS {status(server.pid, 'VmRSS') / (1 << 20):.1f} MiB")
        for size, key in [(1 << 20, "m1"), (4 << 20, "m4")]:
            reply = call(setup, 1, "KeyValue.set", [key, "x" * size])
            assert "error" not in reply, reply
        for n, key in [(256, "m1"), (1024, "m4")]:
            batch = [{"jsonrpc": "2.0", "id": i, "method": "KeyValue.get", "params": [key]} for i in range(n)]
            case(server.pid, address, f"batch of {n} gets of {key}", json.dumps(batch).encode())
        junk = b"[" + b"0," * (8 << 20 - 1) + b"0]"
        case(server.pid, address, "junk batch [0,0,...]", junk)
    finally:
        server.terminate()
        server.wait(10)
        os.unlink(f.name)


if __name__ == "__main__":
    main()
