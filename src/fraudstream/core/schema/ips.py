"""IP addresses: IPv4 or IPv6 text, kept in canonical form."""

from __future__ import annotations

import ipaddress
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from fraudstream.core.schema.raw import _nulls, _Raw, _trimmed, _valid
from fraudstream.core.schema.results import _Errors, _type_name

_IPV4_OCTET: Final = r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4_RE: Final = rf"^({_IPV4_OCTET}\.){{3}}{_IPV4_OCTET}$"


def _canonical_ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _ips(raw: _Raw, errors: _Errors) -> pa.Array:
    if not raw.present.any():
        return _nulls(len(raw.present), pa.string())
    allowed = "IPv4 or IPv6 text, e.g. 203.0.113.7 or 2001:db8::1"
    text = _trimmed(raw)
    v4 = pc.match_substring_regex(text, _IPV4_RE)
    rest = pc.if_else(v4, pa.scalar(None, pa.string()), text)
    # IPv6 (and oddly written IPv4) is checked once per distinct value by the standard library.
    distinct = pc.unique(rest).drop_null()
    canonical = pa.array([_canonical_ip(s) for s in distinct.to_pylist()], pa.string())
    mapped = canonical.take(pc.index_in(rest, value_set=distinct))
    ip = pc.if_else(v4, text, mapped)
    errors.flag(raw.other | _valid(raw.number), "ip", _type_name, allowed, raw)
    errors.flag(_valid(raw.text) & ~_valid(ip), "ip", "is not an IP address", allowed, raw)
    return ip
