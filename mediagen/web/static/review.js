/* Review and organise: stars, ratings, review status, tags, notes and re-filing on an asset's page;
 * time-coded comments with markers on the waveform and under the video; and, in galleries, the
 * filter pickers that follow the chosen client, a star on every card, and bulk work on a selection
 * (approve, reject, star, tag, move, download as a zip, delete).
 *
 * Everything goes through the JSON API (PATCH /api/{path}/{id}, /comments, /history, POST
 * /api/bulk); the pages render the same state on the server, so this only keeps it live.
 */
(() => {
  "use strict";

  const { $, $$, api, el, apiPath, fmtDuration, confirmDialog, enhanceCards, narrowPickers } =
    window.Mediagen;

  const REVIEW_LABELS = { draft: "Draft", in_review: "In review", approved: "Approved", rejected: "Rejected" };
  // How the history reads a move to each status: "Approved by ana@…, 2 h ago".
  const HISTORY_VERBS = {
    draft: "Back to draft", in_review: "Sent for review", approved: "Approved", rejected: "Rejected",
  };
  const capitalise = (s) => (s ? s[0].toUpperCase() + s.slice(1) : s);

  /** "just now", "5 min ago", "2 h ago", "3 d ago": the same words as the pages' `ago` filter. */
  function timeAgo(iso, now = Date.now()) {
    const t = Date.parse(iso);
    if (Number.isNaN(t)) return "—";
    const s = (now - t) / 1000;
    if (s >= 86400) return `${Math.floor(s / 86400)} d ago`;
    if (s >= 3600) return `${Math.floor(s / 3600)} h ago`;
    if (s >= 60) return `${Math.floor(s / 60)} min ago`;
    return "just now";
  }

  function refreshAgo(root = document) {
    for (const t of $$("time[data-ago]", root)) {
      t.textContent = timeAgo(t.getAttribute("datetime"));
      t.title = new Date(t.getAttribute("datetime")).toLocaleString();
    }
  }

  /** An API failure as one readable line: "tags: at most 20 tags; rating: must be 1–5". */
  function describe(err) {
    const errors = (err && err.body && err.body.errors) || [];
    if (errors.length) return errors.map((e) => `${e.field}: ${e.message}`).join("; ");
    return (err && err.message) || "Something went wrong.";
  }

  function show(slot, text) {
    if (!slot) return;
    slot.textContent = text ? capitalise(text) : "";
    slot.hidden = !text;
  }

  /* ---------------------------------------------------------------- pickers */


  /* ---------------------------------------------------------------- gallery cards */

  const itemOf = (card) => ({ kind: card.dataset.kind, id: Number(card.dataset.id) });

  function setStar(button, on) {
    button.setAttribute("aria-pressed", on ? "true" : "false");
    button.title = on ? "Starred" : "Star";
    const mark = button.querySelector("[aria-hidden]");
    if (mark) mark.textContent = on ? "★" : "☆";
    button.closest(".card")?.classList.toggle("is-starred", on);
  }

  function galleryMessage(text) {
    const box = $("#gallery-message");
    if (box) show(box, text);
  }

  /** A card's star (delegated: cards are replaced as jobs finish and after bulk work). */
  function initCardStars() {
    document.addEventListener("click", async (e) => {
      const button = e.target.closest(".card [data-star]");
      if (!button) return;
      e.preventDefault();
      const { kind, id } = itemOf(button.closest(".card"));
      const on = button.getAttribute("aria-pressed") !== "true";
      setStar(button, on);
      button.disabled = true;
      try {
        const item = await api("PATCH", `/api/${apiPath(kind)}/${id}`, { favorite: on });
        setStar(button, Boolean(item && item.favorite));
        galleryMessage("");
      } catch (err) {
        setStar(button, !on);
        galleryMessage(`Could not star it: ${describe(err)}`);
      } finally {
        button.disabled = false;
      }
    });
  }

  /** The card now on the page for an item: live.js may have swapped the one we held meanwhile. */
  const currentCard = ({ kind, id }) => document.querySelector(`li.card[data-kind="${kind}"][data-id="${id}"]`);

  /** Replace cards with the server's fresh rendering (the one card template); gone ones go. */
  async function refreshCards(items) {
    for (const item of items) {
      try {
        const res = await fetch(`/assets/${item.kind}/${item.id}/card`, { credentials: "same-origin" });
        if (res.status === 404) {
          currentCard(item)?.remove();
          continue;
        }
        if (!res.ok || res.redirected) continue;
        const tpl = document.createElement("template");
        tpl.innerHTML = (await res.text()).trim();
        const fresh = tpl.content.firstElementChild;
        const card = currentCard(item); // looked up after the awaits, never a stale reference
        if (card && fresh && fresh.matches("li.card")) {
          card.replaceWith(fresh);
          enhanceCards(fresh);
        }
      } catch (err) {
        /* the card keeps its old look; a reload shows the truth */
      }
    }
  }

  /* ---------------------------------------------------------------- bulk work */

  const BULK_DONE = {
    approve: "Approved", reject: "Rejected", in_review: "Sent for review", draft: "Moved back to draft",
    favorite: "Starred", unfavorite: "Unstarred", tag: "Tagged", untag: "Untagged", move: "Moved", delete: "Deleted",
  };

  function initBulk() {
    const bar = $("#bulk-bar");
    const grid = $("#gallery-grid");
    if (!bar || !grid) return;
    const count = $("#bulk-count");
    const status = $("#bulk-status");
    const download = $("#bulk-download");
    const selectAll = $("#select-all");
    const noun = (n) => {
      const kind = grid.querySelector(".card")?.dataset.kind;
      const word = (window.Mediagen.KINDS[kind] || {}).noun || "item";
      return `${n} ${word}${n === 1 ? "" : "s"}`;
    };

    const boxes = () => $$("input[data-select]", grid);
    const chosen = () => boxes().filter((b) => b.checked);
    const chosenCards = () => chosen().map((b) => b.closest(".card"));
    const items = () => chosenCards().map(itemOf);

    // After bulk work the bar stays a moment to say what happened, even with nothing selected, and
    // even as live updates swap cards in (each swap runs update()).
    let lingering = 0;

    function update() {
      const picked = chosen();
      const n = picked.length;
      bar.hidden = n === 0 && !lingering;
      count.textContent = `${n} selected`;
      download.href = `/api/downloads?items=${picked.map((b) => b.value).join(",")}`;
      for (const card of $$(".card", grid)) {
        card.classList.toggle("is-selected", Boolean($("input[data-select]:checked", card)));
      }
      const all = boxes();
      selectAll.textContent = all.length && n === all.length ? "Select none" : "Select all on this page";
    }

    function clear() {
      for (const b of boxes()) b.checked = false;
      clearTimeout(lingering);
      lingering = 0;
      update();
    }

    grid.addEventListener("change", (e) => {
      if (e.target.matches("input[data-select]")) update();
    });
    // A new card (a finished job, a live update) arrives unselected; keep the count honest.
    new MutationObserver(update).observe(grid, { childList: true });
    selectAll.addEventListener("click", () => {
      const all = boxes();
      const on = !(all.length && chosen().length === all.length);
      for (const b of all) b.checked = on;
      update();
    });
    $("[data-bulk-clear]", bar).addEventListener("click", clear);
    document.addEventListener("keydown", (e) => {
      if (e.key === "Escape" && !bar.hidden && !document.querySelector("dialog[open]")) clear();
    });

    /** POST /api/bulk for the selection; then the cards show what changed. */
    async function run(action, extra = {}) {
      const doneItems = items(); // kind and id, not the nodes: live.js may swap the cards meanwhile
      if (!doneItems.length) return false;
      const body = { items: doneItems, action, ...extra };
      show(status, "Working…");
      bar.setAttribute("aria-busy", "true");
      try {
        await api("POST", "/api/bulk", body);
      } catch (err) {
        bar.removeAttribute("aria-busy");
        show(status, describe(err));
        throw err;
      }
      bar.removeAttribute("aria-busy");
      const done = `${BULK_DONE[action] || capitalise(action)} ${noun(doneItems.length)}.`;
      if (action === "delete") {
        for (const item of doneItems) currentCard(item)?.remove();
        if (!$(".card", grid)) window.location.reload();
      } else {
        await refreshCards(doneItems);
        // The work is done, so its selection ends, whichever script last swapped the card in.
        for (const item of doneItems) {
          const box = currentCard(item)?.querySelector("input[data-select]");
          if (box) box.checked = false;
        }
      }
      clearTimeout(lingering);
      lingering = setTimeout(() => {
        lingering = 0;
        update();
      }, 4000);
      update();
      show(status, done);
      return true;
    }

    for (const button of $$("[data-bulk]", bar)) {
      button.addEventListener("click", async () => {
        const action = button.dataset.bulk;
        if (action === "delete") {
          const n = chosen().length;
          const ok = await confirmDialog(
            `Delete ${noun(n)}? Their files are removed too; this cannot be undone.`, `Delete ${n}`);
          if (!ok) return;
        }
        button.disabled = true;
        try {
          await run(action);
        } catch (err) {
          /* shown in the bar */
        } finally {
          button.disabled = false;
        }
      });
    }

    for (const opener of $$("[data-bulk-dialog]", bar)) {
      const dialog = $(`#${opener.dataset.bulkDialog}`);
      if (!dialog || typeof dialog.showModal !== "function") continue;
      const form = $("form", dialog);
      opener.addEventListener("click", () => {
        for (const slot of $$(".field-error, [data-form-error]", form)) show(slot, "");
        dialog.showModal();
        $("input:not([type=radio]), select", form)?.focus();
      });
      $("[data-close]", dialog).addEventListener("click", () => dialog.close());
      form.addEventListener("submit", async (e) => {
        e.preventDefault();
        const kind = form.dataset.bulkForm;
        let action = kind;
        const extra = {};
        if (kind === "tag") {
          const tag = form.elements.tag.value.trim();
          if (!tag) {
            show($("#bulk-tag-error"), "type the tag to add or remove");
            form.elements.tag.focus();
            return;
          }
          action = form.elements.mode.value;
          extra.tag = tag;
        } else {
          for (const name of ["client_id", "campaign_id", "brief_id", "collection"]) {
            const v = form.elements[name].value.trim();
            if (v) extra[name] = v;
          }
          if (!Object.keys(extra).length) {
            show($("[data-form-error]", form), "Choose where to move them first.");
            return;
          }
        }
        try {
          await run(action, extra);
          dialog.close();
          form.reset();
        } catch (err) {
          const errors = (err.body && err.body.errors) || [];
          const slot = (field) => (kind === "tag" ? $("#bulk-tag-error") : $(`#m-${field.replace("_id", "")}-error`));
          let placed = false;
          for (const { field, message } of errors) {
            const s = slot(field);
            if (s) {
              show(s, message);
              placed = true;
            }
          }
          if (!placed) show($("[data-form-error]", form) || $("#bulk-tag-error"), describe(err));
        }
      });
    }

    narrowPickers($("#m-client"), $("#m-campaign"), $("#m-brief"));
    update();
  }

  function initGalleryFilters() {
    const form = $("#gallery-filters");
    if (!form) return;
    narrowPickers($("#f-client", form), $("#f-campaign", form), $("#f-brief", form));
  }

  /* ---------------------------------------------------------------- asset page: review */

  function initReview() {
    const panel = $("#review");
    if (!panel) return;
    const url = `/api/${panel.dataset.path}/${panel.dataset.id}`;
    const formError = $("#review-error");
    const saved = $("#review-saved");
    const history = $("#review-history");
    const slots = {
      title: $("#review-title-error"), notes: $("#review-notes-error"), tags: $("#review-tags-error"),
      rating: $("#review-rating-error"), review_status: $("#review-status-error"), favorite: $("#review-star-error"),
      client_id: $("#client_id-error"), campaign_id: $("#campaign_id-error"), brief_id: $("#brief_id-error"),
      collection: $("#collection-error"),
      views: $("#review-views-error"), clicks: $("#review-clicks-error"), conversions: $("#review-conversions-error"),
    };

    function clearErrors() {
      show(formError, "");
      for (const s of Object.values(slots)) show(s, "");
      for (const c of $$("[aria-invalid]", panel)) c.removeAttribute("aria-invalid");
    }

    function showErrors(err) {
      const unplaced = [];
      for (const { field, message } of (err.body && err.body.errors) || []) {
        const slot = slots[String(field).split(/[.[]/)[0]];
        if (slot) show(slot, message);
        else unplaced.push(`${field}: ${message}`);
      }
      if (unplaced.length || !((err.body && err.body.errors) || []).length) {
        show(formError, unplaced.length ? unplaced.join("; ") : err.message);
      }
    }

    /** PATCH some fields; the answer (the item) redraws the panel. */
    async function patch(fields, note) {
      clearErrors();
      show(saved, "Saving…");
      try {
        const item = await api("PATCH", url, fields);
        apply(item);
        show(saved, note || "Saved.");
        if ("review_status" in fields) loadHistory();
        return item;
      } catch (err) {
        show(saved, "");
        showErrors(err);
        throw err;
      }
    }

    /* star */
    const star = $("#review-star");
    star.addEventListener("click", () => {
      const on = star.getAttribute("aria-pressed") !== "true";
      patch({ favorite: on }, on ? "Starred." : "Unstarred.").catch(() => {});
    });

    /* rating */
    const ratings = $$('input[name="rating"]', panel);
    function paintRating(value) {
      for (const input of ratings) {
        input.checked = Number(input.value) === value;
        $(`label[for="${input.id}"]`, panel).classList.toggle("is-on", Number(input.value) <= (value || 0));
      }
      $("#rating-clear").hidden = !value;
    }
    for (const input of ratings) {
      input.addEventListener("change", () => {
        patch({ rating: Number(input.value) }, `Rated ${input.value} of 5.`).catch(() => {});
      });
    }
    $("#rating-clear").addEventListener("click", () => patch({ rating: null }, "Rating cleared.").catch(() => {}));

    /* review status */
    for (const input of $$('input[name="review_status"]', panel)) {
      input.addEventListener("change", () => {
        patch({ review_status: input.value }, `${REVIEW_LABELS[input.value]}.`).catch(() => {});
      });
    }

    /* title and notes */
    const form = $("#review-form");
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const title = form.elements.title.value.trim();
      const notes = form.elements.notes.value.trim();
      patch({ title: title || null, notes: notes || null }).catch(() => {});
    });

    /* tags: each added or removed tag is saved at once */
    const tagList = $("#tag-list");
    const tagInput = $("#tag-input");
    const tags = () => $$("li[data-tag]", tagList).map((li) => li.dataset.tag);
    function paintTags(list) {
      tagList.replaceChildren(...list.map((t) => el("li", { class: "tag tag-edit", dataset: { tag: t } },
        el("span", { text: t }),
        el("button", { type: "button", class: "tag-remove", "aria-label": `Remove tag ${t}`, dataset: { removeTag: t } }, "×"))));
      $("#tags-empty").hidden = list.length > 0;
    }
    $("#tag-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const added = tagInput.value.split(",").map((t) => t.trim()).filter(Boolean);
      if (!added.length) return;
      const next = [...tags()];
      for (const t of added) if (!next.includes(t)) next.push(t);
      patch({ tags: next }, `Tagged ${added.join(", ")}.`).then(() => {
        tagInput.value = "";
        tagInput.focus();
      }).catch(() => tagInput.setAttribute("aria-invalid", "true"));
    });
    tagList.addEventListener("click", (e) => {
      const b = e.target.closest("[data-remove-tag]");
      if (!b) return;
      const gone = b.dataset.removeTag;
      patch({ tags: tags().filter((t) => t !== gone) }, `Removed tag ${gone}.`)
        .then(() => tagInput.focus()).catch(() => {});
    });

    /* campaign performance: whole numbers ≥ 0, an empty box clears the figure */
    const perfForm = $("#performance-form");
    const FIGURES = ["views", "clicks", "conversions"];
    if (perfForm) {
      perfForm.addEventListener("submit", (e) => {
        e.preventDefault();
        const fields = {};
        for (const name of FIGURES) {
          const v = perfForm.elements[name].value.trim();
          fields[name] = v === "" ? null : Number(v);
        }
        patch(fields, "Figures saved.").catch(() => {});
      });
    }
    function paintFigures(item) {
      if (!perfForm) return;
      for (const name of FIGURES) {
        const input = perfForm.elements[name];
        if (document.activeElement !== input) input.value = item[name] == null ? "" : String(item[name]);
      }
      $("#perf-ctr").textContent = item.ctr == null ? "—" : `${(item.ctr * 100).toFixed(2)}%`;
    }

    /* re-filing */
    const refile = $("#refile-form");
    if (refile) {
      narrowPickers($("#client_id", refile), $("#campaign_id", refile), $("#brief_id", refile));
      refile.addEventListener("submit", (e) => {
        e.preventDefault();
        const fields = {};
        for (const name of ["client_id", "campaign_id", "brief_id", "collection"]) {
          const v = refile.elements[name].value.trim();
          fields[name] = v || null;
        }
        patch(fields, "Moved.").then(() => window.location.reload()).catch(() => {});
      });
    }

    function apply(item) {
      if (!item) return;
      const on = Boolean(item.favorite);
      star.setAttribute("aria-pressed", on ? "true" : "false");
      $("[data-star-label]", star).textContent = on ? "Starred" : "Star";
      $("[aria-hidden]", star).textContent = on ? "★" : "☆";
      paintRating(item.rating || null);
      for (const input of $$('input[name="review_status"]', panel)) input.checked = input.value === item.review_status;
      const badge = $("#review-badge");
      if (badge) {
        badge.className = `review review-${item.review_status}`;
        badge.textContent = REVIEW_LABELS[item.review_status] || item.review_status;
      }
      if (document.activeElement !== form.elements.title) form.elements.title.value = item.title || "";
      if (document.activeElement !== form.elements.notes) form.elements.notes.value = item.notes || "";
      paintTags(item.tags || []);
      paintFigures(item);
    }

    async function loadHistory() {
      try {
        const data = await api("GET", `${url}/history`);
        paintHistory(historyEntries(data));
      } catch (err) {
        /* the server-rendered list stays */
      }
    }

    function paintHistory(entries) {
      history.replaceChildren(...entries.map((h) => el("li", { class: "history-entry" },
        el("span", { text: `${HISTORY_VERBS[h.to] || capitalise(h.to)} by ${h.by}, ` }),
        el("time", { datetime: h.at, "data-ago": true, text: timeAgo(h.at) }))));
      $("#history-empty").hidden = entries.length > 0;
      refreshAgo(history);
    }

    refreshAgo(panel);
    setInterval(() => refreshAgo(panel), 60_000);
  }

  /** History entries from the API in one shape: {to, by, at}, newest first. */
  function historyEntries(data) {
    const list = Array.isArray(data) ? data : (data && (data.history || data.events || data.items)) || [];
    return list.map((h) => ({
      to: h.to_status || h.to || h.review_status,
      by: h.actor || h.actor_name || h.actor_email || h.by || "someone",
      at: h.at || h.created_at,
    })).sort((a, b) => Date.parse(b.at) - Date.parse(a.at));
  }

  /* ---------------------------------------------------------------- asset page: comments */

  function initComments() {
    const panel = $("#comments");
    if (!panel) return;
    const url = `/api/${panel.dataset.path}/${panel.dataset.id}/comments`;
    const timed = panel.dataset.timed === "true";
    const list = $("#comment-list");
    const form = $("#comment-form");
    const text = $("#comment-text");
    const error = $("#comment-error");
    const atBox = $("#comment-timed");
    const atLabel = $("#comment-at");
    const player = $("#player");
    let comments = readComments();

    const media = () => $("#player audio, #player video");

    function readComments() {
      try {
        return JSON.parse($("#comments-data")?.textContent || "[]");
      } catch (err) {
        return [];
      }
    }

    function commentsOf(data) {
      return Array.isArray(data) ? data : (data && (data.comments || data.items)) || [];
    }

    /* The player's position, for the next comment. */
    function position() {
      const m = media();
      return m && Number.isFinite(m.currentTime) ? m.currentTime : 0;
    }
    function paintPosition() {
      if (atLabel) atLabel.textContent = fmtDuration(position());
    }
    if (timed && player) {
      for (const ev of ["timeupdate", "seeked", "loadedmetadata"]) player.addEventListener(ev, paintPosition, true);
    }

    function seekTo(at, id) {
      const m = media();
      if (m && Number.isFinite(at)) {
        m.currentTime = at;
        paintPosition();
      }
      highlight(id);
    }

    function highlight(id) {
      for (const li of $$("li[data-comment-id]", list)) {
        li.classList.toggle("is-current", String(li.dataset.commentId) === String(id));
      }
    }

    function row(c) {
      const li = el("li", { class: "comment", dataset: { commentId: c.id, at: c.at ?? "" } });
      const head = el("p", { class: "comment-head" });
      if (c.at != null) {
        head.append(el("button", {
          type: "button", class: "comment-at", "aria-label": `Play from ${fmtDuration(c.at)}`,
          dataset: { seek: c.at },
        }, fmtDuration(c.at)));
      }
      head.append(el("span", { class: "comment-author", text: c.author || c.author_name || "someone" }), " ");
      if (c.created_at) {
        head.append(el("time", { datetime: c.created_at, "data-ago": true, class: "muted", text: timeAgo(c.created_at) }));
      }
      li.append(head, el("p", { class: "comment-text", text: c.text }));
      if (c.own ?? c.can_delete) {
        li.append(el("button", {
          type: "button", class: "button button-quiet button-small comment-delete",
          "aria-label": "Delete this comment", dataset: { deleteComment: c.id },
        }, "Delete"));
      }
      return li;
    }

    function paint() {
      const sorted = [...comments].sort((a, b) => (a.at ?? Infinity) - (b.at ?? Infinity) || a.id - b.id);
      list.replaceChildren(...sorted.map(row));
      $("#comments-empty").hidden = comments.length > 0;
      $("#comments-count").textContent = comments.length ? `(${comments.length})` : "";
      paintMarkers();
    }

    /* Markers: on the waveform (drawn by waveform.js) and in a strip under the video. */
    function timedComments() {
      return comments.filter((c) => c.at != null);
    }

    function paintMarkers() {
      if (!timed || !player) return;
      const canvas = $("canvas.wave", player);
      if (canvas && canvas.mediagenPlayer) {
        canvas.mediagenPlayer.setMarkers(timedComments().map((c) => ({ at: c.at, id: c.id })));
      }
      const video = $("video", player);
      if (video) videoMarkers(video);
    }

    function videoMarkers(video) {
      let strip = $("#video-markers", player);
      if (!strip) {
        strip = el("div", { class: "marker-strip", id: "video-markers", role: "group", "aria-label": "Comments on the timeline" });
        video.after(strip);
      }
      const d = Number.isFinite(video.duration) && video.duration > 0 ? video.duration : Number(panel.dataset.duration) || 0;
      strip.replaceChildren(...(d ? timedComments() : []).map((c) => el("button", {
        type: "button", class: "marker", title: `${fmtDuration(c.at)}: ${c.text}`,
        "aria-label": `Comment at ${fmtDuration(c.at)}: ${c.text}`, dataset: { seek: c.at, commentId: c.id },
      })));
      for (const b of $$(".marker", strip)) {
        b.style.left = `${Math.min(100, (Number(b.dataset.seek) / d) * 100)}%`;
      }
      if (!d) video.addEventListener("loadedmetadata", () => videoMarkers(video), { once: true });
    }

    if (player) {
      // The player is built when the asset finishes (app.js): mark it as soon as it is there.
      new MutationObserver(() => {
        const canvas = $("canvas.wave", player);
        const video = $("video", player);
        if ((canvas && canvas.mediagenPlayer && !canvas.dataset.marked) || (video && !$("#video-markers", player))) {
          if (canvas) canvas.dataset.marked = "1";
          paintMarkers();
        }
      }).observe(player, { childList: true, subtree: true });
      player.addEventListener("wave-marker", (e) => highlight(e.detail.id));
      player.addEventListener("click", (e) => {
        const b = e.target.closest(".marker[data-seek]");
        if (b) seekTo(Number(b.dataset.seek), b.dataset.commentId);
      });
    }

    list.addEventListener("click", async (e) => {
      const seek = e.target.closest("[data-seek]");
      if (seek) {
        seekTo(Number(seek.dataset.seek), seek.closest("li").dataset.commentId);
        return;
      }
      const del = e.target.closest("[data-delete-comment]");
      if (!del) return;
      if (!(await confirmDialog("Delete this comment?", "Delete"))) return;
      try {
        await api("DELETE", `${url}/${del.dataset.deleteComment}`);
        comments = comments.filter((c) => String(c.id) !== del.dataset.deleteComment);
        paint();
        text.focus();
      } catch (err) {
        show(error, describe(err));
      }
    });

    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      show(error, "");
      text.removeAttribute("aria-invalid");
      // Rounded down to 0.1 s: rounding up at the very end would land past the asset's length.
      const at = timed && atBox && atBox.checked ? Math.floor(position() * 10) / 10 : null;
      const body = { text: text.value.trim(), at };
      if (!body.text) {
        show(error, "write the comment first");
        text.setAttribute("aria-invalid", "true");
        text.focus();
        return;
      }
      const submit = $("button[type=submit]", form);
      submit.disabled = true;
      try {
        const made = await api("POST", url, body);
        comments.push({ own: true, ...made });
        text.value = "";
        paint();
        highlight(made.id);
      } catch (err) {
        const msgs = ((err.body && err.body.errors) || []).map((x) => x.message);
        show(error, msgs.length ? msgs.join("; ") : describe(err));
        text.setAttribute("aria-invalid", "true");
      } finally {
        submit.disabled = false;
      }
    });

    paint();
    paintPosition();
    setInterval(() => refreshAgo(list), 60_000);
  }

  /* What tests and the other feature scripts may reuse. */
  window.MediagenReview = { timeAgo, narrowPickers, historyEntries };

  document.addEventListener("DOMContentLoaded", () => {
    initGalleryFilters();
    initCardStars();
    initBulk();
    initReview();
    initComments();
  });
})();
