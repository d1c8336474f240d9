"""One filterset for the HTML inventory and the REST API, so they can never disagree."""

import django_filters
from django import forms
from django.db.models import Q
from django.utils import timezone

from devices.catalog import vendor_and_model, vendor_canonical
from devices.choices import DeviceState
from devices.models import Device
from policies.choices import SyncState
from policies.selectors import policy_sync_filter
from portal.expressions import EqualsAny
from portal.mac import mac_fragment
from portal.models import User


class _OnlineField(forms.ChoiceField):
    """`true`/`false` in any case, or `1`/`0` (what HTTP clients send for a boolean); anything else
    is an error: a lenient boolean that ignored `yes` or a typo would list every device."""

    def to_python(self, value):
        value = super().to_python(value).strip().lower()
        return {"1": "true", "0": "false"}.get(value, value)


class _OnlineFilter(django_filters.ChoiceFilter):
    field_class = _OnlineField


class DeviceFilterSet(django_filters.FilterSet):
    state = django_filters.ChoiceFilter(choices=DeviceState.choices)
    q = django_filters.CharFilter(method="filter_q", label="Search")
    vendor = django_filters.CharFilter(method="filter_vendor")
    model = django_filters.CharFilter(method="filter_model")
    location = django_filters.CharFilter(field_name="location", lookup_expr="icontains")
    online = _OnlineFilter(choices=[("true", "Online"), ("false", "Offline")], method="filter_online")
    policy_sync = django_filters.ChoiceFilter(choices=SyncState.choices, method="filter_policy_sync")

    class Meta:
        model = Device
        fields = ["state", "q", "vendor", "model", "location", "online", "policy_sync"]

    def filter_q(self, queryset, name, value):
        value = value.strip()
        if not value:
            return queryset
        # search_text is the fields, upper case, under one trigram index (devices migration 0010).
        match = Q(search_text__contains=value.upper())
        if len(value) >= 3:
            # Users first, then their devices through an index: with the trigram indexes
            # (devices 0006, 0010) a rare fragment is a BitmapOr, not a scan of the tenant.
            users = User.objects.filter(username__icontains=value).values("pk")
            match |= Q(EqualsAny("signed_in_user_id", users))
        else:
            # Too short for a trigram index, and so common that walking the list in order with a
            # join fills a page at once.
            match |= Q(signed_in_user__username__icontains=value)
        fragment = mac_fragment(value)
        if fragment:
            match |= Q(search_text__contains=fragment)
        return queryset.filter(match)

    def filter_vendor(self, queryset, name, value):
        return queryset.filter(model__vendor__iexact=vendor_canonical(value))

    def filter_model(self, queryset, name, value):
        """`T54W` (every vendor's model of that name), `Yealink T54W`, `Cisco MPP 8841`, or the catalog id."""
        value = " ".join(value.split())
        match = Q(model__model__iexact=value)
        if named := vendor_and_model(value):
            match |= Q(model__vendor__iexact=named[0], model__model__iexact=named[1])
        if value.isdigit():
            match |= Q(model_id=int(value))
        return queryset.filter(match)

    def filter_online(self, queryset, name, value):
        live = Q(registration_expires_at__gt=timezone.now())
        return queryset.filter(live if value == "true" else ~live | Q(registration_expires_at__isnull=True))

    def filter_policy_sync(self, queryset, name, value):
        return policy_sync_filter(queryset, value)
