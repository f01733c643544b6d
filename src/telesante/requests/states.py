"""The request state machine, in one place: which transitions exist, who may make them, and why others are
refused (in French, for the user)."""

from __future__ import annotations

import enum

from telesante.kit.errors import Conflict
from telesante.requests.models import STATUS_LABELS, RequestStatus

S = RequestStatus


class Side(enum.StrEnum):
    REQUESTER = "requester"
    EXPERT = "expert"
    SYSTEM = "system"  # timers (deadline)


# (from, to) -> who may do it
TRANSITIONS: dict[tuple[RequestStatus, RequestStatus], frozenset[Side]] = {
    (S.DRAFT, S.SENT): frozenset({Side.REQUESTER}),
    (S.DRAFT, S.CANCELLED): frozenset({Side.REQUESTER}),
    (S.SENT, S.ACCEPTED): frozenset({Side.EXPERT}),
    (S.SENT, S.DECLINED): frozenset({Side.EXPERT}),
    (S.SENT, S.CANCELLED): frozenset({Side.REQUESTER}),
    (S.SENT, S.EXPIRED): frozenset({Side.SYSTEM}),
    (S.EXPIRED, S.ACCEPTED): frozenset({Side.EXPERT}),  # a late answer is still better than none
    (S.EXPIRED, S.CANCELLED): frozenset({Side.REQUESTER}),
    (S.ACCEPTED, S.IN_PROGRESS): frozenset({Side.EXPERT}),
    (S.ACCEPTED, S.CANCELLED): frozenset({Side.REQUESTER}),
    (S.IN_PROGRESS, S.ANSWERED): frozenset({Side.EXPERT}),
    (S.IN_PROGRESS, S.CANCELLED): frozenset({Side.REQUESTER}),
    (S.ANSWERED, S.CLOSED): frozenset({Side.EXPERT, Side.REQUESTER}),
}

FINAL = frozenset({S.DECLINED, S.CLOSED, S.CANCELLED})
# A request nobody accepted before its deadline expires (and is escalated); one accepted but not answered in time
# stays with its expert and is flagged overdue in the worklists.
AWAITING_ANSWER = frozenset({S.SENT, S.ACCEPTED, S.IN_PROGRESS})


def allowed(current: RequestStatus, target: RequestStatus, side: Side) -> bool:
    return side in TRANSITIONS.get((current, target), frozenset())


def check_transition(current: RequestStatus, target: RequestStatus, side: Side) -> None:
    """Raise Conflict (409) with the reason when ``side`` may not move a request from ``current`` to ``target``."""
    if allowed(current, target, side):
        return
    here, there = STATUS_LABELS[current].lower(), STATUS_LABELS[target].lower()
    if current in FINAL:
        raise Conflict(f"La demande est {here} : elle ne peut plus changer d'état.", field="status")
    sides = TRANSITIONS.get((current, target))
    if sides:
        who = " ou ".join(
            {"requester": "le requérant", "expert": "l'expert", "system": "le système"}[s]
            for s in sorted(sides)
        )
        raise Conflict(
            f"Seul {who} peut faire passer une demande {here} à l'état « {there} ».", field="status"
        )
    raise Conflict(f"Une demande {here} ne peut pas passer à l'état « {there} ».", field="status")


def next_states(current: RequestStatus, side: Side) -> list[RequestStatus]:
    return [to for (frm, to), sides in TRANSITIONS.items() if frm == current and side in sides]
