import itertools

import numpy as np
import pytest

from avatar_core.media.keying import SOFT_HIGH, SOFT_LOW, remove_green
from avatar_core.providers.local.face import KEY_GREEN_RGB

RED_BG = (0, 0, 220)  # BGR


def key_pixels(*pixels_bgr):
    frame = np.array([pixels_bgr], np.uint8)
    background = np.empty_like(frame)
    background[:] = RED_BG
    return remove_green(frame, background)[0]


def test_key_green_becomes_background():
    green_bgr = KEY_GREEN_RGB[::-1]
    out = key_pixels(green_bgr, (0, 255, 0), (60, 200, 60))
    assert (out == RED_BG).all()


@pytest.mark.parametrize("pixel", [(150, 180, 230), (30, 44, 72), (255, 255, 255), (0, 0, 0), (164, 74, 112)])
def test_foreground_colours_are_kept(pixel):
    assert tuple(key_pixels(pixel)[0]) == pixel


def test_soft_edge_mixes_foreground_and_background():
    # greenness halfway between the soft thresholds -> alpha 0.5
    d = (SOFT_LOW + SOFT_HIGH) // 2
    out = key_pixels((100, 100 + d, 100))[0].astype(int)
    assert 40 <= out[0] <= 60 and 40 <= out[1] <= 60  # ~half of 100 over background 0
    assert 150 <= out[2] <= 170  # half of 100 plus half of 220


def test_edges_get_monotonic_alpha():
    ramp = [(80, 80 + d, 80) for d in range(0, 120, 6)]
    reds = key_pixels(*ramp)[:, 2].astype(int)
    assert all(b >= a for a, b in itertools.pairwise(reds))
    assert reds[0] == 80 and reds[-1] == 220


def test_green_spill_is_suppressed():
    # skin with a green cast from the screen: below the key threshold, so kept, but de-greened
    out = key_pixels((140, 190, 180))[0]
    assert out[1] <= max(out[0], out[2])
    assert tuple(out[[0, 2]]) == (140, 180)


@pytest.mark.parametrize("pixel, expected", [
    ((140, 190, 180), (140, 180, 180)),  # green clamped to max(B, R), not to 0 (skin would turn magenta)
    ((90, 105, 60), (90, 90, 60)),
    ((120, 100, 110), (120, 100, 110)),  # no green cast: untouched
])
def test_spill_clamps_green_to_the_larger_other_channel(pixel, expected):
    assert tuple(int(v) for v in key_pixels(pixel)[0]) == expected


def test_soft_edge_blends_the_despilled_colour_exactly():
    d = SOFT_LOW + 12  # alpha = (SOFT_HIGH - d) / (SOFT_HIGH - SOFT_LOW) = 0.75
    alpha = (SOFT_HIGH - d) / (SOFT_HIGH - SOFT_LOW)
    out = key_pixels((100, 120 + d, 120))[0]
    expected = [round(fg * alpha + bg * (1 - alpha) + 1e-9) for fg, bg in zip((100, 120, 120), RED_BG, strict=True)]
    assert [int(v) for v in out] == expected  # green blends from max(B, R) = 120, not from its own 156


def test_no_green_fringe_on_a_keyed_edge():
    frame = np.zeros((1, 64, 3), np.uint8)
    skin, green = np.array((150, 180, 230)), np.array(KEY_GREEN_RGB[::-1])
    for x in range(64):  # a blurred edge from skin to green
        a = min(1.0, max(0.0, (x - 16) / 32))
        frame[0, x] = (skin * (1 - a) + green * a).round()
    background = np.full_like(frame, 90)  # grey
    out = remove_green(frame, background).astype(int)
    assert (out[..., 1] - np.maximum(out[..., 0], out[..., 2]) <= 1).all()


def test_same_result_for_rgb_and_bgr_order():
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    bg = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    flipped = remove_green(frame[..., ::-1].copy(), bg[..., ::-1].copy())
    assert (remove_green(frame, bg) == flipped[..., ::-1]).all()


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="must match"):
        remove_green(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8))
