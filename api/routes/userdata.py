"""User data and settings (ComfyUI's ``app/user_manager.py`` and ``app/app_settings.py``, spec 2.2).

Files live under ``<settings.user_dir>/<user>/``. Single-user (the default) everyone is ``default``;
with ``settings.multi_user`` the ``comfy-user`` header names the user, who must exist in
``<user_dir>/users.json`` (created by ``POST /users``); names starting with ``__`` are system users
and never reachable.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from flask import Blueprint, Response, request

from api.routing import farm, json_response, twin, user_file
from api.schemas import (
    SettingIdPath,
    SettingsBody,
    UserBody,
    UserdataListQuery,
    UserdataV2Query,
    UserdataWriteQuery,
    UserFileMovePath,
    UserFilePath,
)
from api.validate import json_body, takes

bp = Blueprint("userdata", __name__)

SETTINGS_FILE = "comfy.settings.json"
SYSTEM_USER_PREFIX = "__"
_lock = threading.RLock()


class UnknownUser(KeyError):
    pass


def user_dir() -> Path:
    return Path(farm().settings.user_dir)


def multi_user() -> bool:
    return bool(getattr(farm().settings, "multi_user", False))


def users_file() -> Path:
    return user_dir() / "users.json"


def load_users() -> dict[str, str]:
    if not multi_user():
        return {"default": "default"}
    try:
        data = json.loads(users_file().read_text())
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def request_user() -> str:
    """The user of this request; raises :class:`UnknownUser`."""
    user = "default"
    if multi_user() and "comfy-user" in request.headers:
        user = request.headers["comfy-user"]
        if user.startswith(SYSTEM_USER_PREFIX):
            raise UnknownUser("Unknown user: " + user)
    if user not in load_users():
        raise UnknownUser("Unknown user: " + user)
    return user


def user_path(file: str | None, create_dir: bool = True) -> Path | None:
    """``<user_dir>/<user>/<file>``; None when ``file`` leaves the user's folder. Raises UnknownUser."""
    user = request_user()
    if user.startswith(SYSTEM_USER_PREFIX):
        return None
    root = Path(os.path.abspath(user_dir() / user))
    path = root
    if file is not None:
        if "%" in file:
            file = unquote(file)
        if "\x00" in file or "\\" in file or re.match(r"^[A-Za-z]:", file):
            return None  # NUL, Windows separators and drive letters name nothing inside the folder
        path = Path(os.path.abspath(os.path.join(root, file)))
        # symlinks resolved: a link inside the folder that points out of it is outside
        real_root = os.path.realpath(root)
        if os.path.commonpath((real_root, os.path.realpath(path))) != real_root:
            return None
    if create_dir:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError:  # a file where a folder would go (a/b.json when a is a file)
            return None
    return path


def file_info(path: Path, relative_to: Path) -> dict[str, Any]:
    st = path.stat()
    return {
        "path": path.relative_to(relative_to).as_posix(),
        "size": st.st_size,
        "modified": st.st_mtime,
        "created": st.st_ctime,
    }


def _text(status: int, text: str = "") -> Response:
    return Response(text, status=status, mimetype="text/plain")


# ---- /users --------------------------------------------------------------------------------------


@twin(bp, "/users", methods=["GET"])
@takes(summary="Users (with --multi-user) or whether user data exists")
def get_users() -> Response:
    if multi_user():
        return json_response({"storage": "server", "users": load_users()})
    try:
        root = user_path(None, create_dir=False)
    except UnknownUser:
        return _text(401)
    return json_response({"storage": "server", "migrated": bool(root and root.exists())})


@twin(bp, "/users", methods=["POST"])
@takes(body=UserBody, summary="Create a user (--multi-user)")
def post_users(body: UserBody) -> Response:
    username = body.username
    with _lock:
        users = load_users()
        if username in users.values():
            return json_response({"error": "Duplicate username."}, 400)
        user_id = re.sub("[^a-zA-Z0-9-_]+", "-", username) + "_" + str(uuid.uuid4())
        users[user_id] = username
        user_dir().mkdir(parents=True, exist_ok=True)
        _atomic_write(users_file(), json.dumps(users).encode())
    return json_response(user_id)


# ---- /settings -----------------------------------------------------------------------------------


def _settings_path() -> Path | None:
    return user_path(SETTINGS_FILE)


def read_settings() -> dict[str, Any]:
    path = _settings_path()
    if path is None or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_settings(settings: dict[str, Any]) -> None:
    path = _settings_path()
    if path is not None:
        _atomic_write(path, json.dumps(settings, indent=4).encode())


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@twin(bp, "/settings", methods=["GET"])
@takes(summary="The user's editor settings")
def get_settings() -> Response:
    try:
        return json_response(read_settings())
    except UnknownUser:
        return _text(401, "401: Unauthorized")


@twin(bp, "/settings/<path:setting_id>", methods=["GET"])
@takes(path=SettingIdPath, summary="One editor setting (null when unset)")
def get_setting(setting_id: str) -> Response:
    try:
        return json_response(read_settings().get(setting_id))
    except UnknownUser:
        return _text(401, "401: Unauthorized")


@twin(bp, "/settings", methods=["POST"])
@takes(body=SettingsBody, summary="Merge editor settings")
def post_settings(body: SettingsBody) -> Response:
    new = body.model_extra or {}
    try:
        with _lock:
            write_settings({**read_settings(), **new})
    except UnknownUser:
        return _text(401, "401: Unauthorized")
    return _text(200)


