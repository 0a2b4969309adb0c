"""The server-wide concurrency budget: its bounded line of callers waiting for a slot."""

from __future__ import annotations

import asyncio

from skylift.engine.budget import MAX_WAITING, Budget


def test_callers_that_gave_up_do_not_keep_others_from_waiting():
    async def scenario() -> tuple[bool, int, int]:
        budget = Budget(limit=1)
        assert await budget.take(0)  # the only slot, held throughout
        # A full line of callers that each give up after 10 ms, and no release meanwhile.
        gave_up = await asyncio.gather(*(budget.take(0.01) for _ in range(MAX_WAITING)))
        assert not any(gave_up)
        # The next caller may still wait, and gets the slot when it is given back.
        late = asyncio.ensure_future(budget.take(1.0))
        await asyncio.sleep(0.05)
        budget.give_back()
        return await late, budget.waiting, budget.throttles

    got_slot, waiting, throttles = asyncio.run(scenario())
    assert got_slot and waiting == 0 and throttles == MAX_WAITING


def test_a_full_line_throttles_at_once():
    async def scenario() -> tuple[list[bool], int]:
        budget = Budget(limit=1)
        assert await budget.take(0)
        line = [asyncio.ensure_future(budget.take(0.5)) for _ in range(MAX_WAITING)]
        await asyncio.sleep(0)
        extra = await budget.take(0.5)  # the line is full of live callers
        for _ in range(MAX_WAITING):
            budget.give_back()
        return [extra, *await asyncio.gather(*line)], budget.running

    results, running = asyncio.run(scenario())
    assert results[0] is False and all(results[1:])
    assert running == 1  # the first holder's slot passed down the line
