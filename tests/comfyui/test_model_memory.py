"""Models on a worker host: a checkpoint the host lacks is fetched from the API host; the worker's
memory budget counts a model by its real size, so loading a second checkpoint past the budget evicts
the first through ComfyUI's model management, /system_stats says so, and a prompt that needs the
first one again loads it again and runs."""

from __future__ import annotations

import copy
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.comfyui.conftest import CHECKPOINT, COMFYUI, build_checkpoint
from tests.farm import ROOT, WORKER_CMD, Farm, WsClient, assert_success, executing, run_ws

pytestmark = pytest.mark.timeout(300)

TXT2IMG = json.loads((ROOT / "examples" / "txt2img.json").read_text())
OTHER = "tiny-sd15-b.safetensors"


class WorkerWithoutModels(Farm):
    """The API host has the models; the worker host has an empty models folder of its own."""

    def start_worker(self, i: int) -> None:
        base = self.tmp / f"w{i}"
        self._spawn(f"w{i}", WORKER_CMD, self.env(base, NODEFARM_WORKER_NAME=f"w{i}@test",
                                                  NODEFARM_MODELS_DIR=str(base / "models")))


@pytest.fixture(scope="module")
def small_farm(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Iterator[Farm]:
    """One worker whose memory budget (500 MiB) holds one tiny checkpoint (about 320 MiB loaded), not two."""
    models = Path(tmp_path_factory.mktemp("models_two"))  # models_two0
    (models / "checkpoints").mkdir()
    shutil.copy(models_dir / "checkpoints" / CHECKPOINT, models / "checkpoints" / CHECKPOINT)
    build_checkpoint(models / "checkpoints" / OTHER, seed=1)
    f = WorkerWithoutModels(Path(tmp_path_factory.mktemp("small")), workers=1, env={
        "NODEFARM_COMFYUI": str(COMFYUI), "NODEFARM_COMFYUI_ARGS": "--preview-method latent2rgb",
        "NODEFARM_MODELS_DIR": str(models), "NODEFARM_WORKER_CACHE_MB": "500"})
    yield f
    f.stop()


def test_a_checkpoint_the_worker_host_lacks_is_fetched_from_the_api_host(small_farm: Farm) -> None:
    pid, _, entry = run_ws(small_farm, prompt(CHECKPOINT, 0))
    assert_success(entry)
    fetched = small_farm.tmp / "w0" / "models" / "checkpoints" / CHECKPOINT
    original = small_farm.tmp.parent / "models_two0" / "checkpoints" / CHECKPOINT
    assert fetched.read_bytes() == original.read_bytes()
    assert f"fetched model checkpoints/{CHECKPOINT} from the API host" in small_farm.log("w0")


def prompt(ckpt: str, seed: int) -> dict:
    p = copy.deepcopy(TXT2IMG)
    p["4"]["inputs"]["ckpt_name"] = ckpt
    p["3"]["inputs"]["seed"] = seed
    return p


def resident(farm: Farm) -> list[dict]:
    time.sleep(1.2)  # the next heartbeat
    devices = requests.get(farm.url + "/system_stats", timeout=10).json()["devices"]
    return [m for d in devices for m in d["models"]]


def test_a_second_checkpoint_past_the_budget_evicts_the_first(small_farm: Farm) -> None:
    ws = WsClient(small_farm.url)
    try:
        pid = small_farm.submit(prompt(CHECKPOINT, 1), client_id=ws.client_id)
        ws.until_done(pid, timeout=120)
    finally:
        ws.close()
    assert_success(small_farm.wait(pid))
    assert len([m for m in ws.messages if isinstance(m, bytes)]) == 4  # latent2rgb previews, one a step
    first = resident(small_farm)
    assert len(first) == 1 and first[0]["bytes"] > 200 * 2**20
    _, messages, entry = run_ws(small_farm, prompt(OTHER, 1))
    assert_success(entry)
    second = resident(small_farm)
    assert len(second) == 1 and second[0]["key"] != first[0]["key"]  # the first one went
    # the first checkpoint is needed again: its result no longer names this worker, so it loads again
    _, messages, entry = run_ws(small_farm, prompt(CHECKPOINT, 2))
    assert_success(entry)
    assert "4" in executing(messages)
    assert "evicted 1 resident models" in small_farm.log("w0")
