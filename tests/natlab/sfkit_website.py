#!/usr/bin/env python3
"""A test double of the sfkit website's CLI API (registry plugin `sfkit`).

Python 3 standard library only.  Serves, under a base path (default /api):

  GET      {base}/get_doc_ref_dict               the caller's study as JSON
  GET/POST {base}/update_firestore?msg=update_firestore::NAME=VALUE
  GET      {base}/get_username                   {"username": <user id>}

with header `Authorization: <auth key>`, and in Terra mode (--terra) the
query parameter `study_id=<id>` on every call.

Behaviour, as in hcholab/sfkit-website src/cli.py + src/auth.py +
src/utils/api_functions.py (checked in that order):

  update_firestore only: msg must split on "::" into exactly two parts
        (the text before "::" is not checked by the real site; the double
        accepts it too and logs a warning) ..................... 400
  no Authorization header, or a key the double does not know ..... 401
  Terra mode and no study_id query parameter ..................... 400
  the study does not exist, or the key's user is not a participant  403
  the study is "incomplete": it has no `participants` list yet
        (--incomplete / "incomplete": true / control `incomplete`) .. 409
  update_firestore only: the caller has no GCP_PROJECT personal
        parameter (real: "GCP_PROJECT not found"; the double models it
        with "incomplete": [user ids]) ........................... 409
  update_firestore only, "status=..." / "task=..." set the caller's
        status / append a task, as the real site ................... 200
  update_firestore only: NAME=VALUE must split on "=" into exactly
        two parts and NAME must exist in the caller's
        personal_parameters ...................................... 400
  otherwise the value is stored (always as a string) ............. 200

Error bodies are {"error": "..."} (the real site's HTTPException handler).
Differences from the real site (the double follows SPEC.md):
  - the real site also accepts a NAME from the study-wide `parameters`
    (and changes it for everybody); SPEC: NAME must exist *for that party*,
    so the double answers 400;
  - for a VALUE with "=", the real site retries ten times with 1 s sleeps
    before its 400 (about 10 s); the double answers at once;
  - the real site answers 401 in Terra mode after asking Terra's SAM about
    a bearer token; the double looks the header up in its key table
    (also without a leading "Bearer ").
  - the real site's default personal parameters have no EXTERNAL_ADDR /
    QUIC_PUBKEY_SHA256: the double adds them (with value "") unless the
    config says "proxy_params": false, so a test can show the 400 the
    real site would give today.
Like the real site, the study JSON holds every participant's AUTH_KEY
value (the real site stores the key there); the double does too, so a test
can check that a proxy never logs what it reads.  NUM_THREADS is a number
and personal_parameters.<user>.index is a list, as on the real site:
consumers must not assume every entry is {"value": "<string>"}.

Configuration: --config FILE (JSON) and/or flags.

  {
    "terra": false,
    "base_path": "/api",
    "studies": {
      "study-1": {
        "title": "NAT lab", "study_type": "SF-GWAS",
        "participants": ["Broad", "alice", "bob"],
        "incomplete": false,            # or true, or ["bob"] (see above)
        "proxy_params": true,
        "personal_parameters": {"alice": {"EXTERNAL_ADDR": "192.0.2.1:4000"}}
      }
    },
    "keys": {"KEY": {"user": "alice", "study": "study-1"}}   # or "KEY": "alice"
  }

A key given as "KEY": "alice" belongs to the only (or first) study.  Flags:
  --study ID                 the study the flags below talk about (default
                             "study-1"; created when missing)
  --participant USER=KEY     append USER to its participants, with auth key
                             KEY ("@FILE" reads the key from FILE's first line)
  --outsider USER=KEY        a valid key of a user who is no participant (403)
  --param USER.NAME=VALUE    an initial personal parameter value
  --incomplete               the study has no participants list yet (409)
  --terra                    require study_id=<id> on every call
  --host H --port P          listen address (port 0: pick one)
  --base-path /api
  --tls-cert F --tls-key F   serve HTTPS
  --log FILE                 JSON-lines request log (see below)
  --ready-file FILE          written with "URL" once listening
  --control-socket PATH      the control channel (below); default none
  --control-port P           the control channel on 127.0.0.1:P too

Ready marker: once listening, the double prints "ready: URL" on stdout and
writes URL (e.g. http://203.0.113.10:80/api) to --ready-file (atomically).

Request log: one JSON object per line, appended to --log:
  {"ts": 1764619200.123, "time": "...Z", "client": "ip:port", "method": "GET",
   "path": "/api/update_firestore", "query": {"msg": "..."}, "party": "alice",
   "pid": 1, "study": "study-1", "status": 200,
   "update": "EXTERNAL_ADDR=203.0.113.101:40000", "fault": null, "error": null}
"party" is the user id the key maps to (null when unknown); the key itself
is never written.  "update" is set for update_firestore calls.  Control
commands are logged too, with "method": "CONTROL".

Control channel (for tests), HTTP on a Unix socket (--control-socket; works
from any network namespace, since it lives in the file system) and/or on
127.0.0.1:--control-port.  Drive it with curl:
  curl -s --unix-socket SOCK 'http://ctl/fault?kind=status&code=503&requests=3'
Commands (GET or POST; query parameters):
  /fault?kind=status&code=503       answer CODE to API requests
  /fault?kind=delay&ms=800          answer normally after MS milliseconds
  /fault?kind=close                 accept, read the request, close without
                                    an answer (an outage at the HTTP level)
  /fault?kind=hang                  accept and never answer: a hung request
                                    is held until &seconds pass, or /reset
                                    (then closed); &requests=N hangs N
  /fault?kind=refuse                stop listening: connections are refused
                                    (the port is bound again when it ends)
    each with &seconds=N (for N seconds) and/or &requests=N (for the next N
    requests; not for refuse); neither: until /reset.  A new /fault
    replaces the current one.
  /reset                            back to normal (ends any fault)
  /incomplete?study=ID&on=1|0       toggle the "no participants yet" state
  /set?study=ID&user=U&name=N&value=V  set a personal parameter directly
                                    (as if that party had published it)
  /state                            the current studies (JSON), the fault,
                                    "hung" (requests held now), "listening"
  /log                              the request log so far (JSON lines)
  /quit                             stop the double (exit status 0)
Answers are JSON: {"ok": true, ...} or {"ok": false, "error": "..."}.
The helper `sfkit_website.py ctl SOCK PATH?QUERY` does the same as curl.
`sfkit_website.py summary LOG` prints, per party, its successful reads, its
status codes and the last value it published of each NAME (for a closing note).

SIGTERM/SIGINT stop the double with status 0.
"""

