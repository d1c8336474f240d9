from django.urls import path

from enrollment.api import views

urlpatterns = [
    path(
        "devices/<int:pk>/verification-code/",
        views.DeviceVerificationCodeView.as_view(),
        name="api-device-verification-code",
    ),
    path("devices/verification-codes/", views.VerificationCodesView.as_view(), name="api-devices-verification-codes"),
    path("devices/<int:pk>/sign-in/", views.DeviceSignInView.as_view(), name="api-device-sign-in"),
    path("devices/<int:pk>/sign-out/", views.DeviceSignOutView.as_view(), name="api-device-sign-out"),
]
