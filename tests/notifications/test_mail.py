"""E-mail notifications against a real SMTP server (aiosmtpd): sent after commit only, never on rollback, and a
failing server never breaks the act."""

from __future__ import annotations

import socket
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller

from telesante.config import Settings
from telesante.db import make_sessionmaker, run_in_transaction
from telesante.notifications.mail import Mail, send, send_after_commit


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's handler protocol
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


def mail_settings(tmp_path, port: int) -> Settings:
    return Settings(
        data_dir=tmp_path,
        secret_key="test",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security="none",
        smtp_from="Télésanté <no-reply@demo.telesante.fr>",
    )


async def test_a_mail_reaches_the_smtp_server(smtp, tmp_path):
    inbox, port = smtp
    sent = await send(
        mail_settings(tmp_path, port), Mail(("dr.expert@chu.fr",), "Nouvelle demande", "Ouvrir : https://x")
    )
    assert sent is True
    [(recipients, message)] = inbox.messages
    assert recipients == ["dr.expert@chu.fr"]
    assert message["Subject"] == "Nouvelle demande" and message["Auto-Submitted"] == "auto-generated"
    assert "Ouvrir : https://x" in message.get_content()


async def test_an_unreachable_server_is_logged_not_raised(tmp_path, caplog):
    settings = mail_settings(tmp_path, _free_port())  # nothing listens there
    assert await send(settings, Mail(("a@b.fr",), "Sujet", "Corps")) is False
    assert "échec d'envoi" in caplog.text


async def test_without_smtp_nothing_is_sent(tmp_path):
    assert (
        await send(Settings(data_dir=tmp_path, secret_key="t"), Mail(("a@b.fr",), "Sujet", "Corps")) is False
    )


async def test_mails_leave_after_commit_and_never_after_a_rollback(smtp, tmp_path, engine):
    inbox, port = smtp
    settings = mail_settings(tmp_path, port)
    sessionmaker = make_sessionmaker(engine)
    with pytest.raises(RuntimeError):
        async for session in run_in_transaction(sessionmaker):
            send_after_commit(session, settings, Mail(("a@b.fr",), "Annulé", "x"))
            raise RuntimeError("the act failed")
    assert inbox.messages == []
    async for session in run_in_transaction(sessionmaker):
        send_after_commit(session, settings, Mail(("a@b.fr",), "Validé", "x"))
        assert inbox.messages == []  # not before the commit
    assert [m["Subject"] for _, m in inbox.messages] == ["Validé"]
