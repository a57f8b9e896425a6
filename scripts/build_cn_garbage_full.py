"""Rebuild cn-street-garbage at full size (640 px, every source photo) from its public GitHub source.

Why: ../shared holds a 448 px subsample (1,043 of 2,679 training photos) that fits that folder; the head
trained on it saw small garbage at two thirds of the size the card runs at. This writes the whole training
split at the export's own 640 px, with the same care the subsample took:

- one copy per photo: Roboflow exported each training photo twice with a random shear; the copy with the
  least black fill (the least sheared) is kept;
- nothing that is a near-copy or the same scene as ANY photo of the source's validation split (the 335 in
  ../shared and the 335 held back for a final check that nobody tunes on): a perceptual hash within
  `--phash-distance` bits of either copy, or an ORB + RANSAC affine fit with at least `--min-inliers` inliers
  (the source's field photos come in series of one bin point a moment apart, and plain hashes miss sheared
  copies). Candidates for the ORB check are the nearest validation photos by pooled YOLOv8s backbone
  features, so the check runs on a shortlist instead of every pair;
- the test split that streetwatch-v3 held out (data/sources/cn-street-garbage-test.txt) stays the test split,
  here at 640 px, and training photos of the same scene as a test photo are left out too;
- photos the vending manifest (data/sources/vending.csv) takes from the same source are left out of train: they
  carry hand-drawn vending boxes there (or are its hard negatives) and its val/test splits judge vending;
- `val` is ../shared's val (linked), so figures on it stay comparable.

    python scripts/build_cn_garbage_full.py --out data/cn-street-garbage-full

The source is read from the `fetch` tool's mirror (/work/.mirror/ATANU0023+garbage_detection_dataset/repo,
commit 1e9fc55). `dropped.csv` lists each photo left out and why. Deterministic.
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from detector.errors import ConfigError, exit_code_of  # noqa: E402
from scripts.build_dataset import as_array, hamming, phash  # noqa: E402

SOURCE_REPO = "ATANU0023/garbage_detection_dataset"
SOURCE_COMMIT = "1e9fc5508825e88336deb97035990806c7671b65"
NAME = re.compile(r"^(\d{6})_jpg\.rf\.[0-9a-f]+\.jpg$")


@dataclass
class Photo:
    """One source photo: its upstream number, the copy kept, and its features for the duplicate checks."""

    number: str
    image: Path
    label: Path
    hashes: tuple[int, ...] = ()
    embedding: np.ndarray | None = None


def extract(mirror: Path, into: Path) -> Path:
    """The source's train/ and valid/ folders at the pinned commit, unpacked with git archive."""
    if not (mirror / "HEAD").exists():
        raise ConfigError("source mirror not found", path=mirror,
                          fix=f"bring it with the fetch tool (github:{SOURCE_REPO}) or pass --mirror")
    archive = subprocess.run(["git", "--git-dir", str(mirror), "archive", SOURCE_COMMIT, "train", "valid"],
                             capture_output=True, check=False)
    if archive.returncode:
        raise ConfigError(f"git archive failed: {archive.stderr.decode().strip()}", path=mirror,
                          fix=f"the mirror must hold commit {SOURCE_COMMIT[:7]}")
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def black_fill(path: Path) -> float:
    """Share of near-black pixels: the corners a shear leaves behind."""
    grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    return 1.0 if grey is None else float((grey < 8).mean())


def photos_of(folder: Path, least_sheared: bool) -> list[Photo]:
    """Source photos by upstream number; of a photo's copies, the least sheared (or the only one)."""
    copies: dict[str, list[Path]] = {}
    for image in sorted((folder / "images").iterdir()):
        match = NAME.match(image.name)
        if match:
            copies.setdefault(match.group(1), []).append(image)
    photos = []
    for number, images in sorted(copies.items()):
        kept = min(images, key=black_fill) if least_sheared else images[0]
        photos.append(Photo(number, kept, folder / "labels" / f"{kept.stem}.txt",
                            tuple(h for h in map(phash, images) if h is not None)))
    return photos


