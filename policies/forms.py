from django import forms

from policies.schema import SETTINGS, setting_choices


def _field(setting) -> forms.Field:
    common = {"label": setting.label, "help_text": setting.help, "initial": setting.default}
    if setting.type == "bool":
        return forms.BooleanField(required=False, **common)
    if setting.type == "int":
        return forms.IntegerField(min_value=setting.min, max_value=setting.max, **common)
    if setting.type == "choice":
        return forms.ChoiceField(choices=setting_choices(setting), **common)
    return forms.CharField(required=False, max_length=setting.max_length, **common)


class PolicyForm(forms.Form):
    """Name, description and the kind's settings; policies.services decides what is allowed."""

    name = forms.CharField(max_length=100, widget=forms.TextInput(attrs={"autofocus": True}))
    description = forms.CharField(max_length=255, required=False)

    def __init__(self, *args, kind: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.setting_keys = [s.key for s in SETTINGS[kind]]
        for setting in SETTINGS[kind]:
            self.fields[setting.key] = _field(setting)

    def service_data(self) -> dict:
        data = self.cleaned_data
        return {
            "name": data["name"],
            "description": data["description"],
            "settings": {key: data[key] for key in self.setting_keys},
        }


class AssignForm(forms.Form):
    """Give a policy to users and/or devices (MAC addresses, in any notation, one per line or comma)."""

    users = forms.MultipleChoiceField(required=False, label="Users")
    devices = forms.CharField(
        required=False,
        label="Devices (MAC addresses)",
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "00-15-65-12-34-56"}),
    )

    def __init__(self, *args, members, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["users"].choices = [
            (
                m.user.username,
                m.user.display_name
                if m.user.display_name == m.user.username
                else f"{m.user.display_name} ({m.user.username})",
            )
            for m in members
        ]

    def macs(self) -> list[str]:
        text = self.cleaned_data.get("devices", "")
        return [part.strip() for part in text.replace(",", "\n").splitlines() if part.strip()]