@twin(bp, "/settings/<path:setting_id>", methods=["POST"])
@takes(path=SettingIdPath, raw_body="application/json", summary="Set one editor setting to the JSON body")
def post_setting(setting_id: str) -> Response:
    value = json_body(None)
    try:
        with _lock:
            settings = read_settings()
            settings[setting_id] = value
            write_settings(settings)
    except UnknownUser:
        return _text(401, "401: Unauthorized")
    return _text(200)


# ---- /userdata -----------------------------------------------------------------------------------


@twin(bp, "/userdata", methods=["GET"])
@takes(query=UserdataListQuery, summary="Files of a user data folder")
def list_userdata(query: UserdataListQuery) -> Response:
    directory = query.dir
    if not directory:
        return _text(400, "Directory not provided")
    try:
        path = user_path(directory)
    except UnknownUser:
        return _text(403, "Invalid user")
    if path is None:
        return _text(403, "Invalid directory")
    if not path.exists():
        return _text(404, "Directory not found")
    recurse, full_info, split = query.recurse, query.full_info, query.split
    candidates = path.rglob("*") if recurse else path.glob("*")
    results: list[Any] = []
    for full in sorted(candidates):
        rel_parts = full.relative_to(path).parts
        if any(part.startswith(".") for part in rel_parts) or not full.is_file():
            continue  # glob("*") skips dotfiles, as in ComfyUI
        if full_info:
            results.append(file_info(full, path))
            continue
        rel = full.relative_to(path).as_posix()
        results.append([rel, *rel.split("/")] if split else rel)
    return json_response(results)


@twin(bp, "/v2/userdata", methods=["GET"])
@takes(query=UserdataV2Query, summary="Files and folders under a user data path")
def list_userdata_v2(query: UserdataV2Query) -> Response:
    rel = unquote(query.path)
    try:
        target = user_path(rel)
        root = user_path(None, create_dir=False)
    except UnknownUser:
        return _text(403, "Invalid user specified in request")
    if target is None or root is None:
        return _text(400, "Invalid path requested")
    if not target.exists():
        return json_response([]) if rel == "" else _text(404, "Requested path not found")
    if not target.is_dir():
        return _text(400, "Requested path is not a directory")
    results: list[dict[str, Any]] = []
    for dirpath, dirnames, filenames in os.walk(target):
        for name in dirnames:
            results.append({"name": name, "path": Path(dirpath, name).relative_to(root).as_posix(), "type": "directory"})
        for name in filenames:
            full = Path(dirpath, name)
            entry: dict[str, Any] = {"name": name, "path": full.relative_to(root).as_posix(), "type": "file"}
            try:
                st = full.stat()
                entry["size"], entry["modified"] = st.st_size, st.st_mtime
            except OSError:
                pass
            results.append(entry)
    results.sort(key=lambda e: (e["type"] != "directory", e["name"].lower()))
    return json_response(results)


def _data_path(file: str, check_exists: bool) -> Path | Response:
    if not file:
        return _text(400)
    try:
        path = user_path(file)
    except UnknownUser:
        return _text(403)
    if path is None:
        return _text(403)
    if check_exists and not path.exists():
        return _text(404)
    return path


def _written(path: Path, full_info: bool) -> Response:
    root = user_path(None, create_dir=False)
    assert root is not None
    if full_info:
        return json_response(file_info(path, root))
    return json_response(path.relative_to(root).as_posix())


@twin(bp, "/userdata/<path:file>", methods=["GET"])
@takes(path=UserFilePath, summary="A user data file (active content as an attachment)")
def get_userdata(file: str) -> Response:
    path = _data_path(file, check_exists=False)
    if isinstance(path, Response):
        return path
    if not path.is_file():
        if file == "user.css":  # the editor links it on every page load; an empty sheet until one is saved
            return Response("", mimetype="text/css", headers={"Cache-Control": "no-cache"})
        return _text(404)
    return user_file(path)


@twin(bp, "/userdata/<path:file>", methods=["POST"])
@takes(path=UserFilePath, query=UserdataWriteQuery, raw_body="application/octet-stream", summary="Write a user data file from the raw body")
def post_userdata(file: str, query: UserdataWriteQuery) -> Response:
    path = _data_path(file, check_exists=False)
    if isinstance(path, Response):
        return path
    if query.overwrite == "false" and path.exists():
        return _text(409, "File already exists")
    try:
        path.write_bytes(request.get_data(cache=True))
    except OSError:
        return Response(status=400, response="Invalid filename. Please avoid special characters like :\\/*?\"<>|")
    return _written(path, query.full_info)


@twin(bp, "/userdata/<path:file>", methods=["DELETE"])
@takes(path=UserFilePath, summary="Delete a user data file")
def delete_userdata(file: str) -> Response:
    path = _data_path(file, check_exists=True)
    if isinstance(path, Response):
        return path
    if path.is_dir():
        return _text(400, "is a directory")
    path.unlink()
    return Response(status=204)


@twin(bp, "/userdata/<path:file>/move/<path:dest>", methods=["POST"])
@takes(path=UserFileMovePath, query=UserdataWriteQuery, summary="Move a user data file")
def move_userdata(file: str, dest: str, query: UserdataWriteQuery) -> Response:
    source = _data_path(file, check_exists=True)
    if isinstance(source, Response):
        return source
    target = _data_path(dest, check_exists=False)
    if isinstance(target, Response):
        return target
    if query.overwrite == "false" and target.exists():
        return _text(409, "File already exists")
    shutil.move(str(source), str(target))
    return _written(target, query.full_info)
