"""Development stand-ins for upstream services, runnable with `python -m`; not used by the app."""
