"""From an avatar's ticks to the browser: format, clock, keying, backgrounds, the fastrtc streams."""
