/* The project dashboard: learning curve, queue, LF table, annotators, jobs. */
"use strict";

const Dashboard = {
  timer: null,

  async open(projectId) {
    Dashboard.close();
    Dashboard.projectId = projectId;
    await Dashboard.refresh();
    Dashboard.timer = setInterval(() => Dashboard.refresh().catch(() => {}), 5000);
  },

  close() { clearInterval(Dashboard.timer); Dashboard.timer = null; },

  async refresh() {
    const p = encodeURIComponent(Dashboard.projectId);
    const [d, lfs] = await Promise.all([
      Api.get(`/projects/${p}/dashboard`),
      Api.get(`/projects/${p}/lfs/analysis`).then(a => a.lfs).catch(e => ({ error: e.message })),
    ]);
    if (Dashboard.projectId === null) return;
    Dashboard.render(d, lfs);
  },

  render(d, lfs) {
    const view = document.getElementById("view");
    const curve = d.curve;
    const pts = (model, metric) => curve.map(r => {
      const m = r[model] || {}, ci = m[metric + "_ci"];
      return { x: r.labels, y: m[metric], lo: ci ? ci[0] : null, hi: ci ? ci[1] : null };
    });
    const measured = curve.some(r => r.end_model.accuracy !== null || r.label_model.accuracy !== null);
    const curveCard = el("section", { class: "card", id: "curve" }, el("h2", {}, "Learning curve (evaluation slice, 95% intervals)"),
      !curve.length ? el("p", { class: "muted" }, "No round yet.")
        : !measured ? el("p", { class: "muted", id: "no-eval" }, "No round has evaluation labels yet: the evaluation slice is mixed into every batch, so it fills as people label.")
        : Plot.lines([
        { name: "accuracy", color: "#2f6fde", points: pts("end_model", "accuracy") },
        { name: "macro-F1", color: "#1f8a4c", points: pts("end_model", "macro_f1") },
        { name: "label model acc.", color: "#b26a00", dash: "5 4", points: pts("label_model", "accuracy") },
      ], { title: "accuracy and macro-F1 against human labels", xLabel: "human labels" }),
      curve.length ? el("table", { id: "rounds" },
        el("tr", {}, ["round", "labels", "strategy", "accuracy", "macro-F1", "eval n"].map(h => el("th", {}, h))),
        curve.slice().reverse().map(r => el("tr", {}, el("td", {}, String(r.round)), el("td", { class: "num" }, String(r.labels)),
          el("td", {}, r.strategy), el("td", { class: "num" }, fmt(r.end_model.accuracy)),
          el("td", { class: "num" }, fmt(r.end_model.macro_f1)), el("td", { class: "num" }, String(r.end_model.n))))) : null);
    const q = d.queue;
    const queueCard = el("section", { class: "card", id: "queue" }, el("h2", {}, "Queue and leases"),
      Plot.stacked([
        { name: "open", value: q.open - q.leased > 0 ? q.open - q.leased : 0, color: "#d9dee7" },
        { name: "leased", value: q.leased, color: "#2f6fde" },
        { name: "done", value: q.done, color: "#1f8a4c" },
        { name: "flagged", value: q.flagged, color: "#c0362c" },
      ], { title: "items by state" }),
      el("p", { class: "muted" }, `${q.total} items, ${q.eval} in the evaluation slice.`));
    const lfCard = el("section", { class: "card", id: "lfs" }, el("h2", {}, "Labeling functions"),
      lfs.error ? el("p", { class: "error" }, lfs.error) : !lfs.length ? el("p", { class: "muted" }, "No labeling functions.") :
      el("table", {}, el("tr", {}, ["LF", "coverage", "overlaps", "conflicts", "emp. accuracy", "faults"].map(h => el("th", { class: h === "LF" ? "" : "num" }, h))),
        lfs.map(r => el("tr", {}, el("td", {}, r.name),
          el("td", { class: "num" }, fmt(r.coverage)), el("td", { class: "num" }, fmt(r.overlaps)),
          el("td", { class: "num" }, fmt(r.conflicts)), el("td", { class: "num" }, fmt(r.emp_accuracy)),
          el("td", { class: "num" }, String(r.faults ?? 0))))));
    const annCard = el("section", { class: "card", id: "annotators" }, el("h2", {}, "Annotators"),
      d.annotators.length ? el("table", {}, el("tr", {}, ["annotator", "labels", "skips", "flags", "last 24 h", "s / answer"].map(h => el("th", {}, h))),
        d.annotators.map(a => el("tr", {}, el("td", {}, a.annotator), el("td", { class: "num" }, String(a.labels)),
          el("td", { class: "num" }, String(a.skips)), el("td", { class: "num" }, String(a.flags)),
          el("td", { class: "num" }, String(a.labels_last_day)), el("td", { class: "num" }, fmt(a.median_s_per_answer, 1)))))
        : el("p", { class: "muted" }, "No answers yet."));
    const jobsCard = el("section", { class: "card", id: "jobs" }, el("h2", {}, "Jobs"),
      el("button", { id: "start-round", onclick: () => Dashboard.startRound() }, "Start a round"),
      d.jobs.length ? el("table", {}, el("tr", {}, ["job", "kind", "status", "progress", "message"].map(h => el("th", {}, h))),
        d.jobs.map(j => el("tr", {}, el("td", {}, j.id), el("td", {}, j.kind), el("td", {}, j.status),
          el("td", { style: "min-width:120px" }, el("div", { class: "bar" }, el("span", { style: `width:${j.total ? Math.round(100 * j.done / j.total) : (j.status === "succeeded" ? 100 : 0)}%` }))),
          el("td", { class: "muted" }, j.error || j.message || "")))) : el("p", { class: "muted" }, "No jobs."));
    view.replaceChildren(el("h1", {}, `Project ${d.project}`),
      el("p", {}, el("a", { href: `#/label/${encodeURIComponent(d.project)}` }, "Label this project →")),
      el("div", { class: "grid2" }, curveCard, el("div", {}, queueCard, annCard)), lfCard, jobsCard);
    document.body.dataset.state = "dashboard";
  },

  async startRound() {
    try {
      await Api.post(`/projects/${encodeURIComponent(Dashboard.projectId)}/jobs`, { kind: "round" });
      toast("round started");
      await Dashboard.refresh();
    } catch (e) { toast(e.message); }
  },
};
