"""A closed-loop HTTP load generator, used when `wrk` is not installed: N connections, each sends the next
request as soon as the last answer arrives, for a fixed time. Prints one JSON line (req/s, p50/p90/p99).

    python -m bench.load_client URL BODY_FILE --connections 8 --seconds 3

It runs in its own process so it never shares an event loop with the server; httpx's client costs more
CPU per request than wrk's, so on two cores its figures are lower bounds for every server alike.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path


async def load(url: str, body: bytes, connections: int, seconds: float) -> dict:
    import httpx

    latencies: list[float] = []
    errors = 0
    non2xx = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(limits=limits, timeout=10.0) as client:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors, non2xx
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                try:
                    answer = await client.post(url, content=body, headers=headers)
                except httpx.HTTPError:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - sent)
                if answer.status_code >= 300:
                    non2xx += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()

    def percentile(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1e6 if latencies else 0.0

    return {
        "requests": len(latencies), "duration_us": elapsed * 1e6, "errors": errors, "non2xx": non2xx,
        "p50_us": percentile(50), "p90_us": percentile(90), "p99_us": percentile(99),
        "mean_us": sum(latencies) / len(latencies) * 1e6 if latencies else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("body", type=Path)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(load(args.url, args.body.read_bytes(), args.connections, args.seconds))))


if __name__ == "__main__":
    main()
