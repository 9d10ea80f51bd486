"""cnnlab-explore: the page shows what the run's own network computes (read back from a real Chromium and
compared with torch), a clicked unit's box is the RF tracer's window, bad requests get HTTP 400 and the server
keeps serving, only its own files are served, and bad command lines get one paragraph and exit status 2."""

from __future__ import annotations

import base64
import http.client
import json
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

from benchmarks.explore_redraw import CHROMIUM, EXPLORE, page, serving
from cnnlab.api import load_run
from cnnlab.explore.runs import open_runs
from cnnlab.explore.server import Explorer, make_server
from cnnlab.probes.receptive_field import local_rf, theoretical_rf, unit_window
from cnnlab.train import train
from helpers import compose_run, user_env

pytestmark = pytest.mark.slow  # trains two tiny real runs


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A sweep dir of two tiny real LeNet-5 runs on MNIST: job 0 with max pooling, job 1 with average pooling."""
    root = tmp_path_factory.mktemp("explore") / "sweep"
    for job, pooling in enumerate(("max", "avg")):
        train(compose_run("model=lenet5", f"pooling={pooling}", run_dir=root / str(job)))
        (root / str(job) / ".hydra").mkdir(exist_ok=True)  # what Hydra records of a sweep job's command line
        (root / str(job) / ".hydra" / "overrides.yaml").write_text(f"- model=lenet5\n- pooling={pooling}\n")
    GlobalHydra.instance().clear()
    return root


@pytest.fixture(scope="module")
def server(sweep):
    """The explorer on both runs, in this process, on a free loopback port."""
    explorer = Explorer(open_runs([sweep]), images=64)
    httpd = make_server(explorer)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def request(server, method: str, path: str, body: bytes | dict | None = None) -> tuple[int, dict | bytes]:
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=60)
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    connection.request(method, path, body=data, headers={"Content-Type": "application/json"} if data else {})
    response = connection.getresponse()
    raw = response.read()
    kind = response.getheader("Content-Type", "")
    connection.close()
    return response.status, json.loads(raw) if kind.startswith("application/json") else raw


def b64(image: torch.Tensor) -> str:
    return base64.b64encode(image.numpy().astype("<f4").tobytes()).decode()


def torch_stages(run_dir: Path, raw: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every stage's output for a raw image, computed here from the checkpoint as a user would: the run's
    normalisation (MNIST's mean and std), then the network's own stages in eval mode."""
    run = load_run(run_dir)
    x = ((raw - 0.1307) / 0.3081).unsqueeze(0)
    out = {}
    with torch.no_grad():
        for name, stage in run.net.named_stages():
            x = stage(x)
            out[name] = x[0]
    return out


def digit(server, index: int = 0) -> torch.Tensor:
    status, image = request(server, "GET", f"/api/image?run=0&index={index}")
    assert status == 200, image
    return torch.from_numpy(np.frombuffer(base64.b64decode(image["values"]), dtype="<f4").copy()).view(1, 32, 32)


def test_each_stage_is_what_the_runs_own_network_computes(server, sweep):
    raw = digit(server)
    assert raw[:, :2].abs().max() == 0 and 0.99 < raw.max() <= 1  # MNIST padded 28 → 32, raw pixels
    for job in (0, 1):
        status, result = request(server, "POST", "/api/forward", {"run": job, "input": b64(raw)})
        assert status == 200, result
        expected = torch_stages(sweep / str(job), raw)
        assert [s["name"] for s in result["stages"]] == list(expected) == ["block1", "block2", "fc1", "fc2", "logits"]
        for stage in result["stages"]:
            shown = np.frombuffer(base64.b64decode(stage["values"]), dtype="<f4")
            assert np.allclose(shown, expected[stage["name"]].reshape(-1).numpy(), atol=1e-5), stage["name"]
        probs = np.frombuffer(base64.b64decode(result["probs"]), dtype="<f4")
        assert np.allclose(probs, torch.softmax(expected["logits"], 0).numpy(), atol=1e-6)


