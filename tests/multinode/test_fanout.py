#!/usr/bin/python3
"""multinode.fanout: topic publishes reach every subscriber on every node exactly once.

3 nodes (`tether serve --mode pubsub --redis URL`) on one private Redis. On each node: 2
subscribers of topic "t", 1 publisher also on /t (so it is a subscriber too), and 1 subscriber
of topic "u". The 3 publishers send 500 numbered messages each ("n<node>-<i>") at the same
time. Each of the 9 connections on /t must receive exactly 1,500 messages: every one once, and
each publisher's in its order. The /u subscribers receive none of them.

    test_fanout.py --tether build/tether
"""
import asyncio
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness as h  # noqa: E402

PER_PUBLISHER = 500


async def body(tether):
    tmp = h.make_tmpdir("fanout")
    redis = h.Redis(tmp)
    redis.start()
    nodes = h.start_nodes(tether, redis.url, tmp, ["1", "2", "3"])
    ok = h.wait_until(lambda: all(h.health_state(n.port) == "ok" for n in nodes), 10)
    h.check(bool(ok), "3 nodes up with their Redis link (/healthz ok on each): "
            + ", ".join(f"{n.name}={h.health_state(n.port)}" for n in nodes))

    # Redis was reachable from the start: no node may claim otherwise.
    for n in nodes:
        bad = [l for l in n.stderr_text().splitlines() if "redis: unreachable" in l]
        h.check(not bad, f"node {n.name}: no 'redis: unreachable' line while Redis is reachable"
                + (f" (got {bad[0]!r})" if bad else ""))

    specs = []
    for i, n in enumerate(nodes, 1):
        specs += [(f"sub{i}a", n.url + "/t"), (f"sub{i}b", n.url + "/t"),
                  (f"pub{i}", n.url + "/t"), (f"u{i}", n.url + "/u")]
    peers = {p.name: p for p in await h.open_peers(specs)}
    on_t = [p for name, p in peers.items() if not name.startswith("u")]
    on_u = [p for name, p in peers.items() if name.startswith("u")]
    h.check(len(on_t) == 9 and len(on_u) == 3, "12 connections open (9 on /t, 3 on /u)")

    async def publish(i):
        pub = peers[f"pub{i}"]
        for k in range(1, PER_PUBLISHER + 1):
            await pub.send(f"n{i}-{k}")

    t0 = time.monotonic()
    await asyncio.gather(*(publish(i) for i in (1, 2, 3)))
    total = 3 * PER_PUBLISHER
    done = await asyncio.gather(*(p.wait_count(total, 20) for p in on_t))
    took = time.monotonic() - t0
    h.check(all(done), f"every /t connection got {total} messages within 20 s "
            f"(counts: {[len(p.msgs) for p in on_t]}; {took:.2f} s)")
    await asyncio.sleep(1.0)  # anything extra (a duplicate) would arrive in this second
    expected = {f"n{i}": PER_PUBLISHER for i in (1, 2, 3)}
    for p in on_t:
        problems = h.check_sequences(p.msgs, expected)
        h.check(not problems, f"{p.name}: {len(p.msgs)} messages, each of the 3 publishers' 500 "
                f"exactly once and in order" + (f": {'; '.join(problems)}" if problems else ""))
    for p in on_u:
        h.check(not p.msgs, f"{p.name} (topic u): received nothing published to t "
                f"(got {len(p.msgs)}, first {p.msgs[:3]!r})")
    h.check(all(p.closed is None for p in peers.values()),
            "no connection closed during the test: "
            + ", ".join(f"{p.name}={p.closed!r}" for p in peers.values() if p.closed is not None))
    h.check(all(n.alive() for n in nodes), "all nodes still running")
    for p in peers.values():
        await p.close()
    h.stop_cluster(nodes, redis, tmp)


def main():
    h.main_with_tether("multinode.fanout", __doc__, body)


if __name__ == "__main__":
    main()
