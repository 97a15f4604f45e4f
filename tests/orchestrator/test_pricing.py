"""Prices: overrides, genai-prices lookups at a fixed date, clear errors."""

from __future__ import annotations

import pytest

from windtunnel.orchestrator import InvalidArgument, Price, PriceTable, UnknownPriceError, Usage


def test_genai_prices_lookup_for_current_claude_tiers() -> None:
    table = PriceTable()
    assert table.price("claude-haiku-4-5") == Price(input=1.0, output=5.0, cache_read=0.1, cache_write=1.25)
    assert table.price("claude-sonnet-4-5").output == pytest.approx(15.0)
    usage = Usage(input_tokens=1_000_000, output_tokens=100_000, cache_read_input_tokens=1_000_000)
    assert table.cost("claude-haiku-4-5", usage) == pytest.approx(1.0 + 0.5 + 0.1)


def test_overrides_win_and_lookups_can_be_switched_off() -> None:
    table = PriceTable({"claude-haiku-4-5": Price(input=9, output=9)}, lookup=False)
    assert table.price("claude-haiku-4-5").input == 9
    with pytest.raises(UnknownPriceError, match="no price for model='claude-sonnet-4-5'; add it to"):
        table.price("claude-sonnet-4-5")


def test_unknown_model() -> None:
    with pytest.raises(
        UnknownPriceError, match="no price for model='gpt-x' from 'anthropic' in genai-prices"
    ):
        PriceTable().price("gpt-x")


def test_negative_price_is_refused() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        Price(input=-1, output=0)


def test_overrides_must_be_prices() -> None:
    with pytest.raises(InvalidArgument) as raised:
        PriceTable({"my-model": 2.0})  # type: ignore[dict-item]
    assert str(raised.value) == "overrides['my-model']=2.0 must be a Price"
