"""The provisioning server: which file a phone asks for, the config it gets, what its fetch records,
and the misses that get an address rate limited. Also the Setup page's facts and the key's renewal.

Phones fetch `/provision/<provisioning_key>/<file>` without any other credential, so every answer
that is not a config is the same empty 404, and no served file carries a secret."""

import math
import re
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db.models import F, Value
from django.db.models.functions import Greatest
from django.template import Context, Engine
from django.utils import timezone

from devices.catalog import AgentFacts
from devices.choices import ConfigFormat, DeviceState
from devices.models import Device, DeviceModel
from gateway.useragent import PhoneAgent, parse_user_agent
from policies.provisioning import device_config_settings as policy_config_settings
from portal.mac import normalize_mac
from portal.models import Tenant, new_provisioning_key
from portal.services import Actor, audit_record

XML = "application/xml; charset=utf-8"
TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class Format:
    content_type: str
    # key = value files: not escaped, so every value is kept to one line instead.
    text: bool
    # How the vendor spells udp / tcp / tls.
    transports: dict[str, str]


FORMATS = {
    ConfigFormat.YEALINK: Format(TEXT, True, {"udp": "0", "tcp": "1", "tls": "2"}),
    ConfigFormat.POLY: Format(XML, False, {"udp": "UDPOnly", "tcp": "TCPOnly", "tls": "TLS"}),
    ConfigFormat.CISCO: Format(XML, False, {"udp": "UDP", "tcp": "TCP", "tls": "TLS"}),
    ConfigFormat.AUDIOCODES: Format(TEXT, True, {"udp": "UDP", "tcp": "TCP", "tls": "TLS"}),
    ConfigFormat.SNOM: Format(XML, False, {"udp": "udp", "tcp": "tcp", "tls": "tls"}),
    ConfigFormat.GIGASET: Format(XML, False, {"udp": "UDP", "tcp": "TCP", "tls": "TLS"}),
}


@dataclass(frozen=True)
class File:
    template: str
    # The device's own settings, stamped with its version: serving it makes that version synced.
    # Master and common files only point the phone onwards.
    carries_config: bool = True


# Poly reads `<mac>.cfg` as the phone's *master* file (APPLICATION, CONFIG_FILES), never as
# settings: its settings live in the file the master names.
POLY_CONFIG_SUFFIX = "-sipgateway.cfg"

# The names a MAC-named request may take, by suffix: config format -> file.
_MAC_FILES = {
    ".cfg": {
        ConfigFormat.YEALINK: File("provisioning/yealink.cfg"),
        ConfigFormat.AUDIOCODES: File("provisioning/audiocodes.cfg"),
        ConfigFormat.POLY: File("provisioning/poly_master.xml", carries_config=False),
    },
    POLY_CONFIG_SUFFIX: {ConfigFormat.POLY: File("provisioning/poly.xml")},
    ".xml": {
        ConfigFormat.CISCO: File("provisioning/cisco.xml"),
        ConfigFormat.SNOM: File("provisioning/snom.xml"),
        ConfigFormat.GIGASET: File("provisioning/gigaset.xml"),
    },
}
_MAC_NAME = re.compile(rf"^(?P<mac>[0-9A-Fa-f]{{12}})(?P<suffix>\.cfg|{re.escape(POLY_CONFIG_SUFFIX)}|\.xml)$")
# The format served to a phone of no known model whose User-Agent names no catalog vendor.
UNNAMED_PHONE_FORMAT = ConfigFormat.YEALINK
# Tenant-wide files every phone of a vendor asks for; served without a device.
_COMMON_FILES = {
    "000000000000.cfg": (ConfigFormat.POLY, File("provisioning/poly_master.xml", carries_config=False)),
}
# Yealink's common file: y000000000000.cfg, or the model-specific one, y + 12 digits ending in the
# hardware id (y000000000028.cfg for a T46S, y000000000108.cfg for a T46U).
_YEALINK_COMMON = re.compile(r"^y0{9}[0-9]{3}\.cfg$")
YEALINK_COMMON_FILE = File("provisioning/yealink_common.cfg", carries_config=False)
# Cisco MPP's profile rule `$PSN.xml` (CP-8841-3PCC.xml...): the MAC comes in `?mac=` or the User-Agent.
_CISCO_PROFILE = re.compile(r"^[\w$.\-]{1,64}\.xml$")


