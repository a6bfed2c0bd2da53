"""The ``qkdnet`` command line: subcommands, each calling one orchestrator or engine function.

User mistakes end with one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import yaml

from qkdnet.node.qkd.errors import QkdError
from qkdnet.node.qkd.params import PRESETS, ProcessingParams, link_params_from_mapping, preset
from qkdnet.node.settings import CLOCK_MODES, ClockMode

from .errors import QkdnetError
from .files import write_json

if TYPE_CHECKING:
    from .certs import CertPaths
    from .experiment.config import ExperimentConfig
    from .experiment.runner import RunResult
    from .state import StateDir
    from .supervisor_client import SupervisorClient
    from .topology import Topology


class _UsageError(Exception):
    pass


ISOLATION_HELP = ("process: every node a process on loopback (default); netns: every node in its own network "
                  "namespace, a veth pair per link with the link's classical_* attributes as tc netem (root)")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        raise _UsageError(f"{self.prog}: {message}")


def _float_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None
    if not values or any(not math.isfinite(v) or v < 0 for v in values):
        raise argparse.ArgumentTypeError("distances must be finite non-negative numbers")
    return values


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite: {text!r}")
    return value


def _non_negative(text: str) -> float:
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text!r}")
    return value


def _positive_float(text: str) -> float:
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"not a port number (0 to 65535): {text!r}")
    return int(text)


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"a seed is a whole number from 0 to 2^63 - 1: {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def load_mapping(path: pathlib.Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise QkdnetError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise QkdnetError(f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: "
                          f"{str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise QkdnetError(f"{path}: expected a mapping of parameter names to values")
    return data


def _cmd_keyrate(args: argparse.Namespace) -> int:
    from . import keyrate

    if args.params:
        try:
            params = link_params_from_mapping(load_mapping(args.params), base=preset(args.preset))
        except QkdError as exc:
            raise QkdnetError(f"{args.params}: {exc}") from None
    else:
        params = preset(args.preset)
    processing = ProcessingParams(block_detections=args.detections) if args.detections else ProcessingParams()
    reports = keyrate.measure(params, processing, args.distances, args.blocks, args.seed, _progress(args))
    print(keyrate.format_table(reports))
    if args.json:
        keyrate.write_json(reports, args.json)
    if args.plot:
        keyrate.write_plot(reports, args.plot, f"decoy-state BB84, preset {args.preset}")
    return 0


def _progress(args: argparse.Namespace) -> Callable[[str], None]:
    """Progress on stderr (bars on a terminal, lines otherwise), or nothing with --quiet."""
    if args.quiet:
        return lambda message: None
    from .progress import Progress

    return Progress(sys.stderr)


def _certs(topology: Topology, directory: pathlib.Path | None) -> CertPaths | None:
    """The PKI in ``directory``, every certificate present and right (or one line and exit 2)."""
    if directory is None:
        return None
    from . import certs

    return certs.load_for(topology, directory)


def _cmd_run(args: argparse.Namespace) -> int:
    import asyncio

    from . import run, topology
    from .files import write_json
    from .formatting import format_summary

    topo = topology.load(args.topology)
    pairs = run.parse_pairs(args.pairs, topo)
    if args.key_bits % 8:
        raise QkdnetError("--key-bits must be a multiple of 8")
    paths = _certs(topo, args.certs)
    summary = asyncio.run(run.run_network(topo, pairs, args.keys, args.key_bits, args.time_scale, args.seed,
                                          args.timeout, _progress(args), paths, args.attach_timeout, args.isolation,
                                          ClockMode(args.clock)))
    print(format_summary(summary))
    if args.json:
        write_json(args.json, summary.to_json())
    return 0 if summary.ok else 1


def _cmd_cleanup(args: argparse.Namespace) -> int:
    from . import netns

    namespaces, interfaces = netns.cleanup()
    print(f"removed {namespaces} network namespaces and {interfaces} host interfaces (and their processes)")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from . import topology
    from .export import export

    topo = topology.load(args.topology)
    written = export(topo, args.target, args.directory, args.image, args.force, args.certs)
    print(f"{args.target}: {len(written)} files in {args.directory} for {len(topo.nodes)} nodes "
          f"(see README, 'Containers and clusters')")
    return 0


async def _experiment_with_metrics(config: ExperimentConfig, args: argparse.Namespace,
                                   out: pathlib.Path, certs: CertPaths | None) -> list[RunResult]:
    """Run the experiment while serving its per-strategy results to Prometheus on 127.0.0.1."""
    import yaml

    from qkdnet.node.web.server import serve_app

    from .experiment.live_metrics import ExperimentMetrics
    from .experiment.runner import run_experiment
    from .files import write_atomically
    from .live_view.server import metrics_only_app, new_token

    metrics, token = ExperimentMetrics(), new_token()
    try:
        server = await serve_app(metrics_only_app(metrics.render, token), "127.0.0.1", args.metrics_port, None)
    except OSError as exc:
        raise QkdnetError(f"--metrics-port {args.metrics_port}: {exc.strerror}") from None
    try:
        out.mkdir(parents=True, exist_ok=True)
        scrape = out / "prometheus-experiment.yml"  # holds the token: its owner's alone
        write_atomically(scrape, yaml.safe_dump({"scrape_configs": [{
            "job_name": "qkdnet-experiment", "authorization": {"type": "Bearer", "credentials": token},
            "static_configs": [{"targets": [server.url.removeprefix("http://")]}]}]}, sort_keys=False), 0o600)
        print(f"  per-strategy metrics at {server.url}/metrics; scrape configuration with its token: {scrape}",
              file=sys.stderr, flush=True)
        return await run_experiment(config, _progress(args), metrics, certs, args.attach_timeout)
    finally:
        await server.close()


def _cmd_experiment(args: argparse.Namespace) -> int:
    import asyncio

    from .experiment.config import load_config
    from .experiment.report import write_results
    from .experiment.runner import run_experiment

    config = load_config(args.config)
    out = args.out or pathlib.Path("results") / config.name
    if out.exists() and any(out.iterdir()) and not args.force:
        raise QkdnetError(f"{out} exists and is not empty (use --force to overwrite its files)")
    from .network import require_pki_for_placed_nodes

    certs = _certs(config.topology, args.certs)
    require_pki_for_placed_nodes(config.topology, certs)  # before anything is written
    results = asyncio.run(_experiment_with_metrics(config, args, out, certs) if args.metrics_port is not None
                          else run_experiment(config, _progress(args), None, certs, args.attach_timeout))
    summary = write_results(config, results, out)
    print(f"{'strategy':<22} {'requests':>8} {'delivered':>9} {'blocking':>8} {'key b/s':>10} {'p99 ms':>8}")
    for label, r in summary["strategies"].items():
        print(f"{label:<22} {r['requests']:>8} {r['delivered']:>9} {r['blocking_probability']:>8} "
              f"{r['delivered_bits_per_s']:>10} {r['latency_ms_p99'] if r['latency_ms_p99'] is not None else '-':>8}")
    for warning in summary["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"results, plots and report.md in {out}")
    return 0


def _state(args: argparse.Namespace) -> StateDir:
    from .state import StateDir, default_state_dir

    return StateDir(args.state_dir or default_state_dir())


def _supervisor(args: argparse.Namespace) -> SupervisorClient:
    from .supervisor_client import SupervisorClient

    return SupervisorClient(_state(args))


def _cmd_up(args: argparse.Namespace) -> int:
    import subprocess

    from . import topology

    state = _state(args)
    running = state.read()
    if running:
        raise QkdnetError(f"a network is already up (topology {running['topology']}, supervisor pid "
                          f"{running['pid']}); run `qkdnet down` first")
    topo = topology.load(args.topology)  # validate before anything starts
    _certs(topo, args.certs)
    state.prepare()
    command = [sys.executable, "-m", "qkdnet.orchestrator.supervisor", args.topology, "--state-dir", str(state.path)]
    if args.time_scale is not None:
        command += ["--time-scale", str(args.time_scale)]
    if args.seed is not None:
        command += ["--seed", str(args.seed)]
    if args.certs is not None:
        command += ["--certs", str(args.certs.resolve())]
    if args.isolation != "process":
        command += ["--isolation", args.isolation]
    if args.clock != "realtime":
        command += ["--clock", args.clock]
    if not args.quiet:
        print(f"  starting {len(topo.nodes)} node processes...", file=sys.stderr, flush=True)
    with open(state.log_path, "ab") as log:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL,
                                   start_new_session=True)  # survives this shell's Ctrl-C
    progress = _progress(args)
    event: dict[str, Any] = {"event": "progress"}
    while event.get("event") == "progress":  # the supervisor's progress lines, then ready or failed
        line = process.stdout.readline() if process.stdout is not None else b""
        try:
            event = (json.loads(line) if line else
                     {"event": "failed", "error": f"supervisor exited; see {state.log_path}"})
        except json.JSONDecodeError:
            event = {"event": "failed", "error": f"supervisor said {line[:200]!r}; see {state.log_path}"}
        if event.get("event") == "progress":
            progress(str(event.get("message", "")))
    if process.stdout is not None:
        process.stdout.close()
    if event.get("event") != "ready":
        process.wait()
        raise QkdnetError(f"network did not come up: {event.get('error')}")
    nodes: dict[str, dict[str, str]] = dict(event["nodes"])
    info = {"schema_version": 1, "topology": topo.name, "supervisor_pid": event["pid"], "state_dir": str(state.path),
            "certs_dir": event["certs_dir"], "nodes": nodes, "view": event.get("view", ""),
            "saes": {sae: {"kme": node} for sae, node in topo.saes.items()}}
    print(f"network up: topology {topo.name}, {len(nodes)} nodes, supervisor pid {event['pid']}")
    width = max(4, *(len(n) for n in nodes)) + 2
    print(f"{'node':<{width}}{'gRPC':<22}{'KME (ETSI GS QKD 014)':<28}metrics (Prometheus)")
    for name, endpoints in nodes.items():
        print(f"{name:<{width}}{endpoints['grpc']:<22}{endpoints['kme']:<28}{endpoints.get('metrics') or '-'}")
    certs_dir = pathlib.Path(event["certs_dir"])
    sae, node = next(iter(topo.saes.items()))
    print(f"SAE certificates: {certs_dir / 'sae'} (CA {certs_dir / 'ca.pem'}); e.g. {sae} at {node}:")
    print(f"  curl --cacert {certs_dir / 'ca.pem'} --cert {certs_dir / 'sae' / (sae + '.pem')} "
          f"--key {certs_dir / 'sae' / (sae + '.key')} {nodes[node]['kme']}/api/v1/keys/{sae}/status")
    print(f"Prometheus: prometheus --config.file={state.path / 'prometheus.yml'} scrapes every node")
    if event.get("view"):
        print(f"live view: {event['view']}")
    print("next: qkdnet status | qkdnet relay SOURCE DESTINATION | qkdnet shell | qkdnet down")
    if args.json:
        write_json(args.json, info)
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from .formatting import format_status

    status = _supervisor(args).status()
    print(json.dumps(status.to_json(), indent=2) if args.json else format_status(status))
    return 0


def _cmd_relay(args: argparse.Namespace) -> int:
    from .formatting import format_relay

    if args.key_bits % 8:
        raise QkdnetError("--key-bits must be a multiple of 8")
    options = {"k": args.k} if args.strategy == "multipath" else {}
    result = _supervisor(args).relay(args.source, args.destination, args.keys, args.key_bits, args.timeout,
                                     args.strategy, options)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    elif result.ok:
        print(format_relay(result, args.key_bits))
    else:
        print(f"qkdnet: {format_relay(result, args.key_bits)}", file=sys.stderr)
    return 0 if result.ok else 1


def _cmd_revoke(args: argparse.Namespace) -> int:
    revoked = _supervisor(args).revoke(args.node, args.key_ids, args.reason)
    print(f"revoked {len(revoked)} key(s) at {args.node}")
    return 0


def _cmd_fault(args: argparse.Namespace) -> int:
    from .formatting import format_faults

    client = _supervisor(args)
    if args.fault_command == "list":
        print(format_faults(client.faults()))
        return 0
    if args.fault_command in ("kill", "restart"):
        print(client.node_fault(args.fault_command, args.node))
        return 0
    impairment = None
    if args.fault_command in ("impair", "clear"):
        impairment = {} if args.fault_command == "clear" else {
            field: value for field, value in (
                ("extra_loss_db", args.extra_loss_db), ("misalignment_error", args.misalignment),
                ("dark_count_factor", args.dark_count_factor), ("intercept_resend_fraction", args.intercept_resend),
                ("photon_number_splitting", args.pns or None),
                ("misalignment_drift_per_s", args.misalignment_drift)) if value is not None}
    kind = "impair" if args.fault_command == "clear" else args.fault_command
    print(client.fault(kind, args.u, args.v, impairment))
    return 0


def _cmd_dashboard(args: argparse.Namespace) -> int:
    running = _state(args).read()
    if running is None:
        raise QkdnetError("no network is up; start one with `qkdnet up`")
    if not running.get("view"):
        raise QkdnetError("the running network serves no live view (it was started by an older qkdnet)")
    print(f"live view of {running['topology']}: {running['view']}")
    return 0


def _cmd_down(args: argparse.Namespace) -> int:
    import time

    state = _state(args)
    running = state.read()
    if running is None:
        print("no network is up")
        return 0
    from .state import process_alive
    from .supervisor_client import SupervisorClient

    SupervisorClient(state).down()
    deadline = time.monotonic() + 60
    while process_alive(running["pid"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    if process_alive(running["pid"]):
        raise QkdnetError(f"supervisor pid {running['pid']} did not stop within 60 s")
    print(f"network down (topology {running['topology']})")
    return 0


def _cmd_shell(args: argparse.Namespace) -> int:
    from .shell import NetworkShell

    client = _supervisor(args)
    client.status()  # fails early, in one line, when nothing is up
    NetworkShell(client).cmdloop()
    return 0


def _cmd_audit_verify(args: argparse.Namespace) -> int:
    import sqlite3

    from qkdnet.node.keystore.audit import verify_file

    path = _state(args).path / "nodes" / args.node / "keys.db"
    try:
        count, problem = verify_file(path)
    except FileNotFoundError:
        raise QkdnetError(f"no key store for node {args.node!r} under {path.parent.parent}") from None
    except (OSError, ValueError, sqlite3.Error) as exc:
        raise QkdnetError(f"{path}: cannot read the audit log ({exc})") from None
    if problem is not None:
        print(f"{args.node}: {problem}")
        return 1
    print(f"{args.node}: {count} entries, intact")
    return 0


def _cmd_certs(args: argparse.Namespace) -> int:
    from . import certs, topology

    topo = topology.load(args.topology)
    paths = certs.create(topo, args.directory)
    print(f"development CA: {paths.ca_file}")
    print(f"{len(paths.kme)} KME certificates in {args.directory / 'kme'}, "
          f"{len(paths.sae)} SAE certificates in {args.directory / 'sae'}")
    sae, node = next(iter(topo.saes.items()))
    print(f"SAE {sae} attaches to KME {node}; call its KME (URL from `qkdnet up`) with, e.g.:")
    print(f"  curl --cacert {paths.ca_file} --cert {paths.sae[sae][0]} --key {paths.sae[sae][1]} "
          f"https://127.0.0.1:PORT/api/v1/keys/SLAVE_SAE_ID/status")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="qkdnet", description="Emulate trusted-node QKD networks.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    kr = sub.add_parser("keyrate", help="measured vs analytic secret key rate over distance")
    kr.add_argument("--preset", default="standard", choices=sorted(PRESETS))
    kr.add_argument("--params", type=pathlib.Path, help="YAML/JSON file of link parameters (overrides the preset)")
    kr.add_argument("--distances", type=_float_list, default=[0.0, 25.0, 50.0, 75.0, 100.0],
                    help="comma-separated fibre lengths in km")
    kr.add_argument("--detections", type=_positive_int, help="detections per block (default 4,000,000)")
    kr.add_argument("--blocks", type=_positive_int, default=1, help="blocks per distance")
    kr.add_argument("--seed", type=_seed, default=0)
    kr.add_argument("--json", type=pathlib.Path, help="write one object per distance to this file")
    kr.add_argument("--plot", type=pathlib.Path, help="draw rate vs distance to this PNG")
    kr.add_argument("--quiet", action="store_true", help="no progress lines")
    kr.set_defaults(func=_cmd_keyrate)

    rn = sub.add_parser("run", help="bring a network up, relay keys end to end, print a summary, stop")
    rn.add_argument("topology", nargs="?", default="default",
                    help="topology file, built-in name (default, secoqc_vienna_2008, tokyo_qkd_2010) or line:N")
    rn.add_argument("--pairs", help="comma-separated A:B pairs (default: the two most distant nodes)")
    rn.add_argument("--keys", type=_positive_int, default=100, help="end-to-end keys per pair")
    rn.add_argument("--key-bits", type=_positive_int, default=256)
    rn.add_argument("--time-scale", type=_non_negative, help="emulated seconds per wall second; 0 = as fast as possible")
    rn.add_argument("--seed", type=_seed, help="reproduces link statistics (never key values)")
    rn.add_argument("--timeout", type=_positive_float, default=120.0,
                    help="seconds a relay may wait for link key (virtual clock: emulated seconds for all keys)")
    rn.add_argument("--clock", choices=CLOCK_MODES, default="realtime",
                    help="realtime (default): emulated time is wall time x time scale; virtual: one network "
                         "clock advanced once every link made its key, so results do not depend on the host")
    rn.add_argument("--json", type=pathlib.Path, help="write the summary as JSON (schema in README)")
    rn.add_argument("--certs", type=pathlib.Path, metavar="DIR",
                    help="the network's PKI from `qkdnet certs` (needed to attach to nodes a topology's "
                         "deployment section places elsewhere; default: a fresh one)")
    rn.add_argument("--isolation", choices=["process", "netns"], default="process", help=ISOLATION_HELP)
    rn.add_argument("--attach-timeout", type=_positive_float, default=30.0, metavar="SECONDS",
                    help="how long nodes placed elsewhere may take to answer (default 30)")
    rn.add_argument("--quiet", action="store_true")
    rn.set_defaults(func=_cmd_run)

    cl = sub.add_parser("cleanup", help="remove what a crashed --isolation netns run left (namespaces, "
                                        "interfaces, processes), like mn -c")
    cl.set_defaults(func=_cmd_cleanup)

    xp = sub.add_parser("export", help="write the topology as a Compose project, Kubernetes manifests or a "
                                       "containerlab topology")
    xp.add_argument("topology", help="as for `qkdnet run`")
    xp.add_argument("--to", required=True, choices=["compose", "kubernetes", "containerlab"], dest="target")
    xp.add_argument("directory", type=pathlib.Path, help="where to write (new or empty, unless --force)")
    xp.add_argument("--image", default="qkdnet:latest", help="the image docker/Dockerfile builds (default qkdnet:latest)")
    xp.add_argument("--certs", type=pathlib.Path, metavar="DIR", help="an existing PKI (default: a fresh one in DIR/pki)")
    xp.add_argument("--force", action="store_true", help="write into a non-empty directory")
    xp.set_defaults(func=_cmd_export)

    # `qkdnet node ...` is handed whole to the node's own parser (see main).
    sub.add_parser("node", add_help=False, help="run one trusted node anywhere (see `qkdnet node --help`)")

    ex = sub.add_parser("experiment", help="compare routing strategies on the real network (CSV, JSON, plots, report)")
    ex.add_argument("config", type=pathlib.Path, help="experiment YAML (see README)")
    ex.add_argument("--out", type=pathlib.Path, help="results directory (default results/<experiment name>)")
    ex.add_argument("--force", action="store_true", help="write into a non-empty results directory")
    ex.add_argument("--quiet", action="store_true")
    ex.add_argument("--metrics-port", type=_port, metavar="PORT",
                    help="serve the per-strategy results to Prometheus on 127.0.0.1:PORT while it runs (0: any free "
                         "port); writes OUT/prometheus-experiment.yml with the bearer token")
    ex.add_argument("--certs", type=pathlib.Path, metavar="DIR",
                    help="the network's PKI from `qkdnet certs`, to attach to nodes the topology's deployment "
                         "section places elsewhere (each run starts them afresh: they must be restarted when a "
                         "run shuts them down, as Compose or a StatefulSet does)")
    ex.add_argument("--attach-timeout", type=_positive_float, default=30.0, metavar="SECONDS",
                    help="how long nodes placed elsewhere may take to answer, at the start of each run (default 30)")
    ex.set_defaults(func=_cmd_experiment)

    def with_state(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--state-dir", type=pathlib.Path,
                       help="where the running network is recorded (default $QKDNET_STATE_DIR or "
                            "~/.local/state/qkdnet)")
        return p

    up = with_state(sub.add_parser("up", help="start a network in the background and print its endpoints"))
    up.add_argument("topology", nargs="?", default="default", help="as for `qkdnet run`")
    up.add_argument("--time-scale", type=_non_negative, help="emulated seconds per wall second; 0 = as fast as possible")
    up.add_argument("--clock", choices=CLOCK_MODES, default="realtime",
                    help="virtual: one network clock, moved on as soon as every link made its key up to it")
    up.add_argument("--seed", type=_seed, help="reproduces link statistics (never key values)")
    up.add_argument("--json", type=pathlib.Path, help="also write the endpoints as JSON")
    up.add_argument("--isolation", choices=["process", "netns"], default="process", help=ISOLATION_HELP)
    up.add_argument("--certs", type=pathlib.Path, metavar="DIR",
                    help="use the PKI made by `qkdnet certs TOPOLOGY DIR` (default: a fresh one per network)")
    up.add_argument("--quiet", action="store_true")
    up.set_defaults(func=_cmd_up)

    st = with_state(sub.add_parser("status", help="links and nodes of the running network"))
    st.add_argument("--json", action="store_true", help="print JSON instead of tables")
    st.set_defaults(func=_cmd_status)

    rl = with_state(sub.add_parser("relay", help="relay end-to-end keys in the running network"))
    rl.add_argument("source")
    rl.add_argument("destination")
    rl.add_argument("--keys", type=_positive_int, default=1)
    rl.add_argument("--key-bits", type=_positive_int, default=256)
    rl.add_argument("--timeout", type=_positive_float, default=30.0, help="seconds a relay may wait for link key")
    rl.add_argument("--strategy", default="fewest_hops",
                    help="routing strategy: fewest_hops, shortest_fibre, widest_path, load_balancing, multipath")
    rl.add_argument("--k", type=_positive_int, default=2, help="paths for --strategy multipath")
    rl.add_argument("--json", action="store_true")
    rl.set_defaults(func=_cmd_relay)

    rv = with_state(sub.add_parser("revoke", help="withdraw undelivered end-to-end keys at a node"))
    rv.add_argument("node")
    rv.add_argument("key_ids", nargs="+", metavar="KEY_ID")
    rv.add_argument("--reason", default="revoked by operator")
    rv.set_defaults(func=_cmd_revoke)

    ft = sub.add_parser("fault", help="inject a fault into the running network: cut, restore, impair, clear, list")
    ft_sub = ft.add_subparsers(dest="fault_command", required=True, parser_class=_Parser)
    for name, text in (("cut", "cut the fibre of link U-V (both ends stop; pools are kept)"),
                       ("restore", "repair a cut link: it runs afresh and generates key again"),
                       ("impair", "a fault on link U-V's quantum channel, from its next block on"),
                       ("clear", "end the faults on link U-V's quantum channel")):
        one = with_state(ft_sub.add_parser(name, help=text))
        one.add_argument("u", metavar="U")
        one.add_argument("v", metavar="V")
        one.set_defaults(func=_cmd_fault)
        if name == "impair":
            one.add_argument("--extra-loss-db", type=_non_negative, help="loss added to the fibre's (a splice or bend)")
            one.add_argument("--misalignment", type=_non_negative, help="error probability added to the link's own")
            one.add_argument("--dark-count-factor", type=_positive_float, help="dark counts times this")
            one.add_argument("--intercept-resend", type=_non_negative, metavar="FRACTION",
                             help="an intercept-resend eavesdropper on this fraction of pulses (0 to 1)")
            one.add_argument("--pns", action="store_true", help="a photon-number-splitting eavesdropper")
            one.add_argument("--misalignment-drift", type=_non_negative, metavar="PER_S",
                             help="misalignment growing by this much per emulated second (a drifting interferometer)")
    for name, text in (("kill", "kill NODE's process (SIGKILL): its links go down, routing avoids it"),
                       ("restart", "restart a killed NODE from its durable key store")):
        one = with_state(ft_sub.add_parser(name, help=text))
        one.add_argument("node", metavar="NODE")
        one.set_defaults(func=_cmd_fault)
    fl = with_state(ft_sub.add_parser("list", help="every fault injected so far, with its time"))
    fl.set_defaults(func=_cmd_fault)

    db = with_state(sub.add_parser("dashboard", help="the URL of the running network's live view (open it in a "
                                                     "browser)"))
    db.set_defaults(func=_cmd_dashboard)

    dn = with_state(sub.add_parser("down", help="stop the running network"))
    dn.set_defaults(func=_cmd_down)

    au = sub.add_parser("audit", help="check a node's tamper-evident audit log")
    au_sub = au.add_subparsers(dest="audit_command", required=True, parser_class=_Parser)
    av = with_state(au_sub.add_parser("verify", help="verify NODE's audit log (exit 1 at the first bad entry)"))
    av.add_argument("node")
    av.set_defaults(func=_cmd_audit_verify)

    ct = sub.add_parser("certs", help="create a development CA and certificates for every KME and SAE")
    ct.add_argument("topology", help="as for `qkdnet run`")
    ct.add_argument("directory", type=pathlib.Path)
    ct.set_defaults(func=_cmd_certs)

    sh = with_state(sub.add_parser("shell", help="interactive shell on the running network"))
    sh.set_defaults(func=_cmd_shell)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["node"]:  # the node process's own command line, its own errors (exit 2)
        from qkdnet.node.server import main as node_main

        return node_main(argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except _UsageError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except (QkdnetError, QkdError) as exc:
        print(f"qkdnet: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qkdnet: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
