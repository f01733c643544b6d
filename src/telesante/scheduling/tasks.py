"""Timers of the scheduling domain (durable jobs, see ``telesante.jobs``)."""

from __future__ import annotations

from telesante.jobs.service import job_handler
from telesante.scheduling import service

# Before a teleconsultation (TELESANTE_APPOINTMENT_REMINDER_HOURS): e-mail and SMS reminders.
send_reminder = job_handler(service.REMINDER_JOB)(service.send_reminder)
