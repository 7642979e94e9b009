"""The foundation's acceptance check on real documents from ../shared/data (made outside this project)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHARED_DATA
from tests.llm_server import LLMServer

DOCS = SHARED_DATA / "docs"
pytestmark = pytest.mark.skipif(not (DOCS / "txt").is_dir(), reason=f"shared data not found at {DOCS}")


@pytest.fixture(scope="module")
def real_index(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Any:
    from rag.index import Index
    from rag.settings import load_settings

    idx = Index(load_settings(data_dir=tmp_path_factory.mktemp("real")), embedder=embedder)
    report = idx.ingest([DOCS / "txt", DOCS / "pdf"])
    assert report.added >= 15, report
    # Password-protected and text-less PDFs are reported with their reason; everything else is indexed.
    reasons = {Path(f["source"]).name: f["error"].split(":")[0] for f in report.failed}
    assert set(reasons.values()) <= {"encrypted", "empty"} and reasons.get("loremipsum-flat.pdf") == "empty", reasons
    return idx


def test_iwan_roberts_birth_date_extractive(real_index: Any) -> None:
    answer = real_index.ask("When was Iwan Roberts born?")
    assert answer.mode == "extractive" and "26 June 1968" in answer.answer
    assert Path(answer.citations[0].source).name == "norwich-city.txt"


def test_iwan_roberts_birth_date_through_a_loopback_llm(real_index: Any, llm_server: LLMServer) -> None:
    from rag.index import Index

    settings = real_index.settings.model_copy(update={"openai_base_url": llm_server.base_url})
    answer = Index(settings, embedder=real_index.embedder).ask("When was Iwan Roberts born?")
    prompt = str(llm_server.chat_requests()[0]["body"]["messages"])
    assert "26 June 1968" in prompt and answer.mode == "llm"
    assert Path(answer.citations[0].source).name == "norwich-city.txt"
