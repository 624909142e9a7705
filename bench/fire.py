"""Send pre-signed HTTP requests all at once from a separate process and print each
one's ``[latency in seconds, wall-clock time it was sent]`` as JSON, so the load generator never shares an interpreter (or
its GIL) with the server or the Slack stand-in being measured.

It speaks HTTP/1.1 over raw asyncio streams (no client library), opens every connection
before the burst, then writes all requests at once: what is timed is the server's
answer, not the client's own overhead.

Input on stdin: {"url": "http://127.0.0.1:PORT/path", "requests": [{"body": str,
"headers": {...}}, ...]}.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from urllib.parse import urlsplit


async def one(host: str, port: int, raw: bytes, gate: asyncio.Event) -> tuple[float, float]:
    reader, writer = await asyncio.open_connection(host, port)
    await gate.wait()
    sent_at = time.time()
    start = time.perf_counter()
    writer.write(raw)
    await writer.drain()
    status = await reader.readline()
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    elapsed = time.perf_counter() - start
    writer.close()
    if b" 200 " not in status:
        raise SystemExit(f"unexpected answer: {status!r}")
    return elapsed, sent_at


async def fire(url: str, requests: list[dict[str, object]]) -> list[tuple[float, float]]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    gate = asyncio.Event()
    tasks = []
    for item in requests:
        body = str(item["body"]).encode()
        headers = dict(item["headers"])  # type: ignore[call-overload]
        head = (
            f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {len(body)}\r\n"
        )
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "Connection: close\r\n\r\n"
        tasks.append(asyncio.create_task(one(host, port, head.encode() + body, gate)))
    await asyncio.sleep(0.3)  # every connection is open before the burst
    gate.set()
    return list(await asyncio.gather(*tasks))


def main() -> None:
    spec = json.load(sys.stdin)
    print(json.dumps(asyncio.run(fire(spec["url"], spec["requests"]))))


if __name__ == "__main__":
    main()
