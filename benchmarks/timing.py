"""Interleaved sampling: every configuration is sampled once per round, in a new order each round,
so that the drift of a noisy machine spreads over all of them instead of favouring one."""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

Sampler = Callable[[], float]
"""Takes one sample of a configuration: microseconds per call, or requests per second."""


@dataclass(frozen=True)
class Result:
    name: str
    samples: list[float]  # one per round

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def low(self) -> float:
        return min(self.samples)

    @property
    def high(self) -> float:
        return max(self.samples)


def paired_median(combine: Callable[..., float], *results: Result) -> float:
    """Median over rounds of `combine` applied to the results' samples of the same round.

    Comparing samples of one round with each other cancels drift between rounds, which a
    comparison of medians taken over all rounds would not.
    """
    return statistics.median(map(combine, *(result.samples for result in results)))


def interleave(samplers: dict[str, Sampler], *, rounds: int, seed: int = 1) -> list[Result]:
    """Sample each configuration once per round, after one warm-up sample each."""
    for sampler in samplers.values():
        sampler()
    order = list(samplers)
    samples: dict[str, list[float]] = {name: [] for name in order}
    shuffle = random.Random(seed).shuffle
    for _ in range(rounds):
        shuffle(order)
        for name in order:
            gc.collect()
            samples[name].append(samplers[name]())
    return [Result(name, samples[name]) for name in samplers]


def per_call_microseconds(run: Callable[[int], object], calls: int) -> Sampler:
    """A sampler that times `run(calls)` and divides by the number of calls."""

    def sample() -> float:
        start = time.perf_counter()
        run(calls)
        return (time.perf_counter() - start) / calls * 1e6

    return sample
