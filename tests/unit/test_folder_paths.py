"""folder_paths: the roots, model folders, extra_model_paths.yaml, save paths and the farm hooks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nodes.boot import install_compat
from nodes.settings import Settings


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_install_compat_makes_the_comfyui_name_the_same_module(fp) -> None:
    import folder_paths  # type: ignore[import-not-found]

    assert folder_paths is fp


def test_configure_sets_and_creates_the_roots(fp, tmp_path: Path) -> None:
    assert fp.base_path == str(tmp_path)
    assert fp.models_dir == str(tmp_path / "models")
    for kind in ("output", "input", "temp"):
        assert fp.get_directory_by_type(kind) == str(tmp_path / kind)
        assert (tmp_path / kind).is_dir()
    assert fp.get_user_directory() == str(tmp_path / "user") and (tmp_path / "user").is_dir()
    assert fp.get_directory_by_type("models") is None
    assert fp.get_directory_by_type("user") is None


def test_standard_model_folders_and_extensions(fp, tmp_path: Path) -> None:
    models = tmp_path / "models"
    assert fp.get_folder_paths("checkpoints") == [str(models / "checkpoints")]
    assert fp.get_folder_paths("unet") == [str(models / "unet"), str(models / "diffusion_models")]
    assert fp.get_folder_paths("clip") == fp.get_folder_paths("text_encoders")
    assert fp.folder_names_and_paths["configs"][1] == {".yaml"}
    assert fp.folder_names_and_paths["loras"][1] == fp.supported_pt_extensions
    assert ".safetensors" in fp.supported_pt_extensions and ".sft" in fp.supported_pt_extensions
    for key in ("vae", "clip_vision", "style_models", "embeddings", "diffusers", "vae_approx", "controlnet",
                "gligen", "upscale_models", "custom_nodes", "hypernetworks", "photomaker", "classifiers",
                "model_patches", "audio_encoders"):
        assert key in fp.folder_names_and_paths, key


def test_get_filename_list_is_recursive_relative_filtered_and_sorted(fp, tmp_path: Path) -> None:
    ckpt = tmp_path / "models" / "checkpoints"
    touch(ckpt / "b.safetensors")
    touch(ckpt / "sub" / "deep" / "a.ckpt")
    touch(ckpt / "notes.txt")
    touch(ckpt / ".git" / "hidden.safetensors")
    other = touch(tmp_path / "more" / "c.pt").parent
    fp.add_model_folder_path("checkpoints", str(other))
    assert fp.get_filename_list("checkpoints") == ["b.safetensors", "c.pt", "sub/deep/a.ckpt"]
    assert fp.get_filename_list("no_such_folder") == []


def test_add_model_folder_path_default_goes_first_and_new_keys_are_created(fp) -> None:
    fp.add_model_folder_path("loras", "/x/loras")
    fp.add_model_folder_path("loras", "/y/loras", is_default=True)
    assert fp.get_folder_paths("loras")[0] == "/y/loras"
    assert fp.get_folder_paths("loras")[-1] == "/x/loras"
    fp.add_model_folder_path("loras", "/x/loras", is_default=True)
    assert fp.get_folder_paths("loras")[0] == "/x/loras"
    assert fp.get_folder_paths("loras").count("/x/loras") == 1
    fp.add_model_folder_path("my_pack_models", "/z")
    assert fp.folder_names_and_paths["my_pack_models"] == (["/z"], set())


def test_get_full_path_finds_refuses_traversal_and_raises(fp, tmp_path: Path) -> None:
    target = touch(tmp_path / "models" / "vae" / "sub" / "v.safetensors")
    touch(tmp_path / "secret.safetensors")
    assert fp.get_full_path("vae", "sub/v.safetensors") == str(target)
    assert fp.get_full_path("vae", "missing.safetensors") is None
    assert fp.get_full_path("nope", "v.safetensors") is None
    assert fp.get_full_path("vae", "../../secret.safetensors") is None
    with pytest.raises(FileNotFoundError, match="Model in folder 'vae' with filename 'x.pt' not found."):
        fp.get_full_path_or_raise("vae", "x.pt")


def test_extra_model_paths_yaml(tmp_path: Path) -> None:
    install_compat()
    from nodes.compat import folder_paths as fp

    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    yaml_file = conf_dir / "extra_model_paths.yaml"
    yaml_file.write_text(
        "comfyui:\n"
        "  base_path: ../shared\n"
        "  is_default: true\n"
        "  checkpoints: models/checkpoints\n"
        "  loras: |\n"
        "    models/loras\n"
        "    /abs/loras\n"
        "  custom_nodes: nodes_a\n"
        "other:\n"
        "  vae: here/vae\n"
        "  custom_nodes: |\n"
        "    ../nodes_b\n"
        "    /abs/nodes_c\n"
        "empty:\n"
    )
    own = tmp_path / "custom_nodes"
    settings = Settings(base_dir=tmp_path, custom_nodes_dirs=(own, tmp_path / "shared" / "nodes_a"),
                        extra_model_paths=(yaml_file,))
    custom = fp.configure(settings)
    shared = tmp_path / "shared"
    assert custom == [own, shared / "nodes_a", tmp_path / "nodes_b", Path("/abs/nodes_c")]
    assert fp.get_folder_paths("checkpoints")[0] == str(shared / "models" / "checkpoints")
    assert fp.get_folder_paths("checkpoints")[1] == str(tmp_path / "models" / "checkpoints")
    # is_default entries go first, each in front of the previous one; the standard folder stays last
    assert fp.get_folder_paths("loras") == [
        "/abs/loras", str(shared / "models" / "loras"), str(tmp_path / "models" / "loras")
    ]
    # without base_path: relative to the YAML file's folder, appended (not default)
    assert fp.get_folder_paths("vae")[-1] == str(conf_dir / "here" / "vae")
    assert fp.get_folder_paths("vae")[0] == str(tmp_path / "models" / "vae")


def test_annotated_paths(fp, tmp_path: Path) -> None:
    assert fp.annotated_filepath("a.png [output]") == ("a.png", str(tmp_path / "output"))
    assert fp.annotated_filepath("a.png [temp]") == ("a.png", str(tmp_path / "temp"))
    assert fp.annotated_filepath("a.png [input]") == ("a.png", str(tmp_path / "input"))
    assert fp.annotated_filepath("a.png") == ("a.png", None)
    assert fp.get_annotated_filepath("s/a.png") == os.path.join(str(tmp_path / "input"), "s/a.png")
    assert fp.get_annotated_filepath("a.png [output]") == os.path.join(str(tmp_path / "output"), "a.png")
    assert fp.get_annotated_filepath("a.png", default_dir="/d") == "/d/a.png"
    assert not fp.exists_annotated_filepath("a.png [output]")
    touch(tmp_path / "output" / "a.png")
    assert fp.exists_annotated_filepath("a.png [output]")
    assert not fp.exists_annotated_filepath("a.png")


def test_content_types_extensions_and_subfolders(fp, tmp_path: Path) -> None:
    files = ["a.png", "b.JPG", "c.webp", "d.mp4", "e.wav", "f.txt", "g"]
    assert fp.filter_files_content_types(files, ["image"]) == ["a.png", "b.JPG", "c.webp"]
    assert fp.filter_files_content_types(files, ["video", "audio"]) == ["d.mp4", "e.wav"]
    assert fp.filter_files_extensions(["b.PT", "a.txt", "c.pt"], {".pt"}) == ["b.PT", "c.pt"]
    assert fp.filter_files_extensions(["b", "a"], set()) == ["a", "b"]
    (tmp_path / "input" / "z" / "y").mkdir(parents=True)
    (tmp_path / "input" / "a").mkdir()
    assert fp.get_input_subfolders() == ["a", "z", "z/y"]


def test_cache_helper_caches_filename_lists_only_inside_its_block(fp, tmp_path: Path) -> None:
    ckpt = tmp_path / "models" / "checkpoints"
    touch(ckpt / "a.pt")
    with fp.cache_helper:
        assert fp.get_filename_list("checkpoints") == ["a.pt"]
        touch(ckpt / "b.pt")
        assert fp.get_filename_list("checkpoints") == ["a.pt"]
    assert fp.get_filename_list("checkpoints") == ["a.pt", "b.pt"]
    assert fp.cache_helper.get("checkpoints") is None


# ---- get_save_image_path -------------------------------------------------------------------------


def test_save_path_substitutes_size_and_creates_subfolder(fp, tmp_path: Path) -> None:
    out = fp.get_output_directory()
    folder, filename, counter, subfolder, prefix = fp.get_save_image_path("sub/%width%x%height%/img", out, 640, 480)
    assert (subfolder, filename, counter) == ("sub/640x480", "img", 1)
    assert prefix == "sub/640x480/img"
    assert folder == os.path.join(out, "sub/640x480")
    assert Path(folder).is_dir()


def test_save_path_date_vars(fp) -> None:
    import time

    out = fp.get_output_directory()
    _, filename, _, _, _ = fp.get_save_image_path("%year%-%month%-%day%", out)
    now = time.localtime()
    assert filename == f"{now.tm_year}-{now.tm_mon:02d}-{now.tm_mday:02d}"


def test_save_path_counter_scans_the_folder(fp, tmp_path: Path) -> None:
    out = tmp_path / "output"
    touch(out / "run_00001_.png")
    touch(out / "run_00007_.png")
    touch(out / "run_other_00050_.png")
    touch(out / "runner_00099_.png")
    touch(out / "ComfyUI_00003_.png")
    assert fp.get_save_image_path("run", str(out))[2] == 8
    assert fp.get_save_image_path("ComfyUI", str(out))[2] == 4
    assert fp.get_save_image_path("fresh", str(out))[2] == 1


@pytest.mark.parametrize("prefix", ["../evil", "a/../../evil", "/etc/evil"])
def test_save_path_outside_output_is_refused(fp, tmp_path: Path, prefix: str) -> None:
    with pytest.raises(fp.SavePathError, match="outside the output folder"):
        fp.get_save_image_path(prefix, fp.get_output_directory())
    assert not (tmp_path / "evil").exists()


def test_counter_hook_decides_the_counter(fp, tmp_path: Path) -> None:
    calls: list[tuple[str, str, str, int]] = []

    def hook(kind: str, subfolder: str, filename: str, n: int) -> int:
        calls.append((kind, subfolder, filename, n))
        return 41

    touch(tmp_path / "output" / "a" / "run_00100_.png")
    fp.set_counter_hook(hook)
    assert fp.get_save_image_path("a/run", fp.get_output_directory())[2] == 41
    assert fp.reserve_save_path("b/run", fp.get_temp_directory(), 8, 8, batch=3)[2] == 41
    assert calls == [("output", "a", "run", 1), ("temp", "b", "run", 3)]
    # a folder that is neither output nor temp keeps ComfyUI's scan
    elsewhere = tmp_path / "elsewhere"
    touch(elsewhere / "x_00002_.png")
    assert fp.get_save_image_path("x", str(elsewhere))[2] == 3
    assert len(calls) == 2


def test_without_hook_reserve_save_path_scans(fp, tmp_path: Path) -> None:
    touch(tmp_path / "output" / "x_00004_.png")
    assert fp.reserve_save_path("x", fp.get_output_directory(), batch=5)[2] == 5


# ---- fetch hook -----------------------------------------------------------------------------------


def test_fetch_hook_materializes_missing_inputs(fp, tmp_path: Path) -> None:
    calls: list[tuple[str, str, str]] = []

    def fetch(kind: str, subfolder: str, filename: str) -> Path | None:
        calls.append((kind, subfolder, filename))
        if filename == "gone.png":
            return None
        root = Path(fp.get_directory_by_type(kind))
        return touch(root / subfolder / filename, b"fetched")

    fp.set_fetch_hook(fetch)
    path = fp.get_annotated_filepath("sub/remote.png")
    assert Path(path).read_bytes() == b"fetched"
    assert calls == [("input", "sub", "remote.png")]
    assert fp.exists_annotated_filepath("other.png [output]")
    assert calls[-1] == ("output", "", "other.png")
    assert not fp.exists_annotated_filepath("gone.png")
    assert fp.get_full_path("input", "third.png") == str(tmp_path / "input" / "third.png")
    assert calls[-1] == ("input", "", "third.png")
    n = len(calls)
    # present locally: the hook is not asked
    assert fp.exists_annotated_filepath("sub/remote.png")
    fp.get_annotated_filepath("sub/remote.png")
    # a name that climbs out of its root is never handed to the hook
    assert not fp.exists_annotated_filepath("../../etc/passwd")
    assert len(calls) == n


def test_fetch_hook_not_used_for_model_folders(fp) -> None:
    called: list[str] = []
    fp.set_fetch_hook(lambda kind, sub, name: called.append(name))
    assert fp.get_full_path("checkpoints", "m.safetensors") is None
    assert called == []
