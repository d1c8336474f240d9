"""The device catalog as people name it: one rule for the add form, the API, CSV imports and the
inventory's filters; and as phones name themselves in their User-Agent, for provisioning and the
SIP edge alike."""

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


class AgentFacts:
    """Model and firmware as a phone's User-Agent says (`gateway.useragent.PhoneAgent`): they refine
    the device's model within its vendor, never move it to another vendor's phone. Catalog look-ups
    are kept for the batch: the phones of one onboarding often are all the same model."""

    def __init__(self):
        self._named: dict[tuple[str, str], DeviceModel | None] = {}

    def of(self, agent, *, vendor: str | None, config_format: str | None) -> dict:
        """`vendor`: that of the device's model, None when it has none; `config_format`: its
        model's, or the format being served it, None when neither is known. A model the agent
        names in another format is not taken."""
        if not agent.vendor or (vendor is not None and vendor != agent.vendor):
            return {}
        facts = {"firmware": agent.firmware[:64]} if agent.firmware else {}
        named = self._model(agent.vendor, agent.model) if agent.model else None
        if named is not None and (config_format is None or named.config_format == config_format):
            facts["model_id"] = named.pk
        return facts

    def _model(self, vendor: str, model: str) -> DeviceModel | None:
        key = (vendor, model.lower())
        if key not in self._named:
            self._named[key] = DeviceModel.objects.filter(vendor=vendor, model__iexact=model).first()
        return self._named[key]
