"""Progress for long commands: a bar redrawn in place on a terminal, plain lines otherwise.

Layer: control plane (CLI). Progress messages are sentences; one that ends in a count ``k/n``
(``link key: 3/8 links hold ...``, ``20 km: block 4/10``) is drawn as a bar on one terminal line
and redrawn until the count completes or another message comes. Anything not a terminal (a
pipe, a CI log) gets every message as its own line, as before.
"""

from __future__ import annotations

import re
from typing import TextIO

COUNT = re.compile(r"(\d+)/(\d+)")
BAR_WIDTH = 24


class Progress:
    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.terminal = stream.isatty()
        self._open = False  # a bar is drawn on the current line

    def __call__(self, message: str) -> None:
        count = COUNT.search(message)
        if not (self.terminal and count and int(count.group(2)) > 0):
            self._end_line()
            self.stream.write(f"  {message}\n")
            self.stream.flush()
            return
        done, total = int(count.group(1)), int(count.group(2))
        filled = BAR_WIDTH * min(done, total) // total
        self.stream.write(f"\r\x1b[2K  [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {message}")
        self._open = True
        if done >= total:
            self._end_line()
        self.stream.flush()

    def _end_line(self) -> None:
        if self._open:
            self.stream.write("\n")
            self._open = False
