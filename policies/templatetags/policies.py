from django import template

from policies.selectors import device_effective_policies, device_policy_sync, policy_sync_summary

register = template.Library()


@register.inclusion_tag("policies/_device_policies.html")
def device_policies(device):
    """The device page's section: each effective setting and where it comes from."""
    return {
        "effective": device_effective_policies(device=device).values(),
        "sync": device_policy_sync(device=device),
        "device": device,
    }


@register.inclusion_tag("policies/_sync_cell.html")
def policy_sync_cell(device):
    """The inventory's Policy sync cell; the list view loads `device.policy_sync` for the page."""
    return {"sync": getattr(device, "policy_sync", None) or device_policy_sync(device=device)}


@register.inclusion_tag("policies/_sync_chart.html")
def policy_sync_chart(tenant):
    return {"summary": policy_sync_summary(tenant=tenant)}
