"""JSON-RPC and REST over the gateway with urllib.request, unmodified.

Usage: python3 http_jsonrpc.py HOST:PORT PASSWORD MAX_BODY_BYTES

Expects the calculator and the key-value store to be served. Checks single
requests, batches, notifications, errors, malformed, oversized and deeply
nested bodies, credentials, and the REST endpoints; exits non-zero on the
first mismatch.
"""

import base64
import json
import sys
import urllib.error
import urllib.request

address, password, max_body = sys.argv[1], sys.argv[2], int(sys.argv[3])
base = f"http://{address}"


def request(method, path, body=None, password=password, raw=False):
    """(status, headers, body) of one request; body is parsed JSON unless raw."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if password is not None:
        token = base64.b64encode(f"rpc:{password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            status, headers, text = r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        status, headers, text = e.code, e.headers, e.read()
    if raw or not text:
        return status, headers, text
    return status, headers, json.loads(text)


def check(what, got, expected):
    print(f"{what} -> {got!r}")
    if got != expected:
        sys.exit(f"{what}: expected {expected!r}, got {got!r}")


def rpc(body, **kw):
    return request("POST", "/rpc", body, **kw)


# --- JSON-RPC: single requests, by position and by name.
check("add by position", rpc({"jsonrpc": "2.0", "id": 1, "method": "Calculator.add", "params": [2, 3]})[::2],
      (200, {"jsonrpc": "2.0", "id": 1, "result": 5}))
check("add by name", rpc({"jsonrpc": "2.0", "id": "a", "method": "add", "params": {"x": 2, "y": 3}})[::2],
      (200, {"jsonrpc": "2.0", "id": "a", "result": 5}))

# --- Errors: standard codes, and a typed application error with data.
status, _, body = rpc({"jsonrpc": "2.0", "id": 2, "method": "Calculator.div", "params": [1, 0]})
check("div by zero status", status, 200)
check("div by zero code", body["error"]["code"], -32000)
check("div by zero data", body["error"]["data"], "DivideByZero")
check("div by zero message", body["error"]["message"], "division by zero")
status, _, body = rpc({"jsonrpc": "2.0", "id": 3, "method": "Calculator.mul", "params": [1, 2]})
check("unknown method", (status, body["error"]["code"]), (200, -32601))
status, _, body = rpc({"jsonrpc": "2.0", "id": 4, "method": "add", "params": ["two", 3]})
check("bad params", (status, body["error"]["code"]), (200, -32602))
if "add" not in body["error"]["message"]:
    sys.exit(f"the message does not name the method: {body}")

# --- Batches and notifications.
status, _, body = rpc([
    {"jsonrpc": "2.0", "id": 1, "method": "add", "params": [1, 1]},
    {"jsonrpc": "2.0", "method": "KeyValue.set", "params": ["n", 1]},
    {"jsonrpc": "2.0", "id": 2, "method": "nope"},
    {"jsonrpc": "1.0", "id": 3, "method": "add"},
])
check("batch status", status, 200)
check("batch answers", sorted((r["id"], r.get("result"), r.get("error", {}).get("code")) for r in body),
      [(1, 2, None), (2, None, -32601), (3, None, -32600)])
check("notification only", rpc({"jsonrpc": "2.0", "method": "KeyValue.set", "params": ["n", 2]})[::2], (204, b""))
check("notification batch", rpc([{"jsonrpc": "2.0", "method": "KeyValue.set", "params": ["n", 3]}])[::2], (204, b""))
check("the notifications ran", rpc({"jsonrpc": "2.0", "id": 9, "method": "KeyValue.get", "params": ["n"]})[2]["result"], 3)

# --- Bodies that are not JSON-RPC at all: 400 with an error object.
for what, body, code in [
    ("malformed JSON", b'{"jsonrpc": "2.0", "id": 1, "method": ', -32700),
    ("not an object", b'"hello"', -32600),
    ("no method", b'{"jsonrpc": "2.0", "id": 1}', -32600),
    ("empty batch", b"[]", -32600),
    ("deeply nested", b'{"jsonrpc":"2.0","id":1,"method":"add","params":' + b"[" * 5000 + b"]" * 5000 + b"}", -32600),
]:
    status, _, answer = rpc(body)
    check(what, (status, answer["error"]["code"]), (400, code))
    if not answer["error"]["message"]:
        sys.exit(f"{what}: no message")
status, _, answer = rpc(b"[" + b" " * max_body + b"]")
check("oversized", (status, answer["error"]["code"]), (413, -32005))

# --- Credentials: wrong and missing are 401 with a challenge.
for what, pw in [("wrong password", "wrong"), ("no credentials", None)]:
    status, headers, _ = rpc({"jsonrpc": "2.0", "id": 1, "method": "KeyValue.set", "params": ["x", 1]}, password=pw)
    check(what, status, 401)
    check(what + " challenge", headers["WWW-Authenticate"].startswith('Basic realm="'), True)
check("nothing was set", rpc({"jsonrpc": "2.0", "id": 1, "method": "exists", "params": ["x"]})[2]["result"], False)

# --- REST.
check("POST array", request("POST", "/Calculator/add", [2, 3])[::2], (200, 5))
check("POST object", request("POST", "/Calculator/sub", {"x": 2, "y": 3})[::2], (200, -1))
check("POST empty body", request("POST", "/KeyValue/keys", b"")[::2], (200, ["n"]))
check("GET typed query", request("GET", "/Calculator/add?x=2&y=3")[::2], (200, 5))
check("POST set", request("POST", "/KeyValue/set", ["42", {"a": [1]}])[::2], (200, None))
check("GET a string that looks like a number", request("GET", "/KeyValue/get?name=42")[::2], (200, {"a": [1]}))
status, _, body = request("POST", "/Calculator/div", [1, 0])
check("application error", (status, body["error"]["data"]), (422, "DivideByZero"))
status, headers, body = request("GET", "/Calculator/div?x=1&y=0")
check("GET on a method that is not idempotent", (status, headers["Allow"]), (405, "POST"))
if "Calculator.div" not in body["error"]["message"]:
    sys.exit(f"the 405 does not name the method: {body}")
check("unknown method", request("POST", "/Calculator/mul", [1, 2])[0], 404)
check("bad arguments", request("POST", "/Calculator/add", ["x"])[0], 400)
check("bad query", request("GET", "/Calculator/add?x=two&y=3")[0], 400)
check("malformed body", request("POST", "/Calculator/add", b"[1,")[0], 400)
check("REST oversized", request("POST", "/Calculator/add", b"[" + b" " * max_body + b"]")[0], 413)
check("REST without credentials", request("GET", "/Calculator/add?x=1&y=1", password=None)[0], 401)

# --- Operations.
check("healthz needs no password", request("GET", "/healthz", password=None, raw=True)[::2], (200, b"serving\n"))
status, _, text = request("GET", "/metrics", raw=True)
text = text.decode()
check("metrics status", status, 200)
for needle in [
    'rpc_calls_total{service="Calculator",method="add",transport="http",outcome="ok"}',
    "rpc_call_duration_seconds_bucket{",
    'rpc_connections_open{transport="http"}',
]:
    check(f"metrics has {needle}", needle in text, True)
status, _, index = request("GET", "/")
names = {s["name"]: [m["name"] for m in s["methods"]] for s in index["services"]}
check("index", names["Calculator"], ["add", "sub", "div"])
check("index params", index["services"][0]["methods"][0]["params"], [{"name": "x", "type": "i64"}, {"name": "y", "type": "i64"}])
print("ok")
