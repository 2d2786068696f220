"""Run a script in real Blender (the `bpy` module) in a fresh subprocess.

Each call gets its own Blender user folder (BLENDER_USER_RESOURCES), so preferences and
installed extensions never leak between tests or into the developer's own Blender. The
script reports back by printing one line `RESULT <json>`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

RESULT_PREFIX = "RESULT "


def run_blender(script: str, tmp_path: Path, *args: str, timeout: float = 180) -> dict:
    script_path = tmp_path / "blender_script.py"
    script_path.write_text(textwrap.dedent(script))
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "blender_user"))
    proc = subprocess.run([sys.executable, str(script_path), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=tmp_path)
    lines = [l for l in proc.stdout.splitlines() if l.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        raise AssertionError(f"Blender script failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len(RESULT_PREFIX):])


REPORT = """
import json as _json
def report(**values):
    print("RESULT " + _json.dumps(values), flush=True)
"""

REPO_ROOT = Path(__file__).resolve().parents[1]

# A fresh empty scene with the add-on enabled through Blender's own add-on machinery, so
# its preferences exist as a user's would (the source checkout stands in for the zip), and
# `attempt` to call an operator the way a script meets its reports.
ENABLE_ADDON = f"""
import sys
sys.path.insert(0, {str(REPO_ROOT)!r})
import bpy, addon_utils
bpy.ops.wm.read_factory_settings(use_empty=True)
def _raise(error):
    raise error
addon_utils.enable("joker_blender", default_set=True, handle_error=_raise)

def attempt(operator, **kwargs):
    # (sorted result, "") or (["ERROR"], the report line): how a script sees an operator
    try:
        return sorted(operator(**kwargs)), ""
    except RuntimeError as error:  # Blender raises an operator's error report in scripts
        return ["ERROR"], str(error).strip()
"""
