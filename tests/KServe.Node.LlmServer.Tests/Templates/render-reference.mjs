// Renders chat templates with @huggingface/jinja (the Hub's own renderer), the reference that the C#
// renderer is compared against. Input on stdin: {"jinjaModule": path, "templates": {name: source},
// "cases": [context]}. Output on stdout: {name: [{"ok": true, "text": s} | {"ok": false, "error": s}]}.
import { readFileSync } from "node:fs";
import { pathToFileURL } from "node:url";

const input = JSON.parse(readFileSync(0, "utf8"));
const { Template } = await import(pathToFileURL(input.jinjaModule).href);
const out = {};
for (const [name, source] of Object.entries(input.templates)) {
  const results = [];
  let template = null;
  let parseError = null;
  try {
    template = new Template(source);
  } catch (e) {
    parseError = String(e && e.message ? e.message : e);
  }
  for (const context of input.cases) {
    if (template === null) {
      results.push({ ok: false, error: "parse: " + parseError });
      continue;
    }
    try {
      results.push({ ok: true, text: template.render(structuredClone(context)) });
    } catch (e) {
      results.push({ ok: false, error: String(e && e.message ? e.message : e) });
    }
  }
  out[name] = results;
}
process.stdout.write(JSON.stringify(out));
