"""The hypothesis settings every rule test (issue 15's "the rules") shares."""

from __future__ import annotations

from hypothesis import HealthCheck, settings


def rule_settings(max_examples: int, *also: HealthCheck) -> settings:
    """``max_examples`` generated inputs, no deadline and no example database (each CI run
    tries fresh inputs), and the health checks that big generated inputs would trip off,
    plus ``also``."""
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.function_scoped_fixture,
            *also,
        ],
    )
