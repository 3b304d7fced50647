#!/usr/bin/env python3
"""bench/micro.py: the codec microbenchmarks and the allocations per echoed message, as tables.

    bench/micro.py [--build build] [--out docs/bench.md] [--repetitions 3] [--min-time 0.2]

Runs two programs built with -DTETHER_BUILD_BENCH=ON (sources and method: bench/micro/README.md):
- build/bench/micro_codec (Google Benchmark), pinned to CPU 0, --repetitions times; the medians
  of CPU time give GB/s for unmasking (codec::apply_mask, RFC 6455 §5.3) and UTF-8 validation
  (§8.1), and ns per frame header parsed or encoded (§5.2);
- build/bench/alloc_echo: heap allocations per echoed message on the server's and the client's
  loop threads (a counting operator new), for each scenario it knows (raw clients, heartbeats,
  tether::Client, permessage-deflate, resume, TLS).
Prints markdown; --out rewrites the `micro` section of FILE (between <!-- micro begin --> and
<!-- micro end -->, bench/md_section.py). Exits non-zero when a program fails or a scenario
allocates on the server's loop thread.
"""
import argparse
import json
import os
import platform
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from md_section import write_section  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def machine():
    model = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gcc = subprocess.run(["g++", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    return f"{os.cpu_count()} x {model}, Linux {platform.release()}, {gcc}"


def run_micro(exe, reps, min_time):
    cmd = ["taskset", "-c", "0", exe, f"--benchmark_min_time={min_time}",
           f"--benchmark_repetitions={reps}", "--benchmark_report_aggregates_only=true",
           "--benchmark_format=json"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"micro: {' '.join(cmd)} failed:\n{p.stderr}")
    medians = {}
    for b in json.loads(p.stdout)["benchmarks"]:
        if b.get("aggregate_name") == "median":
            medians[b["run_name"]] = b
    return cmd, medians


def gbs(b):
    return f"{b['bytes_per_second'] / 1e9:.1f}" if b and "bytes_per_second" in b else "–"


def ns(b):
    if not b:
        return "–"
    t = b["cpu_time"] * {"ns": 1, "us": 1e3, "ms": 1e6}[b.get("time_unit", "ns")]
    return f"{t:.1f}"


def size_label(n):
    n = int(n)
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB" if n >= 1024 else f"{n} B"


def micro_tables(m):
    out = []
    # Unmasking: rows by size, columns by start alignment.
    rows = {}
    for name, b in m.items():
        g = re.fullmatch(r"BM_ApplyMask/bytes:(\d+)/misalign:(\d+)", name)
        if g:
            rows.setdefault(int(g.group(1)), {})[int(g.group(2))] = b
    aligns = sorted({a for r in rows.values() for a in r})
    out.append("**Unmasking** (`codec::apply_mask`, RFC 6455 §5.3), GB/s:\n")
    out.append("| payload | " + " | ".join("aligned" if a == 0 else f"start +{a}" for a in aligns) + " |")
    out.append("| ---: | " + " | ".join("---:" for _ in aligns) + " |")
    for size in sorted(rows):
        out.append(f"| {size_label(size)} | " + " | ".join(gbs(rows[size].get(a)) for a in aligns) + " |")
    extra = []
    for name, label in (("BM_ApplyMaskKeyOffset/bytes:1024", "key offset 3, 1 KiB"),
                        ("BM_ApplyMaskKeyOffset/bytes:65536", "key offset 3, 64 KiB"),
                        ("BM_MaskBytewiseReference/bytes:65536", "the §5.3 definition byte by byte, 64 KiB")):
        if name in m:
            extra.append(f"{label}: {gbs(m[name])}")
    if extra:
        out.append("\n" + "; ".join(extra) + " GB/s.")
    # UTF-8: rows by text kind, columns by size.
    kinds = [("BM_Utf8Ascii", "ASCII (JSON-like)"), ("BM_Utf8Multibyte", "multi-byte (Cyrillic, CJK, emoji, Greek, Hangul)")]
    sizes = sorted({int(g.group(1)) for name in m for g in [re.fullmatch(r"BM_Utf8\w+/bytes:(\d+)", name)] if g})
    out.append("\n**UTF-8 validation** (`codec::is_valid_utf8`, §8.1), GB/s:\n")
    out.append("| text | " + " | ".join(size_label(s) for s in sizes) + " |")
    out.append("| --- | " + " | ".join("---:" for _ in sizes) + " |")
    for prefix, label in kinds:
        out.append(f"| {label} | " + " | ".join(gbs(m.get(f"{prefix}/bytes:{s}")) for s in sizes) + " |")
    if "BM_Utf8ValidatorChunked" in m:
        out.append("\n`Utf8Validator` fed 1 MiB of multi-byte text in 1400-byte pieces (sequences cut "
                   f"across calls): {gbs(m['BM_Utf8ValidatorChunked'])} GB/s.")
    # Headers: ns per call.
    out.append("\n**Frame headers** (§5.2), ns per header:\n")
    out.append("| operation | ns |")
    out.append("| --- | ---: |")
    headers = []
    for name in m:
        g = re.fullmatch(r"BM_(Parse|Encode)Header/payload:(\d+)(?:/masked:(\d))?", name)
        if g:
            headers.append((g.group(1) == "Encode", g.group(3) or "", int(g.group(2)), name, g))
    for _, _, _, name, g in sorted(headers):
        what = "parse" if g.group(1) == "Parse" else "encode"
        masked = " masked" if g.group(1) == "Parse" or g.group(3) == "1" else " unmasked"
        out.append(f"| {what}{masked}, {size_label(g.group(2))} payload | {ns(m[name])} |")
    return "\n".join(out)


def run_alloc(exe):
    p = subprocess.run([exe], capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"micro: {exe} failed:\n{p.stdout}\n{p.stderr}")
    lines = [l for l in p.stdout.splitlines() if l.strip()]
    worst = 0.0
    for l in lines:
        f = l.split()
        if len(f) >= 4 and re.fullmatch(r"\d+", f[1] or "") and re.fullmatch(r"[\d.]+", f[3]):
            worst = max(worst, float(f[3]))
    return lines, worst


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--out", help="markdown page whose `micro` section to rewrite")
    ap.add_argument("--repetitions", type=int, default=3)
    ap.add_argument("--min-time", type=float, default=0.2, help="seconds per benchmark repetition")
    args = ap.parse_args()
    codec = os.path.join(args.build, "bench", "micro_codec")
    alloc = os.path.join(args.build, "bench", "alloc_echo")
    for exe in (codec, alloc):
        if not os.access(exe, os.X_OK):
            sys.exit(f"micro: {exe} missing (build with -DTETHER_BUILD_BENCH=ON; micro_codec needs libbenchmark-dev)")
    rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True).stdout.strip() or "unknown"
    print("micro: micro_codec ...", file=sys.stderr)
    cmd, medians = run_micro(codec, args.repetitions, args.min_time)
    print("micro: alloc_echo ...", file=sys.stderr)
    alloc_lines, worst = run_alloc(alloc)
    rel = lambda p: os.path.relpath(p, REPO)  # noqa: E731
    text = f"""## Codec microbenchmarks and allocations per echoed message

Written by `bench/micro.py` (part of `make bench`) at commit {rev}; machine: {machine()}.
Medians of {args.repetitions} repetitions of CPU time, pinned to CPU 0; release build (`-O3`, plain x86-64,
the unmasking's AVX2 loop chosen at run time where the CPU has it). Method and history:
bench/micro/README.md.

{micro_tables(medians)}

**Heap allocations per echoed message** in steady state (`{rel(alloc)}`: a counting `operator
new` and OpenSSL's allocator hooks, counted on the server's and the client's loop threads while
the messages are echoed after a warm-up; binary and text, 16 B and 1 KiB). The regression test
`unit_alloc` (in `make test`) holds the server side to 0.

```
{chr(10).join(alloc_lines)}
```

Reproduce:

```sh
{' '.join(cmd[:3] + [rel(cmd[3])] + cmd[4:-1])}
{rel(alloc)}
```
"""
    print(text)
    if args.out:
        write_section(args.out, "micro", text)
    if worst > 0:
        sys.exit(f"micro: a scenario allocated on a loop thread ({worst} per message)")


if __name__ == "__main__":
    main()
