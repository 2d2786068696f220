"""The panels' drawing code against the running Blender's own UI API.

Background Blender draws no panels, so draw() never runs in the other tests; a layout
function, argument or icon that this Blender lacks would fail only in an artist's sidebar.
Every layout call in the add-on is read from its source and looked up in UILayout's RNA."""

import ast
import json

import pytest

from blender_runner import REPO_ROOT, REPORT, run_blender

pytestmark = pytest.mark.blender

LAYOUTS = {"layout", "row", "column", "box", "grid"}  # the names the add-on gives UILayout objects


def _layout_calls() -> list[dict]:
    calls = []
    for path in sorted((REPO_ROOT / "joker_blender").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            receiver = node.func.value
            if not ((isinstance(receiver, ast.Name) and receiver.id in LAYOUTS)
                    or (isinstance(receiver, ast.Attribute) and receiver.attr == "layout")):
                continue
            icons = [constant.value for keyword in node.keywords if keyword.arg == "icon"
                     for constant in ast.walk(keyword.value) if isinstance(constant, ast.Constant)]
            calls.append({"where": f"{path.name}:{node.lineno}", "function": node.func.attr,
                          "keywords": [keyword.arg for keyword in node.keywords], "icons": icons})
    return calls


CHECK = REPORT + """
import sys, json
import bpy
functions = bpy.types.UILayout.bl_rna.functions
icons = set(functions["label"].parameters["icon"].enum_items.keys())
missing = []
for call in json.loads(open(sys.argv[-1]).read()):
    function = functions.get(call["function"])
    if function is None:
        missing.append(f"{call['where']}: UILayout.{call['function']}")
        continue
    missing += [f"{call['where']}: {call['function']}({name}=)" for name in call["keywords"]
                if name not in function.parameters]
    missing += [f"{call['where']}: icon {icon}" for icon in call["icons"] if icon not in icons]
report(missing=missing, version=list(bpy.app.version))
"""


def test_every_layout_call_names_a_function_argument_and_icon_this_blender_has(tmp_path):
    calls = _layout_calls()
    assert len(calls) > 40 and {"progress", "operator_menu_enum", "prop_search"} <= {c["function"] for c in calls}
    assert sum(len(c["icons"]) for c in calls) > 15  # conditional icons included
    calls_file = tmp_path / "calls.json"
    calls_file.write_text(json.dumps(calls))
    out = run_blender(CHECK, tmp_path, str(calls_file))
    assert out["missing"] == [], out["version"]
