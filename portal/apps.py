import os
from pathlib import Path

from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Portal"

    def ready(self) -> None:
        from django.conf import settings

        # The embedded defaults keep their state here; create it before anything needs it.
        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)
        transport_options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
        for key in ("data_folder_in", "processed_folder", "control_folder"):
            if key in transport_options:
                os.makedirs(transport_options[key], exist_ok=True)
