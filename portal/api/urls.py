from django.urls import include, path

urlpatterns = [
    path("", include("devices.api.urls")),
    path("", include("enrollment.api.urls")),
    path("", include("policies.api.urls")),
]
