"""The provisioning server as phones meet it: every vendor's file names, what a config says and
never says, the same bare 404 for every miss, rate limiting on the real Redis cache, what a fetch
records on the device, HTTPS only; and the Setup page that shows the URL."""

import secrets
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from devices.choices import DeviceState
from devices.models import Device
from enrollment.services import verification_code_issue
from portal.models import AuditEvent, Tenant
from portal.services import Actor
from tests.conftest import login
from tests.factories import DeviceFactory, UserFactory, device_model

pytestmark = pytest.mark.usefixtures("own_cache_keys")

TEXT = "text/plain; charset=utf-8"
XML = "application/xml; charset=utf-8"


@pytest.fixture(autouse=True)
def edge(settings):
    settings.SIP_EDGE_HOST = "sip.contoso.example"
    settings.SIP_EDGE_PORT = 5070
    settings.SIP_EDGE_TRANSPORT = "udp"
    settings.FEATURE_CODE_SIGN_IN = "*70*"
    settings.FEATURE_CODE_SIGN_OUT = "*71*"


def an_address() -> str:
    return f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"


def fetch(client, key: str, file_name: str, *, user_agent: str = "", source: str = "192.0.2.10", **extra):
    return client.get(f"/provision/{key}/{file_name}", HTTP_USER_AGENT=user_agent, REMOTE_ADDR=source, **extra)


@dataclass(frozen=True)
class Phone:
    vendor: str
    model: str
    mac: str
    file_name: str  # {mac}: lower-case digits, {MAC}: upper case
    user_agent: str
    content_type: str
    query: str = ""

    @property
    def digits(self) -> str:
        return self.mac.replace("-", "").lower()

    def path(self) -> str:
        name = self.file_name.format(mac=self.digits, MAC=self.digits.upper())
        return name + (f"?{self.query.format(mac=self.digits)}" if self.query else "")

    def agent(self) -> str:
        colons = ":".join(self.digits[i : i + 2] for i in range(0, 12, 2))
        return self.user_agent.format(mac=self.digits, MAC=self.digits.upper(), colons=colons)


PHONES = {
    "yealink": Phone("Yealink", "T54W", "00-15-65-12-34-56", "{mac}.cfg",
                     "Yealink SIP-T54W 96.86.0.70 {colons}", TEXT),
    "poly": Phone("Poly", "VVX 450", "00-04-F2-AB-CD-EF", "{mac}-sipgateway.cfg",
                  "PolycomVVX-VVX_450-UA/6.4.3.1234", XML),
    "cisco": Phone("Cisco", "8841", "00-56-2B-0D-12-34", "{MAC}.xml", "Cisco-CP8841-3PCC/11.3.6 ({mac})", XML),
    "cisco $PSN, MAC in the User-Agent": Phone("Cisco", "8841", "00-56-2B-0D-12-35", "CP-8841-3PCC.xml",
                                               "Cisco-CP8841-3PCC/11.3.6 ({mac})", XML),
    "cisco $PSN, MAC in the query": Phone("Cisco", "8841", "00-56-2B-0D-12-36", "CP-8841-3PCC.xml",
                                          "Cisco-CP8841-3PCC/11.3.6", XML, query="mac={mac}"),
    "audiocodes": Phone("AudioCodes", "C450HD", "00-90-8F-12-34-56", "{mac}.cfg",
                        "AUDC-IPPhone/3.4.4.1000 (C450HD-Rev0; {MAC})", TEXT),
    "snom": Phone("Snom", "D735", "00-04-13-12-34-56", "{mac}.xml",
                  "Mozilla/4.0 (compatible; snomD735-SIP 10.1.73.16)", XML),
    "gigaset": Phone("Gigaset", "N870 IP PRO", "7C-2F-80-12-34-56", "{mac}.xml", "", XML),
}


def onboard(tenant, phone: Phone, **fields) -> Device:
    fields.setdefault("state", DeviceState.WAITING_FOR_SIGN_IN)
    return DeviceFactory(tenant=tenant, mac=phone.mac, model=device_model(phone.vendor, phone.model), **fields)


