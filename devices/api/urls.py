from django.urls import path

from devices.api import views

urlpatterns = [
    path("devices/", views.DeviceListView.as_view(), name="api-device-list"),
    path("devices/<int:pk>/", views.DeviceDetailView.as_view(), name="api-device-detail"),
]
