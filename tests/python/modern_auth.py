"""The Python 3.12+ `{sha256}` handshake, patched into an older
multiprocessing.connection, so a test can speak it with the python3 at hand.

    import modern_auth; modern_auth.install()
"""
import hmac
import os
from multiprocessing import connection
from multiprocessing.connection import AuthenticationError, CHALLENGE, FAILURE, WELCOME


def deliver_challenge(conn, authkey):
    message = b"{sha256}" + os.urandom(40)
    conn.send_bytes(CHALLENGE + message)
    response = conn.recv_bytes(256)
    expected = b"{sha256}" + hmac.new(authkey, message, "sha256").digest()
    if hmac.compare_digest(response, expected):
        conn.send_bytes(WELCOME)
    else:
        conn.send_bytes(FAILURE)
        raise AuthenticationError("digest received was wrong")


def answer_challenge(conn, authkey):
    message = conn.recv_bytes(256)
    assert message[: len(CHALLENGE)] == CHALLENGE, message
    message = message[len(CHALLENGE):]
    if not message.startswith(b"{sha256}"):
        raise AuthenticationError("expected a {sha256} challenge, got %r" % message[:10])
    conn.send_bytes(b"{sha256}" + hmac.new(authkey, message, "sha256").digest())
    if conn.recv_bytes(256) != WELCOME:
        raise AuthenticationError("digest sent was rejected")


def install():
    connection.deliver_challenge = deliver_challenge
    connection.answer_challenge = answer_challenge
