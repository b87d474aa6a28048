"""Structured output that fits its token budget, decoded in process with llama-cpp-python.

:func:`budgeted_completion` decodes an answer under the grammar of a JSON schema (or any
:class:`~langchain_localllm._core.decoding.pattern.Grammar`) and keeps it within
``max_tokens``: a valid document always fits, or the typed
:class:`~langchain_localllm.errors.TokenBudgetError` is raised before any token is generated.

How. The text is followed by a :class:`~langchain_localllm._core.decoding.tracker.ParseState`,
which knows the bytes of the shortest valid completion of what is open. Each token the model
samples is checked *before* it is evaluated: if, after it, the tokens left could no longer
hold that completion (a token is at least one byte, so bytes bound tokens), the token is
dropped and the grammar is narrowed from the state before it:

1. when there is slack left (the token tried to open an optional property, an item or a
   longer alternative the budget cannot hold), only the structure narrows: no new optional
   property, item or whitespace; strings keep their length, and the check goes on;
2. when the budget is down to what is open (or after step 1 runs out), the grammar is cut
   to the budget: the open string must close in time, later values share what is left.

Below the bytes. A budget below the shortest answer's bytes but not below its tokens (by the
model's own tokenizer, :class:`~langchain_localllm.llamacpp.token_writer.TokenWriter`: Gemma
writes ``{"city":"","country":""}``, 24 bytes, in 7 tokens) is counted in tokens: a sampled
token passes while the tokens that then write the shortest completion still fit; when they
would not, the decoder writes that completion from before the token itself, as those tokens,
and the answer ends (``closed_at`` in the report). Once the bytes fit again, the grammar's
narrowing above keeps the budget.

So the budget is applied as decoding goes (a field uses what earlier fields left), and the
grammar narrows only when the token the model actually chose would not fit, not at a
worst-case threshold. This is exact where a rule "narrow when the slack falls below the
largest increase any token can cause" would have to bound that increase over the whole
vocabulary, and narrow earlier.

Mechanism. The check is :class:`BudgetGate`, free of I/O: it is offered each sampled token and
passes it on, holds it (it ends inside a character) or drops it for a narrowed grammar. Two
loops drive it, both through a call's
:class:`~langchain_localllm.llamacpp.runtime.CompletionSettings` carrying a :class:`TokenBudget`
(which sets the budget and the full grammar up front, or raises the typed error):

* alone, in the one generation loop
  (:func:`~langchain_localllm.llamacpp.runtime.stream_completion`), it wraps the model's
  ``generate``: narrowing restarts ``Llama.generate`` on the prompt plus the tokens passed on,
  under the narrowed grammar (llama-cpp-python keeps the evaluated prefix, so the restart
  re-evaluates one token). The loop's per-step model lock, state save/restore and
  cancellation apply unchanged (a restart happens inside a step, under the lock);
* shared, on the batched engine (``llamacpp.batching``, a sequence's ``gate``): a dropped
  token is resampled at once, from the same logits, under a sampler chain with the narrowed
  grammar; when tokens were held, they are taken back out of the sequence's KV cells and the
  last token passed on is decoded again at the next step, to resample from its logits.

Either way the dropped token was sampled but never evaluated.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

from langchain_localllm._core.decoding.budget import check_budget, narrowed_grammar
from langchain_localllm._core.decoding.pattern import Grammar, min_length, to_gbnf
from langchain_localllm._core.decoding.tracker import ParseState, Tracker
from langchain_localllm._inprocess.model_cache import LoadedModel
from langchain_localllm.llamacpp.runtime import (
    CompletionSettings,
    check_grammar,
    import_llama_cpp,
    stream_completion,
)
from langchain_localllm.llamacpp.token_writer import TokenWriter

__all__ = [
    "BudgetGate",
    "BudgetReport",
    "BudgetedCompletion",
    "TokenBudget",
    "Verdict",
    "budgeted_completion",
]

#: The most bytes kept free for each later string by default.
MAX_RESERVE = 16

#: ``Llama.generate`` (bound): prompt tokens and sampling arguments in, token ids out.
Generate = Callable[..., Generator[int, None, None]]

#: ``create_completion`` arguments the loop sets itself.
_OWN_ARGS = ("grammar", "max_tokens", "stream", "stop", "echo", "logprobs", "suffix")


@dataclass
class BudgetReport:
    """How a budgeted completion went (filled as it runs; final once the stream ends)."""

    budget: int
    """Tokens the answer could use: ``max_tokens``, or what the prompt left of the context."""
    minimum_tokens: int
    """Bytes of the shortest valid answer: the least budget that guarantees one."""
    prompt_tokens: int
    """Tokens of the prompt."""
    completion_tokens: int = 0
    """Tokens of the answer."""
    narrowed: bool = False
    """The budget narrowed the grammar (the model would have written past it otherwise)."""
    narrowed_at: int | None = None
    """Answer tokens written when the grammar first narrowed."""
    cut_to_budget_at: int | None = None
    """Answer tokens written when the grammar was cut to the budget (strings must close)."""
    closed_at: int | None = None
    """Answer tokens written when the decoder wrote the rest itself: the shortest completion,
    as the model's own tokens (a budget below the answer's bytes, counted in tokens)."""
    dropped_tokens: int = 0
    """Sampled tokens dropped because they did not fit (resampled under the narrowed grammar)."""
    taken_back: int = 0
    """Held tokens (the start of a character split over tokens, never passed on) taken back
    when the grammar narrowed before the character was whole."""
    finish_reason: str = "length"
    """``"stop"`` when the answer is a whole document (the grammar allows nothing more),
    else ``"length"``."""
    complete: bool = False
    """The text is a whole sentence of the grammar (valid JSON for the schema)."""
    timings: dict[str, Any] = field(default_factory=dict)
    """llama.cpp's prompt and generation timings."""
    untracked: int = 0
    """Tokens llama.cpp's grammar accepted that the tracker did not (0 unless the two disagree)."""

    def generation_info(self) -> dict[str, Any]:
        """The answer's ``generation_info``/``response_metadata`` entries."""
        return {
            "finish_reason": self.finish_reason,
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens,
            },
            "timings": self.timings,
            "budget_narrowed": self.narrowed,
            "token_budget": {
                "max_tokens": self.budget,
                "minimum_tokens": self.minimum_tokens,
                "narrowed_at": self.narrowed_at,
                "cut_to_budget_at": self.cut_to_budget_at,
                "closed_at": self.closed_at,
            },
        }