def sign_in(device: Device, *, first="Ada", last="Lovelace", number="+1 425 555 0100") -> Device:
    device.signed_in_user = UserFactory(first_name=first, last_name=last)
    device.phone_number = number
    device.state = DeviceState.SIGNED_IN
    device.save()
    return device


def assert_well_formed(response):
    body = response.content.decode()
    if response["Content-Type"] == XML:
        ET.fromstring(body)  # raises on anything that is not one well-formed document
    else:
        for line in body.splitlines():
            assert not line.strip() or line.startswith("#") or "=" in line, line
    return body


# --- every vendor's files --------------------------------------------------------------------


@pytest.mark.parametrize("phone", PHONES.values(), ids=PHONES.keys())
def test_each_vendors_phone_gets_its_config_under_its_own_file_name(client, tenant_a, phone):
    device = onboard(tenant_a, phone, wanted_version=7, display_name="Reception desk")
    response = fetch(client, tenant_a.provisioning_key, phone.path(), user_agent=phone.agent())
    assert response.status_code == 200
    assert response["Content-Type"] == phone.content_type
    assert response["Cache-Control"] == "no-store"
    body = assert_well_formed(response)
    assert device.sip_user in body
    assert "sip.contoso.example" in body
    assert "5070" in body
    assert "*70*" in body  # enrolled, not signed in: the Sign in key
    assert "*71*" not in body
    assert "config version 7" in body
    assert "Ada Lovelace" not in body


@pytest.mark.parametrize("phone", PHONES.values(), ids=PHONES.keys())
def test_a_signed_in_phones_config_shows_the_user_and_number_and_the_sign_out_key(client, tenant_a, phone):
    device = sign_in(onboard(tenant_a, phone))
    body = fetch(client, tenant_a.provisioning_key, phone.path(), user_agent=phone.agent()).content.decode()
    assert "Ada Lovelace" in body
    assert "+1 425 555 0100" in body
    assert "*71*" in body
    assert "*70*" not in body
    assert device.sip_user in body


def test_a_phone_waiting_on_activation_gets_no_sign_in_key_yet(client, tenant_a):
    phone = PHONES["yealink"]
    onboard(tenant_a, phone, state=DeviceState.WAITING_ON_ACTIVATION)
    body = fetch(client, tenant_a.provisioning_key, phone.path()).content.decode()
    assert "account.1.user_name = 001565123456" in body
    assert "*70*" not in body and "*71*" not in body


def test_the_edge_transport_is_spelled_the_vendors_way(client, tenant_a, settings):
    settings.SIP_EDGE_TRANSPORT = "tcp"
    onboard(tenant_a, PHONES["yealink"])
    onboard(tenant_a, PHONES["cisco"])
    yealink = fetch(client, tenant_a.provisioning_key, PHONES["yealink"].path()).content.decode()
    cisco = fetch(client, tenant_a.provisioning_key, PHONES["cisco"].path()).content.decode()
    assert "account.1.sip_server.1.transport_type = 1" in yealink
    assert "<SIP_Transport_1_ ua=\"na\">TCP</SIP_Transport_1_>" in cisco


def test_yealinks_common_file_is_served_to_any_phone_of_the_tenant(client, tenant_a):
    for name in ("y000000000000.cfg", "y000000000096.cfg", "y000000000108.cfg"):
        response = fetch(client, tenant_a.provisioning_key, name, user_agent="Yealink SIP-T54W 96.86.0.70")
        assert response.status_code == 200
        assert response["Content-Type"] == TEXT
        assert response.content.startswith(b"#!version:1.0.0.1\n")


def test_polys_default_master_file_names_the_settings_file_by_the_phones_mac(client, tenant_a):
    response = fetch(client, tenant_a.provisioning_key, "000000000000.cfg", user_agent=PHONES["poly"].user_agent)
    assert response.status_code == 200
    master = ET.fromstring(response.content)
    assert master.tag == "APPLICATION"
    assert master.get("CONFIG_FILES") == "[PHONE_MAC_ADDRESS]-sipgateway.cfg"


