# leaf-plugin: `make demo` and `make test` work on a fresh clone (CPU only).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed-v2

# exact versions of the environment (ranges live in setup.cfg); requirements-lock.txt pins
# every transitive dependency too (regenerate: .venv/bin/pip freeze --exclude-editable)
TORCH_PINS     := torch==2.14.1 torchvision==0.29.1
SEMILEARN_PIN  := semilearn==0.3.2
# httpx: FastAPI's TestClient; websockets: the browser tests drive Chromium through its DevTools protocol
TEST_PINS      := pytest==8.3.3 PyYAML==6.0.4 httpx==0.28.1 websockets==17.4
# face detection (OpenCV 4: OpenCV 5 has no CascadeClassifier), video, ONNX export and runtime,
# semilearn serve (FastAPI on uvicorn; python-multipart for the uploaded pictures)
DEPLOY_PINS    := opencv-python-headless==4.14.0.94 onnx==1.23.2 onnxruntime==1.32.0 \
                  fastapi==0.165.0 uvicorn==0.54.0 python-multipart==0.0.34
LOCK           := requirements-lock.txt

.PHONY: setup demo test test-fast bench clean

setup: $(STAMP)

$(STAMP): setup.cfg pyproject.toml Makefile $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet -c $(LOCK) $(TORCH_PINS)
	$(PIP) install --quiet -c $(LOCK) $(TORCH_PINS) $(SEMILEARN_PIN) $(TEST_PINS) $(DEPLOY_PINS)
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	$(PY) -c "import leaf_plugin, semilearn, torch; print('environment ready: torch', torch.__version__)"
	touch $(STAMP)

# the main job: leaf_fixmatch on the embedded default (scikit-learn digits), on the CPU
demo: setup
	$(VENV)/bin/semilearn train --algorithm leaf_fixmatch --device cpu --save_dir runs --overwrite

test: setup
	$(PY) -m pytest -q -rs tests

test-fast: setup
	$(PY) -m pytest -q -m "not slow" tests

bench: setup
	$(PY) benchmarks/bench_layers.py

clean:
	rm -rf runs saved_models .pytest_cache
