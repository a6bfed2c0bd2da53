"""The routed-relay loop: plan, send, and after a failed hop avoid it and try once more."""

from qkdnet.node.errors import NoKeyPath, RelayError
from qkdnet.node.relay.result import RelayResult, Route
from qkdnet.node.routing import LinkState, LiveState, RoutePlanner, RouteRequest, make_strategy

# s-a-t is the short way; s-b-c-t the long one.
LINKS = [("s", "a"), ("a", "t"), ("s", "b"), ("b", "c"), ("c", "t")]


def _planner(retries=1):
    live = LiveState([LinkState(u, v, 1.0, 10_000, sendable_bits={u: 5000, v: 5000}) for u, v in LINKS], "sabct")
    return RoutePlanner(make_strategy("fewest_hops"), live, retries)


def _sender(fail_on=()):
    sent = []

    async def send(paths):
        sent.append(paths)
        route = Route.of(paths)
        for u, v in fail_on:
            if any((u, v) in zip(p, p[1:], strict=False) for p in route.paths):
                return RelayResult.failed(route.source, route.destination, paths, RelayError(f"{u}->{v}: no", (u, v)))
        return RelayResult(route.source, route.destination, route.paths, ("k",), 0.0, 256 * route.hops)
    return send, sent


async def test_a_delivered_relay_takes_one_attempt():
    send, sent = _sender()
    result = await _planner().relay(RouteRequest("s", "t"), send)
    assert result.ok and result.attempts == 1 and sent == [[["s", "a", "t"]]] and result.link_bits_consumed == 512


async def test_a_failed_hop_is_avoided_on_the_retry():
    send, sent = _sender(fail_on=[("a", "t")])
    planner = _planner()
    result = await planner.relay(RouteRequest("s", "t"), send)
    assert result.ok and result.attempts == 2 and result.paths == (("s", "b", "c", "t"),)
    assert sent[0] == [["s", "a", "t"]] and not planner.live.links[frozenset(("a", "t"))].up


async def test_blocked_when_no_route_exists_and_failed_when_retries_run_out():
    planner = _planner()
    for u, v in (("s", "a"), ("s", "b")):
        planner.live.mark_down(u, v)
    send, sent = _sender()
    blocked = await planner.relay(RouteRequest("s", "t"), send)
    assert blocked.outcome == "blocked" and blocked.attempts == 0 and sent == []
    assert blocked.failure.kind == NoKeyPath.__name__

    send, sent = _sender(fail_on=[("a", "t"), ("c", "t")])
    failed = await _planner(retries=1).relay(RouteRequest("s", "t"), send)
    assert failed.outcome == "failed" and failed.attempts == 2 and failed.failure.failed_hop == ("c", "t")

    send, _ = _sender(fail_on=[("a", "t"), ("c", "t")])
    planner = _planner(retries=5)
    failed = await planner.relay(RouteRequest("s", "t"), send)  # no third way: the last error stands
    assert failed.outcome == "failed" and failed.attempts == 2 and failed.failure.failed_hop == ("c", "t")


async def test_refresh_runs_after_a_failure():
    send, _ = _sender(fail_on=[("a", "t")])
    refreshed = []

    async def refresh():
        refreshed.append(True)
    await _planner().relay(RouteRequest("s", "t"), send, refresh)
    assert refreshed == [True]
