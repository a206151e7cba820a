import pytest

from avatar_core.talk.sentences import SOFT_LIMIT, SentenceSplitter

CASES = [
    ("Hello there! How are you? Fine.", ["Hello there!", "How are you?", "Fine."]),
    ("Dr. Smith paid 3.5 dollars, e.g. for tea. J. K. Rowling writes.",
     ["Dr. Smith paid 3.5 dollars, e.g. for tea.", "J. K. Rowling writes."]),
    ("Well… I see. \"Quoted.\" Then more.", ["Well…", "I see.", "\"Quoted.\"", "Then more."]),
    ("I think . . . yes. Hmm. ... I see", ["I think . . . yes.", "Hmm. ...", "I see"]),
    ("Steps:\n1. Buy milk.\n2. Go home.", ["Steps:", "1. Buy milk.", "2. Go home."]),
    ("**Bold** claim. # Heading\n- item one\n`code` here.", ["Bold claim.", "Heading", "item one", "code here."]),
    ("No. I think so.", ["No.", "I think so."]),
    ("Only symbols: ... \n *** \n Done.", ["Only symbols: ...", "Done."]),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_whole_and_char_by_char_agree(text, expected):
    for pieces in ([text], list(text)):
        splitter, out = SentenceSplitter(), []
        for piece in pieces:
            out += splitter.feed(piece)
        if rest := splitter.flush():
            out.append(rest)
        assert out == expected


def test_a_sentence_waits_for_what_follows_it():
    splitter = SentenceSplitter()
    assert splitter.feed("Hello there! ") == []  # "!" + space could still be "Dr. " style: wait
    assert splitter.feed("This") == ["Hello there!"]


def test_a_long_run_without_punctuation_is_cut_early():
    splitter = SentenceSplitter()
    words = "word " * 100
    out = splitter.feed(words)
    assert out and all(len(s) <= SOFT_LIMIT for s in out)
    clause = ("This part has no full stop but it has a comma, " * 6)
    assert SentenceSplitter().feed(clause)[0].endswith(",")


def test_megabyte_replies_are_cut_into_bounded_pieces_that_keep_every_character():
    for text in ("x" * 1_000_000, "word " * 200_000, "Hi. " * 250_000, ("a" * 150 + ", ") * 6000):
        splitter = SentenceSplitter()
        pieces = splitter.feed(text)
        if rest := splitter.flush():
            pieces.append(rest)
        assert all(len(p) <= SOFT_LIMIT for p in pieces)
        assert "".join(pieces).replace(" ", "") == text.replace(" ", "")
