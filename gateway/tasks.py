import random
from collections.abc import Sequence

from celery import shared_task
from django.conf import settings

from devices.choices import CommandKind
from gateway import services

# Commands per send task: statuses are recorded per batch, so a batch is what the UI sees move.
COMMAND_BATCH = 100


def device_commands_enqueue(command_ids: Sequence[int], *, kind: str) -> None:
    """Queue the sends once the caller's transaction commits: policy syncs in their lane
    (settings.SYNC_QUEUE), POLICY_SYNC_BATCH a task; everything people ask for in theirs
    (COMMANDS_QUEUE), COMMAND_BATCH a task."""
    if kind == CommandKind.POLICY_SYNC:
        queue, batch = settings.SYNC_QUEUE, settings.POLICY_SYNC_BATCH
    else:
        queue, batch = settings.COMMANDS_QUEUE, COMMAND_BATCH
    for start in range(0, len(command_ids), batch):
        device_commands_send.apply_async_on_commit(args=[list(command_ids[start : start + batch])], queue=queue)


def backoff(retries: int) -> float:
    """Exponential backoff with full jitter: 2, 4, 8 … s, capped at 5 minutes."""
    return random.uniform(0, min(300, 2 ** (retries + 1)))


@shared_task(bind=True, acks_late=True, max_retries=8, soft_time_limit=900, time_limit=960)
def device_commands_send(self, command_ids: list[int]) -> None:
    """Send a batch of DeviceCommands. Safe to run twice: commands are claimed before sending."""
    retry_ids = services.device_commands_send(command_ids=command_ids)
    if retry_ids:
        raise self.retry(args=[retry_ids], countdown=backoff(self.request.retries))


@shared_task(acks_late=True, soft_time_limit=120, time_limit=150)
def device_commands_resume() -> int:
    """Beat: enqueue again what a dead worker left behind or what was never picked up."""
    stuck = services.device_commands_resume()
    for kind, ids in stuck.items():
        device_commands_enqueue(ids, kind=kind)
    return sum(map(len, stuck.values()))
