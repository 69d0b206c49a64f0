"""amldebug.replicas: the troubleshooting guide's replica formula and the settings it prints."""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import pytest

from amldebug.errors import UsageError
from amldebug.replicas import ReplicaPlan, plan_replicas, render_plan


def test_guide_example():
    # targetRps = 20, reqTime = 10, maxReqPerContainer = 1, targetUtilization = .7 -> ceil(285.71)
    plan = plan_replicas(20, 10, max_concurrent=1, target_utilization=0.7)
    assert plan.replicas == 286
    assert plan.max_replicas == 400  # 2 x 20 x 10 at utilization 1.0
    assert plan.headroom == pytest.approx(0.428571, abs=1e-6)
    assert (plan.target_rps, plan.request_time, plan.max_concurrent, plan.target_utilization) == (20, 10, 1, 0.7)


def test_defaults_are_one_request_per_replica_at_70_percent():
    plan = plan_replicas(20, 10)
    assert plan.max_concurrent == 1
    assert plan.target_utilization == 0.7
    assert plan.replicas == 286


@pytest.mark.parametrize(
    ("args", "replicas"),
    [
        ((1, 0.5), 1),  # 0.71 -> 1
        ((10, 1, 3, 0.5), 7),  # 6.67 -> 7
        ((20, 10, 4), 72),  # 71.4 -> 72
        ((3, 0.2, 1, 0.5), 2),  # 1.2 -> 2
    ],
)
def test_rounds_up(args, replicas):
    assert plan_replicas(*args).replicas == replicas


def test_exact_results_are_not_rounded_up_by_float_noise():
    assert math.ceil(7 * 0.3 / 0.7) == 4  # 3.0000000000000004 in floating point
    assert plan_replicas(7, 0.3).replicas == 3
    assert math.ceil(6 * 0.2 / 0.3) == 5  # 4.000000000000001
    assert plan_replicas(6, 0.2, target_utilization=0.3).replicas == 4


def test_at_full_utilization_there_is_no_headroom():
    plan = plan_replicas(7, 1, target_utilization=1.0)
    assert plan.replicas == 7
    assert plan.headroom == 0


def test_a_tiny_load_still_gets_one_replica():
    assert plan_replicas(0.001, 0.001).replicas == 1


def test_max_replicas_covers_a_doubled_load_and_never_falls_below_min():
    assert plan_replicas(20, 10, max_concurrent=4).max_replicas == 100
    plan = plan_replicas(1, 1, target_utilization=0.1)  # 10 replicas for the load, 2 for the spike
    assert plan.replicas == 10
    assert plan.max_replicas == 10


def test_plan_is_frozen():
    plan = plan_replicas(20, 10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.replicas = 1  # type: ignore[misc]


def test_accepts_integral_float_concurrency_and_fractions():
    assert plan_replicas(Fraction(20), 10, max_concurrent=2.0).max_concurrent == 2


@pytest.mark.parametrize("value", [0, -1, -0.5, math.nan, math.inf, -math.inf, "20", None, True])
def test_rejects_bad_target_rps(value):
    with pytest.raises(UsageError, match=r"target_rps \(--target-rps\) must be a number greater than 0") as info:
        plan_replicas(value, 1)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize("value", [0, -2, math.nan, math.inf, "0.5", None, False])
def test_rejects_bad_request_time(value):
    with pytest.raises(UsageError, match=r"request_time \(--request-time\) must be a number greater than 0") as info:
        plan_replicas(20, value)
    assert repr(value) in str(info.value)


@pytest.mark.parametrize("value", [0, -1, 1.5, 0.5, math.nan, math.inf, "2", None, True])
def test_rejects_bad_max_concurrent(value):
    with pytest.raises(UsageError, match=r"max_concurrent \(--max-concurrent\) must be a whole number of 1 or more"):
        plan_replicas(20, 1, max_concurrent=value)


@pytest.mark.parametrize("value", [0, -0.7, 1.01, 1e9, math.nan, math.inf, "0.7", None])
def test_rejects_bad_target_utilization(value):
    expected = r"target_utilization \(--target-utilization\) must be a fraction in \(0, 1\]"
    with pytest.raises(UsageError, match=expected) as info:
        plan_replicas(20, 1, target_utilization=value)
    assert repr(value) in str(info.value)


def test_a_percentage_given_as_utilization_gets_a_hint():
    with pytest.raises(UsageError, match=r"got 70; did you mean 0\.7\?"):
        plan_replicas(20, 1, target_utilization=70)


def test_numbers_too_large_to_plan_are_a_usage_error():
    with pytest.raises(UsageError, match="too large to plan for"):
        plan_replicas(1e308, 1e308)


# ---- render_plan


def test_render_prints_the_settings_for_the_guide_example():
    text = render_plan(plan_replicas(20, 10))
    lines = text.splitlines()
    assert lines[0] == (
        "For 20 requests/s taking 10 s each (200 in flight), 1 at a time per replica, at 70 % target utilization:"
    )
    assert "  autoscale_min_replicas=286" in lines
    assert any(line.startswith("  autoscale_max_replicas=400    (room for a 2x traffic spike") for line in lines)
    assert any(line.startswith("  autoscale_target_utilization=70    (percent") for line in lines)
    assert any(
        line.startswith("  max_concurrent_requests_per_container=1    (replica_max_concurrent_requests") for line in lines
    )
    assert "the replicas have 43 % headroom: traffic can grow by 43 % before every replica is busy" in text
    assert "autoscale_target_utilization=70, replica_max_concurrent_requests=1)" in text


def test_render_uses_integer_percent_and_the_plans_numbers():
    text = render_plan(plan_replicas(12, 0.25, max_concurrent=2, target_utilization=0.55))
    assert "  autoscale_min_replicas=3" in text.splitlines()  # 12 x 0.25 / 0.55 / 2 = 2.7
    assert "autoscale_target_utilization=55 " in text
    assert "82 % headroom" in text  # 1 / 0.55 - 1


def test_render_says_when_there_is_no_headroom():
    text = render_plan(plan_replicas(7, 1, target_utilization=1))
    assert "there is no headroom" in text
    assert "autoscale_target_utilization=100 " in text


def test_render_accepts_a_plan_built_by_hand():
    plan = ReplicaPlan(5, 2, 1, 0.5, replicas=20, max_replicas=20, headroom=1.0)
    assert "100 % headroom" in render_plan(plan)
