"""Timers of the requests domain (durable jobs, see ``telesante.jobs``)."""

from __future__ import annotations

from telesante.jobs.service import job_handler
from telesante.requests import service

# At the response deadline: expire (and escalate) a request nobody accepted; flag an accepted one overdue.
expire_if_unanswered = job_handler(service.DEADLINE_JOB)(service.expire_if_unanswered)