def test_a_units_box_is_the_rf_tracers_window_and_holds_its_gradient(server, sweep):
    net = load_run(sweep / "0").net
    raw = digit(server, 3)
    status, unit = request(server, "POST", "/api/unit", {"run": 0, "stage": "block2", "channel": 3, "row": 2,
                                                         "col": 1, "input": b64(raw)})
    assert status == 200, unit
    assert unit["input_box"] == list(unit_window(theoretical_rf(net)["block2"], 2, 1, 32)) == [8, 4, 24, 20]
    assert unit["below"] == "block1"
    assert unit["below_box"] == list(unit_window(local_rf(net)["block2"], 2, 1, 14)) == [4, 2, 10, 8]
    # every input pixel (and block-1 unit) the units at (2, 1) depend on, over 64 random images, lies in the boxes
    x = torch.rand(64, 1, 32, 32, requires_grad=True)
    hidden = net.stages["block1"](x)
    hidden.retain_grad()
    net.stages["block2"](hidden)[:, :, 2, 1].sum().backward()
    for grad, (top, left, bottom, right) in ((x.grad, unit["input_box"]), (hidden.grad, unit["below_box"])):
        support = grad.abs().sum(dim=(0, 1)) > 0
        inside = torch.zeros_like(support)
        inside[top:bottom, left:right] = True
        assert support[inside].any() and not support[~inside].any()
    # its filter, top examples and shift curve
    assert unit["filter"]["shape"] == [6, 5, 5] and unit["filter"]["layer"] == "Conv2d"
    assert np.allclose(np.frombuffer(base64.b64decode(unit["filter"]["values"]), dtype="<f4"),
                       net.stages["block2"].conv.weight[3].detach().reshape(-1).numpy())
    items = unit["examples"]["items"]
    assert items and [i["value"] for i in items] == sorted((i["value"] for i in items), reverse=True)
    assert all(i["png"].startswith("data:image/png;base64,") for i in items)
    shifts = unit["shifts"]
    assert shifts["shifts"] == list(range(-4, 5)) and len(shifts["across"]) == len(shifts["down"]) == 9
    unshifted = torch_stages(sweep / "0", raw)["block2"][3, 2, 1]
    assert shifts["across"][4] == pytest.approx(float(unshifted), abs=1e-5) == shifts["down"][4]


@pytest.mark.parametrize("path, body, reason", [
    ("/api/forward", {"run": 0, "input": "not base64!"}, "not valid base64"),
    ("/api/forward", {"run": 0, "input": base64.b64encode(b"\0" * 12).decode()}, "holds 3 float32 values"),
    ("/api/forward", {"run": 0, "input": b64(torch.full((1, 32, 32), 2.0))}, "in [0, 1]"),
    ("/api/forward", {"run": 0, "input": b64(torch.full((1, 32, 32), float("nan")))}, "finite"),
    ("/api/forward", {"run": 0, "input": 17}, "base64 string of 1024 float32"),
    ("/api/forward", {"run": 7, "input": ""}, "run must be a whole number in 0..1, got 7"),
    ("/api/unit", {"run": 0, "stage": "block9", "channel": 0, "row": 0, "col": 0}, "stage 'block9' is not"),
    ("/api/unit", {"run": 0, "stage": "block1", "channel": 6, "row": 0, "col": 0}, "channel must be a whole number "
                                                                                    "in 0..5, got 6"),
    ("/api/unit", {"run": 0, "stage": "block2", "channel": 0, "row": 5, "col": 0}, "row must be a whole number "
                                                                                    "in 0..4"),
    ("/api/unit", {"run": 0, "stage": "block2", "channel": 0, "row": 0, "col": -1}, "col must be a whole number"),
    ("/api/image?run=0&index=64", None, "index must be a whole number in 0..63, got 64"),
    ("/api/image?run=0&index=x", None, "index must be a whole number, got 'x'"),
    ("/api/forward", b"{not json", "not JSON"),
])
def test_a_bad_request_gets_400_with_the_reason_and_the_server_keeps_serving(server, path, body, reason):
    if isinstance(body, dict) and path == "/api/unit":
        body = {**body, "input": b64(torch.zeros(1, 32, 32))}
    status, answer = request(server, "GET" if body is None else "POST", path, body)
    assert status == 400 and reason in answer["error"], answer
    status, result = request(server, "POST", "/api/forward", {"run": 0, "input": b64(torch.zeros(1, 32, 32))})
    assert status == 200 and len(result["stages"]) == 5


@pytest.mark.parametrize("path", ["/static/../../pyproject.toml", "/static/..%2f..%2fpyproject.toml",
                                  "/../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "//etc/passwd",
                                  "/static/explore.js/../../../README.md", "/static/", "/api/../README.md"])
