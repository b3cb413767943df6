"""Use cases as presets: typical prompt/output lengths and latency objectives (SLOs).

Lengths of question answering, summarization, chatbot and code generation are GenZ's defaults
(Bambhaniya et al., "Demystifying Platform Requirements for Diverse LLM Inference Use Cases",
2024; see docs/reference-results.md) **[paper]**. Retrieval-augmented generation and
long reasoning are our additions, and every SLO is an assumption; both are documented below.

SLO assumptions (time to first token, TTFT; time per output token after the first, TPOT):

* Interactive text is read at roughly 4-5 words/s, about 5-7 tokens/s, so a TPOT of 50 ms
  (20 tokens/s) keeps generation well ahead of the reader; non-streamed or skimmed outputs
  (summaries) tolerate 100 ms.
* TTFT budgets grow with the prompt because prefill work grows with it: 0.5 s for a chat turn,
  1 s for a question, 2 s for a 4-20k-token context (RAG, code), 5 s for a 15k-token document.
* Reasoning models emit thousands of hidden tokens before the answer; what users wait for is the
  total, so TPOT is tightened to 30 ms (8192 tokens in about 4 minutes).

>>> from workloads.usecases import USE_CASES, get_use_case
>>> uc = get_use_case("chatbot")
>>> (uc.prompt_tokens, uc.output_tokens, uc.ttft_slo_s, uc.tpot_slo_s)
(2048, 128, 0.5, 0.05)
>>> len(uc.workload(rate_per_s=2.0, num_requests=10).generate(seed=0))
10
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from workloads.requests import (
    Fixed,
    FixedRateArrivals,
    GammaArrivals,
    LogNormal,
    PoissonArrivals,
    Request,
    WorkloadSpec,
)

__all__ = ["USE_CASES", "UseCase", "get_use_case", "list_use_cases"]

ARRIVALS = ("poisson", "gamma", "fixed")


@dataclass(frozen=True)
class UseCase:
    """A use case: typical lengths (tokens) and latency objectives (seconds)."""

    name: str
    prompt_tokens: int
    output_tokens: int
    ttft_slo_s: float
    tpot_slo_s: float
    description: str = ""
    source: str = ""

    def workload(self, rate_per_s: float, num_requests: int, arrival: str = "poisson", cv: float = 1.0,
                 length_sigma: float = 0.0) -> WorkloadSpec:
        """A workload of this use case: ``arrival`` is one of 'poisson', 'gamma' (with coefficient of
        variation ``cv``) or 'fixed'. Lengths are fixed at the use case's values, or log-normal around
        them when ``length_sigma > 0`` (log-space standard deviation)."""
        if arrival == "poisson":
            proc = PoissonArrivals(rate_per_s)
        elif arrival == "gamma":
            proc = GammaArrivals(rate_per_s, cv)
        elif arrival == "fixed":
            proc = FixedRateArrivals(rate_per_s)
        else:
            raise ValueError(f"arrival must be one of {', '.join(ARRIVALS)}, got {arrival!r}")
        if length_sigma < 0:
            raise ValueError(f"length_sigma must be >= 0, got {length_sigma!r}")
        if length_sigma == 0:
            p, o = Fixed(self.prompt_tokens), Fixed(self.output_tokens)
        else:
            p, o = LogNormal(self.prompt_tokens, length_sigma), LogNormal(self.output_tokens, length_sigma)
        return WorkloadSpec(num_requests, proc, p, o)

    def trace(self, rate_per_s: float, num_requests: int, seed: int = 0, **kwargs) -> list[Request]:
        """Shorthand for ``self.workload(rate_per_s, num_requests, **kwargs).generate(seed)``."""
        return self.workload(rate_per_s, num_requests, **kwargs).generate(seed)


_GENZ = "GenZ default use case (Bambhaniya et al. 2024) [paper]; SLOs: assumption (module docstring)"

USE_CASES: dict[str, UseCase] = {u.name: u for u in (
    UseCase("question_answering", 1000, 200, 1.0, 0.05, "short question with context, paragraph answer", _GENZ),
    UseCase("summarization", 15000, 1000, 5.0, 0.10, "long document in, summary out", _GENZ),
    UseCase("chatbot", 2048, 128, 0.5, 0.05, "chat turn with history", _GENZ),
    UseCase("code_generation", 20000, 50, 2.0, 0.05, "repository context in, short completion out", _GENZ),
    UseCase("retrieval_augmented_generation", 4096, 256, 2.0, 0.05,
            "question plus about eight retrieved 512-token passages, paragraph answer",
            "assumption: 8 passages x 512 tokens is a common retriever setting; SLOs: assumption"),
    UseCase("reasoning", 1000, 8192, 1.0, 0.03,
            "short problem, long chain-of-thought output",
            "assumption: reasoning models (e.g. DeepSeek-R1) emit thousands of tokens per answer; "
            "SLOs: assumption"),
)}


def list_use_cases() -> list[str]:
    """Names of the shipped use cases."""
    return sorted(USE_CASES)


def get_use_case(name: str) -> UseCase:
    """The preset called ``name`` (ValueError with close matches otherwise)."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    aliases = {"qa": "question_answering", "rag": "retrieval_augmented_generation", "chat": "chatbot",
               "code": "code_generation", "summarisation": "summarization"}
    key = aliases.get(key, key)
    if key not in USE_CASES:
        close = difflib.get_close_matches(key, list(USE_CASES), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"use case must be one of {', '.join(list_use_cases())}, got {name!r}{hint}")
    return USE_CASES[key]
