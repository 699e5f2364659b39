/* Waveforms for Mediagen: parse audiowaveform v2 peaks, draw them on a canvas, and turn a canvas
 * plus an <audio> element into a seekable, keyboard-accessible player.
 *
 * Peaks come from GET /api/audio/{id}/waveform (made once at ingest), so drawing never decodes
 * audio in the browser: a gallery of 24 tracks costs 24 small JSON requests, not 24 downloads.
 */
(() => {
  "use strict";

  const cache = new Map();

  /** Fetch and parse peaks once per URL; every canvas showing the same track shares them. */
  function loadPeaks(url) {
    if (!cache.has(url)) {
      const p = fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then((r) => {
          if (!r.ok) throw new Error(`waveform: HTTP ${r.status}`);
          return r.json();
        })
        .then(parsePeaks);
      p.catch(() => cache.delete(url)); // a failed fetch may succeed later (e.g. just completed)
      cache.set(url, p);
    }
    return cache.get(url);
  }

  /** audiowaveform v2 JSON → per-frame min/max in −1..1 (channels folded together). */
  function parsePeaks(json) {
    const scale = json.bits === 16 ? 32768 : 128;
    const channels = Math.max(1, json.channels || 1);
    const data = Array.isArray(json.data) ? json.data : [];
    const n = Math.floor(data.length / (2 * channels));
    const mins = new Float32Array(n);
    const maxs = new Float32Array(n);
    let peak = 0;
    for (let i = 0; i < n; i++) {
      let lo = 1;
      let hi = -1;
      for (let c = 0; c < channels; c++) {
        const at = (i * channels + c) * 2;
        lo = Math.min(lo, data[at] / scale);
        hi = Math.max(hi, data[at + 1] / scale);
      }
      mins[i] = lo;
      maxs[i] = hi;
      peak = Math.max(peak, -lo, hi);
    }
    return { mins, maxs, length: n, peak };
  }

  function cssVar(el, name, fallback) {
    const v = getComputedStyle(el).getPropertyValue(name).trim();
    return v || fallback;
  }

  /** Size the canvas backing store to its CSS box × devicePixelRatio (crisp on any screen). */
  function fit(canvas) {
    const dpr = window.devicePixelRatio || 1;
    const rect = canvas.getBoundingClientRect();
    const w = Math.max(1, Math.round(rect.width * dpr));
    const h = Math.max(1, Math.round(rect.height * dpr));
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
    }
    return { w, h, dpr };
  }

  /**
   * Draw peaks as bars; bars left of `progress` (0..1) take the "played" colour.
   * Without peaks (not derived, or not loaded yet) a thin centre line keeps the control visible.
   */
  function draw(canvas, peaks, progress, opts = {}) {
    const { w, h, dpr } = fit(canvas);
    const ctx = canvas.getContext("2d");
    ctx.clearRect(0, 0, w, h);
    const played = cssVar(canvas, "--wave-played", "#4f46e5");
    const rest = cssVar(canvas, "--wave-rest", "#c4c7d4");
    const mid = h / 2;
    if (!peaks || !peaks.length) {
      ctx.fillStyle = rest;
      ctx.fillRect(0, mid - dpr / 2, w, Math.max(1, dpr));
    } else {
      const bar = Math.max(1, Math.round((opts.bar || 2) * dpr));
      const gap = Math.round((opts.gap ?? 1) * dpr);
      const step = bar + gap;
      const bars = Math.max(1, Math.floor((w + gap) / step));
      // Quiet clips are scaled up (at most 4×) so the shape reads at any level; the stored peaks
      // stay comparable across clips, only the picture is normalised.
      const gain = Math.min(4, 1 / Math.max(peaks.peak || 1, 0.25));
      const amp = mid * 0.92 * gain;
      for (let b = 0; b < bars; b++) {
        const start = Math.floor((b * peaks.length) / bars);
        const end = Math.max(start + 1, Math.floor(((b + 1) * peaks.length) / bars));
        let lo = 0;
        let hi = 0;
        for (let i = start; i < end && i < peaks.length; i++) {
          if (peaks.mins[i] < lo) lo = peaks.mins[i];
          if (peaks.maxs[i] > hi) hi = peaks.maxs[i];
        }
        const top = mid - hi * amp;
        const height = Math.max(dpr, (hi - lo) * amp);
        ctx.fillStyle = progress != null && (b + 0.5) / bars <= progress ? played : rest;
        ctx.fillRect(b * step, Math.min(top, mid - dpr / 2), bar, height);
      }
    }
    if (opts.markers && opts.markers.length) {
      // Comment markers: a tick through the wave with a small flag on top, at each fraction.
      ctx.fillStyle = cssVar(canvas, "--wave-marker", "#d97706");
      const flag = Math.round(5 * dpr);
      for (const at of opts.markers) {
        const x = Math.min(w - dpr, Math.max(0, at * w));
        ctx.fillRect(x - dpr / 2, 0, Math.max(1, dpr), h);
        ctx.beginPath();
        ctx.moveTo(x - flag, 0);
        ctx.lineTo(x + flag, 0);
        ctx.lineTo(x, flag * 1.4);
        ctx.fill();
      }
    }
    if (opts.playhead && progress != null) {
      ctx.fillStyle = cssVar(canvas, "--wave-playhead", "#1e1b4b");
      const x = Math.min(w - dpr, Math.max(0, progress * w));
      ctx.fillRect(x, 0, Math.max(1, Math.round(1.5 * dpr)), h);
    }
  }

  function clock(seconds) {
    if (!Number.isFinite(seconds) || seconds < 0) seconds = 0;
    const m = Math.floor(seconds / 60);
    const s = Math.floor(seconds % 60);
    return `${m}:${String(s).padStart(2, "0")}`;
  }

  const MARKER_HIT_PX = 6; // a click this close to a marker seeks to the marker's own time

  /**
   * Wire a canvas (role=slider) to an <audio>: click seeks to x/width × duration, arrow keys seek
   * ±5 s, a playhead follows playback via requestAnimationFrame while playing. Markers (comment
   * times, set with `setMarkers`) are drawn on the wave; a click on one seeks to exactly its time
   * and fires a "wave-marker" event on the canvas with the marker as `detail`.
   * The handle is also `canvas.mediagenPlayer`, for scripts that did not build the player.
   */
  function attachPlayer({ audio, canvas, peaksUrl, duration: knownDuration }) {
    let peaks = null;
    let frame = 0;
    let markers = [];
    const duration = () =>
      Number.isFinite(audio.duration) && audio.duration > 0 ? audio.duration : knownDuration || 0;
    const progress = () => (duration() ? Math.min(1, audio.currentTime / duration()) : 0);

    function markerFractions() {
      const d = duration();
      return d ? markers.map((m) => Math.min(1, Math.max(0, m.at / d))) : [];
    }

    function render() {
      draw(canvas, peaks, progress(), { playhead: true, bar: 2, gap: 1, markers: markerFractions() });
      canvas.setAttribute("aria-valuemax", duration().toFixed(1));
      canvas.setAttribute("aria-valuenow", audio.currentTime.toFixed(1));
      canvas.setAttribute("aria-valuetext", `${clock(audio.currentTime)} of ${clock(duration())}`);
    }

    function loop() {
      render();
      frame = audio.paused || audio.ended ? 0 : requestAnimationFrame(loop);
    }

    function seek(t) {
      const d = duration();
      if (!d) return;
      audio.currentTime = Math.max(0, Math.min(d, t));
      render();
    }

    /** The marker drawn within MARKER_HIT_PX of a CSS x offset, if any (the nearest). */
    function markerNear(x, width) {
      const d = duration();
      let best = null;
      let bestGap = MARKER_HIT_PX;
      for (const m of d ? markers : []) {
        const gap = Math.abs((m.at / d) * width - x);
        if (gap <= bestGap) {
          best = m;
          bestGap = gap;
        }
      }
      return best;
    }

    canvas.addEventListener("click", (e) => {
      const rect = canvas.getBoundingClientRect();
      const hit = markerNear(e.clientX - rect.left, rect.width);
      if (hit) {
        seek(hit.at);
        canvas.dispatchEvent(new CustomEvent("wave-marker", { detail: hit, bubbles: true }));
        return;
      }
      seek(((e.clientX - rect.left) / rect.width) * duration());
    });
    canvas.addEventListener("keydown", (e) => {
      const d = duration();
      const steps = {
        ArrowLeft: -5, ArrowDown: -5, ArrowRight: 5, ArrowUp: 5,
        PageDown: -d / 10, PageUp: d / 10,
      };
      if (e.key in steps) seek(audio.currentTime + steps[e.key]);
      else if (e.key === "Home") seek(0);
      else if (e.key === "End") seek(d);
      else if (e.key === " " || e.key === "Enter") {
        if (audio.paused) audio.play().catch(() => {});
        else audio.pause();
      } else return;
      e.preventDefault();
    });
    audio.addEventListener("play", () => {
      if (!frame) frame = requestAnimationFrame(loop);
    });
    for (const ev of ["pause", "ended", "seeked", "timeupdate", "loadedmetadata", "durationchange"]) {
      audio.addEventListener(ev, () => {
        if (!frame) render();
      });
    }
    if (window.ResizeObserver) new ResizeObserver(() => render()).observe(canvas);
    render();
    if (peaksUrl) {
      loadPeaks(peaksUrl)
        .then((p) => {
          peaks = p;
          render();
        })
        .catch(() => canvas.classList.add("is-flat"));
    }
    /** Markers as [{at: seconds, ...}] (anything else on them comes back in "wave-marker"). */
    function setMarkers(list) {
      markers = (list || []).filter((m) => Number.isFinite(m.at) && m.at >= 0);
      render();
    }

    const handle = { render, seek, setMarkers, markers: () => markers.slice() };
    canvas.mediagenPlayer = handle;
    return handle;
  }

  window.MediagenWave = { loadPeaks, parsePeaks, draw, attachPlayer, clock };
})();
