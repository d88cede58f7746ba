#!/usr/bin/python3
"""A streaming OpenAI-completions load client in Python asyncio + aiohttp, in the
manner of vLLM's benchmark client (benchmarks/backend_request_func.py and
benchmark_serving.py): one shared aiohttp.ClientSession (keep-alive), every
request a POST with "stream": true and stream_options.include_usage, the
response read line by line, "data: " stripped, each chunk json.loads'ed, and
time.perf_counter() taken at every content chunk for TTFT and the inter-token
latencies. Written for bench/llm-vs-python.sh, the yardstick for sonde's
openai client.

    llm_python_client.py URL [--concurrency 64] [--duration 10] [--max-tokens 256]

CONCURRENCY tasks each send requests back to back (closed loop) until DURATION
seconds have passed; requests still streaming then are cancelled and not
counted. Prints one JSON object: ok requests, errors, events (content chunks
of the ok requests), data_lines (every data: line of the ok requests, usage and
[DONE] included), output_tokens (usage.completion_tokens), the measured
duration, TTFT/ITL means, and this process's CPU time (user + system, from
getrusage, interpreter start-up included). Exits 1 when no request succeeded.
"""

import argparse
import asyncio
import json
import resource
import sys
import time

import aiohttp


class Result:
    def __init__(self):
        self.ok = 0
        self.errors = 0
        self.events = 0
        self.data_lines = 0
        self.output_tokens = 0
        self.ttft_sum = 0.0
        self.itl_sum = 0.0
        self.itl_n = 0
        self.first_error = None


async def one_request(session, url, payload):
    """One streamed completion. Returns (ttft, itls, events, data_lines,
    completion_tokens) or raises on any error."""
    itls = []
    ttft = 0.0
    events = 0
    lines = 0
    text = ""
    tokens = None
    done = False
    start = time.perf_counter()
    last = start
    async with session.post(url, json=payload) as resp:
        if resp.status != 200:
            raise RuntimeError(f"status {resp.status}: {await resp.text()}")
        async for raw in resp.content:  # one line at a time
            raw = raw.strip()
            if not raw:
                continue
            line = raw.decode("utf-8")
            if not line.startswith("data: "):
                continue  # an SSE comment or another field
            lines += 1
            chunk = line[len("data: "):]
            if chunk == "[DONE]":
                done = True
                continue
            data = json.loads(chunk)
            if "error" in data:
                raise RuntimeError(f"error in the stream: {data['error']}")
            choices = data.get("choices")
            if choices and choices[0].get("text"):
                now = time.perf_counter()
                text += choices[0]["text"]
                if events == 0:
                    ttft = now - start
                else:
                    itls.append(now - last)
                last = now
                events += 1
            elif data.get("usage"):
                tokens = data["usage"].get("completion_tokens")
    if not done:
        raise RuntimeError("the stream ended without data: [DONE]")
    if events == 0:
        raise RuntimeError("a stream without any content chunk")
    return ttft, itls, events, lines, tokens if tokens is not None else events


async def worker(session, url, payload, deadline, res):
    while time.perf_counter() < deadline:
        try:
            ttft, itls, events, lines, tokens = await one_request(session, url, payload)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # counted, and the worker goes on
            res.errors += 1
            if res.first_error is None:
                res.first_error = repr(e)
            await asyncio.sleep(0.01)
            continue
        if time.perf_counter() >= deadline:
            break  # completed after the window: not counted (as in sonde)
        res.ok += 1
        res.events += events
        res.data_lines += lines
        res.output_tokens += tokens
        res.ttft_sum += ttft
        res.itl_sum += sum(itls)
        res.itl_n += len(itls)


async def main_async(args):
    url = args.url.rstrip("/") + "/v1/completions"
    payload = {
        "model": args.model,
        "prompt": args.prompt,
        "max_tokens": args.max_tokens,
        "temperature": 0.0,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    res = Result()
    connector = aiohttp.TCPConnector(limit=args.concurrency, keepalive_timeout=60)
    timeout = aiohttp.ClientTimeout(total=args.duration + 30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        start = time.perf_counter()
        deadline = start + args.duration
        tasks = [
            asyncio.create_task(worker(session, url, payload, deadline, res))
            for _ in range(args.concurrency)
        ]
        # Bounded: the workers stop at the deadline; streams still running are
        # cancelled shortly after it.
        _, pending = await asyncio.wait(tasks, timeout=args.duration)
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        end = min(time.perf_counter(), deadline)
    return res, end - start


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("url", help="base URL, e.g. http://127.0.0.1:8000")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--duration", type=float, default=10.0, help="seconds")
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument("--model", default="sim-model")
    p.add_argument("--prompt", default="tell me a story")
    args = p.parse_args()
    if args.concurrency < 1 or not 0 < args.duration <= 3600 or args.max_tokens < 1:
        p.error("need --concurrency >= 1, 0 < --duration <= 3600, --max-tokens >= 1")
    res, duration = asyncio.run(main_async(args))
    ru = resource.getrusage(resource.RUSAGE_SELF)
    out = {
        "client": f"python {sys.version.split()[0]}, aiohttp {aiohttp.__version__}",
        "ok": res.ok,
        "errors": res.errors,
        "events": res.events,
        "data_lines": res.data_lines,
        "output_tokens": res.output_tokens,
        "duration_s": round(duration, 6),
        "ttft_mean_ms": round(1e3 * res.ttft_sum / res.ok, 3) if res.ok else None,
        "itl_mean_ms": round(1e3 * res.itl_sum / res.itl_n, 6) if res.itl_n else None,
        "cpu_s": round(ru.ru_utime + ru.ru_stime, 3),
        "first_error": res.first_error,
    }
    print(json.dumps(out))
    sys.exit(0 if res.ok > 0 else 1)


if __name__ == "__main__":
    main()
