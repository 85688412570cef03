"""Screenshot of notebook 07 in JupyterLab: strokes painted with the mouse, Run pressed, the result.

    nice -n 19 env OMP_NUM_THREADS=1 .venv/bin/python tools/screenshot_tryit.py [--out docs/try_it.png]
        [--preset small] [--data-root DIR] [--checkpoint FILE] [--runs-dir DIR] [--timeout 900]

What it does (every wait bounded, everything started is stopped at the end, also on errors):

1. The model: at ``--preset small`` (the default) the shipped model (or ``--checkpoint``) on the real val faces
   of ``--data-root`` (default ``$ISFR_DATA_ROOT``; required). At ``--preset smoke`` the exported smoke model:
   ``--runs-dir`` is used as ``ISFR_RUNS_DIR`` (default: a temporary folder); when it holds no ``smoke``
   export yet, the four smoke stages are trained there on the synthetic faces (about a minute) and exported.
2. Copies ``notebooks/07_try_it.ipynb`` to a temporary folder with its parameters cell set to that preset, data
   root and checkpoint (the repository's notebook is never opened, so never autosaved with outputs) and starts
   JupyterLab headless on 127.0.0.1, a free port, a random token, with its own config / runtime / workspace
   folders, the same ``ISFR_RUNS_DIR`` / ``ISFR_FIGURES_DIR`` in its environment.
3. Headless Chromium (Debian packages ``chromium`` + ``chromium-driver``, driven by selenium:
   ``pip install -e .[screenshot]``) opens the notebook, runs all cells, draws two strokes across the
   face on the ipycanvas with real mouse events (ActionChains), clicks Run, waits for the figure and
   saves a screenshot of the widget to ``--out``.

Run it on a clean commit: the widget's provenance line names the commit (``-dirty`` on a changed tree).
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "07_try_it.ipynb"
TRAIN = ("from isfr.experiments.config import get_preset; from isfr.experiments import pipeline as T; from isfr.experiments.trained import "
         "export_pipeline; P=get_preset('smoke'); [f(P) for f in (T.train_stylegan, T.train_psp, T.train_ifr, T.train_sfr)]; "
         "print(export_pipeline(P))")


def log(msg: str) -> None:
    print(f"[screenshot {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, check, timeout: float, every: float = 0.5):
    """``check()`` until truthy (returned) or ``timeout`` seconds (``TimeoutError`` naming ``what``)."""
    end = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < end:
        try:
            value = check()
            if value:
                return value
        except Exception as err:  # not there yet (element missing, server not up, ...)
            last = err
        time.sleep(every)
    raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f}s" + (f" (last error: {last})" if last else ""))


def base_env(runs: Path, figures: Path, data_root: Path | None) -> dict[str, str]:
    """The environment of the training and of JupyterLab: widgets on; the data root, or none (synthetic faces)."""
    env = {k: v for k, v in os.environ.items() if k not in ("ISFR_DATA_ROOT", "PYTEST_CURRENT_TEST", "ISFR_HEADLESS")}
    env.update(ISFR_RUNS_DIR=str(runs), ISFR_FIGURES_DIR=str(figures), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    if data_root is not None:
        env["ISFR_DATA_ROOT"] = str(data_root)
    return env


def notebook_copy(dest: Path, preset: str, data_root: Path | None, checkpoint: str) -> Path:
    """``notebooks/07_try_it.ipynb`` written to ``dest`` with its parameters cell set to ``preset``, ``data_root``
    and ``checkpoint`` (each line ``name = ...`` of that cell replaced; a missing one is an error)."""
    nb = json.loads(NOTEBOOK.read_text(encoding="utf-8"))
    cell = next(c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", []))
    values = {"preset": preset, "data_root": str(data_root or ""), "checkpoint": checkpoint}
    lines = cell["source"] if isinstance(cell["source"], list) else cell["source"].splitlines(keepends=True)
    for name, value in values.items():
        i = next((i for i, line in enumerate(lines) if line.startswith(f"{name} =")), None)
        if i is None:
            raise RuntimeError(f"{NOTEBOOK.name}: no `{name} = ...` line in the parameters cell")
        lines[i] = f"{name} = {value!r}\n"
    cell["source"] = lines
    path = dest / NOTEBOOK.name
    path.write_text(json.dumps(nb, indent=1), encoding="utf-8")
    return path


def ensure_model(env: dict[str, str], timeout: float) -> Path:
    """The smoke export in ``env``'s runs folder, trained there first when missing."""
    ask = "from isfr.experiments.config import get_preset; from isfr.experiments.trained import export_path; print(export_path(get_preset('smoke')))"
    path = Path(subprocess.run([sys.executable, "-c", ask], env=env, capture_output=True, text=True, check=True,
                               timeout=120).stdout.strip().splitlines()[-1])
    if path.is_file():
        log(f"smoke model: {path}")
        return path
    log(f"no smoke model at {path}: training the smoke preset (synthetic faces) ...")
    subprocess.run(["nice", "-n", "19", sys.executable, "-c", TRAIN], env=env, check=True, timeout=timeout,
                   stdout=subprocess.DEVNULL)
    if not path.is_file():
        raise RuntimeError(f"training finished but {path} is missing")
    log(f"smoke model: {path}")
    return path


