#!/usr/bin/python3
"""TLS interop: tether over wss:// against python3-websockets and Python's ssl module (OpenSSL).

A throw-away PKI is made at test time with the `openssl` command in a temporary directory:
  root.pem            test root CA (the only thing the peers trust)
  int.pem             intermediate CA signed by the root
  chain.pem           leaf (DNS:localhost, IP:127.0.0.1, signed by the intermediate) + intermediate
  wrong_chain.pem     leaf for DNS:wrong.example only (same intermediate) + intermediate
  leaf_only.pem       the localhost leaf without its intermediate
  self.pem            self-signed localhost/127.0.0.1 certificate nobody trusts

Groups (--group):
  serve    `tether serve --tls-cert chain.pem --tls-key server.key` <- python clients: the
           listening line says wss://; echo text/binary 0..1 MiB; close codes; https GET /healthz
           and /tether.js; TLS 1.2-only and ALPN clients; a client trusting another CA fails (and
           tether logs the alert), a plain ws:// client, garbage bytes and a client dying
           mid-message fail cleanly while tether keeps serving; 20 parallel clients; SIGTERM
  connect  python websockets TLS servers -> `tether connect wss://... --echo --json-events`:
           echo round trip by name and by IP (SNI checked), and verification failures (hostname
           and IP mismatch, unknown issuer, self-signed, missing intermediate, plain server)
           reported as close events with cause handshake_failed and exit status 1; --insecure
Every case prints PASS/FAIL; every wait is bounded; exit status 1 on any failure.
"""

import asyncio
import http.client
import json
import os
import re
import signal
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

from common import (STEP_TIMEOUT, HarnessError, Report, TetherConnect, binary_payload, close_writer,
                    compare_messages, event_message_value, require_websockets, text_payload, wait_eof)

websockets = require_websockets()

CONNECT_OPTS = dict(max_size=None, ping_interval=None, close_timeout=STEP_TIMEOUT,
                    open_timeout=STEP_TIMEOUT, compression=None)
SIZES = [0, 1, 125, 126, 65535, 65536, 1024 * 1024]
CLOSE_CODES = [1000, 1001, 1003, 1008, 1011, 3000, 4999]
BIG_TIMEOUT = 15.0


# ---------------------------------------------------------------- PKI (openssl CLI)

def openssl(*args, cwd):
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise HarnessError(f"openssl {' '.join(args)} failed: {proc.stderr.strip()[-500:]}")


