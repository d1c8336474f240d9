from django import forms

from devices.models import DeviceModel


class DeviceForm(forms.Form):
    """Shapes the input; devices.services decides what is allowed."""

    mac = forms.CharField(
        label="MAC id",
        max_length=32,
        widget=forms.TextInput(attrs={"placeholder": "00-15-65-12-34-56", "autofocus": True}),
    )
    location = forms.CharField(label="Location", max_length=100)
    display_name = forms.CharField(label="Display name", max_length=100, required=False)
    model = forms.ModelChoiceField(
        label="Model",
        queryset=DeviceModel.objects.order_by("vendor", "model"),
        required=False,
        empty_label="Detect when it registers",
    )


class DeviceEditForm(DeviceForm):
    phone_number = forms.CharField(label="Phone number", max_length=32, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        del self.fields["mac"]


class ImportForm(forms.Form):
    file = forms.FileField(label="CSV file", widget=forms.FileInput(attrs={"accept": ".csv,.txt,text/csv"}))
