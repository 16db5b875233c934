"""Renders chat templates as transformers' apply_chat_template does, for tests (transformers itself is not installed).

A stand-in: Python's jinja2 with the environment transformers builds in
transformers/utils/chat_template_utils.py (_compile_jinja_template): an ImmutableSandboxedEnvironment with
trim_blocks and lstrip_blocks, the loopcontrols extension, its own tojson filter (no HTML escaping, ensure_ascii
off) and the raise_exception and strftime_now globals. Variables are passed as apply_chat_template passes them:
messages, tools (None without tools), documents None, add_generation_prompt, and the extra kwargs.

stdin: {"templates": {name: source}, "cases": [{"messages", "tools", "add_generation_prompt", "bos_token",
        "eos_token", "kwargs", "now"}]}
stdout: {name: [{"ok": true, "text": ...} | {"ok": false, "error": ...}]}
"""
import datetime
import json
import sys

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def main():
    request = json.load(sys.stdin)
    out = {}
    for name, source in request["templates"].items():
        results = []
        for case in request["cases"]:
            now = datetime.datetime.fromisoformat(case["now"])
            env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
            env.filters["tojson"] = tojson
            env.globals["raise_exception"] = raise_exception
            env.globals["strftime_now"] = lambda fmt, now=now: now.strftime(fmt)
            try:
                template = env.from_string(source)
                variables = dict(case.get("kwargs") or {})
                variables.update(messages=case["messages"], tools=case.get("tools"), documents=None,
                                 add_generation_prompt=case["add_generation_prompt"],
                                 bos_token=case["bos_token"], eos_token=case["eos_token"])
                results.append({"ok": True, "text": template.render(**variables)})
            except Exception as e:  # a refusal is a result too
                results.append({"ok": False, "error": f"{type(e).__name__}: {e}"})
        out[name] = results
    json.dump(out, sys.stdout, ensure_ascii=False)


main()
