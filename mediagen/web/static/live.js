/* Live progress: galleries and the asset page follow GET /api/events (Server-Sent Events).
 *
 * One EventSource per visible page, same-origin, so the session cookie authenticates it. A
 * gallery asks for its kind's events; an asset page for its one asset's. EventSource reconnects by
 * itself and sends Last-Event-ID, so the server resumes right after the last event we had.
 *
 * What an event changes:
 *   - gallery: a card that is on the page is fetched again from /assets/{kind}/{id}/card when its
 *     status moves (or its review fields change), and shows the percent on progress events
 *     without a request. A new asset is shown by reading this very page again (at most every
 *     2 s) and adding the cards it has that we do not: the server applies the page's filters,
 *     search, sort and page, so a card appears exactly where a reload would put it, and the
 *     "x of y" line is the server's too. No filter logic is copied here.
 *   - asset page (while the asset runs): progress is painted from the event; any other event
 *     reads the asset again (window.Mediagen.asset.load, from app.js), which swaps in the player
 *     once it is done; then the stream is closed.
 *
 * While a stream is open `window.Mediagen.live.connected` is true and app.js's polling stands
 * down; when it drops (server gone, signed out: EventSource then gives up), polling takes over.
 * Other scripts may follow events too: `Mediagen.live.follow({kind, ids, take_group}, onEvent)`.
 */
