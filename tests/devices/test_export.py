"""Export the filtered inventory as CSV: only the caller's devices, only the filtered ones, and
no cell that a spreadsheet would run as a formula."""

import csv
import io

import pytest

from devices.choices import DeviceState
from devices.exports import csv_lines, neutralize
from tests.conftest import login
from tests.factories import DeviceFactory, device_model

EXPORT = "/devices/export.csv"
HEADER = ["MAC id", "Location", "Display name", "Vendor", "Model", "Firmware", "State", "User", "Phone number",
          "Last seen"]


def rows_of(response) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="sip-devices-')
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")  # Excel reads the file as UTF-8 only with a BOM
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows[0] == HEADER
    return rows[1:]


@pytest.fixture
def inventory(tenant_a, tenant_b):
    DeviceFactory(tenant=tenant_a, mac="00-15-65-00-00-01", location="Lobby", display_name="Reception",
                  model=device_model("Yealink", "T54W"), firmware="96.86.0.70")
    DeviceFactory(tenant=tenant_a, mac="00-15-65-00-00-02", location="Lab", display_name="=HYPERLINK(\"http://x\")",
                  state=DeviceState.SIGNED_IN, phone_number="+1 425 555 0100")
    DeviceFactory(tenant=tenant_a, mac="00-15-65-00-00-03", location="@SUM(A1)", display_name="-2+3")
    DeviceFactory(tenant=tenant_b, mac="00-15-65-00-00-04", location="Lobby", display_name="Theirs")


def test_an_admin_exports_every_device_of_the_tenant(client, admin_a, inventory):
    rows = rows_of(login(client, admin_a).get(EXPORT))
    assert [r[0] for r in rows] == ["00-15-65-00-00-03", "00-15-65-00-00-02", "00-15-65-00-00-01"]
    assert rows[2] == ["00-15-65-00-00-01", "Lobby", "Reception", "Yealink", "T54W", "96.86.0.70",
                       "Waiting on activation", "", "", ""]


def test_cells_that_a_spreadsheet_would_run_are_neutralized(client, admin_a, inventory):
    rows = {r[0]: r for r in rows_of(login(client, admin_a).get(EXPORT))}
    assert rows["00-15-65-00-00-02"][2] == "'=HYPERLINK(\"http://x\")"
    assert rows["00-15-65-00-00-02"][8] == "'+1 425 555 0100"
    assert rows["00-15-65-00-00-03"][1:3] == ["'@SUM(A1)", "'-2+3"]
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows.values() for cell in row)


@pytest.mark.parametrize(
    "query, macs",
    [
        ({"location": "lobby"}, ["00-15-65-00-00-01"]),
        ({"state": "signed_in"}, ["00-15-65-00-00-02"]),
        ({"q": "00:00:03"}, ["00-15-65-00-00-03"]),
        ({"model": "T54W", "cursor": "ignored", "sort": "mac"}, ["00-15-65-00-00-01"]),
        ({"q": "nothing"}, []),
    ],
)
def test_the_export_has_only_the_filtered_rows(client, admin_a, inventory, query, macs):
    assert [r[0] for r in rows_of(login(client, admin_a).get(EXPORT, query))] == macs


def test_another_tenants_devices_are_never_exported(client, admin_b, inventory):
    rows = rows_of(login(client, admin_b).get(EXPORT))
    assert [r[0] for r in rows] == ["00-15-65-00-00-04"]
    assert rows_of(client.get(EXPORT, {"q": "00-15-65-00-00-01"})) == []


def test_an_invalid_filter_is_a_400(client, admin_a, inventory):
    response = login(client, admin_a).get(EXPORT, {"state": "asleep"})
    assert response.status_code == 400


@pytest.mark.parametrize("caller", ["tech_a", "user_a"])
def test_only_admins_export(client, request, inventory, caller):
    assert login(client, request.getfixturevalue(caller)).get(EXPORT).status_code == 403


def test_anonymous_users_are_sent_to_log_in(client, inventory):
    response = client.get(EXPORT)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@A1", "\t=1", "\r=1"])
def test_neutralize_prefixes_formula_starters(value):
    assert neutralize(value) == "'" + value


@pytest.mark.parametrize("value, expected", [("Lobby", "Lobby"), ("a=b", "a=b"), (None, ""), (7, "7"), ("", "")])
def test_neutralize_leaves_plain_values_alone(value, expected):
    assert neutralize(value) == expected


def test_csv_lines_stream_one_line_per_row():
    lines = list(csv_lines(["a", "b"], iter([["1", "=2"], ["x,y", 'say "hi"']])))
    assert lines == ["\ufeffa,b\r\n", "1,'=2\r\n", '"x,y","say ""hi"""\r\n']
