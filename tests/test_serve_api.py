"""``semilearn serve``'s API through FastAPI's TestClient: the schema, the answers on pictures of real
FERPlus faces (the same JSON as ``predict --detect_faces --json``, ONNX and checkpoint alike), and
every refusal: its status and its one-line JSON error, the server answering the next request."""
from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from conftest import run_cli
from helpers.bad_uploads import bad_requests, png_bytes
from helpers.face_pictures import FERPLUS_NPZ, picture_with_faces

needs_faces = pytest.mark.skipif(not FERPLUS_NPZ.is_file(), reason=f"shared FERPlus faces not found at {FERPLUS_NPZ}")
DIGITS = [str(d) for d in range(10)]


def app_for(path, kind: str, **limits):
    from leaf_plugin.deploy.models import load_model
    from leaf_plugin.serve.app import ServeOptions, create_app
    from leaf_plugin.serve.upload import Limits

    loaded = load_model(load_path=str(path), device="cpu") if kind == "checkpoint" else \
        load_model(model=str(path), device="cpu")
    return create_app(loaded, ServeOptions(limits=Limits(**limits)))


@pytest.fixture(scope="module")
def client(served_models):
    from fastapi.testclient import TestClient

    with TestClient(app_for(served_models["onnx"], "onnx", max_bytes=1_000_000, max_pixels=2_000_000)) as c:
        yield c


@pytest.fixture(scope="module")
def four_faces(tmp_path_factory):
    if not FERPLUS_NPZ.is_file():
        pytest.skip(f"shared FERPlus faces not found at {FERPLUS_NPZ}")
    picture, boxes = picture_with_faces(4)
    path = tmp_path_factory.mktemp("serve_pictures") / "four.png"
    path.write_bytes(png_bytes(picture))
    return path, boxes


def post(client, data: bytes, name: str = "face.png", content_type: str = "image/png", **params):
    return client.post("/api/predict", files={"file": (name, data, content_type)}, params=params)