import argparse
import copy
import http.server
import json
import os
import signal
import socket
import socketserver
import ssl
import sys
import threading
import time
import urllib.parse
from email.utils import formatdate

LOCK = threading.RLock()


def now_iso():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % (int(t * 1000) % 1000)


def param(name, value, description=""):
    return {"name": name, "description": description, "value": value}


def default_personal_parameters(auth_key, proxy_params=True):
    """The real site's DEFAULT_USER_PARAMETERS, shortened, plus the proxy's two."""
    p = {
        "PUBLIC_KEY": param("Public Key", ""),
        "GCP_PROJECT": param("GCP Project ID", ""),
        "DATA_PATH": param("GCP Path to Data", ""),
        "NUM_INDS": param("Number of Individuals", ""),
        "NUM_THREADS": param("Number of Threads", 20),
        "IP_ADDRESS": param("IP Address", ""),
        "PORTS": param("Ports", "null,3110,7320"),
        "AUTH_KEY": param("Authentication Key", auth_key),
        "SEND_RESULTS": param("Visualize Results", "Yes"),
        "CREATE_VM": param("Create VM", "No"),
        "DELETE_VM": param("Delete VM", "No"),
    }
    if proxy_params:
        p["EXTERNAL_ADDR"] = param("External address", "", "ip:port of the party's public UDP mapping (sfkit-proxy)")
        p["QUIC_PUBKEY_SHA256"] = param("QUIC public-key pin", "", "hex SHA-256 of the proxy's SubjectPublicKeyInfo")
    p["index"] = [k for k in p]
    return p


