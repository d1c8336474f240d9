"""The device catalog as people name it: one rule for the add form, the API, CSV imports and the
inventory's filters."""

from devices.models import DeviceModel


def device_model_key(text: str) -> str:
    return " ".join(str(text).split()).lower()


# Other names people give the catalog's vendors: DESIGN.md and Cisco's own papers say "Cisco MPP";
# Poly was Polycom until 2019, and its phones still say so.
VENDOR_ALIASES = {"cisco mpp": "Cisco", "polycom": "Poly"}


def vendor_canonical(name: str) -> str:
    """The catalog's name for a vendor, however it is written."""
    return VENDOR_ALIASES.get(device_model_key(name), name.strip())


def vendor_and_model(text: str) -> tuple[str, str] | None:
    """`Yealink T54W` or `Cisco MPP 8841` as (catalog vendor, model), without reading the catalog;
    None when `text` is one word."""
    key = device_model_key(text)
    for alias, vendor in VENDOR_ALIASES.items():
        if key.startswith(f"{alias} "):
            return vendor, key[len(alias) + 1 :]
    vendor, _, model = key.partition(" ")
    return (vendor, model) if model else None


def device_model_catalog() -> dict[str, int]:
    """Every way a person may name a catalog model (its id, `T54W`, `Yealink T54W`, `Cisco MPP 8841`,
    in any case and spacing) -> its id, in one query: the one rule for the add form, the API and
    CSV imports."""
    catalog: dict[str, int] = {}
    other_names: dict[str, list[str]] = {}
    for alias, vendor in VENDOR_ALIASES.items():
        other_names.setdefault(vendor, []).append(alias)
    rows = DeviceModel.objects.order_by("vendor", "model", "id").values_list("id", "vendor", "model")
    for pk, vendor, model in rows:
        catalog.setdefault(str(pk), pk)
        for name in (vendor, *other_names.get(vendor, ())):
            catalog.setdefault(device_model_key(f"{name} {model}"), pk)
        catalog.setdefault(device_model_key(model), pk)
    return catalog
