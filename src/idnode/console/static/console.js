// idnode console: progressive enhancements only; every page works without this file.
"use strict";

(function () {
  // Template editor: one more attribute row.
  const add = document.getElementById("add-row");
  const rows = document.getElementById("attr-rows");
  if (add && rows) {
    add.hidden = false;
    add.addEventListener("click", function () {
      const last = rows.lastElementChild;
      if (!last) return;
      const copy = last.cloneNode(true);
      const number = rows.children.length;
      copy.querySelectorAll("input, select").forEach(function (field) {
        if (field.type === "checkbox") {
          field.checked = false;
          field.value = String(number);
        } else if (field.tagName === "INPUT") {
          field.value = "";
        }
        const label = field.getAttribute("aria-label");
        if (label) field.setAttribute("aria-label", label.replace(/\d+$/, String(number + 1)));
      });
      rows.appendChild(copy);
      const first = copy.querySelector("input");
      if (first) first.focus();
    });
  }

  // Import progress: poll the job's status until it is done.
  const job = document.getElementById("import-job");
  if (job && job.dataset.done !== "true") {
    const bar = document.getElementById("import-bar");
    const words = document.getElementById("import-words");
    const marks = words ? words.content.firstElementChild : null;
    const set = function (id, text) {
      const el = document.getElementById(id);
      if (el) el.textContent = String(text);
    };
    const poll = function () {
      fetch(job.dataset.status, { credentials: "same-origin", cache: "no-store" })
        .then(function (r) {
          if (r.status === 404) {
            // another process of the node answered: it does not follow this import
            return r.json().then(function (s) {
              set("import-phase", s.message || "unknown import");
              return Promise.reject(404);
            });
          }
          return r.ok ? r.json() : Promise.reject(r.status);
        })
        .then(function (s) {
          bar.value = s.percent;
          bar.textContent = s.percent + "%";
          set("import-rows", s.rows);
          set("import-created", s.created);
          set("import-existing", s.existing);
          set("import-failed", s.failed);
          if (s.done) {
            job.dataset.done = "true";
            if (marks) {
              set("import-phase", s.error ? marks.dataset.error + ": " + s.error : marks.dataset.done);
            }
            if (s.failed > 0) window.location.reload();
          } else {
            window.setTimeout(poll, 500);
          }
        })
        .catch(function (why) { window.setTimeout(poll, why === 404 ? 5000 : 2000); });
    };
    window.setTimeout(poll, 300);
  }
})();
