"""Reads over the catalogs: the search a therapist types into (admin autocomplete and lists).

A catalog row is found by any word of its name, code or aliases (`catalog_data/*.yaml`:
Latin names, common words such as "calf", spaced pinyin, English point names), and by
the names of the row it hangs on (a muscle by its region, a protocol by its structure).
Point codes are found however they are typed: "GB34", "gb 34", "GB-34"; "GB3" lists
GB30 to GB39. Accents are ignored ("Yánglíngquán").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from django.db.models import Case, IntegerField, Q, QuerySet, Value, When

SEARCH_FIELDS = ("name", "code", "aliases")
_CODE = re.compile(r"^(?P<meridian>[A-Za-z]{2})[\s._-]*(?P<number>\d{1,2})$")
_EXTRA_CODE = re.compile(r"^EX[\s._-]*(?P<area>HN|CA|B|UE|LE)[\s._-]*(?P<number>\d{1,2})$", re.IGNORECASE)


def search_words(term: str) -> list[str]:
    """The words of a typed search, without accents or stray punctuation."""
    plain = unicodedata.normalize("NFKD", term)
    # Control characters (a NUL is refused by PostgreSQL) and combining accents are dropped.
    plain = "".join(
        char for char in plain if not unicodedata.combining(char) and not unicodedata.category(char).startswith("C")
    )
    return [word for word in re.split(r"[\s,;/]+", plain.strip()) if word]


def point_code(term: str) -> str | None:
    """The WHO code a search looks like ("gb 34" -> "GB34", "ex le 4" -> "EX-LE4"), else None."""
    term = term.strip()
    if match := _EXTRA_CODE.match(term):
        return f"EX-{match['area'].upper()}{match['number']}"
    if match := _CODE.match(term):
        return f"{match['meridian'].upper()}{match['number']}"
    return None


def catalog_search(queryset: QuerySet, term: str, *, related: Sequence[str] = ()) -> QuerySet:
    """Rows of `queryset` matching every word of `term`, best first.

    `related` names foreign keys whose row's name and aliases also count ("region" for a
    muscle finds the calf muscles by "calf"). Rank: the code typed, then a name that starts
    with the term, then any other match; ties keep the catalog's own order.
    """
    words = search_words(term)
    if not words:
        return queryset
    fields = [*SEARCH_FIELDS, *(f"{fk}__{name}" for fk in related for name in ("name", "aliases"))]
    matches = Q()
    for word in words:
        matches &= _any_field(fields, word)
    code = point_code(term) or point_code("".join(words))
    if code is not None:
        matches |= Q(code__istartswith=code)
    phrase = " ".join(words)
    rank = Case(
        When(code__iexact=code or phrase, then=Value(0)),
        When(name__istartswith=phrase, then=Value(1)),
        When(aliases__icontains=phrase, then=Value(2)),
        default=Value(3),
        output_field=IntegerField(),
    )
    ordering = [str(name) for name in (queryset.query.order_by or queryset.model._meta.ordering or ["pk"])]
    return queryset.filter(matches).annotate(search_rank=rank).order_by("search_rank", *ordering)


def _any_field(fields: Sequence[str], word: str) -> Q:
    condition = Q()
    for field in fields:
        condition |= Q(**{f"{field}__icontains": word})
    return condition
