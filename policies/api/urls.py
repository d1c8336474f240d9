from django.urls import path

from policies.api import views

urlpatterns = [
    path("policies/", views.PolicyListView.as_view(), name="api-policy-list"),
    path("policies/<int:pk>/", views.PolicyDetailView.as_view(), name="api-policy-detail"),
    path("policies/<int:pk>/assignments/", views.PolicyAssignmentsView.as_view(), name="api-policy-assignments"),
]
