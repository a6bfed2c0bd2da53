"""``qkdnet shell``: each command is one client call, printed by the formatting module; a wrong
command prints one error line and the shell goes on."""

import io

from qkdnet.node.relay.result import RelayResult
from qkdnet.node.status import KeyEntry
from qkdnet.orchestrator.errors import QkdnetError
from qkdnet.orchestrator.shell import NetworkShell
from qkdnet.orchestrator.summary import LinkSummary, NetworkStatus, NodeEndpoint


class FakeClient:
    def __init__(self):
        self.calls = []

    def status(self):
        self.calls.append("status")
        link = LinkSummary("n0-n1", 25.0, 0.02, 1e4, 4e3, 3000, 4000, 512, 488, 2, 0, True, "")
        return NetworkStatus("line-2", 42, {"n0": NodeEndpoint("127.0.0.1:1", "https://127.0.0.1:9", True),
                                            "n1": NodeEndpoint("127.0.0.1:2", "", False, "exited")}, [link])

    def relay(self, source, destination, count=1, key_bits=256):
        self.calls.append(("relay", source, destination, count, key_bits))
        if destination == "n9":
            raise QkdnetError("unknown node 'n9'")
        return RelayResult(source, destination, ((source, destination),), ("k1",) * count, 0.0123, 256 * count)

    def keys(self, node, peer=""):
        return [KeyEntry("k1", "n1", bytes.fromhex("ab" * 32), 256)]

    def down(self):
        self.calls.append("down")

    def fault(self, kind, u, v, impairment=None):
        self.calls.append(("fault", kind, u, v, impairment))
        return f"link {u}-{v}: {kind}"

    def node_fault(self, kind, node):
        self.calls.append(("node_fault", kind, node))
        return f"node {node} {kind}"

    def faults(self):
        return [{"at": 0.0, "fault": "cut", "link": "n0-n1", "detail": ""}]


def _shell():
    out = io.StringIO()
    client = FakeClient()
    return NetworkShell(client, stdout=out), client, out


def test_commands_print_what_the_client_returns():
    shell, client, out = _shell()
    shell.onecmd("status")
    shell.onecmd("relay n0 n1 2 128")
    shell.onecmd("keys n0")
    text = out.getvalue()
    assert "topology line-2: 2 nodes, supervisor pid 42" in text and "FAILED: exited" in text and "n0-n1" in text
    assert client.calls[1] == ("relay", "n0", "n1", 2, 128)
    assert "2 key(s) of 128 bits n0->n1 via n0-n1 in 12.3 ms" in text
    assert "k1  n1" in text and "hmac abababababababab..." in text and "1 key(s)" in text


def test_mistakes_print_one_line_and_the_shell_goes_on():
    shell, _, out = _shell()
    assert shell.onecmd("relay n0") is False
    assert shell.onecmd("relay n0 n9") is False
    assert shell.onecmd("relay n0 n1 many") is False
    assert shell.onecmd("teleport") is False
    lines = out.getvalue().splitlines()
    assert lines == ["error: usage: relay SRC DST [KEYS [BITS]]", "error: unknown node 'n9'",
                     "error: KEYS and BITS are whole numbers",
                     "error: unknown command 'teleport' (try help)"]


def test_down_stops_the_network_and_quit_leaves_it_running():
    shell, client, _ = _shell()
    assert shell.onecmd("quit") is True and client.calls == []
    assert shell.onecmd("down") is True and client.calls == ["down"]


def test_fault_commands_reach_the_client_with_typed_fields():
    shell, client, out = _shell()
    shell.onecmd("cut n0 n1")
    shell.onecmd("restore n0 n1")
    shell.onecmd("impair n0 n1 intercept_resend_fraction=0.5 photon_number_splitting=false")
    shell.onecmd("impair n0 n1")
    shell.onecmd("kill n1")
    shell.onecmd("restart n1")
    shell.onecmd("faults")
    assert client.calls == [("fault", "cut", "n0", "n1", None), ("fault", "restore", "n0", "n1", None),
                            ("fault", "impair", "n0", "n1", {"intercept_resend_fraction": 0.5,
                                                              "photon_number_splitting": False}),
                            ("fault", "impair", "n0", "n1", {}), ("node_fault", "kill", "n1"),
                            ("node_fault", "restart", "n1")]
    assert "cut     n0-n1" in out.getvalue()
    for wrong in ("cut n0", "impair n0 n1 lots", "impair n0 n1 extra_loss_db=much", "kill"):
        assert shell.onecmd(wrong) is False
    errors = [line for line in out.getvalue().splitlines() if line.startswith("error:")]
    assert len(errors) == 4 and len(client.calls) == 6  # nothing reached the network
