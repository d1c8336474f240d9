from portal.api.permissions import request_membership


def tenant(request) -> dict:
    membership = request_membership(request) if hasattr(request, "user") else None
    return {
        "membership": membership,
        "tenant": membership.tenant if membership else None,
        "role": membership.role if membership else None,
    }
