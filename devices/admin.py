from django.contrib import admin

from devices.models import Device, DeviceModel


@admin.register(DeviceModel)
class DeviceModelAdmin(admin.ModelAdmin):
    list_display = ["vendor", "model", "min_firmware", "resync_event", "reboot_event", "config_format"]
    list_filter = ["vendor", "config_format"]
    search_fields = ["vendor", "model"]


@admin.register(Device)
class DeviceAdmin(admin.ModelAdmin):
    """For operators to look, not to write: device writes go through devices.services, which audit
    them and notify the phone."""

    list_display = ["mac", "display_name", "tenant", "model", "state", "location", "last_seen_at", "created_at"]
    list_filter = ["state", "tenant"]
    search_fields = ["mac", "display_name", "location"]
    list_select_related = ["tenant", "model"]
    ordering = ["-created_at", "-id"]
    raw_id_fields = ["signed_in_user"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
