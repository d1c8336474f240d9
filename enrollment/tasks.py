from celery import shared_task

from enrollment import services


@shared_task(acks_late=True, soft_time_limit=120, time_limit=150)
def verification_codes_sweep() -> int:
    """Beat: wipe expired verification codes. Idempotent: a second run finds nothing to wipe."""
    return services.verification_codes_sweep()


@shared_task(acks_late=True, soft_time_limit=120, time_limit=150)
def pairing_requests_sweep() -> int:
    """Beat: mark expired pairing requests expired. Idempotent."""
    return services.pairing_requests_sweep()