@dataclass(frozen=True)
class FileRequest:
    mac: str  # canonical XX-XX-XX-XX-XX-XX, or "" for a common file fetched by an unnamed phone
    files: dict[str, File]
    common: bool = False


def _canonical(value: str) -> str:
    try:
        return normalize_mac(value)
    except ValueError:
        return ""


def file_request(file_name: str, *, mac_param: str, agent: PhoneAgent) -> FileRequest | None:
    """What `file_name` asks for, or None for a name no vendor uses."""
    if file_name in _COMMON_FILES:
        config_format, file = _COMMON_FILES[file_name]
        return FileRequest(mac=_canonical(agent.mac), files={config_format: file}, common=True)
    if _YEALINK_COMMON.match(file_name):
        return FileRequest(mac=_canonical(agent.mac), files={ConfigFormat.YEALINK: YEALINK_COMMON_FILE}, common=True)
    match = _MAC_NAME.match(file_name)
    if match:
        return FileRequest(mac=_canonical(match["mac"]), files=_MAC_FILES[match["suffix"]])
    if _CISCO_PROFILE.match(file_name):
        mac = _canonical(mac_param or agent.mac)
        if mac:
            return FileRequest(mac=mac, files={ConfigFormat.CISCO: _MAC_FILES[".xml"][ConfigFormat.CISCO]})
    return None


# --- Rate limiting misses, per source address, in the shared cache (never in process memory) -----


def _miss_keys(source: str) -> tuple[str, str]:
    return f"provisioning:misses:{source}", f"provisioning:misses-until:{source}"


def provisioning_retry_after(*, source: str) -> int:
    """Seconds before `source` may fetch again; 0 when it has missed less than the limit."""
    count_key, until_key = _miss_keys(source)
    values = cache.get_many([count_key, until_key])
    if values.get(count_key, 0) < settings.PROVISIONING_MISS_LIMIT:
        return 0
    until = values.get(until_key)
    return max(1, math.ceil(until - time.time())) if until else 1


def _miss_record(source: str) -> None:
    window = settings.PROVISIONING_MISS_WINDOW_SECONDS
    count_key, until_key = _miss_keys(source)
    cache.add(until_key, time.time() + window, timeout=window)
    if cache.add(count_key, 1, timeout=window):
        return
    try:
        cache.incr(count_key)
    except ValueError:  # the window ended between add and incr
        cache.add(count_key, 1, timeout=window)


# --- The config ------------------------------------------------------------------------------


def device_config_settings(*, device: Device, config_format: str) -> dict[str, str]:
    """The device's effective policy settings, as `config_format`'s own keys and values.

    The policies app translates its vendor-neutral effective settings (language, call
    forwarding...) into this vendor's keys; every template renders the mapping (keys checked,
    values kept to one line or escaped). Called *after* the device row is read, so what is served
    is never older than the version stamped on it."""
    return policy_config_settings(device=device, config_format=config_format)


# Control characters (line breaks above all) would start a new `key = value` line or break the XML.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
_TEXT_KEY = re.compile(r"^[A-Za-z0-9_.\-/\[\]]{1,128}$")
_XML_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,127}$")


def _clean(value) -> str:
    return _UNSAFE.sub(" ", str(value)).strip()


def _clean_settings(values: dict, *, text: bool) -> dict[str, str]:
    key_pattern = _TEXT_KEY if text else _XML_KEY
    bad = [key for key in values if not key_pattern.match(str(key))]
    if bad:
        raise ValueError(f"not a config key: {bad!r}")
    return {str(key): _clean(value) for key, value in values.items()}


