"""How many replicas an AKS service needs, by the Azure ML troubleshooting guide's formula.

The guide (HTTP status code 503, "change the minimum number of replicas") sizes the pool as::

    replicas = ceil(target_rps * request_time / target_utilization / max_concurrent)

``target_rps * request_time`` is the number of requests in flight (Little's law); dividing by
the utilization target leaves the autoscaler room to react, and each replica serves
``max_concurrent`` requests at once. The settings printed are the parameters of azureml-core's
``AksWebservice.deploy_configuration``: ``autoscale_min_replicas``, ``autoscale_max_replicas``,
``autoscale_target_utilization`` (an int percentage, default 70) and
``replica_max_concurrent_requests`` (default 1), which the deployment JSON calls
``maxConcurrentRequestsPerContainer``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

from .errors import UsageError

__all__ = ["ReplicaPlan", "plan_replicas", "render_plan", "SPIKE_FACTOR"]

# autoscale_max_replicas covers a spike of this many times the target traffic with every
# replica fully busy (utilization 1.0): the autoscaler may use the whole pool, but no more.
SPIKE_FACTOR = 2


@dataclass(frozen=True)
class ReplicaPlan:
    """The inputs and the replica counts the guide's formula gives for them."""

    target_rps: float
    request_time: float  # seconds per request
    max_concurrent: int  # requests one replica serves at once
    target_utilization: float  # fraction in (0, 1]
    replicas: int  # autoscale_min_replicas
    max_replicas: int  # autoscale_max_replicas: SPIKE_FACTOR x traffic at utilization 1.0
    headroom: float  # 1 / target_utilization - 1: extra traffic the pool absorbs before it saturates

    @property
    def in_flight(self) -> float:
        """Requests being served at once at the target rate."""
        return self.target_rps * self.request_time

    @property
    def target_utilization_percent(self) -> int:
        """The utilization target as AksWebservice.deploy_configuration takes it."""
        return math.floor(self.target_utilization * 100 + 0.5)


def plan_replicas(
    target_rps: float,
    request_time: float,
    max_concurrent: int = 1,
    target_utilization: float = 0.7,
) -> ReplicaPlan:
    """Replicas for ``target_rps`` requests/s taking ``request_time`` s each; UsageError for bad numbers."""
    rps = _positive("target_rps (--target-rps)", target_rps, "requests per second")
    seconds = _positive("request_time (--request-time)", request_time, "seconds per request")
    concurrent = _whole(max_concurrent)
    utilization = _fraction(target_utilization)
    needed = rps * seconds / utilization / concurrent
    spike = SPIKE_FACTOR * rps * seconds / concurrent
    if not (math.isfinite(needed) and math.isfinite(spike)):
        raise UsageError(
            f"target_rps {target_rps!r} x request_time {request_time!r} is too large to plan for; "
            "pass the real numbers, e.g. --target-rps 20 --request-time 0.5"
        )
    replicas = _ceil(needed)
    return ReplicaPlan(
        target_rps=rps,
        request_time=seconds,
        max_concurrent=concurrent,
        target_utilization=utilization,
        replicas=replicas,
        max_replicas=max(replicas, _ceil(spike)),
        headroom=1 / utilization - 1,
    )


def render_plan(plan: ReplicaPlan) -> str:
    """The deployment settings to use, with how they were chosen."""
    percent = plan.target_utilization_percent
    headroom = round(plan.headroom * 100)
    lines = [
        f"For {plan.target_rps:g} requests/s taking {plan.request_time:g} s each "
        f"({plan.in_flight:g} in flight), {plan.max_concurrent} at a time per replica, "
        f"at {percent} % target utilization:",
        "",
        f"  autoscale_min_replicas={plan.replicas}",
        f"  autoscale_max_replicas={plan.max_replicas}"
        f"    (room for a {SPIKE_FACTOR}x traffic spike with every replica fully busy)",
        f"  autoscale_target_utilization={percent}    (percent, as AksWebservice.deploy_configuration takes it)",
        f"  max_concurrent_requests_per_container={plan.max_concurrent}"
        "    (replica_max_concurrent_requests in AksWebservice.deploy_configuration)",
        "",
    ]
    if headroom > 0:
        lines.append(
            f"At {percent} % target utilization the replicas have {headroom} % headroom: traffic can grow by "
            f"{headroom} % before every replica is busy, while the autoscaler adds more."
        )
    else:
        lines.append(
            "At 100 % target utilization there is no headroom: any rise in traffic finds every replica busy "
            "(HTTP 503) until the autoscaler adds more."
        )
    lines += [
        "",
        "  AksWebservice.deploy_configuration(",
        f"      autoscale_min_replicas={plan.replicas}, autoscale_max_replicas={plan.max_replicas},",
        f"      autoscale_target_utilization={percent}, replica_max_concurrent_requests={plan.max_concurrent})",
    ]
    return "\n".join(lines)


def _number(name: str, value: object, valid: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise UsageError(f"{name} must be {valid}; got {value!r}")
    return float(value)


def _positive(name: str, value: object, unit: str) -> float:
    valid = f"a number greater than 0 ({unit})"
    number = _number(name, value, valid)
    if not math.isfinite(number) or number <= 0:
        raise UsageError(f"{name} must be {valid}; got {value!r}")
    return number


def _whole(value: object) -> int:
    name, valid = "max_concurrent (--max-concurrent)", "a whole number of 1 or more (requests per replica)"
    number = _number(name, value, valid)
    if not math.isfinite(number) or number < 1 or not number.is_integer():
        raise UsageError(f"{name} must be {valid}; got {value!r}")
    return int(number)


def _fraction(value: object) -> float:
    name, valid = "target_utilization (--target-utilization)", "a fraction in (0, 1], e.g. 0.7 for 70 %"
    number = _number(name, value, valid)
    if not math.isfinite(number) or not 0 < number <= 1:
        hint = f"; did you mean {number / 100:g}?" if math.isfinite(number) and 1 < number <= 100 else ""
        raise UsageError(f"{name} must be {valid}; got {value!r}{hint}")
    return number


def _ceil(value: float) -> int:
    # 7 rps x 1 s / 0.7 is 10.000000000000002 in floating point: round away that noise before
    # rounding up, and never plan fewer than one replica.
    return max(1, math.ceil(round(value, 9)))
