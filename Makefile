# Two entry points: `make demo` (main job on the embedded default) and `make test`.
# Both create or reuse the project venv in .venv; it is rebuilt when pyproject.toml changes.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-slow bench test-blender-lts

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --editable '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/joker demo --out output/demo

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -m "not slow"

# The end-to-end tests that would push `make test` past 5 minutes on CI's 2 cores.
test-slow: $(STAMP)
	$(VENV)/bin/python -m pytest -q -m slow

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(VENV)/bin/python $$b || exit 1; done

# The add-on on Blender 4.2 LTS, the oldest version its manifest allows: tests/blender (and the
# GLB import test) with the bpy 4.2 module, in a second venv outside the repo (~2.5 GB, with
# its own torch for the test servers). The extension zip is built by the project's bpy 5.0, as
# users build it, and installed into 4.2 too. Not part of `make test` or CI (a second bpy costs
# minutes there). BPY_LTS=4.2.0 tests another 4.2 patch release in the same venv.
BPY_LTS ?= 4.2.23
BPY_LTS_VENV ?= $(HOME)/.cache/joker-blender/venv-bpy-lts
BPY_LTS_STAMP := $(BPY_LTS_VENV)/.installed-bpy-$(BPY_LTS)
LTS_REQUIREMENTS := import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
	print("\n".join(d for d in p["dependencies"] + p["optional-dependencies"]["test"] if not d.startswith("bpy")))

$(BPY_LTS_STAMP): pyproject.toml
	test -x $(BPY_LTS_VENV)/bin/python || $(PYTHON) -m venv $(BPY_LTS_VENV)
	$(PYTHON) -c '$(LTS_REQUIREMENTS)' > $(BPY_LTS_VENV)/requirements.txt
	$(BPY_LTS_VENV)/bin/python -m pip install --quiet -r $(BPY_LTS_VENV)/requirements.txt 'bpy==$(BPY_LTS)' 'numpy<2'
	rm -f $(BPY_LTS_VENV)/.installed-bpy-*
	touch $@

test-blender-lts: $(STAMP) $(BPY_LTS_STAMP)
	rm -rf build/lts-dist
	$(VENV)/bin/joker build-extension --out build/lts-dist
	$(BPY_LTS_VENV)/bin/python -c 'import bpy; print("testing with Blender", bpy.app.version_string)'
	JOKER_EXTENSION_ZIP="$$(ls $(CURDIR)/build/lts-dist/*.zip)" PYTHONPATH=$(CURDIR)/server:$(CURDIR) \
		$(BPY_LTS_VENV)/bin/python -m pytest -q tests/blender tests/mesh/test_mesh_blender.py
