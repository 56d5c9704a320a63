"""`sedbench dashboard`: servers up, Ctrl-C stops every process they started; the MLflow UI in headless Chromium."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from helpers import interruptible

from sedbench.commands.cli import main

SEDBENCH = str(Path(sys.executable).with_name("sedbench"))
CHROME_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--disable-quic", "--window-size=1600,1000"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, process group) of every live process (from /proc)."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                table[int(entry.name)] = (int(fields[1]), int(fields[2]))
    return table


@contextmanager
def dashboard(*args, timeout=180):
    proc = subprocess.Popen([SEDBENCH, "dashboard", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, preexec_fn=interruptible)
    lines: list[str] = []
    threading.Thread(target=lambda: [lines.append(line) for line in proc.stdout], daemon=True).start()
    deadline = time.monotonic() + timeout
    while not any("Ctrl-C stops" in line for line in lines):
        assert proc.poll() is None, "".join(lines)
        assert time.monotonic() < deadline, "dashboard did not start:\n" + "".join(lines)
        time.sleep(0.2)
    try:
        yield proc, lines
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)


def test_servers_listen_on_loopback_unless_told_otherwise(tmp_path):
    from sedbench.commands.cli import build_parser
    from sedbench.commands.dashboard import mlflow_command

    args = build_parser().parse_args(["dashboard"])
    assert args.host == "127.0.0.1"
    cmd = mlflow_command("sqlite:///m.db", 5000, tmp_path, 1, args.host)
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1"


def test_dashboard_refuses_a_missing_store_and_a_busy_port(tmp_path, capsys):
    assert main(["dashboard", "--tracking", f"sqlite:///{tmp_path}/none.db"]) == 2
    assert "none.db: no MLflow store yet" in capsys.readouterr().err
    (tmp_path / "m.db").touch()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert main(["dashboard", "--tracking", f"sqlite:///{tmp_path}/m.db", "--port", str(port)]) == 2
    assert f"port {port} on 127.0.0.1 is in use" in capsys.readouterr().err


@pytest.mark.slow  # end to end and long: make test-full (the fast tier covers the module with shorter cases)
def test_ctrl_c_stops_both_servers_and_all_their_workers(tmp_path):
    import optuna
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    client.create_run(client.create_experiment("sedbench"))
    optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path}/optuna.db")
    port, optuna_port = free_port(), free_port()
    with dashboard("--tracking", f"sqlite:///{tmp_path}/mlflow.db", "--port", str(port), "--optuna",
                   "--storage", f"sqlite:///{tmp_path}/optuna.db", "--optuna-port", str(optuna_port),
                   "--artifacts", str(tmp_path / "artifacts")) as (proc, lines):
        import urllib.request

        assert urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10).status == 200
        assert urllib.request.urlopen(f"http://127.0.0.1:{optuna_port}/", timeout=10).status == 200
        study_page = printed_address(lines, "Optuna dashboard")  # the sweep's study, not the list of studies
        assert study_page.endswith("/dashboard/studies/1")
        assert urllib.request.urlopen(study_page, timeout=10).status == 200
        table = process_table()
        groups = {table[pid][1] for pid, (ppid, _) in table.items() if ppid == proc.pid}
        assert len(groups) == 2  # one process group per server
        members = {pid for pid, (_, pgid) in table.items() if pgid in groups}
        assert len(members) >= 3  # the servers and at least one worker
        proc.send_signal(signal.SIGINT)  # what Ctrl-C in the terminal sends
        assert proc.wait(timeout=60) == 0
    deadline = time.monotonic() + 20
    while (left := [p for p, (_, g) in process_table().items() if g in groups]) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, f"processes left running: {left}"
    assert any("stopping the dashboard" in line for line in lines)


def chrome(tmp_path):
    """Headless Chromium through chromedriver (Debian packages chromium, chromium-driver), or a skip."""
    binary = next((b for b in map(shutil.which, ("chromium", "chromium-browser")) if b), None)
    driver = shutil.which("chromedriver")
    if not binary or not driver:
        pytest.skip("headless Chromium not installed (Debian: apt-get install chromium chromium-driver; "
                    "`make test` installs them when it runs as root)")
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in [*CHROME_FLAGS, f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path, prefix='chrome-')}"]:
        options.add_argument(flag)
    try:
        return webdriver.Chrome(service=Service(driver), options=options)
    except WebDriverException as exc:
        pytest.skip(f"Chromium did not start: {exc.msg}")


def wait_for(browser, texts, timeout=90):
    """Wait until each of ``texts`` is on the page (its rendered text or its markup)."""
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    while True:
        source = browser.find_element(By.TAG_NAME, "body").text + browser.page_source
        missing = [t for t in texts if t not in source]
        if not missing:
            return source
        if time.monotonic() > deadline:
            raise AssertionError(f"{browser.current_url}: {missing} not shown within {timeout} s")
        time.sleep(0.5)


def printed_address(lines: list[str], name: str) -> str:
    line = next(line for line in lines if line.startswith(f"{name}: "))
    return line.split(": ", 1)[1].strip()


def test_the_printed_address_shows_every_trial_with_its_scores_on_first_load(tiny_sweep, tmp_path):
    """The MLflow address `sedbench dashboard` prints, opened as is in headless Chromium: without a click, the
    sweep's trials listed flat, best test/f1_frm first, each with its name, F1, ER and parameter count."""
    from mlflow.tracking import MlflowClient
    from selenium.webdriver.common.by import By

    client = MlflowClient(tiny_sweep.tracking)
    exp = client.get_experiment_by_name("sedbench")
    trials = [r for r in client.search_runs([exp.experiment_id]) if "trial" in r.data.tags]
    assert len(trials) == 3
    shots = Path(os.environ.get("SEDBENCH_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with dashboard("--tracking", tiny_sweep.tracking, "--port", str(free_port()),
                   "--artifacts", str(tiny_sweep.root / "artifacts")) as (_, lines):
        address = printed_address(lines, "MLflow UI")
        assert "viewStateShareKey=" in address and any(f"sweep {tiny_sweep.name}: 3 trials" in x for x in lines)
        browser = chrome(tmp_path)
        try:
            browser.get(address)
            wanted = [t.info.run_name for t in trials] + [repr(t.data.metrics[k]) for t in trials
                                                          for k in ("test/f1_frm", "test/er_frm")]
            wait_for(browser, [*wanted, "3 matching runs", "test/f1_frm", "n_params"])
            assert browser.save_screenshot(str(shots / "dashboard_sweep.png"))
            text = browser.find_element(By.TAG_NAME, "body").text
            order = sorted(trials, key=lambda t: -t.data.metrics["test/f1_frm"])
            positions = [text.index(t.info.run_name) for t in order]
            assert positions == sorted(positions), "trials not sorted by test/f1_frm, best first"
            for run in trials:  # each trial's page: its metrics and its sweep
                browser.get(address.split("/#/")[0] + f"/#/experiments/{exp.experiment_id}/runs/{run.info.run_id}")
                wait_for(browser, [run.info.run_name, "test/f1_frm", f"sweep {tiny_sweep.name}"])
        finally:
            browser.quit()
    assert (shots / "dashboard_sweep.png").stat().st_size > 10_000


def test_the_sweep_view_names_the_grid_and_the_scores(tiny_sweep):
    import json

    from mlflow.tracking import MlflowClient

    from sedbench.commands.dashboard import SHARED_VIEW_TAG, sweep_view

    view = sweep_view(tiny_sweep.tracking, tiny_sweep.name)
    assert view.trials == 3 and view.sweep == tiny_sweep.name
    client = MlflowClient(tiny_sweep.tracking)
    state = json.loads(client.get_experiment(view.experiment_id).tags[SHARED_VIEW_TAG + view.key])
    assert state["orderByKey"] == "metrics.`test/f1_frm`" and state["orderByAsc"] is False
    assert "mlflow.parentRunId" in state["searchFilter"]
    for col in ("metrics.`test/f1_frm`", "metrics.`test/er_frm`", "metrics.`n_params`", "metrics.`val/f1_frm_best`",
                "metrics.`test/f1_event`", "tags.`family`", "params.`model.name`"):
        assert col in state["selectedColumns"], col
    # the demo's trials leave PSDS to the report (evaluation.psds=report): a column once a run has it
    runs = client.search_runs([view.experiment_id], "tags.`mlflow.parentRunId` != ''")
    assert ("metrics.`test/psds1`" in state["selectedColumns"]) == any("test/psds1" in r.data.metrics for r in runs)
    assert not [c for c in state["selectedColumns"] if c.startswith(("params.`trial.", "params.`tracking."))]
    with pytest.raises(Exception, match="no sweep named 'nope'"):
        sweep_view(tiny_sweep.tracking, "nope")


def test_the_html_report_renders_its_tables_and_interactive_figures_offline(tiny_sweep, tmp_path):
    """`sedbench report` writes index.html; opened from file:// in headless Chromium (no server, no network),
    every table and figure renders and each point of a figure names its trial and links its MLflow run."""
    from mlflow.tracking import MlflowClient
    from selenium.webdriver.common.by import By

    out = tmp_path / "report"
    assert main(["report", tiny_sweep.name, "--storage", tiny_sweep.storage, "--tracking", tiny_sweep.tracking,
                 "--out", str(out), "--html"]) == 0
    page = out / "index.html"
    assert "http" not in page.read_text().split("<body>")[0]  # nothing fetched from the network
    shots = Path(os.environ.get("SEDBENCH_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    client = MlflowClient(tiny_sweep.tracking)
    run_ids = {r.info.run_id for r in client.search_runs([client.get_experiment_by_name("sedbench").experiment_id])
               if "trial" in r.data.tags}
    browser = chrome(tmp_path)
    try:
        browser.get(page.as_uri())
        wait_for(browser, ["Report: " + tiny_sweep.name, "Scores (Table II)", "Detection scores"])
        plots = browser.find_elements(By.CSS_SELECTOR, "svg.plot")
        assert plots and all(p.size["width"] > 300 and p.size["height"] > 200 for p in plots)
        points = browser.find_elements(By.CSS_SELECTOR, "#item-params-vs-f1-png svg.plot circle.point")
        assert len(points) == 3 and all(p.size["width"] > 0 for p in points)  # one per trial, drawn
        tips = [p.find_element(By.TAG_NAME, "title").get_attribute("textContent") for p in points]
        assert all("trial" in t and "parameters" in t and "test F1_frm" in t for t in tips)
        links = [browser.execute_script("return arguments[0].parentNode.getAttribute('href')", p) for p in points]
        assert {link.rsplit("/", 1)[1] for link in links} == run_ids  # click opens the trial's MLflow run
        images = browser.find_elements(By.TAG_NAME, "img")
        assert all(browser.execute_script("return arguments[0].naturalWidth", i) > 0 for i in images)
        assert len(browser.find_elements(By.TAG_NAME, "table")) >= 3
        browser.execute_script("document.getElementById('item-params-vs-f1-png').scrollIntoView()")
        time.sleep(0.3)
        assert browser.save_screenshot(str(shots / "report_html.png"))
    finally:
        browser.quit()
    parent = client.search_runs([client.get_experiment_by_name("sedbench").experiment_id],
                                f"tags.sweep = '{tiny_sweep.name}' and tags.kind = 'sweep'")[0]
    assert "report/index.html" in {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert "Scores (Table II)" in parent.data.tags["mlflow.note.content"]  # opening the parent run shows the study
