from django.urls import path

from devices.api import views

urlpatterns = [
    path("devices/", views.DeviceListView.as_view(), name="api-device-list"),
    path("devices/<int:pk>/", views.DeviceDetailView.as_view(), name="api-device-detail"),
    path("devices/<int:pk>/restart/", views.DeviceCommandView.as_view(kind="restart"), name="api-device-restart"),
    path("devices/<int:pk>/resync/", views.DeviceCommandView.as_view(kind="resync"), name="api-device-resync"),
    path("devices/restart/", views.DevicesCommandView.as_view(kind="restart"), name="api-devices-restart"),
    path("devices/resync/", views.DevicesCommandView.as_view(kind="resync"), name="api-devices-resync"),
    path("commands/<int:pk>/", views.CommandDetailView.as_view(), name="api-command-detail"),
]
