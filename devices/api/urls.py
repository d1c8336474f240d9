from django.urls import path

from devices.api import imports, views

urlpatterns = [
    path("devices/", views.DeviceListView.as_view(), name="api-device-list"),
    path("devices/<int:pk>/", views.DeviceDetailView.as_view(), name="api-device-detail"),
    path("devices/import/", imports.DevicesImportView.as_view(), name="api-devices-import"),
    path("imports/", imports.ImportListView.as_view(), name="api-import-list"),
    path("imports/<int:pk>/", imports.ImportDetailView.as_view(), name="api-import-detail"),
    path("imports/<int:pk>/errors.csv", imports.ImportErrorsView.as_view(), name="api-import-errors"),
    path("devices/<int:pk>/restart/", views.DeviceCommandView.as_view(kind="restart"), name="api-device-restart"),
    path("devices/<int:pk>/resync/", views.DeviceCommandView.as_view(kind="resync"), name="api-device-resync"),
    path("devices/restart/", views.DevicesCommandView.as_view(kind="restart"), name="api-devices-restart"),
    path("devices/resync/", views.DevicesCommandView.as_view(kind="resync"), name="api-devices-resync"),
    path("commands/<int:pk>/", views.CommandDetailView.as_view(), name="api-command-detail"),
]
