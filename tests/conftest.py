"""Shared fixtures: wait for conditions, never for fixed times (``tests.helpers.eventually``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.helpers import eventually


@pytest.fixture(name="eventually")
def eventually_fixture() -> Callable[..., Awaitable[None]]:
    return eventually
