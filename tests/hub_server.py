"""A small Hugging Face Hub-compatible HTTP server for the test suite (stdlib only).

It speaks the subset of the Hub protocol that ``huggingface_hub`` (2.4), transformers'
``push_to_hub``/``from_pretrained`` and ``datasets``' ``push_to_hub``/``load_dataset`` use:

- ``POST /api/repos/create`` and ``/api/repos/delete``; ``GET /api/whoami-v2``, ``/api/agent-harnesses``
- ``GET /api/{type}s/{id}[/revision/{rev}]`` (repo info with ``sha`` and ``siblings``)
- ``GET /api/{type}s/{id}/tree/{rev}[/{path}]``, ``POST .../paths-info/{rev}``, ``GET .../refs``,
  ``GET .../commits/{rev}``, ``POST .../branch/{name}``
- ``POST .../preupload/{rev}`` (answers ``regular`` or ``lfs``), ``POST /api/validate-yaml``,
  ``POST .../commit/{rev}`` (NDJSON: header, file, lfsFile, deletedFile, deletedFolder)
- ``POST /{prefix}{id}.git/info/lfs/objects/batch`` then ``PUT`` of the object (basic transfer)
- ``HEAD``/``GET /{prefix}{id}/resolve/{rev}/{path}`` with ``X-Repo-Commit``, ``ETag``,
  ``Content-Length`` and ``Range`` support; errors carry ``X-Error-Code``.

Repo types are ``model`` (no URL prefix), ``dataset`` (``datasets/``) and ``space`` (``spaces/``).
Blobs live on disk in a temporary folder (content-addressed), trees and commits in memory; commit
ids are 40-hex SHA-1s of (parent, message, tree) as in git. One lock serialises writes.
Connections are closed after each response and at most ``max_threads`` requests run at once,
so threads and memory stay bounded. Xet is not served: clients must run with
``HF_HUB_DISABLE_XET=1`` (conftest sets it) and then upload through the LFS batch API.

The module also has :func:`populate_hf_cache`, which lays out a local folder as an HF cache
snapshot so that ``from_pretrained("org/name")`` works with ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["HubServer", "populate_hf_cache", "git_blob_sha1"]

_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_API_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
# Files the Hub's default .gitattributes sends to LFS; anything binary or over 10 MB goes there too.
_LFS_SUFFIXES = (
    ".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".npy", ".npz",
    ".parquet", ".arrow", ".zip", ".gz", ".tar", ".tgz", ".zst", ".pkl", ".pickle", ".joblib",
)
_LFS_MIN_SIZE = 10 * 1024 * 1024
_DEFAULT_GITATTRIBUTES = b"".join(
    f"*{suffix} filter=lfs diff=lfs merge=lfs -text\n".encode() for suffix in _LFS_SUFFIXES
)
_CHUNK = 1 << 20


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob (what the Hub calls ``oid`` for a regular file)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


@dataclass(frozen=True)
class _Entry:
    """One file of a tree: its size, git oid and, for LFS files, the sha256 of the content."""

    size: int
    oid: str
    lfs_sha256: str | None = None

    @property
    def blob_key(self) -> str:
        return self.lfs_sha256 or self.oid


@dataclass
class _Commit:
    oid: str
    parent: str | None
    title: str
    message: str
    date: str
    tree: dict[str, _Entry]


@dataclass
class _Repo:
    repo_type: str
    repo_id: str
    private: bool
    created_at: str
    commits: dict[str, _Commit] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # "main", "refs/pr/1", tag names -> commit oid
    tags: set[str] = field(default_factory=set)
    num_prs: int = 0

    def resolve(self, revision: str) -> _Commit | None:
        if revision in self.refs:
            return self.commits[self.refs[revision]]
        if re.fullmatch(r"[0-9a-f]{7,40}", revision):
            matches = [c for oid, c in self.commits.items() if oid.startswith(revision)]
            if len(matches) == 1:
                return matches[0]
        return None


class _HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, commit: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.commit = status, message, code, commit


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


class _BoundedThreadingHTTPServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` that runs at most ``max_threads`` handlers at once (the accept loop
    waits for a free slot), so a burst of parallel downloads cannot spawn unbounded threads."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, handler, hub: "HubServer", max_threads: int):
        self.hub = hub
        self._slots = threading.BoundedSemaphore(max_threads)
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        self._slots.acquire()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class HubServer:
    """An in-process Hub on ``127.0.0.1``; use :meth:`start`/:meth:`stop` or ``with HubServer() as hub``.

    Attributes:
        url: base URL to put in ``HF_ENDPOINT`` (``http://127.0.0.1:PORT``).
        user: the namespace that repo ids without one are created in (what ``whoami`` answers).
        requests: the last requests served, as ``(method, path)`` pairs (newest last).
    """

    def __init__(self, root: str | os.PathLike | None = None, *, user: str = "user", max_threads: int = 16):
        self._own_root = root is None
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="hfmagic-hub-"))
        (self.root / "blobs").mkdir(parents=True, exist_ok=True)
        (self.root / "incoming").mkdir(parents=True, exist_ok=True)
        self.user = user
        self.max_threads = max_threads
        self.requests: deque[tuple[str, str]] = deque(maxlen=1000)
        self._repos: dict[tuple[str, str], _Repo] = {}
        self._lock = threading.RLock()
        self._httpd: _BoundedThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> "HubServer":
        """Bind a free port on 127.0.0.1 and serve from a daemon thread."""
        if self._httpd is not None:
            return self
        self._httpd = _BoundedThreadingHTTPServer(("127.0.0.1", 0), _Handler, self, self.max_threads)
        host, port = self._httpd.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="hub-test-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and delete the storage folder (when the server created it)."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ helpers for tests
    def new_repo_id(self, prefix: str = "repo") -> str:
        """A fresh ``user/prefix-xxxxxxxx`` id, so tests never collide."""
        return f"{self.user}/{prefix}-{uuid.uuid4().hex[:8]}"

    def repo_exists(self, repo_id: str, repo_type: str = "model") -> bool:
        with self._lock:
            return (repo_type, repo_id) in self._repos

    def list_files(self, repo_id: str, *, repo_type: str = "model", revision: str = "main") -> list[str]:
        """Sorted paths of every file in the repo at ``revision`` (KeyError when repo/revision is missing)."""
        return sorted(self._commit(repo_type, repo_id, revision).tree)

    def read_file(self, repo_id: str, path: str, *, repo_type: str = "model", revision: str = "main") -> bytes:
        """The content of ``path`` in the repo at ``revision`` (KeyError when missing)."""
        entry = self._commit(repo_type, repo_id, revision).tree[path]
        return (self.root / "blobs" / entry.blob_key).read_bytes()

    def is_lfs(self, repo_id: str, path: str, *, repo_type: str = "model", revision: str = "main") -> bool:
        """Whether ``path`` was committed as an LFS file."""
        return self._commit(repo_type, repo_id, revision).tree[path].lfs_sha256 is not None

    def commit_history(self, repo_id: str, *, repo_type: str = "model", revision: str = "main") -> list[str]:
        """Commit titles from newest to oldest."""
        with self._lock:
            commit: _Commit | None = self._commit(repo_type, repo_id, revision)
            repo = self._repos[(repo_type, repo_id)]
            titles = []
            while commit is not None:
                titles.append(commit.title)
                commit = repo.commits.get(commit.parent) if commit.parent else None
            return titles

    def _commit(self, repo_type: str, repo_id: str, revision: str) -> _Commit:
        with self._lock:
            repo = self._repos.get((repo_type, repo_id))
            if repo is None:
                raise KeyError(f"no {repo_type} repo {repo_id!r} on the test Hub")
            commit = repo.resolve(revision)
            if commit is None:
                raise KeyError(f"no revision {revision!r} in {repo_type} repo {repo_id!r}")
            return commit

    # ------------------------------------------------------------------ storage
    def _store_blob(self, data: bytes, key: str) -> None:
        path = self.root / "blobs" / key
        if not path.exists():
            tmp = self.root / "incoming" / uuid.uuid4().hex
            tmp.write_bytes(data)
            os.replace(tmp, path)

    def _has_blob(self, key: str) -> bool:
        return (self.root / "blobs" / key).exists()

    def _new_commit(self, repo: _Repo, parent: _Commit | None, title: str, message: str, tree: dict[str, _Entry]) -> _Commit:
        digest = hashlib.sha1()
        digest.update(f"parent {parent.oid if parent else ''}\n{title}\n{message}\n{time.time_ns()}\n".encode())
        for path in sorted(tree):
            digest.update(f"{path}\0{tree[path].oid}\n".encode())
        commit = _Commit(digest.hexdigest(), parent.oid if parent else None, title, message, _now(), dict(tree))
        repo.commits[commit.oid] = commit
        return commit

    def _create_repo(self, repo_type: str, repo_id: str, private: bool) -> _Repo:
        repo = _Repo(repo_type, repo_id, private, _now())
        self._store_blob(_DEFAULT_GITATTRIBUTES, git_blob_sha1(_DEFAULT_GITATTRIBUTES))
        tree = {".gitattributes": _Entry(len(_DEFAULT_GITATTRIBUTES), git_blob_sha1(_DEFAULT_GITATTRIBUTES))}
        repo.refs["main"] = self._new_commit(repo, None, "initial commit", "", tree).oid
        self._repos[(repo_type, repo_id)] = repo
        return repo

    def repo_url(self, repo_type: str, repo_id: str) -> str:
        return f"{self.url}/{_PREFIXES[repo_type]}{repo_id}"


def _tree_item(path: str, entry: _Entry) -> dict:
    item = {"type": "file", "path": path, "size": entry.size, "oid": entry.oid}
    if entry.lfs_sha256 is not None:
        item["lfs"] = {"oid": entry.lfs_sha256, "size": entry.size, "pointerSize": len(_lfs_pointer(entry.lfs_sha256, entry.size))}
    return item


def _folder_item(path: str, tree: dict[str, _Entry]) -> dict:
    digest = hashlib.sha1(path.encode())
    for name in sorted(p for p in tree if p.startswith(path + "/")):
        digest.update(f"{name}\0{tree[name].oid}\n".encode())
    return {"type": "directory", "path": path, "size": 0, "oid": digest.hexdigest()}


def _folders(tree: dict[str, _Entry]) -> set[str]:
    return {"/".join(p.split("/")[:i]) for p in tree for i in range(1, p.count("/") + 1)}


def _should_use_lfs(path: str, size: int, sample: bytes) -> bool:
    if size == 0:
        return False
    return path.lower().endswith(_LFS_SUFFIXES) or size >= _LFS_MIN_SIZE or b"\0" in sample


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _BoundedThreadingHTTPServer
    timeout = 60  # seconds a stalled client may hold a handler thread

    def log_message(self, format, *args):  # noqa: A002 - silence the default stderr log
        pass

    @property
    def hub(self) -> HubServer:
        return self.server.hub

    # ------------------------------------------------------------------ plumbing
    def _dispatch(self, method: str) -> None:
        self.close_connection = True
        split = urlsplit(self.path)
        self.query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        # Segments are unquoted one by one: revisions and tree paths arrive with "/" encoded as %2F.
        segments = [unquote(s) for s in split.path.strip("/").split("/")] if split.path.strip("/") else []
        self.hub.requests.append((method, split.path))
        try:
            self._route(method, segments)
        except _HubError as err:
            self._send_error(err)
        except (ConnectionError, TimeoutError):
            pass
        except Exception as err:  # report server bugs to the client instead of hanging it
            self._send_error(_HubError(500, f"test hub server error: {type(err).__name__}: {err}"))

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _read_body(self) -> bytes:
        return b"".join(self._iter_body())

    def _iter_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                yield self.rfile.read(size)
                self.rfile.readline()
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, _CHUNK))
            if not chunk:
                raise ConnectionError("client closed the connection mid-body")
            remaining -= len(chunk)
            yield chunk

    def _json_body(self):
        body = self._read_body()
        try:
            return json.loads(body or b"{}")
        except json.JSONDecodeError as err:
            raise _HubError(400, f"invalid JSON body: {err}") from err

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, content_type: str = "application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _send_json(self, payload, status: int = 200, headers: dict[str, str] | None = None, content_type: str = "application/json"):
        self._send(status, json.dumps(payload).encode(), headers, content_type)

    def _send_error(self, err: _HubError) -> None:
        headers = {"X-Error-Message": err.message.replace("\n", " ")[:500]}
        if err.code:
            headers["X-Error-Code"] = err.code
        if err.commit:
            headers["X-Repo-Commit"] = err.commit
        try:
            self._send_json({"error": err.message}, err.status, headers)
        except (ConnectionError, TimeoutError):
            pass

    # ------------------------------------------------------------------ routing
    def _route(self, method: str, seg: list[str]) -> None:
        if seg[:1] == ["api"]:
            return self._route_api(method, seg[1:])
        if method == "PUT" and seg[:1] == ["lfs-upload"] and len(seg) == 2:
            return self._lfs_put(seg[1])
        repo_type = "model"
        if seg[:1] and seg[0] in ("datasets", "spaces"):
            repo_type, seg = _API_TYPES[seg[0]], seg[1:]
        if len(seg) >= 2 and seg[1].endswith(".git") and seg[2:] == ["info", "lfs", "objects", "batch"] and method == "POST":
            return self._lfs_batch(repo_type, f"{seg[0]}/{seg[1][:-4]}")
        if len(seg) >= 5 and seg[2] == "resolve" and method in ("GET", "HEAD"):
            return self._resolve(repo_type, f"{seg[0]}/{seg[1]}", seg[3], "/".join(seg[4:]))
        raise _HubError(404, f"no route for {method} {self.path}")

    def _route_api(self, method: str, seg: list[str]) -> None:
        if seg == ["repos", "create"] and method == "POST":
            return self._create_repo()
        if seg == ["repos", "delete"] and method == "DELETE":
            return self._delete_repo()
        if seg == ["validate-yaml"] and method == "POST":
            return self._validate_yaml()
        if seg == ["agent-harnesses"] and method == "GET":  # huggingface_hub's user-agent registry
            return self._send_json({"standardEnvVars": [], "harnesses": {}})
        if seg[:1] == ["whoami-v2"] and method == "GET":
            return self._send_json({"type": "user", "name": self.hub.user, "fullname": self.hub.user, "orgs": [],
                                    "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}}})
        if not seg or seg[0] not in _API_TYPES or len(seg) < 3:
            raise _HubError(404, f"no route for {method} {self.path}")
        repo_type, repo_id, rest = _API_TYPES[seg[0]], f"{seg[1]}/{seg[2]}", seg[3:]
        if not rest and method == "GET":
            return self._repo_info(repo_type, repo_id, "main")
        action = rest[0]
        if action == "revision" and len(rest) >= 2 and method == "GET":
            return self._repo_info(repo_type, repo_id, "/".join(rest[1:]))
        if action == "tree" and len(rest) >= 2 and method == "GET":
            return self._tree(repo_type, repo_id, rest[1], "/".join(rest[2:]))
        if action == "paths-info" and len(rest) >= 2 and method == "POST":
            return self._paths_info(repo_type, repo_id, "/".join(rest[1:]))
        if action == "preupload" and len(rest) >= 2 and method == "POST":
            return self._preupload(repo_type, repo_id, "/".join(rest[1:]))
        if action == "commit" and len(rest) >= 2 and method == "POST":
            return self._commit(repo_type, repo_id, "/".join(rest[1:]))
        if action == "commits" and len(rest) >= 2 and method == "GET":
            return self._commits(repo_type, repo_id, "/".join(rest[1:]))
        if action == "refs" and method == "GET":
            return self._refs(repo_type, repo_id)
        if action == "branch" and len(rest) >= 2 and method in ("POST", "DELETE"):
            return self._branch(method, repo_type, repo_id, "/".join(rest[1:]))
        raise _HubError(404, f"no route for {method} {self.path}")

    # ------------------------------------------------------------------ lookups
    def _repo(self, repo_type: str, repo_id: str) -> _Repo:
        repo = self.hub._repos.get((repo_type, repo_id))
        if repo is None:
            raise _HubError(404, f"Repository Not Found for {repo_type} {repo_id}", "RepoNotFound")
        return repo

    def _revision(self, repo: _Repo, revision: str) -> _Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise _HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    # ------------------------------------------------------------------ repos
    def _create_repo(self) -> None:
        body = self._json_body()
        name = body.get("name")
        if not name or "/" in name:
            raise _HubError(400, f"invalid repo name {name!r}")
        repo_type = body.get("type") or "model"
        if repo_type not in _PREFIXES:
            raise _HubError(400, f"invalid repo type {repo_type!r}")
        repo_id = f"{body.get('organization') or self.hub.user}/{name}"
        url = self.hub.repo_url(repo_type, repo_id)
        with self.hub._lock:
            if (repo_type, repo_id) in self.hub._repos:
                return self._send_json({"error": "You already created this repo", "url": url}, 409)
            private = body.get("private") or body.get("visibility") == "private"
            self.hub._create_repo(repo_type, repo_id, bool(private))
        self._send_json({"url": url, "name": repo_id, "id": repo_id})

    def _delete_repo(self) -> None:
        body = self._json_body()
        repo_type = body.get("type") or "model"
        repo_id = f"{body.get('organization') or self.hub.user}/{body.get('name')}"
        with self.hub._lock:
            self._repo(repo_type, repo_id)
            del self.hub._repos[(repo_type, repo_id)]
        self._send_json({})

    def _repo_info(self, repo_type: str, repo_id: str, revision: str) -> None:
        with self.hub._lock:
            repo = self._repo(repo_type, repo_id)
            commit = self._revision(repo, revision)
            blobs = self.query.get("blobs", "").lower() in ("1", "true")
            siblings = []
            for path, entry in sorted(commit.tree.items()):
                sibling = {"rfilename": path}
                if blobs:
                    sibling.update(size=entry.size, blobId=entry.oid)
                    if entry.lfs_sha256:
                        sibling["lfs"] = {"sha256": entry.lfs_sha256, "size": entry.size,
                                          "pointerSize": len(_lfs_pointer(entry.lfs_sha256, entry.size))}
                siblings.append(sibling)
            info = {
                "_id": hashlib.md5(f"{repo_type}/{repo_id}".encode()).hexdigest()[:24],
                "id": repo_id, "author": repo_id.split("/")[0], "sha": commit.oid, "private": repo.private,
                "gated": False, "disabled": False, "downloads": 0, "likes": 0, "tags": [],
                "createdAt": repo.created_at, "lastModified": commit.date, "siblings": siblings,
            }
            if repo_type == "model":
                info["modelId"] = repo_id
        self._send_json(info)

    def _tree(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        recursive = self.query.get("recursive", "").lower() in ("1", "true")
        with self.hub._lock:
            commit = self._revision(self._repo(repo_type, repo_id), revision)
            tree, folders = commit.tree, _folders(commit.tree)
        path = path.strip("/")
        if path and path not in folders:
            if path in tree:
                raise _HubError(400, f"{path} is a file, not a folder", "EntryNotFound", commit.oid)
            raise _HubError(404, f"{path} does not exist on {revision}", "EntryNotFound", commit.oid)
        prefix = path + "/" if path else ""
        items = []
        for folder in sorted(folders):
            rel = folder[len(prefix):] if folder.startswith(prefix) else None
            if rel and (recursive or "/" not in rel):
                items.append(_folder_item(folder, tree))
        for file_path, entry in sorted(tree.items()):
            rel = file_path[len(prefix):] if file_path.startswith(prefix) else None
            if rel and (recursive or "/" not in rel):
                items.append(_tree_item(file_path, entry))
        self._send_json(items)

    def _paths_info(self, repo_type: str, repo_id: str, revision: str) -> None:
        body = self._read_body().decode()
        if self.headers.get("Content-Type", "").startswith("application/json"):
            paths = (json.loads(body or "{}")).get("paths", [])
        else:
            paths = parse_qs(body).get("paths", [])
        with self.hub._lock:
            commit = self._revision(self._repo(repo_type, repo_id), revision)
            tree, folders = commit.tree, _folders(commit.tree)
        items = []
        for path in paths:
            path = path.strip("/")
            if path in tree:
                items.append(_tree_item(path, tree[path]))
            elif path in folders:
                items.append(_folder_item(path, tree))
        self._send_json(items)

    def _refs(self, repo_type: str, repo_id: str) -> None:
        with self.hub._lock:
            repo = self._repo(repo_type, repo_id)
            refs = dict(repo.refs)
            tags = set(repo.tags)

        def ref(name: str, kind: str) -> dict:
            return {"name": name, "ref": f"refs/{kind}/{name}", "targetCommit": refs[name]}

        branches = [ref(n, "heads") for n in sorted(refs) if n not in tags and not n.startswith("refs/")]
        payload = {"branches": branches, "converts": [], "tags": [ref(n, "tags") for n in sorted(tags)]}
        if self.query.get("include_prs"):
            payload["pullRequests"] = [{"name": n[len("refs/pr/"):], "ref": n, "targetCommit": refs[n]}
                                       for n in sorted(refs) if n.startswith("refs/pr/")]
        self._send_json(payload)

    def _commits(self, repo_type: str, repo_id: str, revision: str) -> None:
        with self.hub._lock:
            repo = self._repo(repo_type, repo_id)
            commit: _Commit | None = self._revision(repo, revision)
            history = []
            while commit is not None:
                history.append({"id": commit.oid, "title": commit.title, "message": commit.message,
                                "authors": [{"user": self.hub.user}], "date": commit.date})
                commit = repo.commits.get(commit.parent) if commit.parent else None
        self._send_json(history)

    def _branch(self, method: str, repo_type: str, repo_id: str, branch: str) -> None:
        body = self._json_body()
        with self.hub._lock:
            repo = self._repo(repo_type, repo_id)
            if method == "DELETE":
                if branch not in repo.refs or branch == "main":
                    raise _HubError(404, f"branch {branch} not found", "RevisionNotFound")
                del repo.refs[branch]
                return self._send_json({})
            if branch in repo.refs:
                raise _HubError(409, f"Reference already exists: refs/heads/{branch}")
            start = self._revision(repo, body.get("startingPoint") or "main")
            repo.refs[branch] = start.oid
        self._send_json({})

    # ------------------------------------------------------------------ uploads
    def _validate_yaml(self) -> None:
        import yaml  # PyYAML ships with huggingface_hub's dependencies

        content = self._json_body().get("content", "")
        match = re.match(r"^\s*---\s*\n(.*?)\n---\s*\n", content + "\n", re.DOTALL)
        if match is None:
            return self._send_json({"errors": [], "warnings": [{"message": "empty or missing yaml metadata in repo card"}]})
        try:
            metadata = yaml.safe_load(match.group(1))
        except yaml.YAMLError as err:
            return self._send_json({"errors": [{"message": f"invalid YAML: {err}"}], "warnings": []}, 400)
        if metadata is not None and not isinstance(metadata, dict):
            return self._send_json({"errors": [{"message": "YAML metadata must be a mapping"}], "warnings": []}, 400)
        errors = []
        for key in ("tags", "datasets"):
            if isinstance(metadata, dict) and key in metadata and not isinstance(metadata[key], (list, str)):
                errors.append({"message": f'"{key}" must be a list of strings'})
        if isinstance(metadata, dict) and "model-index" in metadata and not isinstance(metadata["model-index"], list):
            errors.append({"message": '"model-index" must be a list'})
        self._send_json({"errors": errors, "warnings": []}, 400 if errors else 200)

    def _preupload(self, repo_type: str, repo_id: str, revision: str) -> None:
        body = self._json_body()
        with self.hub._lock:
            repo = self._repo(repo_type, repo_id)
            commit = repo.resolve(revision)
            if commit is None and not self.query.get("create_pr"):
                raise _HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
            tree = commit.tree if commit is not None else {}
        files = []
        for item in body.get("files", []):
            path, size = item["path"], int(item.get("size", 0))
            sample = base64.b64decode(item.get("sample", ""))
            existing = tree.get(path)
            files.append({
                "path": path,
                "uploadMode": "lfs" if _should_use_lfs(path, size, sample) else "regular",
                "shouldIgnore": False,
                # What the client compares with its local oid to skip unchanged files.
                "oid": (existing.lfs_sha256 or existing.oid) if existing is not None else None,
            })
        self._send_json({"files": files, "commitOid": commit.oid if commit is not None else None})

    def _lfs_batch(self, repo_type: str, repo_id: str) -> None:
        body = self._json_body()
        with self.hub._lock:
            self._repo(repo_type, repo_id)
        if body.get("operation") != "upload":
            raise _HubError(400, "only the upload operation is served")
        objects = []
        for obj in body.get("objects", []):
            oid, size = str(obj["oid"]), int(obj["size"])
            item = {"oid": oid, "size": size, "authenticated": True}
            if not re.fullmatch(r"[0-9a-f]{64}", oid):
                item["error"] = {"code": 422, "message": f"invalid sha256 oid {oid!r}"}
            elif not self.hub._has_blob(oid):
                item["actions"] = {"upload": {"href": f"{self.hub.url}/lfs-upload/{oid}?size={size}"}}
            objects.append(item)
        self._send_json({"transfer": "basic", "objects": objects}, content_type="application/vnd.git-lfs+json")

    def _lfs_put(self, oid: str) -> None:
        if not re.fullmatch(r"[0-9a-f]{64}", oid):
            raise _HubError(400, f"invalid sha256 oid {oid!r}")
        tmp = self.hub.root / "incoming" / uuid.uuid4().hex
        digest, size = hashlib.sha256(), 0
        try:
            with open(tmp, "wb") as out:  # streamed to disk: large files never sit in memory
                for chunk in self._iter_body():
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            if digest.hexdigest() != oid:
                raise _HubError(400, f"uploaded content has sha256 {digest.hexdigest()}, expected {oid}")
            expected = self.query.get("size")
            if expected is not None and int(expected) != size:
                raise _HubError(400, f"uploaded {size} bytes, expected {expected}")
            os.replace(tmp, self.hub.root / "blobs" / oid)
        finally:
            tmp.unlink(missing_ok=True)
        self._send(200, b"", {"ETag": f'"{oid}"'})

    def _commit(self, repo_type: str, repo_id: str, revision: str) -> None:
        lines = [json.loads(line) for line in self._read_body().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise _HubError(400, "the commit payload must start with a header line")
        header = lines[0]["value"]
        create_pr = self.query.get("create_pr") in ("1", "true", "True")
        with self.hub._lock:
            repo = self._repo(repo_type, repo_id)
            head = self._revision(repo, revision)
            if header.get("parentCommit") and header["parentCommit"] != head.oid:
                raise _HubError(412, f"parent commit {header['parentCommit']} is not the head of {revision} ({head.oid})")
            tree = dict(head.tree)
            for line in lines[1:]:
                key, value = line.get("key"), line.get("value", {})
                path = str(value.get("path", "")).strip("/")
                if key == "file":
                    if value.get("encoding", "base64") != "base64":
                        raise _HubError(400, f"unsupported encoding {value.get('encoding')!r}")
                    data = base64.b64decode(value["content"])
                    oid = git_blob_sha1(data)
                    self.hub._store_blob(data, oid)
                    tree[path] = _Entry(len(data), oid)
                elif key == "lfsFile":
                    sha = value["oid"]
                    blob = self.hub.root / "blobs" / sha
                    if not blob.exists():
                        raise _HubError(422, f"LFS object {sha} for {path} was not uploaded")
                    size = blob.stat().st_size
                    tree[path] = _Entry(size, git_blob_sha1(_lfs_pointer(sha, size)), sha)
                elif key == "deletedFile":
                    if tree.pop(path, None) is None:
                        raise _HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                elif key == "deletedFolder":
                    doomed = [p for p in tree if p.startswith(path + "/")]
                    if not doomed:
                        raise _HubError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
                    for p in doomed:
                        del tree[p]
                else:
                    raise _HubError(400, f"unknown commit operation {key!r}")
            commit = self.hub._new_commit(repo, head, header.get("summary") or "commit", header.get("description", ""), tree)
            url = self.hub.repo_url(repo_type, repo_id)
            pr_url = None
            if create_pr:
                repo.num_prs += 1
                repo.refs[f"refs/pr/{repo.num_prs}"] = commit.oid
                pr_url = f"{url}/discussions/{repo.num_prs}"
            else:
                repo.refs[revision] = commit.oid
        self._send_json({"success": True, "commitOid": commit.oid, "commitUrl": f"{url}/commit/{commit.oid}",
                         "commitMessage": commit.title, "pullRequestUrl": pr_url})

    # ------------------------------------------------------------------ downloads
    def _resolve(self, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        with self.hub._lock:
            commit = self._revision(self._repo(repo_type, repo_id), revision)
            entry = commit.tree.get(path)
        if entry is None:
            raise _HubError(404, f"Entry not found: {path}", "EntryNotFound", commit.oid)
        headers = {
            "X-Repo-Commit": commit.oid,
            "ETag": f'"{entry.lfs_sha256 or entry.oid}"',
            "Accept-Ranges": "bytes",
        }
        if entry.lfs_sha256:
            headers["X-Linked-Etag"] = f'"{entry.lfs_sha256}"'
            headers["X-Linked-Size"] = str(entry.size)
        blob = self.hub.root / "blobs" / entry.blob_key
        start, end, status = 0, entry.size - 1, 200
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", "").strip())
        if match and entry.size > 0 and (match.group(1) or match.group(2)):
            if match.group(1):
                start = int(match.group(1))
                end = min(int(match.group(2)), entry.size - 1) if match.group(2) else entry.size - 1
            else:  # suffix range: the last N bytes
                start = max(entry.size - int(match.group(2)), 0)
            if start > end:
                raise _HubError(416, f"range {self.headers['Range']} not satisfiable for {entry.size} bytes")
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{entry.size}"
        length = max(end - start + 1, 0)
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Connection", "close")
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        with open(blob, "rb") as src:  # streamed in chunks: memory stays bounded
            src.seek(start)
            remaining = length
            while remaining > 0:
                chunk = src.read(min(remaining, _CHUNK))
                if not chunk:
                    break
                self.wfile.write(chunk)
                remaining -= len(chunk)


def populate_hf_cache(
    folder: str | os.PathLike,
    repo_id: str,
    *,
    cache_dir: str | os.PathLike | None = None,
    repo_type: str = "model",
    revision: str = "main",
) -> Path:
    """Lay out ``folder`` as an HF cache snapshot of ``repo_id``, so that ``from_pretrained(repo_id)``
    / ``hf_hub_download`` find it with ``HF_HUB_OFFLINE=1``.

    Writes ``{cache_dir}/{type}s--{org}--{name}/snapshots/<40-hex>/...`` (a copy of every file of
    ``folder``, sub-folders included) and ``refs/{revision}`` holding that hash; the hash is the
    SHA-1 of the files' paths and contents, so the same folder gives the same snapshot.

    Args:
        folder: a saved model folder (``config.json``, ``model.safetensors``, ...).
        repo_id: ``"org/name"``.
        cache_dir: the hub cache (defaults to ``huggingface_hub.constants.HF_HUB_CACHE``).
        repo_type: ``"model"``, ``"dataset"`` or ``"space"``.
        revision: the ref name to point at the snapshot.
    Returns:
        the snapshot folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder: save a model there first (model.save_pretrained(folder)).")
    if repo_type not in _PREFIXES:
        raise ValueError(f"repo_type={repo_type!r}; choose one of {sorted(_PREFIXES)}.")
    if cache_dir is None:
        from huggingface_hub import constants

        cache_dir = constants.HF_HUB_CACHE
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    digest = hashlib.sha1()
    for path in files:
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes())
    commit = digest.hexdigest()
    storage = Path(cache_dir) / f"{repo_type}s--{repo_id.replace('/', '--')}"
    snapshot = storage / "snapshots" / commit
    for path in files:
        target = snapshot / path.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    snapshot.mkdir(parents=True, exist_ok=True)
    (storage / "refs").mkdir(parents=True, exist_ok=True)
    (storage / "refs" / revision).write_text(commit)
    return snapshot

