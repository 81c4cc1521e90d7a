"""A minimal SMTP server on a real socket: just enough of RFC 5321 for smtplib."""

from __future__ import annotations

import base64
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    data: bytes

    @property
    def message(self):  # type: ignore[no-untyped-def]
        return message_from_bytes(self.data)


@dataclass
class SmtpState:
    mails: list[Mail] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    #: Extensions advertised in the EHLO answer.
    extensions: tuple[str, ...] = ("AUTH PLAIN",)


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) for smtplib: EHLO/HELO, AUTH PLAIN, MAIL, RCPT, DATA, RSET, QUIT."""

    server: _SmtpServer

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        state = self.server.state
        self.reply("220 localhost test SMTP")
        sender, recipients = "", []
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            line = raw.decode().rstrip("\r\n")
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                self.reply("250-localhost")
                for ext in state.extensions:
                    self.reply(f"250-{ext}")
                self.reply("250 8BITMIME")
            elif verb == "HELO":
                self.reply("250 localhost")
            elif verb == "AUTH" and arg.upper().startswith("PLAIN "):
                _, user, password = base64.b64decode(arg.split(" ", 1)[1]).decode().split("\0")
                state.logins.append((user, password))
                self.reply("235 2.7.0 Authentication successful")
            elif verb == "MAIL":
                sender, recipients = arg.split(":", 1)[1].split()[0].strip("<>"), []
                self.reply("250 OK")
            elif verb == "RCPT":
                recipients.append(arg.split(":", 1)[1].strip().strip("<>"))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                lines = []
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    lines.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                state.mails.append(Mail(sender, recipients, b"".join(lines)))
                self.reply("250 OK queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 Bye")
                return
            else:
                self.reply("502 Command not implemented")


class _SmtpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SmtpHandler)
        self.state = SmtpState()


@contextmanager
def running_smtp() -> Iterator[tuple[SmtpState, int]]:
    """A server on 127.0.0.1 (an ephemeral port): yields its state and its port."""
    server = _SmtpServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.state, server.server_address[1]
    server.shutdown()
    server.server_close()
