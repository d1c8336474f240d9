from rest_framework.views import APIView

from portal.api.permissions import request_membership
from portal.services import Actor


class TenantAPIView(APIView):
    """Base of every v1 view: `self.tenant` and `self.actor` come from the caller's membership."""

    @property
    def tenant(self):
        return request_membership(self.request).tenant

    @property
    def actor(self) -> Actor:
        return Actor.of_user(self.request.user, token=getattr(self.request, "auth", None))
