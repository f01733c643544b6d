"""Timers of the on-call domain (durable jobs, see ``telesante.jobs``)."""

from __future__ import annotations

from telesante.jobs.service import job_handler
from telesante.oncall import service

# Not acknowledged in time: page the next in line (primary -> backup -> head of service).
escalate_page = job_handler(service.ESCALATE_JOB)(service.escalate_page)