def test_polys_own_mac_file_is_a_master_file_naming_its_settings(client, tenant_a):
    device = onboard(tenant_a, PHONES["poly"], wanted_version=4)
    response = fetch(client, tenant_a.provisioning_key, f"{device.sip_user}.cfg")
    assert response.status_code == 200
    assert ET.fromstring(response.content).get("CONFIG_FILES") == f"{device.sip_user}-sipgateway.cfg"
    device.refresh_from_db()
    assert device.last_provisioned_at is not None
    assert device.synced_version == 0  # it carried no settings


def test_file_names_match_the_mac_in_either_case(client, tenant_a):
    device = onboard(tenant_a, PHONES["cisco"])
    for name in (f"{device.sip_user}.xml", f"{device.sip_user.upper()}.xml"):
        assert fetch(client, tenant_a.provisioning_key, name).status_code == 200


# --- what a config never carries, and what it cannot be made to say ----------------------------


@pytest.mark.parametrize("phone", PHONES.values(), ids=PHONES.keys())
def test_no_secret_appears_in_any_served_file(client, tenant_a, admin_a, phone):
    device = onboard(tenant_a, phone, state=DeviceState.WAITING_ON_ACTIVATION)
    code = verification_code_issue(device=device, actor=Actor.system()).code
    responses = [
        fetch(client, tenant_a.provisioning_key, name, user_agent=phone.agent())
        for name in (phone.path(), f"{device.sip_user}.cfg", "y000000000000.cfg", "000000000000.cfg")
    ]
    assert responses[0].status_code == 200
    for response in responses:
        body = response.content.decode().lower()
        assert tenant_a.provisioning_key.lower() not in body
        assert admin_a.token.lower() not in body
        assert code not in body
        assert "password" not in body and "passwd" not in body and "secret" not in body


def test_a_display_name_cannot_add_lines_to_a_key_value_config(client, tenant_a):
    injected = "Eve\r\naccount.1.sip_server.1.address = evil.example\n#"
    device = sign_in(onboard(tenant_a, PHONES["yealink"]), first=injected)
    body = fetch(client, tenant_a.provisioning_key, PHONES["yealink"].path()).content.decode()
    servers = [line for line in body.splitlines() if line.startswith("account.1.sip_server.1.address")]
    assert servers == ["account.1.sip_server.1.address = sip.contoso.example"]
    assert "account.1.label = Eve account.1.sip_server.1.address = evil.example # Lovelace" in body
    assert device.sip_user in body


def test_a_display_name_cannot_add_elements_to_an_xml_config(client, tenant_a):
    sign_in(onboard(tenant_a, PHONES["cisco"]), first='</Display_Name_1_><Proxy_1_>evil.example</Proxy_1_><x a="')
    response = fetch(client, tenant_a.provisioning_key, PHONES["cisco"].path())
    profile = ET.fromstring(response.content)
    assert [p.text for p in profile.iter("Proxy_1_")] == ["sip.contoso.example:5070"]
    assert profile.find("Station_Display_Name").text.startswith("</Display_Name_1_><Proxy_1_>evil.example")


def test_names_read_as_typed_in_key_value_files_and_escaped_in_xml(client, tenant_a):
    sign_in(onboard(tenant_a, PHONES["yealink"]), first="Siobhán O'Brien &", last="Co")
    sign_in(onboard(tenant_a, PHONES["cisco"]), first="Siobhán O'Brien &", last="Co")
    yealink = fetch(client, tenant_a.provisioning_key, PHONES["yealink"].path()).content.decode()
    cisco = ET.fromstring(fetch(client, tenant_a.provisioning_key, PHONES["cisco"].path()).content)
    assert "account.1.label = Siobhán O'Brien & Co\n" in yealink
    assert cisco.find("Station_Display_Name").text == "Siobhán O'Brien & Co"


