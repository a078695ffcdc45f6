"""Web folders a pack registers by writing ``nodes.EXTENSION_WEB_DIRS`` at import time
(nodes/registry.py, nodes/__init__.py ``bind_registry``), served at ``/extensions/<name>/``.

Some packs do ``nodes.EXTENSION_WEB_DIRS["mypack"] = path`` in their ``__init__`` instead of (or
besides) ``WEB_DIRECTORY``; ComfyUI serves every entry of that dict.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask import Flask

import nodes
from api.routes import editor, info
from nodes.registry import NodeRegistry

SCRIPT = "export const registeredByHand = true;\n"


@pytest.fixture()
def face() -> Iterator[None]:
    """Put ComfyUI's module-level mappings back as they were (bind_registry rewrites them)."""
    saved = [(d, dict(d)) for d in (nodes.NODE_CLASS_MAPPINGS, nodes.NODE_DISPLAY_NAME_MAPPINGS,
                                     nodes.EXTENSION_WEB_DIRS, nodes.LOADED_MODULE_DIRS)]
    yield
    for live, copy in saved:
        live.clear()
        live.update(copy)


def write_pack(root: Path) -> Path:
    """A pack whose JS folder is registered only through ``nodes.EXTENSION_WEB_DIRS``, plus one that
    uses ``WEB_DIRECTORY`` and one that registers a folder that does not exist."""
    hand = root / "hand_web_pack"
    (hand / "js" / "lib").mkdir(parents=True)
    (hand / "js" / "x.js").write_text(SCRIPT)
    (hand / "js" / "lib" / "y.js").write_text(SCRIPT)
    (hand / "__init__.py").write_text(textwrap.dedent("""
        import os
        import nodes

        nodes.EXTENSION_WEB_DIRS["hand_web"] = os.path.join(os.path.dirname(os.path.realpath(__file__)), "js")
        nodes.EXTENSION_WEB_DIRS["hand_web_missing"] = "/no/such/folder/anywhere"
        NODE_CLASS_MAPPINGS = {}
    """))
    declared = root / "declared_web_pack"
    (declared / "web").mkdir(parents=True)
    (declared / "web" / "d.js").write_text(SCRIPT)
    (declared / "__init__.py").write_text('WEB_DIRECTORY = "./web"\nNODE_CLASS_MAPPINGS = {}\n')
    return hand / "js"


def booted(root: Path) -> NodeRegistry:
    """What :func:`nodes.boot.boot` does with the registry: bind, load the packs, bind again."""
    registry = NodeRegistry()
    nodes.bind_registry(registry)
    registry.load_custom_nodes([root])
    nodes.bind_registry(registry)
    return registry


def test_a_folder_put_into_extension_web_dirs_at_import_survives_the_bind(tmp_path: Path, face: None) -> None:
    js = write_pack(tmp_path)
    registry = booted(tmp_path)
    assert registry.web_dirs["hand_web"] == js.resolve()
    assert registry.web_dirs["declared_web_pack"] == (tmp_path / "declared_web_pack" / "web").resolve()
    assert "hand_web_missing" not in registry.web_dirs
    assert nodes.EXTENSION_WEB_DIRS["hand_web"] == str(js.resolve())
    assert [p.error for p in registry.packs] == [None, None]


def test_the_folder_is_served_and_listed_at_extensions(tmp_path: Path, face: None) -> None:
    write_pack(tmp_path)
    app = Flask("web_dirs_test")
    app.extensions["nodefarm"] = SimpleNamespace(registry=booted(tmp_path))
    app.register_blueprint(editor.bp)
    app.register_blueprint(info.bp)
    client = app.test_client()
    for url in ("/extensions/hand_web/x.js", "/extensions/hand_web/lib/y.js", "/extensions/declared_web_pack/d.js"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.get_data(as_text=True) == SCRIPT
        assert response.mimetype == "text/javascript"
    assert client.get("/extensions/hand_web/none.js").status_code == 404
    assert client.get("/extensions/hand_web_missing/x.js").status_code == 404
    listed = client.get("/extensions").json
    assert {"/extensions/hand_web/x.js", "/extensions/hand_web/lib/y.js", "/extensions/declared_web_pack/d.js"} <= set(listed)


def test_entries_left_from_an_earlier_bind_are_not_taken_for_a_pack(tmp_path: Path, face: None) -> None:
    stale = tmp_path / "stale"
    stale.mkdir()
    nodes.EXTENSION_WEB_DIRS["stale_web"] = str(stale)
    registry = NodeRegistry()
    registry.load_custom_nodes([tmp_path / "no_packs_here"])
    pack = tmp_path / "packs" / "plain_pack"
    pack.mkdir(parents=True)
    (pack / "__init__.py").write_text("NODE_CLASS_MAPPINGS = {}\n")
    registry.load_custom_nodes([tmp_path / "packs"])
    assert registry.web_dirs == {}
