"""HeyGen v1 (the original demo's protocol) as a provider: client.py (REST), errors.py (typed),
media.py (the WebRTC peer), avatar.py (one session), service.py (the app-wide part). Its
local stand-in server lives apart, in avatar_core/standins/heygen/."""
