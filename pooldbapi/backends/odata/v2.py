"""What OData v2 says differently from v4: the version in $metadata, typed literals in $filter
and keys (datetime'...', guid'...', 1.5M, 7L), verbose JSON (`d`, `results`, `__next`,
`/Date(ms)/`, numbers as strings) and the error body. Pure functions, no HTTP."""
from __future__ import annotations

import base64
import datetime
import decimal
import json
import re
import uuid
import xml.etree.ElementTree as ET
from typing import Any

_SAP = "{http://www.sap.com/Protocols/SAPData}"
_DATE = re.compile(r"^/Date\((-?\d+)(?:([+-])(\d{4}))?\)/$")
_DURATION = re.compile(r"^P(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$")
_EPOCH = datetime.datetime(1970, 1, 1)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def version(root: ET.Element) -> int:
    """The OData version of a $metadata document: 4 (edmx Version 4.0/4.01) or 2 (1.0 with
    DataServiceVersion 1.0 or 2.0); anything else is a ValueError naming it."""
    given = root.get("Version", "")
    if given.startswith("4."):
        return 4
    for node in root.iter():
        if _local(node.tag) == "DataServices":
            service = next((v for k, v in node.attrib.items()
                            if _local(k) == "DataServiceVersion"), "")
            if given == "1.0" and service in ("", "1.0", "2.0"):
                return 2
            raise ValueError(f"OData version {service or given} (pooldbapi speaks 2 and 4)")
    raise ValueError(f"a $metadata document of version {given or 'unknown'}")


def schema(root: ET.Element) -> tuple[dict[str, dict[str, str]], dict[str, list[str]]]:
    """The properties of every entity set with their Edm types, and its key properties, from a
    $metadata document of either version. An Edm.DateTime shown as a date
    (sap:display-format="Date", v2's only way to say Edm.Date) is typed 'Edm.Date'."""
    types: dict[str, dict[str, str]] = {}
    keys: dict[str, list[str]] = {}
    for node in root.iter():
        if _local(node.tag) != "EntityType":
            continue
        name = node.get("Name", "")
        props: dict[str, str] = {}
        for prop in node:
            if _local(prop.tag) != "Property":
                continue
            edm = prop.get("Type", "")
            if edm == "Edm.DateTime" and prop.get(f"{_SAP}display-format") == "Date":
                edm = "Edm.Date"
            props[prop.get("Name", "")] = edm
        types[name] = props
        keys[name] = [r.get("Name", "") for r in node.iter() if _local(r.tag) == "PropertyRef"]
    sets_types, sets_keys = {}, {}
    for node in root.iter():
        if _local(node.tag) == "EntitySet":
            entity_type = (node.get("EntityType") or "").rsplit(".", 1)[-1]
            sets_types[node.get("Name", "")] = types.get(entity_type, {})
            sets_keys[node.get("Name", "")] = keys.get(entity_type, [])
    return sets_types, sets_keys


def _utc_naive(value: datetime.datetime) -> datetime.datetime:
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    return value


def _stamp(value: datetime.datetime) -> str:
    return _utc_naive(value).isoformat(timespec="milliseconds" if value.microsecond
                                       else "seconds")


