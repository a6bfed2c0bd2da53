"""``qkdnet shell``: an interactive prompt on the running network, in the manner of Mininet's CLI.

Layer: control plane. Each command is one call on ``SupervisorClient``; its output comes from
``orchestrator.formatting``. A wrong command prints one error line and the prompt comes back.
"""

from __future__ import annotations

import cmd
import json
import shlex

from qkdnet.orchestrator.errors import QkdnetError
from qkdnet.orchestrator.formatting import format_faults, format_keys, format_relay, format_status
from qkdnet.orchestrator.supervisor_client import SupervisorClient


class NetworkShell(cmd.Cmd):
    intro = ("qkdnet shell: status | relay SRC DST [KEYS [BITS]] | keys NODE [PEER] | cut U V | restore U V | "
             "impair U V [FIELD=VALUE ...] | kill NODE | restart NODE | faults | json | down | quit")
    prompt = "qkdnet> "

    def __init__(self, client: SupervisorClient, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.client = client

    def onecmd(self, line: str) -> bool:
        try:
            return super().onecmd(line)
        except (QkdnetError, ValueError) as exc:
            print(f"error: {exc}", file=self.stdout)
        return False

    def emptyline(self) -> bool:
        return False

    def default(self, line: str) -> bool:  # type: ignore[override]  # cmd.Cmd passes it on as onecmd's result
        print(f"error: unknown command {line.split()[0]!r} (try help)", file=self.stdout)
        return False

    def do_status(self, arg: str) -> None:
        """status: nodes and links of the running network"""
        print(format_status(self.client.status()), file=self.stdout)

    def do_relay(self, arg: str) -> None:
        """relay SRC DST [KEYS [BITS]]: relay end-to-end keys"""
        words = shlex.split(arg)
        if len(words) not in (2, 3, 4):
            raise ValueError("usage: relay SRC DST [KEYS [BITS]]")
        if not all(word.isdigit() for word in words[2:]):
            raise ValueError("KEYS and BITS are whole numbers")
        count = int(words[2]) if len(words) > 2 else 1
        bits = int(words[3]) if len(words) > 3 else 256
        print(format_relay(self.client.relay(words[0], words[1], count, bits), bits), file=self.stdout)

    def do_keys(self, arg: str) -> None:
        """keys NODE [PEER]: end-to-end key IDs and SHA-256 digests held by a node"""
        words = shlex.split(arg)
        if len(words) not in (1, 2):
            raise ValueError("usage: keys NODE [PEER]")
        print(format_keys(self.client.keys(words[0], words[1] if len(words) > 1 else "")), file=self.stdout)

    def do_cut(self, arg: str) -> None:
        """cut U V: cut the fibre of link U-V (pools are kept)"""
        print(self.client.fault("cut", *self._link(arg, "cut")), file=self.stdout)

    def do_restore(self, arg: str) -> None:
        """restore U V: repair a cut link; it generates key again"""
        print(self.client.fault("restore", *self._link(arg, "restore")), file=self.stdout)

    def do_impair(self, arg: str) -> None:
        """impair U V [FIELD=VALUE ...]: a fault on the quantum channel (extra_loss_db, misalignment_error,
        dark_count_factor, intercept_resend_fraction, photon_number_splitting=true); no fields: healthy again"""
        words = shlex.split(arg)
        u, v = self._link(" ".join(words[:2]), "impair")
        fields: dict[str, object] = {}
        for word in words[2:]:
            name, sep, value = word.partition("=")
            if not sep:
                raise ValueError(f"{word!r}: give FIELD=VALUE")
            fields[name] = value.lower() in ("1", "true", "yes") if name == "photon_number_splitting" else float(value)
        print(self.client.fault("impair", u, v, fields), file=self.stdout)

    def do_kill(self, arg: str) -> None:
        """kill NODE: kill a node's process (SIGKILL)"""
        print(self.client.node_fault("kill", self._node(arg, "kill")), file=self.stdout)

    def do_restart(self, arg: str) -> None:
        """restart NODE: restart a killed node from its durable key store"""
        print(self.client.node_fault("restart", self._node(arg, "restart")), file=self.stdout)

    @staticmethod
    def _node(arg: str, command: str) -> str:
        words = shlex.split(arg)
        if len(words) != 1:
            raise ValueError(f"usage: {command} NODE")
        return words[0]

    def do_faults(self, arg: str) -> None:
        """faults: every fault injected so far, with its time"""
        print(format_faults(self.client.faults()), file=self.stdout)

    @staticmethod
    def _link(arg: str, command: str) -> tuple[str, str]:
        words = shlex.split(arg)
        if len(words) != 2:
            raise ValueError(f"usage: {command} U V")
        return words[0], words[1]

    def do_json(self, arg: str) -> None:
        """json: the full status as JSON"""
        print(json.dumps(self.client.status().to_json(), indent=2), file=self.stdout)

    def do_down(self, arg: str) -> bool:
        """down: stop the network and leave the shell"""
        self.client.down()
        print("network stopping", file=self.stdout)
        return True

    def do_quit(self, arg: str) -> bool:
        """quit: leave the shell; the network keeps running"""
        return True

    do_EOF = do_quit
