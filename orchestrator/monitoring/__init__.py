"""What operators run beside a network: Prometheus alert and recording rules (``rules.yml``)."""

from __future__ import annotations

import pathlib

RULES_FILE = pathlib.Path(__file__).with_name("rules.yml")
