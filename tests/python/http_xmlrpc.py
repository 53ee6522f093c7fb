"""The Python XML-RPC recipe, unmodified, against the gateway's /RPC2.

Usage: python3 http_xmlrpc.py HOST:PORT PASSWORD

Runs the key-value session with xmlrpc.client.ServerProxy, prints each
result, and checks every answer; exits non-zero on the first mismatch.
"""

import sys
import xmlrpc.client
from xmlrpc.client import ServerProxy

address, password = sys.argv[1], sys.argv[2]


def check(what, got, expected):
    print(f"{what} -> {got!r}")
    if got != expected:
        sys.exit(f"{what}: expected {expected!r}, got {got!r}")


s = ServerProxy(f"http://rpc:{password}@{address}/RPC2", allow_none=True)
check("s.set('foo', 'bar')", s.set("foo", "bar"), None)
check("s.set('spam', [1, 2, 3])", s.set("spam", [1, 2, 3]), None)
check("s.keys()", s.keys(), ["foo", "spam"])
check("s.get('foo')", s.get("foo"), "bar")
check("s.get('spam')", s.get("spam"), [1, 2, 3])
check("s.delete('spam')", s.delete("spam"), None)
check("s.exists('spam')", s.exists("spam"), False)

# Every XML-RPC type both ways, through a dynamic value.
value = {
    "int": 7,
    "neg": -3,
    "bool": True,
    "text": "a <b> & c",
    "double": 2.5,
    "list": [1, "two", None, [3.0]],
    "nested": {"k": {"deeper": []}},
}
s.set("all", value)
check("s.get('all')", s.get("all"), value)
# base64 arrives as bytes; a dynamic value keeps them as JSON would (numbers).
s.set("blob", b"hi")
check("s.get('blob')", s.get("blob"), [104, 105])
# dateTime.iso8601 arrives as its text.
s.set("when", xmlrpc.client.DateTime("19980717T14:08:55"))
check("s.get('when')", s.get("when"), "19980717T14:08:55")
check("s.KeyValue.exists('foo')", getattr(s, "KeyValue.exists")("foo"), True)

# A typed error is a Fault naming it.
try:
    s.get("spam")
    sys.exit("s.get('spam') after delete did not fail")
except xmlrpc.client.Fault as fault:
    print(f"s.get('spam') -> Fault {fault.faultCode}: {fault.faultString}")
    check("faultCode", fault.faultCode, 1)
    if not fault.faultString.startswith("KvError: "):
        sys.exit(f"faultString does not name the error: {fault.faultString!r}")
    if '"NotFound"' not in fault.faultString:
        sys.exit(f"faultString lacks the error's data: {fault.faultString!r}")

# Framework errors are faults too.
for call, code in [
    (lambda: s.nope(), -32601),
    (lambda: s.system.multicall([]), -32601),
    (lambda: s.get(1), -32602),
    (lambda: s.get(), -32602),
    (lambda: s.get("a", "b"), -32602),
]:
    try:
        call()
        sys.exit("a bad call did not fail")
    except xmlrpc.client.Fault as fault:
        print(f"bad call -> Fault {fault.faultCode}: {fault.faultString}")
        check("faultCode", fault.faultCode, code)

# Introspection.
methods = s.system.listMethods()
print(f"s.system.listMethods() -> {methods!r}")
for name in ["KeyValue.get", "KeyValue.set", "system.methodHelp"]:
    if name not in methods:
        sys.exit(f"{name} missing from system.listMethods()")
check("s.system.methodSignature('KeyValue.exists')", s.system.methodSignature("KeyValue.exists"), [["boolean", "string"]])
check("s.system.methodHelp('get')", s.system.methodHelp("get"), "The value stored under `name`.")

# Credentials: wrong and missing are refused before any handler.
for url in [f"http://rpc:wrong@{address}/RPC2", f"http://{address}/RPC2"]:
    try:
        ServerProxy(url, allow_none=True).set("intruder", 1)
        sys.exit(f"{url} was let in")
    except xmlrpc.client.ProtocolError as e:
        print(f"{url.split('@')[0]}… -> ProtocolError {e.errcode}")
        check("errcode", e.errcode, 401)
check("s.exists('intruder')", s.exists("intruder"), False)
print("ok")