def test_only_the_pages_own_files_are_served(server, path):
    assert server.server_address[0] == "127.0.0.1"  # loopback unless asked otherwise
    status, body = request(server, "GET", path)
    assert status == 404
    assert b"root:" not in json.dumps(body).encode() and "cnnlab" not in str(body).replace(path, "").lower()
    status, page = request(server, "GET", "/")
    assert status == 200 and b"explore.js" in page


def run_explore(*args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([EXPLORE, *args], env=user_env(), capture_output=True, text=True, timeout=timeout)


def one_paragraph(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.strip().startswith("cnnlab: error:")
    text = " ".join(result.stderr.split())
    assert all(n in text for n in needles), text


def test_bad_command_lines_get_one_paragraph_and_exit_status_2(sweep, tmp_path):
    no_checkpoint = tmp_path / "no_checkpoint"
    no_checkpoint.mkdir()
    shutil.copy(sweep / "0" / "config.yaml", no_checkpoint / "config.yaml")
    one_paragraph(run_explore(str(no_checkpoint)), str(no_checkpoint), "has no checkpoint")

    gone = tmp_path / "gone"
    shutil.copytree(sweep / "0", gone)
    for ckpt in (gone / "checkpoints").glob("*.ckpt"):
        saved = torch.load(ckpt, map_location="cpu", weights_only=True)
        saved["hyper_parameters"]["model"]["name"] = "lenet99"
        torch.save(saved, ckpt)
    one_paragraph(run_explore(str(gone)), "model 'lenet99'", "no longer has", "lenet5")

    one_paragraph(run_explore(str(tmp_path / "missing")), "is not a directory")

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        one_paragraph(run_explore(str(sweep / "0"), "--port", str(port)), f"--port {port}", "already in use",
                      "--port 0")


def test_the_page_in_chromium_shows_the_networks_values_and_the_units_field(sweep, tmp_path):
    """Draw a stroke with the mouse in a real Chromium; the input the page sent and every value it shows equal
    torch's on that input (both runs, side by side); a clicked unit's box is the RF tracer's; no console error."""
    if not CHROMIUM.exists():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (.ci/run installs it: "
                    "apt-get install -y chromium)")
    errors: list[str] = []
    with serving([sweep], images=64, env=user_env()) as url, page(url, errors) as tab:
        assert tab.locator(".column").count() == 2  # both runs of the sweep, side by side
        tab.click("#clear")
        tab.wait_for_function("explore.idle && explore.lastSent.every(v => v === 0)", timeout=30_000)
        box = tab.locator("#input").bounding_box()
        tab.mouse.move(box["x"] + 90, box["y"] + 50)
        tab.mouse.down()
        for i in range(1, 16):
            tab.mouse.move(box["x"] + 90 + 3 * i, box["y"] + 50 + 10 * i)
        tab.mouse.up()
        tab.wait_for_timeout(200)
        tab.wait_for_function("explore.idle", timeout=30_000)
        sent = torch.tensor(tab.evaluate("explore.lastSent"), dtype=torch.float32).view(1, 32, 32)
        assert 20 < int((sent > 0.5).sum()) < 400  # a stroke, not a blank or a flood
        for job in (0, 1):
            expected = torch_stages(sweep / str(job), sent)
            shown = tab.evaluate(f"Object.fromEntries(Object.entries(explore.shown[{job}])"
                                 ".map(([k, v]) => [k, Array.from(v)]))")
            assert list(shown) == list(expected)
            for name, values in shown.items():
                assert np.allclose(values, expected[name].reshape(-1).numpy(), atol=1e-5), (job, name)
            assert np.allclose(tab.evaluate(f"explore.probs[{job}]"), torch.softmax(expected["logits"], 0).numpy(),
                               atol=1e-5)
        x, y = tab.evaluate("explore.unitCentre(1, 'block2', 5, 3, 2)")
        tab.mouse.click(x, y)
        tab.wait_for_function("explore.unit && explore.unit.run === 1 && explore.unit.channel === 5", timeout=30_000)
        unit = tab.evaluate("explore.unit")
        net = load_run(sweep / "1").net
        assert (unit["stage"], unit["row"], unit["col"]) == ("block2", 3, 2)
        assert unit["input_box"] == list(unit_window(theoretical_rf(net)["block2"], 3, 2, 32))
        assert unit["below_box"] == list(unit_window(local_rf(net)["block2"], 3, 2, 14))
        assert "sees input rows" in tab.inner_text("#unit")
        shot = tmp_path / "explore.png"
        tab.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    assert not errors, errors
