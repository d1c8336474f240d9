"""The pairing page (/pair/) and the admin's "Sign in a user" and "Sign out" on the device page."""

import re

import pytest
from django.test import Client

from devices.choices import CommandKind, CommandStatus, DeviceState
from devices.models import Device, DeviceCommand
from enrollment.choices import PairingStatus
from enrollment.models import PairingRequest
from enrollment.services import pairing_approve, pairing_request_start
from portal.models import AuditEvent
from portal.services import Actor
from tests.conftest import login
from tests.factories import DeviceFactory, registered

CODE = re.compile(r'data-user-code>([BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4})<')
MEMBERS = ["admin_a", "tech_a", "user_a"]


@pytest.fixture
def phone(enrolled_a):
    return registered(enrolled_a, contact=f"sip:{enrolled_a.sip_user}@192.0.2.80:5060")


@pytest.fixture
def code(phone):
    return pairing_request_start(device=phone, actor=Actor.phone(phone.mac)).user_code


def wrong(code: str) -> str:
    return code[:-1] + ("B" if code[-1] != "B" else "C")


def signed_in(device) -> Device:
    device.refresh_from_db()
    return device


# The pairing page -------------------------------------------------------------------------------


def test_anonymous_visitors_log_in_first_and_come_back_with_the_code(client):
    response = client.get("/pair/", {"code": "BCDF-GHJK"})
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/pair/%3Fcode%3DBCDF-GHJK"
    assert client.post("/pair/", {"code": "BCDF-GHJK"})["Location"].startswith("/login/?next=/pair/")


def test_the_url_without_its_slash_works_and_keeps_the_code(client):
    response = client.get("/pair", {"code": "BCDF-GHJK"})
    assert response.status_code == 302 and response["Location"] == "/pair/?code=BCDF-GHJK"


@pytest.mark.parametrize("caller", MEMBERS)
def test_every_member_signs_a_phone_in_for_themselves(client, request, phone, code, caller):
    member = request.getfixturevalue(caller)
    login(client, member)
    assert client.get("/pair/").status_code == 200
    response = client.post("/pair/", {"code": code})
    assert response.status_code == 302
    request_row = PairingRequest.objects.get(status=PairingStatus.APPROVED)
    assert response["Location"] == f"/pair/done/{request_row.pk}/"
    assert signed_in(phone).signed_in_user == member.user
    page = client.get(response["Location"])
    assert page.status_code == 200
    text = page.content.decode()
    assert "Phone signed in" in text and phone.display_name in text and phone.mac in text
    assert "Your phone will show your name" in text


def test_the_success_page_shows_the_users_number(client, user_a, phone, code):
    user_a.user.phone_number = "+14255550100"
    user_a.user.save()
    login(client, user_a)
    page = client.post("/pair/", {"code": code.lower()}, follow=True).content.decode()
    assert "and your number <span class=\"mono\">+14255550100</span> in a moment" in page


def test_an_admin_of_another_tenant_cannot_use_the_code(client, admin_b, phone, code):
    login(client, admin_b)
    response = client.post("/pair/", {"code": code})
    assert response.status_code == 400
    assert "That code is not right." in response.content.decode()
    assert signed_in(phone).signed_in_user is None
    assert PairingRequest.objects.get().status == PairingStatus.PENDING


def test_the_success_page_is_only_for_the_user_who_paired(client, user_a, admin_a, admin_b, phone, code):
    result = pairing_approve(user=user_a.user, code=code, source="192.0.2.1")
    url = f"/pair/done/{result.request.pk}/"
    assert login(client, user_a).get(url).status_code == 200
    assert login(Client(), admin_a).get(url).status_code == 404
    assert login(Client(), admin_b).get(url).status_code == 404
    assert Client().get(url).status_code == 302


def test_a_code_in_the_link_comes_prefilled_and_tidied(client, user_a):
    login(client, user_a)
    page = client.get("/pair/", {"code": "bcdfghjk"}).content.decode()
    assert 'value="BCDF-GHJK"' in page
    page = client.get("/pair/", {"code": "<script>alert(1)</script>"}).content.decode()
    assert "<script>alert" not in page and 'value=""' in page


