from django.urls import path

from enrollment import views

app_name = "enrollment"
urlpatterns = [
    path("lookup/", views.lookup, name="lookup"),
    path("devices/codes/generate/", views.codes_generate, name="generate"),
    path("devices/codes/export.csv", views.codes_export, name="export"),
    path("devices/<int:pk>/code/", views.code_generate, name="device_generate"),
]
