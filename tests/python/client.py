"""A stock Python client in the Cookbook RPC pattern, unchanged but for
its command line: `client.py PORT AUTHKEY pickle|json|plain [--modern] [--idle SECONDS]`.

`plain` sends the call tuple itself (`conn.send((name, args, kwargs))`).
`--idle` waits that long after connecting before the first call.
Prints one line per call; exits 0 when every line was printed.
"""
import json
import pickle
import sys
import time
from multiprocessing.connection import Client


class RPCProxy:
    def __init__(self, connection):
        self._connection = connection

    def __getattr__(self, name):
        def do_rpc(*args, **kwargs):
            self._connection.send(pickle.dumps((name, args, kwargs)))
            result = pickle.loads(self._connection.recv())
            if isinstance(result, Exception):
                raise result
            return result

        return do_rpc


class JSONRPCProxy:
    def __init__(self, connection):
        self._connection = connection

    def __getattr__(self, name):
        def do_rpc(*args, **kwargs):
            self._connection.send(json.dumps((name, args, kwargs)))
            result = json.loads(self._connection.recv())
            return result

        return do_rpc


class PlainRPCProxy:
    def __init__(self, connection):
        self._connection = connection

    def __getattr__(self, name):
        def do_rpc(*args, **kwargs):
            self._connection.send((name, args, kwargs))
            result = self._connection.recv()
            if isinstance(result, Exception):
                raise result
            return result

        return do_rpc


PROXIES = {"pickle": RPCProxy, "json": JSONRPCProxy, "plain": PlainRPCProxy}


def main():
    port, authkey, variant = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]
    if "--modern" in sys.argv:
        import modern_auth

        modern_auth.install()
    c = Client(("127.0.0.1", port), authkey=authkey)
    if "--idle" in sys.argv:
        time.sleep(float(sys.argv[sys.argv.index("--idle") + 1]))
    proxy = PROXIES[variant](c)
    print("add(2, 3) =", proxy.add(2, 3))
    print("sub(2, 3) =", proxy.sub(2, 3))
    print("add(x=2, y=3) =", proxy.add(x=2, y=3))
    print("sub(2, y=3) =", proxy.sub(2, y=3))
    for call in ("div(1, 0)", "mul(2, 3)", "add(1, 2, 3)", "add(2, z=3)"):
        try:
            print(call, "=", eval("proxy." + call))
        except Exception as e:
            print(call, "raised", type(e).__name__ + ":", e)
    print("add(40, 2) =", proxy.add(40, 2))
    c.close()


if __name__ == "__main__":
    main()
