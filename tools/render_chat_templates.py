#!/usr/bin/env python3
"""Renders every (chat template, conversation) pair with Python jinja2, set up the way Hugging Face
transformers sets up its chat-template environment, and writes the results as the goldens for
tests/chat_template.rs.

Regenerate (from the repository root; needs only `pip install jinja2`, tested with jinja2 3.1.6):

    python3 tools/render_chat_templates.py

Reads  tests/data/chat_templates/templates.json      (name -> template file, bos_token, eos_token)
       tests/data/chat_templates/conversations.json  (name -> list of {role, content})
Writes tests/data/chat_templates/expected.json       (one entry per template x conversation x
                                                      add_generation_prompt in {true, false})

The environment mirrors transformers' `_compile_jinja_template` (utils/chat_template_utils.py):
an ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks, the loopcontrols extension
(`{% break %}`, `{% continue %}`) and a `{% generation %}` block tag that just renders its body;
a `tojson` filter that is json.dumps with ensure_ascii=False (and indent / separators / sort_keys);
globals `raise_exception(msg)` (raises TemplateError) and `strftime_now(fmt)`. Differences on
purpose: strftime_now formats a FIXED moment (FIXED_NOW below) instead of the current time, so
the output is reproducible; the Rust side is handed the same moment. The render variables are what
apply_chat_template passes: messages, tools=None, documents=None, add_generation_prompt, and the
bos_token / eos_token strings (transformers also passes the other special tokens; no template
here uses them).

An entry either has "output" (the rendered text) or "error": {"kind": "raised" | "other",
"message": ...}, where "raised" means the template itself called raise_exception().
"""

import datetime
import json
import pathlib

import jinja2
import jinja2.ext
import jinja2.nodes
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "chat_templates"

# Keep in sync with FIXED_NOW in tests/chat_template.rs.
FIXED_NOW = datetime.datetime(2025, 3, 5, 14, 7, 9)


class Raised(TemplateError):
    """What raise_exception() throws: a TemplateError, marked so we can tell it from other errors."""


class GenerationTag(jinja2.ext.Extension):
    """transformers' AssistantTracker parses `{% generation %}...{% endgeneration %}` and renders
    the body unchanged (it only records offsets, which chat rendering does not use)."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def make_env():
    def raise_exception(message):
        raise Raised(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt):
        return FIXED_NOW.strftime(fmt)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[GenerationTag, jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def main():
    templates = json.loads((DATA / "templates.json").read_text())
    conversations = json.loads((DATA / "conversations.json").read_text())
    env = make_env()
    out = []
    for tname, t in templates.items():
        compiled = env.from_string((DATA / t["file"]).read_text())
        for cname, messages in conversations.items():
            for agp in (True, False):
                entry = {"template": tname, "conversation": cname, "add_generation_prompt": agp}
                try:
                    entry["output"] = compiled.render(
                        messages=messages,
                        tools=None,
                        documents=None,
                        add_generation_prompt=agp,
                        bos_token=t["bos_token"],
                        eos_token=t["eos_token"],
                    )
                except Raised as e:
                    entry["error"] = {"kind": "raised", "message": str(e)}
                except Exception as e:  # noqa: BLE001 - any other failure is recorded as such
                    entry["error"] = {"kind": "other", "message": f"{type(e).__name__}: {e}"}
                out.append(entry)
    with open(DATA / "expected.json", "w") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")
    raised = sum(1 for e in out if "error" in e and e["error"]["kind"] == "raised")
    other = sum(1 for e in out if "error" in e and e["error"]["kind"] == "other")
    print(f"jinja2 {jinja2.__version__}: {len(out)} cases, {raised} raise, {other} other errors")


if __name__ == "__main__":
    main()