CA_EXT = """basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid:always
"""
LEAF_EXT = """basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
subjectAltName={san}
"""
EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def make_pki(d):
    """Writes the files named in the module docstring into directory `d`; returns {name: path}."""
    d = Path(d)
    (d / "ca.ext").write_text(CA_EXT)
    (d / "leaf.ext").write_text(LEAF_EXT.format(san="DNS:localhost,IP:127.0.0.1"))
    (d / "wrong.ext").write_text(LEAF_EXT.format(san="DNS:wrong.example"))
    openssl("req", "-x509", *EC_KEY, "-keyout", "root.key", "-out", "root.pem", "-days", "2",
            "-subj", "/CN=tether interop test root CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    openssl("req", "-new", *EC_KEY, "-keyout", "int.key", "-out", "int.csr",
            "-subj", "/CN=tether interop test intermediate CA", cwd=d)
    openssl("x509", "-req", "-in", "int.csr", "-CA", "root.pem", "-CAkey", "root.key", "-set_serial", "2",
            "-days", "2", "-out", "int.pem", "-extfile", "ca.ext", cwd=d)
    for name, ext, serial in (("server", "leaf.ext", "3"), ("wrong", "wrong.ext", "4")):
        openssl("req", "-new", *EC_KEY, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", "/CN=tether interop test server", cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "int.pem", "-CAkey", "int.key",
                "-set_serial", serial, "-days", "2", "-out", f"{name}.pem", "-extfile", ext, cwd=d)
    (d / "chain.pem").write_text((d / "server.pem").read_text() + (d / "int.pem").read_text())
    (d / "wrong_chain.pem").write_text((d / "wrong.pem").read_text() + (d / "int.pem").read_text())
    (d / "leaf_only.pem").write_text((d / "server.pem").read_text())
    # Self-signed: a leaf that is its own issuer (CA:FALSE), nobody trusts it.
    openssl("req", "-x509", *EC_KEY, "-keyout", "self.key", "-out", "self.pem", "-days", "2",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-addext", "basicConstraints=critical,CA:FALSE", cwd=d)
    return {
        "root": str(d / "root.pem"), "chain": str(d / "chain.pem"), "server_key": str(d / "server.key"),
        "wrong_chain": str(d / "wrong_chain.pem"), "wrong_key": str(d / "wrong.key"),
        "leaf_only": str(d / "leaf_only.pem"), "self": str(d / "self.pem"), "self_key": str(d / "self.key")}


def client_ctx(cafile, **kw):
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


def server_ctx(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


# ---------------------------------------------------------------- tether serve over TLS

class TlsServe:
    """`tether serve ... --tls-cert --tls-key`, stdout drained, stderr lines collected."""

    def __init__(self, proc, line):
        self.proc = proc
        self.line = line
        m = re.fullmatch(r"listening (wss?)://(\S+):(\d+)", line)
        self.scheme, self.host, self.port = (m.group(1), m.group(2), int(m.group(3))) if m else (None, None, 0)
        self.stderr = []
        self.stderr_changed = asyncio.Event()
        self._tasks = [asyncio.ensure_future(self._drain_stdout()), asyncio.ensure_future(self._read_stderr())]

    @classmethod
    async def start(cls, tether, args, timeout=10.0):
        try:
            proc = await asyncio.create_subprocess_exec(
                tether, "serve", "--host", "127.0.0.1", "--port", "0", "--mode", "echo", *args,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        except OSError as exc:
            raise HarnessError(f"cannot start {tether}: {exc}") from exc
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout)
        except asyncio.TimeoutError:
            line = b""
        text = line.decode("utf-8", "replace").rstrip("\n")
        if not re.fullmatch(r"listening wss?://\S+:\d+", text):
            err = b""
            if proc.returncode is None:
                proc.kill()
            try:
                err = await asyncio.wait_for(proc.stderr.read(), 2.0)
            except asyncio.TimeoutError:
                pass
            await proc.wait()
            raise HarnessError(f"first stdout line of tether serve is {text!r} (exit status {proc.returncode}, "
                               f"stderr {err.decode(errors='replace').strip()[-300:]!r})")
        return cls(proc, text)

    async def _drain_stdout(self):
        while await self.proc.stdout.readline():
            pass

    async def _read_stderr(self):
        while True:
            line = await self.proc.stderr.readline()
            if not line:
                return
            self.stderr.append(line.decode("utf-8", "replace").rstrip("\n"))
            self.stderr_changed.set()

    async def wait_stderr(self, pattern, since, timeout):
        """The first stderr line from index `since` on matching `pattern`, or None after `timeout`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for line in self.stderr[since:]:
                if re.search(pattern, line, re.I):
                    return line
            remaining = deadline - loop.time()
            if remaining <= 0:
                return None
            self.stderr_changed.clear()
            try:
                await asyncio.wait_for(self.stderr_changed.wait(), remaining)
            except asyncio.TimeoutError:
                pass

    async def kill(self):
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        for t in self._tasks:
            t.cancel()


async def wss_connect(url, ctx, **kw):
    # "localhost" is what the certificate names and what SNI says, but the TCP connection goes
    # to 127.0.0.1: a minimal Debian root has no /etc/hosts, so "localhost" may not resolve.
    if "://localhost:" in url:
        kw.setdefault("host", "127.0.0.1")
        kw.setdefault("server_hostname", "localhost")
    return await asyncio.wait_for(websockets.connect(url, ssl=ctx, **CONNECT_OPTS, **kw), STEP_TIMEOUT)


async def roundtrip(ws, message, timeout=STEP_TIMEOUT):
    await ws.send(message)
    return compare_messages(message, await asyncio.wait_for(ws.recv(), timeout))


async def serve_echo_sizes(report, server, ctx):
    url = f"wss://localhost:{server.port}/"
    ws = await wss_connect(url, ctx)
    ssl_obj = ws.transport.get_extra_info("ssl_object")
    report.ok("python client (trusting only the test root CA) connects to wss://localhost "
              "(the intermediate is sent by tether)", f"{ssl_obj.version()}, {ssl_obj.cipher()[0]}")
    for size in SIZES:
        for kind, payload in (("text", text_payload(size)), ("binary", binary_payload(size))):
            big = size > 100000
            if not await report.run(f"wss echo {kind} {size} bytes",
                                    roundtrip(ws, payload, BIG_TIMEOUT if big else STEP_TIMEOUT),
                                    (BIG_TIMEOUT if big else STEP_TIMEOUT) + 1):
                ws.transport.abort()
                ws = await wss_connect(url, ctx)

    async def ping():
        waiter = await ws.ping(b"tls ping")
        await asyncio.wait_for(waiter, STEP_TIMEOUT)
    await report.run("wss ping gets its pong", ping())
    await ws.close(1000)
    report.check("wss close 1000 is echoed", ws.close_rcvd is not None and ws.close_rcvd.code == 1000,
                 f"close frame received back: {ws.close_rcvd}")


async def serve_by_ip(server, ctx):
    ws = await wss_connect(f"wss://127.0.0.1:{server.port}/", ctx)
    try:
        return await roundtrip(ws, "by IP address: é€😀")
    finally:
        await ws.close()


async def close_with(server, ctx, code):
    ws = await wss_connect(f"wss://localhost:{server.port}/", ctx)
    await ws.close(code, f"closing with {code}")
    if ws.close_rcvd is None or ws.close_rcvd.code != code:
        return f"close frame received back: {ws.close_rcvd}, expected code {code}"
    return None


class _HTTPSTo127(http.client.HTTPSConnection):
    """HTTPS with the certificate name (and SNI) `host` over a TCP connection to 127.0.0.1
    (no dependence on "localhost" resolving: a minimal Debian root has no /etc/hosts)."""

    def connect(self):
        sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def https_get(port, ctx, path, host="localhost"):
    conn = _HTTPSTo127(host, port, context=ctx, timeout=STEP_TIMEOUT)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type", ""), resp.read()
    finally:
        conn.close()


async def in_thread(fn, *args, timeout=STEP_TIMEOUT + 2):
    return await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(None, fn, *args), timeout)


async def https_healthz(server, ctx):
    status, ctype, body = await in_thread(https_get, server.port, ctx, "/healthz")
    if status != 200:
        return f"GET /healthz over https gave {status} {body[:100]!r}"
    return None


async def https_tether_js(server, ctx):
    status, ctype, body = await in_thread(https_get, server.port, ctx, "/tether.js", "127.0.0.1")
    problems = []
    if status != 200:
        problems.append(f"status {status}")
    if "javascript" not in ctype:
        problems.append(f"Content-Type {ctype!r}")
    if b"TetherSocket" not in body:
        problems.append(f"body ({len(body)} bytes) does not mention TetherSocket")
    return "; ".join(problems) or None


async def tls12_only(server, root):
    ctx = client_ctx(root, maximum_version=ssl.TLSVersion.TLSv1_2)
    ws = await wss_connect(f"wss://localhost:{server.port}/", ctx)
    try:
        version = ws.transport.get_extra_info("ssl_object").version()
        if version != "TLSv1.2":
            return f"negotiated {version}"
        return await roundtrip(ws, b"\x00tls1.2\xff" * 1000)
    finally:
        await ws.close()


async def alpn_http11(server, root):
    ctx = client_ctx(root)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    ws = await wss_connect(f"wss://localhost:{server.port}/", ctx)
    try:
        alpn = ws.transport.get_extra_info("ssl_object").selected_alpn_protocol()
        if alpn != "http/1.1":
            return f"ALPN selected {alpn!r}, expected 'http/1.1'"
        return await roundtrip(ws, "alpn")
    finally:
        await ws.close()


async def alpn_h2_only(server, root):
    """A client offering only h2 must get a fatal no_application_protocol alert (RFC 7301 §3.2)."""
    ctx = client_ctx(root)
    ctx.set_alpn_protocols(["h2"])
    try:
        ws = await wss_connect(f"wss://localhost:{server.port}/", ctx)
    except ssl.SSLError as exc:
        if "no application protocol" in str(exc).lower() or "NO_APPLICATION_PROTOCOL" in str(exc):
            return None
        return f"failed with {exc!r}, expected a no_application_protocol alert"
    await ws.close()
    return "connected although the client offered only h2"


def blocking_tls_handshake(port, ctx, host="localhost"):
    """A blocking ssl socket, so the client's alert surely goes out before the TCP close (asyncio's
    SSL transport aborts the connection on a failed handshake, dropping the alert)."""
    with socket.create_connection(("127.0.0.1", port), timeout=STEP_TIMEOUT) as sock:
        with ctx.wrap_socket(sock, server_hostname=host) as tls:
            return tls.version()


async def wrong_ca_client(server, other_ca):
    """A client trusting only another CA must fail verification; tether logs the alert it gets."""
    since = len(server.stderr)
    try:
        version = await in_thread(blocking_tls_handshake, server.port, client_ctx(other_ca))
    except ssl.SSLCertVerificationError as exc:
        detail = exc.verify_message
    else:
        return f"the handshake succeeded ({version}) although the client does not trust the server's CA"
    logged = await server.wait_stderr(r"unknown ca", since, 3.0)
    if logged is None:
        return (f"client failed as expected ({detail}), but tether serve logged no 'unknown ca' alert on "
                f"stderr within 3 s (stderr since: {server.stderr[since:]})")
    print(f"note: tether serve logged: {logged}", flush=True)
    return None


async def wrong_ca_client_async(server, other_ca):
    """The same with python websockets (asyncio drops the alert): the client fails, nothing more."""
    try:
        ws = await wss_connect(f"wss://localhost:{server.port}/", client_ctx(other_ca))
    except ssl.SSLCertVerificationError:
        return None
    await ws.close()
    return "the handshake succeeded although the client does not trust the server's CA"


async def plain_ws_client(server):
    """ws:// (no TLS) to the wss port: the client fails promptly, tether drops the connection."""
    since = len(server.stderr)
    try:
        ws = await asyncio.wait_for(websockets.connect(f"ws://127.0.0.1:{server.port}/", **CONNECT_OPTS),
                                    STEP_TIMEOUT)
    except asyncio.TimeoutError:
        return f"the plain client's handshake got no answer within {STEP_TIMEOUT:g} s"
    except (websockets.exceptions.InvalidHandshake, websockets.exceptions.InvalidMessage, OSError, EOFError) as exc:
        logged = await server.wait_stderr(r".", since, 1.0)
        print(f"note: plain ws:// client failed with {type(exc).__name__}: {exc}; tether logged: {logged}",
              flush=True)
        return None
    await ws.close()
    return "a plain ws:// handshake succeeded on the TLS port"


async def plain_http_get(server):
    """Plain HTTP to the TLS port: the response (if any) is not a 200, the socket ends."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", server.port), STEP_TIMEOUT)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        data = b""
        try:
            data = await asyncio.wait_for(reader.read(4096), STEP_TIMEOUT)
        except ConnectionResetError:
            pass
        if data.startswith(b"HTTP/1.1 200"):
            return f"got a plaintext 200 on the TLS port: {data[:80]!r}"
        if data and not await wait_eof(reader, STEP_TIMEOUT):
            return f"connection not closed within {STEP_TIMEOUT:g} s after answering {data[:20]!r}"
        return None
    finally:
        close_writer(writer)


async def garbage_bytes(server):
    """A bogus TLS record: tether closes the TCP connection within the step timeout."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", server.port), STEP_TIMEOUT)
    try:
        writer.write(b"\x16\x03\x01\x00\x05hello" + bytes(range(256)))
        if not await wait_eof(reader, STEP_TIMEOUT):
            return f"tether kept the connection open {STEP_TIMEOUT:g} s after garbage"
        return None
    finally:
        close_writer(writer)


