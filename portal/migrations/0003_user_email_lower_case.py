import portal.models
from django.db import migrations
from django.db.models.functions import Lower


def lower_case_addresses(apps, schema_editor):
    """Accounts created before addresses were stored lower case; one that would collide with
    another account's address keeps its spelling (and signs in as typed then). The older account
    of a clash gets the plain address."""
    User = apps.get_model("portal", "User")
    taken = set(User.objects.values_list("username", flat=True))
    for user in User.objects.exclude(username=Lower("username")).only("username").order_by("pk"):
        address = user.username.lower()
        if address not in taken:
            taken.add(address)
            User.objects.filter(pk=user.pk).update(username=address)
    User.objects.exclude(email=Lower("email")).update(email=Lower("email"))


class Migration(migrations.Migration):
    dependencies = [
        ("portal", "0002_drop_redundant_tenant_index"),
    ]

    operations = [
        migrations.AlterModelManagers(
            name="user",
            managers=[
                ("objects", portal.models.EmailUserManager()),
            ],
        ),
        migrations.RunPython(lower_case_addresses, migrations.RunPython.noop),
    ]