@pytest.mark.parametrize("phone", [PHONES["yealink"], PHONES["snom"]], ids=["key = value", "xml"])
def test_policy_settings_given_to_the_config_are_rendered_one_line_each_and_escaped(
    client, tenant_a, phone, monkeypatch
):
    # The seam the policies app fills: vendor keys and values, rendered safely by every template.
    monkeypatch.setattr(
        "gateway.provisioning.device_config_settings",
        lambda *, device, config_format: {"lang_gui": 'Deutsch\n<evil a="1"/>'},
    )
    onboard(tenant_a, phone)
    body = assert_well_formed(fetch(client, tenant_a.provisioning_key, phone.path()))
    assert "lang_gui" in body
    assert "\n<evil" not in body
    if phone.content_type == XML:
        assert "<evil" not in body


# --- misses: the same bare 404, rate limited per address ------------------------------------------


def test_every_miss_is_the_same_bare_404(client, tenant_a, tenant_b):
    yealink = onboard(tenant_a, PHONES["yealink"])
    onboard(tenant_b, PHONES["cisco"])
    no_model = DeviceFactory(tenant=tenant_a, mac="00-15-65-00-00-01")
    offboarded = onboard(tenant_a, PHONES["snom"])
    offboarded.delete()
    disabled = Tenant.objects.create(name="Disabled", sip_gateway_enabled=False)
    DeviceFactory(tenant=disabled, mac="00-15-65-00-00-02", model=device_model("Yealink", "T54W"))
    key = tenant_a.provisioning_key
    misses = {
        "unknown key": fetch(client, "x" * 32, PHONES["yealink"].path()),
        "unknown MAC": fetch(client, key, "001565999999.cfg"),
        "another tenant's MAC": fetch(client, key, PHONES["cisco"].path()),
        "disabled tenant": fetch(client, disabled.provisioning_key, "001565000002.cfg"),
        "another vendor's file": fetch(client, key, f"{yealink.sip_user}.xml"),
        "Poly's settings name for a Yealink": fetch(client, key, f"{yealink.sip_user}-sipgateway.cfg"),
        "no model, unknown phone, .xml": fetch(client, key, f"{no_model.sip_user}.xml", user_agent="curl/8.5.0"),
        "offboarded": fetch(client, key, PHONES["snom"].path()),
        "$PSN without a MAC": fetch(client, key, "CP-8841-3PCC.xml"),
        "a name no phone asks for": fetch(client, key, "sip.ld"),
        "a subdirectory": fetch(client, key, "firmware/sip.ld"),
        "the key alone": fetch(client, key, ""),
        "common file, disabled tenant": fetch(client, disabled.provisioning_key, "y000000000000.cfg"),
    }
    for what, response in misses.items():
        assert (response.status_code, response.content, response["Content-Type"]) == (404, b"", "text/plain"), what


def test_a_device_without_a_model_fetched_by_an_unnamed_client_gets_the_common_cfg_format(client, tenant_a):
    device = DeviceFactory(tenant=tenant_a, mac="00-15-65-12-34-57")
    response = fetch(client, tenant_a.provisioning_key, "001565123457.cfg", user_agent="curl/8.5.0")
    assert response.status_code == 200
    assert response.content.startswith(b"#!version:1.0.0.1") and b"001565123457" in response.content
    device.refresh_from_db()
    assert device.model is None and device.last_provisioned_at is not None


def test_a_device_without_a_model_takes_none_in_another_format_than_it_was_served(client, tenant_a):
    """A Cisco that names itself (and its MAC) fetching Yealink's common file: the device learns
    no Cisco model from a Yealink file."""
    device = DeviceFactory(tenant=tenant_a, mac="00-56-2B-0D-12-34")
    response = fetch(
        client, tenant_a.provisioning_key, "y000000000000.cfg", user_agent="Cisco-CP8841-3PCC/11.3.6 (00562b0d1234)"
    )
    assert response.status_code == 200
    device.refresh_from_db()
    assert device.model is None and device.last_provisioned_at is not None