async def dies_mid_message(server, ctx):
    """A client that announces a 4 MiB frame, sends half of it and aborts TCP."""
    ws = await wss_connect(f"wss://localhost:{server.port}/", ctx)
    # Write the frame by hand through the TLS transport: header + the first 2 MiB.
    key = os.urandom(4)
    head = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", 4 * 1024 * 1024) + key
    ws.transport.write(head + b"\x00" * (2 * 1024 * 1024))
    await asyncio.sleep(0.3)
    ws.transport.abort()
    return None


async def parallel_clients(server, ctx, n=20):
    async def one(i):
        ws = await wss_connect(f"wss://localhost:{server.port}/", ctx)
        try:
            for j in range(3):
                problem = await roundtrip(ws, binary_payload(65536 + i * 7 + j), BIG_TIMEOUT)
                if problem:
                    return f"client {i}: {problem}"
            return None
        finally:
            await ws.close()
    results = await asyncio.gather(*(one(i) for i in range(n)), return_exceptions=True)
    problems = [str(r) for r in results if r is not None]
    return "; ".join(problems[:3]) or None


async def sigterm(report, server, ctx):
    ws = await wss_connect(f"wss://localhost:{server.port}/", ctx)
    problem = await roundtrip(ws, "before SIGTERM")
    if problem:
        report.fail("SIGTERM: connection echoes before the signal", problem)
    loop = asyncio.get_running_loop()
    start = loop.time()
    server.proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(ws.wait_closed(), 5.0)
    except asyncio.TimeoutError:
        pass
    got = ws.close_rcvd.code if ws.close_rcvd else None
    report.check("SIGTERM: the open wss client receives close 1012", got == 1012,
                 f"close frame {ws.close_rcvd}, closed={ws.closed}")
    try:
        rc = await asyncio.wait_for(server.proc.wait(), max(0.1, 5.0 - (loop.time() - start)))
    except asyncio.TimeoutError:
        rc = None
    report.check("SIGTERM: tether serve (TLS) exits 0 within 5 s", rc == 0,
                 "still running 5 s after SIGTERM" if rc is None else f"exit status {rc}")


