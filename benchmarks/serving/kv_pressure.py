#!/usr/bin/env python3
"""KV-pressure burst against OpenAI-compatible servers (standard library only, no .NET in the loop).

Sends N concurrent streaming /v1/completions requests whose prompts and max_tokens together need several
times the KV cache, to each server in turn, and prints one JSON line per server: requests completed in
full, failed before any token, failed after streaming had started, output tokens, wall time, goodput
(output tokens of completed requests per second) and time-to-first-token percentiles.

    kv_pressure.py --server NAME=URL [--server NAME=URL ...] [--requests 16] [--prompt-words 80]
                   [--max-tokens 300] [--model bench] [--rounds 2]
"""
import argparse
import http.client
import json
import threading
import time
import urllib.parse


def describe(error):
    """An error as one short line: its code or type, and the start of its message."""
    if not isinstance(error, dict):
        return str(error)[:80]
    kind = error.get("code") if isinstance(error.get("code"), str) else error.get("type")
    return "%s: %s" % (kind, str(error.get("message", ""))[:60])


def one_request(url, model, prompt, max_tokens, out):
    u = urllib.parse.urlsplit(url)
    body = json.dumps({"model": model, "prompt": prompt, "max_tokens": max_tokens, "ignore_eos": True,
                       "temperature": 0, "stream": True, "stream_options": {"include_usage": True}})
    start = time.monotonic()
    result = {"status": None, "tokens": 0, "ttft": None, "error": None, "started": False, "finish": None}
    try:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
        conn.request("POST", u.path.rstrip("/") + "/v1/completions", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        result["status"] = resp.status
        if resp.status != 200:
            text = resp.read().decode("utf-8", "replace")
            try:
                result["error"] = "%d %s" % (resp.status, describe(json.loads(text).get("error", text)))
            except ValueError:
                result["error"] = "%d %s" % (resp.status, text[:80])
        else:
            for raw in resp:
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                event = json.loads(line[6:])
                if "error" in event:
                    e = event["error"]
                    result["error"] = describe(e)
                    break
                for choice in event.get("choices") or []:
                    if choice.get("text"):
                        if result["ttft"] is None:
                            result["ttft"] = time.monotonic() - start
                        result["started"] = True
                    if choice.get("finish_reason"):
                        result["finish"] = choice["finish_reason"]
                usage = event.get("usage")
                if usage:
                    result["tokens"] = usage.get("completion_tokens", 0)
        conn.close()
    except (OSError, http.client.HTTPException, ValueError) as e:
        result["error"] = type(e).__name__ + ": " + str(e)[:80]
    out.append(result)


def percentile(values, p):
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))], 3)


def burst(name, url, model, prompts, max_tokens):
    results = []
    threads = [threading.Thread(target=one_request, args=(url, model, p, max_tokens, results)) for p in prompts]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - start
    complete = [r for r in results if r["error"] is None and r["status"] == 200 and r["tokens"] == max_tokens]
    errors = {}
    for r in results:
        if r not in complete:
            key = r["error"] or "short:%d" % r["tokens"]
            errors[key] = errors.get(key, 0) + 1
    return {
        "server": name, "requests": len(prompts), "completed": len(complete),
        "failed_before_output": sum(1 for r in results if r not in complete and not r["started"]),
        "failed_mid_stream": sum(1 for r in results if r not in complete and r["started"]),
        "errors": errors, "output_tokens": sum(r["tokens"] for r in results),
        "wall_s": round(wall, 2), "goodput_tok_s": round(sum(r["tokens"] for r in complete) / wall, 1),
        "ttft_p50_s": percentile([r["ttft"] for r in results if r["ttft"] is not None], 50),
        "ttft_p95_s": percentile([r["ttft"] for r in results if r["ttft"] is not None], 95),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", action="append", required=True, help="NAME=URL")
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--prompt-words", type=int, default=80)
    ap.add_argument("--max-tokens", type=int, default=300)
    ap.add_argument("--model", default="bench")
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    prompts = ["Request %d: " % i + " ".join("w%d" % ((w * 7 + i * 13) % 97) for w in range(a.prompt_words)) for i in range(a.requests)]
    servers = [s.split("=", 1) for s in a.server]
    for rnd in range(a.rounds):
        # Alternate the order each round so neither server always runs on a warmer machine.
        for name, url in (servers if rnd % 2 == 0 else list(reversed(servers))):
            line = burst(name, url, a.model, [p + " (round %d)" % rnd for p in prompts], a.max_tokens)
            line["round"] = rnd
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
