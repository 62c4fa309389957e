"""The page of ``avrestore serve``, on a running server: over HTTP (upload, progress, the
restored video and frames, bad uploads, clean-up, Ctrl-C), and in a real headless Chromium
driven by Selenium. That one needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run``
installs them) and the ``web`` extra, and skips, saying which is missing, without them.

Restorations use a tiny untrained DBPN on 64-pixel crops, so a whole GRID clip restores in
seconds; the shipped checkpoints are offered beside it for their leaderboard figures. Set
``AVRESTORE_WEB_SCREENSHOT`` to keep the browser test's screenshot (docs/web_screenshot.png was
taken so, with ``AVRESTORE_WEB_MODEL=dbpn-small-car``).
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile

from avrestore.media.files import sha256_file
from avrestore.media.video import iter_frames, probe
from avrestore.models.registry import build
from avrestore.models.weights import WEIGHTS_DIR, save_model
from avrestore.web import uploads
from avrestore.web.server import PageOptions, PageServer, page_server

REPO = Path(__file__).resolve().parents[1]
TINY = "tiny-car"
TINY_DBPN = {"type": "dbpn-small", "base_filters": 8, "feature_filters": 8, "stages": 1}
# Seconds: a GRID clip restores in about ten, but minutes where other work starves the test.
RESTORE_TIMEOUT = 600


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped checkpoints (linked) and ``tiny-car``, a tiny untrained DBPN for car."""
    folder = tmp_path_factory.mktemp("weights")
    for path in WEIGHTS_DIR.glob("*.safetensors"):
        (folder / path.name).symlink_to(path)
    args = dict(TINY_DBPN)
    net = build(args.pop("type"), **args, crop_size=64)
    save_model(net, folder / f"{TINY}.safetensors", {**TINY_DBPN, "crop_size": 64}, {"task": "car"})
    return folder


@pytest.fixture(scope="module")
def server(weights_dir: Path) -> Iterator[PageServer]:
    """A page server on a free local port, serving from a thread."""
    with page_server("127.0.0.1", 0, PageOptions(weights_dir, max_seconds=60)) as s:
        thread = threading.Thread(target=s.serve_forever, daemon=True)
        thread.start()
        yield s
        s.shutdown()


def _call(url: str, data: bytes | None = None) -> tuple[int, dict]:
    """The status and JSON body of a GET, or of a POST of ``data``."""
    request = urllib.request.Request(url, data, method="GET" if data is None else "POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _post(server: PageServer, body: bytes, **query: str) -> tuple[int, dict]:
    params = urllib.parse.urlencode({"task": "car", "model": TINY, **query})
    return _call(f"{server.url}api/job?{params}", body)


def _finished(server: PageServer) -> list[dict]:
    """Every status polled until the job is done or failed, the last one last."""
    seen = []
    deadline = time.monotonic() + RESTORE_TIMEOUT
    while time.monotonic() < deadline:
        seen.append(_call(f"{server.url}api/job")[1])
        if seen[-1]["state"] in ("done", "failed"):
            return seen
        time.sleep(0.2)
    pytest.fail(f"no result in {RESTORE_TIMEOUT} s: {seen[-1]}")


def _fetch(url: str, headers: dict | None = None) -> tuple[int, dict, bytes]:
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {})) as response:
        return response.status, dict(response.headers), response.read()


def _check_video(data: bytes, like: Path, folder: Path) -> None:
    """``data`` is a video with as many frames as ``like`` and an AAC track."""
    path = folder / "restored.mp4"
    path.write_bytes(data)
    frames = sum(len(chunk.frames) for chunk in iter_frames(path))
    assert frames == probe(like).frame_count
    assert probe(path).has_audio


def test_the_page_offers_each_damage_with_the_models_leaderboard_figures(
    server: PageServer,
) -> None:
    status, _, page = _fetch(server.url)
    assert status == 200 and b'id="video-file"' in page
    status, config = _call(f"{server.url}api/config")
    assert status == 200 and config["local_only"] and config["host"] == "127.0.0.1"
    tasks = {t["task"]: t["models"] for t in config["tasks"]}
    assert set(tasks) == {"car", "deblur", "sr"}
    assert tasks["car"][0]["name"] == "gavn-small-car"  # the task's default first
    # The figures of the shipped car checkpoint, if the leaderboard has evaluated this very file.
    entries = json.loads((REPO / "docs" / "leaderboard.json").read_text())["entries"]
    method = f"sha256:{sha256_file(WEIGHTS_DIR / 'gavn-small-car.safetensors')}"
    entry = next((e for e in entries if e["key"]["method"] == method), None)
    car = tasks["car"][0]
    if entry is None:
        assert car["psnr_gain"] is None
    else:
        base = next(e for e in entries if e["key"] == {**entry["key"], "method": "input"})
        gain = entry["scores"]["psnr"] - base["scores"]["psnr"]
        assert car["psnr_gain"] == pytest.approx(gain) and car["reference"] == "input"
        assert car["seconds_per_frame"] == pytest.approx(entry["scores"]["seconds"])
    assert all(m["reference"] in ("bicubic", None) for m in tasks["sr"])
    assert next(m for m in tasks["car"] if m["name"] == TINY)["psnr_gain"] is None


