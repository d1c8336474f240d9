from rest_framework.exceptions import NotFound
from rest_framework.views import APIView

from portal.api.permissions import request_membership
from portal.selectors import tenant_object_exists
from portal.services import Actor


class TenantAPIView(APIView):
    """Base of every v1 view: `self.tenant` and `self.actor` come from the caller's membership."""

    # The model whose object the URL's `pk` names, on views that act on one object. A caller whose
    # role may not act gets 403 for their own tenant's object, but 404 for another tenant's or for
    # none: that is always a 404, never a 403 (DESIGN.md).
    tenant_model = None

    @property
    def tenant(self):
        return request_membership(self.request).tenant

    @property
    def actor(self) -> Actor:
        return Actor.of_user(self.request.user, token=getattr(self.request, "auth", None))

    def permission_denied(self, request, message=None, code=None):
        pk = self.kwargs.get("pk")
        if self.tenant_model is not None and pk is not None and request.user.is_authenticated:
            membership = request_membership(request)
            if membership and not tenant_object_exists(self.tenant_model, tenant=membership.tenant, pk=pk):
                raise NotFound()
        super().permission_denied(request, message=message, code=code)
