/* The page's router and sign-in. Views live after "#": #/ (sign in, projects),
   #/label/P (label project P), #/review/P (P's review queue: adjudication and label errors,
   reviewer role and above), #/projects/P (P's dashboard, engineers). */
"use strict";

const App = {
  me: null,

  async whoami() {
    const me = await Api.get("/me");
    const open = me.name === "local" && !Api.token();  // a server without tokens
    const name = sessionStorage.getItem("labelloop.name");
    App.me = { ...me, open, name: open ? (name || "") : me.name };
    return App.me;
  },

  nav() {
    const who = document.getElementById("who"), nav = document.getElementById("nav");
    nav.replaceChildren();
    who.replaceChildren();
    if (!App.me || !App.me.name) return;
    who.append(`${App.me.name} (${App.me.role}${App.me.open ? ", open server" : ""}) `,
      el("button", { class: "secondary", id: "sign-out", onclick: App.signOut }, "Sign out"));
  },

  signOut() {
    Label.leave();
    Review.leave();
    sessionStorage.removeItem("labelloop.token");
    sessionStorage.removeItem("labelloop.name");
    App.me = null;
    location.hash = "#/";
    App.route();
  },

  signInView(error) {
    document.body.dataset.state = "signin";
    const form = el("form", { class: "card", id: "signin", onsubmit: async ev => {
      ev.preventDefault();
      Api.setToken(document.getElementById("token").value.trim());
      const name = document.getElementById("name").value.trim();
      if (name) sessionStorage.setItem("labelloop.name", name);
      try {
        const me = await App.whoami();
        if (me.open && !me.name) { App.signInView("This server has no tokens: give a name to label under."); return; }
        App.route();
      } catch (e) { Api.setToken(""); App.signInView(e.status === 401 ? "Unknown token." : e.message); }
    } },
      el("h1", {}, "Sign in"),
      el("label", { for: "token" }, "Token (leave empty on a server without tokens)"),
      el("input", { id: "token", type: "password", autocomplete: "off" }),
      el("label", { for: "name" }, "Your name (only on a server without tokens)"),
      el("input", { id: "name", type: "text", autocomplete: "username" }),
      el("button", { type: "submit", id: "signin-button" }, "Sign in"),
      error ? el("p", { class: "error", id: "signin-error" }, error) : null);
    document.getElementById("view").replaceChildren(form);
    App.nav();
    document.getElementById("token").focus();
  },

  async projectsView() {
    document.body.dataset.state = "loading";
    const projects = await Api.get("/projects");
    const reviewer = App.me.role !== "annotator";
    const engineer = reviewer && App.me.role !== "reviewer";
    document.getElementById("view").replaceChildren(el("section", { class: "card", id: "projects" },
      el("h1", {}, "Projects"),
      projects.length ? el("table", {}, el("tr", {}, el("th", {}, "project"), el("th", {}, "classes"), el("th", {}, "")),
        projects.map(p => el("tr", {}, el("td", {}, p.id), el("td", {}, p.classes.map(c => c.name).join(", ")),
          el("td", {}, el("a", { href: `#/label/${encodeURIComponent(p.id)}`, class: "label-link" }, "Label"),
            reviewer ? " · " : null,
            reviewer ? el("a", { href: `#/review/${encodeURIComponent(p.id)}`, class: "review-link" }, "Review") : null,
            engineer ? " · " : null,
            engineer ? el("a", { href: `#/projects/${encodeURIComponent(p.id)}`, class: "dashboard-link" }, "Dashboard") : null))))
        : el("p", { class: "muted" }, "No projects yet.")));
    document.body.dataset.state = "projects";  // once the list is there
  },

  async route() {
    Dashboard.projectId = null;
    Dashboard.close();
    try {
      if (!App.me) {
        try { await App.whoami(); } catch (e) { App.signInView(); return; }
      }
      if (App.me.open && !App.me.name) { App.signInView(); return; }
      App.nav();
      const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
      if (parts[0] === "label" && parts[1]) { Review.leave(); await Label.open(parts[1], App.me); }
      else if (parts[0] === "review" && parts[1]) { Label.leave(); await Review.open(parts[1], App.me); }
      else if (parts[0] === "projects" && parts[1]) { Label.leave(); Review.leave(); await Dashboard.open(parts[1]); }
      else { Label.leave(); Review.leave(); await App.projectsView(); }
    } catch (e) {
      document.body.dataset.state = "error";
      document.getElementById("view").replaceChildren(el("div", { class: "card error", id: "error" }, e.message));
    }
  },
};

window.addEventListener("hashchange", () => App.route());
App.route();
