#!/usr/bin/env python3
"""Closed-loop streaming chat load against two OpenAI-compatible servers, with no .NET in the client.

The same workloads as LoadBench's `compare` (chat at each concurrency with 48-word prompts, and a shared
~400-word prefix at concurrency 8), the same request (greedy, ignore_eos, max_tokens, one connection per
request), the servers alternating round by round after a warm-up. Prints one JSON line per round and one
summary line per workload with ours/anchor ratios. TTFT is the time to the first non-empty content delta.

    closed_loop.py --ours URL --anchor URL [--model bench] [--concurrency 1,8,32] [--rounds 2]
                   [--requests-per-round 32] [--max-tokens 64] [--shared-prefix-words 400]
"""
import argparse
import http.client
import json
import random
import threading
import time
import urllib.parse

WORDS = ("the of and to in is was for on are with as by at from that this be or have an it not which but were all can "
         "one more has their there been if would when will into so no out up some what about time only other new").split()


def text(words, seed):
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(words))


def one(url, model, prompt, max_tokens):
    u = urllib.parse.urlsplit(url)
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens,
                       "temperature": 0, "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}})
    start = time.monotonic()
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
    conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json", "Connection": "close"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError("HTTP %d: %s" % (resp.status, resp.read()[:200]))
    ttft, last, itl, chunks, usage = None, None, [], 0, None
    for raw in resp:
        line = raw.strip()
        if not line.startswith(b"data: "):
            continue
        if line == b"data: [DONE]":
            break
        now = time.monotonic()
        event = json.loads(line[6:])
        if isinstance(event.get("usage"), dict):
            usage = event["usage"].get("completion_tokens")
        choices = event.get("choices") or []
        if not choices or not (choices[0].get("delta") or {}).get("content"):
            continue
        chunks += 1
        if ttft is None:
            ttft = now - start
        else:
            itl.append(now - last)
        last = now
    conn.close()
    return ttft if ttft is not None else time.monotonic() - start, itl, usage if usage is not None else chunks


def round_(url, model, prompts, concurrency, max_tokens):
    samples, lock, next_index = [], threading.Lock(), [0]

    def worker():
        while True:
            with lock:
                if next_index[0] >= len(prompts):
                    return
                i = next_index[0]
                next_index[0] += 1
            s = one(url, model, prompts[i], max_tokens)
            with lock:
                samples.append(s)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - start
    return {"requests": len(samples), "output_tokens": sum(s[2] for s in samples), "wall_s": wall,
            "ttft": [s[0] for s in samples], "itl": [x for s in samples for x in s[1]]}


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] if values else float("nan")


def summary(rounds):
    tokens = sum(r["output_tokens"] for r in rounds)
    wall = sum(r["wall_s"] for r in rounds)
    ttft = [x for r in rounds for x in r["ttft"]]
    itl = [x for r in rounds for x in r["itl"]]
    return {"requests": sum(r["requests"] for r in rounds), "output_tokens": tokens, "output_tokens_per_s": round(tokens / wall, 1),
            "ttft_p50_ms": round(pct(ttft, 50) * 1000, 1), "ttft_p95_ms": round(pct(ttft, 95) * 1000, 1),
            "itl_p50_ms": round(pct(itl, 50) * 1000, 2), "itl_p95_ms": round(pct(itl, 95) * 1000, 2)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ours", required=True)
    ap.add_argument("--anchor", required=True)
    ap.add_argument("--model", default="bench")
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--requests-per-round", type=int, default=32)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--prompt-words", type=int, default=48)
    ap.add_argument("--shared-prefix-words", type=int, default=400)
    ap.add_argument("--warmup", type=int, default=4)
    a = ap.parse_args()
    workloads = [("chat-c%d" % c, c, (lambda c: lambda i: text(a.prompt_words, i + c * 100000))(c))
                 for c in map(int, a.concurrency.split(","))]
    if a.shared_prefix_words > 0:
        prefix = text(a.shared_prefix_words, 7)
        workloads.append(("shared-prefix-c8", 8, lambda i: prefix + "\nQuestion %d: " % i + text(16, 900000 + i)))
    servers = [("ours", a.ours), ("anchor", a.anchor)]
    for name, c, prompt in workloads:
        for _, url in servers:
            round_(url, a.model, [prompt(-1 - i) for i in range(a.warmup)], min(c, a.warmup), a.max_tokens)
        results = {"ours": [], "anchor": []}
        for rnd in range(a.rounds):
            prompts = [prompt(rnd * a.requests_per_round + i) for i in range(a.requests_per_round)]
            for server, url in (servers if rnd % 2 == 0 else servers[::-1]):
                r = round_(url, a.model, prompts, c, a.max_tokens)
                results[server].append(r)
                line = {k: v for k, v in summary([r]).items()}
                line.update({"kind": "round", "client": "python", "workload": name, "server": server, "round": rnd})
                print(json.dumps(line), flush=True)
        ours, anchor = summary(results["ours"]), summary(results["anchor"])
        print(json.dumps({"kind": "summary", "client": "python", "workload": name, "concurrency": c, "ours": ours, "anchor": anchor,
                          "ratio_output_tokens_per_s": round(ours["output_tokens_per_s"] / anchor["output_tokens_per_s"], 2),
                          "ratio_ttft_p95": round(ours["ttft_p95_ms"] / anchor["ttft_p95_ms"], 2)}), flush=True)


if __name__ == "__main__":
    main()