def start_lab(work: Path, env: dict[str, str], port: int, token: str) -> subprocess.Popen:
    cfg = work / "jupyter_config"
    (cfg / "labconfig").mkdir(parents=True)
    # no "would you like news?" toast over the screenshot
    (cfg / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    lab_env = dict(env, JUPYTER_CONFIG_DIR=str(cfg), JUPYTER_RUNTIME_DIR=str(work / "runtime"),
                   JUPYTERLAB_WORKSPACES_DIR=str(work / "workspaces"),
                   JUPYTERLAB_SETTINGS_DIR=str(work / "settings"), IPYTHONDIR=str(work / "ipython"))
    cmd = ["nice", "-n", "19", sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
           f"--port={port}", "--port-retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={work / 'nb'}", "--LabApp.expose_app_in_browser=True"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers: jupyter refuses root without this
        cmd.append("--allow-root")
    log(f"starting JupyterLab on 127.0.0.1:{port}")
    return subprocess.Popen(cmd, env=lab_env, cwd=work / "nb", stdout=open(work / "lab.log", "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its kernels (its own process group: start_new_session)
        proc.wait(timeout=20)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass


def browser(width: int, height: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              f"--window-size={width},{height}", "--hide-scrollbars", "--force-device-scale-factor=1"):
        opts.add_argument(a)
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary:
        opts.binary_location = binary
    driver_path = shutil.which("chromedriver")
    if not driver_path:
        raise RuntimeError("chromedriver not found: apt-get install -y chromium chromium-driver")
    drv = webdriver.Chrome(service=Service(driver_path), options=opts)
    drv.set_page_load_timeout(120)
    drv.set_script_timeout(60)
    return drv


def screenshot(url: str, out: Path, timeout: float, width: int, height: int) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    drv = browser(width, height)
    try:
        log("opening the notebook")
        drv.get(url)
        wait_for("JupyterLab", lambda: drv.execute_script(
            "return !!(window.jupyterapp && window.jupyterapp.shell && window.jupyterapp.shell.currentWidget"
            " && window.jupyterapp.shell.currentWidget.sessionContext"
            " && window.jupyterapp.shell.currentWidget.sessionContext.session"
            " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
            " && window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle')"),
            timeout=min(timeout, 180))
        log("running all cells")
        drv.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells');")
        canvas = wait_for("the canvas widget", lambda: next(
            (e for e in drv.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output canvas") if e.size["width"] > 100),
            None), timeout=min(timeout, 300), every=1.0)
        widget = canvas.find_element(By.XPATH, "ancestor::div[contains(@class,'widget-vbox')][last()]")
        drv.execute_script("arguments[0].scrollIntoView({block: 'start'});", widget)
        time.sleep(1.5)  # the face drawn (client_ready replays it)
        w, h = canvas.size["width"], canvas.size["height"]
        log(f"canvas {w}x{h}: painting two strokes")
        # strokes across the eyes and across the mouth, as a person would drag: press, 20 moves, release
        for start_y in (int(-0.02 * h), int(0.18 * h)):
            start_x, end_x, y_wave = int(-0.30 * w), int(0.28 * w), int(0.06 * h)
            chain = ActionChains(drv, duration=30).move_to_element_with_offset(canvas, start_x, start_y).click_and_hold()
            n = 20
            x, y = start_x, start_y
            for i in range(1, n + 1):
                nx = start_x + (end_x - start_x) * i // n
                ny = start_y - int(y_wave * (1 - abs(2 * i / n - 1)))  # a gentle arc
                chain.move_by_offset(nx - x, ny - y)
                x, y = nx, ny
            chain.release().perform()
            time.sleep(0.5)
        time.sleep(1.0)
        run = widget.find_element(By.XPATH, ".//button[normalize-space(.)='Run']")
        log("clicking Run")
        run.click()

        def result():
            imgs = widget.find_elements(By.CSS_SELECTOR, "img.widget-image")
            ok = [i for i in imgs if drv.execute_script("return arguments[0].naturalWidth", i) > 200]
            status = widget.find_element(By.CSS_SELECTOR, ".widget-html-content").text
            if "Error" in status or "empty" in status:
                raise RuntimeError(f"the widget says: {status}")
            return ok and "Done" in status

        wait_for("the result figure", result, timeout=min(timeout, 300), every=1.0)
        status = widget.find_element(By.CSS_SELECTOR, ".widget-html-content").text
        log(f"widget status: {status}")
        drv.execute_script("arguments[0].scrollIntoView({block: 'start'});", widget)
        time.sleep(1.0)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp.png")
        if not widget.screenshot(str(tmp)):
            raise RuntimeError("the browser returned no screenshot")
        os.replace(tmp, out)
        log(f"saved {out}")
    finally:
        drv.quit()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "try_it.png")
    ap.add_argument("--preset", choices=("small", "smoke"), default="small",
                    help="small: the shipped model on real val faces; smoke: a smoke model on synthetic faces")
    ap.add_argument("--data-root", type=Path, default=os.environ.get("ISFR_DATA_ROOT") or None,
                    help="the real faces at --preset small (default: $ISFR_DATA_ROOT)")
    ap.add_argument("--checkpoint", default="", help="a model file (default: the shipped model at small, the "
                                                     "smoke export at smoke)")
    ap.add_argument("--runs-dir", type=Path, default=None, help="ISFR_RUNS_DIR holding (or to receive) the smoke "
                                                                "export; default: a temporary folder")
    ap.add_argument("--timeout", type=float, default=900, help="overall bound per step, seconds")
    ap.add_argument("--size", default="1400x1700", help="browser window, WIDTHxHEIGHT")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    args = ap.parse_args(argv)
    if args.preset == "small" and not (args.data_root and (Path(args.data_root) / "celeba").is_dir()):
        ap.error("--preset small shows real val faces: give --data-root (or set ISFR_DATA_ROOT) to the folder holding "
                 "celeba/ and nvidia_irregular_masks/, or use --preset smoke")
    try:
        os.nice(19)  # never slow down training running beside us
    except OSError:
        pass
    width, height = (int(v) for v in args.size.split("x"))
    work = Path(tempfile.mkdtemp(prefix="isfr_tryit_"))
    runs = args.runs_dir.resolve() if args.runs_dir else work / "runs"
    data_root = Path(args.data_root).resolve() if args.preset == "small" else None
    env = base_env(runs, work / "figures", data_root)
    lab = None
    try:
        if args.preset == "smoke":
            ensure_model(env, args.timeout)
        (work / "nb").mkdir()
        notebook_copy(work / "nb", args.preset, data_root,
                      str(Path(args.checkpoint).resolve()) if args.checkpoint else "")
        port, token = free_port(), secrets.token_hex(16)
        lab = start_lab(work, env, port, token)
        api = f"http://127.0.0.1:{port}/api/status?token={token}"

        def up():
            if lab.poll() is not None:
                raise SystemExit(f"JupyterLab exited ({lab.returncode}); see {work / 'lab.log'}")
            with urllib.request.urlopen(api, timeout=5) as r:
                return r.status == 200

        wait_for("JupyterLab to answer", up, timeout=min(args.timeout, 180))
        screenshot(f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK.name}?token={token}", args.out.resolve(),
                   args.timeout, width, height)
        return 0
    except BaseException:
        if (work / "lab.log").is_file():
            print((work / "lab.log").read_text(errors="replace")[-4000:], file=sys.stderr)
        raise
    finally:
        stop(lab)
        log("JupyterLab stopped")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work}")


if __name__ == "__main__":
    sys.exit(main())
