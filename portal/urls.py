from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.renderers import (
    OpenApiJsonRenderer,
    OpenApiJsonRenderer2,
    OpenApiYamlRenderer,
    OpenApiYamlRenderer2,
)
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from portal import views

_SCHEMA_RENDERERS = [OpenApiJsonRenderer, OpenApiJsonRenderer2, OpenApiYamlRenderer, OpenApiYamlRenderer2]

urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("audit/", views.audit_log, name="audit_log"),
    path("setup/", views.setup, name="setup"),
    path("setup/gateway/", views.gateway_toggle, name="gateway_toggle"),
    path("devices/", include("devices.urls")),
    path("policies/", include("policies.urls")),
    path("", include("enrollment.urls")),
    path("", include("gateway.urls")),
    path("api/v1/", include("portal.api.urls")),
    # JSON unless asked for YAML (`?format=yaml`): what scripts feed to their OpenAPI tools.
    path("api/schema/", SpectacularAPIView.as_view(renderer_classes=_SCHEMA_RENDERERS), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api_docs"),
    path("admin/", admin.site.urls),
]
