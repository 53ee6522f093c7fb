"""Malicious requests, each on its own connection: `evil.py PORT AUTHKEY MARKER`.

For each, prints what came back and whether the server then closed the
connection. MARKER is a path the os.system payloads would create.
"""
import os
import pickle
import struct
import sys
from multiprocessing.connection import Client


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("touch " + self.marker,))


def memo_bomb(levels=40):
    # A list of ten references to a list of ten references to ... (10**40 items if copied).
    out = b"\x80\x04]\x94" + b"0"
    for level in range(levels):
        out += b"(" + (b"j" + struct.pack("<I", level)) * 10 + b"l\x940"
    return out + b"j" + struct.pack("<I", levels) + b"."


def length_bomb(op):
    # BINUNICODE8 / BINBYTES8 claiming 2**62 bytes in a 20-byte frame.
    return b"\x80\x04" + op + struct.pack("<Q", 1 << 62) + b"abc."


def deep(n=100000):
    return b"\x80\x04" + b"]" * n + b"a" * (n - 1) + b"."


def main():
    port, authkey, marker = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]
    payloads = [
        ("os.system pickle", pickle.dumps(Evil(marker))),
        ("os.system, protocol 0", pickle.dumps(Evil(marker), protocol=0)),
        ("os.system inside the call tuple", pickle.dumps(pickle.dumps(("add", (Evil(marker),), {})))),
        ("memo bomb", memo_bomb()),
        ("BINUNICODE8 length bomb", length_bomb(b"\x8d")),
        ("BINBYTES8 length bomb", length_bomb(b"\x8e")),
        ("deep nesting", deep()),
    ]
    for name, payload in payloads:
        c = Client(("127.0.0.1", port), authkey=authkey)
        c.send_bytes(payload)
        reply = c.recv()
        if isinstance(reply, bytes):
            reply = pickle.loads(reply)
        try:
            c.recv_bytes()
            closed = False
        except EOFError:
            closed = True
        print("%s (%d bytes): got %s: %s; closed: %s"
              % (name, len(payload), type(reply).__name__, reply, closed))
    print("os.system ran:", os.path.exists(marker))


if __name__ == "__main__":
    main()