# ---- the schema and the model ---------------------------------------------------------------
def test_model_health_and_openapi_schema(client, served_models):
    from leaf_plugin.serve.schema import ModelInfo

    info = ModelInfo.model_validate(client.get("/api/model").json())
    assert info.kind == "onnx" and info.file == str(served_models["onnx"].resolve())
    assert info.class_names == DIGITS and info.input_size == 16 and info.algorithm == "leaf_fixmatch"
    assert info.leaf and info.gate_levels == ["semantic", "instance"]
    assert info.limits == {"max_upload_bytes": 1_000_000, "max_pixels": 2_000_000, "queue": 8}
    assert client.get("/healthz").json() == {"status": "ok", "pending": 0, "capacity": 9}

    schema = client.get("/openapi.json").json()
    predict = schema["paths"]["/api/predict"]["post"]
    assert "file" in predict["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]
    assert {"200", "400", "413", "415", "503"} <= set(predict["responses"])
    assert predict["responses"]["413"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    assert {"PictureResult", "FaceResult", "ModelInfo"} <= set(schema["components"]["schemas"])
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    page = client.get("/")
    assert page.status_code == 200 and '<script src="/static/app.js">' in page.text
    assert client.get("/static/app.js").status_code == 200


# ---- answers ----------------------------------------------------------------------------------
@needs_faces
def test_four_faces_answer_as_predict_detect_faces_json(client, served_models, four_faces, capsys):
    from leaf_plugin.serve.schema import PictureResult

    path, boxes = four_faces
    response = post(client, path.read_bytes(), "four.png", top=4)
    assert response.status_code == 200, response.text
    assert "faces;dur=" in response.headers["server-timing"]
    record = response.json()
    PictureResult.model_validate(record)
    assert record["num_faces"] == 4 and [f["box"] for f in record["faces"]] == [b.as_dict() for b in boxes]
    for face in record["faces"]:
        assert sum(face["probs"].values()) == pytest.approx(1, abs=1e-6) and len(face["top"]) == 4
        assert face["prediction"] == face["top"][0]["class"] == max(face["probs"], key=face["probs"].get)
        assert set(face["gates"]) == {"semantic", "instance"}
        for weights in face["gates"].values():  # top-2 of 8 experts per level
            assert len(weights) == 8 and sum(weights) == pytest.approx(1, abs=1e-5)
            assert np.count_nonzero(weights) == 2
    rc, out, err = run_cli(["predict", "--model", served_models["onnx"], "--detect_faces", "--json", "--top", "4",
                            path, "--device", "cpu"], capsys)
    assert rc == 0, err
    assert {**json.loads(out), "path": "four.png"} == record  # one schema, one pipeline


@needs_faces
def test_onnx_and_checkpoint_backends_give_the_same_answers(served_models, four_faces):
    from fastapi.testclient import TestClient

    path, _ = four_faces
    records = {}
    for kind in ("onnx", "checkpoint"):
        with TestClient(app_for(served_models[kind], kind)) as c:
            assert c.get("/api/model").json()["kind"] == kind
            records[kind] = post(c, path.read_bytes(), "four.png").json()
    onnx, checkpoint = records["onnx"]["faces"], records["checkpoint"]["faces"]
    assert [f["prediction"] for f in onnx] == [f["prediction"] for f in checkpoint] and len(onnx) == 4
    for a, b in zip(onnx, checkpoint):
        assert a["box"] == b["box"]
        assert max(abs(a["probs"][k] - b["probs"][k]) for k in DIGITS) < 1e-5
        for level in ("semantic", "instance"):
            assert np.allclose(a["gates"][level], b["gates"][level], atol=1e-5)


def test_a_picture_without_a_face(client):
    response = post(client, png_bytes(np.full((240, 320, 3), 128, np.uint8)), "empty.png")
    assert response.status_code == 200
    assert response.json() == {"path": "empty.png", "width": 320, "height": 240, "num_faces": 0, "faces": [],
                               "note": "no face found"}


# ---- refusals ---------------------------------------------------------------------------------
BAD = bad_requests(max_bytes=1_000_000, max_pixels=2_000_000)


@pytest.mark.parametrize("name,kwargs,status,words", BAD, ids=[b[0] for b in BAD])
def test_bad_requests_get_one_line_json_errors_and_the_server_goes_on(client, monkeypatch, name, kwargs, status,
                                                                      words):
    import leaf_plugin.serve.upload as upload

    decoded, real = [], upload.upright_rgb
    monkeypatch.setattr(upload, "upright_rgb", lambda img: decoded.append(img.size) or real(img))
    start = time.perf_counter()
    response = client.post("/api/predict", **kwargs)
    seconds = time.perf_counter() - start
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    message = response.json()["error"]
    assert set(response.json()) == {"error"} and "\n" not in message and "expected" in message
    for word in words:
        assert word in message, message
    if status == 413:
        assert decoded == [] and seconds < 5  # refused from the header: nothing decoded
    monkeypatch.undo()
    again = post(client, png_bytes(np.full((240, 320, 3), 128, np.uint8)), "next.png")
    assert again.status_code == 200 and again.json()["note"] == "no face found"


def test_a_bad_top_is_refused(client):
    response = post(client, png_bytes(np.full((64, 64, 3), 90, np.uint8)), top=0)
    assert response.status_code == 422 and "top is 0" in response.json()["error"]
    assert client.get("/nowhere").json() == {"error": "Not Found (GET /nowhere)"}


def test_uploads_are_kept_in_memory_not_on_disk(served_models, monkeypatch):
    """A 3 MB upload (Starlette would spool anything over 1 MB to a temporary file) with every way
    of making a temporary file broken: the answer still comes."""
    import tempfile

    from fastapi.testclient import TestClient

    def no_disk(*args, **kwargs):
        raise AssertionError("the server tried to write a temporary file")

    for name in ("SpooledTemporaryFile", "TemporaryFile", "NamedTemporaryFile", "mkstemp", "mkdtemp"):
        monkeypatch.setattr(tempfile, name, no_disk)
    big = png_bytes(np.random.default_rng(2).integers(0, 256, (1000, 1000, 3), np.uint8))
    assert len(big) > 2_900_000
    with TestClient(app_for(served_models["onnx"], "onnx")) as c:
        response = post(c, big, "big.png")
    assert response.status_code == 200 and response.json()["width"] == 1000


def test_a_full_queue_gets_503_with_retry_after(served_models, monkeypatch):
    """Queue of 1: one request analysed (held on an event), one waiting, the third refused at once."""
    import leaf_plugin.serve.app as serve_app
    from fastapi.testclient import TestClient

    release, faces_in = threading.Event(), serve_app.faces_in

    def held(*args, **kwargs):
        release.wait(30)
        return faces_in(*args, **kwargs)

    monkeypatch.setattr(serve_app, "faces_in", held)
    app = app_for(served_models["onnx"], "onnx", queue=1, retry_after=2)
    picture = png_bytes(np.full((200, 200, 3), 100, np.uint8))
    answers = []
    with TestClient(app) as c:
        clients = [threading.Thread(target=lambda: answers.append(post(c, picture).status_code)) for _ in range(2)]
        for t in clients:
            t.start()
        deadline = time.monotonic() + 30
        while c.get("/healthz").json()["pending"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c.get("/healthz").json() == {"status": "ok", "pending": 2, "capacity": 2}
        refused = post(c, picture)
        release.set()
        for t in clients:
            t.join(30)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "2"
        assert "busy" in refused.json()["error"] and "retry after 2 s" in refused.json()["error"]
        assert answers == [200, 200] and post(c, picture).status_code == 200
        assert c.get("/healthz").json()["pending"] == 0


def test_a_failing_model_is_a_500_json_error_and_the_next_request_is_answered(served_models, monkeypatch):
    import leaf_plugin.serve.app as serve_app
    from fastapi.testclient import TestClient

    failures = iter([RuntimeError("model exploded")])

    def faces_in(*args, **kwargs):
        for exc in failures:
            raise exc
        return real(*args, **kwargs)

    real = serve_app.faces_in
    monkeypatch.setattr(serve_app, "faces_in", faces_in)
    picture = png_bytes(np.full((100, 100, 3), 100, np.uint8))
    with TestClient(app_for(served_models["onnx"], "onnx"), raise_server_exceptions=False) as c:
        failed = post(c, picture)
        assert failed.status_code == 500
        assert failed.json() == {"error": "internal error (RuntimeError); the server goes on serving"}
        assert post(c, picture).json()["note"] == "no face found"
        assert c.get("/healthz").json()["pending"] == 0
