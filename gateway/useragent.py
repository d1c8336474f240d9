"""What a phone's User-Agent says about it: vendor, model, firmware and, for some, its MAC.

Plain Python (no Django), so the provisioning server and the SIP edge read phones the same way.
A string we do not recognise yields an empty PhoneAgent, never an error."""

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class PhoneAgent:
    vendor: str = ""
    model: str = ""
    firmware: str = ""
    mac: str = ""  # 12 hex digits, lower case, when the string carries it


_MAC = r"(?P<mac>[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}|[0-9A-Fa-f]{12})"

# (vendor as in the catalog, pattern); the model group is turned into the catalog's spelling.
_PATTERNS = [
    # Yealink SIP-T54W 96.86.0.70 00:15:65:12:34:56 / Yealink W60B 77.85.0.20
    ("Yealink", re.compile(rf"^Yealink\s+(?:SIP[- ])?(?P<model>[A-Za-z0-9]+)\s+(?P<fw>[0-9][\w.]*)(?:\s+{_MAC})?")),
    # PolycomVVX-VVX_450-UA/6.4.3.1234, PolycomRealPresenceTrio-Trio_8800-UA/7.2.2.1094
    ("Poly", re.compile(r"^Poly(?:com)?\w*-(?P<model>\w+)-UA/(?P<fw>[0-9][\w.]*)")),
    # Cisco-CP8841-3PCC/11.3.6 (00562b0d1234), Cisco-ATA191-MPP/11.2.1 (...)
    (
        "Cisco",
        re.compile(rf"^Cisco-(?:CP-?)?(?P<model>[A-Za-z0-9]+)(?:-3PCC|-MPP)?/(?P<fw>[0-9][\w.\-]*)(?:\s*\({_MAC}\))?"),
    ),
    # snomD735/10.1.73.16 (SIP), Mozilla/4.0 (compatible; snomD735-SIP 10.1.73.16) (HTTP)
    ("Snom", re.compile(rf"snom(?P<model>[A-Za-z0-9]+)(?:-SIP\s+|/)(?P<fw>[0-9][\w.]*)(?:\s+{_MAC})?")),
    # Gigaset N870 IP PRO/2.48.0
    ("Gigaset", re.compile(r"^Gigaset\s+(?P<model>[A-Za-z0-9][A-Za-z0-9 ]*?)\s*/(?P<fw>[0-9][\w.+\-]*)")),
    # AUDC-IPPhone/3.4.4.1000 (C450HD-Rev0; 00908F123456)
    (
        "AudioCodes",
        re.compile(rf"^AUDC-IPPhone/(?P<fw>[0-9][\w.]*)(?:\s*\((?P<model>[A-Za-z0-9]+?)(?:-Rev\w*)?;\s*{_MAC}\))?"),
    ),
]


def parse_user_agent(value: str) -> PhoneAgent:
    text = (value or "").strip()[:255]
    for vendor, pattern in _PATTERNS:
        match = pattern.search(text)
        if match is None:
            continue
        groups = match.groupdict()
        model = (groups.get("model") or "").replace("_", " ")
        mac = re.sub(r"[^0-9A-Fa-f]", "", groups.get("mac") or "").lower()
        return PhoneAgent(vendor=vendor, model=model, firmware=groups.get("fw") or "", mac=mac)
    return PhoneAgent()
