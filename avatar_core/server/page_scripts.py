"""What the page runs of ours in the browser: one small script, because a refused
microphone is only known there (fastrtc 0.0.34 shows a toast and tells the server nothing)."""

from __future__ import annotations

MICROPHONE_REFUSED_ID = "microphone-refused"  # a button nobody sees, clicked by the script below

# getUserMedia wrapped: when an audio-only request fails (permission refused, no device),
# the hidden button is clicked, so the server can say what to do in the status log
HEAD = f"""<script>
(() => {{
  const media = navigator.mediaDevices;
  if (!media || !media.getUserMedia) return;
  const getUserMedia = media.getUserMedia.bind(media);
  media.getUserMedia = async (constraints) => {{
    try {{
      return await getUserMedia(constraints);
    }} catch (error) {{
      if (constraints && constraints.audio && !constraints.video) {{
        document.getElementById("{MICROPHONE_REFUSED_ID}")?.click();
      }}
      throw error;
    }}
  }};
}})();
</script>"""

CSS = f"#{MICROPHONE_REFUSED_ID} {{ display: none !important; }}"
