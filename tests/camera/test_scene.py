import numpy as np

from detector.camera.scene import ChangeGate, SceneChangeDetector

RNG = np.random.default_rng(3)
SCENE = RNG.integers(0, 255, (360, 640, 3), dtype=np.uint8)


def noisy(image: np.ndarray) -> np.ndarray:
    return np.clip(image + RNG.normal(0, 4, image.shape), 0, 255).astype(np.uint8)


def test_gate_skips_still_frames_and_rechecks() -> None:
    gate = ChangeGate(recheck_s=10)
    decisions = [gate.needs_inference(noisy(SCENE), t * 0.5) for t in range(41)]  # 20 s at 2 fps
    assert [t * 0.5 for t, d in enumerate(decisions) if d] == [0.0, 10.0, 20.0]


def test_gate_infers_when_a_small_object_appears() -> None:
    gate = ChangeGate(recheck_s=10)
    assert gate.needs_inference(SCENE, 0.0)
    with_bag = SCENE.copy()
    with_bag[200:240, 300:340] = (20, 20, 20)  # a 40x40 dark bag in a 640x360 frame
    assert not gate.needs_inference(noisy(SCENE), 0.5)
    assert gate.needs_inference(with_bag, 1.0)
    assert not gate.needs_inference(noisy(with_bag), 1.5)


def test_gate_disabled() -> None:
    gate = ChangeGate(recheck_s=0)
    assert all(gate.needs_inference(SCENE, t) for t in range(5))


def test_scene_change_ignores_light_and_flat_frames() -> None:
    detector = SceneChangeDetector()
    assert not detector.update(SCENE)
    assert not detector.update(np.clip(SCENE * 0.6, 0, 255).astype(np.uint8))  # dusk
    assert detector.update(RNG.integers(0, 255, SCENE.shape, dtype=np.uint8))  # another view
    flat = np.full_like(SCENE, 30)
    detector.update(flat)
    assert not detector.update(np.full_like(SCENE, 40))
    assert detector.update(np.full_like(SCENE, 200))