@pytest.mark.parametrize(
    "entered, expected",
    [
        ("wrong", "That code is not right."),
        ("BCD", "That is not a pairing code: it has 8 letters, like BCDF-GHJK."),
    ],
)
def test_a_wrong_code_is_told_plainly_and_kept_in_the_box(client, user_a, phone, code, entered, expected):
    text = wrong(code) if entered == "wrong" else entered
    login(client, user_a)
    response = client.post("/pair/", {"code": text})
    assert response.status_code == 400
    page = response.content.decode()
    assert expected in page and f'value="{text}"' in page
    assert signed_in(phone).state == DeviceState.WAITING_FOR_SIGN_IN


def test_a_used_code_says_so(client, user_a, admin_a, phone, code):
    pairing_approve(user=admin_a.user, code=code, source="192.0.2.1")
    response = login(client, user_a).post("/pair/", {"code": code})
    assert response.status_code == 400
    assert "That code was already used." in response.content.decode()


def test_an_expired_code_says_so(client, user_a, phone, code):
    from datetime import timedelta

    from django.utils import timezone

    PairingRequest.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = login(client, user_a).post("/pair/", {"code": code})
    assert response.status_code == 400
    assert "That code has expired. Press Sign in on the phone again" in response.content.decode()


def test_a_phone_not_enrolled_says_so(client, user_a, phone, code):
    Device.objects.filter(pk=phone.pk).update(state=DeviceState.WAITING_ON_ACTIVATION)
    response = login(client, user_a).post("/pair/", {"code": code})
    assert response.status_code == 400
    assert "This phone is not enrolled yet." in response.content.decode()


def test_five_wrong_codes_lock_the_page_for_the_user(client, user_a, phone, code):
    login(client, user_a)
    for _ in range(5):
        assert client.post("/pair/", {"code": wrong(code)}).status_code == 400
    response = client.post("/pair/", {"code": code})
    assert response.status_code == 429
    assert "Too many wrong codes. Try again in 15 minutes." in response.content.decode()
    assert signed_in(phone).signed_in_user is None
    assert AuditEvent.objects.filter(action="pairing.lockout", actor_user=user_a.user).count() == 1


def test_the_pairing_page_needs_the_csrf_token(user_a, phone, code):
    client = Client(enforce_csrf_checks=True)
    login(client, user_a)
    assert client.post("/pair/", {"code": code}).status_code == 403
    token = client.get("/pair/").cookies["csrftoken"].value
    assert client.post("/pair/", {"code": code, "csrfmiddlewaretoken": token}).status_code == 302


def test_the_pairing_page_is_not_cached(client, user_a):
    assert "no-store" in login(client, user_a).get("/pair/")["Cache-Control"]


def test_the_pairing_page_fits_a_phone(client, user_a):
    page = login(client, user_a).get("/pair/").content.decode()
    assert 'name="viewport" content="width=device-width' in page
    assert 'class="sidenav"' not in page


# "Sign in a user" and "Sign out" on the device page ----------------------------------------------


def test_the_device_page_offers_sign_in_to_a_phone_waiting_for_sign_in(client, admin_a, phone):
    page = login(client, admin_a).get(f"/devices/{phone.pk}/").content.decode()
    assert f'action="/devices/{phone.pk}/sign-in/"' in page
    assert "sign-out/" not in page


def test_the_device_page_warns_before_replacing_a_waiting_code(client, admin_a, phone, code):
    page = login(client, admin_a).get(f"/devices/{phone.pk}/").content.decode()
    assert "is still waiting to be entered. Start again? That code stops working." in page


def test_the_device_page_offers_sign_out_to_a_signed_in_phone(client, admin_a, user_a, phone, code):
    pairing_approve(user=user_a.user, code=code, source="192.0.2.1")
    page = login(client, admin_a).get(f"/devices/{phone.pk}/").content.decode()
    assert f'action="/devices/{phone.pk}/sign-out/"' in page and "/sign-in/" not in page
    assert f"Sign {user_a.user.display_name} out of {phone}?" in page


def test_the_device_page_offers_neither_before_enrollment(client, admin_a, waiting_a):
    page = login(client, admin_a).get(f"/devices/{waiting_a.pk}/").content.decode()
    assert "/sign-in/" not in page and "/sign-out/" not in page


