"""Operation ``salts.status``: which days have a visitor-hash salt (never the salt)."""

from __future__ import annotations

from typing import Any

from collector.operations import OperationContext, operation
from collector.privacy import SaltKeeper


@operation("salts.status")
def status(context: OperationContext) -> dict[str, Any]:
    """Destroys the salts past their day first, as the collector itself would."""
    keeper = SaltKeeper(context.store)
    destroyed = keeper.rotate()
    return {"destroyed_now": [day.isoformat() for day in destroyed],
            "days": [day.isoformat() for day in keeper.days_with_salts()]}
