"""``semilearn serve``'s page in a real browser: headless Chromium (driven through the DevTools
protocol) against a real server started here on a free loopback port, with a picture of several
FERPlus faces uploaded, then with Chromium's fake webcam playing a video of faces.  Each test keeps
a screenshot in its tmp folder."""
from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, free_port
from helpers.browser import FAKE_CAMERA_FLAGS, Browser, find_chromium, write_y4m
from helpers.face_pictures import FERPLUS_NPZ, picture_with_faces

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not FERPLUS_NPZ.is_file(), reason=f"shared FERPlus faces not found at {FERPLUS_NPZ}")]
LABEL = re.compile(r"^(\d): (\S+) (0\.\d\d|1\.00)$")


@pytest.fixture(scope="module")
def chromium():
    path = find_chromium()
    if path is None:
        why = "chromium is not installed (apt-get install chromium; .ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    return path


@pytest.fixture(scope="module")
def server(served_models, tmp_path_factory):
    """``semilearn serve --model leaf.onnx`` in its own process on a free loopback port: its URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "stderr.txt"
    with open(log, "w") as err:
        process = subprocess.Popen([sys.executable, "-m", "leaf_plugin.cli", "serve", "--model",
                                    str(served_models["onnx"]), "--port", str(port)], cwd=REPO,
                                   stdout=subprocess.PIPE, stderr=err, text=True)
    lines: "queue.Queue[str]" = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    try:
        said = [lines.get(timeout=300) for _ in range(2)]
    except queue.Empty:
        process.kill()
        pytest.fail(f"semilearn serve said nothing in 300 s: {log.read_text()}")
    url = f"http://127.0.0.1:{port}/"
    assert said[0].startswith("semilearn serve: serving onnx ") and f"open {url} in a browser" in said[1], said
    yield url
    process.send_signal(signal.SIGINT)  # Ctrl-C: the command stops, exit code 130, one line, no traceback
    try:
        assert process.wait(timeout=30) == 130
    finally:
        if process.poll() is None:
            process.kill()
    assert log.read_text().strip().splitlines()[-1] == "semilearn serve: interrupted"


def api_labels(url: str, picture: Path):
    import httpx

    record = httpx.post(url + "api/predict", files={"file": (picture.name, picture.read_bytes(), "image/png")},
                        timeout=60).json()
    return [(f["prediction"], f["top"][0]["prob"]) for f in record["faces"]]


def test_uploaded_picture_gets_one_labelled_box_per_face(chromium, server, tmp_path):
    from PIL import Image

    picture, boxes = picture_with_faces(4)
    path = tmp_path / "four_faces.png"
    Image.fromarray(picture).save(path)
    with Browser(chromium, tmp_path / "profile") as browser:
        browser.open(server)
        browser.wait_for("document.querySelector('#model-line').textContent.includes('10 classes')", 60,
                         "the model's description")
        browser.set_files("#files", [path])
        browser.wait_for("!!document.querySelector('#results .result[data-faces]')", 120, "the picture's answer")
        shown = browser.evaluate("""(() => { const r = document.querySelector('#results .result');
            return {faces: r.dataset.faces, title: r.querySelector('h3').textContent,
                    boxes: [...r.querySelectorAll('.face-box')].map(b => ({label: b.textContent,
                        w: b.getBoundingClientRect().width, h: b.getBoundingClientRect().height})),
                    cards: r.querySelectorAll('.face-card').length,
                    bars: [...r.querySelectorAll('.face-card')].map(c => c.querySelectorAll('.bar-row').length),
                    gates: [...document.querySelectorAll('#gate-charts .gate-bars')].map(g => g.children.length),
                    gatesShown: !document.querySelector('#gates').hidden}; })()""")
        browser.screenshot(tmp_path / "upload.png")
        assert browser.errors == []
    assert shown["faces"] == "4" and shown["title"] == "four_faces.png" and len(shown["boxes"]) == 4
    labels = [LABEL.match(b["label"]) for b in shown["boxes"]]
    assert all(labels), shown["boxes"]
    expected = api_labels(server, path)
    assert [(m.group(2), float(m.group(3))) for m in labels] == [(name, round(p, 2)) for name, p in expected]
    assert [int(m.group(1)) for m in labels] == [0, 1, 2, 3]
    assert all(b["w"] > 40 and abs(b["w"] - b["h"]) < 2 for b in shown["boxes"])  # square boxes, drawn to scale
    assert shown["cards"] == 4 and shown["bars"] == [10] * 4  # every class's probability, per face
    assert shown["gatesShown"] and shown["gates"] == [8, 8]  # semantic and instance experts
    assert (tmp_path / "upload.png").stat().st_size > 20_000


def webcam_video(path: Path) -> Path:
    """Ten 640x480 frames: the 4-face picture drifting right by 2 px a frame (Chromium loops it)."""
    from PIL import Image

    picture, _ = picture_with_faces(4)
    grey = np.asarray(Image.fromarray(picture).convert("L").resize((640, 426)))
    frame = np.full((480, 640), 128, np.uint8)
    frame[27:453] = grey
    return write_y4m(path, [np.roll(frame, 2 * t, axis=1) for t in range(10)])


def test_the_webcam_sends_frames_and_shows_live_results(chromium, server, tmp_path):
    video = webcam_video(tmp_path / "faces.y4m")
    flags = [*FAKE_CAMERA_FLAGS, f"--use-file-for-fake-video-capture={video}"]
    with Browser(chromium, tmp_path / "profile", flags) as browser:
        browser.open(server)
        browser.evaluate("document.querySelector('#webcam').click()")
        browser.wait_for("Number(document.querySelector('#live').dataset.frames) >= 4", 120, "four live answers")
        live = browser.evaluate("""(() => ({
            frames: Number(document.querySelector('#live').dataset.frames),
            stats: document.querySelector('#live-stats').textContent,
            labels: [...document.querySelectorAll('#live .face-box')].map(b => b.textContent),
            playing: document.querySelector('#video').videoWidth,
            button: document.querySelector('#webcam').textContent}))()""")
        browser.screenshot(tmp_path / "webcam.png")
        browser.evaluate("document.querySelector('#webcam').click()")
        stopped = browser.evaluate("document.querySelector('#status').textContent")
        assert browser.errors == []
    assert live["frames"] >= 4 and live["playing"] == 640 and live["button"] == "Stop the webcam"
    stats = re.match(r"^(\d+\.\d) frames/s · latency (\d+) ms · (\d+) face\(s\) · frame (\d+)$", live["stats"])
    assert stats, live["stats"]
    assert float(stats.group(1)) > 0 and int(stats.group(2)) > 0 and int(stats.group(3)) == len(live["labels"]) >= 1
    assert all(LABEL.match(label) for label in live["labels"]), live["labels"]
    assert stopped == "webcam stopped" and (tmp_path / "webcam.png").stat().st_size > 20_000
