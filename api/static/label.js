/* The labeling view: lease a batch, answer each item with the keyboard, submit, next. */
"use strict";

const KEYS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0"];

const SCORERS = {
  entropy: "the model is unsure between the classes (high entropy)",
  least_confidence: "the model is not confident about its top class",
  margin: "the model's top two classes are close",
  uniform: "picked at random",
  lf_conflict: "labeling functions disagree on it",
  low_coverage: "few labeling functions fire on it",
  label_model_entropy: "the label model is unsure about it",
  lm_disagreement: "the label model and the end model disagree",
  distance_to_nearest_center: "it is unlike the items picked so far",
  mutual_information: "models trained on the same labels disagree about it (BALD)",
};

/* Why an item was picked, in words (the strategy's reason record). */
function reasonsInWords(r, showSuggestions, classes) {
  if (!r || typeof r !== "object") return "next in the pool";
  const parts = [];
  if (r.strategy === "evaluation_slice") parts.push("part of the evaluation slice: a random sample that measures the model");
  if (r.strategy === "pool_order") parts.push("next in the pool: no round has ranked it yet");
  const scorer = SCORERS[r.scorer] || SCORERS[r.strategy];
  if (scorer) parts.push(scorer + (typeof r.value === "number" && r.scorer !== "uniform" ? ` (score ${r.value.toFixed(3)})` : ""));
  if (r.assertion) parts.push(`model assertion “${r.assertion}” flags it`);
  if (r.mode) parts.push({ exploit: "drawn for an assertion that has been improving",
                           explore: "drawn to explore a less-tried assertion",
                           fallback: "no assertion improved, so uncertainty picked it" }[r.mode] || `mode ${r.mode}`);
  if (r.arm) parts.push(`the auto strategy chose ${r.arm} for this round`);
  if (r.fallback) parts.push(String(r.fallback));
  if (showSuggestions && r.predicted !== undefined && classes[r.predicted]) parts.push(`the model predicts ${classes[r.predicted].name}`);
  if (!parts.length) parts.push(r.strategy ? `picked by the ${r.strategy} strategy` : "next in the pool");
  return parts.join("; ") + ".";
}

