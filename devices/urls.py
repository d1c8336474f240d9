from django.urls import path

from devices import views

app_name = "devices"
urlpatterns = [
    path("", views.device_list, name="list"),
    path("new/", views.device_create, name="create"),
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
