"""The device catalog: models from Microsoft's SIP Gateway compatibility list, with the NOTIFY
`Event:` values each vendor documents for resync and reboot. Data, so it can be edited later."""

from django.db import migrations

# vendor: (resync event, reboot event, config format)
EVENTS = {
    "Yealink": ("check-sync;reboot=false", "check-sync;reboot=true", "yealink"),
    "Poly": ("check-sync", "check-sync", "poly"),
    "Cisco": ("resync", "reboot_now", "cisco"),
    "AudioCodes": ("check-sync;reboot=false", "check-sync;reboot=true", "audiocodes"),
    "Snom": ("check-sync;reboot=false", "check-sync;reboot=true", "snom"),
    "Gigaset": ("check-sync;reboot=false", "check-sync;reboot=true", "gigaset"),
}

# vendor: [(model, minimum firmware)]
CATALOG = {
    "Yealink": [
        ("T31P", "124.86.0.40"), ("T31G", "124.86.0.40"), ("T33G", "124.86.0.40"),
        ("T41S", "66.86.0.15"), ("T42S", "66.86.0.15"), ("T46S", "66.86.0.15"), ("T48S", "66.86.0.15"),
        ("T43U", "108.86.0.20"), ("T46U", "108.86.0.20"), ("T48U", "108.86.0.20"),
        ("T53W", "96.86.0.70"), ("T54W", "96.86.0.70"), ("T57W", "96.86.0.70"), ("T58W", "58.86.0.20"),
        ("W60B", "77.85.0.20"), ("W70B", "146.86.0.20"),
    ],
    "Poly": [
        ("VVX 150", "6.4.0"), ("VVX 250", "6.4.0"), ("VVX 350", "6.4.0"), ("VVX 450", "6.4.0"),
        ("Trio 8500", "7.2.2"), ("Trio 8800", "7.2.2"),
        ("Edge E100", "8.0.0"), ("Edge E220", "8.0.0"), ("Edge E350", "8.0.0"), ("Edge E450", "8.0.0"),
        ("Edge E550", "8.0.0"), ("Rove 30", "8.0.0"),
    ],
    "Cisco": [
        ("6821", "11.3.6"), ("6841", "11.3.6"), ("6851", "11.3.6"), ("6861", "11.3.6"), ("6871", "11.3.6"),
        ("7811", "11.3.6"), ("7821", "11.3.6"), ("7841", "11.3.6"), ("7861", "11.3.6"),
        ("8811", "11.3.6"), ("8841", "11.3.6"), ("8845", "11.3.6"), ("8851", "11.3.6"), ("8861", "11.3.6"),
        ("8865", "11.3.6"), ("ATA191", "11.2.1"), ("ATA192", "11.2.1"),
    ],
    "AudioCodes": [
        ("405HD", "3.4.4"), ("420HD", "3.4.4"), ("430HD", "3.4.4"), ("440HD", "3.4.4"), ("445HD", "3.4.4"),
        ("450HD", "3.4.4"), ("C435HD", "3.4.4"), ("C448HD", "3.4.4"), ("C450HD", "3.4.4"),
    ],
    "Snom": [("D717", "10.1.73.16"), ("D735", "10.1.73.16"), ("D785", "10.1.73.16")],
    "Gigaset": [("N670 IP PRO", "2.48.0"), ("N870 IP PRO", "2.48.0"), ("Maxwell 3", "2.24.0")],
}


def seed(apps, schema_editor):
    DeviceModel = apps.get_model("devices", "DeviceModel")
    rows = []
    for vendor, models in CATALOG.items():
        resync, reboot, config_format = EVENTS[vendor]
        for model, firmware in models:
            rows.append(
                DeviceModel(
                    vendor=vendor, model=model, min_firmware=firmware,
                    resync_event=resync, reboot_event=reboot, config_format=config_format,
                )
            )
    DeviceModel.objects.bulk_create(rows, ignore_conflicts=True)


def unseed(apps, schema_editor):
    apps.get_model("devices", "DeviceModel").objects.filter(vendor__in=CATALOG).delete()


class Migration(migrations.Migration):
    dependencies = [("devices", "0002_initial")]
    operations = [migrations.RunPython(seed, unseed)]
