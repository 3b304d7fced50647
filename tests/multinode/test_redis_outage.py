#!/usr/bin/python3
"""multinode.redis_outage: Redis goes away for 5 s and comes back on the same port.

3 nodes on one private Redis; on each node 2 subscribers of topic "t" and a publisher on /t.

  start    the nodes start before Redis: they listen, say "redis: unreachable" on stderr and
           /healthz degraded; once Redis is started, /healthz ok on each within 10 s;

  before   every node's publisher reaches every subscriber (the group works);
  outage   Redis is SIGKILLed. Every node's /healthz says degraded (200, X-Tether-Redis: down),
           its stderr says "redis: link down (", /metrics has tether_redis_up 0. The publisher
           on node 1 sends OUTAGE messages: node 1's subscribers get every one (local delivery
           never stops), the other nodes' none (they could not be shared);
  back     5 s after the kill Redis starts again on the same port; every /healthz says ok
           again within 15 s, tether_redis_up is 1; node 1's stderr says
           "redis: link up (node <id>); <OUTAGE> publishes during the outage reached this
           node's subscribers only" with the exact count; publishes from every node reach every
           subscriber on every node again, exactly once and in order.

    test_redis_outage.py --tether build/tether
"""
import asyncio
import re
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness as h  # noqa: E402

BEFORE = 50
OUTAGE = 200
AFTER = 100
OUTAGE_S = 5.0


async def everyone_gets(subs, expected, what, timeout=15):
    """Waits until every subscriber holds `expected` ({prefix: count} in total), then checks the
    sequences exactly."""
    total = sum(expected.values())
    done = await asyncio.gather(*(p.wait_count(total, timeout) for p in subs))
    await asyncio.sleep(0.5)  # room for duplicates to show up
    bad = []
    for p in subs:
        problems = h.check_sequences(p.msgs, expected)
        if problems:
            bad.append(f"{p.name}: {'; '.join(problems)}")
    h.check(all(done) and not bad, f"{what}: all {len(subs)} subscribers got the {total} messages "
            f"exactly once and in order" + (f" ({' | '.join(bad)})" if bad else ""))