async def serve_group(report, tether, pki):
    try:
        server = await TlsServe.start(tether, ["--tls-cert", pki["chain"], "--tls-key", pki["server_key"]])
    except HarnessError as exc:
        report.fail("start tether serve --tls-cert --tls-key", str(exc))
        return
    try:
        report.check("tether serve --tls-cert prints 'listening wss://127.0.0.1:PORT'",
                     server.scheme == "wss" and server.host == "127.0.0.1" and server.port > 0,
                     f"first line {server.line!r}")
        ctx = client_ctx(pki["root"])
        bystander = await wss_connect(f"wss://localhost:{server.port}/", ctx)
        await report.run("bystander wss connection echoes", roundtrip(bystander, "hello over TLS"))
        await serve_echo_sizes(report, server, ctx)
        await report.run("wss://127.0.0.1 works (IP SAN, hostname check on)", serve_by_ip(server, ctx))
        for code in CLOSE_CODES:
            await report.run(f"wss close code {code} is echoed", close_with(server, ctx, code), STEP_TIMEOUT * 2)
        await report.run("https GET /healthz (http.client) gives 200", https_healthz(server, ctx))
        await report.run("https GET /tether.js by IP gives 200 JavaScript", https_tether_js(server, ctx))
        await report.run("TLS 1.2-only client connects and echoes", tls12_only(server, pki["root"]))
        await report.run("ALPN [h2, http/1.1]: http/1.1 selected, echo works", alpn_http11(server, pki["root"]))
        await report.run("ALPN [h2] only: fatal no_application_protocol alert", alpn_h2_only(server, pki["root"]))
        await report.run("client trusting another CA fails verification; tether logs the alert",
                         wrong_ca_client(server, pki["self"]), STEP_TIMEOUT * 2)
        await report.run("python websockets client trusting another CA fails verification",
                         wrong_ca_client_async(server, pki["self"]), STEP_TIMEOUT * 2)
        await report.run("plain ws:// client to the TLS port fails promptly", plain_ws_client(server),
                         STEP_TIMEOUT * 2)
        await report.run("plain HTTP GET to the TLS port gets no 200, connection ends", plain_http_get(server),
                         STEP_TIMEOUT * 3)
        await report.run("garbage bytes: tether closes the TCP connection", garbage_bytes(server),
                         STEP_TIMEOUT * 2)
        await report.run("client aborting TCP in the middle of a 4 MiB frame", dies_mid_message(server, ctx))
        await report.run("20 parallel wss clients each echo 3 x 64 KiB", parallel_clients(server, ctx), 30)
        await report.run("bystander still echoes after all the failed clients",
                         roundtrip(bystander, binary_payload(100000)))
        await report.run("a new wss connection is served after all the failed clients",
                         serve_by_ip(server, ctx))
        await bystander.close()
        await sigterm(report, server, ctx)
        if server.proc.returncode not in (None, 0):
            report.fail("tether serve exit status", f"{server.proc.returncode}")
    finally:
        await server.kill()
        if server.stderr:
            print("note: tether serve stderr:\n  " + "\n  ".join(server.stderr[-15:]), flush=True)


