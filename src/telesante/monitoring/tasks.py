"""Timers of remote monitoring (durable jobs, see ``telesante.jobs``)."""

from __future__ import annotations

from telesante.jobs.service import job_handler
from telesante.monitoring import service

# Every hour, per team: the rules on every active enrolment (missing data appears without any reading arriving).
evaluate_team = job_handler(service.EVALUATE_JOB)(service.scheduled_evaluation)
