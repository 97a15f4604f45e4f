"""Model prices: USD per million tokens, from local overrides or from ``genai-prices``.

A price is looked up once per model and cached, so that costing a call on the hot
path is four multiplications. Prices are taken as of a fixed date (``as_of``), so
that the cost of a simulated run does not change with the day it runs.
Long-context tiers (over 200k input tokens) are not modelled: the base rate applies.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field

from .errors import WindtunnelError
from .model import Usage
from .validation import check_type

__all__ = ["DEFAULT_PRICES_AS_OF", "Price", "PriceTable", "UnknownPriceError"]

DEFAULT_PRICES_AS_OF = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
"""The date prices are looked up for, unless a table says otherwise."""


class UnknownPriceError(WindtunnelError, LookupError):
    """No price is known for a model; give one in the price table's overrides."""


class Price(BaseModel):
    """What a model charges, in USD per million tokens.

    Example:
        >>> Price(input=1.0, output=5.0).cost(Usage(input_tokens=2000, output_tokens=100))
        0.0025
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0, description="USD per million uncached input tokens.")
    output: float = Field(ge=0, description="USD per million output tokens.")
    cache_read: float = Field(0.0, ge=0, description="USD per million input tokens read from the cache.")
    cache_write: float = Field(0.0, ge=0, description="USD per million input tokens written to the cache.")

    def cost(self, usage: Usage) -> float:
        """USD for one call's ``usage``."""
        return (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cache_read_input_tokens * self.cache_read
            + usage.cache_creation_input_tokens * self.cache_write
        ) / 1e6


class PriceTable:
    """Prices by model id: ``overrides`` first, then ``genai-prices`` for Anthropic models.

    Example:
        >>> table = PriceTable({"my-finetune": Price(input=2, output=8)})
        >>> table.cost("my-finetune", Usage(input_tokens=1_000_000, output_tokens=0))
        2.0
        >>> table.price("claude-haiku-4-5").output
        5.0
    """

    def __init__(
        self,
        overrides: Mapping[str, Price] | None = None,
        *,
        as_of: dt.datetime = DEFAULT_PRICES_AS_OF,
        provider: str = "anthropic",
        lookup: bool = True,
    ) -> None:
        """Args:
        overrides: prices that win over the library's, by model id.
        as_of: the date the library's prices are taken for.
        provider: the provider whose models the library looks up.
        lookup: False to use the overrides only.

        Raises:
            InvalidArgument: for an override that is not a :class:`Price`.
        """
        self._prices: dict[str, Price] = dict(overrides or {})
        for model, price in self._prices.items():
            check_type(f"overrides[{model!r}]", price, Price)
        self._as_of = as_of
        self._provider = provider
        self._lookup = lookup

    def price(self, model: str) -> Price:
        """The price of ``model``.

        Raises:
            UnknownPriceError: naming the model and how to give it a price.
        """
        price = self._prices.get(model)
        if price is None:
            price = self._prices[model] = self._find(model)
        return price

    def cost(self, model: str, usage: Usage) -> float:
        """USD for one call of ``model`` that used ``usage``."""
        return self.price(model).cost(usage)

    def _find(self, model: str) -> Price:
        import genai_prices  # deferred: only needed on a model's first lookup

        if not self._lookup:
            raise UnknownPriceError(f"no price for model={model!r}; add it to the price table's overrides")
        try:
            # Costing 1,000 tokens of each kind, below any long-context tier, gives the
            # base rates through the library's public API.
            rates = [
                float(
                    genai_prices.calc_price(
                        genai_prices.Usage(**tokens),
                        model,
                        provider_id=self._provider,
                        genai_request_timestamp=self._as_of,
                    ).total_price
                )
                * 1000
                for tokens in (
                    {"input_tokens": 1000},
                    {"output_tokens": 1000},
                    {"input_tokens": 1000, "cache_read_tokens": 1000},
                    {"input_tokens": 1000, "cache_write_tokens": 1000},
                )
            ]
        except LookupError as exc:
            raise UnknownPriceError(
                f"no price for model={model!r} from {self._provider!r} in genai-prices; "
                "add it to the price table's overrides"
            ) from exc
        return Price(input=rates[0], output=rates[1], cache_read=rates[2], cache_write=rates[3])