# ---------------------------------------------------------------- tether connect over TLS

class PyTlsServer:
    """A python websockets server on 127.0.0.1 with one certificate; each connection's result
    (a list of problems, or the exception) goes into `results`."""

    def __init__(self, ctx, plain=False):
        self.ctx = None if plain else ctx
        self.results = asyncio.Queue()
        self.sni = []
        self.server = None
        self.port = 0
        if self.ctx is not None:
            self.ctx.sni_callback = lambda obj, name, c: self.sni.append(name)

    async def start(self):
        self.server = await websockets.serve(self.handler, "127.0.0.1", 0, ssl=self.ctx, max_size=None,
                                             ping_interval=None, compression=None, close_timeout=STEP_TIMEOUT)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def handler(self, ws, path=None):
        problems = []
        sent = []
        try:
            for msg in ("héllo over TLS 😀", b"", binary_payload(100000), text_payload(1024 * 1024)):
                await ws.send(msg)
                sent.append(msg)
                got = await asyncio.wait_for(ws.recv(), BIG_TIMEOUT)
                p = compare_messages(msg, got)
                if p:
                    problems.append(p)
            await ws.close(1000, "tls done")
        except Exception as exc:  # noqa: BLE001 - reported as the connection's result
            problems.append(f"{type(exc).__name__}: {exc}")
        await self.results.put((problems, sent))

    async def close(self):
        self.server.close()
        await asyncio.wait_for(self.server.wait_closed(), STEP_TIMEOUT)


