/* Review links.
 *
 * The team's side (asset and campaign pages, the takes page): a "Share for review" button opens its
 * dialog (_share_button.html), which makes a link (POST /api/shares) and shows its absolute URL to
 * copy; lists of working links (_share_links.html) load from GET /api/shares and revoke with
 * DELETE. These calls go through window.Mediagen.api (session cookie + X-CSRF-Token).
 *
 * The reviewer's side (share.html, /s/<token>, no account): waveforms on the players, the
 * reviewer's name kept in localStorage, comments at the player's time and approve/reject, posted as
 * JSON to the URLs under the token that the page names (no session, so no CSRF token: the server
 * checks the Origin and the JSON content type instead).
 */
(() => {
  "use strict";

  const NAME_KEY = "mediagen.reviewer-name";

  function mediagen() {
    return window.Mediagen;
  }

  const capitalise = (s) => (s ? s[0].toUpperCase() + s.slice(1) : s);

  /* ---------------------------------------------------------------- the team's side */

  function describe(target) {
    const { KINDS } = mediagen();
    if (target.kind) {
      const noun = (KINDS[target.kind] && KINDS[target.kind].noun) || target.kind;
      return { what: `${capitalise(noun)} #${target.id}`, href: `/assets/${target.kind}/${target.id}` };
    }
    if (target.take_group) return { what: `Takes ${target.take_group}`, href: null };
    return { what: "The whole campaign", href: null };
  }

  function linkRow(link) {
    const { el } = mediagen();
    const { what, href } = describe(link.target || {});
    const name = link.label || "Review link";
    const meta = el("span", { class: "muted small" },
      href ? el("a", { href, text: what }) : what, " · until ",
      el("time", { datetime: link.expires_at, "data-local": true, text: link.expires_at }),
      link.created_by_email ? ` · by ${link.created_by_email}` : null);
    return el("li", { class: "share-link", dataset: { shareId: String(link.id) } },
      el("div", { class: "share-link-text" }, el("strong", { text: name }), " ", meta),
      el("button", {
        type: "button", class: "button button-small button-danger-quiet", "data-share-revoke": String(link.id),
        "aria-label": `Revoke ${name} #${link.id}`, text: "Revoke",
      }));
  }

  async function loadList(box) {
    const { $, api, localTimes } = mediagen();
    const rows = $("[data-share-rows]", box);
    const error = $("[data-share-list-error]", box);
    try {
      const page = await api("GET", `/api/shares?${box.dataset.shareList}&active=true&limit=100`);
      rows.replaceChildren(...page.shares.map(linkRow));
      $("[data-share-empty]", box).hidden = page.shares.length > 0;
      error.hidden = true;
      localTimes(rows);
    } catch (err) {
      error.textContent = `Could not load the links: ${err.message}`;
      error.hidden = false;
    } finally {
      $("[data-share-loading]", box).hidden = true;
    }
  }

  function reloadLists() {
    for (const box of mediagen().$$("[data-share-list]")) loadList(box);
  }

  async function revoke(button) {
    const { api, confirmDialog } = mediagen();
    const box = button.closest("[data-share-list]");
    const ok = await confirmDialog("Revoke this review link? Whoever has it can no longer open it.", "Revoke");
    if (!ok) return;
    button.disabled = true;
    try {
      await api("DELETE", `/api/shares/${button.dataset.shareRevoke}`);
      await loadList(box);
    } catch (err) {
      button.disabled = false;
      const error = mediagen().$("[data-share-list-error]", box);
      error.textContent = err.message;
      error.hidden = false;
    }
  }

  function initDialog(dialog) {
    const { $, $$, api, ApiFailure } = mediagen();
    const form = $("[data-share-form]", dialog);
    const alert = $("[data-share-error]", dialog);
    const made = $("[data-share-made]", dialog);
    const url = $("[data-share-url]", dialog);
    const copied = $("[data-share-copied]", dialog);
    const create = $("[data-share-create]", dialog);
    const copyText = copied.textContent;

    function clearErrors() {
      alert.hidden = true;
      for (const slot of $$("[data-error-for]", form)) {
        slot.hidden = true;
        slot.textContent = "";
      }
      for (const c of $$("[aria-invalid]", form)) c.removeAttribute("aria-invalid");
    }

    dialog.reset = () => {
      clearErrors();
      made.hidden = true;
      url.value = "";
      copied.textContent = copyText;
      create.textContent = "Create link";
      create.disabled = false;
    };

    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (create.disabled) return;
      clearErrors();
      const body = { target: JSON.parse(dialog.dataset.shareTarget), expires_in: Number(form.elements.expires_in.value) };
      const label = form.elements.label.value.trim();
      if (label) body.label = label;
      create.disabled = true;
      create.setAttribute("aria-busy", "true");
      try {
        const link = await api("POST", "/api/shares", body);
        url.value = link.url;
        made.hidden = false;
        copied.textContent = copyText;
        create.textContent = "Create another";
        url.focus();
        url.select();
        reloadLists();
      } catch (err) {
        const failure = err instanceof ApiFailure ? err : new ApiFailure(0, { detail: String(err) });
        const placed = [];
        for (const { field, message } of failure.body.errors || []) {
          const slot = $(`[data-error-for="${CSS.escape(field)}"]`, form);
          if (!slot) continue;
          slot.textContent = capitalise(message);
          slot.hidden = false;
          form.elements[field]?.setAttribute("aria-invalid", "true");
          placed.push(field);
        }
        if (!placed.length) {
          alert.textContent = failure.message;
          alert.hidden = false;
        }
      } finally {
        create.disabled = false;
        create.removeAttribute("aria-busy");
      }
    });

    $("[data-share-copy]", dialog).addEventListener("click", async () => {
      let ok = false;
      try {
        await navigator.clipboard.writeText(url.value);
        ok = true;
      } catch (err) {
        url.select();
        ok = Boolean(document.execCommand && document.execCommand("copy"));
      }
      copied.textContent = ok ? "Copied to the clipboard." : "Select the link and copy it.";
    });
    $("[data-share-close]", dialog).addEventListener("click", () => dialog.close());
  }

  function initTeamSide() {
    const { $$ } = mediagen();
    for (const dialog of $$("[data-share-dialog]")) initDialog(dialog);
    for (const button of $$("[data-share-open]")) {
      button.addEventListener("click", () => {
        const dialog = document.getElementById(button.dataset.shareOpen);
        if (!dialog || typeof dialog.showModal !== "function") return;
        dialog.reset();
        dialog.showModal();
      });
    }
    for (const box of $$("[data-share-list]")) {
      if (!("loaded" in box.dataset)) loadList(box);
      box.addEventListener("click", (e) => {
        const button = e.target.closest("[data-share-revoke]");
        if (button) revoke(button);
      });
    }
  }

  /* ---------------------------------------------------------------- the reviewer's side */

  function storedName() {
    try {
      return localStorage.getItem(NAME_KEY) || "";
    } catch (err) {
      return "";
    }
  }

  function keepName(name) {
    try {
      if (name) localStorage.setItem(NAME_KEY, name);
      else localStorage.removeItem(NAME_KEY);
    } catch (err) {
      /* private mode: the name is asked again next time */
    }
  }

  /** A POST under the link's token: JSON both ways; failures carry the status and the body. */
  async function post(url, body) {
    const { ApiFailure } = mediagen();
    let res;
    try {
      res = await fetch(url, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiFailure(0, { detail: "Could not reach the server. Check your connection and try again." });
    }
    let data = null;
    try {
      data = await res.json();
    } catch (err) {
      data = null;
    }
    if (!res.ok) {
      if (res.status === 410) data = { detail: "This review link no longer works: ask for a new one." };
      throw new ApiFailure(res.status, data);
    }
    return data;
  }

  function initReviewer() {
    const { $, $$, el, fmtDuration, localTimes } = mediagen();
    const nameInput = $("#reviewer-name");
    const nameError = $("#reviewer-error");
    nameInput.value = storedName();
    nameInput.addEventListener("input", () => {
      keepName(nameInput.value.trim());
      nameError.hidden = true;
      nameInput.removeAttribute("aria-invalid");
    });

    /** The reviewer's name, or null after pointing at the empty field. */
    function reviewer() {
      const name = nameInput.value.trim();
      if (name) return name;
      nameError.textContent = "Enter your name first: it is shown with what you say.";
      nameError.hidden = false;
      nameInput.setAttribute("aria-invalid", "true");
      nameInput.scrollIntoView({ block: "center" });
      nameInput.focus({ preventScroll: true });
      return null;
    }

    let dead = false; // the link was revoked or expired while the page was open
    function linkDead(failure) {
      if (failure.status !== 410) return;
      dead = true;
      for (const control of $$("[data-share-item] [data-verdict], [data-share-item] form button, [data-share-item] textarea")) {
        control.disabled = true;
      }
    }

    for (const item of $$("[data-share-item]")) {
      const media = $("[data-share-media]", item);
      const canvas = $("canvas[data-share-wave]", item);
      const markers = $("[data-share-markers]", item);
      const known = Number(item.dataset.duration) || 0;
      const duration = () => (media && Number.isFinite(media.duration) && media.duration > 0 ? media.duration : known);
      let player = null;
      if (media && canvas && window.MediagenWave) {
        player = window.MediagenWave.attachPlayer({
          audio: media, canvas, peaksUrl: canvas.dataset.shareWave || null, duration: known,
        });
      }

      function seek(at) {
        if (!media) return;
        if (player) player.seek(at);
        else media.currentTime = at;
        media.play().catch(() => {});
      }

      function mark(at) {
        if (!markers || at == null || !duration()) return;
        const left = Math.min(100, Math.max(0, (at / duration()) * 100));
        const marker = el("span", { class: "share-marker", dataset: { at: String(at) } });
        marker.style.left = `${left}%`; // CSSOM, not a style attribute: the CSP allows no inline styles
        markers.append(marker);
      }

      for (const button of $$("[data-share-seek]", item)) {
        mark(Number(button.dataset.shareSeek));
        button.addEventListener("click", () => seek(Number(button.dataset.shareSeek)));
      }
      if (media) {
        media.addEventListener("loadedmetadata", () => {
          // Known only now for a file whose duration the server did not store.
          if (markers && !known) {
            markers.replaceChildren();
            for (const b of $$("[data-share-seek]", item)) mark(Number(b.dataset.shareSeek));
          }
        });
      }
      const clock = $("[data-comment-clock]", item);
      if (media && clock) {
        media.addEventListener("timeupdate", () => {
          clock.textContent = fmtDuration(media.currentTime);
        });
      }

      /* approve / reject */
      const badge = $("[data-share-status]", item);
      const note = $("[data-verdict-note]", item);
      const verdictError = $("[data-verdict-error]", item);
      for (const button of $$("[data-verdict]", item)) {
        button.addEventListener("click", async () => {
          const name = reviewer();
          if (!name) return;
          verdictError.hidden = true;
          button.disabled = true;
          try {
            const res = await post(item.dataset.reviewUrl, { name, status: button.dataset.verdict });
            const label = res.review_status === "approved" ? "Approved" : "Rejected";
            badge.className = `review review-${res.review_status}`;
            badge.textContent = label;
            note.textContent = `${label} by ${name}.`;
            for (const b of $$("[data-verdict]", item)) {
              b.setAttribute("aria-pressed", b.dataset.verdict === res.review_status ? "true" : "false");
            }
          } catch (err) {
            verdictError.textContent = err.message;
            verdictError.hidden = false;
            linkDead(err);
          } finally {
            if (!dead) button.disabled = false;
          }
        });
      }

      /* comments */
      const form = $("[data-comment-form]", item);
      if (!form) continue;
      const list = $("[data-comment-list]", item);
      const count = $("[data-comment-count]", item);
      const commentError = $("[data-comment-error]", form);
      const text = form.elements.text;
      const timed = $("[data-comment-timed]", form);
      text.addEventListener("input", () => {
        commentError.hidden = true;
        text.removeAttribute("aria-invalid");
      });
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        const name = reviewer();
        if (!name) return;
        commentError.hidden = true;
        const body = { name, text: text.value.trim() };
        if (!body.text) {
          commentError.textContent = "Write something first.";
          commentError.hidden = false;
          text.setAttribute("aria-invalid", "true");
          text.focus();
          return;
        }
        if (media && timed && timed.checked) {
          const end = duration() || media.currentTime;
          body.at = Math.floor(Math.min(media.currentTime, end) * 100) / 100;
        }
        const submit = $("button[type=submit]", form);
        submit.disabled = true;
        try {
          const c = await post(item.dataset.commentsUrl, body);
          const at = c.at ?? body.at ?? null;
          const head = el("p", { class: "share-comment-head" });
          if (at != null) {
            const seekButton = el("button", {
              type: "button", class: "share-at", "data-share-seek": String(at),
              "aria-label": `Play from ${fmtDuration(at)}`, text: fmtDuration(at),
            });
            seekButton.addEventListener("click", () => seek(at));
            head.append(seekButton, " ");
            mark(at);
          }
          head.append(el("strong", { text: c.author_name || name }));
          if (c.created_at) {
            head.append(" ", el("time", { class: "muted small", datetime: c.created_at, "data-local": true, text: c.created_at }));
          }
          const li = el("li", { class: "share-comment" }, head, el("p", { class: "share-comment-text", text: c.text || body.text }));
          list.append(li);
          localTimes(li);
          count.textContent = `(${list.children.length})`;
          text.value = "";
        } catch (err) {
          const errors = (err.body && err.body.errors) || [];
          const onName = errors.find((x) => x.field === "name");
          if (onName) {
            nameError.textContent = capitalise(onName.message);
            nameError.hidden = false;
            nameInput.setAttribute("aria-invalid", "true");
          }
          const other = errors.filter((x) => x.field !== "name");
          commentError.textContent = other.length ? other.map((x) => `${x.field}: ${x.message}`).join("; ") : err.message;
          commentError.hidden = Boolean(onName) && !other.length;
          linkDead(err);
        } finally {
          if (!dead) submit.disabled = false;
        }
      });
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (!mediagen()) return;
    initTeamSide();
    if (document.body.classList.contains("page-share") && mediagen().$("#reviewer-name")) initReviewer();
  });
})();
