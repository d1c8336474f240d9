from celery import shared_task

from policies import services


@shared_task(acks_late=True, soft_time_limit=600, time_limit=660)
def policy_sync_hourly() -> int:
    """Beat (CELERY_BEAT_SCHEDULE["policy-sync"]): queue a policy sync for every registered, signed-in
    device behind its wanted version. Idempotent: a device with one pending gets no second one."""
    return services.policy_sync_fan_out()