async def start_connect(tether, url, *extra, echo=True):
    args = [url, "--json-events", "--no-reconnect", *extra] + (["--echo"] if echo else [])
    try:
        proc = await asyncio.create_subprocess_exec(
            tether, "connect", *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, limit=64 * 1024 * 1024)
    except OSError as exc:
        raise HarnessError(f"cannot start {tether}: {exc}") from exc
    return TetherConnect(proc)


async def connect_echo(tether, server, url, *extra, sni=None):
    """tether connect to a python server that sends 4 messages and closes 1000."""
    sni_before = len(server.sni)
    client = await start_connect(tether, url, *extra)
    problems = []
    try:
        try:
            server_problems, sent = await asyncio.wait_for(server.results.get(), BIG_TIMEOUT)
        except asyncio.TimeoutError:
            server_problems, sent = [f"the server saw no completed connection within {BIG_TIMEOUT:g} s"], []
        problems += [f"server side: {p}" for p in server_problems]
        rc = await client.wait_exit(STEP_TIMEOUT)
        opens = client.of_kind("open")
        closes = client.of_kind("close")
        messages = [event_message_value(e) for e in client.of_kind("message")]
        if len(opens) != 1:
            problems.append(f"{len(opens)} open events")
        if [m for m in messages] != sent:
            problems.append(f"JSON message events ({len(messages)}) differ from the {len(sent)} messages sent")
        want = {"code": 1000, "clean": True, "cause": "remote_close"}
        if len(closes) != 1 or any(closes[0].get(k) != v for k, v in want.items()):
            problems.append(f"close events {closes}, expected one with {want}")
        if rc != 0:
            problems.append(f"exit status {rc}")
        if sni is not None or url.startswith("wss://127."):
            got_sni = server.sni[sni_before:]
            if got_sni != [sni]:
                problems.append(f"SNI sent {got_sni}, expected [{sni!r}]")
        if client.bad_lines:
            problems.append(f"non-JSON stdout lines {client.bad_lines[:2]}")
        return "; ".join(problems) or None
    finally:
        await client.kill()


