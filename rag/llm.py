"""The LLM: any OpenAI-compatible chat completions endpoint, through the `openai` client.

The `openai` client is used directly rather than llama-index's `OpenAI` LLM, which insists on known model names
and calls tiktoken in ways that download (shared/design/RECIPES.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from rag.errors import LLMError


class ChatLLM:
    def __init__(self, model: str, base_url: str | None, api_key: str | None, timeout: float, temperature: float):
        import openai

        self.model = model
        self.base_url = base_url or "https://api.openai.com/v1"
        self.temperature = temperature
        self._client = openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout, max_retries=1)

    def _fail(self, exc: Exception) -> LLMError:
        return LLMError(
            f"The LLM at {self.base_url} (model {self.model!r}) failed: {exc}. Check OPENAI_BASE_URL, "
            "OPENAI_API_KEY and RAG_LLM_MODEL, or answer without an LLM (--no-llm)."
        )

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        """Text deltas of the reply, as they arrive."""
        try:
            response: Any = self._client.chat.completions.create(
                model=self.model,
                messages=messages,
                temperature=self.temperature,
                stream=True,  # type: ignore[arg-type]
            )
            for event in response:
                if event.choices and event.choices[0].delta and event.choices[0].delta.content:
                    yield event.choices[0].delta.content
        except LLMError:
            raise
        except Exception as exc:  # openai raises APIError subclasses, httpx errors, JSON errors
            raise self._fail(exc) from exc

    def complete(self, messages: list[dict[str, str]]) -> str:
        try:
            response: Any = self._client.chat.completions.create(
                model=self.model,
                messages=messages,
                temperature=self.temperature,  # type: ignore[arg-type]
            )
            return response.choices[0].message.content or ""
        except Exception as exc:
            raise self._fail(exc) from exc
