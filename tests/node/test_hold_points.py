"""The crash tests' hold points: inert without the variable, one line and exit 2 on a bad one."""

import subprocess
import sys

from qkdnet.node import hold_points


async def test_without_the_variable_every_point_returns_at_once():
    await hold_points.reached(hold_points.SOURCE_COMMIT)


def test_a_malformed_setting_is_one_line_and_exit_2():
    for setting in ("source-commit", "nowhere:/tmp/x", "source-commit@0:/tmp/x", "source-commit@x:/tmp/x"):
        run = subprocess.run([sys.executable, "-c", "import node.hold_points"], capture_output=True, text=True,
                             env={hold_points.ENV_VAR: setting, "PATH": ""}, check=False)
        assert run.returncode == 2 and len(run.stderr.strip().splitlines()) == 1, (setting, run.stderr)
