"""Text messages (appointment reminders) through a gateway interface.

Regions contract with different SMS operators (each with its own HTTP API and its own agreement for health
messages), so the platform speaks to a ``SmsGateway`` and ships one implementation: ``LoggingSmsGateway``
(``TELESANTE_SMS_BACKEND=log``), which writes each message to the log with the number masked and keeps the last
ones in memory (tests, demonstration). An operator's gateway is a class with the same ``send`` method, chosen by that
setting. Messages carry no health data: a date, a time, a place, a link."""

from __future__ import annotations

import logging
import re
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from telesante.config import Settings
from telesante.db import after_commit

log = logging.getLogger(__name__)
MAX_SMS_CHARACTERS = 320  # two concatenated GSM messages


@dataclass(frozen=True)
class Sms:
    to: str
    text: str


class SmsGateway(Protocol):
    async def send(self, sms: Sms) -> bool: ...


def normalise_number(value: str) -> str | None:
    """A French number in E.164 (+33…), or None: 06 39 98 12 34 → +33639981234; +33 6… kept; other countries kept
    as written in + form."""
    digits = re.sub(r"[\s.()-]", "", value or "")
    if re.fullmatch(r"0[1-9][0-9]{8}", digits):
        return "+33" + digits[1:]
    if re.fullmatch(r"\+[1-9][0-9]{6,14}", digits):
        return digits
    return None


def masked(number: str) -> str:
    return number[:4] + "•" * max(0, len(number) - 6) + number[-2:]


class LoggingSmsGateway:
    """Writes each message to the log (number masked) and keeps the last 200 in ``sent``."""

    def __init__(self) -> None:
        self.sent: deque[Sms] = deque(maxlen=200)

    async def send(self, sms: Sms) -> bool:
        self.sent.append(sms)
        log.info("SMS (journal seulement) à %s : %s", masked(sms.to), sms.text)
        return True


_gateways: dict[str, SmsGateway] = {}


def sms_gateway(settings: Settings) -> SmsGateway:
    backend = settings.sms_backend
    if backend not in _gateways:
        _gateways[backend] = LoggingSmsGateway()
    return _gateways[backend]


def send_sms_after_commit(session: AsyncSession, settings: Settings, to: str, text: str) -> bool:
    """Queue a text message for after the commit; False (nothing queued) when the number is not a mobile-capable
    number in a known form. A failure to send is logged, never raised."""
    number = normalise_number(to)
    if number is None:
        return False
    sms = Sms(number, text[:MAX_SMS_CHARACTERS])
    gateway = sms_gateway(settings)

    async def deliver() -> None:
        try:
            await gateway.send(sms)
        except Exception:  # noqa: BLE001 - a lost reminder must not break anything
            log.exception("échec d'envoi du SMS à %s", masked(number))

    after_commit(session, deliver)
    return True
