"""Stock Python clients sending and receiving bytes, and reading a typed error.

Usage:
  python3 bytes_client.py pickle PORT AUTHKEY   the Cookbook pattern, pickle form
  python3 bytes_client.py errors PORT AUTHKEY   a typed error, pickle and JSON forms
  python3 bytes_client.py xmlrpc HOST:PORT PASSWORD
  python3 bytes_client.py frame pickle|json    one reply frame's payload on stdin,
                                               read as the pattern's proxy reads it

Prints one line per check; exits non-zero on the first mismatch.
"""
import json
import pickle
import sys
import xmlrpc.client
from multiprocessing.connection import Client

PNG = b"\x89PNG\r\n\x1a\n\x00\xff"


def check(what, got, expected):
    print(f"{what} -> {got!r}")
    if got != expected or type(got) is not type(expected):
        sys.exit(f"{what}: expected {expected!r}, got {got!r}")


def call(conn, name, *args):
    conn.send(pickle.dumps((name, args, {})))
    result = pickle.loads(conn.recv())
    if isinstance(result, Exception):
        raise result
    return result


def call_json(conn, name, *args):
    conn.send(json.dumps((name, args, {})))
    return json.loads(conn.recv())


def pickle_bytes(port, authkey):
    conn = Client(("127.0.0.1", int(port)), authkey=authkey.encode())
    check("reverse(PNG)", call(conn, "reverse", PNG), PNG[::-1])
    check("reverse(b'')", call(conn, "reverse", b""), b"")
    images = [{"Png": PNG}, {"Named": {"name": "icon", "data": b"\x00"}}, "Empty"]
    check("echo(images)", call(conn, "echo", images), images)
    check("thumb(PNG)", call(conn, "thumb", PNG), {"name": "thumb", "data": PNG[:4]})
    large = bytes(range(256)) * 1024
    check("reverse(256 KiB)", call(conn, "reverse", large), large[::-1])


def errors(port, authkey):
    conn = Client(("127.0.0.1", int(port)), authkey=authkey.encode())
    try:
        call(conn, "limit", 99)
        sys.exit("limit(99) did not raise")
    except RuntimeError as e:
        check("str(e)", str(e), "`Media.limit` failed: 99 bytes is over the limit of 10")
        check("e.args", e.args, ("`Media.limit` failed: 99 bytes is over the limit of 10",))
        check("e.data", e.data, {"TooLarge": {"size": 99, "limit": 10}})
    try:
        call(conn, "limit", 0)
        sys.exit("limit(0) did not raise")
    except RuntimeError as e:
        check("e.data", e.data, "Empty")
    check("limit(5)", call(conn, "limit", 5), 5)
    conn.close()
    conn = Client(("127.0.0.1", int(port)), authkey=authkey.encode())
    check(
        "json limit(99)",
        call_json(conn, "limit", 99),
        {
            "error": {
                "type": "RuntimeError",
                "message": "`Media.limit` failed: 99 bytes is over the limit of 10",
                "data": {"TooLarge": {"size": 99, "limit": 10}},
            }
        },
    )


def xml_rpc(address, password):
    s = xmlrpc.client.ServerProxy(f"http://rpc:{password}@{address}/RPC2")
    binary = xmlrpc.client.Binary
    check("reverse(Binary(PNG))", s.reverse(binary(PNG)), binary(PNG[::-1]))
    images = [{"Png": binary(PNG)}, {"Named": {"name": "icon", "data": binary(b"\x00")}}, "Empty"]
    check("echo(images)", s.echo(images), images)
    check("thumb(Binary(PNG))", s.thumb(binary(PNG)), {"name": "thumb", "data": binary(PNG[:4])})
    b = xmlrpc.client.ServerProxy(
        f"http://rpc:{password}@{address}/RPC2", use_builtin_types=True
    )
    check("reverse(PNG) with builtin types", b.reverse(PNG), PNG[::-1])


def frame(form):
    payload = pickle.loads(sys.stdin.buffer.read())
    if form == "json":
        print("json.loads ->", json.loads(payload))
        return
    result = pickle.loads(payload)
    try:
        raise result
    except RuntimeError as e:
        print("str(e) ->", repr(str(e)))
        print("e.args ->", repr(e.args))
        print("e.data ->", repr(getattr(e, "data", "(none)")))


MODES = {"pickle": pickle_bytes, "errors": errors, "xmlrpc": xml_rpc}

if __name__ == "__main__":
    if sys.argv[1] == "frame":
        frame(sys.argv[2])
    else:
        MODES[sys.argv[1]](sys.argv[2], sys.argv[3])
        print("all good")