const Label = {
  s: null,

  async open(projectId, me) {
    Label.leave();
    const project = await Api.get(`/projects/${encodeURIComponent(projectId)}`);
    Label.s = { project, me, lease: null, items: [], i: 0, answers: [], shownAt: 0, submitted: 0, renew: null };
    document.addEventListener("keydown", Label.onKey);
    await Label.next();
  },

  leave() {
    document.removeEventListener("keydown", Label.onKey);
    if (Label.s) Label.release(true);
    Label.s = null;
  },

  setState(state) { document.body.dataset.state = state; },

  async next() {
    const s = Label.s;
    Label.setState("leasing");
    s.lease = await Api.post(`/projects/${encodeURIComponent(s.project.id)}/leases`, { annotator: s.me.name });
    s.items = s.lease.items;
    s.i = 0;
    s.answers = s.items.map(() => null);
    s.spent = s.items.map(() => 0);
    s.shownAt = performance.now();
    clearInterval(s.renew);
    const ttl = s.project.settings.lease_ttl_s;  // the server's, not this browser's clock
    s.renew = s.items.length ? setInterval(Label.renew, Math.max(0.5, ttl / 3) * 1000) : null;
    await Label.refreshProgress();
    Label.render();
  },

  async renew() {
    const s = Label.s;
    if (!s || !s.lease) return;
    try {
      const got = await Api.post(`/leases/${s.lease.lease_id}/renew`, { annotator: s.me.name });
      s.lease.expires_at = got.expires_at;
    } catch (e) { toast("could not renew the lease: " + e.message); }
  },

  /* Give back what was not submitted (on leaving the page: keepalive survives the unload). */
  release(onLeave) {
    const s = Label.s;
    if (!s || !s.lease || !s.items.length) return;
    clearInterval(s.renew);
    const body = JSON.stringify({ annotator: s.me.name });
    fetch(`/leases/${s.lease.lease_id}/release`, { method: "POST", headers: Api.headers(), body, keepalive: !!onLeave })
      .catch(() => {});
    s.lease = null;
  },

  async refreshProgress() {
    const s = Label.s;
    try {
      s.progress = await Api.get(`/projects/${encodeURIComponent(s.project.id)}/progress?annotator=${encodeURIComponent(s.me.name)}`);
    } catch (e) { s.progress = null; }
  },

  answer(a) {
    const s = Label.s;
    if (s.i >= s.items.length) return;
    s.spent[s.i] += (performance.now() - s.shownAt) / 1000;
    s.answers[s.i] = a;
    s.i += 1;
    s.shownAt = performance.now();
    Label.render();
  },

  undo() {
    const s = Label.s;
    if (s.i === 0) return;
    s.i -= 1;
    s.answers[s.i] = null;
    s.shownAt = performance.now();
    Label.render();
  },

  async submit() {
    const s = Label.s;
    const annotations = s.items.map((it, k) => {
      const a = s.answers[k];
      const out = { item_id: it.id, lease_id: s.lease.lease_id, kind: a.kind,
                    idempotency_key: `${s.lease.lease_id}/${it.id}`, time_spent_s: Math.min(86399, s.spent[k]) };
      if (a.kind === "label") out.label = a.label;
      if (a.comment) out.comment = a.comment;
      return out;
    });
    Label.setState("submitting");
    try {
      await Api.post(`/projects/${encodeURIComponent(s.project.id)}/annotations`, { annotator: s.me.name, annotations });
    } catch (e) {
      Label.setState("error");
      toast("submit failed: " + e.message + " (press Enter to retry)");
      return;
    }
    clearInterval(s.renew);
    s.submitted += annotations.length;
    s.lease = null;
    toast(`submitted ${annotations.length} answers`);
    await Label.next();
  },

  onKey(ev) {
    const s = Label.s;
    if (!s || !s.lease) return;
    const box = document.getElementById("flag-comment");
    if (box) {
      if (ev.key === "Enter" && !ev.shiftKey) {
        ev.preventDefault();
        Label.answer({ kind: "flag", comment: box.value.trim() });
      } else if (ev.key === "Escape") { ev.preventDefault(); Label.render(); }
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const done = s.i >= s.items.length;
    const k = KEYS.indexOf(ev.key);
    if (!done && k >= 0 && k < s.lease.classes.length) { ev.preventDefault(); Label.answer({ kind: "label", label: s.lease.classes[k].name }); }
    else if (!done && ev.key === "s") { ev.preventDefault(); Label.answer({ kind: "skip" }); }
    else if (!done && ev.key === "f") { ev.preventDefault(); Label.showFlag(); }
    else if (ev.key === "u" || ev.key === "Backspace") { ev.preventDefault(); Label.undo(); }
    else if (done && ev.key === "Enter" && s.items.length) { ev.preventDefault(); Label.submit(); }
  },

  showFlag() {
    const slot = document.getElementById("flag-slot");
    slot.replaceChildren(
      el("label", { for: "flag-comment" }, "Why flag this item? (Enter to flag, Esc to cancel)"),
      el("textarea", { id: "flag-comment", rows: 2, maxlength: 4000 }));
    document.getElementById("flag-comment").focus();
  },

  render() {
    const s = Label.s, view = document.getElementById("view");
    const classes = s.lease.classes;
    const p = s.progress;
    const head = el("div", { class: "card progress-line", id: "progress" },
      el("span", {}, "Labeled today: ", el("b", { id: "labeled-today" }, p ? String(p.labeled_today) : "–")),
      el("span", {}, "Left in the queue: ", el("b", { id: "left-in-queue" }, p ? String(p.left_in_queue) : "–")),
      el("span", {}, "This batch: ", el("b", {}, `${Math.min(s.i, s.items.length)} / ${s.items.length}`)),
      p && p.agreement !== null && p.agreement !== undefined
        ? el("span", {}, "Your agreement: ", el("b", {}, fmt(p.agreement, 2))) : null);
    if (!s.items.length) {
      Label.setState(s.lease.exhausted ? "exhausted" : "empty");
      view.replaceChildren(head, el("div", { class: "card", id: "nothing" },
        s.lease.exhausted ? "Nothing is left for you to label in this project. Thank you!"
          : "Every open item is leased to someone else right now.",
        el("div", {}, el("button", { onclick: () => Label.next() }, "Try again"))));
      return;
    }
    const side = el("aside", {},
      el("div", { class: "card" }, el("h2", {}, "Classes"),
        el("ul", { class: "classes" }, classes.map((c, k) => el("li", {},
          el("kbd", {}, KEYS[k] || ""), " ", el("b", {}, c.name),
          c.description ? el("div", { class: "muted" }, c.description) : null))),
        el("div", { class: "muted" }, el("kbd", {}, "s"), " skip  ", el("kbd", {}, "f"), " flag  ",
           el("kbd", {}, "u"), " undo  ", el("kbd", {}, "Enter"), " submit")),
      el("details", { class: "card", id: "guidelines", open: !!s.project.guidelines },
        el("summary", {}, `Guidelines (version ${s.lease.guidelines_version})`),
        el("div", { class: "item-text" }, s.project.guidelines || "No guidelines yet.")));
    let mainCard;
    if (s.i < s.items.length) {
      Label.setState("ready");
      const it = s.items[s.i];
      const feats = Object.entries(it.features || {});
      mainCard = el("section", { class: "card", id: "item", "data-item-id": it.id },
        el("div", { class: "muted" }, `Item ${s.i + 1} of ${s.items.length} · ${it.id}`),
        it.text !== null && it.text !== undefined ? el("div", { class: "item-text", id: "item-text" }, it.text) : null,
        feats.length ? el("table", { id: "features" }, el("tr", {}, el("th", {}, "feature"), el("th", { class: "num" }, "value")),
          feats.map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", { class: "num" }, fmt(v, 4))))) : null,
        el("p", { class: "why", id: "why" }, "Why this item: ", reasonsInWords(it.reasons, s.lease.show_suggestions, classes)),
        s.lease.show_suggestions ? Label.suggestion(it) : null,
        el("div", {}, classes.map((c, k) => el("button", { class: "secondary", onclick: () => Label.answer({ kind: "label", label: c.name }) },
          `${KEYS[k] || ""} ${c.name}`)),
          el("button", { class: "secondary", onclick: () => Label.answer({ kind: "skip" }) }, "skip"),
          el("button", { class: "secondary", onclick: () => Label.showFlag() }, "flag"),
          s.i > 0 ? el("button", { class: "secondary", onclick: () => Label.undo() }, "undo") : null),
        el("div", { id: "flag-slot" }));
    } else {
      Label.setState("review");
      mainCard = el("section", { class: "card", id: "review" },
        el("h2", {}, "Batch done: press Enter to submit, u to undo"),
        el("table", {}, s.items.map((it, k) => {
          const a = s.answers[k];
          const text = it.text || "";
          return el("tr", {}, el("td", {}, it.id),
            el("td", { class: "muted" }, text.length > 80 ? text.slice(0, 79) + "…" : text),
            el("td", { class: `answer ${a.kind}` },
            a.kind === "label" ? a.label : a.kind), el("td", { class: "muted" }, a.comment || ""));
        })),
        el("button", { onclick: () => Label.submit() }, "Submit"));
    }
    view.replaceChildren(head, el("div", { class: "layout" }, mainCard, side));
  },

  suggestion(it) {
    if (!it.suggestion && !(it.lf_votes && Object.keys(it.lf_votes).length)) return null;
    return el("div", { class: "suggestion", id: "suggestion" },
      it.suggestion ? el("div", {}, `Model suggests ${it.suggestion.label} (${fmt(it.suggestion.confidence, 2)})`) : null,
      it.lf_votes && Object.keys(it.lf_votes).length
        ? el("div", { class: "muted" }, "LF votes: " + Object.entries(it.lf_votes).map(([k, v]) => `${k} → ${v}`).join(", ")) : null);
  },
};

window.addEventListener("pagehide", () => Label.leave());
