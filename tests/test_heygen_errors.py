"""HeyGen's loosely specified error replies -> one typed error, one line each."""

import pytest

from avatar_core.providers.heygen import errors
from avatar_core.providers.heygen.errors import classify


@pytest.mark.parametrize(("status", "code", "message", "kind"), [
    (401, 400112, "Unauthorized", errors.BadKeyError),
    (400, 400599, "No API access", errors.NoApiAccessError),
    (400, 10013, "avatar not found", errors.AvatarNotFoundError),
    (400, 10003, "avatar version deprecated", errors.AvatarNotFoundError),
    (400, 10007, "Concurrent limit reached", errors.ConcurrentLimitError),
    (400, 10015, "trial limit reached", errors.ConcurrentLimitError),
    (429, None, "", errors.ConcurrentLimitError),
    (400, 10006, "session not found", errors.SessionClosedError),
    (400, None, "session state wrong: closed", errors.SessionClosedError),
    (502, None, "Bad gateway", errors.ServerError),
    (400, 400, "text too long", errors.BadRequestError),
])
def test_each_reply_has_one_type_and_one_line(status, code, message, kind):
    error = classify(status, code, message)
    assert type(error) is kind
    assert str(error) and "\n" not in str(error) and len(str(error)) < 200


def test_bad_requests_keep_heygens_short_reason():
    assert str(classify(400, 400, "text too long")) == "HeyGen refused the request: text too long"
