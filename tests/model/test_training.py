"""Dataset building, a 1-epoch train, the trained card, and the ONNX export, end to end on tiny real inputs.

Real images from ../shared, the real COCO YOLOv8s for pseudo-labels, real ultralytics training; only the
sizes are small (a handful of images, imgsz 160, one epoch) so the chain is tested without a long run.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from testkit import REPO, script

build_dataset = script("build_dataset")


def tiny_source(root: Path, shared: Path, name: str, src: str, per_split: int, names: list[str],
                class_map: dict[int, int] | None = None) -> Path:
    """A few images of a shared dataset, as their own YOLO dataset (symlinks, labels copied)."""
    out = root / name
    for split in ("train", "val"):
        images = sorted((shared / "datasets" / src / "images" / split).iterdir())[:per_split]
        (out / "images" / split).mkdir(parents=True)
        (out / "labels" / split).mkdir(parents=True)
        for image in images:
            (out / "images" / split / image.name).symlink_to(image)
            label = shared / "datasets" / src / "labels" / split / f"{image.stem}.txt"
            lines = label.read_text().splitlines() if label.exists() else []
            if class_map is not None:
                lines = [f"{class_map[int(ln.split()[0])]} {ln.split(' ', 1)[1]}" for ln in lines
                         if int(ln.split()[0]) in class_map]
            (out / "labels" / split / f"{image.stem}.txt").write_text("\n".join(lines) + "\n")
    (out / "data.yaml").write_text(yaml.safe_dump({"path": ".", "train": "images/train", "val": "images/val",
                                                   "names": dict(enumerate(names))}))
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, shared: Path) -> Path:
    root = tmp_path_factory.mktemp("build")
    bags = tiny_source(root, shared, "bags", "trashbags", 3, ["general_trashbag", "other_trashbag"])
    coco = tiny_source(root, shared, "coco", "coco8", 4,
                       [n for _, n in sorted(yaml.safe_load((shared / "datasets/coco8/data.yaml").read_text())
                                             ["names"].items())])
    out = root / "data"
    code = build_dataset.main(["--out", str(out), "--source", str(bags), "--source", str(coco),
                               "--pseudo-imgsz", "320"])
    assert code == 0
    return out


def read_boxes(label: Path) -> list[list[float]]:
    return [[float(v) for v in line.split()] for line in label.read_text().splitlines()]


def test_build_maps_classes_converts_polygons_and_pseudo_labels(built: Path, shared: Path) -> None:
    data = yaml.safe_load((built / "data.yaml").read_text())
    names = list(data["names"].values())
    assert names[:4] == ["garbage", "bicycle", "motorcycle", "person"] and "vending" not in names
    bag_labels = sorted((built / "labels" / "train").glob("bags__*.txt"))
    assert len(bag_labels) == 3
    first = read_boxes(bag_labels[0])
    source = (shared / "datasets/trashbags/labels/train" / bag_labels[0].name.split("__", 1)[1]).read_text()
    n_bags = len(source.splitlines())
    garbage = [b for b in first if b[0] == 0]
    assert len(garbage) == n_bags and all(len(b) == 5 for b in first)  # polygons became boxes, one per bag
    assert all(0 <= v <= 1 for b in garbage for v in b[1:])
    # coco8 labels person itself (kept, class 3), and its 'bowl'/'giraffe' boxes are dropped: not our classes
    coco_val = read_boxes(built / "labels" / "val" / "coco__000000000049.txt")
    assert sum(b[0] == 3 for b in coco_val) == 6 and {int(b[0]) for b in coco_val} <= set(range(len(names)))
    manifest = json.loads((built / "manifest.json").read_text())
    assert manifest["images"] == {"train": 7, "val": 7} and len(manifest["sha256"]["train"]) == 64


def test_build_pseudo_labels_what_a_source_lacks(tmp_path: Path, shared: Path) -> None:
    """coco8 val 000000000049 shows six labelled people; a bikes-only source of it gets them from YOLOv8s."""
    src = tiny_source(tmp_path, shared, "bikes", "coco8", 4, ["bicycle"], class_map={1: 0})
    out = tmp_path / "data"
    assert build_dataset.main(["--out", str(out), "--source", str(src), "--pseudo-imgsz", "640"]) == 0
    persons = [b for b in read_boxes(out / "labels/val/bikes__000000000049.txt") if b[0] == 3]
    assert 3 <= len(persons) <= 8
    again = tmp_path / "again"
    assert build_dataset.main(["--out", str(again), "--source", str(src), "--pseudo-imgsz", "640"]) == 0
    assert json.loads((out / "manifest.json").read_text())["sha256"] == \
        json.loads((again / "manifest.json").read_text())["sha256"]  # deterministic


def test_build_accepts_a_vending_class(tmp_path: Path, shared: Path, capsys: pytest.CaptureFixture) -> None:
    src = tiny_source(tmp_path, shared, "stalls", "coco8", 2, ["stall"] + [f"c{i}" for i in range(1, 80)])
    out = tmp_path / "data"
    assert build_dataset.main(["--out", str(out), "--source", str(src), "--no-pseudo"]) == 0
    names = list(yaml.safe_load((out / "data.yaml").read_text())["names"].values())
    assert names[-1] == "vending"  # coco8's class 0 (person) relabelled 'stall' -> vending
    vend = names.index("vending")
    assert any(b[0] == vend for b in read_boxes(out / "labels/val/stalls__000000000036.txt"))
    assert "vending" in capsys.readouterr().out  # the per-class count table lists it


def test_build_rejects_a_folder_without_data_yaml(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert build_dataset.main(["--out", str(tmp_path / "o"), "--source", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(tmp_path) in err and "fix:" in err


@pytest.fixture(scope="module")
def trained(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    train = script("train")
    card = tmp_path_factory.mktemp("models") / "tiny-v1.yaml"
    assert train.main(["--data", str(built / "data.yaml"), "--card", str(card), "--epochs", "1", "--imgsz", "160",
                       "--batch", "4", "--workers", "0", "--project", str(card.parent / "runs"),
                       "--base", str(REPO.parent / "shared/models/yolov8n.pt"), "--threshold", "garbage=0.2"]) == 0
    return card


@pytest.fixture(scope="module")
def head_trained(built: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    train = script("train")
    card = tmp_path_factory.mktemp("heads") / "tiny-head.yaml"
    assert train.main(["--data", str(built / "data.yaml"), "--card", str(card), "--epochs", "1", "--imgsz", "160",
                       "--batch", "4", "--workers", "0", "--project", str(card.parent / "runs"), "--head-only",
                       "--base", str(REPO.parent / "shared/models/yolov8n.pt")]) == 0
    return card


def test_train_writes_a_loadable_card_with_hashes_and_metrics(trained: Path, built: Path) -> None:
    from detector.kinds import Kind
    from detector.model.weights import load_card

    loaded = load_card(trained)
    card = loaded.card
    assert loaded.weights_path == trained.with_suffix(".pt") and loaded.weights_path.stat().st_size < 10e6
    assert card.classes["garbage"].kind == Kind.GARBAGE and card.classes["garbage"].confidence == 0.2
    assert card.classes["bicycle"].kind == Kind.BIKE and card.classes["person"].kind is None
    assert card.kinds() == {Kind.GARBAGE, Kind.BIKE, Kind.VENDING}  # vending through the composite rule
    manifest = json.loads((built / "manifest.json").read_text())
    assert card.metrics["training"]["data_sha256"] == manifest["sha256"]
    assert card.metrics["training"]["epochs"] == 1
    assert {"garbage", "person"} <= set(card.metrics["val"]["classes"])
    assert 0 <= card.metrics["val"]["all"]["mAP50"] <= 1


def test_trained_card_runs_in_the_detector(trained: Path, shared: Path) -> None:
    from detector.model.detector import Detector
    from detector.model.weights import load_card

    image = cv2.imread(str(shared / "datasets/coco8/images/val/000000000049.jpg"))
    dets = Detector(load_card(trained)).detect([image])[0]
    assert set(dets.kind.tolist()) <= {"garbage", "bike", "vending"}


def test_onnx_export_writes_a_card_that_detects_like_the_weights(tmp_path: Path, shared: Path) -> None:
    """Export the COCO card (a known-good model) so the comparison means something."""
    from detector.model.detector import Detector
    from detector.model.weights import load_card

    export = script("export")
    out = tmp_path / "exports"
    src = tmp_path / "coco.yaml"
    src.write_text((REPO / "detector/cards/coco.yaml").read_text().replace("imgsz: 640", "imgsz: 320"))
    assert export.main(["--card", str(src), "--formats", "onnx", "--out", str(out)]) == 0
    onnx_card = load_card(out / "coco-yolov8n-onnx.yaml")
    assert onnx_card.weights_path.suffix == ".onnx" and onnx_card.card.imgsz == 320
    frames = [cv2.imread(str(p)) for p in sorted((shared / "datasets/bicycles/images/val").iterdir())[:3]]
    ref = Detector(load_card(src)).detect(frames)
    got = Detector(onnx_card).detect(frames)
    assert sum(len(d) for d in ref) > 0
    for a, b in zip(ref, got, strict=True):
        assert sorted(a.kind.tolist()) == sorted(b.kind.tolist())
        if len(a):
            assert np.abs(np.sort(a.confidence) - np.sort(b.confidence)).max() < 0.05


def test_head_only_training_ships_the_head_and_detects_like_the_trained_model(head_trained: Path, tmp_path: Path,
                                                                               shared: Path) -> None:
    """The card is the shared base plus a small head. Attached alone, it is the model training produced;
    merged (the default), the classes the base knows are the base's own detections, garbage the head's."""
    from ultralytics import YOLO

    from detector.model.detector import load_yolo
    from detector.model.weights import load_card

    loaded = load_card(head_trained)
    assert loaded.card.weights == "yolov8n.pt" and loaded.card.head == "tiny-head.head.pt"
    assert loaded.card.head_classes == ["garbage"]  # the only class COCO lacks
    assert loaded.weights_path.resolve() == (shared / "models/yolov8n.pt").resolve()
    assert loaded.head_path.stat().st_size < 2e6  # the head alone, not a copy of the base
    assert loaded.card.metrics["training"]["frozen_layers"] == 22
    image = str(shared / "datasets/coco8/images/val/000000000049.jpg")

    def boxes(model: YOLO, names: set[str]) -> list[tuple[str, float, tuple[float, ...]]]:
        r = model.predict(image, imgsz=160, conf=0.1, verbose=False)[0]  # well above max_det cut-offs
        out = [(model.names[int(c)], round(float(s), 2), tuple(round(float(v)) for v in xy))
               for c, s, xy in zip(r.boxes.cls, r.boxes.conf, r.boxes.xyxy, strict=True)]
        return sorted(b for b in out if b[0] in names)

    best = YOLO(str(head_trained.parent / "runs/tiny-head/weights/best.pt"))
    alone = head_trained.parent / "alone.yaml"  # beside the head: a card names files in its own folder
    alone.write_text(head_trained.read_text().replace("head_classes:\n- garbage\n", ""))
    whole = load_yolo(load_card(alone))
    assert whole.names == best.names and whole.names[0] == "garbage"
    every = set(best.names.values())
    assert boxes(whole, every) == boxes(best, every) and boxes(best, every)

    merged = load_yolo(loaded)
    assert merged.names == best.names
    base = YOLO(str(shared / "models/yolov8n.pt"))
    known = every - {"garbage"}
    assert boxes(merged, known) == boxes(base, known) and boxes(base, {"person"})  # six people in this photo
    assert boxes(merged, {"garbage"}) == boxes(best, {"garbage"})


def test_a_head_on_other_base_weights_is_refused(head_trained: Path, tmp_path: Path, shared: Path) -> None:
    from detector.errors import WeightsError
    from detector.model.detector import Detector
    from detector.model.weights import load_card

    card = head_trained.parent / "wrong-base.yaml"
    card.write_text(head_trained.read_text().replace("weights: yolov8n.pt", "weights: yolov8s.pt"))
    with pytest.raises(WeightsError) as e:
        Detector(load_card(card))
    assert "trained on base weights" in str(e.value) and "yolov8n.pt" in str(e.value)


def test_build_adds_night_copies_with_the_same_boxes(tmp_path: Path, shared: Path) -> None:
    src = tiny_source(tmp_path, shared, "bags", "trashbags", 2, ["general_trashbag", "other_trashbag"])
    out, again = tmp_path / "data", tmp_path / "again"
    for folder in (out, again):
        assert build_dataset.main(["--out", str(folder), "--source", str(src), "--no-pseudo",
                                   "--night-every", "1"]) == 0
    night = sorted((out / "labels/train").glob("night__*.txt"))
    assert len(night) == 2  # every labelled training image, none from val
    for label in night:
        original = out / "labels/train" / label.name.replace("night__", "")
        assert label.read_text() == original.read_text() and label.read_text()
        dark = cv2.imread(str(out / "images/train" / f"{label.stem}.jpg"))
        day = cv2.imread(str(out / "images/train" / f"{original.stem}.jpg"))
        assert dark.shape == day.shape and dark.mean() < 0.6 * day.mean()
    assert json.loads((out / "manifest.json").read_text())["sha256"] == \
        json.loads((again / "manifest.json").read_text())["sha256"]  # same pixels on a rebuild


def test_build_drops_train_copies_of_val_images_and_holds_out_a_test_split(tmp_path: Path, shared: Path,
                                                                           capsys: pytest.CaptureFixture) -> None:
    """cn-street-garbage photos: a val photo also in train (re-encoded smaller) is left out of train, and
    --holdout moves a share of the training photos to a test split that data.yaml and the manifest list."""
    src = tiny_source(tmp_path, shared, "cn", "cn-street-garbage", 6, ["garbage", "garbage_bin", "overflow"])
    val_photo = sorted((src / "images/val").iterdir())[0]
    copy = cv2.resize(cv2.imread(str(val_photo)), (448, 448))
    cv2.imwrite(str(src / "images/train/copy_of_val.jpg"), copy, [cv2.IMWRITE_JPEG_QUALITY, 75])
    (src / "labels/train/copy_of_val.txt").write_text((src / "labels/val" / f"{val_photo.stem}.txt").read_text())
    out = tmp_path / "data"
    assert build_dataset.main(["--out", str(out), "--source", str(src), "--classes", "garbage,garbage_bin,overflow",
                               "--holdout", "cn=0.34"]) == 0
    printed = capsys.readouterr().out
    assert "1 training images left out" in printed and "held out as the test split" in printed
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert list(data["names"].values()) == ["garbage", "garbage_bin", "overflow"] and data["test"] == "images/test"
    train = {p.name for p in (out / "images/train").iterdir()}
    test = {p.name for p in (out / "images/test").iterdir()}
    assert "cn__copy_of_val.jpg" not in train | test and len(test) == 2 and len(train) == 4 and not train & test
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["images"] == {"train": 4, "val": 6, "test": 2} and set(manifest["sha256"]) == {"train", "val",
                                                                                                   "test"}
    label = (out / "labels/val" / f"cn__{val_photo.stem}.txt").read_text()
    assert label == "".join(f"{ln}\n" for ln in (src / "labels/val" / f"{val_photo.stem}.txt").read_text().split("\n")
                            if ln)  # class ids kept: the classes are the source's own, in its order


def test_build_rejects_a_bad_holdout(tmp_path: Path, shared: Path, capsys: pytest.CaptureFixture) -> None:
    src = tiny_source(tmp_path, shared, "cn", "cn-street-garbage", 2, ["garbage", "garbage_bin", "overflow"])
    assert build_dataset.main(["--out", str(tmp_path / "o"), "--source", str(src), "--no-pseudo",
                               "--holdout", "cn=half"]) == 2
    assert "SOURCE=FRACTION" in capsys.readouterr().err


def test_a_head_of_new_classes_alone_merges_with_the_base_classes_the_card_lists(tmp_path: Path,
                                                                                shared: Path) -> None:
    """A head that learnt only garbage/garbage_bin/overflow: the card adds bikes, people and the stall objects
    from the base's own head; the model's classes are the head's (same indices as its dataset) then those."""
    from ultralytics import YOLO

    from detector.kinds import Kind
    from detector.model.detector import Detector, load_yolo
    from detector.model.weights import load_card

    src = tiny_source(tmp_path, shared, "cn", "cn-street-garbage", 4, ["garbage", "garbage_bin", "overflow"])
    data = tmp_path / "data"
    assert build_dataset.main(["--out", str(data), "--source", str(src), "--classes",
                               "garbage,garbage_bin,overflow"]) == 0
    card = tmp_path / "cards" / "tiny-bins.yaml"
    assert script("train").main(["--data", str(data), "--card", str(card), "--epochs", "1", "--imgsz", "160",
                                 "--batch", "4", "--workers", "0", "--project", str(tmp_path / "runs"),
                                 "--head-only", "--no-val", "--base", str(shared / "models/yolov8n.pt")]) == 0
    loaded = load_card(card)
    assert loaded.card.head_classes == ["garbage", "garbage_bin", "overflow"]
    assert loaded.card.classes["overflow"].kind == Kind.GARBAGE and loaded.card.classes["overflow"].category == "01-02"
    assert loaded.card.classes["garbage_bin"].kind is None  # learnt, never reported on its own
    assert loaded.card.kinds() == {Kind.GARBAGE, Kind.BIKE, Kind.VENDING}
    merged = load_yolo(loaded)
    assert list(merged.names.values())[:4] == ["garbage", "garbage_bin", "overflow", "bicycle"]
    assert set(merged.names.values()) == set(loaded.card.classes)
    image = str(shared / "datasets/coco8/images/val/000000000049.jpg")
    base = YOLO(str(shared / "models/yolov8n.pt"))

    def people(model: YOLO) -> list[tuple[float, ...]]:
        r = model.predict(image, imgsz=160, conf=0.1, verbose=False)[0]
        return sorted(tuple(round(float(v)) for v in xy) for c, xy in zip(r.boxes.cls, r.boxes.xyxy, strict=True)
                      if model.names[int(c)] == "person")

    assert people(merged) == people(base) and people(base)
    assert set(Detector(loaded).detect([cv2.imread(image)])[0].kind.tolist()) <= {"garbage", "bike", "vending"}


