"""English names of the countries and regions the collector stores by code.

Visits keep ISO 3166 codes (``DE``, ``DE-BE``: collector.enrich.geo); the
``visit:country_name`` and ``visit:region_name`` dimensions show names instead, as
Plausible does. Both come from the ISO 3166 tables pycountry ships (Debian's iso-codes,
the source of Plausible's own names): a country by its common name where it has one
("Iran", not "Iran, Islamic Republic of"), a region by its ISO name ("Harjumaa").
"""

from __future__ import annotations

from functools import cache

import pycountry

# Codes in use that ISO 3166-1 has not assigned: user-assigned XK is Kosovo's.
EXTRA_COUNTRIES = {"XK": "Kosovo"}


@cache
def country_names() -> tuple[list[str], list[str]]:
    """Every country's alpha-2 code and its name, in the same order."""
    names = {country.alpha_2: getattr(country, "common_name", None) or country.name
             for country in pycountry.countries}
    return _columns({**names, **EXTRA_COUNTRIES})


@cache
def region_names() -> tuple[list[str], list[str]]:
    """Every ISO 3166-2 subdivision's code (``DE-BE``) and its name."""
    return _columns({region.code: region.name for region in pycountry.subdivisions})


def _columns(names: dict[str, str]) -> tuple[list[str], list[str]]:
    codes = sorted(names)
    return codes, [names[code] for code in codes]