def test_an_upload_is_restored_with_progress_keeping_its_frames_and_audio(
    server: PageServer, grid_clip: Path, tmp_path: Path
) -> None:
    status, job = _post(server, grid_clip.read_bytes(), name="my clip.mpg")
    assert status == 202 and job["state"] == "starting" and job["name"] == "my_clip.mpg"
    seen = _finished(server)
    final = seen[-1]
    assert final["state"] == "done", final["message"]
    running = [s for s in seen if s["state"] == "running"]
    assert {"find faces", "restore"} <= {s["stage"] for s in running}
    assert any(s["total"] == 75 and s["eta_seconds"] is not None for s in running)
    result = final["result"]
    assert result["frames"] == 75 and result["has_audio"] and result["tracks"] == 1
    base = f"{server.url}files/{final['id']}/"
    _, headers, video = _fetch(base + result["video"])
    assert headers["Content-Type"] == "video/mp4" and headers["Accept-Ranges"] == "bytes"
    _check_video(video, grid_clip, tmp_path)
    status, headers, part = _fetch(base + result["video"], {"Range": "bytes=100-199"})
    assert status == 206 and part == video[100:200]
    assert headers["Content-Range"] == f"bytes 100-199/{len(video)}"
    assert len(result["pairs"]) == 3
    for pair in result["pairs"]:
        for name in (pair["before"], pair["after"]):
            assert _fetch(base + name)[2].startswith(b"\x89PNG")
    with pytest.raises(urllib.error.HTTPError, match="404"):
        _fetch(f"{server.url}files/{final['id']}/upload")  # only the results are served


def test_bad_uploads_say_why_on_the_page_and_leave_nothing(
    server: PageServer, tmp_path: Path
) -> None:
    speech = io.BytesIO()
    soundfile.write(speech, np.zeros(16000, np.float32), 16000, format="WAV")
    cases = [
        (b"just some notes", {"name": "notes.txt"}, "notes.txt is not a video"),
        (speech.getvalue(), {"name": "speech.wav"}, "speech.wav is not a video: no video stream"),
        (b"", {"name": "empty.mp4"}, "choose a video to upload"),
        (b"x", {"name": "a.mp4", "model": "no-such-model"}, "'no-such-model' is not one of"),
        (b"x", {"name": "a.mp4", "task": "denoise"}, "choose the damage to repair"),
    ]
    for body, query, message in cases:
        status, answer = _post(server, body, **query)
        assert status == 400 and message in answer["error"], answer
        assert list(server.root.iterdir()) == []


def test_a_video_without_a_face_fails_saying_so_and_leaves_nothing(
    server: PageServer, tiny_video: Path
) -> None:
    status, _ = _post(server, tiny_video.read_bytes(), name="tiny.mp4")
    assert status == 202
    status, answer = _post(server, b"", sample="grid_bbaf2n.mpg")
    assert status == 409 and "one runs at a time" in answer["error"]
    final = _finished(server)[-1]
    assert final["state"] == "failed"
    assert final["message"] == "no face found in tiny.mp4: there is nothing to restore"
    # restore_video's own note names the file as uploaded, not by its temporary path.
    assert any(n.startswith("no face found in tiny.mp4") for n in final["notes"]), final
    assert list(server.root.iterdir()) == []


