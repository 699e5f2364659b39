/* Takes: a take group's compare page (templates/takes.html).
 *
 * Tracks share ONE transport: one <audio>, one play/pause, one seek bar; "Listen" on another take
 * switches the source and carries on from the same position, so A and B are heard at the same bar.
 * Videos play, pause and seek together (each its own <video>, muted but for the take whose sound is
 * chosen; followers are pulled back when they drift). Images sit in a grid.
 *
 * Every take shows its seed, status and review status; "Pick this one" asks the API to approve it
 * and reject the others (POST /api/takes/{group}/winner), "Undo" takes that back (DELETE). While a
 * take is still running the group is read again every 2 s (GET /api/takes/{group}).
 */
(() => {
  "use strict";

  const POLL_MS = 2000;
  const DRIFT_S = 0.25; // a following video further off than this is put back in step
  const REVIEW_LABELS = { draft: "Draft", in_review: "In review", approved: "Approved", rejected: "Rejected" };

  function initTakes() {
    const M = window.Mediagen;
    const root = M && M.$("#takes");
    if (!root) return;
    const { $, $$, api, el, RUNNING } = M;
    const clock = window.MediagenWave ? window.MediagenWave.clock : M.fmtDuration;
    const data = JSON.parse($("#takes-data").textContent);
    const { kind, take_group: group } = data;
    const base = `/api/takes/${encodeURIComponent(group)}`;
    let takes = data.takes;
    const letters = new Map(takes.map((t) => [t.id, t.letter]));
    const byId = (id) => takes.find((t) => t.id === id);
    const rowOf = (id) => $(`li.take[data-id="${id}"]`, root);
    const errorBox = $("#takes-error");
    const playButton = $("#transport-play");
    const seekBar = $("#transport-seek");
    const timeText = $("#transport-time");
    const nowText = $("#transport-now");
    const capitalise = (s) => (s ? s[0].toUpperCase() + s.slice(1) : s);

    function showError(err) {
      errorBox.textContent = err ? err.message || String(err) : "";
      errorBox.hidden = !err;
    }

    /* ------------------------------------------------------------ the shared transport */

    const audio = $("#takes-audio");
    const videos = new Map(); // take id -> its <video>
    const waves = new Map(); // take id -> {canvas, peaks}
    let current = null; // the take whose sound is heard
    let frame = 0;

    /** The element the transport reads: the shared <audio>, or the video whose sound is on. */
    const master = () => (audio || videos.get(current) || videos.values().next().value || null);
    const length = () => {
      if (audio) {
        const known = byId(current)?.duration;
        return Number.isFinite(audio.duration) && audio.duration > 0 ? audio.duration : known || 0;
      }
      return Math.max(0, ...Array.from(videos.values(), (v) => (Number.isFinite(v.duration) ? v.duration : 0)));
    };
    const position = () => master()?.currentTime || 0;
    const playing = () => {
      const m = master();
      return Boolean(m && !m.paused && !m.ended);
    };

    function drawWaves() {
      const at = position();
      for (const [id, w] of waves) {
        const d = byId(id)?.duration || 0;
        window.MediagenWave.draw(w.canvas, w.peaks, d ? Math.min(1, at / d) : 0, {
          bar: 2, gap: 1, playhead: id === current,
        });
      }
    }

    function paint() {
      if (!playButton) return;
      const d = length();
      const at = position();
      seekBar.max = d ? d.toFixed(2) : "0";
      if (document.activeElement !== seekBar) seekBar.value = at.toFixed(2);
      seekBar.setAttribute("aria-valuetext", `${clock(at)} of ${clock(d)}`);
      timeText.textContent = `${clock(at)} / ${clock(d)}`;
      const on = playing();
      playButton.setAttribute("aria-pressed", on ? "true" : "false");
      $("[data-label]", playButton).textContent = on ? "Pause" : "Play";
      $(".transport-icon", playButton).textContent = on ? "❚❚" : "▶";
      nowText.textContent = current != null ? `Hearing take ${letters.get(current)}` : "";
      for (const row of $$("li.take", root)) {
        const id = Number(row.dataset.id);
        row.classList.toggle("is-current", id === current);
        const listen = $("[data-listen]", row);
        if (listen) listen.setAttribute("aria-pressed", id === current ? "true" : "false");
      }
      if (waves.size) drawWaves();
    }

    function loop() {
      paint();
      frame = playing() ? requestAnimationFrame(loop) : 0;
    }

    function started() {
      if (!frame) frame = requestAnimationFrame(loop);
    }

    /** Hear take `id`; a track switches source at the same position, still playing if it was. */
    function listen(id) {
      const take = byId(id);
      if (!take || take.status !== "completed") return;
      if (audio) {
        if (current === id) return;
        const at = audio.currentTime || 0;
        const resume = playing();
        current = id;
        audio.src = take.data_url;
        // Before the new file's metadata this sets where it will start; once known, clamp to its length.
        audio.currentTime = at;
        audio.addEventListener("loadedmetadata", () => {
          const end = Number.isFinite(audio.duration) ? audio.duration : at;
          if (Math.abs(audio.currentTime - Math.min(at, end)) > 0.05) audio.currentTime = Math.min(at, end);
          paint();
        }, { once: true });
        if (resume) audio.play().catch(showError);
      } else {
        current = id;
        for (const [vid, video] of videos) video.muted = vid !== id;
      }
      paint();
    }

    function togglePlay() {
      showError(null);
      if (audio) {
        if (current == null) return;
        if (audio.paused) audio.play().catch(showError);
        else audio.pause();
        return;
      }
      if (playing()) {
        for (const v of videos.values()) v.pause();
      } else {
        const at = position();
        for (const v of videos.values()) {
          if (Math.abs(v.currentTime - at) > DRIFT_S) v.currentTime = Math.min(at, v.duration || at);
          v.play().catch(showError);
        }
      }
    }

    function seek(t) {
      const at = Math.max(0, Math.min(length(), t));
      if (audio) audio.currentTime = at;
      for (const v of videos.values()) v.currentTime = Math.min(at, Number.isFinite(v.duration) ? v.duration : at);
      paint();
    }

    /** Videos that wander (buffering, a dropped frame) are put back beside the one being heard. */
    function keepInStep() {
      const m = master();
      if (!m || audio) return;
      for (const v of videos.values()) {
        if (v === m || v.ended || m.ended) continue;
        if (Math.abs(v.currentTime - m.currentTime) > DRIFT_S) v.currentTime = m.currentTime;
        if (v.paused !== m.paused) (m.paused ? v.pause() : v.play().catch(() => {}));
      }
    }

    if (playButton) {
      playButton.addEventListener("click", togglePlay);
      seekBar.addEventListener("input", () => seek(Number(seekBar.value)));
      root.addEventListener("keydown", (e) => {
        if (e.key !== " " || e.target.closest("button, input, a, select, textarea, canvas")) return;
        e.preventDefault();
        togglePlay();
      });
    }
    if (audio) {
      for (const ev of ["play", "playing"]) audio.addEventListener(ev, started);
      for (const ev of ["pause", "ended", "seeked", "timeupdate", "loadedmetadata", "durationchange"]) {
        audio.addEventListener(ev, paint);
      }
    }

    /* ------------------------------------------------------------ each take's media */

    function buildMedia(take) {
      const row = rowOf(take.id);
      const slot = row && $("[data-media]", row);
      if (!slot || slot.dataset.built) return;
      slot.dataset.built = "1";
      slot.replaceChildren();
      const name = `take ${letters.get(take.id)}`;
      if (kind === "audio") {
        const canvas = el("canvas", { class: "take-wave", "aria-hidden": "true" });
        slot.append(canvas);
        const w = { canvas, peaks: null };
        waves.set(take.id, w);
        // A click on a take's wave hears that take from there.
        canvas.addEventListener("click", (e) => {
          const rect = canvas.getBoundingClientRect();
          const at = ((e.clientX - rect.left) / rect.width) * (take.duration || 0);
          listen(take.id);
          seek(at);
        });
        if (take.waveform_url) {
          window.MediagenWave.loadPeaks(take.waveform_url).then((peaks) => {
            w.peaks = peaks;
            paint();
          }).catch(() => {});
        }
      } else if (kind === "video") {
        const video = el("video", {
          preload: "auto", playsinline: true, src: take.data_url, poster: take.poster_url || take.thumbnail_url,
          width: take.width, height: take.height, "aria-label": `Video of ${name}`,
        });
        video.muted = true;
        videos.set(take.id, video);
        for (const ev of ["loadedmetadata", "pause", "seeked", "ended"]) video.addEventListener(ev, paint);
        video.addEventListener("play", started);
        video.addEventListener("timeupdate", () => {
          if (video === master()) keepInStep();
        });
        slot.append(video);
      } else {
        slot.append(el("a", { href: take.data_url, class: "image-link", title: `Open ${name} full size` },
          el("img", { src: take.thumbnail_url || take.data_url, alt: `${capitalise(name)}: ${take.prompt}`,
            width: take.width, height: take.height, loading: "lazy" })));
      }
      const listenButton = $("[data-listen]", row);
      if (listenButton) listenButton.disabled = false;
      if (current == null && kind !== "image") listen(take.id);
      if (playButton) {
        playButton.disabled = false;
        seekBar.disabled = false;
      }
      paint();
    }

    /* ------------------------------------------------------------ status, review, winner */

    function render() {
      for (const take of takes) {
        const row = rowOf(take.id);
        if (!row) continue;
        if (row.dataset.status !== take.status) {
          row.dataset.status = take.status;
          const badge = $("[data-status-badge] .status", row);
          badge.className = `status status-${take.status}`;
          badge.textContent = capitalise(take.status);
          const slot = $("[data-media]", row);
          if (take.status !== "completed" && !RUNNING.has(take.status)) {
            slot.replaceChildren(el("span", { class: `card-placeholder card-placeholder-${take.status}`,
              text: take.error ? `${capitalise(take.status)}: ${take.error}` : capitalise(take.status) }));
          }
        }
        if (take.status === "completed") buildMedia(take);
        const review = $("[data-review]", row);
        review.className = `review review-${take.review_status}`;
        review.textContent = REVIEW_LABELS[take.review_status] || take.review_status;
        row.classList.toggle("is-winner", take.review_status === "approved");
        $("[data-seed]", row).textContent = take.seed ?? "—";
        const lengthCell = $("[data-duration]", row);
        if (lengthCell && take.duration != null) lengthCell.textContent = M.fmtDuration(take.duration);
        const pick = $("[data-pick]", row);
        pick.disabled = take.status !== "completed" || take.review_status === "approved";
        $("[data-pick-label]", pick).textContent = take.review_status === "approved" ? "The winner" : "Pick this one";
      }
      const approved = takes.filter((t) => t.review_status === "approved");
      const winner = approved.length === 1 ? approved[0] : null;
      $("#takes-winner-text").textContent = winner
        ? `Take ${letters.get(winner.id)} is the winner.` : "No winner picked yet.";
      $("#takes-undo").hidden = !takes.some((t) => t.review_status === "approved" || t.review_status === "rejected");
    }

    /** The group's takes from an API answer (a list, or the group object with its takes). */
    function takesOf(res) {
      if (Array.isArray(res)) return res;
      return res.takes || res.items || res[data.path] || [];
    }

    function update(res) {
      const fresh = takesOf(res);
      // Only the takes this page shows: a regenerate added meanwhile shows on the next visit.
      takes = takes.map((t) => fresh.find((f) => f.id === t.id) || t);
      render();
    }

    let failures = 0;
    async function poll() {
      try {
        update(await api("GET", base));
        failures = 0;
      } catch (err) {
        if (err.status === 404) return;
        failures++;
      }
      if (takes.some((t) => RUNNING.has(t.status))) {
        setTimeout(poll, failures ? Math.min(10000, POLL_MS * 2 ** failures) : POLL_MS);
      }
    }

    async function act(button, fn) {
      showError(null);
      button.disabled = true;
      try {
        // An answer without the group (204) is followed by reading it.
        update((await fn()) ?? (await api("GET", base)));
      } catch (err) {
        showError(err);
        render();
      } finally {
        if (button.id === "takes-undo") button.disabled = false;
      }
    }

    for (const row of $$("li.take", root)) {
      const id = Number(row.dataset.id);
      $("[data-pick]", row).addEventListener("click", (e) => act(e.currentTarget, () => api("POST", `${base}/winner`, { id })));
      const listenButton = $("[data-listen]", row);
      if (listenButton) {
        listenButton.addEventListener("click", () => {
          showError(null);
          listen(id);
        });
      }
    }
    $("#takes-undo").addEventListener("click", (e) => act(e.currentTarget, () => api("DELETE", `${base}/winner`)));
    if (window.ResizeObserver && kind === "audio") new ResizeObserver(() => drawWaves()).observe(root);

    render();
    if (takes.some((t) => RUNNING.has(t.status))) setTimeout(poll, POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", initTakes);
})();