def test_a_device_without_a_model_is_served_by_what_its_user_agent_says_and_learns_it(client, tenant_a):
    device = DeviceFactory(tenant=tenant_a, mac="00-15-65-12-34-56", state=DeviceState.WAITING_FOR_SIGN_IN)
    response = fetch(client, tenant_a.provisioning_key, "001565123456.cfg", user_agent=PHONES["yealink"].agent())
    assert response.status_code == 200
    assert response.content.startswith(b"#!version:1.0.0.1")
    device.refresh_from_db()
    assert (device.model.vendor, device.model.model, device.firmware) == ("Yealink", "T54W", "96.86.0.70")


def test_an_address_that_misses_too_often_is_told_to_wait(client, tenant_a, settings):
    assert "Redis" in settings.CACHES["default"]["BACKEND"], "run through `make test`: the limit lives in Redis"
    settings.PROVISIONING_MISS_LIMIT = 20
    settings.PROVISIONING_MISS_WINDOW_SECONDS = 300
    onboard(tenant_a, PHONES["yealink"])
    guesser, neighbour = an_address(), an_address()
    for n in range(20):
        assert fetch(client, tenant_a.provisioning_key, f"00156500{n:04x}.cfg", source=guesser).status_code == 404
    refused = fetch(client, tenant_a.provisioning_key, PHONES["yealink"].path(), source=guesser)
    assert refused.status_code == 429
    assert refused.content == b""
    assert 0 < int(refused["Retry-After"]) <= 300
    # Counted per address: the phone next door is unaffected.
    assert fetch(client, tenant_a.provisioning_key, PHONES["yealink"].path(), source=neighbour).status_code == 200


def test_names_no_phone_asks_for_do_not_count_as_misses(client, tenant_a, settings):
    settings.PROVISIONING_MISS_LIMIT = 3
    onboard(tenant_a, PHONES["poly"])
    source = an_address()
    for name in ("sip.ld", "000000000000-license.cfg", "000000000000-directory.xml", "0004f2abcdef-app.log") * 3:
        assert fetch(client, tenant_a.provisioning_key, name, source=source).status_code == 404
    assert fetch(client, tenant_a.provisioning_key, PHONES["poly"].path(), source=source).status_code == 200


# --- what a fetch records ------------------------------------------------------------------------


def test_a_served_config_records_when_where_and_what_fetched_it(client, tenant_a):
    phone = PHONES["snom"]
    device = onboard(tenant_a, phone)
    fetch(client, tenant_a.provisioning_key, phone.path(), user_agent=phone.agent(), source="198.51.100.7")
    device.refresh_from_db()
    assert device.last_provisioned_at is not None
    assert device.last_provisioned_ip == "198.51.100.7"
    assert device.last_provisioned_user_agent == phone.agent()
    assert device.firmware == "10.1.73.16"


def test_the_user_agent_refines_the_model_within_the_vendor_but_never_moves_it_to_another(client, tenant_a):
    phone = PHONES["yealink"]
    device = DeviceFactory(tenant=tenant_a, mac=phone.mac, model=device_model("Yealink", "T46U"))
    fetch(client, tenant_a.provisioning_key, phone.path(), user_agent=phone.agent())
    device.refresh_from_db()
    assert device.model.model == "T54W"
    fetch(client, tenant_a.provisioning_key, phone.path(), user_agent=PHONES["cisco"].agent())
    device.refresh_from_db()
    assert (device.model.model, device.firmware) == ("T54W", "96.86.0.70")


def test_a_common_file_is_recorded_on_the_phone_that_names_itself_but_syncs_nothing(client, tenant_a):
    device = onboard(tenant_a, PHONES["yealink"], wanted_version=3)
    fetch(client, tenant_a.provisioning_key, "y000000000000.cfg", user_agent=PHONES["yealink"].agent())
    device.refresh_from_db()
    assert device.last_provisioned_at is not None
    assert device.synced_version == 0


