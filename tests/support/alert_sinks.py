"""Real local servers that alerts are delivered to in the tests: an HTTP webhook receiver
(http.server in a thread) and an SMTP server (aiosmtpd), both on loopback ports."""
from __future__ import annotations

import json
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Webhook:
    url: str
    requests: list[dict] = field(default_factory=list)  # {"path", "headers", "json"} per POST
    status: int = 200  # what the receiver answers; set to 500 to make deliveries fail

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.requests


@contextmanager
def webhook_server(path: str = "/hooks/T000/secret-token"):
    """A webhook receiver; its URL carries a token in the path like Slack's, which must not be logged."""
    sink = Webhook(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            sink.requests.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(body)})
            self.send_response(sink.status)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    sink.url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Mailbox:
    host: str
    port: int
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)  # (MAIL FROM, RCPT TO)
    logins: list[str] = field(default_factory=list)  # users that authenticated

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.messages


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def smtp_server(credentials: dict[str, str] | None = None):
    """An SMTP server keeping what it receives. With `credentials` (user -> password) it offers AUTH
    over plain text (no TLS here) and refuses mail from clients that did not log in."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    box = Mailbox(host="127.0.0.1", port=free_port())

    class Handler:
        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's naming
            if credentials is not None and not session.authenticated:
                return "530 5.7.0 Authentication required"
            box.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            box.messages.append(message_from_bytes(envelope.content, policy=policy.default))
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, auth_data):
        user = auth_data.login.decode()
        ok = credentials is not None and credentials.get(user) == auth_data.password.decode()
        if ok:
            box.logins.append(user)
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself

    kwargs = {"authenticator": authenticator, "auth_require_tls": False} if credentials is not None else {}
    controller = Controller(Handler(), hostname=box.host, port=box.port, **kwargs)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()