def test_tune_thresholds_keeps_every_report_within_the_false_alarm_cap(tmp_path: Path, capsys) -> None:
    """Pure logic on two small reports: a pile class that needs a low threshold and a bin class that
    fires on plain bins unless its threshold is high."""
    tune = script("tune_thresholds")

    def record(label: str, **scores: float) -> dict:
        return {"labels": {"garbage": label}, "class_score": scores}

    a = [record("yes", garbage=0.3), record("yes", overflow=0.8), record("no", overflow=0.5), record("no")]
    b = [record("yes", garbage=0.25, overflow=0.4), record("no", overflow=0.6), record("no", garbage=0.1)]
    paths = []
    for name, records in (("a.json", a), ("b.json", b)):
        (tmp_path / name).write_text(json.dumps({"per_image": records}))
        paths += ["--report", str(tmp_path / name)]
    assert tune.main(["--kind", "garbage", "--classes", "garbage,overflow", "--max-false-alarm", "0.0",
                      *paths, "--top", "1"]) == 0
    best = capsys.readouterr().out.splitlines()[1]
    chosen = json.loads(best[: best.index("}") + 1])
    assert 0.1 < chosen["garbage"] <= 0.25 and 0.6 < chosen["overflow"] <= 0.8
    assert tune.rates(a, "garbage", chosen) == (1.0, 0.0) and tune.rates(b, "garbage", chosen) == (1.0, 0.0)
    negatives = [record("no", garbage=0.2), record("no")]  # a set without the kind: false alarms only
    assert tune.rates(negatives, "garbage", {"garbage": 0.15}) == (None, 0.5)


