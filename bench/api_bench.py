"""HTTP API under load: ingest SQuAD passages through `/upsert` while 50 clients query `/query`; prints timings.

    python bench/api_bench.py [--passages 200] [--clients 50] [--json]

Runs the real server on 127.0.0.1 (port 0) over a scratch index; numbers are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

import rag
from rag.api import make_server

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "qa" / "squad2"
TOKEN = "bench-token"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passages", type=int, default=200)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = [json.loads(x) for x in (DATA / "passages.jsonl").read_text().splitlines() if x.strip()][: args.passages]
    questions = [json.loads(x)["question"] for x in (DATA / "questions.jsonl").read_text().splitlines() if x.strip()]
    docs = [{"id": r["_id"], "text": r["text"]} for r in rows]
    with tempfile.TemporaryDirectory() as tmp:
        index = rag.open_index(data_dir=tmp, api_token=TOKEN)
        index.upsert_texts(docs[:20])
        server = make_server(index, "127.0.0.1", 0, log_level="warning")
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        out = asyncio.run(_run(base, docs[20:], questions, args.clients))
        server.should_exit = True
        thread.join()
    out.update(passages=args.passages, clients=args.clients)
    if args.json:
        print(json.dumps(out))
    else:
        for key, value in out.items():
            print(f"{key:>28}: {value}")


async def _run(base: str, docs: list[dict[str, str]], questions: list[str], clients: int) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    limits = httpx.Limits(max_connections=clients + 5)
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=600, limits=limits) as client:
        t0 = time.perf_counter()
        lat_idle = []
        for q in questions[:20]:
            s = time.perf_counter()
            (await client.post("/query", json={"queries": [{"query": q}]})).raise_for_status()
            lat_idle.append(time.perf_counter() - s)

        async def ingest() -> float:
            s = time.perf_counter()
            (await client.post("/upsert", json={"documents": docs})).raise_for_status()
            return time.perf_counter() - s

        async def one(q: str) -> float:
            s = time.perf_counter()
            (await client.post("/query", json={"queries": [{"query": q}]})).raise_for_status()
            return time.perf_counter() - s

        task = asyncio.create_task(ingest())
        await asyncio.sleep(0.2)
        lat_busy = await asyncio.gather(*(one(questions[i % len(questions)]) for i in range(clients)))
        ingest_s = await task
        batch = [{"query": q} for q in questions[:10]]
        s = time.perf_counter()
        (await client.post("/query", json={"queries": batch})).raise_for_status()
        batch_s = time.perf_counter() - s
    q = statistics.quantiles
    return {
        "query_p50_idle_ms": round(statistics.median(lat_idle) * 1000, 1),
        "query_p50_during_ingest_ms": round(statistics.median(lat_busy) * 1000, 1),
        "query_p95_during_ingest_ms": round(q(lat_busy, n=20)[18] * 1000, 1),
        "ingest_s": round(ingest_s, 2),
        "ingest_docs": len(docs),
        "batch_of_10_queries_ms": round(batch_s * 1000, 1),
        "total_s": round(time.perf_counter() - t0, 2),
    }


if __name__ == "__main__":
    main()
