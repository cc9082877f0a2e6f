"""The one exception type a user can cause, and how it reaches them."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GankitError(Exception):
    """A mistake in the user's input: shown as one sentence, exit code 2, no traceback."""

    exit_code = 2


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate that looks most like `name`, or None when nothing is close."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.4)
    return matches[0] if matches else None


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """' Did you mean X?' for an error sentence, or '' when nothing is close."""
    match = closest(name, candidates)
    return f"; did you mean '{match}'?" if match else "."
