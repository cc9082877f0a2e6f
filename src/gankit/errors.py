"""The one exception type a user can cause, and how it reaches them."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class GankitError(Exception):
    """A mistake in the user's input: shown as one sentence, exit code 2, no traceback."""

    exit_code = 2


class Diverged(GankitError):
    """Training produced a non-finite loss or weight and could not (or may not) roll back."""

    exit_code = 3


class Stopped(Exception):
    """A signal asked the run to stop; it finished its step and saved. Not a mistake: exit 128 + signal."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate that looks most like `name`, or None when nothing is close."""
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.4)
    return matches[0] if matches else None


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """' Did you mean X?' for an error sentence, or '' when nothing is close."""
    match = closest(name, candidates)
    return f"; did you mean '{match}'?" if match else "."
