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
