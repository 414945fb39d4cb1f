"""Seed lists as people type them: '0-99', '3,7,11', '0-4,10'."""
from __future__ import annotations


def parse_seeds(spec: str) -> list[int]:
    """Expand a seed spec into a list, in the order written; raises ValueError naming the bad part."""
    seeds: list[int] = []
    for part in str(spec).replace(" ", "").split(","):
        if not part:
            raise ValueError(f"empty entry in seed list '{spec}'")
        lo, sep, hi = part.partition("-")
        try:
            if sep:
                first, last = int(lo), int(hi)
                if last < first:
                    raise ValueError
                seeds.extend(range(first, last + 1))
            else:
                seeds.append(int(part))
        except ValueError:
            raise ValueError(f"bad seed entry '{part}' in '{spec}' (use N, N-M or a comma list)") from None
    if any(s < 0 for s in seeds):
        raise ValueError(f"seeds must be non-negative: '{spec}'")
    return seeds
