#!/usr/bin/python3
"""multinode.resume_failover: SIGKILL of the node a resuming client is on loses no message.

Acceptance (issue 7): 10 runs out of 10 of each variant, `--runs 10`.

Per run, fresh: a private Redis and nodes A, B, C (`tether serve --mode pubsub --redis URL
--ping-interval 1s --ping-timeout 1s`).

  rotate   `tether connect --resume --json-events --ping-interval 1s --ping-timeout 1s
           --backoff-min 100ms --backoff-max 500ms ws://A/t ws://B/t`, stdin a pipe never written
           (so it never closes). Once it is open, a Python publisher on ws://C/t publishes "1" ..
           "10000" at 5,000 messages/s (it receives them too and drains them). When the client
           has printed 3,000 messages, node A is SIGKILLed. The client must reconnect to B (the
           next URL), print {"event":"resumed",...} (never resume_failed), and print exactly "1"
           .. "10000" in order: no gap, no duplicate (checked for 1 s after the last).
  restart  the same with the client given only ws://A/t; A is SIGKILLed at 3,000 and started
           again at once on the same port; the client comes back to the new A and resumes there.

    test_resume_failover.py --tether build/tether [--runs 10] [--variant rotate|restart|both]
"""
import argparse
import asyncio
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness as h  # noqa: E402

TOTAL = 10_000
RATE = 5_000          # messages per second
KILL_AT = 3_000       # messages printed by the client when A is killed
TICK = 0.01           # the publisher sends RATE * TICK messages every TICK seconds
FINISH_S = 30         # bound for the client to have everything after the kill
STALL_S = 5           # ... or to make progress once everything has been published

CLIENT_FLAGS = ["--resume", "--ping-interval", "1s", "--ping-timeout", "1s",
                "--backoff-min", "100ms", "--backoff-max", "500ms"]


async def publish_all(pub):
    """"1".."TOTAL" at RATE per second (paced against the clock, not the sleeps)."""
    t0 = time.monotonic()
    per_tick = int(RATE * TICK)
    sent = 0
    while sent < TOTAL:
        due = min(TOTAL, int((time.monotonic() - t0) / TICK + 1) * per_tick)
        while sent < due:
            sent += 1
            await pub.send(str(sent))
        await asyncio.sleep(TICK)
    return time.monotonic() - t0


def summarize(messages):
    """A short description of what is wrong with the client's messages (None if exact)."""
    want = [str(i) for i in range(1, TOTAL + 1)]
    if messages == want:
        return None
    nums = []
    bad = []
    for m in messages:
        (nums if isinstance(m, str) and m.isdigit() else bad).append(m)
    nums = [int(m) for m in nums]
    seen = set(nums)
    missing = [i for i in range(1, TOTAL + 1) if i not in seen]
    dups = len(nums) - len(seen)
    disorder = [(a, b) for a, b in zip(nums, nums[1:]) if b != a + 1]
    ranges = []
    for i in missing:
        if ranges and ranges[-1][1] == i - 1:
            ranges[-1][1] = i
        else:
            ranges.append([i, i])
    return (f"{len(messages)} messages; {len(missing)} missing "
            f"({', '.join(f'{a}-{b}' if a != b else str(a) for a, b in ranges[:8])}"
            f"{' ...' if len(ranges) > 8 else ''}); {dups} duplicates; "
            f"jumps {disorder[:6]}{' ...' if len(disorder) > 6 else ''}"
            + (f"; non-numeric {bad[:3]!r}" if bad else ""))