def embed(photos: list[Photo], weights: Path) -> None:
    """Pooled YOLOv8s backbone features (mean and max of its last backbone layer) at 320 px, unit length."""
    import torch
    from ultralytics import YOLO

    from detector.model.detector import use_cores

    use_cores()
    backbone = YOLO(str(weights)).model.float().eval().model[:10]
    for start in range(0, len(photos), 32):
        batch = photos[start : start + 32]
        x = np.stack([cv2.resize(cv2.imread(str(p.image)), (320, 320))[:, :, ::-1] for p in batch])
        with torch.no_grad():
            f = backbone(torch.from_numpy(x.copy()).permute(0, 3, 1, 2).float() / 255.0)
        pooled = torch.cat([f.mean((2, 3)), f.amax((2, 3))], 1).numpy()
        for photo, v in zip(batch, pooled, strict=True):
            photo.embedding = v / max(float(np.linalg.norm(v)), 1e-9)
        print(f"  features {min(start + 32, len(photos))}/{len(photos)}", end="\r", flush=True)
    print()


class SceneMatcher:
    """ORB + RANSAC affine inliers between two photos; keypoints computed once per photo."""

    def __init__(self) -> None:
        self.orb = cv2.ORB_create(1000)
        self.matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
        self.cache: dict[Path, tuple[list, np.ndarray | None]] = {}

    def features(self, path: Path) -> tuple[list, np.ndarray | None]:
        if path not in self.cache:
            grey = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            self.cache[path] = self.orb.detectAndCompute(grey, None) if grey is not None else ([], None)
        return self.cache[path]

    def inliers(self, a: Path, b: Path) -> int:
        (ka, da), (kb, db) = self.features(a), self.features(b)
        if da is None or db is None or len(ka) < 8 or len(kb) < 8:
            return 0
        pairs = [m for m, n in (p for p in self.matcher.knnMatch(da, db, k=2) if len(p) == 2)
                 if m.distance < 0.8 * n.distance]
        if len(pairs) < 8:
            return 0
        src = np.float32([ka[m.queryIdx].pt for m in pairs])
        dst = np.float32([kb[m.trainIdx].pt for m in pairs])
        _, mask = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=4.0)
        return 0 if mask is None else int(mask.sum())


def matches(photos: list[Photo], held: list[Photo], args: argparse.Namespace,
            matcher: SceneMatcher) -> dict[str, str]:
    """Photo number -> why it is a copy or the same scene as a held photo (phash, then ORB on a shortlist)."""
    if not held:
        return {}
    found: dict[str, str] = {}
    held_hashes = as_array([h for p in held for h in p.hashes])
    owners = [p.number for p in held for _ in p.hashes]
    held_emb = np.stack([p.embedding for p in held])  # type: ignore[arg-type]
    for k, photo in enumerate(photos):
        dist = hamming(as_array(list(photo.hashes)), held_hashes).min(axis=0)
        if dist.min() <= args.phash_distance:
            found[photo.number] = f"phash {int(dist.min())} to {owners[int(dist.argmin())]}"
            continue
        for j in np.argsort(-(held_emb @ photo.embedding))[: args.shortlist]:  # type: ignore[operator]
            n = matcher.inliers(photo.image, held[int(j)].image)
            if n >= args.min_inliers:
                found[photo.number] = f"orb {n} inliers to {held[int(j)].number}"
                break
        if k % 100 == 0:
            print(f"  checked {k}/{len(photos)} ({len(found)} matched)", end="\r", flush=True)
    print()
    return found


