"""Short, readable numbers for narrow panels: 4 significant digits, MiB/GiB, 1m05s, text bars."""

from __future__ import annotations

import math

BAR_FULL = "█"
BAR_EMPTY = "░"


def number(value: float | None, digits: int = 4) -> str:
    """A float with `digits` significant digits; "-" for None, "nan"/"inf" spelled out."""
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) >= 10 ** 6 or abs(value) < 10 ** -3):
        return f"{value:.{digits - 1}e}"
    return f"{value:,.{digits}g}" if abs(value) < 10 ** digits else f"{value:,.0f}"


def rate(value: float | None) -> str:
    """Samples per second, grouped: 41,230."""
    return "-" if value is None else f"{value:,.0f}"


def mib(value: float | None) -> str:
    """A memory size given in MiB: 812 MiB, 11.3 GiB."""
    if value is None:
        return "n/a"
    if value >= 1024:
        return f"{value / 1024:.1f} GiB"
    return f"{value:.0f} MiB"


def seconds(value: float | None) -> str:
    """1h02m, 3m05s, 12s: short and readable; "?" when unknown (the headless log and the app alike)."""
    if value is None or value != value or value == float("inf"):
        return "?"
    value = int(round(value))
    if value >= 3600:
        return f"{value // 3600}h{value % 3600 // 60:02d}m"
    if value >= 60:
        return f"{value // 60}m{value % 60:02d}s"
    return f"{value}s"


def bar(fraction: float | None, width: int) -> str:
    """A text bar `width` cells wide, filled to `fraction` (0..1); blank-filled when unknown."""
    if width <= 0:
        return ""
    if fraction is None or fraction != fraction:
        return BAR_EMPTY * width
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return BAR_FULL * filled + BAR_EMPTY * (width - filled)


def percent(value: float | None) -> str:
    """A percentage without decimals; "n/a" when unknown."""
    return "n/a" if value is None else f"{value:.0f}%"


def window(span: float) -> str:
    """The span a rate is measured over: "0.9s" under ten seconds, else as `seconds` writes it ("10s")."""
    return f"{span:.1f}s" if span < 9.95 else seconds(span)


def seconds_since(started_at: str) -> float | None:
    """Seconds since an ISO time a run recorded (its summary's `started_at`); None where it is unreadable."""
    from datetime import datetime

    try:
        return max(0.0, (datetime.now() - datetime.fromisoformat(started_at)).total_seconds())
    except (TypeError, ValueError):
        return None
