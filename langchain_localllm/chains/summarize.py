"""Summarise texts of any length with a local model: stuff, map_reduce or refine.

``summarize_chain(llm)`` is an LCEL runnable over a ``str``, a ``Document`` or a list
of Documents. ``method="auto"`` counts the text's tokens with the model's own
tokenizer and "stuffs" it into one prompt when it fits the model's context window,
else runs map_reduce: the text is cut into chunks that fit the window with room
for the prompt and the answer, the chunks are summarised concurrently (at most
``max_concurrency`` at a time) and the summaries combined, in more rounds if they
do not fit together. Prompts are in the model's own format (Llama-2, ChatML, ...).

.. code-block:: python

    from langchain_localllm import Llamafile
    from langchain_localllm.chains import summarize_chain

    chain = summarize_chain(Llamafile(base_url="http://127.0.0.1:8080"), max_concurrency=4)
    chain.invoke(long_text)  # -> "The text tells ..."
    for token in chain.stream(long_text):  # the final summary streams
        print(token, end="")
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

from langchain_core.documents import Document
from langchain_core.prompts import BasePromptTemplate
from langchain_core.runnables import Runnable, RunnableConfig, RunnableLambda
from langchain_core.runnables.config import patch_config

from langchain_localllm.chains._inputs import documents_of
from langchain_localllm.chains._llm import (
    answer_tokens,
    context_window,
    fleet_concurrency,
    select_prompt,
    text_model,
    token_counter,
)
from langchain_localllm.chains._map import (
    Progress,
    amap_bounded,
    arerun_interrupted,
    map_bounded,
    rerun_interrupted,
)
from langchain_localllm.chains._split import group_to_budget, split_to_budget
from langchain_localllm.errors import ContextLengthExceededError, InvalidParameterError
from langchain_localllm.prompts import ConditionalPromptSelector, format_prompt_selector
from langchain_localllm.prompts.completion import (
    CompletionPrompt,
    echoes_example,
    is_completion_prompt,
    with_completion_prompt,
)

__all__ = ["Method", "summarize_chain"]

Method = Literal["auto", "stuff", "map_reduce", "refine"]
_METHODS = ("auto", "stuff", "map_reduce", "refine")

SYSTEM = "You are a helpful assistant who writes accurate, concise summaries."
SUMMARIZE = 'Write a concise summary of the following:\n\n\n"{text}"\n\n\nCONCISE SUMMARY:'
COMBINE = (
    "The following are summaries of consecutive parts of one document:\n\n{text}\n\n"
    "Combine them into one concise summary of the whole document.\n\nCONCISE SUMMARY:"
)
REFINE = (
    "Your job is to produce a final summary.\n"
    "We have provided an existing summary up to a certain point: {existing_answer}\n"
    "We have the opportunity to refine the existing summary (only if needed) with some more context below.\n"
    "------------\n{text}\n------------\n"
    "Given the new context, refine the original summary.\n"
    "If the context isn't useful, return the original summary."
)
_JOINER = "\n\n"

# Base models continue text: two worked examples (short summaries in other words, so the
# model does not copy the text out), then the text with the "TL;DR:" cue open; each text is
# put on one line (see _fill). Measured on Gemma 3 270M: "Text: ...\nSummary:" made it copy
# a worked example when the text was unusual (verse-numbered scripture).
_EXAMPLES = (
    "The Great Wall of China was built over many centuries, most famously by the Ming dynasty, "
    "to protect the northern borders of Chinese states against nomadic raiders.\n"
    "TL;DR: The Great Wall protected China from nomads.\n\n"
    "Johannes Gutenberg's press, with movable metal type, printed books quickly and cheaply, "
    "and ideas spread across Europe as never before.\n"
    "TL;DR: Gutenberg's printing press spread ideas across Europe."
)
_STOP = ("\n",)
_INTRO = "Passages, each followed by its TL;DR: one sentence naming its main subject."
COMPLETION_PROMPTS: dict[str, CompletionPrompt] = {
    "summarize": CompletionPrompt(
        intro=_INTRO,
        example=_EXAMPLES,
        template="{text}\nTL;DR:",
        stop=_STOP,
    ),
    "combine": CompletionPrompt(
        intro=_INTRO,
        example=_EXAMPLES,
        template="{text}\nTL;DR:",
        stop=_STOP,
    ),
    "refine": CompletionPrompt(
        intro="Summaries of the beginning of a text, each improved with the text's next part.",
        example=(
            "Summary so far: Gutenberg invented a printing press in Mainz around 1440.\n"
            "Next part: It used movable metal type, so books became cheaper and ideas spread across "
            "Europe faster than ever before.\n"
            "Improved summary: Gutenberg's printing press made books cheap and spread ideas across Europe."
        ),
        template="Summary so far: {existing_answer}\nNext part: {text}\nImproved summary:",
        stop=_STOP,
    ),
}
"""Completion-style prompts for base models (models without a chat template), by kind."""


def _fill(prompt: BasePromptTemplate, **values: str) -> str:
    """``prompt`` filled in; a base model's completion prompt gets each text on one line, as in
    its worked examples (blank lines inside a text read to it as the start of a new example)."""
    if is_completion_prompt(prompt):
        values = {key: " ".join(value.split()) for key, value in values.items()}
    return prompt.format(**values)


@dataclass(frozen=True)
class _Step:
    """Prompts the driver runs concurrently and sends back the answers of, in order."""

    prompts: list[str]
    kind: str


@dataclass(frozen=True)
class _Final:
    """The last prompt (streamed by the driver) and what led to it."""

    prompt: str
    method: str
    intermediate_steps: list[str]


@dataclass
class _Summarizer:
    llm: Runnable[Any, Any]
    method: str
    max_concurrency: int | None
    chunk_overlap: int
    progress: bool | None
    return_intermediate_steps: bool
    window: int | None
    answer: int | None
    count: Callable[[str], int] | None
    prompts: dict[str, ConditionalPromptSelector] = field(default_factory=dict)

    # --- the algorithm, shared by the sync and async drivers ------------------------

    def _prompt(self, kind: str) -> BasePromptTemplate:
        return select_prompt(self.prompts[kind], self.llm)

    def _overhead(self, prompt: BasePromptTemplate, count: Callable[[str], int]) -> int:
        return count(prompt.format(**dict.fromkeys(prompt.input_variables, "")))

    def _budget(
        self, kind: str, window: int, answer: int, count: Callable[[str], int], extra: int = 0
    ) -> int:
        overhead = self._overhead(self._prompt(kind), count)
        margin = max(16, window // 50)
        budget = window - answer - overhead - margin - extra
        if budget < 32:
            raise ContextLengthExceededError(
                f"The context window ({window} tokens) leaves no room for text: the {kind} prompt takes "
                f"{overhead} tokens and {answer + extra} are kept for answers. Use a model or n_ctx with a "
                "larger window, or pass a smaller max_answer_tokens.",
                n_ctx=window,
                prompt_tokens=overhead,
                max_tokens=answer,
            )
        return budget

    def steps(self, docs: list[Document]) -> Generator[_Step, list[str], _Final]:
        """Yield batches of prompts to run; return the final prompt (not run)."""
        count = self.count or token_counter(self.llm)
        window = self.window if self.window is not None else context_window(self.llm)
        answer = self.answer if self.answer is not None else answer_tokens(self.llm)
        text = _JOINER.join(doc.page_content.strip() for doc in docs)
        budget = self._budget("summarize", window, answer, count)
        method = self.method
        if method in ("auto", "stuff"):
            total = count(text)
            if total <= budget:
                return _Final(_fill(self._prompt("summarize"), text=text), "stuff", [])
            if method == "stuff":
                raise ContextLengthExceededError(
                    f"The text has {total} tokens but only {budget} fit the model's {window}-token window "
                    "with the prompt and the answer. Use method='map_reduce', 'refine' or 'auto'.",
                    prompt_tokens=total,
                    n_ctx=window,
                    max_tokens=answer,
                )
            method = "map_reduce"
        if method == "refine":
            return (yield from self._refine(text, window, answer, count))
        return (yield from self._map_reduce(text, budget, window, answer, count))

    def _map_reduce(
        self, text: str, budget: int, window: int, answer: int, count: Callable[[str], int]
    ) -> Generator[_Step, list[str], _Final]:
        chunks = split_to_budget(text, budget, count, self.chunk_overlap)
        summarize = self._prompt("summarize")
        answers = [s.strip() for s in (yield _Step([_fill(summarize, text=c) for c in chunks], "map"))]
        # A chunk summary that only repeats the worked example says nothing about its chunk.
        summaries = [s for s in answers if not echoes_example(summarize, s)] or answers
        intermediate = list(answers)
        combine = self._prompt("combine")
        combine_budget = self._budget("combine", window, answer, count)
        while True:
            groups = group_to_budget(summaries, combine_budget, count, _JOINER)
            if len(groups) == 1:
                return _Final(_fill(combine, text=_JOINER.join(groups[0])), "map_reduce", intermediate)
            if len(groups) >= len(summaries):
                raise ContextLengthExceededError(
                    f"The summaries do not get shorter: each takes more than {combine_budget} tokens, "
                    "so they cannot be combined. Bound the model's answer length (max_tokens) or pass "
                    "a smaller max_answer_tokens.",
                    n_ctx=window,
                    max_tokens=answer,
                )
            summaries = [
                s.strip()
                for s in (yield _Step([_fill(combine, text=_JOINER.join(g)) for g in groups], "combine"))
            ]
            intermediate.extend(summaries)

    def _refine(
        self, text: str, window: int, answer: int, count: Callable[[str], int]
    ) -> Generator[_Step, list[str], _Final]:
        # Each refine prompt holds the running summary (up to one answer) and a chunk.
        budget = self._budget("refine", window, answer, count, extra=answer)
        chunks = split_to_budget(text, budget, count, self.chunk_overlap)
        first = _fill(self._prompt("summarize"), text=chunks[0])
        if len(chunks) == 1:
            return _Final(first, "refine", [])
        refine = self._prompt("refine")
        summary = (yield _Step([first], "refine"))[0].strip()
        intermediate = [summary]
        for chunk in chunks[1:-1]:
            summary = (yield _Step([_fill(refine, existing_answer=summary, text=chunk)], "refine"))[0].strip()
            intermediate.append(summary)
        return _Final(_fill(refine, existing_answer=summary, text=chunks[-1]), "refine", intermediate)

    # --- drivers ----------------------------------------------------------------------

    def _finish(self, final: _Final) -> Runnable[Any, str]:
        # Returned from the RunnableLambda, so stream()/astream_events() stream the answer.
        return RunnableLambda(lambda _: final.prompt, name="final_prompt") | self._model()

    def _model(self) -> Runnable[Any, str]:
        # Every kind's completion prompt ends its answer at the same place (a new line).
        return text_model(self.llm, self._prompt("summarize"))

    def _result(self, final: _Final, output: str) -> dict[str, Any]:
        return {"output_text": output, "intermediate_steps": final.intermediate_steps, "method": final.method}

    def run(self, value: Any, config: RunnableConfig) -> Any:
        model = self._model()
        concurrency, servers = fleet_concurrency(self.llm, self.max_concurrency)
        gen = self.steps(documents_of(value))
        with Progress(self.progress, "Summarising") as progress:
            try:
                step = next(gen)
                while True:
                    progress.add(len(step.prompts))
                    step_config = patch_config(config, run_name=f"summarize_{step.kind}")
                    answers = map_bounded(
                        rerun_interrupted(partial(model.invoke, config=step_config), servers),
                        step.prompts,
                        concurrency,
                        progress.update,
                    )
                    step = gen.send(answers)
            except StopIteration as stop:
                final: _Final = stop.value
            if not self.return_intermediate_steps:
                return self._finish(final)
            progress.add(1)
            output = model.invoke(final.prompt, config)
            progress.update()
        return self._result(final, output)

    async def arun(self, value: Any, config: RunnableConfig) -> Any:
        model = self._model()
        concurrency, servers = fleet_concurrency(self.llm, self.max_concurrency)
        gen = self.steps(documents_of(value))
        with Progress(self.progress, "Summarising") as progress:
            try:
                step = next(gen)
                while True:
                    progress.add(len(step.prompts))
                    step_config = patch_config(config, run_name=f"summarize_{step.kind}")
                    answers = await amap_bounded(
                        arerun_interrupted(partial(model.ainvoke, config=step_config), servers),
                        step.prompts,
                        concurrency,
                        progress.update,
                    )
                    step = gen.send(answers)
            except StopIteration as stop:
                final: _Final = stop.value
            if not self.return_intermediate_steps:
                return self._finish(final)
            progress.add(1)
            output = await model.ainvoke(final.prompt, config)
            progress.update()
        return self._result(final, output)


def summarize_chain(
    llm: Runnable[Any, Any],
    method: Method = "auto",
    *,
    max_concurrency: int | None = None,
    chunk_overlap: int = 0,
    progress: bool | None = None,
    return_intermediate_steps: bool = False,
    context_window: int | None = None,
    max_answer_tokens: int | None = None,
    token_counter: Callable[[str], int] | None = None,
    prompts: dict[str, ConditionalPromptSelector] | None = None,
) -> Runnable[Any, Any]:
    """A runnable summarising a ``str``, a ``Document`` or a list of Documents.

    Args:
        llm: Any LangChain LLM or chat model; this package's backends give the exact
            tokenizer, context window and prompt format.
        method: ``"stuff"`` (one prompt), ``"map_reduce"`` (summarise chunks
            concurrently, then combine), ``"refine"`` (one chunk after the other,
            improving a running summary) or ``"auto"``: stuff when the text fits the
            context window, else map_reduce.
        max_concurrency: Most map steps running at once per server (match a server's
            ``--parallel`` slots); default 4, and for an in-process ``LlamaCpp``/``ChatLlamaCpp``
            its ``n_parallel`` (its map steps then share each forward pass). With a
            fleet (``base_url=[...]``) the fleet's capacity is used: this per server, or
            each server's ``endpoint_max_concurrency``. A map step whose server stopped
            mid-answer is run again on another server (its partial answer dropped).
        chunk_overlap: Tokens shared by consecutive chunks.
        progress: Show a tqdm progress bar for multi-chunk work: True, False, or None
            for "when stderr is a terminal".
        return_intermediate_steps: Return ``{"output_text", "intermediate_steps",
            "method"}`` instead of the summary string; the intermediate steps are the
            chunk (and combine-round, or refine) summaries.
        context_window: Tokens the model sees; default ``llm.get_context_window()``
            (or ``n_ctx``/``num_ctx``), else 2048.
        max_answer_tokens: Room kept for each answer; default the model's
            ``max_tokens``/``num_predict``/``n_predict``, else 256.
        token_counter: Counts tokens; default ``llm.get_num_tokens`` when the model has
            its own tokenizer, else about three characters per token.
        prompts: Selectors replacing the built-in per-format prompts, by kind:
            ``"summarize"`` (takes ``{text}``), ``"combine"`` (``{text}``) and
            ``"refine"`` (``{existing_answer}`` and ``{text}``).

    Returns:
        A runnable returning the summary (streamable), or a dict with the
        intermediate steps when asked for.
    """
    if method not in _METHODS:
        raise InvalidParameterError(
            f"Unknown method {method!r}; use one of {', '.join(_METHODS)}.", method=method
        )
    for name, value in (("max_concurrency", max_concurrency), ("context_window", context_window)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise InvalidParameterError(
                f"{name} must be a positive integer; got {value!r}.", parameter=name, value=value
            )
    for name, value in (("chunk_overlap", chunk_overlap), ("max_answer_tokens", max_answer_tokens)):
        if value is not None and (not isinstance(value, int) or value < 0):
            raise InvalidParameterError(
                f"{name} must be a non-negative integer; got {value!r}.", parameter=name, value=value
            )
    selectors = {
        kind: with_completion_prompt(format_prompt_selector(text, SYSTEM), COMPLETION_PROMPTS[kind])
        for kind, text in (("summarize", SUMMARIZE), ("combine", COMBINE), ("refine", REFINE))
    }
    unknown = sorted(set(prompts or {}) - set(selectors))
    if unknown:
        raise InvalidParameterError(
            f"Unknown prompt kind(s) {unknown}; use 'summarize', 'combine' or 'refine'.", prompts=unknown
        )
    selectors.update(prompts or {})
    summarizer = _Summarizer(
        llm=llm,
        method=method,
        max_concurrency=max_concurrency,
        chunk_overlap=chunk_overlap,
        progress=progress,
        return_intermediate_steps=return_intermediate_steps,
        window=context_window,
        answer=max_answer_tokens,
        count=token_counter,
        prompts=selectors,
    )
    return RunnableLambda(summarizer.run, afunc=summarizer.arun, name="summarize")