def test_a_vending_class_trains_for_an_epoch_from_the_v3_head_and_keeps_its_garbage(tmp_path: Path,
                                                                                      shared: Path) -> None:
    """`--init-head`: the default card's head grown by a `vending` class (rows of the classes it knew copied,
    so before training it scores garbage exactly as v3 does), trained one epoch on real photos, shipped as a
    card that reports vending from the head."""
    import torch

    from detector.kinds import Kind
    from detector.model.heads import grown_head
    from detector.model.safeload import load_checkpoint
    from detector.model.weights import load_card

    v3 = REPO / "detector" / "cards" / "streetwatch-v3.head.pt"
    saved = load_checkpoint(v3)
    classes = ["garbage", "garbage_bin", "overflow", "vending"]
    head, grown = saved["head"].float().eval(), grown_head(saved["head"], saved["names"], classes).eval()
    features = [torch.randn(1, c, 80 // 2**i, 80 // 2**i) for i, c in enumerate((128, 256, 512))]
    with torch.no_grad():
        before, after = head(features)[0], grown(features)[0]
    assert after.shape[1] == before.shape[1] + 1
    assert torch.allclose(after[:, :7], before, atol=1e-4)  # boxes and the three known classes
    assert float(after[:, 7].max()) < 0.05  # vending starts from the prior

    src = tiny_source(tmp_path, shared, "stalls", "cn-street-garbage", 4, ["garbage", "garbage_bin", "overflow"])
    label = next((src / "labels" / "train").iterdir())
    label.write_text(label.read_text() + "3 0.5 0.6 0.3 0.3\n")  # a vending box, for the smoke run only
    (src / "data.yaml").write_text(yaml.safe_dump({"path": ".", "train": "images/train", "val": "images/val",
                                                   "names": dict(enumerate(classes))}))
    out, card = tmp_path / "data", tmp_path / "models" / "tiny-vending.yaml"
    assert build_dataset.main(["--out", str(out), "--source", str(src), "--classes", ",".join(classes),
                               "--repeat", "stalls=2", "--no-pseudo"]) == 0
    assert json.loads((out / "manifest.json").read_text())["images"]["train"] == 8  # each training photo twice
    assert script("train").main([
        "--data", str(out / "data.yaml"), "--card", str(card), "--epochs", "1", "--imgsz", "160", "--batch", "4",
        "--workers", "0", "--project", str(tmp_path / "runs"), "--head-only", "--init-head", str(v3),
        "--no-val"]) == 0
    loaded = load_card(card)
    assert loaded.card.classes["vending"].kind == Kind.VENDING
    assert set(loaded.card.head_classes) == set(classes)


def test_a_branch_trains_the_neck_and_leaves_the_base_classes_exactly_the_base(tmp_path: Path, shared: Path) -> None:
    """`--branch-from 10`: YOLOv8's neck and a head train on the frozen backbone and ship as a branch beside the
    base's own neck and head. Merged, the base's classes are the base's detections to the pixel, the branch's
    classes those of the model training produced; the export of the merged network detects the same."""
    from ultralytics import YOLO

    from detector.model.detector import load_yolo
    from detector.model.safeload import load_checkpoint
    from detector.model.weights import load_card

    src = tiny_source(tmp_path, shared, "cn", "cn-street-garbage", 4, ["garbage", "garbage_bin", "overflow"])
    data, card = tmp_path / "data", tmp_path / "cards" / "tiny-branch.yaml"
    assert build_dataset.main(["--out", str(data), "--source", str(src), "--classes",
                               "garbage,garbage_bin,overflow", "--no-pseudo"]) == 0
    assert script("train").main(["--data", str(data), "--card", str(card), "--epochs", "1", "--imgsz", "160",
                                 "--batch", "4", "--workers", "0", "--project", str(tmp_path / "runs"),
                                 "--branch-from", "10", "--no-val", "--base", str(shared / "models/yolov8n.pt")]) == 0
    loaded = load_card(card)
    assert loaded.card.head == "tiny-branch.branch.pt" and loaded.card.metrics["training"]["frozen_layers"] == 10
    saved = load_checkpoint(loaded.head_path)
    assert saved["start"] == 10 and len(saved["branch"]) == 13  # layers 10..22: the neck and the head
    image = str(shared / "datasets/coco8/images/val/000000000049.jpg")

    def boxes(model: YOLO, name: str, conf: float) -> list[tuple[float, ...]]:
        index = next(i for i, n in model.names.items() if n == name)
        r = model.predict(image, imgsz=160, conf=conf, classes=[index], verbose=False)[0]
        return sorted((round(float(s), 2), *(round(float(v)) for v in xy))
                      for s, xy in zip(r.boxes.conf, r.boxes.xyxy, strict=True))

    merged, base = load_yolo(loaded), YOLO(str(shared / "models/yolov8n.pt"))
    best = YOLO(str(tmp_path / "runs/tiny-branch/weights/last.pt"))
    assert boxes(merged, "person", 0.1) == boxes(base, "person", 0.1) and boxes(base, "person", 0.1)
    assert boxes(merged, "garbage", 0.001) == boxes(best, "garbage", 0.001) and boxes(best, "garbage", 0.001)
