"""Text normalisation for identity search: no accents, upper case, single spaces."""

from __future__ import annotations

import re
import unicodedata

_SEPARATORS = re.compile(r"[\s\-'’`]+")


def fold(value: str | None) -> str:
    """'  Dupont-Élodie  d’Arc ' -> 'DUPONT ELODIE D ARC' (accent- and case-insensitive key)."""
    if not value:
        return ""
    decomposed = unicodedata.normalize("NFKD", value)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    stripped = stripped.replace("Œ", "OE").replace("œ", "oe").replace("Æ", "AE").replace("æ", "ae")
    return _SEPARATORS.sub(" ", stripped).strip().upper()


def prefix_upper_bound(prefix: str) -> str:
    """Smallest string greater than every string starting with ``prefix`` (byte order)."""
    return prefix + "\U0010ffff" if prefix else "\U0010ffff"
