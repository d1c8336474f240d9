"""What phones' User-Agent strings say about them."""

import pytest

from gateway.useragent import PhoneAgent, parse_user_agent


@pytest.mark.parametrize(
    ("user_agent", "expected"),
    [
        ("Yealink SIP-T54W 96.86.0.70 00:15:65:12:34:56", PhoneAgent("Yealink", "T54W", "96.86.0.70", "001565123456")),
        ("Yealink SIP-T46U 108.86.0.20", PhoneAgent("Yealink", "T46U", "108.86.0.20")),
        ("Yealink W60B 77.85.0.20 80:5E:C0:AA:BB:CC", PhoneAgent("Yealink", "W60B", "77.85.0.20", "805ec0aabbcc")),
        ("PolycomVVX-VVX_450-UA/6.4.3.1234", PhoneAgent("Poly", "VVX 450", "6.4.3.1234")),
        ("PolycomRealPresenceTrio-Trio_8800-UA/7.2.2.1094", PhoneAgent("Poly", "Trio 8800", "7.2.2.1094")),
        ("Cisco-CP8841-3PCC/11.3.6 (00562b0d1234)", PhoneAgent("Cisco", "8841", "11.3.6", "00562b0d1234")),
        ("Cisco-ATA191-MPP/11.2.1 (00562B0D1234)", PhoneAgent("Cisco", "ATA191", "11.2.1", "00562b0d1234")),
        ("Mozilla/4.0 (compatible; snomD735-SIP 10.1.73.16)", PhoneAgent("Snom", "D735", "10.1.73.16")),
        ("snomD735/10.1.73.16", PhoneAgent("Snom", "D735", "10.1.73.16")),
        ("Gigaset N870 IP PRO/2.48.0", PhoneAgent("Gigaset", "N870 IP PRO", "2.48.0")),
        ("Gigaset Maxwell 3/2.24.0", PhoneAgent("Gigaset", "Maxwell 3", "2.24.0")),
        (
            "AUDC-IPPhone/3.4.4.1000 (C450HD-Rev0; 00908F123456)",
            PhoneAgent("AudioCodes", "C450HD", "3.4.4.1000", "00908f123456"),
        ),
        ("AUDC-IPPhone/3.4.4.1000", PhoneAgent("AudioCodes", "", "3.4.4.1000")),
    ],
)
def test_it_reads_vendor_model_firmware_and_mac(user_agent, expected):
    assert parse_user_agent(user_agent) == expected


@pytest.mark.parametrize(
    "user_agent",
    ["", "curl/8.5.0", "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0", "Yealink", "Cisco-", "\x00\r\n" * 100],
)
def test_it_says_nothing_about_strings_it_does_not_know(user_agent):
    assert parse_user_agent(user_agent) == PhoneAgent()
