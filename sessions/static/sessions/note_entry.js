/* ART entries: narrow the protocol list to the chosen structure.
   Progressive enhancement: without this file every protocol is listed, grouped by
   structure, and the server refuses a protocol of another structure. No inline script
   (the Content-Security-Policy forbids it). */
"use strict";
(function () {
  var STRUCTURE = /^id_art_entries-(\d+|__prefix__)-structure$/;

  function protocolFor(structure) {
    return document.getElementById(structure.id.replace(/-structure$/, "-protocol"));
  }

  function narrow(structure) {
    var protocol = protocolFor(structure);
    if (!protocol) {
      return;
    }
    var chosen = structure.value;
    Array.prototype.forEach.call(protocol.options, function (option) {
      var owner = option.getAttribute("data-structure");
      var fits = !owner || !chosen || owner === chosen;
      option.hidden = !fits;
      option.disabled = !fits;
      if (!fits && option.selected) {
        protocol.value = "";
      }
    });
    Array.prototype.forEach.call(protocol.querySelectorAll("optgroup"), function (group) {
      group.hidden = !group.querySelector("option:not([hidden])");
    });
    var fitting = protocol.querySelectorAll("option[data-structure]:not([hidden])").length;
    protocol.setAttribute("data-fitting", String(fitting));
  }

  function onChange(event) {
    var target = event.target;
    if (target && target.id && STRUCTURE.test(target.id)) {
      narrow(target);
    }
  }

  function narrowAll() {
    var selects = document.querySelectorAll("select[id^='id_art_entries-'][id$='-structure']");
    Array.prototype.forEach.call(selects, narrow);
  }

  function start() {
    document.addEventListener("change", onChange);
    // The structure is an admin autocomplete (select2), which announces its choice through
    // jQuery's event system only; the admin's jQuery may load after this file.
    if (window.django && window.django.jQuery) {
      window.django.jQuery(document).on("change", "select", onChange);
    }
    narrowAll();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
