"""A small client of the Chrome DevTools Protocol over a pipe, so that
the browser tests can drive headless Chromium with Python's standard
library alone: set the viewport (a 375 px phone, which a desktop window
cannot be), turn scripts off, read the console and take screenshots.

With --remote-debugging-pipe, Chromium reads commands from its fd 3 and
writes answers and events to its fd 4, each a JSON object followed by a
NUL byte. A command is {"id", "method", "params"[, "sessionId"]}; its
answer carries the same id."""

import base64
import fcntl
import json
import os
import signal
import subprocess
import time


class CDPError(Exception):
    pass


class Chromium:
    """One headless Chromium with a fresh profile in profile_dir, and one
    page (a target) attached."""

    def __init__(self, binary, profile_dir, user_agent, timeout=60):
        self.timeout = timeout
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()
        self.log_path = os.path.join(profile_dir, "chromium.log")
        self._log = open(self.log_path, "wb")
        # Chromium wants the pipe on fds 3 and 4 exactly. Python's own
        # descriptors are close-on-exec, and os.dup2's copies are not:
        # so the child keeps 0 to 4 alone.
        def fds():
            # Out of the way first: either may be 3 or 4 already.
            r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
            w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(r, 3)
            os.dup2(w, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)
        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu",
             "--remote-debugging-pipe", "--no-first-run",
             "--no-default-browser-check", "--disable-background-networking",
             "--disable-component-update", "--disable-sync",
             "--disable-extensions", "--disable-breakpad",
             "--disable-crash-reporter", "--disable-quic",
             "--disable-features=Translate,MediaRouter,OptimizationHints",
             "--user-data-dir=" + profile_dir,
             # Headless Chromium says so in its User-Agent.
             "--user-agent=" + user_agent, "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            preexec_fn=fds, close_fds=False, start_new_session=True)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0
        self.events = []
        self.session = None
        targets = self.command("Target.getTargets")["targetInfos"]
        page = [t for t in targets if t["type"] == "page"]
        if not page:
            page = [{"targetId": self.command(
                "Target.createTarget", {"url": "about:blank"})["targetId"]}]
        self.session = self.command("Target.attachToTarget", {
            "targetId": page[0]["targetId"], "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.command(domain + ".enable")

    def log(self):
        try:
            self._log.flush()
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-1500:]
        except OSError:
            return ""

    def _read(self, deadline):
        while b"\0" not in self._buf:
            if time.monotonic() > deadline:
                raise CDPError("no answer from chromium: %s" % self.log())
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise CDPError("chromium closed the pipe: %s" % self.log())
            self._buf += chunk
        msg, _, self._buf = self._buf.partition(b"\0")
        return json.loads(msg.decode("utf-8"))

    def command(self, method, params=None, browser=False):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if self.session and not browser:
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            m = self._read(deadline)
            if m.get("id") == self._id:
                if "error" in m:
                    raise CDPError("%s: %s" % (method, m["error"]))
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for i, e in enumerate(self.events):
                if e.get("method") == method:
                    del self.events[i]
                    return e
            self.events.append(self._read(deadline))

    def viewport(self, width, height, mobile=False, dark=False):
        self.command("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1,
            "mobile": mobile})
        self.command("Emulation.setEmulatedMedia", {"features": [
            {"name": "prefers-color-scheme",
             "value": "dark" if dark else "light"}]})

    def scripts(self, enabled):
        self.command("Emulation.setScriptExecutionDisabled",
                     {"value": not enabled})

    def navigate(self, url):
        self.events = [e for e in self.events
                       if e.get("method") != "Page.loadEventFired"]
        r = self.command("Page.navigate", {"url": url})
        if r.get("errorText"):
            raise CDPError("navigate %s: %s" % (url, r["errorText"]))
        self.wait_event("Page.loadEventFired")

    def evaluate(self, expression):
        """The value of a JavaScript expression in the page (DevTools
        runs it even when the page may run no script of its own)."""
        r = self.command("Runtime.evaluate", {"expression": expression,
                                              "returnByValue": True})
        if "exceptionDetails" in r:
            raise CDPError("%s: %s" % (expression, r["exceptionDetails"]))
        return r["result"].get("value")

    def html(self):
        root = self.command("DOM.getDocument", {"depth": 0})["root"]
        return self.command("DOM.getOuterHTML",
                            {"nodeId": root["nodeId"]})["outerHTML"]

    def console_errors(self):
        """Errors the page reported since the last call: exceptions,
        console.error, and the browser's own (CSP, failed loads)."""
        out, keep = [], []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.exceptionThrown":
                out.append(p["exceptionDetails"].get("text", "exception"))
            elif m == "Runtime.consoleAPICalled" and p.get("type") == "error":
                out.append(" ".join(str(a.get("value")) for a in
                                    p.get("args", [])))
            elif m == "Log.entryAdded" and \
                    p["entry"].get("level") == "error":
                out.append(p["entry"].get("text", ""))
            else:
                keep.append(e)
        self.events = keep
        return out

    def screenshot(self, path, full=True):
        params = {"format": "png"}
        if full:
            params["captureBeyondViewport"] = True
            m = self.command("Page.getLayoutMetrics")["cssContentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": m["width"],
                              "height": m["height"], "scale": 1}
        data = self.command("Page.captureScreenshot", params)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def quit(self):
        try:
            self.command("Browser.close", browser=True)
        except (OSError, CDPError, ValueError):
            pass
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        for fd in (self._r, self._w):
            try:
                os.close(fd)
            except OSError:
                pass
        self._log.close()
