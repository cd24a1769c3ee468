/* The review view (#/review/P, reviewer role): lease items of the review queue, read the earlier
   answers and why each item is there, decide with a class key, say why, Enter to record. Each
   decision is submitted at once (a "review" annotation); renew and release as the labeling view. */
"use strict";

function whyInWords(r) {
  if (!r) return "";
  if (r.why === "disagreement")
    return `the annotators disagree: ${r.annotators} answers, ${Math.round(100 * r.agreement)}% on the most-given class`;
  const parts = [`the label ${r.label ? "“" + r.label + "”" : ""} may be wrong`];
  if (r.suggested && r.suggested !== r.label) parts.push(`the models suggest ${r.suggested}`);
  return parts.join("; ");
}

const Review = {
  s: null,

  async open(projectId, me) {
    Review.leave();
    const project = await Api.get(`/projects/${encodeURIComponent(projectId)}`);
    Review.s = { project, me, lease: null, items: [], i: 0, choice: null, shownAt: 0, decided: 0, renew: null };
    document.addEventListener("keydown", Review.onKey);
    await Review.next();
  },

  leave() {
    document.removeEventListener("keydown", Review.onKey);
    const s = Review.s;
    if (s && s.lease && s.i < s.items.length) {
      clearInterval(s.renew);
      fetch(`/leases/${s.lease.lease_id}/release`, { method: "POST", headers: Api.headers(),
        body: JSON.stringify({ annotator: s.me.name }), keepalive: true }).catch(() => {});
    }
    if (s) clearInterval(s.renew);
    Review.s = null;
  },

  async next() {
    const s = Review.s;
    document.body.dataset.state = "leasing";
    s.lease = await Api.post(`/projects/${encodeURIComponent(s.project.id)}/review/leases`, { annotator: s.me.name });
    s.items = s.lease.items;
    s.i = 0;
    s.choice = null;
    s.comment = "";
    s.shownAt = performance.now();
    clearInterval(s.renew);
    const ttl = s.project.settings.lease_ttl_s;
    s.renew = s.items.length ? setInterval(Review.renewLease, Math.max(0.5, ttl / 3) * 1000) : null;
    Review.render();
  },

  async renewLease() {
    const s = Review.s;
    if (!s || !s.lease) return;
    try {
      const got = await Api.post(`/leases/${s.lease.lease_id}/renew`, { annotator: s.me.name });
      s.lease.expires_at = got.expires_at;
    } catch (e) { toast("could not renew the lease: " + e.message); }
  },

  choose(label) {
    const s = Review.s;
    s.choice = label;
    Review.render();
    document.getElementById("review-comment").focus();
  },

  async decide() {
    const s = Review.s, it = s.items[s.i];
    const box = document.getElementById("review-comment");
    const comment = (box ? box.value : s.comment || "").trim();
    if (!s.choice) { toast("pick a class first (its number key)"); return; }
    if (!comment) { toast("say why: the decision needs a comment"); return; }
    const annotation = { item_id: it.id, lease_id: s.lease.lease_id, kind: "review", label: s.choice, comment,
                         idempotency_key: `${s.lease.lease_id}/${it.id}`,
                         time_spent_s: Math.min(86399, (performance.now() - s.shownAt) / 1000) };
    document.body.dataset.state = "submitting";
    try {
      await Api.post(`/projects/${encodeURIComponent(s.project.id)}/annotations`, { annotator: s.me.name, annotations: [annotation] });
    } catch (e) {
      document.body.dataset.state = "error";
      toast("decision not recorded: " + e.message);
      return;
    }
    s.decided += 1;
    toast(`recorded: ${it.id} is ${s.choice}`);
    s.i += 1;
    s.choice = null;
    s.comment = "";
    s.shownAt = performance.now();
    if (s.i >= s.items.length) { clearInterval(s.renew); await Review.next(); } else Review.render();
  },

  onKey(ev) {
    const s = Review.s;
    if (!s || !s.lease || s.i >= s.items.length) return;
    if (ev.target && ev.target.id === "review-comment") {
      if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); Review.decide(); }
      else if (ev.key === "Escape") { ev.preventDefault(); ev.target.blur(); }
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const k = KEYS.indexOf(ev.key);
    if (k >= 0 && k < s.lease.classes.length) { ev.preventDefault(); Review.choose(s.lease.classes[k].name); }
    else if (ev.key === "Enter" && s.choice) { ev.preventDefault(); Review.decide(); }
  },

  render() {
    const s = Review.s, view = document.getElementById("view");
    const head = el("div", { class: "card progress-line", id: "progress" },
      el("span", {}, "Review queue of ", el("b", {}, s.project.id)),
      el("span", {}, "Decided here: ", el("b", { id: "decided" }, String(s.decided))),
      el("span", {}, "This batch: ", el("b", {}, `${Math.min(s.i, s.items.length)} / ${s.items.length}`)));
    if (!s.items.length) {
      document.body.dataset.state = s.lease.exhausted ? "exhausted" : "empty";
      view.replaceChildren(head, el("div", { class: "card", id: "nothing" },
        s.lease.exhausted ? "Nothing waits for your review in this project."
          : "Every item of the review queue is leased to another reviewer right now.",
        el("div", {}, el("button", { onclick: () => Review.next() }, "Try again"))));
      return;
    }
    document.body.dataset.state = "ready";
    const it = s.items[s.i], classes = s.lease.classes;
    const card = el("section", { class: "card", id: "item", "data-item-id": it.id },
      el("div", { class: "muted" }, `Item ${s.i + 1} of ${s.items.length} · ${it.id}`),
      it.text !== null && it.text !== undefined ? el("div", { class: "item-text", id: "item-text" }, it.text) : null,
      el("p", { class: "why", id: "why" }, "Why it is here: ", whyInWords(it.review), "."),
      it.review && it.review.reasons ? el("ul", { class: "muted", id: "review-reasons" }, it.review.reasons.map(r => el("li", {}, r))) : null,
      el("h2", {}, "Earlier answers"),
      el("table", { id: "answers" },
        el("tr", {}, el("th", {}, "annotator"), el("th", {}, "answer"), el("th", {}, "comment"), el("th", { class: "num" }, "guidelines")),
        it.answers.map(a => el("tr", {}, el("td", {}, a.annotator),
          el("td", { class: `answer ${a.kind}` }, a.label !== null ? a.label : a.kind),
          el("td", { class: "muted" }, a.comment || ""),
          el("td", { class: "num" }, a.guidelines_version === null ? "–" : `v${a.guidelines_version}`)))),
      el("h2", {}, "Your decision"),
      el("div", { id: "choices" }, classes.map((c, k) => el("button", {
        class: s.choice === c.name ? "" : "secondary", "data-class": c.name, onclick: () => Review.choose(c.name) },
        `${KEYS[k] || ""} ${c.name}`))),
      el("label", { for: "review-comment" }, "Why (Enter to record the decision)"),
      el("textarea", { id: "review-comment", rows: 2, maxlength: 4000, oninput: e => { s.comment = e.target.value; } }, s.comment || ""),
      el("button", { id: "decide", onclick: () => Review.decide() }, "Record decision"));
    const side = el("aside", {},
      el("div", { class: "card" }, el("h2", {}, "Classes"),
        el("ul", { class: "classes" }, classes.map((c, k) => el("li", {},
          el("kbd", {}, KEYS[k] || ""), " ", el("b", {}, c.name),
          c.description ? el("div", { class: "muted" }, c.description) : null)))),
      el("details", { class: "card", id: "guidelines", open: !!s.project.guidelines },
        el("summary", {}, `Guidelines (version ${s.lease.guidelines_version})`),
        el("div", { class: "item-text" }, s.project.guidelines || "No guidelines yet.")));
    view.replaceChildren(head, el("div", { class: "layout" }, card, side));
  },
};

window.addEventListener("pagehide", () => Review.leave());