class State:
    """Studies, keys and the current fault; guarded by LOCK."""

    def __init__(self, cfg):
        self.terra = bool(cfg.get("terra", False))
        self.studies = {}  # id -> served document (dict)
        self.incomplete = {}  # id -> bool (no participants list)
        self.hidden_participants = {}  # id -> participants while incomplete
        self.keys = {}  # key -> (user, study)
        self.fault = None
        self.hung = 0  # requests held by a hang fault now
        self.epoch = 0  # bumped by /reset and /fault: ends every hang
        self.fault_lock = threading.Condition(LOCK)
        studies = cfg.get("studies", {})
        first = next(iter(studies), None)
        keys = cfg.get("keys", {})
        key_of = {}
        for key, v in keys.items():
            if isinstance(v, str):
                v = {"user": v, "study": first}
            self.keys[key] = (v["user"], v.get("study", first))
            key_of.setdefault((v["user"], v.get("study", first)), key)
        for sid, s in studies.items():
            parts = list(s.get("participants", []))
            pp = {}
            noproj = s.get("incomplete") if isinstance(s.get("incomplete"), list) else []
            for u in parts:
                pp[u] = default_personal_parameters(key_of.get((u, sid), ""), s.get("proxy_params", True))
                for name, value in s.get("personal_parameters", {}).get(u, {}).items():
                    if name in pp[u] and isinstance(pp[u][name], dict):
                        pp[u][name]["value"] = value
                    else:
                        pp[u][name] = param(name, value)
                        pp[u]["index"].append(name)
                if u in noproj:
                    del pp[u]["GCP_PROJECT"]
                    pp[u]["index"].remove("GCP_PROJECT")
            doc = {
                "study_id": sid,
                "title": s.get("title", sid),
                "study_type": s.get("study_type", "SF-GWAS"),
                "private": True,
                "demo": False,
                "description": s.get("description", "sfkit-proxy NAT lab"),
                "study_information": "",
                "owner": parts[1] if len(parts) > 1 else (parts[0] if parts else ""),
                "created": formatdate(time.time(), usegmt=True),
                "participants": parts,
                "status": {u: ("ready to begin protocol" if i == 0 else "") for i, u in enumerate(parts)},
                "tasks": {u: [] for u in parts},
                "parameters": {
                    "NUM_SNPS": param("Number of Single Nucleotide Polymorphisms", 28021),
                    "ITER_PER_EVAL": param("Iterations per evaluation", 5),
                },
                "advanced_parameters": {},
                "personal_parameters": pp,
                "requested_participants": {},
                "invited_participants": [],
            }
            self.studies[sid] = doc
            self.set_incomplete(sid, s.get("incomplete") is True)

    def set_incomplete(self, sid, on):
        doc = self.studies[sid]
        if on and "participants" in doc:
            self.hidden_participants[sid] = doc.pop("participants")
        elif not on and "participants" not in doc:
            doc["participants"] = self.hidden_participants.pop(sid)
        self.incomplete[sid] = on

    def user_of(self, auth):
        """(user, study) for an Authorization header value, or None."""
        if not auth:
            return None
        if auth in self.keys:
            return self.keys[auth]
        if auth.startswith("Bearer ") and auth[7:] in self.keys:
            return self.keys[auth[7:]]
        return None


STATE = None
ARGS = None
LOG_FILE = None


def write_log(entry):
    with LOCK:
        if LOG_FILE:
            LOG_FILE.write(json.dumps(entry, sort_keys=True) + "\n")
            LOG_FILE.flush()


class ApiError(Exception):
    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code
        self.msg = msg


# --- faults -------------------------------------------------------------------
class Fault:
    def __init__(self, kind, code=503, ms=0, seconds=None, requests=None):
        self.kind = kind
        self.code = code
        self.ms = ms
        self.until = time.monotonic() + seconds if seconds is not None else None
        self.left = requests
        self.desc = {"kind": kind, "code": code, "ms": ms, "seconds": seconds, "requests": requests}
        self.epoch = STATE.epoch  # /reset or a new /fault bumps STATE.epoch

    def holding(self):
        """A hung request stays hung: until the seconds pass, /reset or a new /fault."""
        return STATE.epoch == self.epoch and (self.until is None or time.monotonic() < self.until)

    def active(self):
        if self.until is not None and time.monotonic() >= self.until:
            return False
        if self.left is not None and self.left <= 0:
            return False
        return True


