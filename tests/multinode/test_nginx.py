#!/usr/bin/python3
"""multinode.nginx: the nginx configuration of docs/deploy.md in front of 3 nodes and Redis.

The configuration is read from docs/deploy.md (between `<!-- nginx.conf begin -->` and
`<!-- nginx.conf end -->`), so the test runs exactly the documented text. It applies only the
documented substitutions (harness.instantiate_nginx_conf; it fails if one does not match):

  - `server 127.0.0.1:8081;` / `8082` / `8083` -> the three nodes' real ports;
  - `listen 80;` -> `listen 127.0.0.1:<free port>;`;
  - every `proxy_read_timeout Ns;` / `proxy_send_timeout Ns;` divided by 20 (60s -> 3000ms), and
    the nodes run with tether's default heartbeat divided by 20 as well (--ping-interval 1250ms
    --ping-timeout 1000ms), so the ratio the doc relies on is the one tested.

nginx runs as this user with its own prefix, pid file, logs and temp paths in a temp directory.
Checks: the documented timeouts follow the documented rule; upgrades pass through (101 with
the right Sec-WebSocket-Accept); /healthz reaches a node, /metrics is not published; clients
spread over the 3 nodes by least_conn and pub/sub works across them through the proxy; a
client that stays silent for 4 proxy_read_timeouts is kept open by the nodes' heartbeat,
while the same configuration in front of a node without heartbeat cuts a silent client after
proxy_read_timeout (so the timeout is really in force).

    test_nginx.py --tether build/tether
"""
import asyncio
import base64
import hashlib
import os
import re
import socket
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness as h  # noqa: E402

CLIENTS = 6
PER_CLIENT = 20
SILENCE_TIMEOUTS = 4  # the silent client stays silent this many proxy_read_timeouts