async def one_run(tether, variant, run):
    tag = f"{variant} run {run}"
    tmp = h.make_tmpdir(f"resume-{variant}-{run}")
    redis = h.Redis(tmp)
    ok = True
    try:
        await asyncio.to_thread(redis.start)
        a, b, c = await asyncio.to_thread(h.start_nodes, tether, redis.url, tmp, ["A", "B", "C"])
        up = await asyncio.to_thread(
            h.wait_until, lambda: all(h.health_state(n.port) == "ok" for n in (a, b, c)), 10)
        ok &= h.check(bool(up), f"{tag}: nodes A, B, C up with Redis (/healthz ok)")

        urls = [a.url + "/t", b.url + "/t"] if variant == "rotate" else [a.url + "/t"]
        client = await h.TetherConnect.start(tether, urls, *CLIENT_FLAGS)
        opened = await client.wait_for(lambda cl: cl.of_kind("open"), 5)
        ok &= h.check(bool(opened), f"{tag}: client open on A ({client.events[:2]})")
        # The subscription is made when the session's hello has been answered, right after the
        # open; give it a moment so that "1" is not published before it exists.
        await asyncio.sleep(0.5)

        pub = await h.Peer("publisher", c.url + "/t").open()
        pub_task = asyncio.create_task(publish_all(pub))

        reached = await client.wait_for(lambda cl: len(cl.messages) >= KILL_AT, 10)
        ok &= h.check(bool(reached), f"{tag}: client printed {KILL_AT} messages before the kill "
                      f"(got {len(client.messages)})")
        at_kill = len(client.messages)
        n_events = len(client.events)
        t_kill = time.monotonic()
        a.kill()
        restarted = None
        if variant == "restart":
            await asyncio.to_thread(a.start)
            restarted = time.monotonic() - t_kill

        # Everything within FINISH_S, or stop early once the publisher is done and the client
        # has printed nothing new for STALL_S (it will not get the rest).
        progress = [len(client.messages), time.monotonic()]

        def finished(cl):
            if len(cl.messages) >= TOTAL:
                return True
            if len(cl.messages) != progress[0]:
                progress[:] = [len(cl.messages), time.monotonic()]
            return pub_task.done() and time.monotonic() - progress[1] > STALL_S

        deadline = time.monotonic() + FINISH_S
        while not finished(client) and time.monotonic() < deadline:
            await client.wait_for(lambda cl: len(cl.messages) >= TOTAL, 0.5)
        done = len(client.messages) >= TOTAL
        t_done = time.monotonic() - t_kill
        publish_s = await asyncio.wait_for(pub_task, 10)
        await asyncio.sleep(1.0)  # duplicates after the last one would show up here

        after = client.events[n_events:]
        kinds = [e.get("event") for e in after if e.get("event") != "message"]
        resumed = [e for e in after if e.get("event") == "resumed"]
        failed = [e for e in after if e.get("event") == "resume_failed"]
        opens = [e for e in after if e.get("event") == "open"]
        closes = [e for e in after if e.get("event") == "close"]
        note = (f"killed A at {at_kill} printed{'' if restarted is None else f', restarted in {restarted * 1000:.0f} ms'}; "
                f"events after: {kinds[:12]}; opens {[o.get('url') for o in opens]}; "
                f"first close {closes[0] if closes else None}")
        print(f"  {tag}: {note}", flush=True)

        want_url = urls[1] if variant == "rotate" else urls[0]
        ok &= h.check(bool(opens) and opens[0].get("url") == want_url,
                      f"{tag}: the client reconnected to {'B (the next URL)' if variant == 'rotate' else 'the restarted A'} "
                      f"({[o.get('url') for o in opens]})")
        ok &= h.check(bool(resumed) and not failed,
                      f"{tag}: the client resumed its session ({resumed[:1]}), no resume_failed "
                      f"({failed[:1]})")
        problem = summarize(client.messages)
        ok &= h.check(bool(done) and problem is None,
                      f"{tag}: the client printed exactly \"1\"..\"{TOTAL}\" in order, once each, "
                      f"{'' if done else 'not '}within {t_done:.2f} s of the kill (publishing took "
                      f"{publish_s:.2f} s)"
                      + (f": {problem}" if problem else ""))
        ok &= h.check(client.proc.returncode is None, f"{tag}: the client is still running")
        pub_problem = h.check_sequences([f"p-{m}" for m in pub.msgs], {"p": TOTAL})
        ok &= h.check(not pub_problem, f"{tag}: the publisher on C received its own {TOTAL} "
                      f"messages in order" + (f": {pub_problem}" if pub_problem else ""))
        await client.kill()
        await pub.close()
        if not ok:
            for n in (a, b, c):
                tail = " | ".join(n.stderr_text().splitlines()[-6:])
                print(f"  node {n.name} stderr (last lines): {tail[:800]}", flush=True)
    finally:
        h.kill_all()  # this run's nodes, clients and Redis (earlier runs' are gone already)
        h.remove_tmpdir(tmp)
    return ok


async def body(tether, runs, variants):
    results = {v: 0 for v in variants}
    for v in variants:
        for run in range(1, runs + 1):
            t0 = time.monotonic()
            if await one_run(tether, v, run):
                results[v] += 1
            print(f"  {v} run {run}: {time.monotonic() - t0:.1f} s", flush=True)
    for v in variants:
        h.check(results[v] == runs, f"{v}: {results[v]} of {runs} runs lost no message")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tether", required=True)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--variant", choices=["rotate", "restart", "both"], default="both")
    a = ap.parse_args()
    variants = ["rotate", "restart"] if a.variant == "both" else [a.variant]
    # A run takes about 4 s when it passes, about 10 s when messages are lost, under 50 s at most.
    h.run_main("multinode.resume_failover", lambda: body(a.tether, a.runs, variants),
               watchdog_s=max(100, 50 * a.runs * len(variants)))


if __name__ == "__main__":
    main()