def _duration(value: datetime.time) -> str:
    seconds = f"{value.second}.{value.microsecond:06d}" if value.microsecond else \
        f"{value.second:02d}"
    return f"PT{value.hour:02d}H{value.minute:02d}M{seconds}S"


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def literal(edm: str | None, value: Any) -> str:
    """Return a Python value as the v2 literal for a property of type `edm` (None: by the
    value's own type). Raises ValueError for a value that is no literal of that type."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if edm in ("Edm.Date", "Edm.DateTime"):
        if isinstance(value, str):
            value = datetime.datetime.fromisoformat(value)
        if isinstance(value, datetime.datetime):
            return f"datetime'{_stamp(value)}'"
        if isinstance(value, datetime.date):
            return f"datetime'{value.isoformat()}T00:00:00'"
        raise ValueError(f"{value!r} is no date or timestamp ({edm})")
    if edm == "Edm.DateTimeOffset" or edm is None and isinstance(value, datetime.datetime):
        if isinstance(value, str):
            value = datetime.datetime.fromisoformat(value)
        if not isinstance(value, datetime.datetime):
            raise ValueError(f"{value!r} is no timestamp ({edm})")
        if edm is None and value.tzinfo is None:
            return f"datetime'{_stamp(value)}'"
        return f"datetimeoffset'{_stamp(value)}Z'"
    if edm is None and isinstance(value, datetime.date):
        return f"datetime'{value.isoformat()}T00:00:00'"
    if edm == "Edm.Time" or edm is None and isinstance(value, datetime.time):
        if isinstance(value, str):
            value = datetime.time.fromisoformat(value)
        if not isinstance(value, datetime.time):
            raise ValueError(f"{value!r} is no time of day ({edm})")
        return f"time'{_duration(value)}'"
    if edm == "Edm.Guid" or edm is None and isinstance(value, uuid.UUID):
        text = str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
        if not isinstance(value, uuid.UUID) and text != str(value).lower():
            raise ValueError(f"{value!r} is no GUID")  # uuid.UUID also reads braces
        return f"guid'{text}'"
    if isinstance(value, int | float | decimal.Decimal):
        if not decimal.Decimal(value).is_finite():
            raise ValueError(f"{value!r} is no finite number")
        suffix = {"Edm.Decimal": "M", "Edm.Int64": "L", "Edm.Double": "d",
                  "Edm.Single": "f"}.get(edm or "")
        if edm is None and isinstance(value, decimal.Decimal):
            suffix = "M"
        if suffix is None:
            return str(value)
        number = str(decimal.Decimal(value) if suffix == "M" else value)
        if suffix == "L" and not isinstance(value, int):
            raise ValueError(f"{value!r} is no integer ({edm})")
        return number + suffix
    if isinstance(value, bytes):
        return f"binary'{value.hex()}'"
    return _quoted(str(value))


def filter_literal(types: dict[str, str]) -> Any:
    """The literal function of translate() for an entity set of these property types."""
    def lit(column: str, value: Any) -> str:
        return literal(types.get(column), value)
    return lit


STARTS = "startswith({}, {}) eq true"  # a v2 function returns a boolean to compare


def convert(value: Any, edm: str) -> Any:
    """Return a verbose-JSON value as the Python type of its Edm type."""
    if value is None:
        return None
    if edm == "Edm.Decimal":
        return decimal.Decimal(str(value))
    if edm in ("Edm.Int64", "Edm.Int32", "Edm.Int16", "Edm.Byte", "Edm.SByte") and \
            isinstance(value, str):
        return int(value)
    if edm in ("Edm.Double", "Edm.Single") and isinstance(value, str):
        return float(value)
    if edm in ("Edm.Date", "Edm.DateTime", "Edm.DateTimeOffset") and isinstance(value, str):
        found = _DATE.match(value)
        if found is None:  # an ISO text (some services, and v2's DateTimeOffset at times)
            stamp = datetime.datetime.fromisoformat(value)
        else:
            stamp = _EPOCH + datetime.timedelta(milliseconds=int(found.group(1)))
            if edm == "Edm.DateTimeOffset":
                offset = datetime.timedelta(minutes=int(found.group(3) or "0"))  # minutes
                sign = -1 if found.group(2) == "-" else 1
                stamp = stamp.replace(tzinfo=datetime.UTC).astimezone(
                    datetime.timezone(sign * offset))
        return stamp.date() if edm == "Edm.Date" else stamp
    if edm == "Edm.Time" and isinstance(value, str):
        found = _DURATION.match(value)
        if found is None:
            return value
        hours, minutes, seconds = (float(g or 0) for g in found.groups())
        whole = int(seconds)
        return datetime.time(int(hours), int(minutes), whole,
                             round((seconds - whole) * 1_000_000))
    if edm == "Edm.Binary" and isinstance(value, str):
        return base64.b64decode(value)
    return value


def json_value(value: Any, edm: str | None) -> Any:
    """Return a Python value as it goes into a verbose-JSON body for a property of `edm`."""
    if value is None or isinstance(value, bool):
        return value
    if edm in ("Edm.Date", "Edm.DateTime"):
        if isinstance(value, str):
            value = datetime.datetime.fromisoformat(value)
        if not isinstance(value, datetime.datetime):
            value = datetime.datetime(value.year, value.month, value.day)
        millis = (_utc_naive(value) - _EPOCH) // datetime.timedelta(milliseconds=1)
        return f"/Date({millis})/"
    if edm == "Edm.DateTimeOffset" and isinstance(value, datetime.datetime):
        return _stamp(value) + "Z"
    if edm == "Edm.Time" and isinstance(value, datetime.time):
        return _duration(value)
    if edm in ("Edm.Decimal", "Edm.Int64") and isinstance(value, int | float |
                                                           decimal.Decimal):
        return str(value)  # v2 sends these as strings (a double would lose digits)
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    return value


def page(payload: Any) -> tuple[list[dict[str, Any]], str | None]:
    """The rows and the next link of one page of a verbose-JSON answer (`d.results` and
    `d.__next`; `d` as a bare list in v1's form)."""
    inner = payload.get("d", payload) if isinstance(payload, dict) else payload
    if isinstance(inner, list):
        return inner, None
    return list(inner.get("results", [])), inner.get("__next")


def error_text(body: str) -> str | None:
    """The code and message of an OData error body of either version ({"error": {"code",
    "message": "..." (v4) or {"lang", "value"} (v2)}}), or None for any other body."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return None
    if not isinstance(error, dict):
        return None
    message = error.get("message")
    if isinstance(message, dict):
        message = message.get("value")
    if not isinstance(message, str):
        return None
    code = error.get("code")
    return f"{message} ({code})" if code else message
