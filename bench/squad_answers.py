"""Answer quality on SQuAD 2.0 (../shared/data/qa/squad2): 123 answerable and 127 unanswerable questions over
411 Wikipedia passages.

Prints, per answer mode (extractive always; an LLM when --llm-url or OPENAI_BASE_URL is given):
- answer-contains-reference rate on the answerable questions (any reference answer, case-insensitive);
- citation precision: share of citations that point at a chunk of the question's own passage;
- citation support: share of cited sentences the checker (rag.citations) finds supported;
- the "not found" gate: precision/recall of saying "not in the documents" for the unanswerable questions, swept
  over thresholds of the closest-chunk cosine (the `not_found_threshold` setting), with time to first token.

    .venv/bin/python bench/squad_answers.py [--llm-url http://127.0.0.1:8080/v1] [--limit N] [--json]

The passages are indexed once under tmp/bench/squad2-<hash> (kept for the next run).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rag import demo_corpus, extractive  # noqa: E402
from rag.chat import ChatConfig, answer_stream  # noqa: E402
from rag.index import Index  # noqa: E402
from rag.llm import ChatLLM  # noqa: E402
from rag.settings import load_settings  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "qa" / "squad2"


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def contains_reference(answer: str, references: list[str]) -> bool:
    return any(_norm(r) and _norm(r) in _norm(answer) for r in references)


def build_index(data: Path) -> Index:
    raw = (data / "passages.jsonl").read_bytes()
    key = hashlib.sha256(raw).hexdigest()[:12]
    base = ROOT / "tmp" / "bench" / f"squad2-{key}"
    docs = base / "docs"
    if not docs.is_dir():
        docs.mkdir(parents=True)
        for line in raw.decode().splitlines():
            p = json.loads(line)
            (docs / f"{p['_id']}.txt").write_text(p["text"], encoding="utf-8")
    index = Index(load_settings(data_dir=base / "rag-data", collection="squad2"))
    t0 = time.perf_counter()
    report = index.ingest([docs])
    if report.added:
        print(f"indexed {report.added} passages in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return index


def passage_of(result: Any) -> str:
    return Path(result.source).stem


def sweep(rows: list[dict[str, Any]], key: str, thresholds: list[float] | None = None) -> list[dict[str, float]]:
    """Precision/recall of "not found" (positive = unanswerable) for thresholds over the observed scores."""
    scores = sorted({round(r[key], 3) for r in rows})
    out = []
    for t in thresholds or [scores[int(i * (len(scores) - 1) / 40)] for i in range(41)]:
        predicted = [r for r in rows if r[key] < t]
        tp = sum(r["impossible"] for r in predicted)
        positives = sum(r["impossible"] for r in rows)
        precision = tp / len(predicted) if predicted else 1.0
        recall = tp / positives if positives else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        answerable = [r for r in rows if not r["impossible"]]
        lost = sum(1 for r in answerable if r[key] < t) / len(answerable)
        out.append({"threshold": t, "precision": precision, "recall": recall, "f1": f1, "answerable_lost": lost})
    return out


def _combined(rows: list[dict[str, Any]], off: list[float], threshold: float) -> dict[str, float]:
    """Precision/recall of "not found" over SQuAD plus the off-topic control (positives: unanswerable + off-topic)."""
    said_squad = [r for r in rows if r["relevance"] < threshold]
    said_off = sum(r < threshold for r in off)
    tp = sum(r["impossible"] for r in said_squad) + said_off
    positives = sum(r["impossible"] for r in rows) + len(off)
    said = len(said_squad) + said_off
    return {"precision": tp / said if said else 1.0, "recall": tp / positives}


def run_mode(index: Index, questions: list[dict[str, Any]], llm: ChatLLM | None) -> dict[str, Any]:
    config = ChatConfig(model=index.settings.llm_model, context_window=index.settings.context_window)
    rows = []
    for q in questions:
        t0 = time.perf_counter()
        results = index.search(q["question"])
        relevance = index.relevance(q["question"]) or 0.0
        stream = answer_stream(q["question"], results, index.embedder, llm, config=config, started=t0)
        for _ in stream:
            pass
        a = stream.answer
        cited = [c for c in a.citations]
        rows.append(
            {
                "impossible": bool(q["is_impossible"]),
                "relevance": relevance,
                "retrieved_gold": any(passage_of(r) == q["passage_id"] for r in results),
                "top1_gold": bool(results) and passage_of(results[0]) == q["passage_id"],
                "contains": contains_reference(a.answer, q["answers"]) if q["answers"] else False,
                "citations": len(cited),
                "citations_gold": sum(1 for c in cited if Path(c.source).stem == q["passage_id"]),
                "claims": a.claims,
                "unsupported": len({u["claim"] for u in a.unsupported}),
                "says_not_found": not a.found,
                "ttft": stream.first_token_seconds or 0.0,
                "sentence_score": extractive.relevance(
                    extractive.best_sentences(q["question"], results, index.embedder)
                )
                if llm is None
                else 0.0,
            }
        )
    answerable = [r for r in rows if not r["impossible"]]
    citations = sum(r["citations"] for r in answerable)
    claims = sum(r["claims"] for r in rows)
    unanswerable = [r for r in rows if r["impossible"]]
    said = [r for r in rows if r["says_not_found"]]
    return {
        "mode": "llm" if llm else "extractive",
        "answerable": len(answerable),
        "contains_reference": sum(r["contains"] for r in answerable) / len(answerable),
        "retrieved_gold@k": sum(r["retrieved_gold"] for r in answerable) / len(answerable),
        "top1_gold": sum(r["top1_gold"] for r in answerable) / len(answerable),
        "citation_precision": sum(r["citations_gold"] for r in answerable) / citations if citations else 0.0,
        "claims_supported": 1 - sum(r["unsupported"] for r in rows) / claims if claims else 0.0,
        "answer_says_not_found": {
            "precision": sum(r["impossible"] for r in said) / len(said) if said else 0.0,
            "recall": sum(r["says_not_found"] for r in unanswerable) / len(unanswerable),
        },
        "ttft_median_s": statistics.median(r["ttft"] for r in rows),
        "rows": rows,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--llm-url", default=os.environ.get("OPENAI_BASE_URL"))
    ap.add_argument("--llm-model", default=os.environ.get("RAG_LLM_MODEL", "local"))
    ap.add_argument("--limit", type=int, default=0, help="first N questions only")
    ap.add_argument("--threshold", type=float, help="report the not-found gate at this threshold")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    questions = [json.loads(line) for line in (args.data / "questions.jsonl").read_text().splitlines()]
    if args.limit:
        questions = questions[: args.limit]
    index = build_index(args.data)
    threshold = args.threshold if args.threshold is not None else index.settings.not_found_threshold
    modes = [run_mode(index, questions, None)]
    if args.llm_url:
        llm = ChatLLM(args.llm_model, args.llm_url, os.environ.get("OPENAI_API_KEY"), 120.0, 0.0)
        modes.append(run_mode(index, questions, llm))
    rows = modes[0]["rows"]
    # Off-topic control: the same questions asked of the bundled demo corpus, which holds none of their answers.
    demo = Index(load_settings(data_dir=ROOT / "tmp" / "bench" / "demo", collection="demo"))
    demo.ingest([demo_corpus()])
    off = [demo.relevance(q["question"]) or 0.0 for q in questions]
    table = sweep(rows, "relevance")
    best = max(table, key=lambda r: r["f1"])
    (at,) = sweep(rows, "relevance", [threshold])
    gate = {
        "signal": "cosine of the question to its closest chunk",
        "unanswerable_relevance_median": statistics.median(r["relevance"] for r in rows if r["impossible"]),
        "answerable_relevance_median": statistics.median(r["relevance"] for r in rows if not r["impossible"]),
        "best_f1": best,
        "at_setting": {**at, "setting": threshold},
        "off_topic_max_relevance": max(off),
        "off_topic_recall_at_setting": sum(r < threshold for r in off) / len(off),
        "combined_at_setting": _combined(rows, off, threshold),
        "sentence_score_best_f1": max(sweep(rows, "sentence_score"), key=lambda r: r["f1"]),
    }
    summary = {
        "questions": len(questions),
        "not_found_gate": gate,
        "modes": [{k: v for k, v in m.items() if k != "rows"} for m in modes],
    }
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"SQuAD 2.0: {len(questions)} questions")
    for m in summary["modes"]:
        print(f"\n[{m['mode']}] (no not-found gate)")
        for k, v in m.items():
            if k != "mode":
                print(f"  {k}: {json.dumps(v) if isinstance(v, dict) else round(v, 3)}")
    print("\nnot-found gate on closest-chunk cosine (positive = unanswerable):")
    print("  threshold  precision  recall  f1     answerable-lost")
    for r in table[::2]:
        cells = [r["threshold"], r["precision"], r["recall"], r["f1"], r["answerable_lost"]]
        print("  " + "  ".join(f"{c:9.3f}" for c in cells))
    print(
        f"  medians: unanswerable {gate['unanswerable_relevance_median']:.3f}, "
        f"answerable {gate['answerable_relevance_median']:.3f}"
    )
    print(f"  best F1: {json.dumps({k: round(v, 3) for k, v in best.items()})}")
    alt = max(sweep(rows, "sentence_score"), key=lambda r: r["f1"])
    print(f"  best extractive sentence score as signal, F1: {json.dumps({k: round(v, 3) for k, v in alt.items()})}")
    print(
        f"  off-topic control (same questions, demo corpus): max cosine {gate['off_topic_max_relevance']:.3f}, "
        f"caught at the setting {gate['off_topic_recall_at_setting']:.3f}"
    )
    combined = {k: round(v, 3) for k, v in gate["combined_at_setting"].items()}
    print(f"  SQuAD + off-topic at the setting: {json.dumps(combined)}")
    print(f"  at not_found_threshold={threshold}: {json.dumps({k: round(v, 3) for k, v in at.items()})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
