"""Streamed chat replies from any OpenAI-compatible server, through the openai
package's async client. Failures become LLMError with one line for the person."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, cast
from urllib.parse import urlsplit

import openai
from openai.types.chat import ChatCompletionMessageParam

from ..errors import ProviderError
from ..settings import Settings
from ..text import valid_text

HF_ROUTER_URL = "https://router.huggingface.co/v1"
OPENAI_DEFAULT_MODEL = "gpt-4.1-mini"
HF_DEFAULT_MODEL = "meta-llama/Llama-3.1-8B-Instruct"
NOT_CONFIGURED = ("Talk needs an LLM, and none is configured. On the server, set OPENAI_API_KEY (plus "
                  "OPENAI_BASE_URL and LLM_MODEL for another OpenAI-compatible server), or HF_TOKEN on a "
                  "Hugging Face Space, then restart. Repeat works without one.")


class LLMError(ProviderError):
    """str() is one clear line; nothing about the key."""


class LLM:
    def __init__(self, api_key: str, base_url: str | None, model: str, timeout_s: float,
                 max_tokens: int) -> None:
        self.model, self.base_url, self.max_tokens = model, base_url, max_tokens
        self._client = openai.AsyncOpenAI(api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=0)

    async def stream(self, messages: list[dict[str, Any]]) -> AsyncGenerator[str, None]:
        """The reply's text as it arrives. Cancelling the consumer closes the request."""
        got_any = False
        try:
            stream = await self._client.chat.completions.create(
                model=self.model, messages=cast(list[ChatCompletionMessageParam], messages), stream=True,
                max_tokens=self.max_tokens)
            try:
                async for chunk in stream:
                    delta = chunk.choices[0].delta.content if chunk.choices else None
                    if delta:
                        got_any = True
                        yield valid_text(delta)  # a lone surrogate would break every later JSON reply
            finally:
                await stream.close()
        except openai.AuthenticationError:
            raise LLMError("The LLM server refused the key. Check OPENAI_API_KEY or HF_TOKEN on the server.") from None
        except openai.RateLimitError:
            raise LLMError("The LLM server is rate-limiting or out of quota. Wait a moment and try again.") from None
        except openai.APITimeoutError:
            raise LLMError("The LLM did not answer in time. Try again.") from None
        except openai.APIConnectionError:
            raise LLMError(f"Cannot reach the LLM server at {self.where}. Check OPENAI_BASE_URL.") from None
        except openai.NotFoundError:
            raise LLMError(f"The LLM server does not know the model {self.model!r}. Check LLM_MODEL.") from None
        except openai.APIStatusError as exc:
            raise LLMError(f"The LLM server returned an error (HTTP {exc.status_code}). Try again.") from None
        except openai.APIError:  # e.g. an error event in the middle of the stream
            raise LLMError("The LLM server reported an error while answering. Try again.") from None
        except ValueError:  # a malformed event
            raise LLMError("The LLM server sent a reply this app cannot read. Check OPENAI_BASE_URL.") from None
        if not got_any:
            raise LLMError("The LLM returned an empty reply. Try asking differently.")

    @property
    def where(self) -> str:
        """The server's address for messages: scheme, host and port only (no credentials)."""
        if not self.base_url:
            return "the default OpenAI address"
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")

    async def aclose(self) -> None:
        await self._client.close()


def llm_from(settings: Settings) -> LLM | None:
    """The configured LLM, or None. HF_TOKEN alone goes through Hugging Face's router."""
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    if key or settings.openai_base_url:
        return LLM(key or "not-needed", settings.openai_base_url, settings.llm_model or OPENAI_DEFAULT_MODEL,
                   settings.llm_timeout_s, settings.llm_max_tokens)
    if settings.hf_token is not None and settings.hf_token.get_secret_value():
        return LLM(settings.hf_token.get_secret_value(), HF_ROUTER_URL, settings.llm_model or HF_DEFAULT_MODEL,
                   settings.llm_timeout_s, settings.llm_max_tokens)
    return None
