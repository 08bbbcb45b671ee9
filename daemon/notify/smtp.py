"""Sending one composed mail over SMTP, and what the server's answer means for a retry.

A 4xx reply or a dropped connection is worth retrying; a 5xx reply (or a refused
recipient with one) is final. A refused login is retried too: an admin fixes the password
file without losing the mail.
"""

from __future__ import annotations

import contextlib
import email.policy
import smtplib
import ssl
from email.message import EmailMessage

from daemon.config import SecretError
from daemon.notify.base import DeliveryFailed, NotifierBase

# Headers are written unfolded up to RFC 5322's hard limit: the standard library's folding
# at 78 columns can drop the space between two encoded words ("10:30 —" becomes "10:30—").
_WIRE = email.policy.SMTP.clone(max_line_length=998)


class SmtpSender(NotifierBase):
    """Hands a message to ``[smtp]``; ``_tls`` (default: the system's CAs) verifies it."""

    def _send(self, message: EmailMessage, to: str) -> None:
        smtp = self.config.smtp
        assert smtp is not None  # noqa: S101 - compose() checked it
        timeout = smtp.timeout.total_seconds()
        where = f"{smtp.host}:{smtp.port}"
        try:
            password = smtp.password.reveal() if smtp.password else None
        except SecretError as error:
            raise DeliveryFailed(str(error)) from None
        context = self._tls or ssl.create_default_context()
        try:
            if smtp.security == "tls":
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    smtp.host, smtp.port, timeout=timeout, context=context
                )
            else:
                client = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout)
        except smtplib.SMTPConnectError as error:
            raise _smtp_failure(error, where) from None
        except (smtplib.SMTPException, OSError) as error:
            raise DeliveryFailed(f"cannot reach the mail server {where}: {error}") from None
        try:
            if smtp.security == "starttls":
                client.starttls(context=context)
            if smtp.username and password is not None:
                client.login(smtp.username, password)
            client.sendmail(smtp.from_address, [to], message.as_bytes(policy=_WIRE))
        except smtplib.SMTPRecipientsRefused as error:
            code, text = next(iter(error.recipients.values()), (0, b""))
            reply = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
            raise DeliveryFailed(
                f"the mail server {where} refused {to}: {code} {reply}",
                permanent=500 <= code < 600,
            ) from None
        except smtplib.SMTPAuthenticationError as error:
            # Worth retrying: an admin fixes the password file without losing the mail.
            raise DeliveryFailed(
                f"the mail server {where} refused the login {smtp.username!r} "
                f"({error.smtp_code}); check [smtp] username and password_file"
            ) from None
        except smtplib.SMTPResponseException as error:
            raise _smtp_failure(error, where) from None
        except (smtplib.SMTPException, OSError) as error:
            raise DeliveryFailed(f"mail to {to} via {where} failed: {error}") from None
        finally:
            # The message was accepted (or not) before QUIT; a failing QUIT changes nothing.
            with contextlib.suppress(smtplib.SMTPException, OSError):
                client.quit()
            client.close()


def _smtp_failure(error: smtplib.SMTPResponseException, where: str) -> DeliveryFailed:
    """4xx replies are temporary by definition (RFC 5321 §4.2.1); 5xx ones are final."""
    reply = error.smtp_error
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    return DeliveryFailed(
        f"the mail server {where} answered {error.smtp_code} {text}",
        permanent=500 <= error.smtp_code < 600,
    )
