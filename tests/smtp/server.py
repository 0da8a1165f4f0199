"""The mail server of the second-factor tests: aiosmtpd on loopback.

STARTTLS is offered and required when SMTP_CERT and SMTP_KEY name a certificate; AUTH PLAIN and
LOGIN (only after STARTTLS) when SMTP_USER and SMTP_PASSWORD are set. Every accepted message is
written whole to SMTP_DIR/<n>.eml, its envelope first (X-Envelope-From, X-Envelope-To). Prints one
JSON line {"ready": true} once it listens on 127.0.0.1:SMTP_PORT.
"""

import json
import os
import ssl
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

PORT = int(os.environ["SMTP_PORT"])
OUT = os.environ["SMTP_DIR"]
CERT = os.environ.get("SMTP_CERT")
KEY = os.environ.get("SMTP_KEY")
USER = os.environ.get("SMTP_USER")
PASSWORD = os.environ.get("SMTP_PASSWORD")


class Handler:
    def __init__(self):
        self.count = 0

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        path = os.path.join(OUT, "%04d.eml" % self.count)
        head = "X-Envelope-From: %s\r\nX-Envelope-To: %s\r\n" % (
            envelope.mail_from,
            ",".join(envelope.rcpt_tos),
        )
        with open(path + ".part", "wb") as f:
            f.write(head.encode())
            f.write(envelope.original_content)
        os.rename(path + ".part", path)
        return "250 OK"


def authenticate(server, session, envelope, mechanism, auth_data):
    accepted = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == USER
        and auth_data.password.decode() == PASSWORD
    )
    return AuthResult(success=accepted, handled=True)


options = {}
if CERT:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(CERT, KEY)
    options.update(tls_context=context, require_starttls=True)
if USER:
    options.update(authenticator=authenticate, auth_require_tls=bool(CERT))

controller = Controller(
    Handler(), hostname="127.0.0.1", port=PORT, server_hostname="mail.example.com", **options
)
controller.start()
print(json.dumps({"ready": True}), flush=True)
threading.Event().wait()