async def body(tether):
    tmp = h.make_tmpdir("outage")
    redis = h.Redis(tmp)
    redis.port = h.free_port()
    # The nodes start first, with Redis not there yet: they serve, say so, and join when it is.
    nodes = h.start_nodes(tether, redis.url, tmp, ["1", "2", "3"])
    for n in nodes:
        m = n.wait_stderr(r"redis: unreachable", 3)
        h.check(bool(m) and h.health_state(n.port) == "degraded",
                f"node {n.name} started before Redis: stderr says 'redis: unreachable', /healthz "
                f"degraded ({h.health_state(n.port)!r})")
    t_start = time.monotonic()
    redis.start()
    up = h.wait_until(lambda: all(h.health_state(n.port) == "ok" for n in nodes), 10, 0.1)
    h.check(bool(up), f"Redis started: /healthz ok on each node within 10 s "
            f"({time.monotonic() - t_start:.2f} s)")
    have_metric = all(h.metric(n.port, "tether_redis_up") is not None for n in nodes)
    if have_metric:
        h.check(all(h.metric(n.port, "tether_redis_up") == 1 for n in nodes),
                "/metrics: tether_redis_up 1 on every node before the outage")
    else:
        print("NOTE: /metrics has no tether_redis_up sample on some node: metric checks skipped "
              f"({[h.metric(n.port, 'tether_redis_up') for n in nodes]})", flush=True)

    specs = []
    for i, n in enumerate(nodes, 1):
        specs += [(f"sub{i}a", n.url + "/t"), (f"sub{i}b", n.url + "/t"), (f"pub{i}", n.url + "/t")]
    peers = {p.name: p for p in await h.open_peers(specs)}
    subs = list(peers.values())  # publishers subscribe too
    node1_subs = [p for p in subs if p.name[3] == "1"]
    other_subs = [p for p in subs if p.name[3] != "1"]

    # Before: the group works.
    for i in (1, 2, 3):
        for k in range(1, BEFORE + 1):
            await peers[f"pub{i}"].send(f"before{i}-{k}")
    await everyone_gets(subs, {f"before{i}": BEFORE for i in (1, 2, 3)}, "before the outage")
    for p in subs:
        p.msgs.clear()

    # Outage.
    t_kill = time.monotonic()
    redis.kill()
    degraded = await asyncio.to_thread(
        h.wait_until, lambda: all(h.health_state(n.port) == "degraded" for n in nodes), 5)
    h.check(bool(degraded), f"/healthz degraded on every node within 5 s of the kill "
            f"({time.monotonic() - t_kill:.2f} s): "
            + ", ".join(f"{n.name}={h.health_state(n.port)!r}" for n in nodes))
    for n in nodes:
        m = n.wait_stderr(r"redis: link down \(", 2)
        h.check(bool(m), f"node {n.name} stderr says 'redis: link down (...)'"
                + ("" if m else f": {n.stderr_text()[-300:]!r}"))
    if have_metric:
        vals = [h.metric(n.port, "tether_redis_up") for n in nodes]
        h.check(vals == [0, 0, 0], f"/metrics: tether_redis_up 0 on every node during the outage ({vals})")

    t_send = time.monotonic()
    for k in range(1, OUTAGE + 1):
        await peers["pub1"].send(f"outage-{k}")
        if k % 20 == 0:
            await asyncio.sleep(0.05)  # spread over ~0.5 s
    got = await asyncio.gather(*(p.wait_count(OUTAGE, 3) for p in node1_subs))
    problems = [f"{p.name}: {h.check_sequences(p.msgs, {'outage': OUTAGE})}" for p in node1_subs
                if h.check_sequences(p.msgs, {"outage": OUTAGE})]
    h.check(all(got) and not problems,
            f"during the outage node 1's 3 subscribers got all {OUTAGE} messages published on "
            f"node 1, in order, in {time.monotonic() - t_send:.2f} s"
            + (f" ({' | '.join(problems)})" if problems else ""))
    # Still down: nothing reached the other nodes.
    await asyncio.sleep(0.3)
    h.check(all(not p.msgs for p in other_subs),
            "during the outage nodes 2 and 3 got none of them (they could not be shared): "
            + ", ".join(f"{p.name}={len(p.msgs)}" for p in other_subs))
    h.check(h.health_state(nodes[0].port) == "degraded" and redis.command("PING") is None,
            "Redis still down when the outage publishes were done")

    # Back, on the same port, 5 s after the kill.
    await asyncio.sleep(max(0.0, t_kill + OUTAGE_S - time.monotonic()))
    t_back = time.monotonic()
    await asyncio.to_thread(redis.start)
    h.check(True, f"Redis started again on port {redis.port} {t_back - t_kill:.1f} s after the kill")
    ok = await asyncio.to_thread(
        h.wait_until, lambda: all(h.health_state(n.port) == "ok" for n in nodes), 15, 0.1)
    h.check(bool(ok), f"/healthz ok again on every node within 15 s "
            f"({time.monotonic() - t_back:.2f} s): "
            + ", ".join(f"{n.name}={h.health_state(n.port)!r}" for n in nodes))
    if have_metric:
        vals = [h.metric(n.port, "tether_redis_up") for n in nodes]
        h.check(vals == [1, 1, 1], f"/metrics: tether_redis_up 1 again on every node ({vals})")

    # The "link up" that follows the outage's "link down" (the first one is from the start).
    up_re = (r"redis: link down \([^\n]*\n(?:[^\n]*\n)*?[^\n]*(redis: link up \(node [0-9a-f]+\)"
             r"(; (\d+) publishes during the outage reached this node's subscribers only)?)")
    m = nodes[0].wait_stderr(up_re, 2)
    line = m.group(1) if m else None
    h.check(bool(m) and m.group(3) == str(OUTAGE),
            f"node 1 stderr reports {OUTAGE} publishes that reached its subscribers only "
            f"(got {line!r})")
    for n in nodes[1:]:
        text = n.stderr_text()
        i = text.find("redis: link down (")
        text = text[i:] if i >= 0 else ""
        ups = re.findall(r"redis: link up \(node [0-9a-f]+\)[^\n\"]*", text)
        h.check(bool(ups) and "outage reached" not in ups[-1],
                f"node {n.name} stderr says 'redis: link up (node ...)' with no lost publishes "
                f"(got {ups[-1] if ups else None!r})")

    # After: everything is shared again.
    for p in subs:
        p.msgs.clear()
    for i in (1, 2, 3):
        for k in range(1, AFTER + 1):
            await peers[f"pub{i}"].send(f"after{i}-{k}")
    await everyone_gets(subs, {f"after{i}": AFTER for i in (1, 2, 3)}, "after Redis came back")

    h.check(all(p.closed is None for p in subs), "no client connection closed during the test: "
            + ", ".join(f"{p.name}={p.closed!r}" for p in subs if p.closed is not None))
    h.check(all(n.alive() for n in nodes), "all nodes still running")
    for n in nodes:
        h.note(f"node {n.name} stderr: " + " | ".join(
            l for l in n.stderr_text().splitlines() if "redis" in l)[:600])
    for p in subs:
        await p.close()
    h.stop_cluster(nodes, redis, tmp)


def main():
    h.main_with_tether("multinode.redis_outage", __doc__, body)


if __name__ == "__main__":
    main()
