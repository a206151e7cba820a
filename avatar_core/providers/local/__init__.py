"""The offline avatar: a rendered face (face.py, motion.py) and offline voices (speech.py)."""
