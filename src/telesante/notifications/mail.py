"""E-mail notifications: sent through SMTP **after commit** only, and never carrying patient data — the message
says that something awaits on the platform, with a link, and nothing else (no name, no birth date, no content).

Without ``TELESANTE_SMTP_HOST`` nothing is sent (mails are logged at INFO without their body)."""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from sqlalchemy.ext.asyncio import AsyncSession

from telesante.config import Settings
from telesante.db import after_commit

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Mail:
    to: tuple[str, ...]
    subject: str
    body: str


def build_message(settings: Settings, mail: Mail) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = ", ".join(mail.to)
    message["Subject"] = mail.subject
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=settings.smtp_from.rpartition("@")[2] or "telesante.local")
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(mail.body)
    return message


def _send_now(settings: Settings, mail: Mail) -> None:
    assert settings.smtp_host is not None
    context = ssl.create_default_context()
    smtp_class = smtplib.SMTP_SSL if settings.smtp_security == "ssl" else smtplib.SMTP
    kwargs = {"context": context} if settings.smtp_security == "ssl" else {}
    with smtp_class(
        settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds, **kwargs
    ) as smtp:
        if settings.smtp_security == "starttls":
            smtp.starttls(context=context)
        if settings.smtp_user:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
            smtp.login(settings.smtp_user, password)
        smtp.send_message(build_message(settings, mail))


async def send(settings: Settings, mail: Mail) -> bool:
    """Send one mail (in a thread: smtplib blocks). A failure is logged, never raised: a lost notification must not
    undo a committed clinical act; the worklists remain the reference."""
    if not mail.to:
        return False
    if settings.smtp_host is None:
        log.info("mail (SMTP non configuré) à %s : %s", ", ".join(mail.to), mail.subject)
        return False
    try:
        await asyncio.to_thread(_send_now, settings, mail)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("échec d'envoi du mail « %s » à %s : %s", mail.subject, ", ".join(mail.to), exc)
        return False
    return True


def send_after_commit(session: AsyncSession, settings: Settings, mail: Mail) -> None:
    """Queue a mail for after the transaction commits (dropped if it rolls back)."""

    async def deliver() -> None:
        await send(settings, mail)

    after_commit(session, deliver)
