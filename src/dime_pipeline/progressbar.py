"""Progress of the long loops of the command line (stores packed, samples inverted or made).

On a terminal a counter is redrawn in place on stderr; elsewhere (a rule's log file) an INFO
line appears every tenth of the way with the elapsed time and an estimate of what is left. Both
are off under ``--quiet`` (the root logger at WARNING), so the one error line stays alone.
Training has its own per-epoch lines (``dime.progress``).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator, Sequence

log = logging.getLogger(__name__)


def each[T](items: Sequence[T], what: str) -> Iterator[T]:
    """Yield ``items``, reporting ``what: i/n`` as they are done."""
    total = len(items)
    if total == 0 or not log.isEnabledFor(logging.INFO):
        yield from items
        return
    terminal = sys.stderr.isatty()
    every = max(1, total // 10)
    start = time.perf_counter()
    for done, item in enumerate(items, 1):
        yield item
        elapsed = time.perf_counter() - start
        left = elapsed / done * (total - done)
        if terminal:
            print(f"\r{what}: {done}/{total}, {left:.0f} s left ", end="", file=sys.stderr)
            if done == total:
                print(file=sys.stderr)
        elif done % every == 0 or done == total:
            log.info("%s: %d/%d (%.1f s, about %.0f s left)", what, done, total, elapsed, left)
