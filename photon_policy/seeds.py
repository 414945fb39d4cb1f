"""Seed lists as people type them: '0-99', '3,7,11', '0-4,10'."""
from __future__ import annotations

MAX_SEED = 2**32 - 1
"""Seeds travel as uint32 (EpisodeStatus.seed); a larger one cannot be reported, so it is refused."""
MAX_SEEDS = 100_000
"""Most seeds one spec may list: a run of 100,000 episodes is days of simulation, so a longer list is a
typo, and refusing it before expanding it keeps `0-100000000` from filling memory."""


def parse_seeds(spec: str) -> list[int]:
    """Expand a seed spec into a list, in the order written; raises ValueError naming the bad part."""
    seeds: list[int] = []
    for part in str(spec).replace(" ", "").split(","):
        if not part:
            raise ValueError(f"empty entry in seed list '{spec}'")
        lo, sep, hi = part.partition("-")
        try:
            first, last = (int(lo), int(hi)) if sep else (int(part), int(part))
        except ValueError:
            raise ValueError(f"bad seed entry '{part}' in '{spec}' (use N, N-M or a comma list)") from None
        if first < 0 or last < 0:
            raise ValueError(f"seeds must be non-negative: '{part}' in '{spec}'")
        if last < first:
            raise ValueError(f"bad seed entry '{part}' in '{spec}': range ends before it starts")
        if last > MAX_SEED:
            raise ValueError(f"seed {last} in '{spec}' is larger than {MAX_SEED} (seeds are uint32)")
        # Count before expanding: the length of a range costs nothing, its list can cost gigabytes.
        if len(seeds) + (last - first + 1) > MAX_SEEDS:
            raise ValueError(f"'{spec}' lists more than {MAX_SEEDS} seeds")
        seeds.extend(range(first, last + 1))
    return seeds
