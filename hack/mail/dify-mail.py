"""Sends one mail the way Dify's api and worker do, from the environment the pod gets.

A REPRODUCTION, not Dify's code: Dify's api image is not available here (see
docs/development.md). It follows Dify's `extensions/ext_mail.py` (MAIL_TYPE=smtp: SMTP_SERVER,
SMTP_PORT, SMTP_USERNAME, SMTP_PASSWORD, SMTP_USE_TLS, SMTP_OPPORTUNISTIC_TLS,
MAIL_DEFAULT_SEND_FROM, and its refusal of opportunistic TLS without TLS) and
`libs/smtp.py` (SMTP_SSL for implicit TLS, EHLO/STARTTLS/EHLO for opportunistic TLS,
SMTP_LOCAL_HOSTNAME as the EHLO name, login only with a user and a password, sendmail from
MAIL_DEFAULT_SEND_FROM), with pydantic's parsing of booleans and integers.

Usage: dify-mail.py TO. Exit 0 when the server accepted the mail; 1 with the error otherwise.
"""

import os
import smtplib
import sys
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText


def boolean(name, default="false"):
    value = os.environ.get(name, default).strip().lower()
    if value in ("1", "true", "t", "yes", "y", "on"):
        return True
    if value in ("0", "false", "f", "no", "n", "off"):
        return False
    raise ValueError(f"{name}: not a boolean")


def main(to):
    if os.environ.get("MAIL_TYPE") != "smtp":
        raise ValueError("MAIL_TYPE is not smtp")
    server = os.environ.get("SMTP_SERVER", "")
    port = int(os.environ.get("SMTP_PORT", "465"))
    if not server or not port:
        raise ValueError("SMTP_SERVER and SMTP_PORT are required for smtp mail type")
    use_tls = boolean("SMTP_USE_TLS")
    opportunistic = boolean("SMTP_OPPORTUNISTIC_TLS")
    if not use_tls and opportunistic:
        raise ValueError("SMTP_OPPORTUNISTIC_TLS is not supported without enabling SMTP_USE_TLS")
    username = os.environ.get("SMTP_USERNAME") or ""
    password = os.environ.get("SMTP_PASSWORD") or ""
    sender = os.environ.get("MAIL_DEFAULT_SEND_FROM") or ""
    local = os.environ.get("SMTP_LOCAL_HOSTNAME") or None

    if use_tls and not opportunistic:
        smtp = smtplib.SMTP_SSL(server, port, timeout=10, local_hostname=local)
    else:
        smtp = smtplib.SMTP(server, port, timeout=10, local_hostname=local)
    try:
        if use_tls and opportunistic:
            smtp.ehlo(server)
            smtp.starttls()
            smtp.ehlo(server)
        if username and password and username.strip() and password.strip():
            smtp.login(username, password)
        msg = MIMEMultipart()
        msg["Subject"] = "Join Dify Workspace Now"
        msg["From"] = sender
        msg["To"] = to
        msg.attach(MIMEText("<p>You have been invited to a workspace.</p>", "html"))
        smtp.sendmail(sender, to, msg.as_string())
    finally:
        smtp.quit() if smtp.sock else None


if __name__ == "__main__":
    try:
        main(sys.argv[1])
    except Exception as e:  # noqa: BLE001 - the test reads the error
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