def test_the_version_delivered_becomes_the_synced_version_in_one_update(client, tenant_a):
    phone = PHONES["yealink"]
    device = onboard(tenant_a, phone, wanted_version=5, synced_version=2)
    fetch(client, tenant_a.provisioning_key, phone.path())  # the first fetch, audited
    Device.objects.filter(pk=device.pk).update(wanted_version=6)
    with CaptureQueriesContext(connection) as queries:
        response = fetch(client, tenant_a.provisioning_key, phone.path())
    assert b"config version 6" in response.content
    device.refresh_from_db()
    assert device.synced_version == 6
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    assert len(updates) == 1
    assert "GREATEST" in updates[0]


def test_a_late_fetch_of_an_older_version_never_lowers_the_synced_version(client, tenant_a):
    phone = PHONES["cisco"]
    device = onboard(tenant_a, phone, wanted_version=4, synced_version=9)
    fetch(client, tenant_a.provisioning_key, phone.path())
    device.refresh_from_db()
    assert device.synced_version == 9


def test_only_a_devices_first_provisioning_is_audited(client, tenant_a):
    phone = PHONES["audiocodes"]
    device = onboard(tenant_a, phone)
    for _ in range(3):
        assert fetch(client, tenant_a.provisioning_key, phone.path(), user_agent=phone.agent()).status_code == 200
    events = AuditEvent.objects.filter(tenant=tenant_a, object_id=device.pk, action="device.first_provision")
    assert events.count() == 1
    assert events.get().actor_label == f"phone {device.mac}"


# --- HTTPS ------------------------------------------------------------------------------------


def test_plain_http_is_refused_when_https_is_required(client, tenant_a, settings):
    settings.PROVISIONING_REQUIRE_HTTPS = True
    phone = PHONES["yealink"]
    device = onboard(tenant_a, phone)
    refused = fetch(client, tenant_a.provisioning_key, phone.path())
    assert (refused.status_code, refused.content) == (403, b"")
    device.refresh_from_db()
    assert device.last_provisioned_at is None
    assert fetch(client, tenant_a.provisioning_key, phone.path(), secure=True).status_code == 200


def test_https_behind_a_trusted_proxy_is_read_from_x_forwarded_proto(client, tenant_a, settings):
    settings.PROVISIONING_REQUIRE_HTTPS = True
    phone = PHONES["yealink"]
    onboard(tenant_a, phone)
    forwarded = {"HTTP_X_FORWARDED_PROTO": "https"}
    assert fetch(client, tenant_a.provisioning_key, phone.path(), **forwarded).status_code == 403  # not trusted
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert fetch(client, tenant_a.provisioning_key, phone.path(), **forwarded).status_code == 200
    assert fetch(client, tenant_a.provisioning_key, phone.path()).status_code == 403


def test_ssl_redirect_sends_plain_http_to_https(client, tenant_a, settings):
    settings.SECURE_SSL_REDIRECT = True
    phone = PHONES["yealink"]
    onboard(tenant_a, phone)
    response = fetch(client, tenant_a.provisioning_key, phone.path())
    assert response.status_code == 301
    assert response["Location"].startswith("https://")


def test_behind_a_trusted_proxy_the_phones_address_comes_from_x_forwarded_for(client, tenant_a, settings):
    phone = PHONES["yealink"]
    device = onboard(tenant_a, phone)
    forwarded = {"HTTP_X_FORWARDED_FOR": "203.0.113.99, 198.51.100.20"}
    fetch(client, tenant_a.provisioning_key, phone.path(), source="10.0.0.2", **forwarded)
    device.refresh_from_db()
    assert device.last_provisioned_ip == "10.0.0.2"  # not trusted: the proxy's own address
    settings.TRUST_X_FORWARDED_FOR = True
    fetch(client, tenant_a.provisioning_key, phone.path(), source="10.0.0.2", **forwarded)
    device.refresh_from_db()
    assert device.last_provisioned_ip == "198.51.100.20"  # what our proxy appended, not what the client claimed