async def connect_fails(tether, port, host, pattern, *extra, scheme="wss", echo=True):
    """tether connect must report cause handshake_failed with a reason matching `pattern`, exit 1."""
    client = await start_connect(tether, f"{scheme}://{host}:{port}/", *extra, echo=echo)
    try:
        rc = await client.wait_exit(STEP_TIMEOUT * 2)
        closes = client.of_kind("close")
        problems = []
        if client.of_kind("open"):
            problems.append("an open event was printed")
        if len(closes) != 1:
            problems.append(f"{len(closes)} close events ({client.events})")
        else:
            ev = closes[0]
            if ev.get("cause") != "handshake_failed":
                problems.append(f"cause {ev.get('cause')!r}, expected 'handshake_failed'")
            if not re.search(pattern, ev.get("reason", ""), re.I):
                problems.append(f"reason {ev.get('reason')!r} does not match /{pattern}/i")
            if ev.get("clean") is not False:
                problems.append(f"clean is {ev.get('clean')!r}")
            print(f"note: close event: {json.dumps(ev)}", flush=True)
        if rc != 1:
            problems.append(f"exit status {rc}, expected 1")
        return "; ".join(problems) or None
    finally:
        await client.kill()


async def bad_ca_file(tether, port):
    client = await start_connect(tether, f"wss://localhost:{port}/", "--ca", "/nonexistent/ca.pem")
    try:
        rc = await client.wait_exit(STEP_TIMEOUT)
        err = (await asyncio.wait_for(client.proc.stderr.read(), 2.0)).decode(errors="replace")
        events = client.events
        print(f"note: --ca /nonexistent: exit {rc}, stderr {err.strip()[:200]!r}, events {events}", flush=True)
        if rc in (0, None):
            return f"exit status {rc}"
        if "/nonexistent/ca.pem" not in err + json.dumps(events):
            return "the error does not name the missing --ca file"
        return None
    finally:
        await client.kill()


