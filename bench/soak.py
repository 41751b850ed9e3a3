"""Memory of the whole app after a few hundred mixed requests (does anything pile up?).

    python bench/soak.py [--requests 300]

Starts ``app.py`` on the tiny twins of the published defaults (their real tokenizers and processor
files; ``tests/tiny_realish.py``) with voice and search on, sends the requests through the official
Python client in turn (text, image, clip, a classification, a spoken answer, a search, a bad file),
a new visitor (client session) every round, and prints the server's resident memory (RSS) after
warm-up and after every ten rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import numpy as np  # noqa: E402
import soundfile  # noqa: E402
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402
from helpers import ASSETS, Server  # noqa: E402
from tiny_realish import build_twins  # noqa: E402


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        twins = build_twins(Path(tmp) / "twins")
        clip, broken = Path(tmp) / "clip.wav", Path(tmp) / "broken.jpg"
        soundfile.write(clip, (0.1 * np.random.default_rng(0).standard_normal(16000 * 5)).astype(np.float32), 16000)
        broken.write_bytes(b"not a jpeg")
        server = Server(twins["smolvlm2-256m-video"], twins["whisper-base"], Path(tmp) / "app.log",
                        "--tts-model", str(twins["mms-tts-eng"]), "--search-model",
                        str(twins["clip-vit-base-patch32"]), ready="loaded search model")
        try:
            client: Client | None = None
            kinds = [
                ("text", lambda: client.predict({"text": "Hello!", "files": []}, max_tokens=16, api_name="/chat")),
                ("image", lambda: client.predict({"text": "What is it?", "files": [handle_file(ASSETS / "scene.png")]},
                                                 max_tokens=16, api_name="/chat")),
                ("clip", lambda: client.predict({"text": "", "files": [handle_file(clip)]}, max_tokens=16,
                                                api_name="/chat")),
                ("classify", lambda: client.predict({"text": "Great film!", "files": []}, "classify", "",
                                                    "positive, negative", "", 16, 0, api_name="/task")),
                ("speak", lambda: client.predict("Hello there, how are you?", api_name="/speak")),
                ("search", lambda: client.predict("a chart", None, [], api_name="/search")),
                ("bad file", lambda: client.predict({"text": "x", "files": [handle_file(broken)]}, api_name="/chat")),
            ]
            readings = [("after warm-up", rss_mb(server.proc.pid), 0)]
            started = time.monotonic()
            for i in range(args.requests):
                if i % len(kinds) == 0:  # a new visitor every round: conversations stay short, as on a demo
                    client = Client(server.url, verbose=False)
                with contextlib.suppress(AppError):  # the bad file's refusal
                    kinds[i % len(kinds)][1]()
                if (i + 1) % (len(kinds) * 10) == 0 or i + 1 == args.requests:
                    readings.append((f"after {i + 1} requests", rss_mb(server.proc.pid), i + 1))
            elapsed = time.monotonic() - started
        finally:
            server.stop()
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"{args.requests} requests ({', '.join(k for k, _ in kinds)}) in {elapsed:.0f} s; {load}")
    print("| when | server RSS |\n|---|---|")
    for when, mb, _ in readings:
        print(f"| {when} | {mb:.0f} MB |")


if __name__ == "__main__":
    main()
