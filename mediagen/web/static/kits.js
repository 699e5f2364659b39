/* The kit page, live: each deliverable's status, review status and asset as the plan runs.
 *
 * The plan (GET /api/plans/{id}) is the one source: it is read again every few seconds while the
 * plan runs, and at once when the events stream (live.js) says one of its assets moved or a new
 * asset appeared. Rows are painted from it with textContent only; nothing else is copied here.
 */
(() => {
  "use strict";

  const root = document.getElementById("kit");
  if (!root) return;
  const api = root.dataset.api;
  const STATUS_TEXT = { planned: "Planned", running: "Making", done: "Done", failed: "Failed", canceled: "Canceled" };
  const REVIEW_TEXT = { draft: "Draft", in_review: "In review", approved: "Approved", rejected: "Rejected" };
  const POLL_MS = 2000;
  let known = new Set(JSON.parse(document.getElementById("kit-data")?.textContent || "{}").ids || []);
  let status = document.getElementById("kit-plan-status")?.dataset.status || "draft";
  let timer = null;
  let busy = false;
  let again = false;

  function csrf() {
    return document.querySelector('meta[name="csrf-token"]')?.content || "";
  }

  function paintItem(d) {
    const row = root.querySelector(`tr[data-item="${CSS.escape(d.id)}"]`);
    if (!row) return;
    row.dataset.status = d.status;
    const badge = row.querySelector("[data-item-status]");
    badge.className = `status status-item-${d.status}`;
    badge.textContent = STATUS_TEXT[d.status] || d.status;
    if (d.status === "running" && typeof d.progress === "number") {
      badge.textContent += ` ${Math.round(d.progress * 100)}%`;
    }
    const error = row.querySelector("[data-item-error]");
    error.hidden = !d.error;
    error.textContent = d.error || "";
    const review = row.querySelector("[data-item-review]");
    review.replaceChildren();
    if (d.review_status) {
      const span = document.createElement("span");
      span.className = `review review-${d.review_status}`;
      span.textContent = REVIEW_TEXT[d.review_status] || d.review_status;
      review.append(span);
    } else {
      const none = document.createElement("span");
      none.className = "muted";
      none.textContent = "—";
      review.append(none);
    }
    const asset = row.querySelector("[data-item-asset]");
    // Repainted only when what it shows changes: a preview being played must not be replaced.
    const shown = d.asset ? `${d.asset.kind}:${d.asset.id}:${d.status === "done"}` : "";
    if (asset.dataset.shown === shown) return paintActions(row, d);
    asset.dataset.shown = shown;
    asset.replaceChildren();
    if (d.asset) {
      const link = document.createElement("a");
      link.href = `/assets/${d.asset.kind}/${d.asset.id}`;
      link.textContent = `${d.asset.kind} #${d.asset.id}`;
      asset.append(link);
      if (d.status === "done") asset.append(preview(d));
    } else {
      const none = document.createElement("span");
      none.className = "muted";
      none.textContent = "—";
      asset.append(none);
    }
    paintActions(row, d);
  }

  function paintActions(row, d) {
    const actions = row.querySelector("[data-item-actions]");
    const failed = d.status === "failed" || d.status === "canceled";
    if (failed && !actions.querySelector("form")) {
      const form = document.createElement("form");
      form.method = "post";
      form.action = `/plans/${root.dataset.plan}/items/${encodeURIComponent(d.id)}/retry`;
      form.className = "inline-form";
      const token = document.createElement("input");
      token.type = "hidden";
      token.name = "csrf_token";
      token.value = csrf();
      const button = document.createElement("button");
      button.type = "submit";
      button.className = "button button-small";
      button.textContent = "Retry";
      form.append(token, button);
      actions.append(form);
    } else if (!failed) {
      actions.replaceChildren();
    }
  }

  const API_PATH = { audio: "audio", image: "images", video: "videos" };

  function preview(d) {
    // A finished deliverable at a glance: its player, or its thumbnail linking to its page.
    const base = `/api/${API_PATH[d.asset.kind]}/${d.asset.id}`;
    if (d.asset.kind === "audio") {
      const audio = document.createElement("audio");
      audio.className = "kit-preview";
      audio.controls = true;
      audio.preload = "none";
      audio.src = `${base}/data`;
      audio.setAttribute("aria-label", `Play ${d.id}`);
      return audio;
    }
    const link = document.createElement("a");
    link.href = `/assets/${d.asset.kind}/${d.asset.id}`;
    link.tabIndex = -1;
    const img = document.createElement("img");
    img.className = "kit-preview";
    img.src = `${base}/thumbnail`;
    img.alt = "";
    img.loading = "lazy";
    link.append(img);
    return link;
  }

  function paint(plan) {
    status = plan.status;
    const badge = document.getElementById("kit-plan-status");
    badge.className = `status status-plan-${plan.status}`;
    badge.dataset.status = plan.status;
    badge.textContent = plan.status.charAt(0).toUpperCase() + plan.status.slice(1);
    plan.deliverables.forEach(paintItem);
    const done = plan.deliverables.filter((d) => d.status === "done").length;
    const progress = document.getElementById("kit-progress");
    progress.replaceChildren(`${done} of ${plan.deliverables.length} deliverables done`);
    if (plan.status === "running") {
      const spin = document.createElement("span");
      spin.className = "spinner";
      spin.setAttribute("aria-hidden", "true");
      progress.append(spin);
    }
    document.getElementById("kit-zip").hidden = done === 0;
    const error = document.getElementById("kit-error");
    error.hidden = !plan.error;
    error.textContent = plan.error || "";
    known = new Set(plan.deliverables.flatMap((d) => d.ids));
  }

  async function refresh() {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      const res = await fetch(api, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (res.ok) paint(await res.json());
    } catch (err) {
      // A dropped connection: the next tick tries again.
    } finally {
      busy = false;
    }
    if (again) {
      again = false;
      refresh();
    }
    schedule();
  }

  function schedule() {
    clearTimeout(timer);
    if (status === "running") timer = setTimeout(refresh, POLL_MS);
  }

  // Any move of one of the kit's assets, or a new asset (a deliverable just asked for), reads the
  // plan again at once; the polling above covers a stream that is not open.
  const live = window.Mediagen && window.Mediagen.live;
  if (live) {
    live.follow({}, (type, data) => {
      if (known.has(data.id) || type === "generation.created") refresh();
    });
  }
  schedule();
})();
