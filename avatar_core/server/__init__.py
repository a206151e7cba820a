"""The process around the sessions: runtime (loop, threads), TURN, memory, Gradio/fastrtc workarounds."""
