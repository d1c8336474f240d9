"""Keyset ("cursor") pagination over any ordering whose last column is unique.

Each page is one indexed range query (`WHERE (sort, id) after the cursor LIMIT n + 1`), so page
10,000 costs what page 1 costs: no COUNT, no OFFSET. NULLs always sort last, in both directions
and on every database, so the same cursor means the same thing on SQLite and PostgreSQL."""

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import F, Q, QuerySet


class InvalidCursor(ValueError):
    pass


@dataclass
class Page:
    items: list
    next_cursor: str | None
    previous_cursor: str | None


def _field(model, path: str):
    """The model field at the end of a `related__field` path."""
    *relations, name = path.split("__")
    for relation in relations:
        model = model._meta.get_field(relation).related_model
    return model._meta.get_field(name)


def _nullable(model, path: str) -> bool:
    """Whether the path can be NULL: its field allows it, or a relation on the way may be missing
    (`model__vendor` of a device without a model is NULL though `vendor` is not nullable)."""
    for part in path.split("__"):
        field = model._meta.get_field(part)
        if field.null:
            return True
        model = field.related_model
    return False


def _value_of(obj, path: str) -> Any:
    for part in path.split("__"):
        if obj is None:
            return None
        obj = getattr(obj, part)
    return obj.pk if hasattr(obj, "_meta") else obj


def _encode(values: list, *, backwards: bool) -> str:
    payload = json.dumps({"v": values, "b": backwards}, default=str, separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def _decode(cursor: str, fields: list) -> tuple[list, bool]:
    try:
        payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        raw, backwards = payload["v"], bool(payload["b"])
        if not isinstance(raw, list) or len(raw) != len(fields):
            raise InvalidCursor("cursor does not match the sort order")
        return [None if v is None else f.to_python(v) for f, v in zip(fields, raw, strict=True)], backwards
    except (ValueError, KeyError, TypeError, binascii.Error, ValidationError) as exc:
        raise InvalidCursor("invalid cursor") from exc


def _after(ordering: list[tuple[str, bool]], values: list, nullable: list[bool], *, nulls_last: bool) -> Q:
    """Rows strictly after `values` in `ordering`, NULLs sorting last (or first, walking back)."""
    condition = Q(pk__in=[])
    equal_so_far = Q()
    for (path, descending), value, null in zip(ordering, values, nullable, strict=True):
        if value is not None:
            beyond = Q(**{f"{path}__{'lt' if descending else 'gt'}": value})
            if null and nulls_last:
                beyond |= Q(**{f"{path}__isnull": True})
            condition |= equal_so_far & beyond
            equal_so_far &= Q(**{path: value})
        else:
            if not nulls_last:
                condition |= equal_so_far & Q(**{f"{path}__isnull": False})
            equal_so_far &= Q(**{f"{path}__isnull": True})
    first_path, first_descending = ordering[0]
    if values[0] is not None and not nullable[0]:
        # Redundant, but lets the database start the index scan at the cursor.
        condition &= Q(**{f"{first_path}__{'lte' if first_descending else 'gte'}": values[0]})
    return condition


def keyset_page(queryset: QuerySet, *, ordering: list[str], cursor: str | None, page_size: int) -> Page:
    """`ordering` like `["-created_at", "-id"]`; the last entry must be unique."""
    parsed = [(o.lstrip("-"), o.startswith("-")) for o in ordering]
    fields = [_field(queryset.model, path) for path, _ in parsed]
    nullable = [_nullable(queryset.model, path) for path, _ in parsed]
    backwards = False
    if cursor:
        values, backwards = _decode(cursor, fields)
        walk = [(path, desc != backwards) for path, desc in parsed]
        queryset = queryset.filter(_after(walk, values, nullable, nulls_last=not backwards))
    else:
        walk = parsed
    nulls = {"nulls_first": True} if backwards else {"nulls_last": True}
    # NULLS FIRST/LAST only where a NULL can occur: on a NOT NULL column it changes nothing but
    # stops PostgreSQL from reading a plain index backwards (DESC means NULLS FIRST there).
    order_by = [
        (F(path).desc if desc else F(path).asc)(**(nulls if null else {}))
        for (path, desc), null in zip(walk, nullable, strict=True)
    ]
    rows = list(queryset.order_by(*order_by)[: page_size + 1])
    more = len(rows) > page_size
    rows = rows[:page_size]
    if backwards:
        rows.reverse()

    def cursor_at(obj, *, backwards: bool) -> str:
        return _encode([_value_of(obj, path) for path, _ in parsed], backwards=backwards)

    has_next = more if not backwards else bool(cursor)
    has_previous = bool(cursor) if not backwards else more
    return Page(
        items=rows,
        next_cursor=cursor_at(rows[-1], backwards=False) if rows and has_next else None,
        previous_cursor=cursor_at(rows[0], backwards=True) if rows and has_previous else None,
    )
