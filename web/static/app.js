// Live progress of a run through Server-Sent Events; without JavaScript the
// run page still shows the state it had when it was loaded.
(function () {
  "use strict";
  const card = document.getElementById("run");
  if (!card || card.dataset.status !== "running" || !window.EventSource) return;
  const bar = document.getElementById("run-bar");
  const state = document.getElementById("run-state");
  const stages = card.querySelectorAll(".stage");
  const source = new EventSource("/runs/" + card.dataset.run + "/events");
  source.onmessage = function (event) {
    const run = JSON.parse(event.data);
    bar.style.width = run.percent + "%";
    bar.parentElement.setAttribute("aria-valuenow", String(run.percent));
    stages.forEach(function (item, index) {
      item.classList.toggle("done", run.stages[index] === "done");
      item.classList.toggle("current", run.stages[index] === "current");
    });
    state.textContent = run.status === "running" ? "Running: " + run.text : "Finished: " + run.status;
    if (run.status !== "running") {
      source.close();
      window.location.reload();
    }
  };
  source.addEventListener("end", function () { source.close(); });
})();
