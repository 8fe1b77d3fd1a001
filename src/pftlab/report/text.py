"""Text that goes into figures: names from the user's data shown literally (no matplotlib import here)."""

from __future__ import annotations


def plain(text: object) -> str:
    """`text` as matplotlib shows it literally: every '$' escaped, so a name from the user's data (a client,
    domain, class or method name such as 'cost $ (US$)' or '$\\frac$') is never parsed as mathtext, which
    would fail the whole figure or garble the label. A leading '_' (which hides a legend entry) gets a space.
    """
    out = str(text).replace("$", "\\$")
    return " " + out if out.startswith("_") else out
