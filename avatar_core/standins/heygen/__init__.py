"""The HeyGen-compatible local server: `python -m avatar_core.standins.heygen.server`."""
