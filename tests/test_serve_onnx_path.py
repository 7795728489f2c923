"""The ONNX path of ``predict`` and ``serve`` (onnxruntime, OpenCV, NumPy, PIL): its test-time
transform equals torchvision's, and it runs without importing torch, torchvision or semilearn."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from helpers.face_pictures import FERPLUS_NPZ

HEAVY = ("torch", "torchvision", "semilearn")


@pytest.mark.parametrize("mode,size", [("L", (48, 48)), ("RGB", (37, 91)), ("RGBA", (200, 120)), ("RGB", (16, 16)),
                                       ("L", (13, 5))])
@pytest.mark.parametrize("side", [16, 48])
def test_numpy_transform_equals_torchvision(mode, size, side):
    import torch
    from PIL import Image
    from torchvision import transforms as T

    from leaf_plugin.deploy.exported import standard_transform

    rng = np.random.default_rng(side + size[0])
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    pixels = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8).squeeze()
    img = Image.fromarray(pixels, mode)
    mean, std = [0.5, 0.45, 0.4], [0.25, 0.3, 0.2]
    reference = T.Compose([T.Lambda(lambda i: i.convert("RGB")), T.Resize((side, side)), T.ToTensor(),
                           T.Normalize(mean, std)])(img)
    mine = standard_transform(side, mean, std)(img)
    assert mine.dtype == np.float32 and mine.shape == (3, side, side)
    assert torch.equal(torch.from_numpy(mine), reference)


def run_python(code: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=timeout)


@pytest.mark.skipif(not FERPLUS_NPZ.is_file(), reason=f"shared FERPlus faces not found at {FERPLUS_NPZ}")
def test_the_onnx_path_imports_no_torch(served_models, tmp_path):
    """``predict --model x.onnx`` (with and without --detect_faces) run whole, and the serve app built
    and asked for a prediction, in a fresh interpreter: torch, torchvision and semilearn never imported."""
    from PIL import Image

    from helpers.face_pictures import picture_with_faces

    picture = tmp_path / "two.png"
    Image.fromarray(picture_with_faces(2)[0]).save(picture)
    onnx = served_models["onnx"]
    code = f"""
import sys
from leaf_plugin.cli.main import main
assert main(['predict', '--model', {str(onnx)!r}, '--detect_faces', '--json', {str(picture)!r}]) == 0
assert main(['predict', '--model', {str(onnx)!r}, '--json', {str(picture)!r}]) == 0
from fastapi.testclient import TestClient
from leaf_plugin.deploy.models import load_model
from leaf_plugin.serve.app import create_app
import leaf_plugin.cli.serve
client = TestClient(create_app(load_model(model={str(onnx)!r})))
answer = client.post('/api/predict', files={{'file': open({str(picture)!r}, 'rb')}}).json()
print('served', answer['num_faces'])
print('heavy', [m for m in {HEAVY!r} if m in sys.modules])
"""
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert json.loads(lines[0])["num_faces"] == 2 and json.loads(lines[1])["prediction"] in [str(d) for d in range(10)]
    assert lines[2] == "served 2" and lines[3] == "heavy []"


def test_serve_with_an_onnx_model_imports_no_torch_end_to_end(served_models):
    """The whole command, front door included, up to the moment uvicorn would start."""
    code = f"""
import sys
import uvicorn
uvicorn.Server.run = lambda self, sockets=None: None  # stop where the server would start listening
from leaf_plugin.cli.main import main
assert main(['serve', '--model', {str(served_models["onnx"])!r}, '--port', '0']) == 0
print('heavy', [m for m in {HEAVY!r} if m in sys.modules])
"""
    done = run_python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "heavy []"
