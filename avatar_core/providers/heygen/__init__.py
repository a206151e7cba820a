"""HeyGen's streaming avatar API: the client (client.py), its typed errors
(errors.py) and a HeyGen-compatible local server (local_server.py)."""
