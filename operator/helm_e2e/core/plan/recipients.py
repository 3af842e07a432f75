"""Who a suite may send its report to (pure): well-formed addresses in the allowed domains only.

A namespace writer controls `report.to`; without this check the operator would mail test logs to any
address on the internet. Problems name the list index and the rule, never the address.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

# A plain addr-spec: no display name, comments, quotes, whitespace, CR/LF or list separators.
_LOCAL = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
_DOMAIN = r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"(?P<local>{_LOCAL})@(?P<domain>{_DOMAIN})")
MAX_ADDRESS = 254


def address_domain(address: str) -> str | None:
    """The lower-case domain of a well-formed plain address, else None."""
    match = _ADDRESS.fullmatch(address) if len(address) <= MAX_ADDRESS else None
    return match["domain"].lower() if match else None


def normalize_domains(domains: Iterable[str]) -> frozenset[str]:
    return frozenset(d.strip().lower().lstrip("@") for d in domains if d.strip())


def check_recipients(
    addresses: Sequence[str], *, allowed_domains: frozenset[str], field: str = "report.to"
) -> str | None:
    """None when every address is well formed and in an allowed domain; else a one-line problem."""
    allowed = normalize_domains(allowed_domains)
    for i, address in enumerate(addresses):
        domain = address_domain(address)
        if domain is None:
            return f"{field}[{i}]: not a plain e-mail address"
        if domain not in allowed:
            return f"{field}[{i}]: domain is not allowed (HELM_E2E_MAIL_ALLOWED_DOMAINS)"
    return None
