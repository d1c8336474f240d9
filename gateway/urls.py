from django.urls import path, re_path

from gateway import views

app_name = "gateway"
urlpatterns = [
    # Anything under a key reaches the view, so every miss gets the same bare 404.
    re_path(r"^provision/(?P<key>[^/]*)/(?P<file_name>.*)$", views.provision, name="provision"),
    path("setup/provisioning-key/", views.provisioning_key_regenerate, name="provisioning_key_regenerate"),
]
