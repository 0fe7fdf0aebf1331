// Served as a file, not inline: the Content-Security-Policy allows scripts from this site only.
// Optional: hide questions that don't apply yet. Without script they stay visible,
// marked "only if ..." and the server ignores answers that don't apply.
(function () {
  var summary = document.getElementById("error-summary");
  if (summary) summary.focus();
  var form = document.querySelector("form");
  if (!form || !document.querySelector("[data-show-if]")) return;
  function answer(code) {
    var inputs = form.querySelectorAll('[name="' + code + '"]');
    var values = [];
    inputs.forEach(function (el) { if ((el.type === "radio" || el.type === "checkbox") ? el.checked : el.value) values.push(el.value); });
    return values;
  }
  function holds(c) {
    var values = answer(c.question);
    if (!form.querySelector('[name="' + c.question + '"]')) return true;  // asked on an earlier page: server decided
    if (c.operator === "answered") return values.length > 0;
    var wanted = c.value === true ? "yes" : c.value === false ? "no" : String(c.value);
    return values.indexOf(wanted) !== -1;
  }
  function update() {
    document.querySelectorAll("[data-show-if]").forEach(function (el) {
      var show = JSON.parse(el.dataset.showIf).some(holds);
      el.hidden = !show;
      el.querySelectorAll(".depends").forEach(function (d) { d.hidden = true; });
    });
  }
  form.addEventListener("change", update);
  update();
})();
