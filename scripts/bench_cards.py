"""Model time per frame of several cards, side by side in one run (interleaved rounds: machines here are noisy).

Why: a card that adds a trained head (streetwatch-v4's vending head beside v3's garbage head) costs that head's
pass on every frame; this says how much, on the runtime users get (OpenVINO FP32 unless --runtime pytorch).

    python scripts/bench_cards.py streetwatch-v3 streetwatch-v4
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detector.errors import exit_code_of  # noqa: E402
from detector.model.compiled import compiled_card  # noqa: E402
from detector.model.detector import Detector  # noqa: E402
from detector.model.weights import load_card  # noqa: E402


def frames(video: Path, count: int) -> list:
    capture = cv2.VideoCapture(str(video))
    out = []
    while len(out) < count:
        ok, frame = capture.read()
        if not ok:
            break
        out.append(frame)
    capture.release()
    return out


def bench(cards: list[str], video: Path, count: int, rounds: int, runtime: str) -> dict[str, float]:
    images = frames(video, count)
    if not images:
        raise FileNotFoundError(f"{video}: no frames")
    loaded = {c: load_card(c) for c in cards}
    detectors = {c: Detector(compiled_card(card) if runtime == "openvino" else card) for c, card in loaded.items()}
    for detector in detectors.values():
        detector.detect(images[:2])  # warm-up: first inferences allocate
    seconds = dict.fromkeys(cards, 0.0)
    for _ in range(rounds):
        for card, detector in detectors.items():
            began = time.perf_counter()
            detector.detect(images)
            seconds[card] += time.perf_counter() - began
    return {c: 1000 * s / (rounds * len(images)) for c, s in seconds.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("cards", nargs="+", help="card names or files; the first is the reference")
    p.add_argument("--video", type=Path, default=REPO.parent / "shared" / "videos" / "vtest.avi")
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--runtime", choices=("openvino", "pytorch"), default="openvino")

    def run() -> None:
        ms = bench(args.cards, args.video, args.frames, args.rounds, args.runtime)
        reference = ms[args.cards[0]]
        for card, value in ms.items():
            print(f"{card:<28} {value:7.1f} ms/frame  {value / reference:5.2f}x")

    args = p.parse_args(argv)
    return exit_code_of(run)


if __name__ == "__main__":
    sys.exit(main())