def take_fault():
    """The fault that applies to this request (consuming one of its count)."""
    with LOCK:
        f = STATE.fault
        if f is None:
            return None
        if not f.active():
            STATE.fault = None
            return None
        if f.left is not None:
            f.left -= 1
        return f


# --- the API ------------------------------------------------------------------
class ApiHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Apache"
    sys_version = ""

    def log_message(self, fmt, *args):  # quiet: the JSON log says it all
        pass

    def send_json(self, code, obj, extra_headers=()):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in extra_headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        self.handle_api()

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        self.handle_api()

    def handle_api(self):
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        query = {k: v[0] if len(v) == 1 else v for k, v in q.items()}
        entry = {
            "ts": round(time.time(), 3),
            "time": now_iso(),
            "client": "%s:%s" % self.client_address[:2],
            "method": self.command,
            "path": url.path,
            "query": query,
            "party": None,
            "pid": None,
            "study": None,
            "status": None,
            "update": None,
            "fault": None,
            "error": None,
        }
        if LISTENER.srv is not self.server:
            # a refuse fault stopped (or rebound) the listener: drop the kept-alive
            # connections of the old one too, as a restarted server would
            self.close_connection = True
            return
        fault = take_fault()
        if fault is not None:
            entry["fault"] = fault.kind
            if fault.kind == "delay":
                time.sleep(fault.ms / 1000.0)
            elif fault.kind in ("close", "hang"):
                if fault.kind == "hang":
                    with STATE.fault_lock:
                        STATE.hung += 1
                        while fault.holding():
                            STATE.fault_lock.wait(0.1)
                        STATE.hung -= 1
                entry["status"] = 0
                entry["error"] = "connection closed without an answer (fault %s)" % fault.kind
                write_log(entry)
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            elif fault.kind == "status":
                entry["status"] = fault.code
                entry["error"] = "injected"
                write_log(entry)
                self.send_json(fault.code, {"error": "injected fault %d" % fault.code})
                return
        try:
            code, obj = self.route(url.path, q, entry)
        except ApiError as e:
            code, obj = e.code, {"error": e.msg}
            entry["error"] = e.msg
        except Exception as e:  # a bug in the double: say so loudly
            code, obj = 500, {"error": "internal error in the double: %r" % e}
            entry["error"] = obj["error"]
        entry["status"] = code
        write_log(entry)
        self.send_json(code, obj)

    def route(self, path, q, entry):
        base = ARGS.base_path.rstrip("/")
        if not path.startswith(base + "/"):
            raise ApiError(404, "not found")
        name = path[len(base) + 1:]
        if name == "get_doc_ref_dict":
            if self.command != "GET":
                raise ApiError(405, "method not allowed")
            return self.get_doc_ref_dict(q, entry)
        if name == "update_firestore":
            return self.update_firestore(q, entry)
        if name == "get_username":
            user, _ = self.auth(entry)
            return 200, {"username": user}
        raise ApiError(404, "not found")

    def auth(self, entry):
        """(user, study id) of the caller; 401/400 as the real site."""
        auth = self.headers.get("Authorization", "")
        u = STATE.user_of(auth)
        if u is None:
            raise ApiError(401, "Missing authorization key" if not auth else "invalid authorization key")
        user, sid = u
        entry["party"] = user
        qs = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query, keep_blank_values=True)
        if STATE.terra:
            if "study_id" not in qs:
                raise ApiError(400, "Missing study ID")
            sid = qs["study_id"][0]
        elif "study_id" in qs and qs["study_id"][0] != sid:
            # the real site ignores study_id outside Terra: so does the double
            entry["warning"] = "study_id %r ignored (not Terra): the key's study is %r" % (qs["study_id"][0], sid)
        entry["study"] = sid
        return user, sid

    def study(self, entry):
        """(user, study id, doc) or 403/409 as the real site's _get_study."""
        user, sid = self.auth(entry)
        doc = STATE.studies.get(sid)
        if doc is None or ("participants" in doc and user not in doc["participants"]):
            raise ApiError(403, "You don't have the permission to access the requested resource.")
        if "participants" not in doc:
            raise ApiError(409, "study has no participants")
        entry["pid"] = doc["participants"].index(user)
        return user, sid, doc

    def get_doc_ref_dict(self, q, entry):
        with LOCK:
            _, _, doc = self.study(entry)
            return 200, copy.deepcopy(doc)

    def update_firestore(self, q, entry):
        msg = q.get("msg", [""])[0]
        parts = msg.split("::")
        if len(parts) != 2:
            raise ApiError(400, "msg must be in the format 'update_firestore::parameter=value'")
        if parts[0] != "update_firestore":
            entry["warning"] = "msg prefix %r is not update_firestore (the real site does not check it)" % parts[0]
        parameter = parts[1]
        entry["update"] = parameter
        with LOCK:
            user, _, doc = self.study(entry)
            mine = doc["personal_parameters"].get(user, {})
            if "GCP_PROJECT" not in mine:
                raise ApiError(409, "GCP_PROJECT not found")
            if parameter.startswith("status="):
                doc.setdefault("status", {})[user] = parameter.split("=")[1]
                return 200, {}
            if parameter.startswith("task="):
                tasks = doc.setdefault("tasks", {}).setdefault(user, [])
                t = parameter.split("=")[1]
                if t not in tasks:
                    tasks.append(t)
                return 200, {}
            nv = parameter.split("=")
            if len(nv) != 2:
                raise ApiError(400, "Failed to update parameter")
            name, value = nv
            if name == "index" or not isinstance(mine.get(name), dict):
                raise ApiError(400, "Failed to update parameter")
            mine[name]["value"] = value
            return 200, {}


class ApiServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    tls = None

    def finish_request(self, request, client_address):
        if self.tls is not None:
            request.settimeout(10)
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError):
                return
            request.settimeout(None)
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        e = sys.exc_info()[1]
        if isinstance(e, (ConnectionError, ssl.SSLError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class Listener:
    """The API listener; can stop and rebind on the same address (refuse)."""

    def __init__(self, host, port, tls):
        self.host = host
        self.tls = tls
        self.srv = None
        self.thread = None
        self.port = port
        self.start()

    def start(self):
        srv = ApiServer((self.host, self.port), ApiHandler)
        srv.tls = self.tls
        self.port = srv.server_address[1]
        self.srv = srv
        self.thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def stop(self):
        if self.srv is not None:
            self.srv.shutdown()
            self.srv.server_close()
            self.srv = None


LISTENER = None
REFUSE_TIMER = None


def end_refuse():
    """Bind the API port again after a refuse fault."""
    global REFUSE_TIMER
    with LOCK:
        REFUSE_TIMER = None
        if LISTENER.srv is None:
            for _ in range(50):
                try:
                    LISTENER.start()
                    break
                except OSError:
                    time.sleep(0.1)


# --- the control channel ------------------------------------------------------
class CtlHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):
        pass

    def address_string(self):
        return "control"

    def do_POST(self):
        self.do_GET()

    def answer(self, code, obj, raw=None):
        body = raw if raw is not None else (json.dumps(obj, indent=1) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = {k: v[0] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        cmd = url.path.strip("/")
        try:
            code, obj, raw = control(cmd, q)
        except (KeyError, ValueError) as e:
            code, obj, raw = 400, {"ok": False, "error": "bad command: %r" % (e,)}, None
        write_log({"ts": round(time.time(), 3), "time": now_iso(), "method": "CONTROL", "path": "/" + cmd,
                   "query": q, "status": code})
        self.answer(code, obj, raw)
        if cmd == "quit":
            threading.Thread(target=lambda: os.kill(os.getpid(), signal.SIGTERM), daemon=True).start()


def control(cmd, q):
    global REFUSE_TIMER
    if cmd == "fault":
        kind = q["kind"]
        if kind not in ("status", "delay", "close", "hang", "refuse"):
            raise ValueError("kind must be status|delay|close|hang|refuse")
        seconds = float(q["seconds"]) if "seconds" in q else None
        requests = int(q["requests"]) if "requests" in q else None
        if kind == "refuse" and requests is not None:
            raise ValueError("refuse takes seconds, not requests")
        f = Fault(kind, code=int(q.get("code", 503)), ms=int(q.get("ms", 0)), seconds=seconds, requests=requests)
        with LOCK:
            STATE.epoch += 1
            f.epoch = STATE.epoch
            STATE.fault = None if kind == "refuse" else f
            STATE.fault_lock.notify_all()
            if REFUSE_TIMER is not None:
                REFUSE_TIMER.cancel()
                REFUSE_TIMER = None
            if kind == "refuse":
                LISTENER.stop()
                if seconds is not None:
                    REFUSE_TIMER = threading.Timer(seconds, end_refuse)
                    REFUSE_TIMER.daemon = True
                    REFUSE_TIMER.start()
            elif LISTENER.srv is None:
                end_refuse()
        return 200, {"ok": True, "fault": f.desc}, None
    if cmd == "reset":
        with LOCK:
            STATE.epoch += 1
            STATE.fault = None
            STATE.fault_lock.notify_all()
            if REFUSE_TIMER is not None:
                REFUSE_TIMER.cancel()
                REFUSE_TIMER = None
            if LISTENER.srv is None:
                end_refuse()
        return 200, {"ok": True}, None
    if cmd == "incomplete":
        with LOCK:
            STATE.set_incomplete(q["study"], q.get("on", "1") not in ("0", "false", "no"))
        return 200, {"ok": True}, None
    if cmd == "set":
        with LOCK:
            doc = STATE.studies[q["study"]]
            pp = doc["personal_parameters"].setdefault(q["user"], {"index": []})
            if isinstance(pp.get(q["name"]), dict):
                pp[q["name"]]["value"] = q["value"]
            else:
                pp[q["name"]] = param(q["name"], q["value"])
                pp["index"].append(q["name"])
        return 200, {"ok": True}, None
    if cmd == "state":
        with LOCK:
            f = STATE.fault
            return 200, {"ok": True, "terra": STATE.terra, "studies": copy.deepcopy(STATE.studies),
                         "incomplete": dict(STATE.incomplete),
                         "fault": f.desc if f is not None and f.active() else None,
                         "hung": STATE.hung, "listening": LISTENER.srv is not None}, None
    if cmd == "log":
        with LOCK:
            raw = b""
            if ARGS.log:
                with open(ARGS.log, "rb") as fh:
                    raw = fh.read()
        return 200, None, raw
    if cmd == "quit":
        return 200, {"ok": True}, None
    return 404, {"ok": False, "error": "unknown command %r" % cmd}, None


class UnixCtlServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class TcpCtlServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


# --- `ctl` client ---------------------------------------------------------------
def ctl_main(argv):
    """sfkit_website.py ctl SOCKET PATH?QUERY: one control command."""
    if len(argv) != 2:
        print("usage: sfkit_website.py ctl SOCKET 'fault?kind=status&code=503&requests=2'", file=sys.stderr)
        return 2
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(argv[0])
    s.sendall(("GET /%s HTTP/1.0\r\nHost: ctl\r\n\r\n" % argv[1].lstrip("/")).encode())
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    head, _, body = data.partition(b"\r\n\r\n")
    sys.stdout.write(body.decode())
    return 0 if b" 200 " in head.split(b"\r\n")[0] + b" " else 1


# --- `summary` -------------------------------------------------------------------
def summary_main(argv):
    """sfkit_website.py summary LOG: per party, reads, publications, errors."""
    if len(argv) != 1:
        print("usage: sfkit_website.py summary LOG.jsonl", file=sys.stderr)
        return 2
    parties = {}
    with open(argv[0], encoding="utf-8") as f:
        for line in f:
            e = json.loads(line)
            if e.get("method") == "CONTROL":
                continue
            p = parties.setdefault(str(e.get("party")), {"reads": 0, "ok": 0, "codes": {}, "published": {}})
            code = e.get("status")
            p["codes"][str(code)] = p["codes"].get(str(code), 0) + 1
            if code == 200 and e.get("path", "").endswith("/get_doc_ref_dict"):
                p["reads"] += 1
            if code == 200 and e.get("update"):
                name, _, value = e["update"].partition("=")
                p["published"][name] = value
    for name, p in sorted(parties.items()):
        print("%s: %d reads, status codes %s" % (name, p["reads"],
              " ".join("%s x%d" % kv for kv in sorted(p["codes"].items()))))
        for k, v in sorted(p["published"].items()):
            print("  published %s=%s" % (k, v))
    return 0


# --- configuration ----------------------------------------------------------------
def read_key(v):
    if v.startswith("@"):
        with open(v[1:], encoding="utf-8") as f:
            return f.readline().strip()
    return v


def build_config(args):
    cfg = {}
    if args.config:
        with open(args.config, encoding="utf-8") as f:
            cfg = json.load(f)
    cfg.setdefault("studies", {})
    cfg.setdefault("keys", {})
    if args.terra:
        cfg["terra"] = True
    if args.base_path is None:
        args.base_path = cfg.get("base_path", "/api")
    sid = args.study
    need = args.participant or args.outsider or args.param or args.incomplete
    if need or not cfg["studies"]:
        s = cfg["studies"].setdefault(sid, {})
        s.setdefault("participants", [])
        s.setdefault("personal_parameters", {})
        for pk in args.participant:
            user, _, key = pk.partition("=")
            if not user or not key:
                raise SystemExit("--participant wants USER=KEY")
            s["participants"].append(user)
            cfg["keys"][read_key(key)] = {"user": user, "study": sid}
        for pk in args.outsider:
            user, _, key = pk.partition("=")
            cfg["keys"][read_key(key)] = {"user": user, "study": sid}
        for pv in args.param:
            un, _, value = pv.partition("=")
            user, _, name = un.partition(".")
            if not name:
                raise SystemExit("--param wants USER.NAME=VALUE")
            s["personal_parameters"].setdefault(user, {})[name] = value
        if args.incomplete:
            s["incomplete"] = True
    return cfg


def main():
    global STATE, ARGS, LOG_FILE, LISTENER
    if len(sys.argv) > 1 and sys.argv[1] == "ctl":
        return ctl_main(sys.argv[2:])
    if len(sys.argv) > 1 and sys.argv[1] == "summary":
        return summary_main(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config")
    ap.add_argument("--study", default="study-1")
    ap.add_argument("--participant", action="append", default=[])
    ap.add_argument("--outsider", action="append", default=[])
    ap.add_argument("--param", action="append", default=[])
    ap.add_argument("--incomplete", action="store_true")
    ap.add_argument("--terra", action="store_true")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--base-path")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--log")
    ap.add_argument("--ready-file")
    ap.add_argument("--control-socket")
    ap.add_argument("--control-port", type=int)
    ARGS = ap.parse_args()
    cfg = build_config(ARGS)
    STATE = State(cfg)
    if ARGS.log:
        LOG_FILE = open(ARGS.log, "a", encoding="utf-8")
    tls = None
    if ARGS.tls_cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(ARGS.tls_cert, ARGS.tls_key)
    LISTENER = Listener(ARGS.host, ARGS.port, tls)
    ctls = []
    if ARGS.control_socket:
        try:
            os.unlink(ARGS.control_socket)
        except FileNotFoundError:
            pass
        ctls.append(UnixCtlServer(ARGS.control_socket, CtlHandler))
        os.chmod(ARGS.control_socket, 0o600)
    if ARGS.control_port is not None:
        ctls.append(TcpCtlServer(("127.0.0.1", ARGS.control_port), CtlHandler))
    for c in ctls:
        threading.Thread(target=c.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    host = ARGS.host if ":" not in ARGS.host else "[%s]" % ARGS.host
    url = "%s://%s:%d%s" % ("https" if tls else "http", host, LISTENER.port, ARGS.base_path.rstrip("/"))
    if ARGS.ready_file:
        tmp = ARGS.ready_file + ".tmp"
        with open(tmp, "w", encoding="ascii") as f:
            f.write(url + "\n")
        os.rename(tmp, ARGS.ready_file)
    print("ready: " + url, flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    LISTENER.stop()
    for c in ctls:
        c.shutdown()
        c.server_close()
    if ARGS.control_socket:
        try:
            os.unlink(ARGS.control_socket)
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