(() => {
  "use strict";

  const M = window.Mediagen;
  if (!M) return;
  const MERGE_EVERY_MS = 2000;
  const STATUS_EVENTS = ["created", "pending", "processing", "completed", "failed", "canceled"]
    .map((s) => `generation.${s}`);
  const TYPES = [...STATUS_EVENTS, "generation.progress", "generation.updated", "generation.review",
    "generation.deleted"];

  const streams = new Set();
  const live = {
    get connected() {
      return [...streams].some((s) => s.readyState === EventSource.OPEN);
    },
    follow,
  };
  M.live = live;

  /**
   * Follow the events of `filters` ({kind, ids: [..], take_group}): onEvent(type, data) runs once
   * per (asset, seq). onOpen runs on every (re)connect: the moment to read once what may have
   * changed while no stream was open. A hidden tab closes its stream (a browser keeps only ~6
   * connections per server over HTTP/1.1; a stream held by every open tab would starve them) and
   * opens a fresh one when shown again. Returns {close()}.
   */
  function follow(filters, onEvent, onOpen) {
    if (!window.EventSource) return null;
    const query = new URLSearchParams();
    if (filters.kind) query.set("kind", filters.kind);
    if (filters.ids) query.set("ids", filters.ids.join(","));
    if (filters.take_group) query.set("take_group", filters.take_group);
    const lastSeq = new Map();
    let source = null;
    let stopped = false;

    function open() {
      const es = new EventSource(`/api/events?${query}`);
      source = es;
      streams.add(es);
      es.addEventListener("open", () => onOpen && onOpen());
      es.addEventListener("error", () => {
        if (es.readyState === EventSource.CLOSED) shut(); // refused (signed out): polling's turn
      });
      es.addEventListener("stream.closed", shut);
      for (const type of TYPES) {
        es.addEventListener(type, (e) => {
          let data;
          try {
            data = JSON.parse(e.data);
          } catch (err) {
            return;
          }
          // A fresh stream repeats the last couple of seconds: act on each change once.
          if ((lastSeq.get(data.id) || 0) >= data.seq) return;
          lastSeq.set(data.id, data.seq);
          onEvent(type, data);
        });
      }
    }

    function shut() {
      if (!source) return;
      source.close();
      streams.delete(source);
      source = null;
    }

    document.addEventListener("visibilitychange", () => {
      if (stopped) return;
      if (document.hidden) shut();
      else if (!source) open();
    });
    window.addEventListener("pagehide", shut);
    window.addEventListener("pageshow", (e) => {
      if (e.persisted && !stopped && !source && !document.hidden) open();
    });
    if (!document.hidden) open();
    return {
      close() {
        stopped = true;
        shut();
      },
    };
  }

  /* ------------------------------------------------------------------ the asset page */

  function initAssetPage(root) {
    const page = M.asset; // app.js's controller for this page
    const item = JSON.parse(M.$("#asset-data")?.textContent || "{}");
    if (!page || !M.RUNNING.has(item.status)) return; // a finished asset's page has nothing to follow
    const stream = follow({ kind: root.dataset.kind, ids: [page.id] }, (type, data) => {
      if (type === "generation.progress") {
        page.show({ status: data.status, progress: data.progress, progress_note: data.progress_note ?? null });
        return;
      }
      page.load(); // the whole asset: the player once it is done (a deleted one reads as gone)
      if (!M.RUNNING.has(data.status) || type === "generation.deleted") stream.close();
    }, () => page.load());
  }

  /* ------------------------------------------------------------------ galleries */

  function galleryKind() {
    const segment = window.location.pathname.split("/")[1];
    return Object.keys(M.KINDS).find((k) => M.galleryOf(k) === segment) || null;
  }

  function initGallery(kind) {
    const cardOf = (id) => M.$(`#gallery-grid li.card[data-id="${id}"]`);
    const fetching = new Map(); // id -> whether another fetch is wanted after this one

    async function refreshCard(id) {
      if (fetching.has(id)) {
        fetching.set(id, true);
        return;
      }
      fetching.set(id, false);
      try {
        const res = await fetch(`/assets/${kind}/${id}/card`, { credentials: "same-origin" });
        if (res.status === 404) {
          cardOf(id)?.remove();
        } else if (res.ok && !res.redirected) {
          const fresh = parseCard(await res.text());
          const card = cardOf(id); // after every await: bulk work may have swapped it meanwhile
          if (fresh && card && !isPlaying(card)) swapCard(card, fresh);
        }
      } catch (err) {
        /* the next event or the polling fallback tries again */
      } finally {
        const again = fetching.get(id);
        fetching.delete(id);
        if (again) refreshCard(id);
      }
    }

    let mergeTimer = null;
    let lastMerge = 0;
    let opened = false;
    function scheduleMerge() {
      if (mergeTimer) return;
      const wait = Math.max(0, lastMerge + MERGE_EVERY_MS - Date.now());
      mergeTimer = setTimeout(() => {
        mergeTimer = null;
        lastMerge = Date.now();
        mergePage();
      }, wait);
    }

    /** Add the cards this page has on the server now and not here yet; take its summary line. */
    async function mergePage() {
      let doc;
      try {
        const res = await fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
        if (!res.ok || res.redirected) return;
        doc = new DOMParser().parseFromString(await res.text(), "text/html");
      } catch (err) {
        return;
      }
      const grid = M.$("#gallery-grid");
      const freshGrid = doc.getElementById("gallery-grid");
      if (!grid) {
        // An empty gallery has no grid (nor selection bar) to add to: reload, unless the user is
        // typing in the filters.
        if (freshGrid && !document.activeElement?.closest("form")) window.location.reload();
        return;
      }
      if (!freshGrid) return;
      const summary = M.$("#gallery-summary");
      const freshSummary = doc.getElementById("gallery-summary");
      if (summary && freshSummary) summary.textContent = freshSummary.textContent;
      const cards = Array.from(freshGrid.children).filter((c) => c.matches("li.card"));
      cards.forEach((fresh, i) => {
        if (cardOf(fresh.dataset.id)) return;
        const adopted = document.importNode(fresh, true);
        adopted.classList.add("live-new");
        // Before the first card after it (in the server's order) that we show; else at the end.
        const next = cards.slice(i + 1).map((c) => cardOf(c.dataset.id)).find(Boolean);
        grid.insertBefore(adopted, next || null);
        M.enhanceCards(adopted);
        M.localTimes(adopted);
      });
    }

    function showProgress(data) {
      const card = cardOf(data.id);
      const box = card && M.$(".card-progress", card);
      if (!box) return;
      let pct = M.$(".live-percent", box);
      if (!pct) {
        pct = M.el("span", { class: "live-percent" });
        box.append(pct);
      }
      pct.textContent = typeof data.progress === "number" ? `${Math.round(data.progress * 100)}%` : "";
    }

    follow({ kind }, (type, data) => {
      if (type === "generation.progress") showProgress(data);
      else if (type === "generation.created") scheduleMerge();
      else if (type === "generation.deleted") cardOf(data.id)?.remove();
      else if (cardOf(data.id)) refreshCard(data.id);
    }, () => {
      // (Re)connected: catch up on what moved while no stream was open.
      for (const card of M.$$("#gallery-grid li.card[data-refresh]")) refreshCard(card.dataset.id);
      if (opened) scheduleMerge();
      opened = true;
    });
  }

  function parseCard(html) {
    const tpl = document.createElement("template");
    tpl.innerHTML = html.trim();
    const card = tpl.content.firstElementChild;
    return card && card.matches("li.card") ? card : null;
  }

  /** Replace a card, keeping what the user had there: its selection and the focused control. */
  const CONTROLS = ["input[data-select]", "[data-star]", ".play-button", ".card-link"];
  function swapCard(card, fresh) {
    const box = M.$("input[data-select]", card);
    const mark = M.$("input[data-select]", fresh);
    if (box && mark) mark.checked = box.checked;
    const focused = CONTROLS.find((sel) => document.activeElement?.matches(sel) && card.contains(document.activeElement));
    card.replaceWith(fresh);
    M.enhanceCards(fresh);
    if (focused) M.$(focused, fresh)?.focus();
  }

  function isPlaying(card) {
    return Boolean(M.$('.play-button[aria-pressed="true"]', card));
  }

  document.addEventListener("DOMContentLoaded", () => {
    const asset = M.$("#asset");
    if (asset) {
      initAssetPage(asset);
      return;
    }
    const kind = galleryKind();
    if (kind && (M.$("#gallery-grid") || M.$("#gallery-summary"))) initGallery(kind);
  });
})();
