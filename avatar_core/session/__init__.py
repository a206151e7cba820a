"""Per browser and per session: the controller (buttons), the manager (cap, reaping), sessions."""
