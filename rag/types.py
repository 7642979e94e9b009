"""Plain result types of the public API. Each has `to_dict()` giving the `--json` shape of INTERFACES.md."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal


@dataclass(slots=True)
class SearchResult:
    """One retrieved chunk; higher `score` is better. `metadata` always has source, document_id and page."""

    id: str
    text: str
    score: float
    metadata: dict[str, Any]

    @property
    def source(self) -> str:
        return str(self.metadata.get("source", ""))

    @property
    def page(self) -> int | None:
        page = self.metadata.get("page")
        return int(page) if page is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "score": self.score, "metadata": dict(self.metadata)}


@dataclass(slots=True)
class Citation:
    """A `[n]` marker the answer uses, resolved to the chunk numbered n in the context."""

    n: int
    id: str
    source: str
    page: int | None
    text: str
    heading: str | None = None
    supported: bool = True  # every sentence citing this block is backed by it (rag.citations.check)
    quote: str = ""  # the block's sentence closest to the claim: the span to show as the source

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Answer:
    question: str
    answer: str
    mode: Literal["llm", "extractive"]
    found: bool
    citations: list[Citation]
    results: list[SearchResult]
    warnings: list[str] = field(default_factory=list)
    standalone_question: str | None = None  # what was searched for, when a follow-up was rewritten
    unsupported: list[dict[str, Any]] = field(default_factory=list)  # [{"claim": str, "n": int}] not backed
    claims: int = 0  # sentences that cite at least one existing block
    timings: dict[str, float] = field(default_factory=dict)  # first_token_s, total_s (streamed answers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "mode": self.mode,
            "found": self.found,
            "citations": [c.to_dict() for c in self.citations],
            "results": [r.to_dict() for r in self.results],
            "warnings": list(self.warnings),
            "standalone_question": self.standalone_question,
            "citation_check": {
                "claims": self.claims,
                "supported": self.claims - len({u["claim"] for u in self.unsupported}),
                "unsupported": list(self.unsupported),
            },
            "timings": dict(self.timings),
        }


class AnswerStream:
    """An answer arriving piece by piece.

    `results` (the retrieved chunks) are known before the first piece, so a UI can show sources at once. Iterate
    to get text deltas; after the iteration ends, `answer` holds the complete `Answer` with its citations.
    """

    def __init__(
        self,
        results: list[SearchResult],
        deltas: Iterator[str],
        finish: Callable[[str], Answer],
        standalone_question: str | None = None,
        started: float | None = None,
    ) -> None:
        self.results = results
        self.standalone_question = standalone_question
        self.first_token_seconds: float | None = None  # from the call to the first text delta
        self._deltas = deltas
        self._finish = finish
        self._answer: Answer | None = None
        self._started = started if started is not None else time.perf_counter()  # perf_counter()

    def __iter__(self) -> Iterator[str]:
        parts: list[str] = []
        for delta in self._deltas:
            if self.first_token_seconds is None:
                self.first_token_seconds = time.perf_counter() - self._started
            parts.append(delta)
            yield delta
        answer = self._finish("".join(parts))
        answer.timings.setdefault("first_token_s", round(self.first_token_seconds or 0.0, 4))
        answer.timings.setdefault("total_s", round(time.perf_counter() - self._started, 4))
        self._answer = answer

    @property
    def answer(self) -> Answer:
        if self._answer is None:
            for _ in self:  # drain: the caller did not need the pieces
                pass
        assert self._answer is not None
        return self._answer


@dataclass(slots=True)
class IngestReport:
    """What one `ingest` did; counts are of documents (files, URLs), as in `rag ingest --json`."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    chunks_added: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class IngestEvent:
    """Progress of an ingest, sent to the `progress` callback after each source.

    `status` is one of "added", "updated", "unchanged", "failed", "skipped"; `detail` holds the error or reason;
    `chunks` are this source's chunks written, `chunks_done` those of the whole run so far, `seconds` since it began.
    """

    source: str
    status: str
    done: int
    total: int
    chunks: int = 0
    detail: str = ""
    chunks_done: int = 0
    seconds: float = 0.0

    @property
    def files_per_second(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    @property
    def chunks_per_second(self) -> float:
        return self.chunks_done / self.seconds if self.seconds > 0 else 0.0
