"""An import checks its devices' foreign keys once for the file (references_checked_once), not with
PostgreSQL's trigger per row: the same rows locked, the same failure when one is missing."""

import os

import pytest
from django.db import DEFAULT_DB_ALIAS, IntegrityError, OperationalError, connection, connections, transaction

from devices.imports import _device_insert, references_checked_once
from devices.models import Device, DeviceModel

pytestmark = pytest.mark.django_db


def replication_role(cursor) -> str:
    cursor.execute("SHOW session_replication_role")
    return cursor.fetchone()[0]


def staged_models(cursor, *model_ids) -> str:
    cursor.execute("CREATE TEMPORARY TABLE staged_models (model_id bigint NULL) ON COMMIT DROP")
    for model_id in model_ids:
        cursor.execute("INSERT INTO staged_models VALUES (%s)", [model_id])
    return "staged_models"


def insert_device(cursor, *, tenant_id: int, mac: str, model_id: int | None) -> None:
    cursor.execute(
        "INSERT INTO devices_device (tenant_id, mac, display_name, location, model_id, firmware, state, "
        "phone_number, contact_uri, transport, source_address, user_agent, last_provisioned_user_agent, "
        "wanted_version, synced_version, created_at, updated_at) "
        "VALUES (%s, %s, '', '', %s, '', 'waiting_on_activation', '', '', '', '', '', '', 1, 0, now(), now())",
        [tenant_id, mac, model_id],
    )


def test_inside_the_row_triggers_are_skipped_and_after_it_they_run_again(tenant_a):
    model = DeviceModel.objects.first()
    with transaction.atomic(), connection.cursor() as cursor:
        source = staged_models(cursor, model.pk, None, model.pk)
        with references_checked_once(cursor, source=source, tenant_id=tenant_a.pk) as skipped:
            assert skipped
            assert replication_role(cursor) == "replica"
            insert_device(cursor, tenant_id=tenant_a.pk, mac="00-15-65-0C-00-01", model_id=model.pk)
        assert replication_role(cursor) == "origin"

    assert Device.objects.get(mac="00-15-65-0C-00-01").model == model


def test_a_model_missing_from_the_catalog_keeps_the_triggers_which_refuse_the_row(tenant_a):
    missing = DeviceModel.objects.order_by("-pk").first().pk + 1000
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        source = staged_models(cursor, missing)
        with references_checked_once(cursor, source=source, tenant_id=tenant_a.pk) as skipped:
            assert not skipped
            assert replication_role(cursor) == "origin"
            insert_device(cursor, tenant_id=tenant_a.pk, mac="00-15-65-0C-00-02", model_id=missing)
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the deferred checks, as at the commit

    assert not Device.objects.filter(mac="00-15-65-0C-00-02").exists()


def test_a_role_not_allowed_to_skip_them_keeps_the_triggers(tenant_a):
    model = DeviceModel.objects.first()
    with transaction.atomic(), connection.cursor() as cursor:
        source = staged_models(cursor, model.pk)
        role = f"portal_import_test_{os.getpid()}"  # roles are the server's: one per test run
        cursor.execute(f"CREATE ROLE {role} NOLOGIN")  # rolled back with the test's transaction
        cursor.execute(f"GRANT SELECT, UPDATE ON portal_tenant, devices_devicemodel, staged_models TO {role}")
        cursor.execute(f"SET LOCAL ROLE {role}")
        with references_checked_once(cursor, source=source, tenant_id=tenant_a.pk) as skipped:
            assert not skipped
            assert replication_role(cursor) == "origin"
        transaction.set_rollback(True)


@pytest.mark.django_db(transaction=True)
def test_the_tenant_and_the_models_named_stay_locked_until_the_commit(tenant_a):
    model = DeviceModel.objects.first()
    other = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            source = staged_models(cursor, model.pk)
            with references_checked_once(cursor, source=source, tenant_id=tenant_a.pk) as skipped:
                assert skipped
            # What deleting either would need first, asked from another connection.
            for table, pk in (("portal_tenant", tenant_a.pk), ("devices_devicemodel", model.pk)):
                with pytest.raises(OperationalError), other.cursor() as other_cursor:
                    other_cursor.execute(f"SELECT id FROM {table} WHERE id = %s FOR UPDATE NOWAIT", [pk])
        with other.cursor() as other_cursor:
            other_cursor.execute("SELECT id FROM portal_tenant WHERE id = %s FOR UPDATE NOWAIT", [tenant_a.pk])
            assert other_cursor.fetchone() == (tenant_a.pk,)
    finally:
        other.close()


def test_an_imported_device_fills_no_reference_but_those_checked_once():
    """A new foreign key on Device must be checked in references_checked_once before an import may fill it."""
    columns, expressions, values = _device_insert(tenant_id=1, now=None, connection=connection)
    filled = dict(zip(columns, expressions, strict=True))
    params = iter(values)
    written = {column: next(params) if expression == "%s" else expression for column, expression in filled.items()}
    for field in Device._meta.concrete_fields:
        if field.is_relation and field.name not in ("tenant", "model"):
            assert written[connection.ops.quote_name(field.column)] is None, field.name