def _edge_context(config_format: str) -> dict:
    return {
        "edge_host": _clean(settings.SIP_EDGE_HOST),
        "edge_port": int(settings.SIP_EDGE_PORT),
        "transport": FORMATS[config_format].transports[settings.SIP_EDGE_TRANSPORT],
        "transport_name": settings.SIP_EDGE_TRANSPORT,
        "sign_in_code": settings.FEATURE_CODE_SIGN_IN,
        "sign_out_code": settings.FEATURE_CODE_SIGN_OUT,
        "poly_config_file": f"[PHONE_MAC_ADDRESS]{POLY_CONFIG_SUFFIX}",
    }


def config_context(*, device: Device, config_format: str) -> dict:
    """Everything a device's config shows. Only what a phone needs and its user sees: no password,
    key or token, since the file is served to whoever knows the URL."""
    version = device.wanted_version  # read with the device row, before the settings it stamps
    signed_in = device.state == DeviceState.SIGNED_IN and device.signed_in_user_id is not None
    user_name = _clean(device.signed_in_user.display_name) if signed_in else ""
    return {
        **_edge_context(config_format),
        "mac": device.mac,
        "sip_user": device.sip_user,
        "state": device.state,
        "signed_in": signed_in,
        "user_name": user_name,
        "phone_number": _clean(device.phone_number) if signed_in else "",
        # The line's label on the screen: the user once signed in, else the name the admin gave it.
        "label": user_name or _clean(device.display_name) or "SIP Gateway",
        # Sign-in once enrolled, Sign-out once signed in; before enrollment the phone dials *55*.
        "show_sign_in": device.state == DeviceState.WAITING_FOR_SIGN_IN,
        "show_sign_out": signed_in,
        "version": version,
        "poly_config_file": f"{device.sip_user}{POLY_CONFIG_SUFFIX}",
        "settings": _clean_settings(
            device_config_settings(device=device, config_format=config_format), text=FORMATS[config_format].text
        ),
    }


def config_render(*, file: File, config_format: str, context: dict) -> str:
    # XML is escaped by the template engine; key = value text is not (values are one line already).
    template = Engine.get_default().get_template(file.template)
    return template.render(Context(context, autoescape=not FORMATS[config_format].text))


# --- Serving a fetch -------------------------------------------------------------------------


@dataclass(frozen=True)
class ServedFile:
    body: str
    content_type: str


def _tenant_for(key: str) -> Tenant | None:
    if not key or len(key) > 64:
        return None
    return Tenant.objects.filter(provisioning_key=key, sip_gateway_enabled=True).first()


def _vendor_format(vendor: str) -> str | None:
    return DeviceModel.objects.filter(vendor=vendor).values_list("config_format", flat=True).first() if vendor else None


def _record(
    *, device: Device, source: str | None, user_agent: str, agent: PhoneAgent, config_format: str, file_name: str,
    version: int | None,
) -> None:
    """Last provisioned, what the User-Agent says, and the version delivered: one UPDATE, with
    synced_version raised (never lowered) in the database so concurrent fetches cannot race."""
    fields = {
        "last_provisioned_at": timezone.now(),
        "last_provisioned_ip": source,
        "last_provisioned_user_agent": user_agent[:255],
    }
    # A device without a model takes one only in the format it was served (`config_format`).
    vendor = device.model.vendor if device.model_id else None
    fields.update(AgentFacts().of(agent, vendor=vendor, config_format=config_format))
    if version is not None:
        fields["synced_version"] = Greatest(F("synced_version"), Value(version))
    rows = Device.objects.filter(pk=device.pk)
    if device.last_provisioned_at is None and rows.filter(last_provisioned_at__isnull=True).update(**fields):
        audit_record(
            tenant=device.tenant, actor=Actor.phone(device.mac), action="device.first_provision", obj=device,
            details={"file": file_name[:100], "source": source, "user_agent": user_agent[:255]},
        )
        return
    rows.update(**fields)


