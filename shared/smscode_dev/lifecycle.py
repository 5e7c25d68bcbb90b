"""The `with` plumbing every dev server shares: enter starts it, exit stops it."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Startable:
    """A server with `start() -> self` and `stop()`; `with server:` runs it for the block."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
