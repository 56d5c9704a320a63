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

from sedbench.cli import main

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
    from sedbench.cli import build_parser
    from sedbench.dashboard import mlflow_command

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


def test_mlflow_ui_in_headless_chromium_shows_the_sweep(tiny_sweep, tmp_path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tiny_sweep.tracking)
    exp = client.get_experiment_by_name("sedbench")
    trials = [r for r in client.search_runs([exp.experiment_id]) if "trial" in r.data.tags]
    assert len(trials) == 3
    shots = Path(os.environ.get("SEDBENCH_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with dashboard("--tracking", tiny_sweep.tracking, "--port", str(port),
                   "--artifacts", str(tiny_sweep.root / "artifacts")):
        browser = chrome(tmp_path)
        try:
            url = f"http://127.0.0.1:{port}/#/experiments"
            browser.get(url)
            wait_for(browser, ["sedbench"])
            browser.get(f"{url}/{exp.experiment_id}/runs")
            wait_for(browser, [f"sweep {tiny_sweep.name}", "4 matching runs"])  # the sweep's parent run and 3 trials
            assert browser.save_screenshot(str(shots / "dashboard_experiment.png"))
            for run in trials:
                browser.get(f"{url}/{exp.experiment_id}/runs/{run.info.run_id}")
                wait_for(browser, [run.info.run_name, "test/f1_frm", f"sweep {tiny_sweep.name}"])
            from selenium.webdriver.common.by import By

            cell = browser.find_element(By.XPATH, "//*[text()='test/f1_frm']")
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", cell)
            time.sleep(0.5)
            assert browser.save_screenshot(str(shots / "dashboard_run.png"))
        finally:
            browser.quit()
    assert (shots / "dashboard_run.png").stat().st_size > 10_000
