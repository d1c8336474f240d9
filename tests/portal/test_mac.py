import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from portal.mac import InvalidMac, mac_digits, mac_fragment, normalize_mac


@pytest.mark.parametrize(
    "typed",
    ["00:15:65:12:34:56", "00-15-65-12-34-56", "0015.6512.3456", "001565123456", "00:15:65:12:34:56".upper(),
     " 00-15-65-12-34-56 ", "00:15:65:12:34:56".lower()],
)
def test_it_accepts_the_formats_people_type(typed):
    assert normalize_mac(typed) == "00-15-65-12-34-56"


@pytest.mark.parametrize(
    "typed",
    ["", "00-15-65-ZZ", "00:15:65:12:34", "00:15-65:12:34:56", "0015.6512.345", "0015651234567", "00 15 65 12 34 56",
     "00::15:65:12:34:56", None],
)
def test_it_rejects_anything_else_with_a_clear_message(typed):
    with pytest.raises(InvalidMac, match="is not a MAC address"):
        normalize_mac(typed)


@given(st.binary(min_size=6, max_size=6), st.sampled_from([":", "-", ""]), st.booleans())
def test_every_mac_round_trips_through_any_accepted_spelling(raw, separator, upper):
    pairs = [f"{b:02x}" for b in raw]
    typed = separator.join(pairs)
    typed = typed.upper() if upper else typed
    canonical = normalize_mac(typed)
    assert canonical == "-".join(pairs).upper()
    assert normalize_mac(canonical) == canonical
    assert mac_digits(canonical) == "".join(pairs)


@given(st.text(max_size=40))
def test_it_never_raises_anything_but_invalid_mac(text):
    with contextlib.suppress(InvalidMac):
        normalize_mac(text)


def test_a_search_fragment_is_reduced_to_its_hex_digits():
    assert mac_fragment("34:56") == "3456"
    assert mac_fragment("ab-cd") == "ABCD"
    assert mac_fragment("Lobby") is None
    assert mac_fragment("5") is None