def test_a_full_disk_during_the_upload_says_so_and_leaves_nothing(
    server: PageServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    class FullDisk(io.BytesIO):
        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(uploads, "open", lambda *_args, **_kw: FullDisk(), raising=False)
    status, answer = _post(server, b"\0" * 1000, name="clip.mp4")
    assert status == 507 and "no space left on the disk" in answer["error"]
    assert list(server.root.iterdir()) == []


def test_a_video_over_the_limit_is_refused_and_stopping_removes_the_folder(
    weights_dir: Path, grid_clip: Path
) -> None:
    with page_server("127.0.0.1", 0, PageOptions(weights_dir, max_seconds=1)) as s:
        thread = threading.Thread(target=s.serve_forever, daemon=True)
        thread.start()
        status, answer = _post(s, grid_clip.read_bytes(), name="grid.mpg")
        assert status == 400
        assert "grid.mpg is 3.0 s long; this page restores videos of up to 1 s" in answer["error"]
        assert list(s.root.iterdir()) == []
        s.shutdown()
    assert not s.root.exists()


def test_ctrl_c_stops_the_server_and_removes_its_folder() -> None:
    cli = [sys.executable, "-m", "avrestore", "serve", "--port", "0"]
    proc = subprocess.Popen(cli, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        said = [proc.stdout.readline(), proc.stdout.readline()]
        assert "http://127.0.0.1:" in said[0] and "this computer only" in said[0], said
        url = said[0].split()[3]
        root = Path(said[1].split(" in ")[1].split(";")[0])
        assert root.is_dir() and _fetch(url)[0] == 200
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert f"stopped; removing {root}" in err and not root.exists()


def _chromium() -> object:
    """A headless Chromium under Selenium; skips when the browser, its driver or Selenium is
    missing."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip(
            "Debian's chromium and chromium-driver are not installed "
            "(apt-get install chromium chromium-driver; .ci/run does where apt works)"
        )
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed: pip install -e '.[web]'")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI containers run as root
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        "--autoplay-policy=no-user-gesture-required",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(driver))


# Plays the video muted for a moment and says what the browser decoded of it.
_PLAYED = """
const [done] = arguments;
const video = document.getElementById("restored-video");
video.muted = true;
const report = () => done({
  duration: video.duration, width: video.videoWidth, error: video.error && video.error.code,
  audio_bytes: video.webkitAudioDecodedByteCount, frames: video.webkitDecodedFrameCount,
});
video.play().then(() => setTimeout(() => { video.pause(); report(); }, 1500), report);
"""


def test_the_page_in_a_real_browser(server: PageServer, grid_clip: Path, tmp_path: Path) -> None:
    driver = _chromium()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    model = os.environ.get("AVRESTORE_WEB_MODEL", TINY)
    try:
        driver.get(server.url)
        # The models are listed once torch has loaded: seconds, more on a loaded machine.
        WebDriverWait(driver, RESTORE_TIMEOUT).until(
            lambda d: d.find_element(By.ID, "restore").is_enabled()
        )
        wait = WebDriverWait(driver, 30)
        # Beside the model choice: its leaderboard figures (the default model is shown first).
        default = _call(f"{server.url}api/config")[1]["tasks"][0]["models"][0]
        figures = driver.find_element(By.ID, "model-figures").text
        if default["psnr_gain"] is None:
            assert figures.startswith("Not on the leaderboard"), figures
        else:
            assert f"{default['psnr_gain']:+.2f} dB PSNR over" in figures, figures
        # A bad upload: the message on the page.
        bad = tmp_path / "notes.txt"
        bad.write_text("not a video")
        driver.find_element(By.ID, "video-file").send_keys(str(bad))
        driver.find_element(By.ID, "restore").click()
        message = wait.until(shown.visibility_of_element_located((By.ID, "message")))
        assert "notes.txt is not a video" in message.text
        # The GRID clip: restored, played with its audio, its frames compared.
        driver.find_element(By.ID, "video-file").send_keys(str(grid_clip))
        Select(driver.find_element(By.ID, "model")).select_by_value(model)
        driver.find_element(By.ID, "restore").click()
        WebDriverWait(driver, RESTORE_TIMEOUT).until(
            shown.visibility_of_element_located((By.ID, "result"))
        )
        assert not driver.find_element(By.ID, "message").is_displayed()
        driver.set_script_timeout(30)
        played = driver.execute_async_script(_PLAYED)
        assert played["error"] is None and played["width"] == 360, played
        assert played["duration"] == pytest.approx(3.0, abs=0.1)
        assert played["frames"] > 0 and played["audio_bytes"] > 0, played
        assert len(driver.find_elements(By.CSS_SELECTOR, "#pairs img")) == 6
        video = driver.find_element(By.ID, "restored-video").get_attribute("src")
        _check_video(_fetch(video)[2], grid_clip, tmp_path)
        assert driver.find_element(By.ID, "download").get_attribute("download") == (
            "grid_bbaf2n-restored.mp4"
        )
        shot = Path(os.environ.get("AVRESTORE_WEB_SCREENSHOT", tmp_path / "page.png"))
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1280, height + 150)  # the whole page, footer included
        driver.execute_script("document.getElementById('restored-video').currentTime = 1.5")
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 0
    finally:
        driver.quit()
