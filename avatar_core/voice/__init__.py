"""Talking to the avatar by voice: the microphone's audio -> turns (pauses.py) -> words
(recognizer.py) -> Talk."""