def raw_upgrade(port, path, timeout=5.0):
    """A hand-made upgrade request through nginx: (status line, headers, expected accept)."""
    key = base64.b64encode(os.urandom(16)).decode()
    accept = base64.b64encode(hashlib.sha1(
        (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
    with socket.create_connection((h.HOST, port), timeout=timeout) as s:
        s.sendall((f"GET {path} HTTP/1.1\r\nHost: example.test\r\nUpgrade: websocket\r\n"
                   f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                   f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
        buf = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in buf and time.monotonic() < deadline:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    lines = buf.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return lines[0], headers, accept


def opens_on(node, path):
    return len(re.findall(rf"\binfo open .*\bpath={re.escape(path)}\b", node.stderr_text()))


async def body(tether):
    tmp = h.make_tmpdir("nginx")
    doc = h.documented_nginx_conf()
    h.check(True, f"docs/deploy.md holds the nginx configuration between the markers "
            f"({len(doc.splitlines())} lines)")
    t = h.documented_timeouts_s(doc)
    ping_s = h.DOC_PING_INTERVAL_MS / 1000
    h.check(t.get("proxy_read_timeout", 0) >= 2 * ping_s and
            t.get("proxy_send_timeout", 0) >= 2 * ping_s,
            f"documented timeouts {t} are at least 2 x tether's default --ping-interval "
            f"({ping_s:g} s), the rule docs/deploy.md states")

    redis = h.Redis(tmp)
    redis.start()
    ping = f"{h.scaled_ms(h.DOC_PING_INTERVAL_MS)}ms"
    ping_to = f"{h.scaled_ms(h.DOC_PING_TIMEOUT_MS)}ms"
    nodes = h.start_nodes(tether, redis.url, tmp, ["1", "2", "3"],
                          ping_interval=ping, ping_timeout=ping_to)
    up = h.wait_until(lambda: all(h.health_state(n.port) == "ok" for n in nodes), 10)
    h.check(bool(up), f"3 nodes up (--ping-interval {ping} --ping-timeout {ping_to}), Redis linked")

    nginx = h.Nginx(tmp, "nginx")
    try:
        conf = h.instantiate_nginx_conf(doc, [n.port for n in nodes], nginx.port)
    except ValueError as e:
        h.check(False, f"the documented substitutions apply to docs/deploy.md's config: {e}")
        return
    nginx.start(conf)
    read_ms = h.scaled_ms(t["proxy_read_timeout"] * 1000)
    h.check(True, f"nginx started on port {nginx.port} with the documented config "
            f"(proxy_read_timeout scaled to {read_ms} ms)")

    # The control: the same config in front of a node that never pings (3 times the same node).
    silent_node = h.Node(tether, None, tmp, "silent", mode="echo", ping_interval="0",
                         ping_timeout="0").start()
    control = h.Nginx(tmp, "nginx-control")
    control.start(h.instantiate_nginx_conf(doc, [silent_node.port] * 3, control.port))

    # Upgrade through the proxy.
    status, headers, accept = await asyncio.to_thread(raw_upgrade, nginx.port, "/t")
    h.check(" 101 " in status + " " and headers.get("upgrade", "").lower() == "websocket"
            and headers.get("sec-websocket-accept") == accept,
            f"upgrade through nginx: {status!r}, Upgrade {headers.get('upgrade')!r}, "
            f"Sec-WebSocket-Accept {'right' if headers.get('sec-websocket-accept') == accept else headers.get('sec-websocket-accept')}")

    # /healthz passes through; /metrics is not published.
    st, hd, bd = h.http_get(nginx.port, "/healthz")
    h.check(st == 200 and bd.strip() == "ok", f"GET /healthz through nginx: {st} {bd.strip()!r}")
    st, _, _ = h.http_get(nginx.port, "/metrics")
    st_direct, _, _ = h.http_get(nodes[0].port, "/metrics")
    h.check(st == 404 and st_direct == 200,
            f"GET /metrics: {st} through nginx (not published), {st_direct} on a node directly")

    # Silent clients, opened first so that they run while the rest is checked.
    silent = await h.Peer("silent", f"ws://{h.HOST}:{nginx.port}/quiet").open()
    cut = await h.Peer("control", f"ws://{h.HOST}:{control.port}/quiet").open()
    t_silent = time.monotonic()

    # Pub/sub across the nodes through the proxy.
    before = [opens_on(n, "/room") for n in nodes]
    peers = []
    for i in range(CLIENTS):  # one at a time, so least_conn sees each connection
        peers.append(await h.Peer(f"c{i}", f"ws://{h.HOST}:{nginx.port}/room").open())
        await asyncio.sleep(0.05)
    await asyncio.to_thread(h.wait_until, lambda: sum(
        opens_on(n, "/room") for n in nodes) - sum(before) >= CLIENTS, 3)
    spread = [opens_on(n, "/room") - b for n, b in zip(nodes, before)]
    h.check(len(spread) == 3 and all(x >= 1 for x in spread) and sum(spread) == CLIENTS,
            f"{CLIENTS} clients through nginx spread over the 3 nodes by least_conn: {spread}")
    for k in range(1, PER_CLIENT + 1):
        for p in peers:
            await p.send(f"{p.name}-{k}")
    total = CLIENTS * PER_CLIENT
    done = await asyncio.gather(*(p.wait_count(total, 10) for p in peers))
    await asyncio.sleep(0.5)
    bad = [f"{p.name}: {h.check_sequences(p.msgs, {q.name: PER_CLIENT for q in peers})}"
           for p in peers if h.check_sequences(p.msgs, {q.name: PER_CLIENT for q in peers})]
    h.check(all(done) and not bad, f"pub/sub through nginx: each of the {CLIENTS} clients got all "
            f"{total} messages, once each, in order per sender" + (f" ({bad})" if bad else ""))

    # The silent ones.
    silence = SILENCE_TIMEOUTS * read_ms / 1000
    ended = await cut.wait_for(lambda p: p.closed is not None, silence)
    took = time.monotonic() - t_silent
    h.check(ended and read_ms / 1000 * 0.8 <= took <= read_ms / 1000 + 2,
            f"control: with no heartbeat the same config cuts a silent client after "
            f"{took:.2f} s (proxy_read_timeout {read_ms} ms; {cut.closed!r})")
    await silent.wait_for(lambda p: p.closed is not None,
                          max(0.0, t_silent + silence - time.monotonic()))
    held = time.monotonic() - t_silent
    h.check(silent.closed is None,
            f"a client silent for {held:.1f} s ({SILENCE_TIMEOUTS} x proxy_read_timeout) through "
            f"nginx is kept open by the node's heartbeat ({silent.closed!r})")
    listener = await h.Peer("listener", f"ws://{h.HOST}:{nginx.port}/quiet").open()
    await listener.send("still there?")
    got = await silent.wait_count(1, 5)
    h.check(got and silent.msgs[:1] == ["still there?"],
            f"... and still gets messages: {silent.msgs[:1]!r}")

    for p in peers + [silent, cut, listener]:
        await p.close()
    h.check(all(n.alive() for n in nodes), "all nodes still running")
    errors = [l for l in open(os.path.join(nginx.dir, "error.log"), errors="replace")
              if "[emerg]" in l or "[alert]" in l or "[crit]" in l]
    h.check(not errors, f"nginx error.log has no emerg/alert/crit lines ({errors[:2]})")
    h.stop_cluster(nodes, redis, tmp)


def main():
    h.main_with_tether("multinode.nginx", __doc__, body)


if __name__ == "__main__":
    main()
