"""A stock Python server in the Cookbook RPC pattern:
`server.py AUTHKEY pickle|json [--modern]`. Binds 127.0.0.1:0, prints
`listening PORT`, serves until killed.
"""
import json
import pickle
import sys
from multiprocessing.connection import Listener
from threading import Thread


class MyError(Exception):
    pass


class RPCHandler:
    def __init__(self):
        self._functions = {}

    def register_function(self, func):
        self._functions[func.__name__] = func

    def handle_connection(self, connection):
        try:
            while True:
                func_name, args, kwargs = pickle.loads(connection.recv())
                try:
                    r = self._functions[func_name](*args, **kwargs)
                    connection.send(pickle.dumps(r))
                except Exception as e:
                    connection.send(pickle.dumps(e))
        except EOFError:
            pass


class JSONRPCHandler(RPCHandler):
    def handle_connection(self, connection):
        try:
            while True:
                func_name, args, kwargs = json.loads(connection.recv())
                try:
                    r = self._functions[func_name](*args, **kwargs)
                    connection.send(json.dumps(r))
                except Exception as e:
                    connection.send(json.dumps(e))
        except EOFError:
            pass


def add(x, y):
    return x + y


def sub(x, y):
    return x - y


def div(x, y):
    return x // y


def boom(what):
    raise MyError("boom: " + what)


def missing(name):
    raise ImportError("no module named " + name, name=name)


def main():
    authkey, variant = sys.argv[1].encode(), sys.argv[2]
    if "--modern" in sys.argv:
        import modern_auth

        modern_auth.install()
    handler = RPCHandler() if variant == "pickle" else JSONRPCHandler()
    for f in (add, sub, div, boom, missing):
        handler.register_function(f)
    sock = Listener(("127.0.0.1", 0), authkey=authkey)
    print("listening", sock.address[1], flush=True)
    while True:
        try:
            client = sock.accept()
        except Exception as e:
            print("accept failed:", type(e).__name__, e, flush=True)
            continue
        t = Thread(target=handler.handle_connection, args=(client,))
        t.daemon = True
        t.start()


if __name__ == "__main__":
    main()
