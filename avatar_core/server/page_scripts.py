"""What the page runs of ours in the browser: two small scripts, for what is only known
there: a refused microphone (fastrtc 0.0.34 shows a toast and tells the server nothing),
and a stream that has ended (fastrtc's player keeps showing its last frame, frozen)."""

from __future__ import annotations

MICROPHONE_REFUSED_ID = "microphone-refused"  # a button nobody sees, clicked by the script below
VIDEO_ID = "avatar-video"  # app.py's elem_ids of the two players
AUDIO_ID = "avatar-audio"
IDLE_NOTE_ID = "avatar-idle"  # shown over the empty player once its stream has ended
IDLE_CLASS = "stream-idle"
IDLE_NOTE = "No session: click New, then Start."
WATCH_MS = 500  # how often the page looks for a stream whose tracks have ended

# getUserMedia wrapped: when an audio-only request fails (permission refused, no device),
# the hidden button is clicked, so the server can say what to do in the status log
MICROPHONE_SCRIPT = f"""<script>
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

# The players let go of an ended stream and say so: at once on Close (STREAM_ENDED_JS), and for
# any other end (idle timeout, a failure, the server stopping) once the browser has ended its
# tracks. A new stream's tracks are set by fastrtc itself, and the note goes.
IDLE_SCRIPT = f"""<script>
(() => {{
  const player = (id, tag) => document.querySelector(`#${{id}} ${{tag}}`);
  const live = (el) => !!el.srcObject && el.srcObject.getTracks().some((t) => t.readyState === "live");
  window.avatarStreamEnded = () => {{
    for (const el of [player("{VIDEO_ID}", "video"), player("{AUDIO_ID}", "audio")]) {{
      if (el) el.srcObject = null;
    }}
    const box = document.getElementById("{VIDEO_ID}");
    if (!box) return;
    if (!document.getElementById("{IDLE_NOTE_ID}")) {{
      const note = document.createElement("div");
      note.id = "{IDLE_NOTE_ID}";
      note.textContent = "{IDLE_NOTE}";
      box.appendChild(note);
    }}
    box.classList.add("{IDLE_CLASS}");
  }};
  setInterval(() => {{
    const video = player("{VIDEO_ID}", "video");
    if (!video) return;
    if (live(video)) document.getElementById("{VIDEO_ID}")?.classList.remove("{IDLE_CLASS}");
    else if (video.srcObject) window.avatarStreamEnded();
  }}, {WATCH_MS});
}})();
</script>"""

HEAD = MICROPHONE_SCRIPT + "\n" + IDLE_SCRIPT
STREAM_ENDED_JS = "() => { window.avatarStreamEnded?.(); }"  # an event's js: runs in the page

CSS = f"""#{MICROPHONE_REFUSED_ID} {{ display: none !important; }}
#{IDLE_NOTE_ID} {{ display: none; }}
#{VIDEO_ID}.{IDLE_CLASS} {{ min-height: 240px; }}
#{VIDEO_ID}.{IDLE_CLASS} video {{ visibility: hidden; }}
#{VIDEO_ID}.{IDLE_CLASS} #{IDLE_NOTE_ID} {{ display: flex; position: absolute; inset: 0; align-items: center;
  justify-content: center; pointer-events: none; color: var(--body-text-color-subdued);
  font-size: var(--text-lg); }}"""
