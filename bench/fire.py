"""Send pre-signed HTTP requests all at once from a separate process and print each
one's latency (seconds) as JSON, so the load generator never shares an interpreter (or
its GIL) with the server or the Slack stand-in being measured.

Input on stdin: {"url": ..., "requests": [{"body": str, "headers": {...}}, ...]}.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx


async def fire(url: str, requests: list[dict[str, object]]) -> list[float]:
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=len(requests))
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        gate = asyncio.Event()

        async def one(item: dict[str, object]) -> float:
            await gate.wait()
            start = time.perf_counter()
            response = await client.post(
                url, content=str(item["body"]).encode(), headers=dict(item["headers"])
            )  # type: ignore[arg-type]
            elapsed = time.perf_counter() - start
            if response.status_code != 200:
                raise SystemExit(f"HTTP {response.status_code}: {response.text[:200]}")
            return elapsed

        tasks = [asyncio.create_task(one(item)) for item in requests]
        await asyncio.sleep(0.05)
        gate.set()
        return list(await asyncio.gather(*tasks))


def main() -> None:
    spec = json.load(sys.stdin)
    print(json.dumps(asyncio.run(fire(spec["url"], spec["requests"]))))


if __name__ == "__main__":
    main()
