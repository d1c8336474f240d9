from django.urls import path

from devices import import_views, views

app_name = "devices"
urlpatterns = [
    path("", views.device_list, name="list"),
    path("new/", views.device_create, name="create"),
    path("upload/", import_views.import_upload, name="import"),
    path("upload/Template_Provisioning.csv", import_views.import_template, name="import_template"),
    path("imports/", import_views.import_list, name="imports"),
    path("imports/<int:pk>/", import_views.import_detail, name="import_detail"),
    path("imports/<int:pk>/errors.csv", import_views.import_errors, name="import_errors"),
    path("export.csv", views.device_export, name="export"),
    path("bulk-delete/", views.device_bulk_delete, name="bulk_delete"),
    path("<int:pk>/", views.device_detail, name="detail"),
    path("<int:pk>/edit/", views.device_edit, name="edit"),
    path("<int:pk>/delete/", views.device_delete, name="delete"),
    path("<int:pk>/restart/", views.device_command, {"kind": "restart"}, name="restart"),
    path("<int:pk>/resync/", views.device_command, {"kind": "resync"}, name="resync"),
    path("commands/", views.device_bulk_command, name="bulk_command"),
    path("commands/<int:pk>/status/", views.command_status, name="command_status"),
]
