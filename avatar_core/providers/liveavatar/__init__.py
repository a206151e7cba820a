"""LiveAvatar (HeyGen's current streaming avatar, media in a LiveKit room) as a provider:
client.py (REST), errors.py (typed). Its local stand-in lives in avatar_core/standins/liveavatar/."""