async def connect_group(report, tether, pki):
    servers = {}
    try:
        for name, ctx in (("good", server_ctx(pki["chain"], pki["server_key"])),
                          ("wrong", server_ctx(pki["wrong_chain"], pki["wrong_key"])),
                          ("self", server_ctx(pki["self"], pki["self_key"])),
                          ("leaf_only", server_ctx(pki["leaf_only"], pki["server_key"])),
                          ("plain", None)):
            servers[name] = await PyTlsServer(ctx, plain=ctx is None).start()
        good, root = servers["good"], pki["root"]
        await report.run("wss://localhost --ca root.pem: echo text/binary up to 1 MiB, close 1000, exit 0, "
                         "SNI 'localhost'",
                         connect_echo(tether, good, f"wss://localhost:{good.port}/", "--ca", root, sni="localhost"),
                         BIG_TIMEOUT * 2)
        await report.run("wss://127.0.0.1 --ca root.pem (IP SAN): echo, close 1000, no SNI",
                         connect_echo(tether, good, f"wss://127.0.0.1:{good.port}/", "--ca", root),
                         BIG_TIMEOUT * 2)
        await report.run("certificate for wrong.example, wss://localhost: handshake_failed 'hostname mismatch'",
                         connect_fails(tether, servers["wrong"].port, "localhost", r"hostname mismatch",
                                       "--ca", root), STEP_TIMEOUT * 3)
        await report.run("certificate for wrong.example, wss://127.0.0.1: handshake_failed 'IP address mismatch'",
                         connect_fails(tether, servers["wrong"].port, "127.0.0.1", r"ip address mismatch",
                                       "--ca", root), STEP_TIMEOUT * 3)
        await report.run("test-CA chain without --ca (system store): 'unable to get local issuer certificate'",
                         connect_fails(tether, good.port, "localhost", r"unable to get local issuer certificate"),
                         STEP_TIMEOUT * 3)
        await report.run("self-signed server certificate: 'self-signed certificate'",
                         connect_fails(tether, servers["self"].port, "localhost", r"self[- ]signed certificate"),
                         STEP_TIMEOUT * 3)
        await report.run("self-signed server certificate with --ca root.pem: 'self-signed certificate'",
                         connect_fails(tether, servers["self"].port, "localhost", r"self[- ]signed certificate",
                                       "--ca", root), STEP_TIMEOUT * 3)
        await report.run("server omits the intermediate, --ca root.pem: 'unable to get local issuer certificate'",
                         connect_fails(tether, servers["leaf_only"].port, "localhost",
                                       r"unable to get local issuer certificate", "--ca", root),
                         STEP_TIMEOUT * 3)
        await report.run("wss:// URL to a plain (non-TLS) server: handshake_failed mentioning TLS",
                         connect_fails(tether, servers["plain"].port, "127.0.0.1", r"TLS"),
                         STEP_TIMEOUT * 3)
        await report.run("without --echo and with stdin at EOF, a failed verification still exits 1",
                         connect_fails(tether, good.port, "localhost", r"unable to get local issuer certificate",
                                       echo=False), STEP_TIMEOUT * 3)
        await report.run("--insecure connects to the self-signed server: echo, close 1000, exit 0",
                         connect_echo(tether, servers["self"], f"wss://localhost:{servers['self'].port}/",
                                      "--insecure"), BIG_TIMEOUT * 2)
        await report.run("--insecure connects to the wrong.example server", connect_echo(
            tether, servers["wrong"], f"wss://localhost:{servers['wrong'].port}/", "--insecure"), BIG_TIMEOUT * 2)
        await report.run("--ca FILE that does not exist: exit non-zero naming the file", bad_ca_file(tether, good.port),
                         STEP_TIMEOUT * 2)
    finally:
        for s in servers.values():
            try:
                await s.close()
            except Exception:  # noqa: BLE001 - best effort at the end
                pass


async def main(args):
    report = Report(f"tls [{args.group}]")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    with tempfile.TemporaryDirectory(prefix="tether-tls-") as tmp:
        try:
            pki = await in_thread(make_pki, tmp, timeout=60)
        except (HarnessError, OSError, subprocess.SubprocessError) as exc:
            report.fail("generate the test PKI with openssl", str(exc))
            return report.finish()
        report.ok("test PKI generated with the openssl CLI (root, intermediate, leaves, self-signed)")
        try:
            if args.group in ("serve", "all"):
                await serve_group(report, args.tether, pki)
            if args.group in ("connect", "all"):
                await connect_group(report, args.tether, pki)
        except (HarnessError, OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException) as exc:
            report.fail("harness", f"{type(exc).__name__}: {exc}")
    print(f"note: {loop.time() - t0:.1f} s in all", flush=True)
    return report.finish()


def parse_args():
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tether", required=True, help="path of the tether binary")
    parser.add_argument("--group", choices=["serve", "connect", "all"], default="all")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_args()
    try:
        sys.exit(asyncio.run(asyncio.wait_for(main(arguments), 100)))
    except asyncio.TimeoutError:
        print("FAIL: the whole program exceeded 100 s", flush=True)
        sys.exit(1)