def provisioning_file_serve(
    *, key: str, file_name: str, mac_param: str, user_agent: str, source: str | None
) -> ServedFile | None:
    """The file a phone asked for, recorded on its device; None (and a miss counted against
    `source`) for an unknown key or MAC, a disabled tenant or a file of another vendor's phone."""
    agent = parse_user_agent(user_agent)
    request = file_request(file_name, mac_param=mac_param, agent=agent)
    if request is None:
        # A name no vendor's phone would ask us for (firmware, logs, licences phones also try):
        # not a guess at a key or a MAC, so it does not count against the address.
        return None
    tenant = _tenant_for(key)
    device = None
    if tenant is not None and request.mac:
        device = (
            Device.objects.select_related("tenant", "model", "signed_in_user")
            .filter(tenant=tenant, mac=request.mac)
            .first()
        )
    if tenant is None or (device is None and not request.common):
        _miss_record(source or "unknown")
        return None

    if request.common:
        # The same for every phone of the tenant; recorded on the device when the phone names itself.
        config_format, file = next(iter(request.files.items()))
        context = _edge_context(config_format)
    else:
        # A device onboarded without a model, fetched by a client whose vendor is not in the catalog
        # (or not named): `<mac>.cfg` gets the Yealink-style file most `.cfg` phones read (`.xml`
        # names no one format).
        config_format = (
            device.model.config_format if device.model_id else _vendor_format(agent.vendor)
        ) or UNNAMED_PHONE_FORMAT
        file = request.files.get(config_format)
        if file is None:  # another vendor's file name
            _miss_record(source or "unknown")
            return None
        context = config_context(device=device, config_format=config_format)
    version = context["version"] if file.carries_config else None
    body = config_render(file=file, config_format=config_format, context=context)
    if device is not None:
        _record(
            device=device, source=source, user_agent=user_agent, agent=agent, config_format=config_format,
            file_name=file_name, version=version,
        )
    return ServedFile(body, FORMATS[config_format].content_type)


# --- The Setup page --------------------------------------------------------------------------

# From the seed's "Port requirements" and "Other considerations" (configure-sip-gateway.md).
MEDIA_PORTS = "49152–53247"
SIGNALLING_TLS_PORT = 5061
SERVICE_RANGES = ("52.112.0.0/14", "52.120.0.0/14")
SIGN_IN_ADDRESSES = {
    "noam": (("East US", "52.170.38.140"), ("West US", "40.112.144.212")),
    "emea": (("North EU", "40.112.71.149"),),
    "apac": (),
}


def provisioning_url(*, tenant: Tenant) -> str:
    return f"{settings.PUBLIC_BASE_URL}/provision/{tenant.provisioning_key}/"


def provisioning_setup(*, tenant: Tenant) -> dict:
    """What an admin needs to point phones at the portal (the page is for admins: it shows the key)."""
    return {
        "provisioning_url": provisioning_url(tenant=tenant),
        "region": tenant.region,
        "region_label": tenant.get_region_display(),
        "https_only": settings.PROVISIONING_REQUIRE_HTTPS,
        "edge_host": settings.SIP_EDGE_HOST,
        "edge_port": settings.SIP_EDGE_PORT,
        "edge_transport": settings.SIP_EDGE_TRANSPORT.upper(),
        "sign_in_code": settings.FEATURE_CODE_SIGN_IN,
        "sign_out_code": settings.FEATURE_CODE_SIGN_OUT,
        "media_ports": MEDIA_PORTS,
        "tls_port": SIGNALLING_TLS_PORT,
        "service_ranges": SERVICE_RANGES,
        "sign_in_addresses": SIGN_IN_ADDRESSES.get(tenant.region, ()),
        "poly_config_suffix": POLY_CONFIG_SUFFIX,
    }


def provisioning_key_regenerate(*, tenant: Tenant, actor: Actor) -> Tenant:
    """A new key: the old URL stops working at once (phones configured with it get 404)."""
    tenant.provisioning_key = new_provisioning_key()
    tenant.save(update_fields=["provisioning_key"])
    audit_record(tenant=tenant, actor=actor, action="tenant.provisioning_key_regenerate", obj=tenant)
    return tenant
