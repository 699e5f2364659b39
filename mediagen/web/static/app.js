/* Mediagen web UI behaviour: the generate form, live asset pages, gallery cards and small helpers.
 *
 * Pages are server-rendered and usable as documents; this script adds what needs to be live. It
 * talks to the same JSON API as any other client, authenticated by the session cookie, and sends
 * the page's CSRF token (from <meta name="csrf-token">) on every unsafe request.
 */
(() => {
  "use strict";

  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
  const csrf = () => $('meta[name="csrf-token"]')?.content || "";
  /* The kinds (API path, gallery segment, …) and statuses, as the server spells them: every page
   * embeds them as JSON data (not a script, so the CSP allows it), and this file keeps no copy. */
  const VOCABULARY = JSON.parse($("#mediagen-kinds")?.textContent || "{}");
  const KINDS = VOCABULARY.kinds || {};
  const RUNNING = new Set(VOCABULARY.active || []);
  const apiPath = (kind) => KINDS[kind].path;
  const galleryOf = (kind) => KINDS[kind].gallery;

  class ApiFailure extends Error {
    constructor(status, body) {
      super((body && body.detail) || `HTTP ${status}`);
      this.status = status;
      this.body = body || {};
    }
  }

  /** JSON API call with the session cookie; unsafe methods carry X-CSRF-Token. */
  async function api(method, url, body) {
    const headers = { Accept: "application/json" };
    if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrf();
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let res;
    try {
      res = await fetch(url, {
        method, headers, credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiFailure(0, { detail: "Could not reach the server. Check your connection and try again." });
    }
    let data = null;
    if (res.status !== 204) {
      try {
        data = await res.json();
      } catch (err) {
        data = null;
      }
    }
    if (!res.ok) {
      if (res.status === 401) data = { detail: "Your session has ended: sign in again (reload the page)." };
      throw new ApiFailure(res.status, data);
    }
    return data;
  }

  /**
   * The id of a generation that was made but failed at once (the engine refused the job: the API
   * answers 502 and the row exists as failed). Prefers a structured `id`, else reads the message.
   */
  function failedGenerationId(err, kind) {
    if (!(err instanceof ApiFailure) || err.status < 500) return null;
    const body = err.body || {};
    const id = body.id ?? body[`${kind}_id`];
    if (Number.isInteger(id)) return id;
    const m = /\(generation (\d+) failed\)/.exec(body.detail || "");
    return m ? Number(m[1]) : null;
  }

  const capitalise = (s) => (s ? s[0].toUpperCase() + s.slice(1) : s);

  /** m:ss everywhere (0:08, 1:05, 1:02:03), rounded half up: the same as the pages' `duration` filter. */
  function fmtDuration(seconds) {
    if (seconds == null || !Number.isFinite(seconds)) return "—";
    const total = Math.max(0, Math.round(seconds));
    const h = Math.floor(total / 3600);
    const m = Math.floor((total % 3600) / 60);
    const s = total % 60;
    const mm = h ? String(m).padStart(2, "0") : String(m);
    return `${h ? `${h}:` : ""}${mm}:${String(s).padStart(2, "0")}`;
  }

  function fmtSize(n) {
    if (n == null) return "—";
    const units = ["B", "KB", "MB", "GB"];
    let size = n;
    let i = 0;
    while (size >= 1024 && i < units.length - 1) {
      size /= 1024;
      i++;
    }
    return i === 0 ? `${size} B` : `${size.toFixed(1)} ${units[i]}`;
  }

  function fmtUsd(v) {
    if (!v) return "$0";
    return v < 1 ? `$${Number(v.toFixed(4))}` : `$${v.toFixed(2)}`;
  }

  /** Hide a form's error slots (`slots`, a selector), its form-level alert and its aria-invalid marks. */
  function clearFormErrors(form, formError, slots) {
    formError.hidden = true;
    formError.textContent = "";
    for (const slot of $$(slots, form)) {
      slot.hidden = true;
      slot.textContent = "";
    }
    for (const c of $$("[aria-invalid]", form)) c.removeAttribute("aria-invalid");
  }

  /** "Loading model…", "Generating… 42%": what a running job says of itself (local models report it). */
  function runningText(item) {
    const note = item.progress_note ? item.progress_note[0].toUpperCase() + item.progress_note.slice(1) : "Generating";
    const pct = typeof item.progress === "number" && item.progress > 0 ? ` ${Math.round(item.progress * 100)}%` : "";
    return `${note}…${pct}`;
  }

  function fmtElapsed(ms) {
    const s = Math.max(0, ms / 1000);
    return s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v == null || v === false) continue;
      if (k === "text") node.textContent = v;
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children) if (c != null) node.append(c);
    return node;
  }

  /* ---------------------------------------------------------------- small page helpers */

  function localTimes(root = document) {
    for (const t of $$("time[data-local]", root)) {
      const d = new Date(t.getAttribute("datetime"));
      if (Number.isNaN(d.getTime())) continue;
      t.textContent = "dateOnly" in t.dataset
        ? d.toLocaleDateString(undefined, { dateStyle: "medium" })
        : d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
      t.title = d.toISOString();
    }
  }

  /** A modal confirm built on <dialog> (focus is trapped and restored by the browser). */
  function confirmDialog(text, okLabel = "Delete") {
    const dialog = $("#confirm-dialog");
    if (!dialog || typeof dialog.showModal !== "function") return Promise.resolve(window.confirm(text));
    $("#confirm-text", dialog).textContent = text;
    $("#confirm-ok", dialog).textContent = okLabel;
    dialog.returnValue = "";
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
      dialog.showModal();
      $("#confirm-ok", dialog).focus();
    });
  }

  function initConfirmForms() {
    for (const form of $$("form[data-confirm]")) {
      form.addEventListener("submit", async (e) => {
        if (form.dataset.confirmed) return;
        e.preventDefault();
        if (await confirmDialog(form.dataset.confirm, form.dataset.confirmOk || "Delete")) {
          form.dataset.confirmed = "1";
          form.submit();
        }
      });
    }
  }

  function initCopyButtons() {
    for (const btn of $$("[data-copy]")) {
      btn.addEventListener("click", async () => {
        const input = $(btn.dataset.copy);
        const status = $("#copy-status");
        let ok = false;
        try {
          await navigator.clipboard.writeText(input.value);
          ok = true;
        } catch (err) {
          input.select();
          ok = document.execCommand && document.execCommand("copy");
        }
        if (status) status.textContent = ok ? "Copied to the clipboard." : "Select the key and copy it.";
        if (ok) btn.textContent = "Copied";
      });
    }
  }

  /** The new-client form suggests an id from the name ("Acme Corp" → "acme-corp") until one is typed. */
  function initIdSuggestion() {
    const name = $("#new-name");
    const id = $("#new-id");
    if (!name || !id) return;
    let typed = id.value.trim() !== "";
    const slug = (text) => text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase()
      .replace(/[^a-z0-9_.:-]+/g, "-").replace(/^[^a-z0-9]+/, "").replace(/-+$/, "").slice(0, 64);
    id.addEventListener("input", () => {
      typed = id.value.trim() !== "";
    });
    name.addEventListener("input", () => {
      if (!typed) id.value = slug(name.value);
    });
  }

  function initAutosubmit() {
    for (const sel of $$("select[data-autosubmit]")) {
      sel.addEventListener("change", () => sel.form.requestSubmit());
    }
  }

  /* ---------------------------------------------------------------- generate form */

  const FILING = ["client_id", "campaign_id", "brief_id", "collection"];

  /** The filing pickers' non-empty choices (generate and compose forms share `_filing.html`). */
  function filingChoices() {
    const chosen = {};
    for (const f of FILING) {
      const v = $(`#${f}`).value.trim();
      if (v) chosen[f] = v;
    }
    return chosen;
  }

  function schemaTypes(schema) {
    const t = Array.isArray(schema.type) ? schema.type : [schema.type];
    return { nullable: t.includes("null"), types: t.filter((x) => x && x !== "null") };
  }

  function defaultFor(model, name, schema) {
    if (model.defaults && name in model.defaults) return model.defaults[name];
    return schema.default === undefined ? null : schema.default;
  }

  /**
   * Which schema property the request's top-level `prompt` fills (riffusion: prompt_a). Uses the
   * model's request_map when the API provides it, else the first prompt-like string input.
   */
  function promptInput(model) {
    const props = model.input_schema.properties || {};
    if (model.request_map && model.request_map.prompt) return model.request_map.prompt;
    if ("prompt" in props) return "prompt";
    const named = Object.entries(props)
      .filter(([n, sch]) => n.includes("prompt") && schemaTypes(sch).types.includes("string"))
      .sort(([, a], [, b]) => (a["x-order"] ?? 999) - (b["x-order"] ?? 999));
    return named.length ? named[0][0] : "prompt";
  }

  /** Request field (as named in API errors) → model input, e.g. image_id → image. */
  function requestAliases(model) {
    return { audio_id: "input_audio", image_id: "image", ...(model.request_map || {}), prompt: promptInput(model) };
  }

  function sameValue(a, b) {
    return JSON.stringify(a) === JSON.stringify(b);
  }

  /** One form control per schema property: the control type follows the JSON Schema type. */
  function buildField(model, name, schema, required, isPrompt) {
    const id = `in-${name}`;
    const { nullable, types } = schemaTypes(schema);
    const def = defaultFor(model, name, schema);
    const title = schema.title || name;
    const hintId = `${id}-hint`;
    const errId = `${id}-error`;
    const hint = schema.description ? el("p", { class: "hint", id: hintId, text: schema.description }) : null;
    const error = el("p", { class: "field-error", id: errId, role: "alert", hidden: true });
    const describedBy = [hint ? hintId : null, errId].filter(Boolean).join(" ");
    const wrap = el("div", { class: "field", dataset: { field: name } });
    const optional = !required && !isPrompt;
    const label = el("label", { for: id }, title);
    let control;

    if (schema["x-media"]) {
      const kind = schema["x-media"];
      wrap.classList.add("field-media");
      // A required media input (Kling's start image) is marked so, and has no "None" to choose.
      if (optional) label.append(" ", el("span", { class: "optional", text: "(optional)" }));
      control = el("select", { id, "aria-describedby": describedBy, dataset: { input: name, media: kind },
        "aria-required": optional ? null : "true" },
        el("option", { value: "", text: optional ? "None" : `Choose a stored ${kind}, or give a URL` }));
      const urlId = `${id}-url`;
      const url = el("input", {
        id: urlId, type: "url", inputmode: "url", placeholder: "https://…", "aria-describedby": describedBy,
        dataset: { mediaUrl: name },
      });
      const preview = el("img", { class: "media-preview", alt: "", hidden: true });
      const fileId = `${id}-file`;
      const file = el("input", {
        id: fileId, type: "file", accept: `${kind}/*`, "aria-describedby": describedBy, dataset: { mediaFile: name },
      });
      wrap.append(label, control, el("label", { for: urlId, class: "sub-label", text: "or a URL" }), url,
        el("label", { for: fileId, class: "sub-label", text: "or upload a file" }), file, preview);
      loadMediaOptions(control, kind);
      file.addEventListener("change", () => uploadMedia(file, control, kind, error));
      control.addEventListener("change", () => {
        url.disabled = Boolean(control.value);
        const opt = control.selectedOptions[0];
        preview.hidden = !(opt && opt.dataset.thumb);
        if (opt && opt.dataset.thumb) preview.src = opt.dataset.thumb;
      });
    } else if (Array.isArray(schema.enum)) {
      control = el("select", { id, "aria-describedby": describedBy, dataset: { input: name } });
      if (nullable || def === null) control.append(el("option", { value: "", text: "Automatic" }));
      for (const v of schema.enum) {
        if (v === null) continue;
        control.append(el("option", { value: JSON.stringify(v), text: String(v), selected: sameValue(v, def) }));
      }
      wrap.append(label, control);
    } else if (types.includes("boolean")) {
      wrap.classList.add("field-toggle");
      control = el("input", {
        id, type: "checkbox", role: "switch", checked: def === true, "aria-describedby": describedBy,
        dataset: { input: name },
      });
      wrap.append(el("div", { class: "toggle" }, control, label));
    } else if (types.includes("integer") || types.includes("number")) {
      const integer = !types.includes("number");
      control = el("input", {
        id, type: "number", inputmode: integer ? "numeric" : "decimal",
        min: schema.minimum, max: schema.maximum,
        step: schema.multipleOf || (integer ? 1 : "any"),
        value: def == null ? "" : def,
        placeholder: def == null ? (nullable ? "Automatic" : "") : null,
        "aria-describedby": describedBy, dataset: { input: name },
      });
      const range = [schema.minimum, schema.maximum].every((v) => v != null)
        ? `${schema.minimum}–${schema.maximum}` : null;
      if (range) label.append(" ", el("span", { class: "optional", text: range }));
      wrap.append(label, control);
    } else {
      const long = isPrompt || name.includes("prompt") || (schema.maxLength || 0) > 300;
      control = el(long ? "textarea" : "input", {
        id, rows: long ? (isPrompt ? 4 : 2) : null, type: long ? null : "text",
        maxlength: schema.maxLength, required: required || null, "aria-required": required ? "true" : null,
        "aria-describedby": describedBy, dataset: { input: name },
      });
      if (long) wrap.classList.add("field-wide");
      if (!long && def != null) control.value = def;
      if (isPrompt) {
        control.placeholder = { audio: "Upbeat electronic with heavy bass, 120 bpm",
          image: "A sunlit product shot on warm pastel paper", video: "Slow pan over a neon city at night" }[
          model.kind] || "";
      }
      if (optional && !long) label.append(" ", el("span", { class: "optional", text: "(optional)" }));
      wrap.append(label, control);
    }
    if (hint) wrap.append(hint);
    if (isPrompt) {
      wrap.append(el("p", { class: "hint", id: `${id}-keys`, text: "Enter generates; Shift+Enter adds a line." }));
      control.setAttribute("aria-describedby", `${describedBy} ${id}-keys`);
    }
    wrap.append(error);
    return wrap;
  }

  /**
   * Upload a file as an asset of its own (POST /api/{kind}/upload) and select it as the input. It
   * is filed where the form files what it makes, so a campaign's sources stay with the campaign.
   */
  async function uploadMedia(input, select, kind, error) {
    const f = input.files && input.files[0];
    if (!f) return;
    error.hidden = true;
    input.disabled = true;
    try {
      const query = new URLSearchParams({ title: f.name, ...filingChoices() });
      const res = await fetch(`/api/${apiPath(kind)}/upload?${query}`, {
        method: "POST", credentials: "same-origin", body: f,
        headers: { "X-CSRF-Token": csrf(), "Content-Type": f.type || "application/octet-stream",
                   Accept: "application/json" },
      });
      const data = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(data.detail || `upload failed (${res.status})`);
      const option = el("option", { value: data.id, text: `#${data.id} · ${f.name} (uploaded)`,
        dataset: data.thumbnail_url ? { thumb: data.thumbnail_url } : {} });
      select.append(option);
      select.value = String(data.id);
      select.dispatchEvent(new Event("change"));
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    } finally {
      input.disabled = false;
      input.value = "";
    }
  }

  /** The user's recent finished assets of a kind as options; one already there (a form started
   * from it) gets its name and preview instead of a second option. */
  async function loadMediaOptions(select, kind) {
    try {
      const path = apiPath(kind);
      const data = await api("GET", `/api/${path}?status=completed&limit=50`);
      for (const a of data[path] || []) {
        const text = `#${a.id} · ${a.prompt.length > 48 ? `${a.prompt.slice(0, 47)}…` : a.prompt}`;
        const there = Array.from(select.options).find((o) => o.value === String(a.id));
        if (there) {
          there.textContent = text;
          if (a.thumbnail_url) there.dataset.thumb = a.thumbnail_url;
          if (there.selected) select.dispatchEvent(new Event("change"));
          continue;
        }
        select.append(el("option", { value: a.id, text, dataset: a.thumbnail_url ? { thumb: a.thumbnail_url } : {} }));
      }
    } catch (err) {
      select.append(el("option", { value: "", disabled: true, text: "Could not load your assets" }));
    }
  }

  /** The model input the request's top-level `seed` fills, or null when the model takes none. */
  function seedInput(model) {
    const name = (model.request_map && model.request_map.seed) || "seed";
    return name in (model.input_schema.properties || {}) ? name : null;
  }

  /** Put a stored value into the control `buildField` made for it (a rerun's parameters). */
  function fillControl(inputs, control, value) {
    if (control.dataset.media) {
      if (typeof value === "number") {
        if (!Array.from(control.options).some((o) => o.value === String(value))) {
          control.append(el("option", { value, text: `#${value}` }));
        }
        control.value = String(value);
      } else if (typeof value === "string") {
        const url = $(`[data-media-url="${CSS.escape(control.dataset.input)}"]`, inputs);
        if (url) url.value = value;
      }
      control.dispatchEvent(new Event("change"));
    } else if (control.type === "checkbox") {
      control.checked = value === true;
    } else if (control.tagName === "SELECT") {
      const wanted = value == null ? "" : JSON.stringify(value);
      if (Array.from(control.options).some((o) => o.value === wanted)) control.value = wanted;
    } else {
      control.value = value == null ? "" : String(value);
    }
  }

  /** The kind tabs keep the filing chosen so far, so switching kind does not lose it. */
  function syncKindTabs() {
    const query = new URLSearchParams(filingChoices()).toString();
    for (const tab of $$("[data-tab-gallery]")) {
      tab.href = `/generate/${tab.dataset.tabGallery}${query ? `?${query}` : ""}`;
    }
  }

  function initGenerate() {
    const form = $("#generate-form");
    if (!form) return;
    const models = JSON.parse($("#models-data").textContent);
    // Where the form starts from: an asset to rerun, an image to animate, a track to continue.
    const start = JSON.parse($("#start-data")?.textContent || "{}");
    const kind = form.dataset.kind;
    const inputs = $("#model-inputs");
    const submit = $("#generate-submit");
    const formError = $("#form-error");
    const submitLabel = submit.textContent;
    const compact = $("#model-select");
    const takes = $("#takes-n");
    const seedFixed = $("#seed-fixed");
    const seedValue = $("#seed-value");
    let model = null;
    let started = false;

    const current = () => models.find((m) => m.id === $('input[name="model"]:checked', form)?.value) || null;

    /** Fill the new model's fields from where the form started, the first time only. */
    function applyStart() {
      if (started || !start.source) return;
      started = true;
      const props = model.input_schema.properties || {};
      const promptName = promptInput(model);
      const prompt = $(`#in-${CSS.escape(promptName)}`);
      if (prompt && start.prompt) prompt.value = start.prompt;
      for (const [name, value] of Object.entries(start.parameters || {})) {
        if (name === promptName) continue;
        const control = $(`[data-input="${CSS.escape(name)}"]`, inputs);
        if (!control) continue;
        fillControl(inputs, control, value);
        const details = control.closest("details");
        if (details && !sameValue(value, defaultFor(model, name, props[name] || {}))) details.open = true;
      }
    }

    function build() {
      // The prompt stays when another model is chosen; the rest is that model's own.
      const before = model ? $(`#in-${CSS.escape(promptInput(model))}`)?.value : null;
      model = current();
      inputs.replaceChildren();
      $("#inputs-model").textContent = model ? `· ${model.title}` : "";
      if (compact && model) compact.value = model.id;
      $("#seed-field").hidden = !(model && seedInput(model));
      $("#seed-none").hidden = !model || Boolean(seedInput(model));
      if (!model) {
        inputs.append(el("p", { class: "muted", text: "Choose an available model." }));
        return;
      }
      const props = Object.entries(model.input_schema.properties || {}).sort(
        ([a, x], [b, y]) => (x["x-order"] ?? 999) - (y["x-order"] ?? 999) || a.localeCompare(b));
      const required = new Set(model.input_schema.required || []);
      const main = el("div", { class: "input-grid" });
      const more = el("div", { class: "input-grid" });
      const promptName = promptInput(model);
      const seedName = seedInput(model);
      for (const [name, schema] of props) {
        if (name === seedName) continue; // the Takes panel's seed choice fills it
        const field = buildField(model, name, schema, required.has(name), name === promptName);
        if (name === promptName) {
          inputs.append(field);
          continue;
        }
        const primary = name === "duration" || schema["x-media"] || (schema["x-order"] ?? 99) <= 3;
        (primary ? main : more).append(field);
      }
      if (main.children.length) inputs.append(main);
      if (more.children.length) {
        inputs.append(el("details", { class: "more-settings" },
          el("summary", { text: `More settings (${more.children.length})` }), more));
      }
      const prompt = $(`#in-${CSS.escape(promptName)}`);
      if (prompt) {
        if (before) prompt.value = before;
        prompt.addEventListener("keydown", (e) => {
          if (e.key === "Enter" && !e.shiftKey && !e.altKey && !e.isComposing) {
            e.preventDefault();
            form.requestSubmit();
          }
        });
      }
      applyStart();
    }

    const clearErrors = () => clearFormErrors(form, formError, ".field-error");

    /** The control and error slot an API error `field` ("prompt", "parameters.bpm", "campaign_id") names. */
    function slotFor(field) {
      if (field === "model") {
        // On a phone the model is the compact select (the cards are hidden).
        if (compact && compact.getClientRects().length) return { control: compact, error: $("#model-compact-error") };
        return { control: $('input[name="model"]:checked', form), error: $("#model-error") };
      }
      if (FILING.includes(field)) return { control: $(`#${field}`), error: $(`#${field}-error`) };
      if (field === "n") return { control: takes, error: $("#takes-n-error") };
      let name = field.startsWith("parameters.") ? field.slice("parameters.".length) : field;
      name = name.split(".")[0];
      if (name === "seed" || name === seedInput(model)) return { control: seedValue, error: $("#seed-error") };
      const aliases = requestAliases(model);
      for (const n of [aliases[name], name]) {
        if (!n) continue;
        const control = $(`[data-input="${CSS.escape(n)}"]`, inputs);
        if (control) return { control, error: $(`#in-${CSS.escape(n)}-error`) };
      }
      return null;
    }

    function showErrors(failure) {
      const errors = failure.body.errors || [];
      const unplaced = [];
      let first = null;
      for (const { field, message } of errors) {
        const slot = slotFor(field);
        if (!slot || !slot.error) {
          unplaced.push(`${field}: ${message}`);
          continue;
        }
        slot.error.textContent = capitalise(message);
        slot.error.hidden = false;
        if (slot.control) {
          slot.control.setAttribute("aria-invalid", "true");
          const details = slot.control.closest("details");
          if (details) details.open = true;
          first = first || slot.control;
        }
      }
      if (!errors.length || unplaced.length) {
        formError.textContent = unplaced.length ? unplaced.join("; ") : failure.message;
        if (failure.status === 429) {
          formError.textContent = `${failure.message} Wait a moment and try again.`;
        }
        formError.hidden = false;
      }
      (first || formError).focus?.();
      if (!first) formError.scrollIntoView({ block: "nearest" });
    }

    function collect() {
      const parameters = {};
      let prompt = "";
      const localErrors = [];
      const props = model.input_schema.properties || {};
      const promptName = promptInput(model);
      for (const control of $$("[data-input]", inputs)) {
        const name = control.dataset.input;
        const schema = props[name] || {};
        const def = defaultFor(model, name, schema);
        let value;
        if (control.dataset.media) {
          const url = $(`[data-media-url="${CSS.escape(name)}"]`, inputs);
          value = control.value ? Number(control.value) : (url && url.value.trim()) || null;
        } else if (control.type === "checkbox") {
          value = control.checked;
        } else if (control.type === "number") {
          if (control.validity.badInput) {
            localErrors.push({ field: `parameters.${name}`, message: "enter a number" });
            continue;
          }
          value = control.value === "" ? null : Number(control.value);
        } else if (control.tagName === "SELECT") {
          value = control.value === "" ? null : JSON.parse(control.value);
        } else {
          value = control.value;
        }
        if (name === promptName) {
          prompt = value.trim();
          if (!prompt) localErrors.push({ field: "prompt", message: "describe what you want first" });
          continue;
        }
        // Send only what differs from the model's defaults: the API fills in the rest, and the
        // stored parameters then show what the person actually chose.
        if (value === null || value === "" || sameValue(value, def)) continue;
        parameters[name] = value;
      }
      const body = { prompt, model: model.id, parameters };
      const n = takes.value.trim() === "" ? 1 : Number(takes.value);
      if (takes.validity.badInput || !Number.isInteger(n) || n < 1 || n > Number(takes.max)) {
        localErrors.push({ field: "n", message: `enter a whole number from 1 to ${takes.max}` });
      } else if (n > 1) {
        body.n = n;
      }
      if (seedInput(model) && seedFixed.checked) {
        const seed = seedValue.value.trim();
        if (!/^\d{1,15}$/.test(seed)) {
          localErrors.push({ field: "seed", message: "enter a whole number, or choose random each time" });
        } else {
          body.seed = Number(seed);
        }
      }
      Object.assign(body, filingChoices());
      return { body, localErrors };
    }

    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!model || submit.disabled) return;
      clearErrors();
      const { body, localErrors } = collect();
      if (localErrors.length) {
        showErrors(new ApiFailure(422, { detail: "Check the highlighted fields", errors: localErrors }));
        return;
      }
      submit.disabled = true;
      submit.setAttribute("aria-busy", "true");
      submit.textContent = "Starting…";
      try {
        const res = await api("POST", `/api/v2/generate/${kind}`, body);
        submit.textContent = "Started — opening…";
        // Several takes open side by side on their group's page; one opens on its own.
        const many = res.take_group && (res.ids || []).length > 1;
        window.location.assign(many ? `/takes/${encodeURIComponent(res.take_group)}` : `/assets/${kind}/${res.id}`);
      } catch (err) {
        const failed = failedGenerationId(err, kind);
        if (failed != null) {
          // Made, then refused by the engine: its page shows the error and offers Retry, the same
          // as for a job that fails later in the worker.
          window.location.assign(`/assets/${kind}/${failed}`);
          return;
        }
        showErrors(err instanceof ApiFailure ? err : new ApiFailure(0, { detail: String(err) }));
        submit.disabled = false;
        submit.removeAttribute("aria-busy");
        labelSubmit();
      }
    });

    function labelSubmit() {
      const n = Number(takes.value);
      submit.textContent = Number.isInteger(n) && n > 1 ? `Generate ${n} takes` : submitLabel;
    }
    takes.addEventListener("input", labelSubmit);
    // Typing a seed means a fixed one.
    seedValue.addEventListener("input", () => {
      seedFixed.checked = true;
    });
    compact?.addEventListener("change", () => {
      const radio = $$('input[name="model"]', form).find((r) => r.value === compact.value);
      if (!radio) return;
      radio.checked = true;
      build();
    });
    form.addEventListener("change", (e) => {
      if (FILING.includes(e.target.id)) syncKindTabs();
    });
    $("#collection")?.addEventListener("input", syncKindTabs);

    form.addEventListener("input", (e) => {
      // An edited field's error no longer describes it.
      const field = e.target.closest(".field");
      const err = field && $(".field-error", field);
      if (err && !err.hidden) {
        err.hidden = true;
        err.textContent = "";
        e.target.removeAttribute("aria-invalid");
      }
    });

    for (const radio of $$('input[name="model"]', form)) radio.addEventListener("change", build);
    initFiling();
    build();
  }

  /** Campaign and brief options follow the chosen client (and the other way round). */
  /**
   * Campaign and brief options follow the chosen client at once (no "Apply"), and choosing a
   * campaign or brief picks its client. Options carry data-client / data-campaign.
   */
  function narrowPickers(client, campaign, brief) {
    if (!client || !campaign) return;
    const all = (sel) => (sel ? Array.from(sel.options).slice(1).map((o) => o.cloneNode(true)) : []);
    const campaigns = all(campaign);
    const briefs = all(brief);

    function refill(sel, options, keep) {
      if (!sel) return;
      const value = sel.value;
      sel.replaceChildren(sel.options[0]);
      for (const o of options.filter(keep)) sel.append(o.cloneNode(true));
      sel.value = Array.from(sel.options).some((o) => o.value === value) ? value : "";
    }

    function sync() {
      refill(campaign, campaigns, (o) => !client.value || o.dataset.client === client.value);
      refill(brief, briefs, (o) =>
        (!client.value || o.dataset.client === client.value)
        && (!campaign.value || !o.dataset.campaign || o.dataset.campaign === campaign.value));
    }

    client.addEventListener("change", sync);
    campaign.addEventListener("change", () => {
      const o = campaign.selectedOptions[0];
      if (o && o.dataset.client && client.value !== o.dataset.client) client.value = o.dataset.client;
      sync();
    });
    brief?.addEventListener("change", () => {
      const o = brief.selectedOptions[0];
      if (!o || !o.value) return;
      const wanted = o.value;
      if (o.dataset.client && client.value !== o.dataset.client) client.value = o.dataset.client;
      sync();
      if (o.dataset.campaign) {
        campaign.value = o.dataset.campaign;
        sync();
      }
      brief.value = wanted;
    });
    sync();
  }

  function initFiling() {
    narrowPickers($("#client_id"), $("#campaign_id"), $("#brief_id"));
  }

  /* ---------------------------------------------------------------- asset page */

  function buildPlayer(kind, item) {
    const box = $("#player");
    box.replaceChildren();
    box.classList.remove("is-waiting");
    if (kind === "audio") {
      const canvas = el("canvas", {
        class: "wave", tabindex: 0, role: "slider", "aria-label": "Waveform: seek in the track",
        "aria-valuemin": 0, "aria-describedby": "wave-help",
      });
      const audio = el("audio", { controls: true, preload: "metadata", src: item.data_url, "aria-label": "Audio player" });
      box.append(
        el("div", { class: "wave-wrap" }, canvas), audio,
        el("p", { class: "hint", id: "wave-help", text: "Click the waveform to jump there. Focused, ← → move 5 s and Space plays or pauses." }),
      );
      window.MediagenWave.attachPlayer({ audio, canvas, peaksUrl: item.waveform_url, duration: item.duration });
    } else if (kind === "video") {
      box.append(el("video", {
        controls: true, preload: "metadata", playsinline: true, src: item.data_url,
        poster: item.poster_url || item.thumbnail_url, "aria-label": "Video player",
        width: item.width, height: item.height,
      }));
    } else {
      box.append(el("a", { href: item.data_url, class: "image-link", title: "Open the full-size image" },
        el("img", { src: item.data_url, alt: item.prompt, width: item.width, height: item.height })));
    }
  }

  function initAsset() {
    const root = $("#asset");
    if (!root) return;
    const kind = root.dataset.kind;
    const path = root.dataset.path;
    const skew = Date.parse(root.dataset.serverNow) - Date.now();
    let item = JSON.parse($("#asset-data").textContent);
    let built = false;
    // Loudness and lineage are known once it is made: then the server renders those panels again.
    const madeHere = RUNNING.has(item.status);
    const badge = $("#asset-status");
    const elapsed = $("#asset-elapsed");
    const actionError = $("#action-error");

    function setField(name, text, html) {
      const dd = $(`[data-field="${name}"]`, root);
      if (!dd) return;
      if (html) dd.replaceChildren(html);
      else dd.textContent = text;
    }

    function render() {
      const s = item.status;
      badge.className = `status status-${s}`;
      badge.textContent = capitalise(s);
      const running = RUNNING.has(s);
      const failed = s === "failed" || s === "canceled";
      $("#asset-error").hidden = !failed;
      if (failed) {
        $("#asset-error-title").textContent = s === "canceled" ? "Canceled" : "Generation failed";
        $("#asset-error-text").textContent = item.error || "";
      }
      $('[data-action="cancel"]').hidden = !running;
      $('[data-action="regenerate"]').hidden = running || failed;
      for (const btn of $$('[data-action="same-seed"]', root)) btn.hidden = running;
      $("#download-link").hidden = s !== "completed";
      const waiting = $("#waiting-text");
      if (waiting) waiting.textContent = s === "pending" ? "Waiting in the queue…" : runningText(item);
      const bar = $("#asset-progress");
      if (bar) {
        const known = RUNNING.has(s) && typeof item.progress === "number";
        bar.hidden = !known;
        if (known) {
          bar.value = item.progress;
          bar.textContent = `${Math.round(item.progress * 100)}%`;
        }
      }
      if (failed) {
        $("#player").replaceChildren();
        $("#player").classList.remove("is-waiting");
        $("#player").hidden = true;
      }
      for (const node of $$("[data-when-completed]", root)) node.hidden = s !== "completed";
      if (s === "completed" && !built) {
        built = true;
        buildPlayer(kind, item);
        if (madeHere) refreshLive();
      }
      setField("duration", fmtDuration(item.duration));
      setField("dimensions", item.width && item.height ? `${item.width} × ${item.height} px` : "—");
      setField("size_bytes", fmtSize(item.size_bytes));
      setField("content_type", item.content_type || "—");
      setField("cost_usd", fmtUsd(item.cost_usd));
      if (item.completed_at) {
        const t = el("time", { datetime: item.completed_at, "data-local": true }, item.completed_at);
        setField("completed_at", null, t);
        localTimes($('[data-field="completed_at"]', root));
      }
      tick();
    }

    function tick() {
      const created = Date.parse(item.created_at);
      if (RUNNING.has(item.status)) {
        const verb = item.status === "pending" ? "Queued for" : "Running for";
        elapsed.textContent = `${verb} ${fmtElapsed(Date.now() + skew - created)}`;
      } else if (item.completed_at) {
        const took = fmtElapsed(Date.parse(item.completed_at) - created);
        elapsed.textContent = item.status === "completed" ? `Took ${took}` : `After ${took}`;
      } else {
        elapsed.textContent = "";
      }
    }

    let failures = 0;
    /** Read the asset again; false once it is gone. live.js calls it on this asset's events. */
    async function load() {
      try {
        item = await api("GET", `/api/${path}/${item.id}`);
        failures = 0;
        render();
      } catch (err) {
        if (err.status === 404) {
          badge.textContent = "Deleted";
          elapsed.textContent = "This asset no longer exists.";
          return false;
        }
        failures++;
      }
      return true;
    }
    async function poll() {
      // While live.js's event stream is open it calls load(); polling only waits in the wings.
      if (!window.Mediagen.live?.connected && !(await load())) return;
      if (RUNNING.has(item.status)) setTimeout(poll, failures ? Math.min(5000, 500 * 2 ** failures) : 500);
    }

    const timer = setInterval(() => {
      tick();
      if (!RUNNING.has(item.status)) clearInterval(timer);
    }, 100);

    async function act(fn) {
      actionError.hidden = true;
      try {
        await fn();
      } catch (err) {
        actionError.textContent = err.message;
        actionError.hidden = false;
      }
    }

    /** A new take of this asset (a new seed, or with `?same_seed=true` the same one), opened. */
    const again = (btn, query = "") => act(async () => {
      btn.disabled = true;
      try {
        const res = await api("POST", `/api/${path}/${item.id}/retry${query}`);
        window.location.assign(`/assets/${kind}/${res.id}`);
      } catch (err) {
        const failed = failedGenerationId(err, kind);
        if (failed == null) throw err;
        window.location.assign(`/assets/${kind}/${failed}`);
      } finally {
        btn.disabled = false;
      }
    });
    for (const btn of $$('[data-action="retry"], [data-action="regenerate"]', root)) {
      btn.addEventListener("click", () => again(btn));
    }
    for (const btn of $$('[data-action="same-seed"]', root)) {
      btn.addEventListener("click", () => again(btn, "?same_seed=true"));
    }
    $('[data-action="cancel"]', root).addEventListener("click", () => act(async () => {
      item = await api("POST", `/api/${path}/${item.id}/cancel`);
      render();
    }));
    $('[data-action="delete"]', root).addEventListener("click", () => act(async () => {
      if (!(await confirmDialog("Delete this asset? Its file is removed too; this cannot be undone."))) return;
      await api("DELETE", `/api/${path}/${item.id}`);
      window.location.assign(`/${galleryOf(kind)}`);
    }));

    render();
    if (RUNNING.has(item.status)) setTimeout(poll, 500);
    window.Mediagen.asset = { id: item.id, kind, load, show: (fields) => { item = { ...item, ...fields }; render(); } };
  }

  /* ---------------------------------------------------------------- live panels */

  /**
   * Swap this page's [data-live] panels for the server's fresh rendering of them (loudness
   * verdicts, lineage, an export's table): the server stays the one place that decides them.
   */
  async function refreshLive() {
    try {
      const res = await fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (!res.ok || res.redirected) return false;
      const doc = new DOMParser().parseFromString(await res.text(), "text/html");
      for (const node of $$("[data-live][id]")) {
        const fresh = doc.getElementById(node.id);
        if (!fresh) continue;
        const adopted = document.importNode(fresh, true);
        node.replaceWith(adopted);
        localTimes(adopted);
      }
      return true;
    } catch (err) {
      return false;
    }
  }

  /* ---------------------------------------------------------------- channel exports */

  /** The asset page's "Export for channels" dialog: POST /api/v2/export, then the export's page. */
  function initExportDialog() {
    const dialog = $("#export-dialog");
    const opener = $('[data-action="export"]');
    if (!dialog || !opener || typeof dialog.showModal !== "function") return;
    const form = $("#export-form", dialog);
    const submit = $("#export-submit", dialog);
    const formError = $("#export-error", dialog);
    const slots = { channels: $("#export-channels-error", dialog), collection: $("#export-collection-error", dialog) };

    function clear() {
      for (const slot of [formError, ...Object.values(slots)]) {
        slot.hidden = true;
        slot.textContent = "";
      }
      for (const c of $$("[aria-invalid]", form)) c.removeAttribute("aria-invalid");
    }

    function show(failure) {
      const unplaced = [];
      for (const { field, message } of failure.body.errors || []) {
        const name = field.startsWith("channels") ? "channels" : field;
        const slot = slots[name];
        if (!slot) {
          unplaced.push(`${field}: ${message}`);
          continue;
        }
        slot.textContent = capitalise(message);
        slot.hidden = false;
        if (name === "collection") $("#export-collection", form).setAttribute("aria-invalid", "true");
      }
      if (!(failure.body.errors || []).length || unplaced.length) {
        formError.textContent = unplaced.length ? unplaced.join("; ") : failure.message;
        formError.hidden = false;
      }
    }

    opener.addEventListener("click", () => {
      clear();
      dialog.showModal();
      $('input[name="channels"]', form)?.focus();
    });
    $("[data-close]", dialog).addEventListener("click", () => dialog.close());
    form.addEventListener("change", () => {
      if ($$('input[name="channels"]:checked', form).length) slots.channels.hidden = true;
    });
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (submit.disabled) return;
      clear();
      const channels = $$('input[name="channels"]:checked', form).map((c) => c.value);
      if (!channels.length) {
        show(new ApiFailure(422, { errors: [{ field: "channels", message: "choose at least one channel" }] }));
        return;
      }
      const body = { source: { [`${form.dataset.kind}_id`]: Number(form.dataset.id) }, channels };
      const collection = $("#export-collection", form).value.trim();
      if (collection) body.collection = collection;
      const label = submit.textContent;
      submit.disabled = true;
      submit.setAttribute("aria-busy", "true");
      submit.textContent = "Exporting…";
      try {
        const res = await api("POST", "/api/v2/export", body);
        window.location.assign(`/exports/${res.export_id}`);
      } catch (err) {
        show(err instanceof ApiFailure ? err : new ApiFailure(0, { detail: String(err) }));
        submit.disabled = false;
        submit.removeAttribute("aria-busy");
        submit.textContent = label;
      }
    });
  }

  /** An export's page follows its renditions (JSON) and redraws the table when one changes. */
  function initExportPage() {
    const root = $("#export[data-api]");
    if (!root) return;
    const signature = (data) => JSON.stringify((data.renditions || []).map((r) => [r.channel, r.status]));
    let seen = signature(JSON.parse($("#export-data").textContent));
    const running = () => $("#export-live")?.dataset.running === "true";
    let failures = 0;
    async function poll() {
      try {
        const data = await api("GET", root.dataset.api);
        failures = 0;
        const now = signature(data);
        if (now !== seen && (await refreshLive())) seen = now;
      } catch (err) {
        if (err.status === 404) return;
        failures++;
      }
      if (running()) setTimeout(poll, failures ? Math.min(5000, 1000 * 2 ** failures) : 1000);
    }
    if (running()) setTimeout(poll, 1000);
  }

  /* ---------------------------------------------------------------- compose page */

  const truncate = (text, n) => (text && text.length > n ? `${text.slice(0, n - 1)}…` : text || "");
  const numberOrNull = (v) => (v === "" || v == null || !Number.isFinite(Number(v)) ? null : Number(v));

  /**
   * The compose page: clips in order (added from the library, moved, removed, each with its in/out
   * or hold), a music bed, the output's frame, length and loudness, and the filing; posted as one
   * recipe to POST /api/v2/compose. No clips and music chosen: an audio master.
   */
  function initCompose() {
    const form = $("#compose-form");
    if (!form) return;
    const data = JSON.parse($("#compose-data").textContent);
    const library = new Map();
    for (const [kind, items] of Object.entries(data.library)) {
      for (const a of items) library.set(`${kind}:${a.id}`, a);
    }
    const timeline = $("#timeline");
    const announce = (text) => {
      $("#timeline-status").textContent = text;
    };
    const submit = $("#compose-submit");
    const formError = $("#form-error");
    let serial = 0;
    const newClip = (kind, id) => ({ kind, id, in: "", out: "", duration: "", zoom: false, key: ++serial });
    const clips = data.start.clips.map((c) => (c.video_id ? newClip("video", c.video_id) : newClip("image", c.image_id)));

    const mode = () => (clips.length ? "video" : "audio");
    const musicId = () => $('input[name="music_id"]:checked', form)?.value || "";
    const itemOf = (c) => library.get(`${c.kind}:${c.id}`) || { id: c.id, prompt: "" };
    const nameOf = (c) => `${capitalise(KINDS[c.kind]?.noun || c.kind)} #${c.id}`;

    function clipLength(c) {
      if (c.kind === "image") return numberOrNull(c.duration) ?? 3;
      const end = numberOrNull(c.out) ?? itemOf(c).duration;
      return end == null ? null : Math.max(0, end - (numberOrNull(c.in) ?? 0));
    }

    function errorSlot(id, fields) {
      return el("p", { class: "field-error", id, role: "alert", hidden: true, dataset: { errorFor: fields } });
    }

    function numberField(i, name, label, value, attrs) {
      const id = `clip-${i}-${name}`;
      return el("div", { class: "field field-compact" },
        el("label", { for: id, text: label }),
        el("input", { id, type: "number", inputmode: "decimal", step: "0.1", min: 0, value,
          "aria-describedby": `${id}-error`, dataset: { clipField: name }, ...attrs }),
        errorSlot(`${id}-error`, `clips[${i}].${name}`));
    }

    function clipRow(c, i) {
      const a = itemOf(c);
      const thumb = a.thumbnail_url || a.poster_url;
      const fields = el("div", { class: "clip-fields" });
      if (c.kind === "video") {
        fields.append(
          numberField(i, "in", "In (s)", c.in, { placeholder: "0" }),
          numberField(i, "out", "Out (s)", c.out, { placeholder: a.duration != null ? a.duration.toFixed(1) : "end" }),
        );
      } else {
        const zid = `clip-${i}-zoom`;
        fields.append(
          numberField(i, "duration", "Hold (s)", c.duration, { placeholder: "3", max: 60 }),
          el("div", { class: "field field-toggle field-compact" },
            el("div", { class: "toggle" },
              el("input", { id: zid, type: "checkbox", checked: c.zoom, "aria-describedby": `${zid}-error`,
                dataset: { clipField: "zoom" } }),
              el("label", { for: zid, text: "Slow zoom" })),
            errorSlot(`${zid}-error`, `clips[${i}].zoom`)),
        );
      }
      const last = clips.length - 1;
      const button = (attrs, text) => el("button", { type: "button", class: "button button-quiet button-small", ...attrs }, text);
      return el("li", { class: `clip clip-${c.kind}`, dataset: { index: i } },
        el("span", { class: "clip-number", "aria-hidden": "true", text: String(i + 1) }),
        thumb ? el("img", { class: "clip-thumb", src: thumb, alt: "" })
          : el("span", { class: "clip-thumb pick-thumb-none", "aria-hidden": "true" }),
        el("div", { class: "clip-body" },
          el("p", { class: "clip-title" },
            el("span", { class: "visually-hidden", text: `Clip ${i + 1}: ` }),
            el("strong", { text: nameOf(c) }), " ", el("span", { class: "muted", text: truncate(a.prompt, 60) })),
          fields,
          errorSlot(`clip-${i}-error`, `clips[${i}] clips[${i}].video_id clips[${i}].image_id`)),
        el("div", { class: "clip-actions", role: "group", "aria-label": `Clip ${i + 1}` },
          button({ dataset: { move: "-1" }, disabled: i === 0, "aria-label": `Move clip ${i + 1} earlier` }, "↑"),
          button({ dataset: { move: "1" }, disabled: i === last, "aria-label": `Move clip ${i + 1} later` }, "↓"),
          button({ dataset: { remove: "" }, "aria-label": `Remove clip ${i + 1}, ${nameOf(c)}` }, "Remove")));
    }

    function renderTimeline(focusOn) {
      timeline.replaceChildren(...clips.map(clipRow));
      $("#timeline-empty").hidden = clips.length > 0;
      $("#clips-count").textContent = clips.length ? `(${clips.length})` : "";
      update();
      if (focusOn) focusOn()?.focus();
    }

    /** What is shown follows what will be made: a video (clips) or an audio master (none). */
    function update() {
      const m = mode();
      for (const node of $$("[data-when]", form)) node.hidden = node.dataset.when !== m;
      $("#background-field").hidden = m !== "video" || $("#fit").value !== "pad";
      $("#background-colour").disabled = $("#background").value !== "colour";
      $("#transition-duration").disabled = $("#transition").value !== "crossfade";
      $("#music-settings").hidden = !musicId();
      $("#length-optional").textContent = m === "video" ? "(optional)" : "";
      if (!submit.disabled) submit.textContent = m === "video" ? "Make the video" : "Master the audio";
      const lengths = clips.map(clipLength);
      let summary;
      if (m === "video") {
        const fade = $("#transition").value === "crossfade" ? numberOrNull($("#transition-duration").value) ?? 0 : 0;
        const known = lengths.every((x) => x != null);
        const total = known ? lengths.reduce((x, y) => x + y, 0) - fade * (clips.length - 1) : null;
        const length = numberOrNull($("#length").value);
        const aspect = $('input[name="aspect"]:checked', form)?.value || "16:9";
        summary = `A ${aspect} video from ${clips.length} clip${clips.length === 1 ? "" : "s"}`
          + (total != null ? ` (about ${fmtDuration(Math.max(0, total))})` : "")
          + (length != null ? `, cut to ${fmtDuration(length)}` : "")
          + (musicId() ? `, with music #${musicId()}` : "") + ".";
        $("#timeline-total").textContent = total != null ? `Edit: about ${fmtDuration(Math.max(0, total))}` : "";
      } else {
        summary = musicId() ? `An audio master of music #${musicId()}.` : "Add clips, or choose music to master.";
        $("#timeline-total").textContent = "";
      }
      $("#compose-summary").textContent = summary;
    }

    /* timeline: move, remove, edit */
    timeline.addEventListener("click", (e) => {
      const btn = e.target.closest("button");
      const row = btn && btn.closest("li.clip");
      if (!row) return;
      const i = Number(row.dataset.index);
      if (btn.dataset.move) {
        const j = i + Number(btn.dataset.move);
        if (j < 0 || j >= clips.length) return;
        [clips[i], clips[j]] = [clips[j], clips[i]];
        const which = btn.dataset.move;
        renderTimeline(() => {
          const moved = timeline.children[j];
          const same = $(`[data-move="${which}"]`, moved);
          return same && !same.disabled ? same : $(`[data-move="${-which}"]`, moved);
        });
        announce(`${nameOf(clips[j])} is now clip ${j + 1} of ${clips.length}.`);
      } else if ("remove" in btn.dataset) {
        const [gone] = clips.splice(i, 1);
        renderTimeline(() => {
          const next = timeline.children[Math.min(i, clips.length - 1)];
          return next ? $("[data-remove]", next) : $("#library-filter");
        });
        announce(`Removed ${nameOf(gone)}. ${clips.length} clip${clips.length === 1 ? "" : "s"} left.`);
      }
    });
    timeline.addEventListener("input", (e) => {
      const input = e.target;
      const row = input.closest("li.clip");
      if (!row || !input.dataset.clipField) return;
      const c = clips[Number(row.dataset.index)];
      c[input.dataset.clipField] = input.type === "checkbox" ? input.checked : input.value;
      update();
    });

    /* library: add, find */
    $(".library", form).addEventListener("click", (e) => {
      const btn = e.target.closest("[data-add-clip]");
      if (!btn) return;
      const c = newClip(btn.dataset.addClip, Number(btn.dataset.id));
      clips.push(c);
      renderTimeline();
      timeline.lastElementChild?.classList.add("is-new");
      clearError("clips");
      announce(`Added ${nameOf(c)} as clip ${clips.length}.`);
    });
    const filter = $("#library-filter");
    filter.addEventListener("input", () => {
      const q = filter.value.trim().toLowerCase();
      let shown = 0;
      for (const li of $$(".pick", form)) {
        li.hidden = Boolean(q) && !li.dataset.search.includes(q);
        if (!li.hidden) shown++;
      }
      $("#library-none").hidden = shown > 0;
    });
    filter.addEventListener("keydown", (e) => {
      if (e.key === "Enter") e.preventDefault(); // never submits the recipe by accident
    });

    /* output choices */
    for (const btn of $$("[data-length]", form)) {
      btn.addEventListener("click", () => {
        $("#length").value = btn.dataset.length;
        $("#length").dispatchEvent(new Event("input", { bubbles: true }));
      });
    }
    form.addEventListener("change", update);
    form.addEventListener("input", (e) => {
      // An edited field's error no longer describes it.
      const field = e.target.closest(".field, .clip, fieldset");
      const err = field && $(".field-error", field);
      if (err && !err.hidden) {
        err.hidden = true;
        err.textContent = "";
        e.target.removeAttribute("aria-invalid");
      }
      if (e.target.name === "music_id") clearError("music");
      if (!e.target.closest("#timeline")) update();
    });

    /* errors */
    function slotFor(field) {
      const slots = $$("[data-error-for]", form);
      let name = field;
      while (name) {
        const slot = slots.find((n) => n.dataset.errorFor.split(" ").includes(name));
        if (slot) return slot;
        const cut = Math.max(name.lastIndexOf("."), name.lastIndexOf("["));
        name = cut > 0 ? name.slice(0, cut) : "";
      }
      return null;
    }

    function clearError(field) {
      const slot = slotFor(field);
      if (slot) {
        slot.hidden = true;
        slot.textContent = "";
      }
    }

    const clearErrors = () => clearFormErrors(form, formError, "[data-error-for]");

    function showErrors(failure) {
      const errors = failure.body.errors || [];
      const unplaced = [];
      let first = null;
      for (const { field, message } of errors) {
        const slot = slotFor(field);
        if (slot) {
          slot.textContent = capitalise(message);
          slot.hidden = false;
        }
        if (!slot || !slot.getClientRects().length) {
          unplaced.push(`${field}: ${message}`);
          continue;
        }
        const control = $(`[aria-describedby~="${CSS.escape(slot.id)}"]`, form);
        if (control) control.setAttribute("aria-invalid", "true");
        first = first || control || slot;
      }
      if (!errors.length || unplaced.length) {
        formError.textContent = unplaced.length ? unplaced.join("; ") : failure.message;
        if (failure.status === 429) formError.textContent = `${failure.message} Wait a moment and try again.`;
        formError.hidden = false;
      }
      const target = first || formError;
      target.scrollIntoView({ block: "center" });
      target.focus?.({ preventScroll: true });
    }

    /* the recipe */
    function collect() {
      const errors = [];
      const read = (input, field) => {
        if (input.validity.badInput) {
          errors.push({ field, message: "enter a number" });
          return null;
        }
        return numberOrNull(input.value);
      };
      const body = {};
      const m = mode();
      if (m === "video") {
        body.clips = clips.map((c, i) => {
          const clip = { [`${c.kind}_id`]: c.id };
          for (const input of $$("input[type=number][data-clip-field]", timeline.children[i])) {
            const v = read(input, `clips[${i}].${input.dataset.clipField}`);
            if (v != null) clip[input.dataset.clipField] = v;
          }
          if (c.kind === "image" && c.zoom) clip.zoom = true;
          return clip;
        });
        body.transition = $("#transition").value === "crossfade"
          ? { type: "crossfade", duration: read($("#transition-duration"), "transition.duration") ?? 0.5 }
          : { type: "cut" };
        body.aspect = $('input[name="aspect"]:checked', form)?.value || "16:9";
        body.fit = $("#fit").value;
        if (body.fit === "pad") {
          body.background = $("#background").value === "colour" ? $("#background-colour").value : "blur";
        }
      } else {
        body.output_format = $("#output_format").value;
      }
      if (musicId()) {
        const music = { audio_id: Number(musicId()), loop: $("#music-loop").checked };
        for (const name of ["offset", "start", "fade_in", "fade_out"]) {
          const v = read($(`#music-${name}`), `music.${name}`);
          if (v != null) music[name] = v;
        }
        if (m === "video") music.mode = $("#music-mode").value;
        body.music = music;
      } else if (m === "audio") {
        errors.push({ field: "music", message: "add clips from the library, or choose the music to master" });
      }
      const length = read($("#length"), "length");
      if (length != null) body.length = length;
      else if (m === "audio" && musicId()) errors.push({ field: "length", message: "say how long the master is, in seconds" });
      body.loudness = $("#loudness").value;
      const title = $("#title").value.trim();
      if (title) body.title = title;
      Object.assign(body, filingChoices());
      return { body, errors };
    }

    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      if (submit.disabled) return;
      clearErrors();
      const { body, errors } = collect();
      if (errors.length) {
        showErrors(new ApiFailure(422, { detail: "Check the highlighted fields", errors }));
        return;
      }
      const label = submit.textContent;
      submit.disabled = true;
      submit.setAttribute("aria-busy", "true");
      submit.textContent = "Starting…";
      try {
        const res = await api("POST", "/api/v2/compose", body);
        submit.textContent = "Started — opening…";
        window.location.assign(`/assets/${res.kind}/${res.id}`);
      } catch (err) {
        const kind = body.clips ? "video" : "audio";
        const failed = failedGenerationId(err, kind);
        if (failed != null) {
          window.location.assign(`/assets/${kind}/${failed}`);
          return;
        }
        submit.disabled = false;
        submit.removeAttribute("aria-busy");
        submit.textContent = label;
        showErrors(err instanceof ApiFailure ? err : new ApiFailure(0, { detail: String(err) }));
      }
    });

    initFiling();
    renderTimeline();
  }

  /* ---------------------------------------------------------------- galleries */

  const shared = { audio: null, button: null, frame: 0 };

  function cardCanvas(button) {
    return button && $("canvas.card-wave", button.closest(".card"));
  }

  function drawCard(canvas, progress) {
    if (!canvas || !canvas._peaks) return;
    window.MediagenWave.draw(canvas, canvas._peaks, progress, { bar: 2, gap: 1 });
  }

  function sharedProgress() {
    const a = shared.audio;
    return a && Number.isFinite(a.duration) && a.duration ? a.currentTime / a.duration : 0;
  }

  function setPressed(button, on) {
    if (!button) return;
    button.setAttribute("aria-pressed", on ? "true" : "false");
    button.closest(".card")?.classList.toggle("is-playing", on);
    const label = button.getAttribute("aria-label") || "";
    button.setAttribute("aria-label", label.replace(/^(Play|Pause)/, on ? "Pause" : "Play"));
  }

  /** One <audio> for the whole gallery: starting a card stops whichever was playing. */
  function togglePlay(button) {
    if (!shared.audio) {
      shared.audio = new Audio();
      shared.audio.preload = "none";
      const loop = () => {
        drawCard(cardCanvas(shared.button), sharedProgress());
        shared.frame = shared.audio.paused ? 0 : requestAnimationFrame(loop);
      };
      shared.audio.addEventListener("play", () => {
        setPressed(shared.button, true);
        if (!shared.frame) shared.frame = requestAnimationFrame(loop);
      });
      shared.audio.addEventListener("pause", () => setPressed(shared.button, false));
      shared.audio.addEventListener("ended", () => {
        setPressed(shared.button, false);
        drawCard(cardCanvas(shared.button), null);
      });
    }
    const a = shared.audio;
    if (shared.button === button && !a.paused) {
      a.pause();
      return;
    }
    if (shared.button !== button) {
      if (shared.button) {
        a.pause();
        setPressed(shared.button, false);
        drawCard(cardCanvas(shared.button), null);
      }
      shared.button = button;
      a.src = button.dataset.src;
    }
    a.play().catch(() => setPressed(button, false));
  }

  let waveObserver = null;

  function enhanceCards(root) {
    localTimes(root);
    for (const canvas of $$("canvas.card-wave[data-waveform]", root)) {
      if (!canvas.dataset.waveform) continue;
      if (!waveObserver && "IntersectionObserver" in window) {
        waveObserver = new IntersectionObserver((entries) => {
          for (const entry of entries) {
            if (!entry.isIntersecting) continue;
            waveObserver.unobserve(entry.target);
            paintCardWave(entry.target);
          }
        }, { rootMargin: "200px" });
      }
      if (waveObserver) waveObserver.observe(canvas);
      else paintCardWave(canvas);
    }
    for (const button of $$(".play-button", root)) {
      button.addEventListener("click", (e) => {
        e.preventDefault();
        togglePlay(button);
      });
    }
  }

  function paintCardWave(canvas) {
    window.MediagenWave.draw(canvas, null, null);
    window.MediagenWave.loadPeaks(canvas.dataset.waveform).then((peaks) => {
      canvas._peaks = peaks;
      const playing = shared.button && cardCanvas(shared.button) === canvas;
      drawCard(canvas, playing ? sharedProgress() : null);
    }).catch(() => {});
  }

  /** Cards of running jobs fetch their own fresh markup until they finish. */
  function refreshRunningCards() {
    let busy = false;
    const tick = async () => {
      const cards = $$("li.card[data-refresh]");
      if (!cards.length) return;
      if (!busy && !window.Mediagen.live?.connected) { // live.js refreshes cards while its stream is open
        busy = true;
        for (const card of cards) {
          try {
            const res = await fetch(card.dataset.refresh, { credentials: "same-origin" });
            if (res.status === 404) {
              card.remove();
              continue;
            }
            if (res.redirected) return; // signed out: stop rather than paint the login page in
            if (!res.ok) continue;
            const tpl = document.createElement("template");
            tpl.innerHTML = (await res.text()).trim();
            const fresh = tpl.content.firstElementChild;
            if (fresh && fresh.matches("li.card") && fresh.dataset.status !== card.dataset.status) {
              card.replaceWith(fresh);
              enhanceCards(fresh);
            }
          } catch (err) {
            /* try again next tick */
          }
        }
        busy = false;
      }
      setTimeout(tick, 1000);
    };
    setTimeout(tick, 1000);
  }

  function initGallery() {
    if (!$(".card")) return;
    enhanceCards(document);
    refreshRunningCards();
    if (window.ResizeObserver) {
      new ResizeObserver(() => {
        for (const c of $$("canvas.card-wave")) {
          const playing = shared.button && cardCanvas(shared.button) === c;
          drawCard(c, playing ? sharedProgress() : null);
        }
      }).observe(document.body);
    }
  }

  /* What the feature scripts (review.js, share.js, live.js, takes.js) share with this one. */
  window.Mediagen = {
    $, $$, api, ApiFailure, csrf, el, KINDS, RUNNING, apiPath, galleryOf, fmtDuration, fmtSize, fmtUsd,
    clearFormErrors, localTimes, confirmDialog, buildPlayer, enhanceCards, narrowPickers,
  };

  document.addEventListener("DOMContentLoaded", () => {
    localTimes();
    initConfirmForms();
    initCopyButtons();
    initAutosubmit();
    initIdSuggestion();
    initGenerate();
    initAsset();
    initExportDialog();
    initExportPage();
    initCompose();
    initGallery();
  });
})();
