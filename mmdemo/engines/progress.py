"""Loading progress: transformers' own progress bars ("Loading weights", downloads) reported as text."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from transformers.utils import logging as hf_logging


class _Counted:
    """A progress bar that also tells ``report`` how far it is."""

    def __init__(self, bar: object, report: Callable[[str], None]) -> None:
        self._bar, self._report, self._done = bar, report, 0
        self._desc = getattr(bar, "desc", "") or "loading"
        self._total = getattr(bar, "total", None)

    def _tell(self) -> None:
        total = f"/{self._total} ({100 * self._done / self._total:.0f} %)" if self._total else ""
        self._report(f"{self._desc.lower()}: {self._done}{total}")

    def __iter__(self) -> Iterator[object]:
        for item in self._bar:
            self._done += 1
            self._tell()
            yield item

    def update(self, n: int = 1) -> object:
        self._done += n
        self._tell()
        return self._bar.update(n)

    def __enter__(self) -> _Counted:
        self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.__exit__(*exc)

    def __getattr__(self, name: str) -> object:
        return getattr(self._bar, name)


@contextlib.contextmanager
def reporting(report: Callable[[str], None]) -> Iterator[None]:
    """While the block runs, every transformers progress bar also calls ``report("loading weights: 12/43
    (28 %)")``."""
    previous = hf_logging.set_tqdm_hook(lambda factory, args, kwargs: _Counted(factory(*args, **kwargs), report))
    try:
        yield
    finally:
        hf_logging.set_tqdm_hook(previous)
