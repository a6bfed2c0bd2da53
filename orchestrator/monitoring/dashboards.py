"""Grafana dashboards for a qkdnet network, built from one table of panels per view.

Layer: control plane (plain data, no I/O but ``write``). Three views, the ones operators keep
open: executive (is the network delivering keys, against its SLO?), on-call (what is firing,
which links are down, dry or noisy?) and debug (one link or node in detail, chosen with the
``link`` and ``node`` variables). Every query reads the metrics of docs/metrics.md or the
recording rules of ``rules.yml``; the live-Prometheus test runs each one. The JSON files beside
this module are this module's output (``python -m qkdnet.orchestrator.monitoring.dashboards``
rewrites them; a test checks they match).
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

DIRECTORY = pathlib.Path(__file__).with_name("dashboards")
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
LINK_FILTER = 'link=~"$link"'
NODE_FILTER = 'qkdnet_node=~"$node"'

# (title, panel type, unit, [(legend, query), ...], width)
Panel = tuple[str, str, str, list[tuple[str, str]], int]

EXECUTIVE: list[Panel] = [
    ("Key availability (enc_keys served, 1 h)", "stat", "percentunit",
     [("", "1 - (qkdnet:etsi_enc_keys_unavailable:ratio_rate1h or vector(0))")], 6),
    ("SLO burn rate, 6 h (99 % objective; 1 = spending the budget exactly)", "stat", "short",
     [("", "(qkdnet:etsi_enc_keys_unavailable:ratio_rate6h or vector(0)) / 0.01")], 6),
    ("End-to-end keys delivered (1 h)", "stat", "short",
     [("", 'sum(increase(qkdnet_audit_events_total{event="delivered"}[1h]))')], 6),
    ("Links in service", "stat", "percentunit",
     [("", 'avg(qkdnet_link_up{role="transmitter"})')], 6),
    ("Secret key generated (bit/s)", "timeseries", "bps",
     [("all links", 'sum(qkdnet:link_secret_key_bits:rate5m{role="transmitter"})')], 12),
    ("Relays by outcome (per s)", "timeseries", "ops",
     [("{{outcome}}", "sum by (outcome) (rate(qkdnet_relays_total[5m]))")], 12),
]

ON_CALL: list[Panel] = [
    ("Firing alerts", "table", "short",
     [("", 'ALERTS{alertstate="firing", alertname=~"Qkdnet.*"}')], 24),
    ("Links not in service", "table", "short",
     [("", "qkdnet_link_up == 0")], 12),
    ("Link states", "bargauge", "short",
     [("{{state}}", 'sum by (state) (qkdnet_link_state{role="transmitter"})')], 12),
    ("QBER per link", "timeseries", "percentunit",
     [("{{link}}", 'qkdnet_link_qber_ratio{role="transmitter"}')], 12),
    ("Pool level per link end (fraction of capacity)", "timeseries", "percentunit",
     [("{{node}} -> {{peer}}", "qkdnet_link_pool_bits / qkdnet_link_pool_capacity_bits")], 12),
    ("Blocks aborted by reason (per s)", "timeseries", "ops",
     [("{{reason}}", 'sum by (reason) (rate(qkdnet_link_blocks_aborted_total{role="transmitter"}[5m]))')], 12),
    ("ETSI 014 answers by code (per s)", "timeseries", "reqps",
     [("{{code}}", "sum by (code) (rate(qkdnet_etsi_requests_total[5m]))")], 12),
]

DEBUG: list[Panel] = [
    ("QBER (last block) and per intensity", "timeseries", "percentunit",
     [("{{link}} {{role}}", f"qkdnet_link_qber_ratio{{{LINK_FILTER}}}"),
      ("{{link}} {{intensity}}", f'qkdnet_link_qber_per_intensity_ratio{{{LINK_FILTER}, role="transmitter"}}')], 12),
    ("Secret and sifted key (bit/s)", "timeseries", "bps",
     [("secret {{link}}", f'rate(qkdnet_link_secret_key_bits_total{{{LINK_FILTER}, role="transmitter"}}[5m])'),
      ("sifted {{link}}", f'rate(qkdnet_link_sifted_bits_total{{{LINK_FILTER}, role="transmitter"}}[5m])')], 12),
    ("Pool level, low watermark and capacity (bits)", "timeseries", "short",
     [("level {{node}}", f"qkdnet_link_pool_bits{{{LINK_FILTER}}}"),
      ("low watermark {{node}}", f"qkdnet_link_pool_low_watermark_bits{{{LINK_FILTER}}}"),
      ("capacity {{node}}", f"qkdnet_link_pool_capacity_bits{{{LINK_FILTER}}}")], 12),
    ("Key consumed, discarded, authentication (bit/s)", "timeseries", "bps",
     [("consumed {{node}}", f"rate(qkdnet_link_key_consumed_bits_total{{{LINK_FILTER}}}[5m])"),
      ("discarded {{node}}", f"rate(qkdnet_link_key_discarded_bits_total{{{LINK_FILTER}}}[5m])"),
      ("authentication {{node}}", f"rate(qkdnet_link_auth_key_consumed_bits_total{{{LINK_FILTER}}}[5m])")], 12),
    ("Blocks accepted and aborted (per s)", "timeseries", "ops",
     [("accepted", f'sum(rate(qkdnet_link_blocks_accepted_total{{{LINK_FILTER}, role="transmitter"}}[5m]))'),
      ("aborted: {{reason}}", f'sum by (reason) (rate(qkdnet_link_blocks_aborted_total{{{LINK_FILTER}, '
                              f'role="transmitter"}}[5m]))')], 12),
    ("Emulated clock lag and resynchronisations", "timeseries", "s",
     [("lag {{node}}", f"qkdnet_link_emulated_clock_lag_seconds{{{LINK_FILTER}}}"),
      ("resyncs/s {{node}}", f"rate(qkdnet_link_resyncs_total{{{LINK_FILTER}}}[5m])")], 12),
    ("Relay duration p50 / p99 at the source", "timeseries", "s",
     [("p50", f"histogram_quantile(0.5, sum by (le) (rate(qkdnet_relay_duration_seconds_bucket{{{NODE_FILTER}}}[5m])))"),
      ("p99", f"histogram_quantile(0.99, sum by (le) (rate(qkdnet_relay_duration_seconds_bucket{{{NODE_FILTER}}}"
              f"[5m])))")], 12),
    ("ETSI 014 duration p99 by endpoint", "timeseries", "s",
     [("{{endpoint}}", f"histogram_quantile(0.99, sum by (le, endpoint) (rate(qkdnet_etsi_request_duration_seconds_"
                       f"bucket{{{NODE_FILTER}}}[5m])))")], 12),
    ("Key-store commit p99", "timeseries", "s",
     [("{{qkdnet_node}}", f"histogram_quantile(0.99, sum by (le, qkdnet_node) (rate(qkdnet_keystore_commit_duration_"
                          f"seconds_bucket{{{NODE_FILTER}}}[5m])))")], 12),
    ("Keys held and lifecycle events (per s)", "timeseries", "short",
     [("held {{node}}", f"qkdnet_keys_held{{{NODE_FILTER}}}"),
      ("{{event}}", f"sum by (event) (rate(qkdnet_audit_events_total{{{NODE_FILTER}}}[5m]))"),
      ("forwarded/s {{node}}", f"rate(qkdnet_relays_forwarded_total{{{NODE_FILTER}}}[5m])")], 12),
]

VIEWS = {"executive": ("qkdnet — executive", EXECUTIVE), "on-call": ("qkdnet — on call", ON_CALL),
         "debug": ("qkdnet — link and node detail", DEBUG)}


def _variables(view: str) -> list[dict[str, Any]]:
    variables: list[dict[str, Any]] = [{"name": "datasource", "type": "datasource", "query": "prometheus",
                                        "label": "Prometheus"}]
    if view == "debug":
        for name, query in (("link", "label_values(qkdnet_link_up, link)"),
                            ("node", "label_values(qkdnet_keys_held, qkdnet_node)")):
            variables.append({"name": name, "type": "query", "datasource": DATASOURCE, "query": query,
                              "refresh": 2, "includeAll": True, "multi": True, "allValue": ".*",
                              "current": {"text": "All", "value": "$__all"}})
    return variables


def dashboard(view: str) -> dict[str, Any]:
    """One view as Grafana dashboard JSON (schema version 39)."""
    title, panels = VIEWS[view]
    built, x, y = [], 0, 0
    for panel_id, (panel_title, kind, unit, queries, width) in enumerate(panels, start=1):
        if x + width > 24:
            x, y = 0, y + 8
        built.append({
            "id": panel_id, "title": panel_title, "type": kind, "datasource": DATASOURCE,
            "gridPos": {"x": x, "y": y, "w": width, "h": 8},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "targets": [{"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend,
                         **({"instant": True, "format": "table"} if kind == "table" else {})}
                        for i, (legend, expr) in enumerate(queries)],
        })
        x += width
    return {"uid": f"qkdnet-{view}", "title": title, "tags": ["qkdnet"], "timezone": "browser",
            "schemaVersion": 39, "version": 1, "refresh": "10s", "time": {"from": "now-1h", "to": "now"},
            "templating": {"list": _variables(view)}, "panels": built}


def queries() -> list[str]:
    """Every PromQL query of every dashboard, with the variables set to match everything."""
    found = [expr for _, panels in VIEWS.values() for panel in panels for _, expr in panel[3]]
    return [q.replace('"$link"', '".*"').replace('"$node"', '".*"') for q in found]


def write(directory: pathlib.Path = DIRECTORY) -> list[pathlib.Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for view in VIEWS:
        path = directory / f"qkdnet-{view}.json"
        path.write_text(json.dumps(dashboard(view), indent=2) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write():
        print(written_path)