# --- the Setup page -------------------------------------------------------------------------------


def test_the_setup_page_shows_the_provisioning_url_and_what_the_network_needs(client, admin_a, settings):
    settings.PUBLIC_BASE_URL = "https://portal.contoso.example"
    body = login(client, admin_a).get("/setup/").content.decode()
    url = f"https://portal.contoso.example/provision/{admin_a.tenant.provisioning_key}/"
    assert url in body
    assert f"{url}$PSN.xml" in body
    assert "Region noam" in body
    for fact in ("66", "160", "49152–53247", "5061", "52.112.0.0/14", "52.170.38.140", "*70*", "*71*"):
        assert fact in body, fact


def test_the_setup_page_lists_the_conditional_access_addresses_of_the_tenants_region(client, admin_a):
    Tenant.objects.filter(pk=admin_a.tenant.pk).update(region="emea")
    body = login(client, admin_a).get("/setup/").content.decode()
    assert "40.112.71.149" in body
    assert "52.170.38.140" not in body


def test_the_setup_page_warns_that_a_disabled_gateway_serves_nothing(client, admin_a):
    assert b"phones get nothing from this URL" not in login(client, admin_a).get("/setup/").content
    Tenant.objects.filter(pk=admin_a.tenant.pk).update(sip_gateway_enabled=False)
    assert b"phones get nothing from this URL" in client.get("/setup/").content


@pytest.mark.parametrize("caller", ["tech_a", "user_a", "admin_b"])
def test_only_the_tenants_admins_see_its_provisioning_key(client, request, tenant_a, caller):
    response = login(client, request.getfixturevalue(caller)).get("/setup/")
    assert tenant_a.provisioning_key.encode() not in response.content
    assert response.status_code == (200 if caller == "admin_b" else 403)


def test_regenerating_the_key_retires_the_old_url(client, admin_a):
    phone = PHONES["yealink"]
    onboard(admin_a.tenant, phone)
    old_key = admin_a.tenant.provisioning_key
    response = login(client, admin_a).post("/setup/provisioning-key/")
    assert response.status_code == 302
    new_key = Tenant.objects.get(pk=admin_a.tenant.pk).provisioning_key
    assert new_key != old_key
    assert fetch(client, old_key, phone.path()).status_code == 404
    assert fetch(client, new_key, phone.path()).status_code == 200
    assert new_key in client.get("/setup/").content.decode()
    event = AuditEvent.objects.get(tenant=admin_a.tenant, action="tenant.provisioning_key_regenerate")
    assert event.actor_user == admin_a.user
    assert old_key not in str(event.details) and new_key not in str(event.details)


@pytest.mark.parametrize("caller", ["tech_a", "user_a"])
def test_only_admins_may_regenerate_the_key(client, request, tenant_a, caller):
    old_key = tenant_a.provisioning_key
    response = login(client, request.getfixturevalue(caller)).post("/setup/provisioning-key/")
    assert response.status_code == 403
    assert Tenant.objects.get(pk=tenant_a.pk).provisioning_key == old_key


def test_regenerating_takes_a_post(client, admin_a):
    old_key = admin_a.tenant.provisioning_key
    assert login(client, admin_a).get("/setup/provisioning-key/").status_code == 405
    assert Tenant.objects.get(pk=admin_a.tenant.pk).provisioning_key == old_key


def test_a_log_a_phone_puts_next_to_its_files_is_refused_as_a_method_not_a_forgery(tenant_a):
    """Poly phones PUT <mac>-app.log to their provisioning server: a plain 405, not a CSRF 403."""
    phone = Client(enforce_csrf_checks=True)
    response = phone.put(
        f"/provision/{tenant_a.provisioning_key}/0004f2123456-app.log", b"log lines", content_type="text/plain"
    )
    assert response.status_code == 405
    assert response["Allow"] == "GET"
