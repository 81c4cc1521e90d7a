// "With selected" actions of the list pages, without inline onclick handlers (refused by the CSP).
document.addEventListener("click", function (event) {
  var item = event.target.closest("[data-model-action]");
  if (!item) { return; }
  event.preventDefault();
  window.modelActions.execute(item.getAttribute("data-model-action"));
});
