from django.urls import path
from django.views.generic import RedirectView

from enrollment import views

app_name = "enrollment"
urlpatterns = [
    path("lookup/", views.lookup, name="lookup"),
    path("devices/codes/generate/", views.codes_generate, name="generate"),
    path("devices/codes/export.csv", views.codes_export, name="export"),
    path("devices/<int:pk>/code/", views.code_generate, name="device_generate"),
    path("pair/", views.pair, name="pair"),
    # Typed off a phone's screen, the URL often comes without its slash; the code query stays.
    path("pair", RedirectView.as_view(pattern_name="enrollment:pair", query_string=True)),
    path("pair/done/<int:pk>/", views.paired, name="paired"),
    path("devices/<int:pk>/sign-in/", views.device_sign_in, name="device_sign_in"),
    path("devices/<int:pk>/sign-out/", views.device_sign_out, name="device_sign_out"),
]
