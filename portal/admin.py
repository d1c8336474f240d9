from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from portal.models import ApiToken, AuditEvent, Membership, Tenant, User


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["name", "region", "sip_gateway_enabled", "created_at"]
    list_filter = ["region", "sip_gateway_enabled"]
    search_fields = ["name"]
    readonly_fields = ["provisioning_key", "created_at"]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    fieldsets = [*DjangoUserAdmin.fieldsets, ("Portal", {"fields": ["phone_number"]})]
    list_display = ["username", "first_name", "last_name", "is_active", "is_staff", "last_login"]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "tenant", "role"]
    list_filter = ["role", "tenant"]
    search_fields = ["user__username", "tenant__name"]
    list_select_related = ["user", "tenant"]
    raw_id_fields = ["user"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Tokens are made by portal.services.api_token_create, the only place their key is shown."""

    list_display = ["name", "prefix", "user", "created_at", "last_used_at"]
    search_fields = ["name", "prefix", "user__username"]
    list_select_related = ["user"]
    readonly_fields = ["user", "key_hash", "prefix", "created_at", "last_used_at"]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit log is evidence: nobody edits or deletes it, not even here."""

    list_display = ["created_at", "tenant", "actor_label", "action", "object_repr"]
    list_filter = ["actor_type", "tenant"]
    search_fields = ["action", "actor_label", "object_repr"]
    list_select_related = ["tenant"]
    ordering = ["-created_at", "-id"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
