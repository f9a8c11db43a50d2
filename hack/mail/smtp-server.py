"""A real SMTP server on loopback for tests/mail.rs: aiosmtpd (Debian's python3-aiosmtpd).

Usage: smtp-server.py MODE CERT KEY USER OUT, with the password in $SMTP_TEST_PASSWORD.
MODE is `implicit` (TLS from the first byte, SMTPS) or `starttls` (STARTTLS required before
AUTH). AUTH needs USER and the password; each message received is appended to OUT as one JSON
line (sender, recipients, the EHLO name, whether TLS was on, the login, the message). Prints
the port it listens on, then serves until killed.
"""

import asyncio
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

mode, cert, key, user, out = sys.argv[1:6]
password = os.environ["SMTP_TEST_PASSWORD"]

context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(cert, key)


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login.decode() == user
        and auth_data.password.decode() == password
    )
    if ok:
        session.test_login = auth_data.login.decode()
    return AuthResult(success=ok, handled=False)


class Handler:
    async def handle_DATA(self, server, session, envelope):
        login = getattr(session, "test_login", None)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "ehlo": session.host_name,
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "login": login,
            "authenticated": session.authenticated,
            "message": envelope.content.decode("utf-8", "replace"),
        }
        with open(out, "a") as f:
            f.write(json.dumps(record) + "\n")
        return "250 Message accepted for delivery"


def factory():
    return SMTP(
        Handler(),
        hostname="smtp.test.invalid",
        tls_context=None if mode == "implicit" else context,
        require_starttls=mode == "starttls",
        authenticator=authenticator,
        # Over implicit TLS aiosmtpd does not know the connection is encrypted (it only tracks
        # STARTTLS), so it would hide AUTH; the whole connection is TLS there.
        auth_require_tls=mode == "starttls",
        auth_required=True,
    )


async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        factory, "127.0.0.1", 0, ssl=context if mode == "implicit" else None
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


asyncio.run(main())
