from celery import shared_task

from devices import services


# The hard limit is a backstop: the soft limit lets the job record why it stopped.
@shared_task(acks_late=True, soft_time_limit=1800, time_limit=1860)
def import_job_run(job_id: int) -> None:
    """Run a queued CSV import. Safe to deliver twice: the job is claimed before it runs."""
    services.import_job_run(job_id=job_id)


@shared_task(acks_late=True, soft_time_limit=600, time_limit=660)
def devices_offboard_unseen() -> int:
    """Daily (beat): phones unseen too long leave the inventory."""
    return services.devices_offboard_unseen()
