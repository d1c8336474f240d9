from django.urls import path

from policies import views

app_name = "policies"
urlpatterns = [
    path("", views.policy_index, name="list"),
    path("new/<str:kind>/", views.policy_create, name="create"),
    path("assign-devices/", views.devices_assign, name="assign_devices"),
    path("<int:pk>/", views.policy_detail, name="detail"),
    path("<int:pk>/edit/", views.policy_edit, name="edit"),
    path("<int:pk>/delete/", views.policy_delete, name="delete"),
    path("<int:pk>/default/", views.policy_make_default, name="make_default"),
    path("<int:pk>/assign/", views.policy_assign, name="assign"),
    path("<int:pk>/unassign/", views.policy_unassign, name="unassign"),
]
