"""Operation ``demo.generate``: realistic synthetic traffic for a site."""

from __future__ import annotations

from typing import Any

from collector.errors import InvalidField
from collector.operations import OperationContext, operation
from collector.reports.demo import generate as generate_traffic
from collector.sites import domain_of


@operation("demo.generate")
def generate(context: OperationContext, site: str = "demo.example", events: int = 1_000_000,
             days: int = 90, seed: int = 1) -> dict[str, Any]:
    """About ``events`` events over the last ``days`` days; the same seed, the same traffic."""
    domain = domain_of(site, "site")
    for name, value in (("events", events), ("days", days)):
        if value < 1:
            raise InvalidField("must be at least 1", name)

    def progress(done: int, total: int, seconds: float) -> None:
        context.progress(done, total, "events")

    result = generate_traffic(context.store, domain, events, days, seed, progress=progress)
    return {"site": domain, "events": result.events, "visits": result.visits, "days": days,
            "seconds": round(result.seconds, 3),
            "events_per_second": round(result.events_per_second)}
