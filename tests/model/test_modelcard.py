from pathlib import Path

import pytest

from detector.errors import ConfigError, WeightsNotFound
from detector.model.weights import load_card, resolve_weights, sha256_of
from testkit import REPO


def test_bundled_card(shared: Path) -> None:
    loaded = load_card("coco")  # a bundled card by name
    assert loaded.path == REPO / "detector" / "cards" / "coco.yaml"
    assert loaded.weights_path.resolve() == (shared / "models" / "yolov8n.pt").resolve()
    assert loaded.weights_sha256.startswith("f44d4537")
    assert loaded.card.category("bicycle", "bike") == {"code": "05-06", "name": "非机动车乱停放"}


def test_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env_dir, card_dir = tmp_path / "env", tmp_path / "cards"
    env_dir.mkdir()
    card_dir.mkdir()
    (card_dir / "w.pt").write_bytes(b"card")
    explicit = tmp_path / "explicit.pt"
    explicit.write_bytes(b"explicit")
    monkeypatch.setenv("STREETWATCH_WEIGHTS_DIR", str(env_dir))
    assert resolve_weights("w.pt", card_dir=card_dir, explicit=explicit) == explicit
    assert resolve_weights("w.pt", card_dir=card_dir) == card_dir / "w.pt"
    (env_dir / "w.pt").write_bytes(b"env")
    assert resolve_weights("w.pt", card_dir=card_dir) == env_dir / "w.pt"
    (card_dir / "sub").mkdir()
    (card_dir / "sub" / "x.pt").write_bytes(b"relative to the card")
    assert resolve_weights("sub/x.pt", card_dir=card_dir) == card_dir / "sub" / "x.pt"
    with pytest.raises(WeightsNotFound, match=r"weights 'nope.pt' not found; looked in .*env"):
        resolve_weights("nope.pt", card_dir=card_dir)
    monkeypatch.setenv("STREETWATCH_ALLOW_DOWNLOAD", "1")
    assert resolve_weights("yolo11n.pt", card_dir=card_dir) == Path("yolo11n.pt")  # ultralytics fetches it


def test_export_folder_hash_covers_every_file(tmp_path: Path) -> None:
    folder = tmp_path / "m_openvino_model"
    folder.mkdir()
    (folder / "a.xml").write_text("a")
    (folder / "b.bin").write_text("b")
    before = sha256_of(folder)
    (folder / "b.bin").write_text("c")
    assert sha256_of(folder) != before and len(before) == 64


def test_card_errors(tmp_path: Path) -> None:
    card = tmp_path / "card.yaml"
    card.write_text("name: x\nweights: w.pt\nclasses: {person: {confidence: 0.3}}\n")
    with pytest.raises(ConfigError, match="no class reports a kind"):
        load_card(card)
    card.write_text("name: x\nweights: w.pt\nclasses: {bicycle: {kind: bike}}\nvending: {stall_classes: [umbrella]}\n")
    with pytest.raises(ConfigError, match=r"classes not listed under classes: \['umbrella', 'person'\]"):
        load_card(card)
    card.write_text("name: x\nweights: w.pt\nclasses: {bicycle: {kind: bike, category: '09-99'}}\n")
    with pytest.raises(ConfigError, match="unknown category '09-99'"):
        load_card(card)


def test_export_cards_extend_the_base_card(shared: Path) -> None:
    base = load_card("coco").card
    export = load_card("coco11-openvino-int8")
    assert export.card.classes == base.classes and export.card.vending == base.vending
    assert export.card.name != base.name
    assert export.weights_path.resolve() == (shared / "models" / "yolo11n_int8_openvino_model").resolve()


def test_extends_loop_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("extends: b.yaml\nname: a\n")
    (tmp_path / "b.yaml").write_text("extends: a.yaml\nname: b\n")
    with pytest.raises(ConfigError, match="loops back"):
        load_card(tmp_path / "a.yaml")


def test_a_missing_head_is_an_error_never_a_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    card = tmp_path / "card.yaml"
    card.write_text((REPO / "detector" / "cards" / "streetwatch-v2.yaml").read_text()
                    .replace("head: streetwatch-v2.head.pt", "head: nope.head.pt"))
    monkeypatch.setenv("STREETWATCH_ALLOW_DOWNLOAD", "1")  # weights may be fetched by name; a head may not
    with pytest.raises(WeightsNotFound, match=r"head 'nope.head.pt' not found; looked in ") as e:
        _ = load_card(card).head_path
    assert str(tmp_path) in str(e.value)


@pytest.mark.parametrize("named", ["/etc/passwd", "../elsewhere/w.pt", "sub/../../w.pt"])
def test_a_card_cannot_point_the_loader_outside_its_folder(tmp_path: Path, named: str) -> None:
    from detector.errors import WeightsError

    card_dir = tmp_path / "cards"
    card_dir.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "w.pt").write_bytes(b"x")
    (tmp_path / "w.pt").write_bytes(b"x")
    with pytest.raises(WeightsError, match="outside its folder"):
        resolve_weights(named, card_dir=card_dir)
    assert resolve_weights(named, card_dir=card_dir, explicit=tmp_path / "w.pt") == tmp_path / "w.pt"  # --weights


def test_the_default_card_adds_a_vending_head_and_leaves_v3s_garbage_as_it_was(shared: Path) -> None:
    """streetwatch-v4 = v3's garbage head + a head giving only `vending`, on one backbone pass: on a real
    street photo its garbage boxes are v3's to the digit, and a class cannot come from two heads."""
    import cv2
    import yaml

    from detector.config.card import ModelCard
    from detector.model.detector import Detector
    from detector.model.weights import DEFAULT_CARD

    v3, v4 = (load_card(REPO / "detector" / "cards" / f"streetwatch-v{n}.yaml") for n in (3, 4))
    assert DEFAULT_CARD.name == "streetwatch-v4.yaml" and v4.card.more_heads[0].classes == ["vending"]
    image = cv2.imread(str(shared / "datasets" / "cn-street-garbage" / "images" / "val" / "000142.jpg"))
    old, new = (Detector(card).detect([image])[0] for card in (v3, v4))

    def garbage(d) -> list:
        return sorted((str(n), round(float(c), 4), [round(float(v)) for v in b])
                      for n, c, b, k in zip(d.class_name, d.confidence, d.xyxy, d.kind, strict=True) if k == "garbage")

    assert garbage(new) == garbage(old) and garbage(old)
    data = yaml.safe_load((REPO / "detector" / "cards" / "streetwatch-v4.yaml").read_text())
    data["more_heads"][0]["classes"] = ["vending", "garbage"]
    with pytest.raises(ValueError, match=r"\['garbage'\] are taken from two heads"):
        ModelCard.model_validate(data)
