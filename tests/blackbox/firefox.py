"""A small client of Marionette, Firefox's own remote protocol, so that
the browser tests can drive Firefox with Python's standard library
alone (no geckodriver).

Marionette speaks JSON over TCP, each message framed as "LENGTH:JSON".
After a greeting from Firefox, a command is [0, id, name, parameters]
and its answer [1, id, error or null, result]."""

import json
import os
import shutil
import signal
import socket
import subprocess
import time

# A fresh profile that asks nothing and fetches nothing on its own.
PREFS = {
    "marionette.port": None,  # set per browser
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.startup.page": 0,
    "browser.aboutwelcome.enabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "datareporting.healthreport.uploadEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "app.update.disabledForTesting": True,
    "app.normandy.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "browser.safebrowsing.update.enabled": False,
    "browser.safebrowsing.malware.enabled": False,
    "browser.safebrowsing.phishing.enabled": False,
    "extensions.update.enabled": False,
    "browser.search.update": False,
    "network.dns.disablePrefetch": True,
    "network.prefetch-next": False,
}


class MarionetteError(Exception):
    pass


def find():
    for c in (os.environ.get("FIREFOX"), "firefox-esr", "firefox"):
        if c and shutil.which(c):
            return shutil.which(c)
    return None


class Firefox:
    """One headless Firefox with a fresh profile in profile_dir."""

    def __init__(self, binary, profile_dir, port, timeout=60):
        self.log_path = os.path.join(profile_dir, "firefox.log")
        prefs = dict(PREFS, **{"marionette.port": port})
        with open(os.path.join(profile_dir, "user.js"), "w") as f:
            for k, v in prefs.items():
                f.write("user_pref(%s, %s);\n" % (json.dumps(k),
                                                   json.dumps(v)))
        self._log = open(self.log_path, "wb")
        env = dict(os.environ, MOZ_HEADLESS="1",
                   MOZ_CRASHREPORTER_DISABLE="1")
        self.proc = subprocess.Popen(
            [binary, "--headless", "--marionette", "--no-remote",
             # for console_messages(), which reads the browser console
             "-remote-allow-system-access",
             "--profile", profile_dir],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log,
            env=env, start_new_session=True)
        self.sock = None
        self.next_id = 0
        self._buf = b""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise MarionetteError("firefox exited with %d: %s"
                                      % (self.proc.returncode, self.log()))
            try:
                self.sock = socket.create_connection(("127.0.0.1", port),
                                                     timeout=timeout)
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.quit()
                    raise MarionetteError("no Marionette on port %d: %s"
                                          % (port, self.log()))
                time.sleep(0.2)
        hello = self._read()
        if hello.get("marionetteProtocol") != 3:
            raise MarionetteError("unexpected greeting %r" % hello)
        self.command("WebDriver:NewSession",
                     {"capabilities": {"alwaysMatch": {
                         "acceptInsecureCerts": False,
                         "pageLoadStrategy": "normal"}}})

    def log(self):
        try:
            self._log.flush()
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def _read(self):
        while True:
            head, colon, rest = self._buf.partition(b":")
            if colon:
                n = int(head)
                if len(rest) >= n:
                    self._buf = rest[n:]
                    return json.loads(rest[:n].decode("utf-8"))
            chunk = self.sock.recv(65536)
            if not chunk:
                raise MarionetteError("Marionette closed the connection: %s"
                                      % self.log()[-1500:])
            self._buf += chunk

    def command(self, name, params=None):
        self.next_id += 1
        data = json.dumps([0, self.next_id, name, params or {}]).encode()
        self.sock.sendall(b"%d:%s" % (len(data), data))
        while True:
            msg = self._read()
            if msg[0] == 1 and msg[1] == self.next_id:
                break
        if msg[2]:
            raise MarionetteError("%s: %s" % (name, msg[2]))
        return msg[3]

    def navigate(self, url):
        """Loads url and waits for its load event."""
        self.command("WebDriver:Navigate", {"url": url})

    def script(self, source, args=()):
        """Runs the body of a function in the page; returns its value."""
        return self.command("WebDriver:ExecuteScript",
                            {"script": source, "args": list(args)})["value"]

    def console_errors(self):
        """The errors that pages reported to the browser console since
        the last call (script errors, blocked CORS requests, CSP...);
        not warnings, not Firefox's own. Needs system access: the
        console service is read in the browser's chrome context."""
        self.command("Marionette:SetContext", {"value": "chrome"})
        try:
            return self.script(
                "var out = [], all = Services.console.getMessageArray();"
                "for (var m of all) {"
                "  if (!(m instanceof Ci.nsIScriptError) ||"
                "      m.isFromChromeContext ||"
                "      (m.flags & (Ci.nsIScriptError.warningFlag |"
                "                  Ci.nsIScriptError.infoFlag)))"
                "    continue;"
                "  out.push(m.errorMessage + (m.sourceName ?"
                "      ' (' + m.sourceName + ')' : ''));"
                "}"
                "Services.console.reset();"
                "return out;")
        finally:
            self.command("Marionette:SetContext", {"value": "content"})

    def quit(self):
        if self.sock is not None:
            try:
                self.command("Marionette:Quit", {"flags": ["eForceQuit"]})
            except (OSError, MarionetteError, ValueError):
                pass
            self.sock.close()
            self.sock = None
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            pass
        # The browser's content processes must not outlive it.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self._log.close()