def test_sign_in_a_user_shows_the_url_and_a_code_that_works(client, admin_a, user_a, phone, settings):
    settings.PUBLIC_BASE_URL = "https://portal.example.com"
    response = login(client, admin_a).post(f"/devices/{phone.pk}/sign-in/")
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    assert "https://portal.example.com/pair/" in page and "Expires in 14 min" in page
    shown = CODE.search(page).group(1)
    assert pairing_approve(user=user_a.user, code=shown, source="192.0.2.1").ok


def test_sign_in_a_user_answers_htmx_with_the_pane_alone(client, admin_a, phone):
    response = login(client, admin_a).post(f"/devices/{phone.pk}/sign-in/", HTTP_HX_REQUEST="true")
    page = response.content.decode()
    assert response.status_code == 200 and page.lstrip().startswith('<div class="pane-inner" id="sign-in-user">')
    assert CODE.search(page)


def test_sign_in_a_user_on_a_phone_not_enrolled_says_why(client, admin_a, waiting_a):
    response = login(client, admin_a).post(f"/devices/{waiting_a.pk}/sign-in/", follow=True)
    assert "is not enrolled yet: dial *55* with its verification code first." in response.content.decode()
    assert not PairingRequest.objects.exists()


def test_sign_out_signs_the_phone_out_and_check_syncs_it(client, admin_a, user_a, phone, code):
    pairing_approve(user=user_a.user, code=code, source="192.0.2.1")
    DeviceCommand.objects.all().delete()
    response = login(client, admin_a).post(f"/devices/{phone.pk}/sign-out/", follow=True)
    assert response.redirect_chain[-1][0] == f"/devices/{phone.pk}/"
    assert f"{user_a.user.display_name} was signed out of it." in response.content.decode()
    device = signed_in(phone)
    assert (device.state, device.signed_in_user, device.phone_number) == (DeviceState.WAITING_FOR_SIGN_IN, None, "")
    assert DeviceCommand.objects.get(device=phone, kind=CommandKind.RESYNC).status == CommandStatus.QUEUED


def test_sign_out_of_a_phone_nobody_is_signed_in_to_says_so(client, admin_a, phone):
    response = login(client, admin_a).post(f"/devices/{phone.pk}/sign-out/", follow=True)
    assert response.status_code == 200
    assert f"Nobody is signed in to {phone}: nothing to sign out." in response.content.decode()


@pytest.mark.parametrize("caller", ["tech_a", "user_a"])
def test_only_admins_sign_users_in_or_out(client, request, phone, caller):
    login(client, request.getfixturevalue(caller))
    assert client.post(f"/devices/{phone.pk}/sign-in/").status_code == 403
    assert client.post(f"/devices/{phone.pk}/sign-out/").status_code == 403
    assert not PairingRequest.objects.exists()


def test_an_admin_of_another_tenant_gets_404(client, admin_b, user_a, phone, code):
    pairing_approve(user=user_a.user, code=code, source="192.0.2.1")
    login(client, admin_b)
    assert client.post(f"/devices/{phone.pk}/sign-in/").status_code == 404
    assert client.post(f"/devices/{phone.pk}/sign-out/").status_code == 404
    assert signed_in(phone).signed_in_user == user_a.user


def test_anonymous_visitors_cannot_sign_in_or_out(client, phone):
    for action in ("sign-in", "sign-out"):
        response = client.post(f"/devices/{phone.pk}/{action}/")
        assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_sign_in_and_out_are_posts(client, admin_a, phone):
    login(client, admin_a)
    assert client.get(f"/devices/{phone.pk}/sign-in/").status_code == 405
    assert client.get(f"/devices/{phone.pk}/sign-out/").status_code == 405


def test_a_sign_in_started_by_an_admin_is_in_the_device_history(client, admin_a, user_a, phone):
    login(client, admin_a).post(f"/devices/{phone.pk}/sign-in/")
    shown = PairingRequest.objects.get()
    assert shown.requested_by == admin_a.user
    page = client.get(f"/devices/{phone.pk}/").content.decode()
    assert "pairing.start" in page
    assert AuditEvent.objects.filter(action="pairing.start", object_id=phone.pk).count() == 1


def test_a_device_of_another_tenant_never_shows_up(client, admin_b):
    other = DeviceFactory(state=DeviceState.WAITING_FOR_SIGN_IN)
    assert login(client, admin_b).post(f"/devices/{other.pk}/sign-in/").status_code == 404
