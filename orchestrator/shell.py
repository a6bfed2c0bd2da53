"""``qkdnet shell``: an interactive prompt on the running network, in the manner of Mininet's CLI."""

from __future__ import annotations

import cmd
import json
import shlex

from orchestrator.errors import QkdnetError
from orchestrator.run import format_status
from orchestrator.state import StateDir


class NetworkShell(cmd.Cmd):
    intro = "qkdnet shell: status | relay SRC DST [KEYS [BITS]] | keys NODE [PEER] | down | quit"
    prompt = "qkdnet> "

    def __init__(self, state: StateDir) -> None:
        super().__init__()
        self.state = state

    def onecmd(self, line: str) -> bool:
        try:
            return super().onecmd(line)
        except QkdnetError as exc:
            print(f"error: {exc}")
        except ValueError as exc:
            print(f"error: {exc}")
        return False

    def emptyline(self) -> bool:
        return False

    def do_status(self, arg: str) -> None:
        """status: nodes and links of the running network"""
        print(format_status(self.state.request({"op": "status"})))

    def do_relay(self, arg: str) -> None:
        """relay SRC DST [KEYS [BITS]]: relay end-to-end keys"""
        words = shlex.split(arg)
        if len(words) not in (2, 3, 4):
            raise ValueError("usage: relay SRC DST [KEYS [BITS]]")
        count = int(words[2]) if len(words) > 2 else 1
        bits = int(words[3]) if len(words) > 3 else 256
        reply = self.state.request({"op": "relay", "source": words[0], "destination": words[1],
                                    "count": count, "key_bits": bits})
        if reply["ok"]:
            print(f"{len(reply['key_ids'])} key(s) via {'-'.join(reply['path'])} in {reply['latency_ms']:.1f} ms")
        else:
            print(f"relay failed: {reply['error']}")

    def do_keys(self, arg: str) -> None:
        """keys NODE [PEER]: end-to-end key IDs and SHA-256 digests held by a node"""
        words = shlex.split(arg)
        if len(words) not in (1, 2):
            raise ValueError("usage: keys NODE [PEER]")
        reply = self.state.request({"op": "keys", "node": words[0], "peer": words[1] if len(words) > 1 else ""})
        for key in reply["keys"]:
            print(f"{key['key_id']}  {key['peer']:<10} {key['bits']:>5} bits  sha256 {key['sha256'][:16]}...")
        print(f"{len(reply['keys'])} key(s)")

    def do_json(self, arg: str) -> None:
        """json: the full status as JSON"""
        print(json.dumps(self.state.request({"op": "status"}), indent=2))

    def do_down(self, arg: str) -> bool:
        """down: stop the network and leave the shell"""
        self.state.request({"op": "down"})
        print("network stopping")
        return True

    def do_quit(self, arg: str) -> bool:
        """quit: leave the shell; the network keeps running"""
        return True

    do_EOF = do_quit