def write(out: Path, train: list[Photo], test: list[Photo], shared: Path, dropped: dict[str, str]) -> None:
    for split in ("train", "test", "val"):
        for sub in ("images", "labels"):
            folder = out / sub / split
            if folder.is_symlink() or folder.is_file():
                folder.unlink()
            elif folder.exists():
                shutil.rmtree(folder)
    for split, photos in (("train", train), ("test", test)):
        (out / "images" / split).mkdir(parents=True)
        (out / "labels" / split).mkdir(parents=True)
        for p in photos:
            shutil.copyfile(p.image, out / "images" / split / f"{p.number}.jpg")
            label = p.label.read_text(encoding="utf-8") if p.label.exists() else ""
            (out / "labels" / split / f"{p.number}.txt").write_text(label, encoding="utf-8")
    for sub in ("images", "labels"):
        (out / sub / "val").symlink_to((shared / sub / "val").resolve(), target_is_directory=True)
    names = yaml.safe_load((shared / "data.yaml").read_text(encoding="utf-8"))["names"]
    data = {"path": ".", "train": "images/train", "val": "images/val", "test": "images/test", "names": names}
    (out / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    with (out / "dropped.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["number", "why"])
        w.writerows(sorted(dropped.items()))
    (out / "README.md").write_text(
        f"cn-street-garbage at 640 px, rebuilt by scripts/build_cn_garbage_full.py from {SOURCE_REPO} "
        f"@ {SOURCE_COMMIT[:7]} (CC BY 4.0: credit Roboflow project-shb1t/-111-ehcfr and the GBS authors).\n"
        f"train {len(train)}, test {len(test)} (streetwatch-v3's held-out photos), val = ../shared's val; "
        f"{len(dropped)} training photos left out (dropped.csv).\n", encoding="utf-8")


def vending_numbers(manifest: Path) -> set[str]:
    """Upstream numbers of this source's photos that the vending manifest uses."""
    with manifest.open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["repo"] == SOURCE_REPO]
    return {m.group(1) for r in rows if (m := NAME.match(Path(r["path"]).name))}


def build(args: argparse.Namespace) -> None:
    numbers = [ln.strip() for ln in args.test_list.read_text(encoding="utf-8").splitlines()
               if ln.strip() and not ln.startswith("#")]
    with tempfile.TemporaryDirectory() as tmp:
        source = extract(args.mirror, Path(tmp))
        train = photos_of(source / "train", least_sheared=True)
        valid = photos_of(source / "valid", least_sheared=False)
        test = [p for p in train if p.number in set(numbers)]
        if len(test) != len(numbers):
            raise ConfigError(f"{len(numbers) - len(test)} test photos are not in the source", path=args.test_list,
                              fix="list upstream numbers of the source's training photos")
        dropped = {n: "in the vending manifest" for n in vending_numbers(args.vending)}
        rest = [p for p in train if p.number not in set(numbers) and p.number not in dropped]
        print(f"source: {len(train)} training photos ({len(test)} test), {len(valid)} validation photos")
        embed(train + valid, args.weights)
        matcher = SceneMatcher()
        dropped |= {n: f"validation: {why}" for n, why in matches(rest, valid, args, matcher).items()}
        rest = [p for p in rest if p.number not in dropped]
        same_as_test = matches(rest, test, args, matcher)
        dropped |= {n: f"test: {why}" for n, why in same_as_test.items()}
        rest = [p for p in rest if p.number not in dropped]
        write(args.out, rest, test, args.shared, dropped)
    print(f"wrote {args.out}: train {len(rest)}, test {len(test)}, left out {len(dropped)} "
          f"({sum(w.startswith('validation') for w in dropped.values())} as validation copies or scenes)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    shared = REPO.parent / "shared"
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--mirror", type=Path, default=Path("/work/.mirror/ATANU0023+garbage_detection_dataset/repo"))
    p.add_argument("--shared", type=Path, default=shared / "datasets" / "cn-street-garbage",
                   help="../shared's cn-street-garbage (its val split is linked)")
    p.add_argument("--test-list", type=Path, default=REPO / "data" / "sources" / "cn-street-garbage-test.txt")
    p.add_argument("--vending", type=Path, default=REPO / "data" / "sources" / "vending.csv")
    p.add_argument("--weights", type=Path, default=shared / "models" / "yolov8s.pt", help="for the shortlist")
    p.add_argument("--phash-distance", type=int, default=4)
    p.add_argument("--min-inliers", type=int, default=20, help="ORB affine inliers that make one scene (20)")
    p.add_argument("--shortlist", type=int, default=8, help="nearest validation photos ORB-checked per photo")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    return exit_code_of(lambda: build(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
