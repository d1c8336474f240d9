from datetime import datetime

from django import template
from django.utils import timezone

from enrollment.selectors import pairing_request_pending

register = template.Library()


@register.filter
def time_left(expires_at: datetime | None, precise: str = "") -> str:
    """`23 h` (or `23 h 12 min` with any argument), `12 min`, `<1 min`, or `expired`."""
    if not expires_at:
        return ""
    minutes = int((expires_at - timezone.now()).total_seconds() // 60)
    if minutes < 0:
        return "expired"
    if minutes < 1:
        return "<1 min"
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {minutes} min" if precise and minutes else f"{hours} h"


@register.simple_tag
def pairing_pending(tenant, device):
    """`{% pairing_pending tenant device as pending %}`: the device's live pairing request, or None."""
    return pairing_request_pending(tenant=tenant, device=device)
