"""Screen width → a coarse class.

Exact screen sizes are never kept (PRIVACY: "exact screen size never kept"): combined with
other fields they narrow a visitor down, while four classes are all reports need.
Breakpoints follow common CSS frameworks (Bootstrap's 576 / 992 px, a 1440 px desktop):

    width < 576 → "mobile",  < 992 → "tablet",  < 1440 → "laptop",  otherwise "desktop"
"""

from __future__ import annotations

MOBILE = "mobile"
TABLET = "tablet"
LAPTOP = "laptop"
DESKTOP = "desktop"

MOBILE_BELOW = 576
TABLET_BELOW = 992
LAPTOP_BELOW = 1440


def screen_class(width: int | None) -> str:
    """The class of a CSS pixel width (see module docstring); "" when unknown."""
    # Exact screen size is never stored: only this class leaves the function.
    if not width or width <= 0:
        return ""
    if width < MOBILE_BELOW:
        return MOBILE
    if width < TABLET_BELOW:
        return TABLET
    if width < LAPTOP_BELOW:
        return LAPTOP
    return DESKTOP
