"""A page checked in a real headless browser: Debian's Chromium driven over the DevTools
protocol (websocket-client). Loads a local file with no network, then reports whether the load
event fired, every <img>'s natural width, and every console error, uncaught exception and
failed resource load."""

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# Set by .ci/run: there a missing browser fails the test instead of skipping it.
REQUIRE_ENV = "RESNET_DET_REQUIRE_CHROMIUM"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def find_chromium():
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class _Session:
    def __init__(self, ws):
        self.ws = ws
        self.next_id = 0
        self.events = []

    def call(self, method, timeout=60, **params):
        self.next_id += 1
        msg_id = self.next_id
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"DevTools {method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)
        raise TimeoutError(f"DevTools {method}: no answer in {timeout} s")

    def wait_event(self, method, timeout=60):
        for msg in self.events:
            if msg.get("method") == method:
                return msg
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            self.events.append(msg)
            if msg.get("method") == method:
                return msg
        raise TimeoutError(f"DevTools: no {method} in {timeout} s")


def check_page(html_path, chromium, timeout=90):
    """{"loaded": bool, "images": [(src, naturalWidth)], "errors": [str], "title": str}."""
    import websocket

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    proc = subprocess.Popen(
        [
            chromium,
            *FLAGS,
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        port_file = os.path.join(profile, "DevToolsActivePort")
        deadline = time.monotonic() + timeout
        while not (os.path.exists(port_file) and open(port_file).read().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{chromium} did not start (exit status {proc.poll()})")
            time.sleep(0.1)
        port = int(open(port_file).read().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as r:
            targets = json.load(r)
        page = next(t for t in targets if t.get("type") == "page")
        ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=timeout)
        s = _Session(ws)
        for domain in ("Page", "Runtime", "Log"):
            s.call(f"{domain}.enable")
        url = "file://" + os.path.abspath(html_path)
        s.call("Page.navigate", url=url)
        s.wait_event("Page.loadEventFired", timeout=timeout)
        result = s.call(
            "Runtime.evaluate",
            expression=(
                "JSON.stringify({title: document.title, images: Array.from(document.images)"
                ".map(i => [i.getAttribute('src'), i.complete ? i.naturalWidth : -1])})"
            ),
            returnByValue=True,
        )
        page_info = json.loads(result["result"]["value"])
        # Let late messages (e.g. a failed image) arrive.
        s.call("Runtime.evaluate", expression="1")
        errors = []
        for msg in s.events:
            method, params = msg.get("method"), msg.get("params", {})
            if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append(f"console.{params['type']}: {params.get('args')}")
            elif method == "Runtime.exceptionThrown":
                errors.append(f"exception: {params.get('exceptionDetails', {}).get('text')}")
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                entry = params["entry"]
                errors.append(
                    f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url')}"
                )
        try:
            s.call("Browser.close", timeout=10)
        except Exception:
            pass
        ws.close()
        return {
            "loaded": True,
            "title": page_info["title"],
            "images": [tuple(i) for i in page_info["images"]],
            "errors": errors,
        }
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(profile, ignore_errors=True)
