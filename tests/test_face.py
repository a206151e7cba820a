import numpy as np
import pytest

from avatar_core.media.keying import remove_green
from avatar_core.providers.local.face import (
    BLINK_LEVELS,
    LOOKS,
    MOUTH_LEVELS,
    QUALITY_SIZES,
    FaceRenderer,
    Pose,
    UnknownLookError,
)


def changed_rows_cols(a: np.ndarray, b: np.ndarray):
    diff = np.any(a != b, axis=2)
    rows, cols = np.flatnonzero(diff.any(1)), np.flatnonzero(diff.any(0))
    return rows, cols


@pytest.mark.parametrize("look", sorted(LOOKS))
def test_open_and_closed_mouth_differ_only_around_the_mouth(look):
    r = FaceRenderer(look, "low")
    closed = r.render(Pose(mouth_level=0)).copy()
    open_ = r.render(Pose(mouth_level=MOUTH_LEVELS - 1)).copy()
    rows, cols = changed_rows_cols(closed, open_)
    assert rows.size > 10 and cols.size > 10
    w, h = QUALITY_SIZES["low"]
    assert 0.45 * h < rows.mean() < 0.7 * h and abs(cols.mean() - w / 2) < 0.05 * w
    dark = lambda f: np.sum(f.astype(int).sum(axis=2) < 200)  # noqa: E731
    assert dark(open_) > dark(closed) + 50  # the open mouth shows its dark inside


def test_blink_closes_the_eyes_above_the_mouth():
    r = FaceRenderer("ava", "low")
    rows, _ = changed_rows_cols(r.render(Pose()).copy(), r.render(Pose(blink_level=BLINK_LEVELS - 1)).copy())
    assert rows.size and rows.max() < 0.5 * QUALITY_SIZES["low"][1]


def test_sway_shifts_the_whole_avatar():
    r = FaceRenderer("ava", "low")
    a, b = r.render(Pose(dx=0)).copy(), r.render(Pose(dx=2)).copy()
    assert (a[:, 2:] == b[:, :-2]).all()


@pytest.mark.parametrize("quality", list(QUALITY_SIZES))
def test_frame_size_follows_quality(quality):
    w, h = QUALITY_SIZES[quality]
    assert FaceRenderer("leo", quality).render(Pose()).shape == (h, w, 3)


def test_avatar_survives_its_own_key():
    """Nothing on the avatar is green: keying over red leaves only the green screen replaced."""
    frame = FaceRenderer("mira", "medium").render(Pose(mouth_level=5)).copy()
    out = remove_green(frame, np.full_like(frame, (0, 0, 255)))
    keyed = np.any(out != frame, axis=2)
    greenish = frame[..., 1].astype(int) - np.maximum(frame[..., 0], frame[..., 2]) > 24
    assert np.mean(keyed & ~greenish) < 0.002  # only anti-aliased edge pixels beyond the screen itself
    assert 0.3 < greenish.mean() < 0.9


def test_unknown_look_is_refused_with_the_valid_ones():
    with pytest.raises(UnknownLookError, match="ava, leo, mira"):
        FaceRenderer("nobody", "low")