class TokenBudget:
    """Budget-aware decoding of one completion (see the module): put it in the completion's
    :class:`~langchain_localllm.llamacpp.runtime.CompletionSettings` (``budget=``); one per call.

    Args:
        schema: A JSON schema (``{}``/``{"type": "object"}``: any JSON value/object), or a
            grammar in the IR.
        reserve: Bytes kept free for each string (or number) the answer still has to write
            after the one being written, so that a string looping on does not leave later
            fields empty; what a field does not use passes on. Default: an even split of
            half the slack above the shortest answer, at most :data:`MAX_RESERVE`.
    """

    def __init__(self, schema: dict[str, Any] | Grammar, *, reserve: int | None = None) -> None:
        from langchain_localllm._core.decoding.json_grammar import json_schema_grammar

        self.grammar = schema if isinstance(schema, Grammar) else json_schema_grammar(schema)
        self.tracker = Tracker(self.grammar)
        self._reserve = reserve
        self.reserve = 0
        """Bytes kept free for each string still to write (set by :meth:`prepare`)."""
        self.report: BudgetReport | None = None
        """How the completion went (set by :meth:`prepare`, final once the stream ends)."""
        self._gbnf: tuple[str, Any] | None = None
        self._gate: BudgetGate | None = None

    def prepare(self, llm: Any, prompt_tokens: int, max_tokens: int | None) -> tuple[int, tuple[str, Any]]:
        """The completion's budget and full grammar (GBNF, compiled), before any token.

        Raises:
            TokenBudgetError: the budget (``max_tokens``, or what the prompt leaves of the
                context) cannot hold the shortest valid answer.
        """
        if self.report is None:
            least_bytes = min_length(self.grammar)
            least_tokens = TokenWriter.of(llm).count(self.tracker.start().shortest_completion())
            budget = check_budget(
                self.grammar,
                max_tokens or 0,
                prompt_tokens=prompt_tokens,
                n_ctx=int(llm.n_ctx()),
                shortest_tokens=least_tokens,
            )
            minimum = min(least_bytes, least_tokens)
            self.report = BudgetReport(budget, minimum, prompt_tokens)
            reserve = self._reserve
            if reserve is None:
                pieces = max(self.tracker.start().later_pieces(), 1)
                reserve = min((budget - least_bytes) // (2 * pieces), MAX_RESERVE)
            self.reserve = max(reserve, 0)
        if self._gbnf is None:
            full = to_gbnf(self.grammar)
            check_grammar(llm, full)
            self._gbnf = (full, import_llama_cpp().LlamaGrammar.from_string(full, verbose=False))
        return self.report.budget, self._gbnf

    def gate(self, llm: Any) -> BudgetGate:
        """This completion's budget check, for a decoding loop to drive (after :meth:`prepare`)."""
        self._gate = BudgetGate(self, llm)
        return self._gate

    def wrap(self, llm: Any, generate: Generate) -> Generate:
        """The model's ``generate`` for this completion, with the budget check."""
        return _Driver(self.gate(llm), generate).generate

    def finish(self, info: dict[str, Any]) -> None:
        """The completion ended: fill the report, and put it into the final ``info``."""
        report, gate = self.report, self._gate
        assert report is not None
        if gate is not None:
            report.completion_tokens = len(gate.passed)
            report.complete = gate.state.complete
        report.finish_reason = "stop" if report.complete else "length"
        report.timings = info.get("timings") or {}
        info.update(report.generation_info())


def budgeted_completion(
    model: LoadedModel | Any,
    prompt_tokens: list[int],
    schema: dict[str, Any] | Grammar,
    max_tokens: int | None,
    *,
    reserve: int | None = None,
    **sampling: Any,
) -> BudgetedCompletion:
    """An answer to ``prompt_tokens`` valid against ``schema`` within ``max_tokens`` tokens.

    Args:
        model: A :class:`~langchain_localllm._inprocess.model_cache.LoadedModel` (its per-step lock
            is taken as the answer streams), or a bare ``llama_cpp.Llama`` used by nothing else
            at the same time.
        prompt_tokens: The prompt's token ids.
        schema: A JSON schema, or a grammar in the IR (see :class:`TokenBudget`).
        max_tokens: The answer's budget (``None``/``<= 0``: what the context leaves).
        reserve: See :class:`TokenBudget`.
        sampling: ``create_completion``'s sampling arguments (temperature, top_p, top_k,
            min_p, repeat_penalty, seed, ...). Stop sequences do not apply: the grammar ends
            the answer, and a stop string inside a JSON string would cut a value.

    Raises:
        TokenBudgetError: the budget cannot hold the shortest valid answer (nothing generated).
        InvalidParameterError: an invalid schema or sampling argument.
    """
    return BudgetedCompletion(model, prompt_tokens, schema, max_tokens, sampling, reserve=reserve)


class BudgetedCompletion:
    """Iterate for the answer's text pieces; :attr:`report` says how it went."""

    def __init__(
        self,
        model: LoadedModel | Any,
        prompt_tokens: list[int],
        schema: dict[str, Any] | Grammar,
        max_tokens: int | None,
        sampling: dict[str, Any],
        *,
        reserve: int | None = None,
    ) -> None:
        self.loaded = model if isinstance(model, LoadedModel) else LoadedModel(("budgeted", id(model)), model)
        self.prompt = list(prompt_tokens)
        self.budget = TokenBudget(schema, reserve=reserve)
        self.budget.prepare(self.loaded.model, len(self.prompt), max_tokens)  # the typed error, now
        self.settings = CompletionSettings(
            sampling={k: v for k, v in sampling.items() if k not in _OWN_ARGS},
            max_tokens=max_tokens or -1,
            budget=self.budget,
        )
        self.text = ""
        """The answer so far."""
        self.info: dict[str, Any] | None = None
        """The final information (finish reason, usage, timings, budget), once the stream ends."""

    @property
    def report(self) -> BudgetReport:
        """How the completion went (final once the stream ends)."""
        assert self.budget.report is not None
        return self.budget.report

    def __iter__(self) -> Iterator[str]:
        for text, info in stream_completion(self.loaded, self.prompt, self.settings):
            if info is not None:
                self.info = info
            if text:
                self.text += text
                yield text


@dataclass(frozen=True)
class Verdict:
    """What :meth:`BudgetGate.offer` decided about one sampled token."""

    passed: tuple[int, ...] = ()
    """Tokens passed on now: the held ones (a character split over tokens), then this one."""
    end: bool = False
    """Nothing follows ``passed``: the token ends generation (end of generation), or the
    decoder wrote the rest of the answer itself (the budget counted in tokens)."""
    narrowed: str | None = None
    """The token was dropped, not passed: resample it under this GBNF grammar (the narrowed
    one, for the rest of the answer from the last passed token on)."""
    rewind: int = 0
    """With ``narrowed``: held tokens (sampled and evaluated, never passed) to take back, so
    that the resample follows the last passed token."""


class BudgetGate:
    """The budget check of one completion, free of I/O (see the module): each sampled token is
    :meth:`offer`-ed before it is evaluated, and passed on, held (it ends inside a character)
    or dropped for a narrowed grammar. Both decoding loops drive one: ``Llama.generate``
    (:meth:`TokenBudget.wrap`) and the batched engine (``llamacpp.batching``, its ``gate``)."""

    def __init__(self, budget: TokenBudget, llm: Any) -> None:
        assert budget.report is not None, "prepare() first"
        self.report = budget.report
        self.reserve = budget.reserve
        self.llm = llm
        self.state: ParseState = budget.tracker.start()
        """The state after the tokens passed on."""
        self.passed: list[int] = []
        """The tokens passed on so far (the answer)."""
        self._llama_cpp = import_llama_cpp()
        self._vocab = llm._model.vocab
        self._level = 0  # 0: full grammar, 1: structure narrowed, 2: cut to the budget
        self._held: list[int] = []  # sampled tokens ending inside a character: passed once it is whole
        self._tail = b""  # the bytes of that unfinished character
        self._work = self.state  # the state after the held tokens' whole characters
        self._writer = TokenWriter.of(llm)
        # Below the shortest completion's bytes, the budget is counted in the model's tokens:
        # the tokens that write that completion (None: the bytes fit, the grammar narrows).
        self._close: list[int] | None = None
        if self.state.shortest > self.report.budget:
            self._close = self._writer.tokens(self.state.shortest_completion())
            if self._close is None or len(self._close) > self.report.budget:  # prepare() checked it
                raise AssertionError("the budget cannot hold the shortest completion's tokens")

    def offer(self, token: int) -> Verdict:
        """Decide about the token the model sampled after the passed and held tokens."""
        report, budget, reserve = self.report, self.report.budget, self.reserve
        if self._llama_cpp.llama_vocab_is_eog(self._vocab, token):
            return Verdict(passed=(token,), end=True)
        data = self._tail + self._writer.piece(token)
        whole, missing = _utf8_split(data)
        work = self._work
        after = work.feed(data[:whole].decode("utf-8", errors="replace")) if whole else work
        used = len(self.passed) + len(self._held) + 1
        if self._close is not None:
            return self._offer_counted(token, after if not missing else None, used)
        fits = after is not None and after.shortest + missing <= budget - used
        if fits and reserve and self._level < 2:
            assert after is not None
            fits = after.shortest + missing + reserve * after.later_pieces() <= budget - used
        if not fits and self._level < 2:
            if after is None:
                report.untracked += 1
            report.dropped_tokens += 1
            opened = after is None or after.shortest + missing > work.shortest
            state = self.state
            slack = budget - len(self.passed) - state.shortest - reserve * state.later_pieces()
            self._level = 1 if self._level == 0 and opened and slack > 0 else 2
            report.narrowed = True
            if report.narrowed_at is None:
                report.narrowed_at = len(self.passed)
            if self._level == 2:
                report.cut_to_budget_at = len(self.passed)
            cut = None if self._level == 1 else budget - len(self.passed)
            narrowed = to_gbnf(narrowed_grammar(state, cut))
            check_grammar(self.llm, narrowed)
            rewind = len(self._held)
            report.taken_back += rewind
            self._held, self._tail, self._work = [], b"", state
            return Verdict(narrowed=narrowed, rewind=rewind)
        if after is None:  # llama.cpp's grammar took what the tracker refuses: keep going
            report.untracked += 1
            after = work
        self._work = after
        if missing:
            self._held.append(token)
            self._tail = data[whole:]
            return Verdict()
        ready, self._held, self._tail, self.state = (*self._held, token), [], b"", after
        self.passed.extend(ready)
        return Verdict(passed=ready)

    def _offer_counted(self, token: int, after: ParseState | None, used: int) -> Verdict:
        """The budget counted in tokens: pass the token if the tokens that then write the
        shortest completion still fit; else write the completion from before it ourselves."""
        report, budget = self.report, self.report.budget
        if after is not None and not self._held:
            close = self._writer.tokens(after.shortest_completion())
            if close is not None and len(close) <= budget - used:
                self.passed.append(token)
                self.state = self._work = after
                # once the bytes fit again, the grammar's narrowing keeps the budget from here
                self._close = None if after.shortest <= budget - len(self.passed) else close
                return Verdict(passed=(token,))
        closing = tuple(self._close or ())
        report.dropped_tokens += 1
        report.narrowed = True
        if report.narrowed_at is None:
            report.narrowed_at = len(self.passed)
        report.closed_at = len(self.passed)
        done = self.state.feed(self.state.shortest_completion())
        assert done is not None
        assert done.complete
        self.passed.extend(closing)
        self.state, self._held, self._tail, self._close = done, [], b"", None
        return Verdict(passed=closing, end=True)


class _Driver:
    """``Llama.generate`` for one completion, driven through its :class:`BudgetGate`: a
    narrowed grammar restarts generation on the prompt plus the tokens passed on."""

    def __init__(self, gate: BudgetGate, inner: Generate) -> None:
        self.gate = gate
        self._inner_generate = inner

    def generate(self, tokens: Any, **kwargs: Any) -> Generator[int, None, None]:
        gate, prompt = self.gate, list(tokens)
        inner = self._inner_generate(prompt, **kwargs)
        try:
            while True:
                try:
                    token = next(inner)
                except StopIteration:
                    return
                verdict = gate.offer(token)
                if verdict.narrowed is not None:
                    inner.close()
                    grammar = import_llama_cpp().LlamaGrammar.from_string(verdict.narrowed, verbose=False)
                    kwargs["grammar"] = grammar
                    inner = self._inner_generate(prompt + gate.passed, **kwargs)
                    continue
                yield from verdict.passed  # create_completion may stop after any of them
                if verdict.end:
                    return
        finally:
            inner.close()


def _utf8_split(data: bytes) -> tuple[int, int]:
    """Bytes of ``data`` that form whole characters, and how many bytes the last one still lacks."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return len(data), 0
        if byte >= 0xC0:  # the lead byte of the last character
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return (len(data) - back, need - back) if back < need else (len(data), 0)
    return len(data), 0
